-- audit-fill.lua: wrk script that grows the audit trail quickly through the real path: each
-- request is an audited search whose page holds many patients' results, and the server writes
-- one AuditEvent per patient a response touched (up to 100 a request). Sends BENCH_TOKEN.
--   wrk -t 2 -c 8 -d 30s -s bench/audit-fill.lua http://127.0.0.1:8187
local dir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
package.path = dir .. "/?.lua;" .. package.path
local report = require("report")

thread_no = 1
local headers = { ["Accept"] = "application/fhir+json" }
if os.getenv("BENCH_TOKEN") then
  headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
end

function init(_args)
  math.randomseed(os.time() * 1000 + thread_no)
end

function request()
  -- A random day of the seeded month: a different page of patients each time.
  local day = math.random(1, 28)
  return wrk.format("GET", string.format(
    "/fhir/Observation?code=http://loinc.org|2823-3&date=2026-11-%02d&_count=100", day), headers)
end

setup = report.setup
done = report.done
