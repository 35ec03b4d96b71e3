#!/usr/bin/env bash
# A demo application instance for deploy/docker-compose.yml. It makes its own RSA key, publishes
# the public half with 'kc-cluster-ctl publish' and waits until the key is safe to sign with (the
# ctl's ready file). Then it logs in to Keycloak with client_credentials and a client assertion
# that it signs with openssl (RS256). It prints every back-channel logout notice that
# 'kc-cluster-ctl listen' receives, one line each, starting with "logout notice: ".
#
# Usage: instance.sh [run]                  the demo loop, until SIGTERM or SIGINT
#        instance.sh password-login USER    reads USER's password from stdin, logs USER in with
#                                           the password grant as this instance's client, and
#                                           prints {"sub":...,"sid":...} of the session
# Environment: KCHUB_NAMESPACE, KCHUB_INSTANCE, KCHUB_REDIS_* (passed on to kc-cluster-ctl),
#   DEMO_KEYCLOAK_URL (http://keycloak:8080), DEMO_REALM (demo), DEMO_CLIENT_ID (demo-app),
#   DEMO_JWKS_URL (the hub's JWKS URL of the namespace), DEMO_LOGIN_INTERVAL_S (300),
#   DEMO_WORK_DIR (/tmp/kc-demo), DEMO_READY_TIMEOUT_S (120), DEMO_LOGIN_ATTEMPTS (30).
set -euo pipefail

