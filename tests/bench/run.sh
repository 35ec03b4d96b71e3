#!/usr/bin/env bash
# Performance benchmark of kc-cluster-hub. Installs what it needs (nginx, wrk), builds a Release
# binary into build-bench/, starts redis-server, the hub, nginx and small Node.js helpers on free
# 127.0.0.1 ports, runs every measurement, prints one table, and stops everything it started.
#   tests/bench/run.sh                 full run (about 3 minutes)
#   tests/bench/run.sh --smoke         every measurement for a second or two; fails only when a
#                                      measurement could not be taken, never on a missed target
#   tests/bench/run.sh --profile DIR   also record perf profiles and per-thread CPU (pidstat) of
#                                      the hub during the load phases into DIR
# Exit status: 0 when every measurement was taken (and, in a full run, met its target), 1 when a
# full run missed a target, 2 when a measurement could not be taken or the setup failed.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH_DIR=$REPO_ROOT/tests/bench
BUILD_DIR=$REPO_ROOT/build-bench
# shellcheck source=tests/bench/lib/setup.sh
source "$BENCH_DIR/lib/setup.sh"
# shellcheck source=tests/bench/lib/report.sh
source "$BENCH_DIR/lib/report.sh"

usage() { sed -n '2,11s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

SMOKE=0
PROFILE_DIR=
while [[ $# -gt 0 ]]; do
    case $1 in
        --smoke) SMOKE=1 ;;
        --profile)
            [[ $# -ge 2 ]] || die "--profile needs a directory"
            PROFILE_DIR=$(mkdir -p "$2" && cd "$2" && pwd)
            shift
            ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
    shift
done

HTTP_THREADS=$(nproc)     # the hub's HTTP threads and nginx's worker processes
WRK_THREADS=$(nproc)
JWKS_CONNECTIONS=64
LOGOUT_CONNECTIONS=16     # see docs/benchmarks.md: latency = connections / throughput
JWKS_KEYS=10
SCALE_KEYS=10000
if [[ $SMOKE -eq 1 ]]; then
    LOAD_SECONDS=2 ROUNDS=1 PROPAGATION_KEYS=100 LOGOUT_TOKENS=4000 SCALE_EVENTS=20
    REPLAY_KEYS=10000 REPLAY_ROUNDS=2 REPLAY_RUNS=1 IDLE_SECONDS=2
else
    LOAD_SECONDS=8 ROUNDS=3 PROPAGATION_KEYS=1000 LOGOUT_TOKENS=40000 SCALE_EVENTS=100
    REPLAY_KEYS=10000 REPLAY_ROUNDS=10 REPLAY_RUNS=3 IDLE_SECONDS=10
fi

WORK_DIR=
KEEP_WORK_DIR=0
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    stop_all
    if [[ -n $WORK_DIR && ($status -eq 0 || $status -eq 1) && $KEEP_WORK_DIR -eq 0 ]]; then
        rm -rf "$WORK_DIR"
    elif [[ -n $WORK_DIR ]]; then
        log "logs kept in $WORK_DIR"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Starts perf record and pidstat on PID $2 for $3 seconds, as profile phase $1 (--profile only).
profile_start() {
    [[ -n $PROFILE_DIR ]] || return 0
    start_background "perf-$1" perf record -F 499 -g -p "$2" -o "$PROFILE_DIR/$1.perf.data" \
        -- sleep "$3"
    PROFILE_PIDS=("$LAST_PID")
    start_background "pidstat-$1" sh -c "pidstat -t -u -p $2 1 $3 >'$PROFILE_DIR/$1.pidstat'"
    PROFILE_PIDS+=("$LAST_PID")
}

# Waits for the phase's recorders and writes the flat profile to $PROFILE_DIR/$1.perf.txt.
profile_finish() {
    [[ -n $PROFILE_DIR ]] || return 0
    local pid
    for pid in "${PROFILE_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    perf report -i "$PROFILE_DIR/$1.perf.data" --stdio --no-children --sort dso,symbol \
        --percent-limit 0.5 2>/dev/null | grep -v '^$' | sed -n '1,80p' >"$PROFILE_DIR/$1.perf.txt" ||
        log "perf report failed for phase $1"
}

# Runs wrk against $2 for $LOAD_SECONDS with $3 connections (more wrk arguments may follow) and
# reads its result (see read_wrk_result).
run_wrk() {
    local name=$1 url=$2 connections=$3 output
    shift 3
    output=$(wrk -t "$WRK_THREADS" -c "$connections" -d "${LOAD_SECONDS}s" --timeout 10s \
        -s "$BENCH_DIR/summary.lua" "$url" "$@" 2>&1) || die "wrk against $url failed: $output"
    printf '%s\n' "$output" >>"$WORK_DIR/wrk-$name.log"
    read_wrk_result "$output" "$name"
}

# Parses the BENCH line of wrk output $1 and sets WRK_RPS, WRK_P50_MS, WRK_P99_MS,
# WRK_STATUS_ERRORS, WRK_REQUESTS and WRK_SECONDS.
read_wrk_result() {
    local output=$1 name=$2 line pair
    line=$(grep '^BENCH ' <<<"$output") || die "wrk $name printed no result line: $output"
    declare -A field
    for pair in ${line#BENCH }; do field[${pair%%=*}]=${pair#*=}; done
    WRK_REQUESTS=${field[requests]}
    WRK_STATUS_ERRORS=${field[status_errors]}
    WRK_SECONDS=$(awk -v d="${field[duration_us]}" 'BEGIN {printf "%.3f", d / 1e6}')
    WRK_RPS=$(awk -v r="${field[requests]}" -v d="${field[duration_us]}" 'BEGIN {printf "%.0f", r * 1e6 / d}')
    WRK_P50_MS=$(awk -v v="${field[p50_us]}" 'BEGIN {printf "%.3f", v / 1000}')
    WRK_P99_MS=$(awk -v v="${field[p99_us]}" 'BEGIN {printf "%.3f", v / 1000}')
    if [[ ${field[socket_errors]} -ne 0 ]]; then
        log "wrk $name: ${field[socket_errors]} socket errors (see $WORK_DIR/wrk-$name.log)"
    fi
}

# Runs the hub ($1) and nginx ($2) alternately, $ROUNDS times each, and sets A_RPS, A_P50,
# A_P99 (hub medians) and B_RPS, B_P50, B_P99 (nginx medians). $3 names the phase.
compare_with_nginx() {
    local hub_url=$1 nginx_url=$2 phase=$3 round
    local -a hub_rps=() hub_p50=() hub_p99=() ref_rps=() ref_p50=() ref_p99=()
    LOAD_SECONDS=1 run_wrk "$phase-warmup" "$hub_url" "$JWKS_CONNECTIONS"
    LOAD_SECONDS=1 run_wrk "$phase-warmup" "$nginx_url" "$JWKS_CONNECTIONS"
    for ((round = 1; round <= ROUNDS; round++)); do
        if [[ $round -eq 1 ]]; then profile_start "$phase" "$HUB_PID" "$LOAD_SECONDS"; fi
        run_wrk "$phase-hub" "$hub_url" "$JWKS_CONNECTIONS"
        if [[ $round -eq 1 ]]; then profile_finish "$phase"; fi
        [[ $WRK_STATUS_ERRORS -eq 0 ]] || die "the hub answered $WRK_STATUS_ERRORS errors on $hub_url"
        hub_rps+=("$WRK_RPS") hub_p50+=("$WRK_P50_MS") hub_p99+=("$WRK_P99_MS")
        log "$phase round $round: hub $WRK_RPS req/s p99 $WRK_P99_MS ms"
        run_wrk "$phase-nginx" "$nginx_url" "$JWKS_CONNECTIONS"
        [[ $WRK_STATUS_ERRORS -eq 0 ]] || die "nginx answered $WRK_STATUS_ERRORS errors on $nginx_url"
        ref_rps+=("$WRK_RPS") ref_p50+=("$WRK_P50_MS") ref_p99+=("$WRK_P99_MS")
        log "$phase round $round: nginx $WRK_RPS req/s p99 $WRK_P99_MS ms"
    done
    A_RPS=$(median "${hub_rps[@]}") A_P50=$(median "${hub_p50[@]}") A_P99=$(median "${hub_p99[@]}")
    B_RPS=$(median "${ref_rps[@]}") B_P50=$(median "${ref_p50[@]}") B_P99=$(median "${ref_p99[@]}")
}

# Measures the idle hub: resident memory with $JWKS_KEYS keys, CPU over $IDLE_SECONDS.
measure_idle() {
    sleep 1
    local before after
    before=$(cpu_ticks "$HUB_PID")
    sleep "$IDLE_SECONDS"
    after=$(cpu_ticks "$HUB_PID")
    local ticks_per_s cpu_ms
    ticks_per_s=$(getconf CLK_TCK)
    cpu_ms=$(( (after - before) * 1000 / ticks_per_s ))
    IDLE_RSS_MB=$(awk -v k="$(rss_kb "$HUB_PID")" 'BEGIN {printf "%.1f", k / 1024}')
    IDLE_PRIVATE_MB=$(awk -v k="$(private_kb "$HUB_PID")" 'BEGIN {printf "%.1f", k / 1024}')
    IDLE_CPU_PCT=$(awk -v c="$cpu_ms" -v s="$IDLE_SECONDS" 'BEGIN {printf "%.2f", c / (s * 10)}')
    log "idle: RSS $IDLE_RSS_MB MB, CPU $cpu_ms ms in $IDLE_SECONDS s"
}

measure_jwks() {
    mirror_to_nginx "$HUB_URL/bench/jwks" bench/jwks
    compare_with_nginx "$HUB_URL/bench/jwks" "http://127.0.0.1:$NGINX_PORT/bench/jwks" jwks
    add_row "JWKS GET, $JWKS_KEYS RSA keys, $JWKS_CONNECTIONS conns (req/s)" "$A_RPS" "$B_RPS" \
        ">= 1.0x nginx" "$(ratio_at_least "$A_RPS" "$B_RPS" 1.0)"
    add_row "JWKS GET p50 latency (ms)" "$A_P50" "$B_P50" "-" info
    add_row "JWKS GET p99 latency (ms)" "$A_P99" "$B_P99" "< 2 ms" "$(below "$A_P99" 2)"
}

# Times $PROPAGATION_KEYS new keys from XADD to the first GET that serves them: $1 is the
# template JWK file, $2 its key type as the table names it.
measure_propagation() {
    local result
    result=$(bench_node propagation --redis-port "$REDIS_PORT" --url "$HUB_URL/bench/jwks" \
        --stream bench:jwks --jwk "$1" --count "$PROPAGATION_KEYS" --prefix "probe-${2// /-}-$$" \
        --mode get --retire true) || die "the propagation probe with $2 keys failed"
    local p99
    p99=$(json_get "$result" p99_ms)
    add_row "Key propagation XADD -> GET, $2, p50 of $PROPAGATION_KEYS (ms)" \
        "$(json_get "$result" p50_ms)" - - info
    add_row "Key propagation XADD -> GET, $2, p99 of $PROPAGATION_KEYS (ms)" "$p99" - "< 5 ms" \
        "$(below "$p99" 5)"
}

# shellcheck source=tests/bench/lib/phases.sh
source "$BENCH_DIR/lib/phases.sh"

main() {
    WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/kchub-bench.XXXXXX")
    install_tools
    build_release
    read -r REDIS_PORT HUB_PORT NGINX_PORT ISSUER_PORT FLEET_PORT REPLAY_PORT ADMIN_PORTS < <(
        bench_node free-ports --count 9 | tr -d '[]' | tr ',' ' ')
    read -r -a ADMIN_PORTS <<<"$ADMIN_PORTS"
    HUB_URL=http://127.0.0.1:$HUB_PORT
    log "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
        "kernel $(uname -r); load generator, servers and Redis share these cores"
    prepare_keys
    start_redis
    start_issuer
    start_main_hub
    start_nginx
    measure_idle
    measure_jwks
    measure_propagation "$WORK_DIR/template.jwk" RSA-2048
    measure_propagation "$WORK_DIR/ec-template.jwk" "EC P-256"
    measure_logout
    measure_scale
    measure_replay
    stop_all
    add_row "Idle RSS, 1 namespace with $JWKS_KEYS keys (MB)" "$IDLE_RSS_MB" - "< 10 MB" \
        "$(below "$IDLE_RSS_MB" 10)"
    add_row "Idle private memory (RSS less shared library pages) (MB)" "$IDLE_PRIVATE_MB" - - info
    add_row "Idle CPU over $IDLE_SECONDS s (% of one core)" "$IDLE_CPU_PCT" - "< 1 %" \
        "$(below "$IDLE_CPU_PCT" 1)"
    print_table
    finish_status
}

main
