#!/usr/bin/env bash
# Brings up deploy/docker-compose.yml (Keycloak, Redis with TLS and ACL users, the hub, two demo
# instances), then runs the two flows against the real Keycloak:
#   login   both instances publish their keys through the hub and get a client_credentials
#           token with a signed JWT client assertion
#   logout  the test user logs in (password grant, through instance-a, so the session belongs to
#           the demo client), an admin logs the user out through Keycloak's admin REST API, and
#           both instances print the back-channel logout notice for that session
# and tears the stack down, volumes included. Needs a Docker engine with the compose plugin, curl
# and jq, and the host ports 127.0.0.1:8080, 8081 and 8180 free.
#
# Exit status: 0 when every check passed, 1 when one failed, 77 when Docker, the compose plugin,
# curl or jq is missing here, so nothing was tested. Set KEEP_STACK=1 to leave the stack running.
set -uo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
COMPOSE_FILE=$REPO_ROOT/deploy/docker-compose.yml
PROJECT=kc-cluster-hub-compose-test
EXIT_NOT_TESTED=77
HUB_URL=http://127.0.0.1:8080
ADMIN_URL=http://127.0.0.1:8081
KEYCLOAK_URL=http://127.0.0.1:8180
NAMESPACE=demo-app-dev
REALM=demo
TEST_USER=demo-user
# The issuer the realm's tokens carry (KC_HOSTNAME in docker-compose.yml).
ISSUER=http://localhost:8180/realms/demo
BUILD_TIMEOUT_S=1800
UP_TIMEOUT_S=300
KEYCLOAK_TIMEOUT_S=300
READY_TIMEOUT_S=180
LOGIN_TIMEOUT_S=300
NOTICE_TIMEOUT_S=60

PASSED=0
FAILED=0
WORK_DIR=
STACK_STARTED=

log() { printf '\n=== %s\n' "$*"; }
pass() { echo "ok: $*"; PASSED=$((PASSED + 1)); }
fail() { echo "FAILED: $*"; FAILED=$((FAILED + 1)); }
not_tested() { echo "compose-test: $*; nothing was tested" >&2; exit "$EXIT_NOT_TESTED"; }
compose() { docker compose --project-name "$PROJECT" --file "$COMPOSE_FILE" "$@"; }
http() { curl --silent --show-error --max-time 10 "$@"; }

check_prerequisites() {
    command -v docker >/dev/null || not_tested "docker not found"
    docker info >/dev/null 2>&1 || not_tested "no Docker engine answers ('docker info' failed)"
    docker compose version >/dev/null 2>&1 || not_tested "the Docker compose plugin is missing"
    command -v curl >/dev/null || not_tested "curl not found"
    command -v jq >/dev/null || not_tested "jq not found"
}

# Prints what each service logged, for a failed run.
show_logs() {
    log "service state and logs"
    compose ps --all
    local service
    for service in make-secrets redis keycloak hub instance-a instance-b; do
        echo "--- $service (last 60 lines)"
        compose logs --no-color --tail 60 "$service" 2>&1
    done
}

teardown() {
    local rc=$?
    trap - EXIT
    if [[ -n $STACK_STARTED ]]; then
        if ((FAILED > 0 || rc != 0)); then show_logs; fi
        if [[ -n ${KEEP_STACK:-} ]]; then
            echo "KEEP_STACK is set: the stack stays up; stop it with:"
            echo "  docker compose --project-name $PROJECT --file $COMPOSE_FILE down --volumes"
        else
            compose down --volumes --remove-orphans >/dev/null 2>&1
        fi
    fi
    if [[ -n $WORK_DIR ]]; then rm -rf "$WORK_DIR"; fi
    printf '%s passed, %s failed\n' "$PASSED" "$FAILED"
    if ((FAILED > 0)); then exit 1; fi
    exit "$rc"
}

# Runs CHECK (a function name) every 2 s until it succeeds or TIMEOUT_S passes.
wait_for() {
    local check=$2 deadline=$((SECONDS + $1))
    until "$check"; do
        if ((SECONDS >= deadline)); then return 1; fi
        sleep 2
    done
}

start_stack() {
    log "building the images (docker compose build)"
    if ! timeout "$BUILD_TIMEOUT_S" docker compose --project-name "$PROJECT" --file "$COMPOSE_FILE" build; then
        fail "docker compose build failed or took over $BUILD_TIMEOUT_S s"
        return 1
    fi
    log "starting the stack"
    STACK_STARTED=1
    if ! timeout "$UP_TIMEOUT_S" docker compose --project-name "$PROJECT" --file "$COMPOSE_FILE" \
        up --detach --no-build; then
        fail "docker compose up failed or took over $UP_TIMEOUT_S s"
        return 1
    fi
    pass "the stack started"
}

keycloak_up() { http --fail --output /dev/null "$KEYCLOAK_URL/realms/$REALM/.well-known/openid-configuration" 2>/dev/null; }
hub_ready() { [[ $(http --output /dev/null --write-out '%{http_code}' "$ADMIN_URL/readyz" 2>/dev/null) == 200 ]]; }
logged_in() { instance_logs instance-a | grep -q 'client_credentials login succeeded' &&
    instance_logs instance-b | grep -q 'client_credentials login succeeded'; }
instance_logs() { compose logs --no-color --no-log-prefix "$1" 2>/dev/null; }

