-- tests/bench/wrk.lua -- request generator and result printer for throughput.sh.
--
-- Why: a fixed URL would let any per-user cache answer every request after the
-- first, and would hide the cost of evaluating 100 flags for a user vexil has
-- never seen.  So with BENCH_VARY_USER=1 every request asks for a new user id,
-- "u<thread>_<n>".  done() prints one machine-readable line, so the script
-- never has to parse wrk's human units (us/ms/s).
--
-- Environment: BENCH_PATH (default /flags), BENCH_VARY_USER (1 = add
-- ?user=...), BENCH_TOKEN (sent as a Bearer token when set).

local path = os.getenv("BENCH_PATH") or "/flags"
local vary = os.getenv("BENCH_VARY_USER") == "1"
local token = os.getenv("BENCH_TOKEN")

if token and token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
end

local threads = {}
local next_id = 0

function setup(thread)
    thread:set("tid", next_id)
    next_id = next_id + 1
    table.insert(threads, thread)
end

local n = 0

function request()
    if not vary then
        return wrk.format("GET", path)
    end
    n = n + 1
    local sep = path:find("?", 1, true) and "&" or "?"
    return wrk.format("GET", path .. sep .. "user=u" .. tostring(tid) .. "_" .. n)
end

function done(summary, latency, requests)
    local e = summary.errors
    local secs = summary.duration / 1e6
    io.write(string.format(
        "BENCH requests=%d secs=%.3f rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
        "bytes=%d err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
        summary.requests, secs, summary.requests / secs,
        latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
        summary.bytes, e.connect, e.read, e.write, e.status, e.timeout))
end
