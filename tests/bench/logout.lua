-- wrk script for the back-channel logout benchmark. Each wrk thread POSTs its own share of the
-- pre-signed tokens (line i goes to thread i mod threads), each once, and stops when its share
-- is used up. Before each POST it writes "<jti> <microseconds of CLOCK_MONOTONIC>" to
-- "<sent prefix>.<thread>", which bench.mjs joins with the subscriber's arrival stamps.
-- Arguments after "--": <tokens file> <sent prefix> <path> <wrk thread count>. wrk calls init
-- right after each thread's setup, so the count cannot be learnt in setup and comes as an argument.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local FLUSH_EVERY = 256
local now = ffi.new("bench_timespec")

local function monotonic_us()
    ffi.C.clock_gettime(CLOCK_MONOTONIC, now)
    return tonumber(now.tv_sec) * 1000000 + math.floor(tonumber(now.tv_nsec) / 1000)
end

local threads_set_up = 0

function setup(thread)
    thread:set("thread_index", threads_set_up)
    threads_set_up = threads_set_up + 1
end

function init(args)
    local tokens_path, sent_prefix = args[1], args[2]
    route = args[3]
    local thread_count = tonumber(args[4])
    jtis, bodies = {}, {}
    local i = 0
    for line in io.lines(tokens_path) do
        if i % thread_count == thread_index then
            local tab = line:find("\t", 1, true)
            jtis[#jtis + 1] = line:sub(1, tab - 1)
            bodies[#bodies + 1] = line:sub(tab + 1)
        end
        i = i + 1
    end
    next_token = 1
    sent = assert(io.open(sent_prefix .. "." .. thread_index, "w"))
    headers = {["Content-Type"] = "application/x-www-form-urlencoded"}
end

function request()
    local k = next_token
    if k > #bodies then
        sent:flush()
        wrk.thread:stop()
        -- wrk still sends what this returns; a GET of an unknown route has no side effect.
        return wrk.format("GET", "/-/tokens-used-up")
    end
    next_token = k + 1
    sent:write(jtis[k], " ", string.format("%d", monotonic_us()), "\n")
    if k % FLUSH_EVERY == 0 then
        sent:flush()
    end
    return wrk.format("POST", route, headers, bodies[k])
end

-- The same result line as summary.lua.
function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        "BENCH requests=%d status_errors=%d socket_errors=%d duration_us=%d " ..
        "p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
        summary.requests, e.status, e.connect + e.read + e.write + e.timeout, summary.duration,
        latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
