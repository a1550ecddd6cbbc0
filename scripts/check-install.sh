#!/usr/bin/env bash
# Builds the wheel, installs it into a fresh venv in a temporary folder outside the checkout, and runs
# 'gateway demo' and 'gateway route explain' from there: the package must run with no checkout on disk.
source "$(dirname "$0")/lib.sh"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$VENV/bin/python" -m build --wheel --outdir "$work/dist" "$ROOT" >"$work/build.log" 2>&1 \
  || { cat "$work/build.log" >&2; die "building the wheel failed (see above)"; }
python3 -m venv "$work/venv" || die "could not create a venv in $work"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check "$work"/dist/*.whl \
  || die "installing the wheel into a fresh venv failed"
cd "$work"
env -u GATEWAY_REGISTRY -u GATEWAY_ROUTES -u GATEWAY_TEMPLATE_DIR -u GATEWAY_SCHEMA_DIR \
  GATEWAY_STORE_URL="sqlite:///$work/store.sqlite3" "$work/venv/bin/gateway" demo --out "$work/demo" >"$work/demo.txt" \
  || { cat "$work/demo.txt" >&2; die "'gateway demo' failed in the installed wheel"; }
grep -q "Summary: " "$work/demo.txt" || die "the installed demo printed no summary"
event="$("$work/venv/bin/python" -c 'import gateway.settings as s; print(s.PACKAGED_FIXTURES / "events" / "01-sp1-bergen-brystkreft.json")')"
case "$event" in "$ROOT"*) die "the installed package reads its data from the checkout ($event)";; esac
env -u GATEWAY_REGISTRY GATEWAY_STORE_URL="sqlite:///$work/store.sqlite3" \
  "$work/venv/bin/gateway" route explain "$event" >"$work/explain.txt" \
  || { cat "$work/explain.txt" >&2; die "'gateway route explain' failed in the installed wheel"; }
grep -q "fastlege" "$work/explain.txt" || die "route explain from the wheel named no fastlege"
"$work/venv/bin/python" -c 'from gateway.console.app import HERE; assert (HERE / "templates" / "base.html").is_file() and (HERE / "static" / "console.css").is_file(), HERE' \
  || die "the installed wheel lacks the console's templates or stylesheet (package-data in pyproject.toml)"
say "the wheel installed outside the checkout runs the demo ($(grep 'Summary' "$work/demo.txt")) and route explain"
