#!/usr/bin/env bash
# Installs what the tests need, starts RabbitMQ and PostgreSQL if nothing listens, then runs ruff and the whole suite.
# Extra arguments go to pytest, e.g. scripts/test.sh -k routing
source "$(dirname "$0")/lib.sh"
ensure_venv test
ensure_rabbitmq
ensure_postgres
cd "$ROOT"
say "ruff check"
"$VENV/bin/ruff" check gateway tests fixtures scripts bench
say "pytest"
exec "$VENV/bin/pytest" "$@"
