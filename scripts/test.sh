#!/usr/bin/env bash
# Installs what the tests need (Debian's promtool and Chromium too), starts RabbitMQ and PostgreSQL if nothing
# listens, then runs ruff, mypy, promtool on the alert rules, the whole suite (unit tier first, then the
# integration tier on the real servers) and finally proves the install: the wheel, built and installed into a
# fresh venv outside the checkout, runs the demo.
# Extra arguments go to pytest, e.g. scripts/test.sh -k routing
# On CI (CI=true) the destructive tests, which stop the broker, run too; never by default on a developer's machine.
# On CI the cluster tier runs last (tests/cluster: three RabbitMQ nodes of its own from scripts/cluster.sh, started
# and stopped by the tier; needs root; ~3-4 minutes). By hand: GATEWAY_TEST_CLUSTER=1 .venv/bin/pytest tests/cluster
source "$(dirname "$0")/lib.sh"
ensure_venv test
ensure_rabbitmq
ensure_postgres
ensure_promtool
ensure_chromium
cd "$ROOT"
export GATEWAY_TEST_REQUIRE_SERVERS=1
if [ "${CI:-}" = "true" ]; then export GATEWAY_TEST_DESTRUCTIVE=1; fi
say "ruff check"
"$VENV/bin/ruff" check gateway tests fixtures scripts bench
say "mypy"
"$VENV/bin/mypy"
say "alert rules (promtool check rules, promtool test rules)"
promtool check rules "$ROOT/alerts/gateway-rules.yml"
promtool test rules "$ROOT/alerts/gateway-rules.test.yml"
say "pytest"
"$VENV/bin/pytest" "$@"
if [ "${CI:-}" = "true" ] && [ "$#" -eq 0 ]; then
  say "cluster tier: three RabbitMQ nodes (scripts/cluster.sh), quorum queues, two replicas, faults"
  GATEWAY_TEST_CLUSTER=1 "$VENV/bin/pytest" tests/cluster
fi
if [ "$#" -eq 0 ]; then
  say "the installed wheel, outside the checkout"
  bash "$ROOT/scripts/check-install.sh"
fi
