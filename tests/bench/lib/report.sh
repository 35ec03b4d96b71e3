# Sourced by tests/bench/run.sh: the result table, its pass/fail verdicts and the exit status.

ROWS=()
MISSED_TARGETS=0
MISSING_VALUES=0

is_number() { [[ $1 =~ ^-?[0-9]+([.][0-9]+)?$ ]]; }

# Prints the median of the numbers given as arguments.
median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
        END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Prints a number with three significant digits at least: 0.123, 12.3, 4567.
round_value() {
    awk -v v="$1" 'BEGIN { if (v >= 100 || v <= -100) printf "%.0f", v; else if (v >= 10 || v <= -10) printf "%.1f", v; else printf "%.3f", v }'
}

# Prints "pass" when $1 >= $3 times $2, else "FAIL".
ratio_at_least() {
    if ! is_number "$1" || ! is_number "$2"; then echo ERROR; return; fi
    awk -v a="$1" -v b="$2" -v r="$3" 'BEGIN { print (a >= r * b) ? "pass" : "FAIL" }'
}

# Prints "pass" when $1 < $2, else "FAIL".
below() {
    if ! is_number "$1"; then echo ERROR; return; fi
    awk -v a="$1" -v t="$2" 'BEGIN { print (a < t) ? "pass" : "FAIL" }'
}

# Prints "pass" when $1 >= $2, else "FAIL".
at_least() {
    if ! is_number "$1"; then echo ERROR; return; fi
    awk -v a="$1" -v t="$2" 'BEGIN { print (a >= t) ? "pass" : "FAIL" }'
}

# Adds a table row: measurement, hub value, reference value ("-" for none), target, verdict
# (pass, FAIL, info, or ERROR when the value is missing). The ratio is hub / reference.
add_row() {
    local name=$1 hub=$2 reference=$3 target=$4 verdict=$5 ratio=-
    if ! is_number "$hub"; then
        hub=n/a verdict=ERROR
    fi
    if is_number "$hub" && is_number "$reference"; then
        ratio=$(awk -v a="$hub" -v b="$reference" 'BEGIN { if (b == 0) print "-"; else printf "%.2f", a / b }')
        reference=$(round_value "$reference")
    fi
    if is_number "$hub"; then hub=$(round_value "$hub"); fi
    case $verdict in
        ERROR) MISSING_VALUES=$((MISSING_VALUES + 1)) ;;
        FAIL) MISSED_TARGETS=$((MISSED_TARGETS + 1)) ;;
    esac
    ROWS+=("$name|$hub|$reference|$ratio|$target|$verdict")
}

# Prints the table as Markdown, so it can be pasted into docs/benchmarks.md as it is.
print_table() {
    local row
    printf '\n| %-68s | %10s | %10s | %5s | %-14s | %-6s |\n' measurement hub reference ratio \
        target result
    printf '|%s|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..70})" "$(printf -- '-%.0s' {1..11}):" \
        "$(printf -- '-%.0s' {1..11}):" "$(printf -- '-%.0s' {1..6}):" \
        "$(printf -- '-%.0s' {1..16})" "$(printf -- '-%.0s' {1..8})"
    for row in "${ROWS[@]}"; do
        IFS='|' read -r name hub reference ratio target verdict <<<"$row"
        printf '| %-68s | %10s | %10s | %5s | %-14s | %-6s |\n' "$name" "$hub" "$reference" \
            "$ratio" "$target" "$verdict"
    done
    printf '\n%s\n' "$(benchmark_context)"
}

benchmark_context() {
    local model
    model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
    printf 'Machine: %s cores (%s), kernel %s. wrk, the servers and Redis share these cores.' \
        "$(nproc)" "$model" "$(uname -r)"
    if [[ $SMOKE -eq 1 ]]; then printf ' Smoke run: short and noisy, targets not enforced.'; fi
}

# Exits 2 when a value is missing, 1 when a full run missed a target, else 0.
finish_status() {
    if [[ $MISSING_VALUES -gt 0 ]]; then
        log "$MISSING_VALUES measurements could not be taken"
        exit 2
    fi
    if [[ $MISSED_TARGETS -gt 0 && $SMOKE -eq 0 ]]; then
        log "$MISSED_TARGETS targets missed"
        exit 1
    fi
    exit 0
}
