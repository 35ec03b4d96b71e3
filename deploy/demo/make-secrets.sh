#!/usr/bin/env bash
# Makes the secrets of the compose demo in SECRETS_DIR (default /secrets, a volume), once: a CA
# and a certificate for the Redis server (name "redis", the compose service), the Redis password
# of the hub and of the demo instances, Redis's ACL file with those passwords as SHA-256 hashes,
# and the Keycloak admin password. Each key, password and the ACL file belongs to the one user ID
# that reads it, mode 0400, so the containers, which run as different users, cannot read each
# other's secrets; the certificates are public (0444). Runs as root; on a volume that already
# holds a complete set it changes nothing.
set -euo pipefail

SECRETS_DIR=${SECRETS_DIR:-/secrets}
ACL_TEMPLATE=${ACL_TEMPLATE:-/usr/local/share/kc-demo/users.acl}
# User IDs: the hub and the demo instances as their images set them (Dockerfile), Redis as
# docker-compose.yml runs it, and Keycloak as its official image runs it.
HUB_UID=10001
REDIS_UID=10002
INSTANCE_UID=10003
KEYCLOAK_UID=1000
CERT_DAYS=30

log() { printf 'make-secrets: %s\n' "$*" >&2; }

# Writes stdin to FILE, owned by UID, mode 0400.
install_secret() {
    local file=$1 uid=$2
    cat >"$SECRETS_DIR/$file.part"
    chown "$uid:$uid" "$SECRETS_DIR/$file.part"
    chmod 0400 "$SECRETS_DIR/$file.part"
    mv "$SECRETS_DIR/$file.part" "$SECRETS_DIR/$file"
}

new_password() { openssl rand -hex 24; }

sha256_hex() { printf '%s' "$1" | openssl dgst -sha256 -r | cut -d ' ' -f 1; }

# A CA and a server certificate for "redis" signed by it; the CA key is deleted afterwards, so
# nothing else can be signed with it.
make_certificates() {
    local work=$1
    openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -sha256 \
        -days "$CERT_DAYS" -subj "/CN=kc-cluster-hub demo CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$work/ca.key" -out "$work/ca.crt" 2>/dev/null
    openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -sha256 \
        -subj "/CN=redis" -keyout "$work/redis.key" -out "$work/redis.csr" 2>/dev/null
    printf '%s\n' "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" \
        "subjectAltName=DNS:redis" >"$work/redis.ext"
    openssl x509 -req -in "$work/redis.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" \
        -CAcreateserial -days "$CERT_DAYS" -sha256 -extfile "$work/redis.ext" \
        -out "$work/redis.crt" 2>/dev/null
    openssl verify -CAfile "$work/ca.crt" "$work/redis.crt" >/dev/null
    install -m 0444 "$work/ca.crt" "$SECRETS_DIR/ca.crt"
    install -m 0444 "$work/redis.crt" "$SECRETS_DIR/redis.crt"
    install_secret redis.key "$REDIS_UID" <"$work/redis.key"
}

# Fills in the ACL template: drops its comment lines (Redis's ACL file format has none) and puts
# each password's SHA-256 where the template names it.
make_acl_file() {
    local hub_hash=$1 instance_hash=$2
    [[ -f $ACL_TEMPLATE ]] || { log "ACL template $ACL_TEMPLATE not found"; exit 1; }
    grep -v -e '^#' -e '^[[:space:]]*$' "$ACL_TEMPLATE" |
        sed -e "s/@HUB_PASSWORD_SHA256@/$hub_hash/" -e "s/@INSTANCE_PASSWORD_SHA256@/$instance_hash/" |
        install_secret users.acl "$REDIS_UID"
    if grep -q '@[A-Z_]*@' "$SECRETS_DIR/users.acl"; then
        log "the ACL template names a password this script does not make: $ACL_TEMPLATE"
        exit 1
    fi
}

main() {
    [[ $EUID -eq 0 ]] || { log "must run as root, to give each secret its reader's user ID"; exit 1; }
    mkdir -p "$SECRETS_DIR"
    if [[ -f $SECRETS_DIR/complete ]]; then
        log "$SECRETS_DIR already holds the secrets; nothing to do"
        return
    fi
    umask 077
    local hub_password instance_password
    WORK_DIR=$(mktemp -d)
    trap 'rm -rf "$WORK_DIR"' EXIT
    make_certificates "$WORK_DIR"
    hub_password=$(new_password)
    instance_password=$(new_password)
    printf '%s' "$hub_password" | install_secret hub-redis-password "$HUB_UID"
    printf '%s' "$instance_password" | install_secret instance-redis-password "$INSTANCE_UID"
    make_acl_file "$(sha256_hex "$hub_password")" "$(sha256_hex "$instance_password")"
    new_password | tr -d '\n' | install_secret keycloak-admin-password "$KEYCLOAK_UID"
    touch "$SECRETS_DIR/complete"
    log "made the CA, the Redis certificate for \"redis\", the ACL file and the passwords in $SECRETS_DIR"
}

main "$@"