KEYCLOAK_URL=${DEMO_KEYCLOAK_URL:-http://keycloak:8080}
REALM=${DEMO_REALM:-demo}
CLIENT_ID=${DEMO_CLIENT_ID:-demo-app}
NAMESPACE=${KCHUB_NAMESPACE:?set KCHUB_NAMESPACE to the hub namespace}
JWKS_URL=${DEMO_JWKS_URL:-http://hub:8080/$NAMESPACE/jwks}
WORK_DIR=${DEMO_WORK_DIR:-/tmp/kc-demo}
LOGIN_INTERVAL_S=${DEMO_LOGIN_INTERVAL_S:-300}
READY_TIMEOUT_S=${DEMO_READY_TIMEOUT_S:-120}
LOGIN_ATTEMPTS=${DEMO_LOGIN_ATTEMPTS:-30}
LOGIN_RETRY_S=5
KEY_FILE=$WORK_DIR/instance-key.pem
READY_FILE=$WORK_DIR/ready.json
TOKEN_URL=$KEYCLOAK_URL/realms/$REALM/protocol/openid-connect/token
DISCOVERY_URL=$KEYCLOAK_URL/realms/$REALM/.well-known/openid-configuration
CURL=(curl --silent --show-error --max-time 10)

log() { printf 'instance %s: %s\n' "${KCHUB_INSTANCE:-?}" "$*" >&2; }

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

# Decodes the payload of a JWT (without checking it: the token comes straight from Keycloak).
jwt_payload() {
    local part
    part=$(cut -d . -f 2 <<<"$1" | tr -- '-_' '+/')
    while ((${#part} % 4)); do part+='='; done
    openssl base64 -d -A <<<"$part"
}

# Prints a client assertion for CLIENT_ID: RS256 over header.payload with the instance's key,
# audience the realm's issuer (from discovery), valid for 60 seconds, a fresh jti.
client_assertion() {
    local kid issuer now header payload input signature
    kid=$(jq -er '.kids[0]' "$READY_FILE")
    issuer=$("${CURL[@]}" --fail "$DISCOVERY_URL" | jq -er .issuer)
    now=$(date +%s)
    header=$(jq -cn --arg kid "$kid" '{alg: "RS256", typ: "JWT", kid: $kid}')
    payload=$(jq -cn --arg client "$CLIENT_ID" --arg aud "$issuer" --arg jti "$(openssl rand -hex 16)" \
        --argjson now "$now" '{iss: $client, sub: $client, aud: $aud, jti: $jti, iat: $now, exp: ($now + 60)}')
    input="$(printf '%s' "$header" | b64url).$(printf '%s' "$payload" | b64url)"
    signature=$(printf '%s' "$input" | openssl dgst -sha256 -sign "$KEY_FILE" -binary | b64url)
    printf '%s.%s' "$input" "$signature"
}

# Posts a token request with a client assertion and the form fields given as NAME=VALUE. With
# SECRET_FIELD set, that field's value is read from stdin, so a password never appears in a
# process list. Prints the response body, and fails when Keycloak returns an error.
token_request() {
    local assertion response form=()
    assertion=$(client_assertion) || return 1
    form=(--data-urlencode "client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        --data-urlencode "client_assertion=$assertion")
    local field
    for field in "$@"; do form+=(--data-urlencode "$field"); done
    if [[ -n ${SECRET_FIELD:-} ]]; then form+=(--data-urlencode "$SECRET_FIELD@-"); fi
    response=$("${CURL[@]}" --write-out '\n%{http_code}' "${form[@]}" "$TOKEN_URL" 2>&1) || true
    local status=${response##*$'\n'} body=${response%$'\n'*}
    if [[ $status != 200 ]]; then
        log "token request failed with HTTP status ${status:-none}: ${body:0:300}"
        return 1
    fi
    printf '%s' "$body"
}

login_client_credentials() {
    local response
    response=$(token_request grant_type=client_credentials </dev/null) || return 1
    log "client_credentials login succeeded: $CLIENT_ID got a $(jq -r .token_type <<<"$response")" \
        "access token for $(jq -r .expires_in <<<"$response") s, signed with kid $(jq -r '.kids[0]' "$READY_FILE")"
}

# Starts the two ctl processes: publish (which retires the key when it stops) and listen.
start_ctl() {
    mkdir -p "$WORK_DIR"
    (umask 077 && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$KEY_FILE" 2>/dev/null)
    kc-cluster-ctl publish --namespace "$NAMESPACE" --key "$KEY_FILE" --jwks-url "$JWKS_URL" \
        --ready-file "$READY_FILE" &
    PUBLISH_PID=$!
    kc-cluster-ctl listen --namespace "$NAMESPACE" > >(while IFS= read -r line; do
        printf 'logout notice: %s\n' "$line"
    done) &
    LISTEN_PID=$!
}

stop_ctl() {
    log "stopping: the key is retired and the listener ends"
    kill -TERM "$PUBLISH_PID" "$LISTEN_PID" ${SLEEP_PID:+"$SLEEP_PID"} 2>/dev/null || true
    wait "$PUBLISH_PID" "$LISTEN_PID" 2>/dev/null || true
    exit 0
}

# Sleeps in the background, so that SIGTERM runs stop_ctl at once and stop_ctl ends the sleep.
pause() {
    sleep "$1" &
    SLEEP_PID=$!
    wait "$SLEEP_PID" || true
    SLEEP_PID=
}

wait_until_ready() {
    local deadline=$((SECONDS + READY_TIMEOUT_S))
    until [[ -s $READY_FILE ]]; do
        if ! kill -0 "$PUBLISH_PID" 2>/dev/null; then
            log "kc-cluster-ctl publish exited before the key was safe to sign with; see its log above"
            exit 1
        fi
        if ((SECONDS >= deadline)); then
            log "the key was not safe to sign with within $READY_TIMEOUT_S s; is the hub at $JWKS_URL serving it?"
            exit 1
        fi
        pause 1
    done
    log "key $(jq -r '.kids[0]' "$READY_FILE") is served by the hub and safe to sign with"
}

run_demo() {
    trap stop_ctl TERM INT
    start_ctl
    wait_until_ready
    local attempt=1
    until login_client_credentials; do
        if ((attempt >= LOGIN_ATTEMPTS)); then
            log "client_credentials login failed $attempt times; giving up"
            kill -TERM "$PUBLISH_PID" "$LISTEN_PID" 2>/dev/null || true
            exit 1
        fi
        attempt=$((attempt + 1))
        pause "$LOGIN_RETRY_S"
    done
    while true; do
        pause "$LOGIN_INTERVAL_S"
        login_client_credentials || true
    done
}

# Logs a user in with the password grant, so that Keycloak keeps a session of this client that
# a logout can end. Prints the session's subject and session ID, not the tokens.
password_login() {
    local user=$1 password response
    [[ -s $READY_FILE ]] || { log "no key is ready yet ($READY_FILE missing); wait for the demo loop"; exit 1; }
    IFS= read -r password || { log "the password was expected on stdin"; exit 2; }
    response=$(printf '%s' "$password" |
        SECRET_FIELD=password token_request grant_type=password scope=openid "username=$user") || exit 1
    jwt_payload "$(jq -er .access_token <<<"$response")" | jq -c '{sub, sid}'
}

case ${1:-run} in
run) run_demo ;;
password-login)
    [[ $# -eq 2 ]] || { log "usage: instance.sh password-login USER (password on stdin)"; exit 2; }
    password_login "$2" ;;
*) log "unknown command \"$1\"; expected run or password-login USER"; exit 2 ;;
esac
