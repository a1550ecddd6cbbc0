# Shared by scripts/demo.sh and scripts/test.sh: install what the project needs, start what it talks to.
# Every failure says what was wrong and what to do.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${GATEWAY_VENV:-$ROOT/.venv}"
export GATEWAY_BROKER_URL="${GATEWAY_BROKER_URL:-amqp://guest:guest@127.0.0.1:5672//}"

say() { printf '\033[1m[gateway]\033[0m %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

ensure_venv() {
  local py="${PYTHON:-python3}"
  command -v "$py" >/dev/null || die "no $py on PATH; install Python 3.11 or newer (apt-get install python3 python3-venv)"
  "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "$py is older than 3.11; install Python 3.11+"
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating the virtual environment $VENV"
    "$py" -m venv "$VENV" || die "could not create a venv; on Debian: apt-get install python3-venv"
  fi
  say "installing the gateway and its dependencies (pip, $1)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT[$1]" \
    || die "pip install failed; check the network access to PyPI and the output above"
}

# host and port of an amqp:// URL
_broker_addr() {
  "$VENV/bin/python" - "$1" <<'PY'
import sys
from urllib.parse import urlparse
u = urlparse(sys.argv[1])
print(u.hostname or "127.0.0.1", u.port or 5672)
PY
}

_listening() {
  "$VENV/bin/python" -c 'import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 2).close()' \
    "$1" "$2" 2>/dev/null
}

ensure_rabbitmq() {
  local host port
  read -r host port < <(_broker_addr "$GATEWAY_BROKER_URL")
  if _listening "$host" "$port"; then
    say "RabbitMQ answers on $host:$port"
    return 0
  fi
  case "$host" in
    127.*|localhost|::1) ;;
    *) die "nothing listens on $host:$port (GATEWAY_BROKER_URL) and it is not this machine: start RabbitMQ there" ;;
  esac
  if ! command -v rabbitmq-server >/dev/null; then
    [ "$(id -u)" = 0 ] || die "RabbitMQ is not installed and this is not root: run 'sudo apt-get install rabbitmq-server'"
    command -v apt-get >/dev/null || die "RabbitMQ is not installed and there is no apt-get: install RabbitMQ 3.x by hand"
    say "installing RabbitMQ from Debian's packages (apt-get install rabbitmq-server)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed; check access to the Debian mirrors"
    apt-get install -y -qq rabbitmq-server >/dev/null || die "apt-get install rabbitmq-server failed (see above)"
  fi
  say "starting RabbitMQ (rabbitmq-server -detached)"
  if [ "$(id -u)" = 0 ]; then rabbitmq-server -detached || true; else sudo rabbitmq-server -detached || true; fi
  for _ in $(seq 1 120); do
    if _listening "$host" "$port"; then say "RabbitMQ is up on $host:$port"; return 0; fi
    sleep 1
  done
  die "RabbitMQ did not start within 120 s; see /var/log/rabbitmq/ and try 'rabbitmq-server' in the foreground"
}

export GATEWAY_TEST_POSTGRES_URL="${GATEWAY_TEST_POSTGRES_URL:-postgresql://postgres:postgres@127.0.0.1:5432/postgres}"

_pg_login_works() {
  "$VENV/bin/python" -c 'import sys, psycopg; psycopg.connect(sys.argv[1], connect_timeout=3).close()' \
    "$GATEWAY_TEST_POSTGRES_URL" 2>/dev/null
}

ensure_postgres() {
  local host port
  read -r host port < <("$VENV/bin/python" - "$GATEWAY_TEST_POSTGRES_URL" <<'PY'
import sys
from urllib.parse import urlparse
u = urlparse(sys.argv[1])
print(u.hostname or "127.0.0.1", u.port or 5432)
PY
)
  if _listening "$host" "$port"; then
    _pg_login_works || die "PostgreSQL on $host:$port refuses $GATEWAY_TEST_POSTGRES_URL; set GATEWAY_TEST_POSTGRES_URL to a superuser URL"
    say "PostgreSQL answers on $host:$port"
    return 0
  fi
  case "$host" in
    127.*|localhost|::1) ;;
    *) die "nothing listens on $host:$port (GATEWAY_TEST_POSTGRES_URL) and it is not this machine: start PostgreSQL there" ;;
  esac
  [ "$(id -u)" = 0 ] || die "PostgreSQL is not running and this is not root: install and start it (apt-get install postgresql)"
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    command -v apt-get >/dev/null || die "PostgreSQL is not installed and there is no apt-get: install PostgreSQL by hand"
    say "installing PostgreSQL from Debian's packages (apt-get install postgresql)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed; check access to the Debian mirrors"
    apt-get install -y -qq postgresql >/dev/null || die "apt-get install postgresql failed (see above)"
  fi
  local version
  version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  say "starting PostgreSQL $version (pg_ctlcluster $version main start)"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || pg_ctlcluster "$version" main start || true
  for _ in $(seq 1 60); do
    if _listening "$host" "$port"; then break; fi
    sleep 1
  done
  _listening "$host" "$port" || die "PostgreSQL did not start within 60 s; see /var/log/postgresql/"
  if ! _pg_login_works; then
    say "setting the postgres user's password for the tests (local test server only)"
    su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\"" \
      || die "could not set a password for postgres; set GATEWAY_TEST_POSTGRES_URL to a working superuser URL"
  fi
  _pg_login_works || die "cannot log in to PostgreSQL with $GATEWAY_TEST_POSTGRES_URL"
  say "PostgreSQL is up on $host:$port"
}

# Installs a Debian package as root, or says exactly what to run instead. $1 = the command that must exist,
# the rest = the packages that provide it.
_ensure_apt() {
  local cmd="$1"; shift
  if command -v "$cmd" >/dev/null; then return 0; fi
  if [ "$(id -u)" != 0 ]; then
    die "$cmd is missing and this is not root, so it cannot be installed here: run 'sudo apt-get install -y $*'"
  fi
  command -v apt-get >/dev/null || die "$cmd is missing and there is no apt-get: install $* by hand"
  say "installing $* from Debian's packages (apt-get install $*)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed, so $* could not be installed; check access to the Debian mirrors"
  apt-get install -y -qq "$@" >/dev/null || die "apt-get install $* failed (see above); $cmd is still missing"
  command -v "$cmd" >/dev/null || die "apt-get installed $* but there is still no $cmd on PATH"
}

# promtool checks and unit-tests alerts/gateway-rules.yml; Debian ships it in the prometheus package
# (installing it does not start a Prometheus server here: nothing in these scripts does).
ensure_promtool() {
  _ensure_apt promtool prometheus
  say "promtool: $(promtool --version 2>&1 | head -n 1)"
}

# The console's browser test drives Debian's Chromium (never a downloaded browser) through Playwright.
ensure_chromium() {
  _ensure_apt chromium chromium chromium-driver
  export GATEWAY_TEST_CHROMIUM="${GATEWAY_TEST_CHROMIUM:-$(command -v chromium)}"
  say "Chromium for the browser test: $GATEWAY_TEST_CHROMIUM"
}
