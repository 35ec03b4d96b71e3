#!/usr/bin/env bash
# Demo of kc-cluster-hub on this machine: installs the dependencies, builds, starts a private
# redis-server and the hub for namespace "demo" on free loopback ports, publishes a freshly made
# EC P-256 key with kc-cluster-ctl, and prints the JWKS URL and body. Runs until Ctrl-C, then
# stops everything it started.
#   scripts/demo.sh           run until Ctrl-C
#   scripts/demo.sh --check   exit 0 once the demo key's kid is served, non-zero otherwise
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=$REPO_ROOT/build
NAMESPACE=demo
INSTANCE=demo-instance-1

usage() {
    cat <<EOF
usage: scripts/demo.sh [--check]
  --check   verify that the published demo key is served, then stop everything and exit
            (0 when the kid is in the JWKS, 1 otherwise)
EOF
}

CHECK=0
case ${1:-} in
    '') ;;
    --check) CHECK=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
esac

log() { printf 'demo: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# KCHUB_* variables override the hub's config file and the ctl's defaults, so none is passed on.
CLEAN_ENV=(env)
for name in $(compgen -e); do
    if [[ $name == KCHUB_* ]]; then CLEAN_ENV+=(-u "$name"); fi
done

WORK_DIR=
REDIS_PID=
HUB_PID=
CTL_PID=

# Sends SIGTERM to a child and waits up to 10 s, then SIGKILL. Sets STOP_STATUS to its exit
# status (a global, because `wait` only works in the shell that started the child).
stop_pid() {
    local pid=$1 i
    STOP_STATUS=0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then break; fi
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid still running 10 s after SIGTERM, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || STOP_STATUS=$?
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [[ -n $CTL_PID ]]; then stop_pid "$CTL_PID"; fi
    if [[ -n $HUB_PID ]]; then stop_pid "$HUB_PID"; fi
    if [[ -n $REDIS_PID ]]; then stop_pid "$REDIS_PID"; fi
    if [[ -n $WORK_DIR ]]; then
        # Show the logs after a failure, not after Ctrl-C (130) or SIGTERM (143).
        if [[ $status -ne 0 && $status -ne 130 && $status -ne 143 ]]; then show_logs; fi
        rm -rf "$WORK_DIR"
    fi
    exit "$status"
}

show_logs() {
    local file
    for file in "$WORK_DIR"/redis.log "$WORK_DIR"/hub.log "$WORK_DIR"/ctl.log; do
        if [[ -s $file ]]; then
            log "last lines of ${file##*/}:"
            tail -n 15 "$file" >&2
        fi
    done
}

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    node -e 'const s = require("net").createServer();
        s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

# wait_until SECONDS WHAT COMMAND...: runs COMMAND every 0.1 s until it succeeds.
wait_until() {
    local seconds=$1 what=$2 i
    shift 2
    for ((i = 0; i < seconds * 10; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    die "timed out after ${seconds} s waiting for $what"
}

redis_answers() { [[ $(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" PING 2>/dev/null) == PONG ]]; }

start_redis() {
    REDIS_PORT=$(free_port)
    mkdir -p "$WORK_DIR/redis"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$WORK_DIR/redis" --daemonize no >"$WORK_DIR/redis.log" 2>&1 &
    REDIS_PID=$!
    wait_until 10 "redis-server on 127.0.0.1:$REDIS_PORT" redis_answers
    log "redis-server listening on 127.0.0.1:$REDIS_PORT (pid $REDIS_PID)"
}

start_hub() {
    HUB_PORT=$(free_port)
    JWKS_URL=http://127.0.0.1:$HUB_PORT/$NAMESPACE/jwks
    cat >"$WORK_DIR/hub.json" <<EOF
{
  "listen": "127.0.0.1:$HUB_PORT",
  "redis": { "url": "redis://127.0.0.1:$REDIS_PORT" },
  "namespaces": [ { "name": "$NAMESPACE" } ]
}
EOF
    "${CLEAN_ENV[@]}" "$BUILD_DIR/kc-cluster-hub" --config "$WORK_DIR/hub.json" \
        2>"$WORK_DIR/hub.log" &
    HUB_PID=$!
    wait_until 15 "the hub to serve $JWKS_URL" curl -fsS -o /dev/null "$JWKS_URL"
    log "kc-cluster-hub listening on 127.0.0.1:$HUB_PORT (pid $HUB_PID)"
}

publish_demo_key() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -out "$WORK_DIR/demo-key.pem" 2>/dev/null ||
        die "openssl genpkey failed to create an EC P-256 key in $WORK_DIR"
    # A real instance keeps the default --safe-window-ms (11 s: Keycloak's 10 s refetch window
    # plus a margin) before signing with a new key. The demo signs nothing, so 1 s keeps it quick.
    "${CLEAN_ENV[@]}" "$BUILD_DIR/kc-cluster-ctl" publish \
        --namespace "$NAMESPACE" --key "$WORK_DIR/demo-key.pem" \
        --redis-url "redis://127.0.0.1:$REDIS_PORT" --instance "$INSTANCE" \
        --jwks-url "$JWKS_URL" --safe-window-ms 1000 --ready-file "$WORK_DIR/ready.json" \
        2>"$WORK_DIR/ctl.log" &
    CTL_PID=$!
    wait_until 30 "kc-cluster-ctl to write $WORK_DIR/ready.json" test -s "$WORK_DIR/ready.json"
    DEMO_KID=$(node -p 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).kids[0]' \
        "$WORK_DIR/ready.json")
    log "kc-cluster-ctl published kid $DEMO_KID for instance $INSTANCE (pid $CTL_PID)"
}

# Prints "yes" when the JWKS body on stdin has a key with kid $1.
jwks_has_kid() {
    node -e 'let t = ""; process.stdin.on("data", (c) => (t += c)).on("end", () => {
        const keys = JSON.parse(t).keys || [];
        console.log(keys.some((k) => k.kid === process.argv[1]) ? "yes" : "no"); });' "$1"
}

show_jwks() {
    local body
    body=$(curl -fsS "$JWKS_URL") || die "GET $JWKS_URL failed"
    printf '\nJWKS URL: %s\n' "$JWKS_URL"
    printf '%s\n' "$body" | node -e 'let t = ""; process.stdin.on("data", (c) => (t += c))
        .on("end", () => console.log(JSON.stringify(JSON.parse(t), null, 2)));'
    [[ $(printf '%s' "$body" | jwks_has_kid "$DEMO_KID") == yes ]] ||
        die "kid $DEMO_KID is not in the JWKS served at $JWKS_URL"
    printf '\nThe demo key (kid %s) is served.\n' "$DEMO_KID"
}

"$REPO_ROOT/scripts/install-deps.sh"
"$REPO_ROOT/scripts/build.sh" >/dev/null || die "build failed; run scripts/build.sh to see why"
for binary in kc-cluster-hub kc-cluster-ctl; do
    [[ -x $BUILD_DIR/$binary ]] || die "$BUILD_DIR/$binary was not built"
done

WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/kchub-demo.XXXXXX")
start_redis
start_hub
publish_demo_key
show_jwks

if [[ $CHECK -eq 1 ]]; then
    stop_pid "$CTL_PID"
    CTL_PID=
    [[ $STOP_STATUS -eq 0 ]] || die "kc-cluster-ctl exited with status $STOP_STATUS after SIGTERM"
    stop_pid "$HUB_PID"
    HUB_PID=
    [[ $STOP_STATUS -eq 0 ]] || die "kc-cluster-hub exited with status $STOP_STATUS after SIGTERM"
    log "check passed"
    exit 0
fi

printf 'Logs: %s. Press Ctrl-C to stop.\n' "$WORK_DIR"
status=0
wait -n "$REDIS_PID" "$HUB_PID" "$CTL_PID" || status=$?
die "a demo process exited unexpectedly (status $status)"
