#!/usr/bin/env bash
# Runs every test of kc-cluster-hub: installs the dependencies, builds twice (release, and with
# AddressSanitizer and UndefinedBehaviorSanitizer), runs the unit tests (ctest) in both builds,
# the integration tests (node --test, tests/integration/*.test.mjs) against the sanitizer build,
# so a leak or undefined behaviour in a binary fails the test that ran it, the deployment checks
# (tests/deploy: compose, Kubernetes, realm, and the Dockerfile's steps in a fresh Debian 12
# root) and the demo check (scripts/demo.sh --check) with the release build. The last line reads
# "N passed, N failed", summed over the suites; the exit status is non-zero when anything failed.
set -uo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=$REPO_ROOT/build
SANITIZER_BUILD_DIR=$REPO_ROOT/build-sanitize
INTEGRATION_DIR=$REPO_ROOT/tests/integration
# Bounds that keep the whole run well under 10 minutes.
CTEST_TEST_TIMEOUT_S=60
NODE_RUN_TIMEOUT_S=420
NODE_TEST_TIMEOUT_MS=120000
DEMO_TIMEOUT_S=120
BENCH_SMOKE_TIMEOUT_S=120
DEPLOY_TIMEOUT_S=180
DOCKERFILE_TIMEOUT_S=600

PASSED=0
FAILED=0

log() { printf '\n=== %s\n' "$*"; }

finish() {
    printf '%s passed, %s failed\n' "$PASSED" "$FAILED"
    if [[ $FAILED -gt 0 ]]; then exit 1; fi
    exit 0
}

run_unit_tests() {
    local build_dir=$1
    log "unit tests (ctest in ${build_dir#"$REPO_ROOT"/})"
    local output status=0
    output=$(mktemp)
    ctest --test-dir "$build_dir" --output-on-failure --timeout "$CTEST_TEST_TIMEOUT_S" 2>&1 |
        tee "$output" || status=$?
    local summary
    summary=$(grep -Eo '[0-9]+ tests failed out of [0-9]+' "$output" | tail -n 1)
    rm -f "$output"
    if [[ $summary =~ ^([0-9]+)\ tests\ failed\ out\ of\ ([0-9]+)$ ]]; then
        FAILED=$((FAILED + BASH_REMATCH[1]))
        PASSED=$((PASSED + BASH_REMATCH[2] - BASH_REMATCH[1]))
    elif [[ $status -ne 0 ]]; then
        echo "ctest failed with status $status and printed no summary"
        FAILED=$((FAILED + 1))
    fi
}

# Reads the pass, fail and cancelled counts from the TAP summary that node --test writes.
count_node_results() {
    local tap=$1 pass fail cancelled
    pass=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$tap" | tail -n 1)
    fail=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$tap" | tail -n 1)
    cancelled=$(sed -n 's/^# cancelled \([0-9]*\)$/\1/p' "$tap" | tail -n 1)
    if [[ -z $pass || -z $fail ]]; then
        return 1
    fi
    PASSED=$((PASSED + pass))
    FAILED=$((FAILED + fail + ${cancelled:-0}))
}

