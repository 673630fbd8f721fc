#!/usr/bin/env bash
# Install what the project needs on a fresh Debian machine (root): system packages
# (mosquitto, influxdb, node for the interop tests) and the Python virtual environment.
# Idempotent and quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-system-deps.sh

PYTHON=${PYTHON:-python3}
stamp=.venv/.installed-$(cat pyproject.toml requirements-no-deps.txt | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "bootstrap: creating .venv and installing the project (pip install -e .[dev])"
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -e ".[dev]"
  # Libraries installed without their dependencies (the file says why).
  .venv/bin/pip install --quiet --no-deps -r requirements-no-deps.txt
  rm -f .venv/.installed-*
  touch "$stamp"
fi

# node-opcua: an OPC UA server we did not write, for the interoperability test.
if [ -f tests/interop/package.json ] && [ ! -d tests/interop/node_modules/node-opcua ]; then
  if command -v npm >/dev/null; then
    echo "bootstrap: installing node-opcua for the interoperability test"
    (cd tests/interop && npm install --no-audit --no-fund --loglevel=error)
  else
    echo "bootstrap: npm not found; the node-opcua interoperability test will fail" >&2
  fi
fi

# Node-RED: the peer flow the MQTT burst benchmark (and its smoke test) compares with.
if [ -f bench/node_red/package-lock.json ] && [ ! -f bench/node_red/node_modules/node-red/red.js ]; then
  if command -v npm >/dev/null; then
    echo "bootstrap: installing Node-RED for the MQTT burst benchmark"
    (cd bench/node_red && npm ci --no-audit --no-fund --loglevel=error)
  else
    echo "bootstrap: npm not found; the MQTT burst benchmark's Node-RED peer will fail" >&2
  fi
fi
