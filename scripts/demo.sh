#!/usr/bin/env bash
# The demo: a simulated plant end to end with the KPI table in the terminal. Ctrl-C stops it.
# Installs what is missing first (system packages, .venv). Arguments go to scripts/demo.py.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python scripts/demo.py "$@"
