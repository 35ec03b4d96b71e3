# Sourced by tests/bench/run.sh: the keys and servers the measurements need, and the logout, scale
# and replay measurements.

LOGOUT_KID=bench-realm-key
LOGOUT_CLIENT=bench-app

# Generates $JWKS_KEYS RSA-2048 keys for the served key set (their public JWKs, one per line, in
# keys.jsonl; the first one's also in template.jwk, whose material the probes reuse with new
# kids), an EC P-256 template (ec-template.jwk) and the realm's signing key for logout tokens.
prepare_keys() {
    mkdir -p "$WORK_DIR/keys"
    local i
    : >"$WORK_DIR/keys.jsonl"
    for ((i = 0; i < JWKS_KEYS; i++)); do
        generate_rsa_key "$WORK_DIR/keys/key-$i.pem"
        bench_node jwk --pem "$WORK_DIR/keys/key-$i.pem" --kid "bench-key-$i" >>"$WORK_DIR/keys.jsonl"
    done
    head -n 1 "$WORK_DIR/keys.jsonl" >"$WORK_DIR/template.jwk"
    bench_node jwk --kid ec-template >"$WORK_DIR/ec-template.jwk"
    generate_rsa_key "$WORK_DIR/keys/realm.pem"
    bench_node jwk --pem "$WORK_DIR/keys/realm.pem" --kid "$LOGOUT_KID" >"$WORK_DIR/realm.jwk"
}

start_issuer() {
    ISSUER=http://127.0.0.1:$ISSUER_PORT
    start_background issuer node "$BENCH_DIR/bench.mjs" issuer --port "$ISSUER_PORT" \
        --jwk "$WORK_DIR/realm.jwk"
    wait_until 10 "the issuer on port $ISSUER_PORT" http_ok "$ISSUER/.well-known/openid-configuration"
}

# Starts the hub serving namespace "bench" ($JWKS_KEYS keys, back-channel logout from the local
# issuer). Retired keys leave at once, so the propagation probe keeps the key set small.
start_main_hub() {
    local namespaces
    namespaces=$(printf '[{"name": "bench", "logout": {"issuer": "%s", "client_id": "%s", %s}}]' \
        "$ISSUER" "$LOGOUT_CLIENT" '"max_age_ms": 600000')
    write_hub_config "$WORK_DIR/hub.json" "$HUB_PORT" "$namespaces" 0 "${ADMIN_PORTS[0]}"
    start_hub hub "$WORK_DIR/hub.json" "$HUB_URL/bench/jwks"
    bench_node publish-keys --redis-port "$REDIS_PORT" --stream bench:jwks \
        --jwks "$WORK_DIR/keys.jsonl" >/dev/null || die "publishing the benchmark keys failed"
    bench_node wait-keys --url "$HUB_URL/bench/jwks" --count "$JWKS_KEYS" --timeout-ms 10000 \
        >/dev/null || die "the hub did not serve the $JWKS_KEYS benchmark keys"
}

# POSTs $LOGOUT_TOKENS pre-signed RS256 logout tokens with wrk and times each from its POST to
# its notice at a pub/sub subscriber.
measure_logout() {
    local tokens=$WORK_DIR/tokens.txt signed
    signed=$(bench_node sign-tokens --pem "$WORK_DIR/keys/realm.pem" --kid "$LOGOUT_KID" \
        --issuer "$ISSUER" --audience "$LOGOUT_CLIENT" --count "$LOGOUT_TOKENS" --out "$tokens") ||
        die "signing the logout tokens failed"
    log "signed $LOGOUT_TOKENS logout tokens in $(json_get "$signed" took_ms) ms"
    start_background subscriber node "$BENCH_DIR/bench.mjs" subscribe --redis-port "$REDIS_PORT" \
        --channel bench:logout --out "$WORK_DIR/arrived.txt" --ready "$WORK_DIR/subscribed" \
        --expect "$LOGOUT_TOKENS" --idle-ms 1000 --timeout-ms 60000
    local subscriber=$LAST_PID
    wait_until 10 "the notice subscriber" test -f "$WORK_DIR/subscribed"

    # Each wrk thread stops when its tokens are used up, but wrk's main thread sleeps for the
    # whole -d, so wrk is interrupted (it then prints its result) once the subscriber is done.
    profile_start logout "$HUB_PID" 2
    start_background logout-wrk wrk -t "$WRK_THREADS" -c "$LOGOUT_CONNECTIONS" -d 60s \
        --timeout 10s -s "$BENCH_DIR/logout.lua" "$HUB_URL/bench/backchannel-logout" -- \
        "$tokens" "$WORK_DIR/sent" /bench/backchannel-logout "$WRK_THREADS"
    local wrk_pid=$LAST_PID
    wait "$subscriber" || die "the notice subscriber failed; see $WORK_DIR/subscriber.log"
    profile_finish logout
    kill -INT "$wrk_pid" 2>/dev/null || true
    wait "$wrk_pid" || die "wrk for the logout run failed; see $WORK_DIR/logout-wrk.log"
    read_wrk_result "$(cat "$WORK_DIR/logout-wrk.log")" logout

    local latency delivered rate
    latency=$(bench_node logout-latency --sent-prefix "$WORK_DIR/sent" \
        --arrived "$WORK_DIR/arrived.txt") || die "joining the logout stamps failed"
    delivered=$(json_get "$latency" count)
    log "logout: $WRK_REQUESTS requests, $WRK_STATUS_ERRORS error answers, $delivered notices" \
        "matched, in $(json_get "$latency" seconds) s from the first POST to the last notice"
    if [[ $delivered -lt $((LOGOUT_TOKENS * 99 / 100)) ]]; then
        die "only $delivered of $LOGOUT_TOKENS logouts reached the subscriber; see $WORK_DIR/hub.log"
    fi
    rate=$(json_get "$latency" per_second)
    add_row "Logout RS256, $LOGOUT_CONNECTIONS conns (logouts/s)" "$rate" - ">= 5000/s" \
        "$(at_least "$rate" 5000)"
    add_row "Logout POST -> 200, p99 (ms)" "$WRK_P99_MS" - - info
    add_row "Logout POST -> notice at subscriber, p50 (ms)" "$(json_get "$latency" p50_ms)" - - info
    add_row "Logout POST -> notice at subscriber, p99 (ms)" "$(json_get "$latency" p99_ms)" - \
        "< 5 ms" "$(below "$(json_get "$latency" p99_ms)" 5)"
}

