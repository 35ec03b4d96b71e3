#!/usr/bin/env bash
# Runs the Dockerfile's stages without a Docker engine: each stage gets a fresh Debian 12 minbase
# root (made with debootstrap, cached as a tarball), and its WORKDIR, ENV, COPY and RUN steps run
# in that root with chroot, in the order the Dockerfile gives them. Then the images are checked
# the way a container would use them: the binaries start as the image's USER, and the hub stage's
# HEALTHCHECK command passes against a hub started in its root (on loopback, with a redis-server
# of this machine).
#
# Usage: tests/deploy/dockerfile_steps.sh   as root; installs debootstrap and zstd when missing
#   KCHUB_DEBIAN_ROOT_CACHE  the cached root (default /var/tmp/kchub-debian12-minbase.tar.zst);
#                            delete it to rebuild it with debootstrap
#   KCHUB_APT_ARCHIVE_CACHE  where downloaded .deb files are kept between runs
#                            (default /var/tmp/kchub-apt-archives)
# Prints "N passed, N failed" last and exits non-zero when a step or check failed.
set -uo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DOCKERFILE=$REPO_ROOT/Dockerfile
CACHE=${KCHUB_DEBIAN_ROOT_CACHE:-/var/tmp/kchub-debian12-minbase.tar.zst}
APT_ARCHIVES=${KCHUB_APT_ARCHIVE_CACHE:-/var/tmp/kchub-apt-archives}
SOURCES=/etc/apt/sources.list.d/debian.sources
# Docker's default PATH for RUN steps.
DEFAULT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
HEALTH_WAIT_S=20
# Runs of this script on one machine take turns: they share the caches (and apt's lock on them).
LOCK_FILE=/var/tmp/kchub-dockerfile-steps.lock
LOCK_WAIT_S=420

WORK_DIR=
PASSED=0
FAILED=0
declare -A STAGE_ROOT=()
STAGES=()
PIDS=()

log() { printf '\n=== %s\n' "$*"; }
die() { echo "dockerfile_steps: $*" >&2; exit 1; }
pass() { echo "ok: $*"; PASSED=$((PASSED + 1)); }
fail() { echo "FAILED: $*"; FAILED=$((FAILED + 1)); }

finish() {
    printf '%s passed, %s failed\n' "$PASSED" "$FAILED"
    if [[ $FAILED -gt 0 ]]; then exit 1; fi
    exit 0
}

# shellcheck disable=SC2317 # run by the EXIT trap
# Unmounts every stage root, stops what this script started, and removes the work folder.
cleanup() {
    local pid root d proc
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    for root in "${STAGE_ROOT[@]}"; do
        # Whatever still runs inside a stage root was started by a step of this script.
        for proc in /proc/[0-9]*; do
            if [[ $(readlink "$proc/root" 2>/dev/null) == "$root" ]]; then kill -9 "${proc#/proc/}" 2>/dev/null; fi
        done
    done
    for root in "${STAGE_ROOT[@]}"; do
        for d in var/cache/apt/archives dev/pts dev proc; do
            if mountpoint -q "$root/$d"; then umount "$root/$d" 2>/dev/null || umount -l "$root/$d"; fi
        done
    done
    if [[ -n $WORK_DIR && -d $WORK_DIR ]]; then
        if grep -q " $WORK_DIR/" /proc/mounts; then
            echo "dockerfile_steps: mounts remain under $WORK_DIR, not deleting it" >&2
        else
            rm -rf --one-file-system "$WORK_DIR"
        fi
    fi
}

