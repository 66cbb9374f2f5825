-- report.lua: shared setup()/done() for the wrk scripts (a module, not a wrk script).
-- done() prints one parseable line:
--   BENCH requests=N duration_s=S rps=R p50_ms=.. p95_ms=.. p99_ms=.. mean_ms=.. max_ms=..
--         status_errors=N socket_errors=N
-- status_errors counts HTTP statuses > 399; socket_errors sums connect/read/write/timeout.
local M = {}

local threads = 0

-- Gives every thread its own number, so that each seeds its random generator differently.
function M.setup(thread)
  threads = threads + 1
  thread:set("thread_no", threads)
end

function M.done(summary, latency, _requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  local ms = function(us) return us / 1000 end
  io.write(string.format(
    "BENCH requests=%d duration_s=%.3f rps=%.1f p50_ms=%.3f p95_ms=%.3f p99_ms=%.3f "
      .. "mean_ms=%.3f max_ms=%.3f status_errors=%d socket_errors=%d\n",
    summary.requests, secs, summary.requests / secs,
    ms(latency:percentile(50)), ms(latency:percentile(95)), ms(latency:percentile(99)),
    ms(latency.mean), ms(latency.max),
    e.status, e.connect + e.read + e.write + e.timeout))
end

return M