check_services() {
    log "waiting for Keycloak, the hub and the logins"
    if wait_for "$KEYCLOAK_TIMEOUT_S" keycloak_up; then pass "Keycloak serves the $REALM realm"
    else fail "Keycloak did not serve $KEYCLOAK_URL/realms/$REALM within $KEYCLOAK_TIMEOUT_S s"; return 1; fi
    if wait_for "$READY_TIMEOUT_S" hub_ready; then pass "the hub is ready (GET /readyz on the admin port)"
    else fail "the hub's /readyz did not answer 200 within $READY_TIMEOUT_S s"; return 1; fi
    if http --fail "$ADMIN_URL/metrics" | grep -q '^kc_cluster_hub_'; then pass "the hub serves /metrics"
    else fail "GET $ADMIN_URL/metrics has no kc_cluster_hub_ metric"; fi
    if wait_for "$LOGIN_TIMEOUT_S" logged_in; then pass "both instances logged in with client_credentials"
    else fail "the instances did not both log in within $LOGIN_TIMEOUT_S s"; return 1; fi
}

# Both instances' kids, from their ready files, must be in the hub's JWKS.
check_jwks() {
    local jwks instance kid
    jwks=$(http --fail "$HUB_URL/$NAMESPACE/jwks") || { fail "GET $HUB_URL/$NAMESPACE/jwks failed"; return; }
    for instance in instance-a instance-b; do
        kid=$(compose exec -T "$instance" jq -r '.kids[0]' /tmp/kc-demo/ready.json 2>/dev/null)
        if [[ -n $kid ]] && jq -e --arg kid "$kid" 'any(.keys[]; .kid == $kid)' <<<"$jwks" >/dev/null; then
            pass "the hub serves the key of $instance ($kid)"
        else
            fail "the JWKS lacks the key of $instance (kid \"$kid\"): $jwks"
        fi
    done
}

# Gets an admin access token and writes its Authorization header to a file, so that neither the
# token nor the password appears in a process list.
admin_login() {
    local password response
    # shellcheck disable=SC2016 # bash in the Keycloak container expands it
    password=$(compose exec -T keycloak bash -c 'printf %s "$(</secrets/keycloak-admin-password)"') ||
        { fail "could not read the Keycloak admin password from the secrets volume"; return 1; }
    response=$(printf '%s' "$password" | http --data-urlencode grant_type=password \
        --data-urlencode client_id=admin-cli --data-urlencode username=admin \
        --data-urlencode password@- "$KEYCLOAK_URL/realms/master/protocol/openid-connect/token")
    local token
    token=$(jq -er .access_token <<<"$response" 2>/dev/null) ||
        { fail "the Keycloak admin login failed: ${response:0:300}"; return 1; }
    (umask 077 && printf 'Authorization: Bearer %s\n' "$token" >"$WORK_DIR/admin-header")
}

admin_api() {
    local method=$1 path=$2
    shift 2
    http --header @"$WORK_DIR/admin-header" --request "$method" "$@" "$KEYCLOAK_URL/admin/realms/$REALM$path"
}

# Waits until INSTANCE printed a logout notice for SID and checks its members.
check_notice() {
    local instance=$1 sid=$2 user_id=$3 deadline=$((SECONDS + NOTICE_TIMEOUT_S)) notice=
    while ((SECONDS < deadline)); do
        notice=$(instance_logs "$instance" | sed -n 's/^logout notice: //p' |
            jq -c --arg sid "$sid" 'select(.sid == $sid)' 2>/dev/null | head -n 1)
        if [[ -n $notice ]]; then break; fi
        sleep 1
    done
    if [[ -z $notice ]]; then
        fail "$instance printed no logout notice for session $sid within $NOTICE_TIMEOUT_S s"
        return
    fi
    if jq -e --arg iss "$ISSUER" --arg sub "$user_id" '.iss == $iss and .sub == $sub' <<<"$notice" >/dev/null; then
        pass "$instance printed the logout notice of session $sid"
    else
        fail "$instance printed a notice with the wrong iss or sub (expected $ISSUER, $user_id): $notice"
    fi
}

check_logout() {
    log "logout flow"
    admin_login || return
    local user_id password session status
    user_id=$(admin_api GET "/users?username=$TEST_USER&exact=true" | jq -er '.[0].id') ||
        { fail "the realm has no user $TEST_USER"; return; }
    password=$(openssl rand -hex 16 2>/dev/null || head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
    status=$(jq -cn --arg value "$password" '{type: "password", value: $value, temporary: false}' |
        admin_api PUT "/users/$user_id/reset-password" --header 'Content-Type: application/json' \
            --data-binary @- --output /dev/null --write-out '%{http_code}')
    [[ $status == 204 ]] || { fail "setting the password of $TEST_USER answered $status"; return; }
    session=$(printf '%s' "$password" | compose exec -T instance-a instance.sh password-login "$TEST_USER")
    local sid
    sid=$(jq -er .sid <<<"$session" 2>/dev/null) ||
        { fail "the password login of $TEST_USER through instance-a failed: $session"; return; }
    pass "$TEST_USER has a session of the demo client (sid $sid)"
    status=$(admin_api POST "/users/$user_id/logout" --output /dev/null --write-out '%{http_code}')
    [[ $status == 204 ]] || { fail "the admin logout of $TEST_USER answered $status"; return; }
    pass "Keycloak logged $TEST_USER out"
    check_notice instance-a "$sid" "$user_id"
    check_notice instance-b "$sid" "$user_id"
}

main() {
    check_prerequisites
    WORK_DIR=$(mktemp -d)
    trap teardown EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    start_stack || exit 1
    check_services || exit 1
    check_jwks
    check_logout
}

main "$@"
