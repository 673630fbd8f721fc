#!/usr/bin/env bash
# Install the servers the tests and the demo run as subprocesses: mosquitto (+ clients) and
# InfluxDB 1.x (Debian 12 ships 1.6.7, /usr/bin/influxd); and chromium, the headless
# browser the dashboard test drives.
#
# For a fresh Debian 12 machine, as root. Idempotent: a package is installed only when its
# binary is missing, and `apt-get update` runs once, only if something is to be installed.
#
# The system services are never started: our tests start their own servers on free ports,
# and a system mosquitto/influxd would sit on 1883/8086. During the install a temporary
# policy-rc.d forbids service starts; a service of a package installed here that is
# running anyway is stopped, and disabled at boot.
set -euo pipefail

log() { printf 'install-system-deps: %s\n' "$*"; }

if [[ $(id -u) -ne 0 ]]; then
    log "must run as root (try: sudo $0)" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    log "apt-get not found: this script is for Debian 12; install mosquitto, mosquitto-clients and influxdb 1.x by hand" >&2
    exit 1
fi

# package -> a binary it provides (absolute paths: /usr/sbin is not on every root PATH)
declare -A BINARY=(
    [mosquitto]=/usr/sbin/mosquitto
    [mosquitto-clients]=/usr/bin/mosquitto_sub
    [influxdb]=/usr/bin/influxd
    [docker-compose]=/usr/bin/docker-compose
    [nodejs]=/usr/bin/node
    [npm]=/usr/bin/npm
    # headless browser for the dashboard test (tests/e2e/test_dashboard.py); large, accepted
    [chromium]=/usr/bin/chromium
    # the printable report: Chinese fonts, and the Pango WeasyPrint draws text with
    [fonts-noto-cjk]=/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc
    [libpango-1.0-0]=/usr/lib/$(uname -m)-linux-gnu/libpango-1.0.so.0
    [libpangoft2-1.0-0]=/usr/lib/$(uname -m)-linux-gnu/libpangoft2-1.0.so.0
    [poppler-utils]=/usr/bin/pdftoppm
)
# package -> its system service
declare -A SERVICE=(
    [mosquitto]=mosquitto
    [influxdb]=influxdb
)

missing=()
for pkg in mosquitto mosquitto-clients influxdb docker-compose nodejs npm chromium \
    fonts-noto-cjk libpango-1.0-0 libpangoft2-1.0-0 poppler-utils; do
    bin=${BINARY[$pkg]}
    if [[ -e $bin ]] || command -v "$(basename "$bin")" >/dev/null 2>&1; then
        log "$pkg: $(basename "$bin") already present, skipping"
    else
        missing+=("$pkg")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    log "nothing to install"
    exit 0
fi

policy=/usr/sbin/policy-rc.d
created_policy=0
cleanup() {
    if [[ $created_policy -eq 1 ]]; then
        rm -f "$policy"
        log "removed temporary $policy"
    fi
}
trap cleanup EXIT

if [[ -e $policy ]]; then
    log "$policy exists already; leaving it as it is"
else
    # exit 101 = "action forbidden": invoke-rc.d then skips starting the services
    printf '#!/bin/sh\n# temporary, from plantkpi scripts/install-system-deps.sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    created_policy=1
    log "created temporary $policy so package scripts do not start services"
fi

export DEBIAN_FRONTEND=noninteractive
log "running apt-get update"
apt-get update
log "installing: ${missing[*]}"
apt-get install -y --no-install-recommends "${missing[@]}"

# Only touch services of packages this run installed; an existing setup stays as it was.
systemd=0
if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
    systemd=1
fi
for pkg in "${missing[@]}"; do
    service=${SERVICE[$pkg]:-}
    [[ -n $service ]] || continue
    if [[ $systemd -eq 1 ]]; then
        if systemctl is-active --quiet "$service"; then
            log "stopping $service (it started despite policy-rc.d)"
            systemctl stop "$service"
        fi
        if systemctl is-enabled --quiet "$service" 2>/dev/null; then
            log "disabling $service so it does not take its port at boot"
            systemctl disable --quiet "$service"
        fi
    else
        if command -v service >/dev/null 2>&1 && service "$service" status >/dev/null 2>&1; then
            log "stopping $service (it started despite policy-rc.d)"
            service "$service" stop || log "could not stop $service; stop it by hand" >&2
        else
            log "$service: not running"
        fi
        if command -v update-rc.d >/dev/null 2>&1 && [[ -e /etc/init.d/$service ]]; then
            log "disabling $service at boot (update-rc.d)"
            update-rc.d "$service" disable >/dev/null 2>&1 || true
        fi
    fi
done

for pkg in "${missing[@]}"; do
    bin=${BINARY[$pkg]}
    if [[ -e $bin ]]; then
        log "$pkg: installed $bin"
    else
        log "$pkg: installed, but $bin is missing" >&2
        exit 1
    fi
done
log "done"