check_tools() {
    [[ $EUID -eq 0 ]] || die "needs root (it uses debootstrap and chroot)"
    local tool missing=()
    for tool in debootstrap zstd; do command -v "$tool" >/dev/null || missing+=("$tool"); done
    if [[ ${#missing[@]} -gt 0 ]]; then
        echo "installing ${missing[*]} (apt-get)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" ||
            die "apt-get could not install ${missing[*]}; run apt-get update, or install them by hand"
    fi
    for tool in debootstrap zstd chroot redis-server curl python3; do
        command -v "$tool" >/dev/null ||
            die "$tool not found; scripts/install-deps.sh installs redis-server, curl and python3"
    done
    [[ -f $SOURCES ]] || die "$SOURCES not found; the root takes its apt sources from there"
}

# Builds the cached minbase root once: Debian 12 (bookworm) with this machine's apt sources and
# apt settings, as debian:12-slim would reach the same mirror.
build_cache() {
    if [[ -f $CACHE ]]; then
        echo "cached Debian 12 root: $CACHE"
        return
    fi
    log "building the Debian 12 root with debootstrap (once; cached as $CACHE)"
    local mirror root
    mirror=$(awk '$1 == "URIs:" { print $2; exit }' "$SOURCES")
    root=$WORK_DIR/debootstrap
    mkdir -p "$root"
    debootstrap --variant=minbase bookworm "$root" "$mirror" >"$WORK_DIR/debootstrap.log" 2>&1 ||
        die "debootstrap failed; see the last lines of its log:$(tail -n 20 "$WORK_DIR/debootstrap.log")"
    rm -f "$root/etc/apt/sources.list"
    cp "$SOURCES" "$root/etc/apt/sources.list.d/"
    cp /etc/apt/apt.conf.d/docker-* /etc/apt/apt.conf.d/99* "$root/etc/apt/apt.conf.d/" 2>/dev/null
    rm -f "$root/etc/apt/apt.conf.d/docker-clean" # keeps downloaded .deb files for the cache
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -I 'zstd -T0' --numeric-owner -C "$root" -cf "$CACHE.part" . || die "could not write $CACHE"
    mv "$CACHE.part" "$CACHE"
    rm -rf --one-file-system "$root"
}

# Prints the Dockerfile as one instruction per line: continuation lines joined, comments and
# blank lines left out.
dockerfile_instructions() {
    awk '
        /^[[:space:]]*#/ && line == "" { next }
        /^[[:space:]]*$/ { next }
        {
            text = $0
            if (sub(/\\[[:space:]]*$/, "", text)) { line = line text " "; next }
            print line text
            line = ""
        }' "$DOCKERFILE"
}

new_root() {
    local name=$1 root=$WORK_DIR/root-$1
    mkdir -p "$root"
    tar --zstd --numeric-owner -C "$root" -xpf "$CACHE" || die "could not unpack $CACHE"
    cp /etc/resolv.conf /etc/hosts "$root/etc/"
    mkdir -p "$APT_ARCHIVES/partial"
    mount --bind /proc "$root/proc"
    mount --bind /dev "$root/dev"
    mount --bind /dev/pts "$root/dev/pts"
    mount --bind "$APT_ARCHIVES" "$root/var/cache/apt/archives"
    STAGE_ROOT[$name]=$root
    STAGES+=("$name")
}

# Runs a command in a stage root as Docker runs a RUN step: sh -c, the stage's ENV, its WORKDIR
# and USER.
in_root() {
    local root=$1 user=$2 workdir=$3 command=$4
    shift 4
    local spec=()
    if [[ -n $user && $user != 0* && $user != root* ]]; then spec=(--userspec="$user"); fi
    chroot "${spec[@]}" "$root" /usr/bin/env -i PATH="$DEFAULT_PATH" HOME=/root "$@" \
        /bin/sh -c "cd \"\$0\" && $command" "$workdir"
}

# COPY [--from=STAGE] SRC... DEST, relative to the build context (the repository) or to that
# stage's root. A folder's contents are copied, as Docker does.
copy_step() {
    local root=$1 workdir=$2
    shift 2
    local source_root=$REPO_ROOT
    if [[ $1 == --from=* ]]; then
        source_root=${STAGE_ROOT[${1#--from=}]:-}
        [[ -n $source_root ]] || die "COPY $1: no earlier stage of that name"
        shift
    fi
    local args=("$@") dest=${!#} src target
    [[ $dest == /* ]] || dest=$workdir/$dest
    unset 'args[${#args[@]}-1]'
    if [[ ${#args[@]} -gt 1 || $dest == */ ]]; then mkdir -p "$root$dest"; fi
    for src in "${args[@]}"; do
        [[ -e $source_root/${src#/} ]] || die "COPY $src: not found in ${source_root}"
        target=$root$dest
        if [[ -d $source_root/${src#/} ]]; then
            mkdir -p "$target" && cp -a "$source_root/${src#/}/." "$target/" || return 1
        else
            if [[ $target != */ ]]; then mkdir -p "$(dirname "$target")"; fi
            cp -a "$source_root/${src#/}" "$target" || return 1
        fi
    done
}

# Runs every stage of the Dockerfile. A failed step fails its stage, and the stages after it
# that copy from it cannot run.
run_stages() {
    local line keyword rest stage='' root='' workdir=/ user='' started pairs words
    local -a envs=()
    while IFS= read -r line; do
        keyword=${line%% *}
        rest=${line#* }
        case ${keyword^^} in
        FROM)
            [[ $rest =~ ^debian:12-slim[[:space:]]+[Aa][Ss][[:space:]]+([a-z0-9_-]+)$ ]] ||
                die "FROM $rest: this check runs only 'FROM debian:12-slim AS NAME' stages"
            stage=${BASH_REMATCH[1]} workdir=/ user='' envs=()
            log "stage $stage"
            new_root "$stage"
            root=${STAGE_ROOT[$stage]} ;;
        WORKDIR)
            [[ $rest == /* ]] || rest=$workdir/$rest
            workdir=$rest
            mkdir -p "$root$workdir" ;;
        ENV) read -r -a pairs <<<"$rest"; envs+=("${pairs[@]}") ;;
        USER) user=$rest ;;
        COPY)
            read -r -a words <<<"$rest"
            copy_step "$root" "$workdir" "${words[@]}" || { fail "$stage: COPY $rest"; return 1; } ;;
        RUN)
            started=$SECONDS
            echo "RUN ${rest:0:100}..."
            if in_root "$root" "$user" "$workdir" "$rest" "${envs[@]}"; then
                pass "$stage: RUN step ($((SECONDS - started)) s)"
            else
                fail "$stage: RUN ${rest:0:100}"
                return 1
            fi ;;
        ADD | ONBUILD | SHELL) die "$keyword is not handled by this check; extend it or avoid $keyword" ;;
        esac
    done < <(dockerfile_instructions)
}

# Prints the value of NAME=VALUE from the ENV lines of the last stage.
stage_env() {
    dockerfile_instructions | awk -v name="$1" '
        toupper($1) == "FROM" { value = "" }
        toupper($1) == "ENV" { for (i = 2; i <= NF; i++) if (index($i, name "=") == 1) value = substr($i, length(name) + 2) }
        END { print value }'
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

check_demo_instance() {
    local root=${STAGE_ROOT[demo-instance]:-}
    [[ -n $root ]] || { fail "demo-instance stage missing"; return; }
    local tool
    for tool in "kc-cluster-ctl --version" "openssl version" "curl --version" "jq --version" \
        "bash -n /usr/local/bin/instance.sh" "bash -n /usr/local/bin/make-secrets.sh"; do
        if in_root "$root" 10003:10003 / "$tool >/dev/null"; then pass "demo-instance: $tool"
        else fail "demo-instance: '$tool' failed as user 10003"; fi
    done
}

# Starts the hub of the hub stage as its USER against a local redis-server and runs the
# HEALTHCHECK command of the Dockerfile in the same root.
check_hub() {
    local root=${STAGE_ROOT[hub]:-}
    [[ -n $root ]] || { fail "hub stage missing"; return; }
    if in_root "$root" 10001:10001 / "kc-cluster-hub --version >/dev/null"; then
        pass "hub: kc-cluster-hub starts as user 10001"
    else
        fail "hub: kc-cluster-hub --version failed as user 10001 (missing library?)"
    fi
    local redis_port public_port admin_port
    redis_port=$(free_port) public_port=$(free_port) admin_port=$(free_port)
    redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
        >"$WORK_DIR/redis.log" 2>&1 &
    PIDS+=($!)
    # exec: the background subshell becomes chroot, then the hub, so $! is the hub's PID.
    (exec chroot --userspec=10001:10001 "$root" /usr/bin/env -i PATH="$DEFAULT_PATH" \
        KCHUB_NAMESPACE=demo-app-dev KCHUB_REDIS_URL="redis://127.0.0.1:$redis_port" \
        KCHUB_LISTEN="127.0.0.1:$public_port" KCHUB_ADMIN_LISTEN="127.0.0.1:$admin_port" \
        kc-cluster-hub) >"$WORK_DIR/hub.log" 2>&1 &
    PIDS+=($!)
    local health
    health=$(dockerfile_instructions | sed -n 's/^HEALTHCHECK .* CMD //p' | tail -n 1)
    [[ -n $health ]] || { fail "hub: no HEALTHCHECK ... CMD in the Dockerfile"; return; }
    local deadline=$((SECONDS + HEALTH_WAIT_S))
    until in_root "$root" 10001:10001 / "$health" KCHUB_ADMIN_LISTEN="127.0.0.1:$admin_port" \
        >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            fail "hub: the HEALTHCHECK command did not pass within ${HEALTH_WAIT_S} s; hub log:"
            tail -n 20 "$WORK_DIR/hub.log"
            return
        fi
        sleep 0.5
    done
    pass "hub: the HEALTHCHECK command passes against the running hub"
    local admin_env
    admin_env=$(stage_env KCHUB_ADMIN_LISTEN)
    if [[ $admin_env == 0.0.0.0:* ]]; then pass "hub: the image binds the admin listener to every address"
    else fail "hub: ENV KCHUB_ADMIN_LISTEN is \"$admin_env\", expected 0.0.0.0:PORT"; fi
}

main() {
    check_tools
    exec 9>"$LOCK_FILE"
    if ! flock --nonblock 9; then
        echo "another run of this script holds $LOCK_FILE; waiting up to $LOCK_WAIT_S s"
        flock --wait "$LOCK_WAIT_S" 9 || die "$LOCK_FILE stayed locked for $LOCK_WAIT_S s"
    fi
    WORK_DIR=$(mktemp -d /var/tmp/kchub-dockerfile.XXXXXX)
    chmod 755 "$WORK_DIR"
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    build_cache
    if run_stages; then
        check_demo_instance
        check_hub
    fi
    finish
}

main "$@"