# A second hub with $SCALE_KEYS live EC P-256 keys in one namespace: the cost of one more event (XADD to
# the ETag of the rebuilt body), JWKS throughput against nginx serving the same bytes, and RSS.
measure_scale() {
    local namespaces='[{"name": "fleet"}]' url=http://127.0.0.1:$FLEET_PORT/fleet/jwks
    write_hub_config "$WORK_DIR/fleet.json" "$FLEET_PORT" "$namespaces" 120000 \
        "${ADMIN_PORTS[1]}"
    local main_hub=$HUB_PID
    start_hub fleet "$WORK_DIR/fleet.json" "$url"
    bench_node fill-stream --redis-port "$REDIS_PORT" --stream fleet:jwks \
        --keys "$SCALE_KEYS" --rounds 1 --prefix fleet >/dev/null ||
        die "filling fleet:jwks failed"
    bench_node wait-keys --url "$url" --count "$SCALE_KEYS" --timeout-ms 60000 >/dev/null ||
        die "the hub did not serve $SCALE_KEYS keys"

    profile_start scale-event "$HUB_PID" 3
    local result
    result=$(bench_node propagation --redis-port "$REDIS_PORT" --url "$url" --stream fleet:jwks \
        --jwk "$WORK_DIR/ec-template.jwk" --count "$SCALE_EVENTS" --prefix "more-$$" --mode head) ||
        die "the event probe at $SCALE_KEYS keys failed"
    profile_finish scale-event
    local p99
    p99=$(json_get "$result" p99_ms)
    add_row "$SCALE_KEYS EC keys: one more event, XADD -> new ETag, p50 (ms)" \
        "$(json_get "$result" p50_ms)" - - info
    add_row "$SCALE_KEYS EC keys: one more event, XADD -> new ETag, p99 (ms)" "$p99" - "< 5 ms" \
        "$(below "$p99" 5)"

    mirror_to_nginx "$url" fleet/jwks
    local body_kb
    body_kb=$(( $(stat -c %s "$WORK_DIR/www/fleet/jwks") / 1024 ))
    compare_with_nginx "$url" "http://127.0.0.1:$NGINX_PORT/fleet/jwks" scale-jwks
    add_row "$SCALE_KEYS EC keys: JWKS GET, $body_kb kB body, $JWKS_CONNECTIONS conns (req/s)" \
        "$A_RPS" "$B_RPS" - info
    local rss_mb
    rss_mb=$(awk -v k="$(rss_kb "$HUB_PID")" 'BEGIN {printf "%.1f", k / 1024}')
    add_row "$SCALE_KEYS EC keys: RSS after load (MB)" "$rss_mb" - "< 64 MB" "$(below "$rss_mb" 64)"
    stop_pid "$HUB_PID"
    HUB_PID=$main_hub
}

# Fills a stream with $REPLAY_KEYS EC P-256 keys published $REPLAY_ROUNDS times each (renewals, as a fleet
# writes them), then starts a hub $REPLAY_RUNS times and times each start until GET returns 200.
measure_replay() {
    local entries=$((REPLAY_KEYS * REPLAY_ROUNDS)) url=http://127.0.0.1:$REPLAY_PORT/replay/jwks
    bench_node fill-stream --redis-port "$REDIS_PORT" --stream replay:jwks \
        --keys "$REPLAY_KEYS" --rounds "$REPLAY_ROUNDS" --prefix replay >/dev/null ||
        die "filling replay:jwks failed"
    write_hub_config "$WORK_DIR/replay.json" "$REPLAY_PORT" '[{"name": "replay"}]' 120000 \
        "${ADMIN_PORTS[2]}"
    local result
    result=$(bench_node startup --hub "$BUILD_DIR/kc-cluster-hub" --config "$WORK_DIR/replay.json" \
        --url "$url" --runs "$REPLAY_RUNS" --timeout-ms 30000 --log "$WORK_DIR/replay-hub.log") ||
        die "timing the replay of $entries entries failed"
    local ready_ms
    ready_ms=$(json_get "$result" median_ms)
    log "replay of $entries entries: $(json_get "$result" runs) ms to ready"
    add_row "Startup: replay $entries EC key entries to ready, median of $REPLAY_RUNS (ms)" "$ready_ms" - \
        "< 2000 ms" "$(below "$ready_ms" 2000)"
}
