-- Prints wrk's result as one machine-readable line for tests/bench/run.sh: requests, non-2xx/3xx
-- answers, socket errors, duration and latency percentiles (microseconds).
function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        "BENCH requests=%d status_errors=%d socket_errors=%d duration_us=%d " ..
        "p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
        summary.requests, e.status, e.connect + e.read + e.write + e.timeout, summary.duration,
        latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
