#!/usr/bin/env bash
# Installs the gateway and runs the demo over the fixture events, all in one process
# (kombu's in-memory transport and a SQLite file). Arguments go to 'gateway demo',
# e.g. scripts/demo.sh --broker amqp://guest:guest@127.0.0.1:5672//
source "$(dirname "$0")/lib.sh"
ensure_venv test
case " $* " in *amqp://*) ensure_rabbitmq ;; esac
cd "$ROOT"
exec "$VENV/bin/gateway" demo "$@"
