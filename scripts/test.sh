#!/usr/bin/env bash
# The whole test suite: lint, type check, then pytest against real mosquitto, influxd and
# OPC UA servers that the fixtures start on free loopback ports.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m soak` for the long runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
echo "== ruff"; .venv/bin/ruff check .
echo "== mypy"; .venv/bin/mypy
echo "== pytest"; exec .venv/bin/pytest "$@"