run_integration_tests() {
    log "integration tests (node --test)"
    local tap status=0
    tap=$(mktemp)
    (
        cd "$INTEGRATION_DIR" &&
            KCHUB_TEST_BUILD_DIR=$SANITIZER_BUILD_DIR \
                ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
                UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
            timeout --kill-after=10 "$NODE_RUN_TIMEOUT_S" node --test --test-concurrency=2 \
                --test-timeout="$NODE_TEST_TIMEOUT_MS" \
                --test-reporter=spec --test-reporter-destination=stdout \
                --test-reporter=tap --test-reporter-destination="$tap" \
                ./*.test.mjs
    ) || status=$?
    if [[ $status -eq 124 || $status -eq 137 ]]; then
        echo "node --test did not finish within ${NODE_RUN_TIMEOUT_S} s"
    fi
    if ! count_node_results "$tap"; then
        echo "node --test (status $status) wrote no test summary"
        FAILED=$((FAILED + 1))
    elif [[ $status -ne 0 && $status -ne 1 ]]; then
        FAILED=$((FAILED + 1))
    fi
    rm -f "$tap"
}

# The deployment checks: the static and Redis checks of tests/deploy/*.test.mjs (node --test),
# then the Dockerfile's steps in fresh Debian 12 roots (tests/deploy/dockerfile_steps.sh, about
# a minute with the root and the .deb files cached under /var/tmp, a little more without).
run_deploy_checks() {
    log "deployment checks (tests/deploy)"
    local tap status=0
    tap=$(mktemp)
    (
        cd "$REPO_ROOT/tests/deploy" &&
            timeout --kill-after=10 "$DEPLOY_TIMEOUT_S" node --test --test-concurrency=2 \
                --test-timeout="$NODE_TEST_TIMEOUT_MS" \
                --test-reporter=spec --test-reporter-destination=stdout \
                --test-reporter=tap --test-reporter-destination="$tap" ./*.test.mjs
    ) || status=$?
    if ! count_node_results "$tap"; then
        echo "node --test in tests/deploy (status $status) wrote no test summary"
        FAILED=$((FAILED + 1))
    elif [[ $status -ne 0 && $status -ne 1 ]]; then
        FAILED=$((FAILED + 1))
    fi
    rm -f "$tap"
    local output summary
    output=$(mktemp)
    status=0
    timeout --kill-after=10 "$DOCKERFILE_TIMEOUT_S" "$REPO_ROOT/tests/deploy/dockerfile_steps.sh" \
        </dev/null 2>&1 | tee "$output" || status=$?
    summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$output" | tail -n 1)
    rm -f "$output"
    if [[ $summary =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
        PASSED=$((PASSED + BASH_REMATCH[1]))
        FAILED=$((FAILED + BASH_REMATCH[2]))
    fi
    if [[ $status -ne 0 && ( -z $summary || ${BASH_REMATCH[2]:-0} -eq 0 ) ]]; then
        echo "tests/deploy/dockerfile_steps.sh failed with status $status"
        FAILED=$((FAILED + 1))
    fi
}

run_demo_check() {
    log "demo check (scripts/demo.sh --check)"
    if timeout --kill-after=10 "$DEMO_TIMEOUT_S" "$REPO_ROOT/scripts/demo.sh" --check </dev/null; then
        PASSED=$((PASSED + 1))
    else
        echo "scripts/demo.sh --check failed"
        FAILED=$((FAILED + 1))
    fi
}

# The benchmark in smoke mode: every measurement for a second or two, so the script keeps working.
# It fails only when a measurement could not be taken, never on a missed target.
run_bench_smoke() {
    log "benchmark smoke run (tests/bench/run.sh --smoke)"
    if timeout --kill-after=10 "$BENCH_SMOKE_TIMEOUT_S" "$REPO_ROOT/tests/bench/run.sh" --smoke \
        </dev/null; then
        PASSED=$((PASSED + 1))
    else
        echo "tests/bench/run.sh --smoke failed"
        FAILED=$((FAILED + 1))
    fi
}

log "dependencies (scripts/install-deps.sh)"
if ! "$REPO_ROOT/scripts/install-deps.sh"; then
    echo "scripts/install-deps.sh failed; no test ran"
    FAILED=$((FAILED + 1))
    finish
fi

log "build (scripts/build.sh)"
if ! "$REPO_ROOT/scripts/build.sh"; then
    echo "scripts/build.sh failed; no test ran"
    FAILED=$((FAILED + 1))
    finish
fi

log "sanitizer build (scripts/build.sh with AddressSanitizer and UndefinedBehaviorSanitizer)"
if ! KCHUB_BUILD_DIR=$SANITIZER_BUILD_DIR "$REPO_ROOT/scripts/build.sh" \
    -DCMAKE_BUILD_TYPE=Debug -DKCHUB_SANITIZE=address,undefined; then
    echo "the sanitizer build failed; no test ran"
    FAILED=$((FAILED + 1))
    finish
fi

run_unit_tests "$BUILD_DIR"
run_unit_tests "$SANITIZER_BUILD_DIR"
run_integration_tests
run_deploy_checks
run_demo_check
run_bench_smoke
finish
