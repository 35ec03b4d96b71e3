#!/usr/bin/env bash
# Installs what kc-cluster-hub needs to build and test on Debian 12: the C toolchain and
# libraries, redis-server and redis-tools (the tests start their own servers), and the Node.js
# test dependencies from tests/integration/package-lock.json. The prometheus package brings
# promtool, which checks the hub's metrics output; its service is not started. Idempotent: when
# everything is present it only checks and returns, without apt-get update or npm ci.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
INTEGRATION_DIR=$REPO_ROOT/tests/integration
APT_PACKAGES=(build-essential cmake pkg-config libmicrohttpd-dev libhiredis-dev libssl-dev
    libjansson-dev libcurl4-openssl-dev redis-server redis-tools curl ca-certificates openssl
    prometheus jq)
NODE_MIN_MAJOR=20

log() { printf 'install-deps: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        die "'$*' needs root; run this script as root or install sudo"
    fi
}

missing_packages() {
    local pkg status
    for pkg in "$@"; do
        status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
        if [[ $status != "install ok installed" ]]; then printf '%s\n' "$pkg"; fi
    done
}

# Stops a redis-server that the Debian package started as a system service on 6379 despite
# policy-rc.d; the tests start their own servers on free ports.
stop_packaged_redis() {
    local pidfile=/run/redis/redis-server.pid pid
    [[ -f $pidfile ]] || return 0
    pid=$(<"$pidfile")
    if [[ $pid =~ ^[0-9]+$ ]] && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == redis-server ]]; then
        log "stopping the redis-server service the package started (pid $pid)"
        as_root kill "$pid"
    fi
}

# Installs packages without starting their services: a policy-rc.d exiting with 101 makes
# invoke-rc.d skip every service start. An existing policy-rc.d is left as it is.
apt_install() {
    local policy=/usr/sbin/policy-rc.d added_policy=
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
        as_root chmod 755 "$policy"
        added_policy=1
    fi
    local status=0
    as_root apt-get update -q || status=$?
    if [[ $status -eq 0 ]]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            "$@" || status=$?
    fi
    if [[ -n $added_policy ]]; then as_root rm -f "$policy"; fi
    [[ $status -eq 0 ]] || die "apt-get failed with status $status while installing: $*"
    stop_packaged_redis
}

install_apt_packages() {
    local wanted=("${APT_PACKAGES[@]}")
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        log "node or npm not found; adding Debian's nodejs and npm"
        wanted+=(nodejs npm)
    fi
    local missing
    mapfile -t missing < <(missing_packages "${wanted[@]}")
    if [[ ${#missing[@]} -eq 0 ]]; then
        log "Debian packages: all present"
        return
    fi
    log "installing Debian packages: ${missing[*]}"
    apt_install "${missing[@]}"
}

check_node_version() {
    local major
    major=$(node -p 'process.versions.node.split(".")[0]')
    if ((major < NODE_MIN_MAJOR)); then
        log "warning: node $(node --version) is older than $NODE_MIN_MAJOR;" \
            "oidc-provider 9 may not run on it"
    fi
}

# Runs npm ci unless node_modules already matches the lock file: npm writes its own copy of the
# lock file to node_modules/.package-lock.json after an install.
install_node_modules() {
    local lock=$INTEGRATION_DIR/package-lock.json
    local modules=$INTEGRATION_DIR/node_modules
    [[ -f $lock ]] || die "missing $lock; run 'npm install' in $INTEGRATION_DIR to create it"
    if [[ -f $modules/.package-lock.json && ! $lock -nt $modules/.package-lock.json &&
        -d $modules/oidc-provider && -d $modules/jose ]]; then
        log "Node.js test dependencies: present"
        return
    fi
    log "installing Node.js test dependencies (npm ci in tests/integration)"
    (cd "$INTEGRATION_DIR" && npm ci --no-audit --no-fund --loglevel=warn) ||
        die "npm ci in $INTEGRATION_DIR failed; check the npm registry settings and" \
            "package-lock.json"
}

install_apt_packages
check_node_version
install_node_modules
