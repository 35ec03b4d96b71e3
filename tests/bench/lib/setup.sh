# Sourced by tests/bench/run.sh: installing the tools, building the release binary, starting and
# stopping the processes the benchmark owns, and reading their CPU time and memory.

BENCH_APT_PACKAGES=(build-essential cmake pkg-config libmicrohttpd-dev libhiredis-dev libssl-dev
    libjansson-dev libcurl4-openssl-dev redis-server redis-tools curl openssl nginx wrk)
STARTED_PIDS=()

log() { printf 'bench: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 2
}

# Installs the missing Debian packages, without starting their services (a policy-rc.d that
# exits 101 is put in place when none exists, and removed again). Does nothing when all are there.
install_tools() {
    local pkg status missing=() wanted=("${BENCH_APT_PACKAGES[@]}")
    if [[ -n $PROFILE_DIR ]]; then wanted+=(linux-perf sysstat); fi
    for pkg in "${wanted[@]}"; do
        status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
        if [[ $status != "install ok installed" ]]; then missing+=("$pkg"); fi
    done
    if ! command -v node >/dev/null; then missing+=(nodejs); fi
    if [[ ${#missing[@]} -eq 0 ]]; then return 0; fi
    [[ $EUID -eq 0 ]] || die "packages missing (${missing[*]}); run as root to install them"
    log "installing Debian packages: ${missing[*]}"
    local policy=/usr/sbin/policy-rc.d added_policy=
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        added_policy=1
    fi
    status=0
    apt-get update -q >&2 || status=$?
    if [[ $status -eq 0 ]]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            "${missing[@]}" >&2 || status=$?
    fi
    if [[ -n $added_policy ]]; then rm -f "$policy"; fi
    [[ $status -eq 0 ]] || die "apt-get failed with status $status installing: ${missing[*]}"
}

# Builds the hub as a Release binary (optimised, no debug assertions) into BUILD_DIR.
build_release() {
    log "building the release binary in ${BUILD_DIR#"$REPO_ROOT"/}"
    cmake -S "$REPO_ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DKCHUB_WERROR=ON \
        >"$WORK_DIR/cmake.log" 2>&1 || die "cmake configure failed; see $WORK_DIR/cmake.log"
    cmake --build "$BUILD_DIR" --parallel "$(nproc)" --target kc-cluster-hub \
        >>"$WORK_DIR/cmake.log" 2>&1 || die "the build failed; see $WORK_DIR/cmake.log"
}

# Starts a command in the background with stdout and stderr in $WORK_DIR/NAME.log, records its
# PID for stop_all and sets LAST_PID.
start_background() {
    local name=$1
    shift
    "$@" >"$WORK_DIR/$name.log" 2>&1 &
    LAST_PID=$!
    STARTED_PIDS+=("$LAST_PID")
}

# Sends SIGTERM to one PID this script started, waits up to 5 s, then SIGKILL.
stop_pid() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid still running 5 s after SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# Stops every process in STARTED_PIDS, newest first.
stop_all() {
    local i
    for ((i = ${#STARTED_PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${STARTED_PIDS[i]}"; done
    STARTED_PIDS=()
}

# Polls until a command succeeds, every 50 ms, for at most $1 seconds.
wait_until() {
    local seconds=$1 what=$2 i
    shift 2
    for ((i = 0; i < seconds * 20; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.05
    done
    die "timed out after $seconds s waiting for $what"
}

http_ok() { [[ $(curl -s -o /dev/null -w '%{http_code}' "$1") == 200 ]]; }

# Prints a process's resident memory in kB (VmRSS).
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# Prints a process's private memory in kB: resident pages no other process maps (smaps_rollup).
private_kb() { awk '/^Private_(Clean|Dirty):/ {sum += $2} END {print sum}' "/proc/$1/smaps_rollup"; }

# Prints a process's user plus system CPU time in clock ticks, over all its threads.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

start_redis() {
    mkdir -p "$WORK_DIR/redis"
    start_background redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' \
        --appendonly no --dir "$WORK_DIR/redis" --daemonize no
    REDIS_PID=$LAST_PID
    wait_until 10 "redis-server on port $REDIS_PORT" redis-cli -p "$REDIS_PORT" PING
}

# Writes a hub config file: $1 path, $2 listen port, $3 namespaces JSON array, $4 retire grace ms.
# A hub built with admin routes gets them on port $5.
write_hub_config() {
    local admin=
    if [[ $("$BUILD_DIR/kc-cluster-hub" --help) == *KCHUB_ADMIN_LISTEN* ]]; then
        admin="\"admin_listen\": \"127.0.0.1:$5\","
    fi
    cat >"$1" <<EOF
{
  "listen": "127.0.0.1:$2",
  $admin
  "http_threads": $HTTP_THREADS,
  "log_level": "info",
  "log_format": "text",
  "redis": { "url": "redis://127.0.0.1:$REDIS_PORT" },
  "keys": { "retire_grace_ms": $4 },
  "namespaces": $3
}
EOF
}

# Starts the hub with config $2, its log in $WORK_DIR/$1.log, and waits until $3 returns 200.
start_hub() {
    start_background "$1" env -u KCHUB_NAMESPACE -u KCHUB_LISTEN -u KCHUB_REDIS_URL \
        "$BUILD_DIR/kc-cluster-hub" --config "$2"
    HUB_PID=$LAST_PID
    wait_until 15 "the hub to serve $3" http_ok "$3"
}

# Starts nginx with worker_processes $HTTP_THREADS serving $WORK_DIR/www as static files: the
# reference, tuned as one would for keep-alive traffic (sendfile, open file cache, no access log,
# no cap on requests per connection).
start_nginx() {
    mkdir -p "$WORK_DIR/nginx" "$WORK_DIR/www"
    chmod 755 "$WORK_DIR" "$WORK_DIR/www"
    cat >"$WORK_DIR/nginx/nginx.conf" <<EOF
worker_processes $HTTP_THREADS;
daemon off;
pid $WORK_DIR/nginx/nginx.pid;
error_log $WORK_DIR/nginx/error.log warn;
user nobody nogroup;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 100000000;
    keepalive_timeout 60s;
    open_file_cache max=100 inactive=60s;
    open_file_cache_valid 60s;
    default_type application/json;
    client_body_temp_path $WORK_DIR/nginx/body;
    proxy_temp_path $WORK_DIR/nginx/proxy;
    fastcgi_temp_path $WORK_DIR/nginx/fastcgi;
    uwsgi_temp_path $WORK_DIR/nginx/uwsgi;
    scgi_temp_path $WORK_DIR/nginx/scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $WORK_DIR/www;
        etag on;
    }
}
EOF
    start_background nginx nginx -e "$WORK_DIR/nginx/error.log" -p "$WORK_DIR/nginx" \
        -c "$WORK_DIR/nginx/nginx.conf"
    NGINX_PID=$LAST_PID
    wait_until 10 "nginx on port $NGINX_PORT" curl -s -o /dev/null "http://127.0.0.1:$NGINX_PORT/"
}

# Copies the body the hub serves at $1 into nginx's root at path $2, so both serve the same bytes.
mirror_to_nginx() {
    mkdir -p "$(dirname "$WORK_DIR/www/$2")"
    curl -sf -o "$WORK_DIR/www/$2" "$1" || die "GET $1 failed while copying it for nginx"
    chmod -R a+rX "$WORK_DIR/www"
}

# Generates an RSA-2048 private key into $1.
generate_rsa_key() {
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null ||
        die "openssl genpkey failed for $1"
}

# Runs node bench.mjs with the arguments and prints its JSON result line.
bench_node() { node "$BENCH_DIR/bench.mjs" "$@"; }

# Prints member $2 of the JSON object $1.
json_get() { node -e 'const v = JSON.parse(process.argv[1])[process.argv[2]]; console.log(v);' "$1" "$2"; }
