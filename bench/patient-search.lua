-- patient-search.lua: wrk script, GET /fhir/Observation?subject=Patient/bench-patient-N&code=…
-- for random N (the patients seed.lua's Observations point at): a care-record search that
-- returns a page of a patient's potassium results. Sends BENCH_TOKEN when set.
--   wrk -t T -c C -d 10s -s bench/patient-search.lua http://127.0.0.1:8184
local dir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
package.path = dir .. "/?.lua;" .. package.path
local report = require("report")
local obs = require("observation")

thread_no = 1
local headers = { ["Accept"] = "application/fhir+json" }
if os.getenv("BENCH_TOKEN") then
  headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
end

function init(_args)
  math.randomseed(os.time() * 1000 + thread_no)
end

function request()
  local n = math.random(1, obs.patients)
  return wrk.format("GET", "/fhir/Observation?subject=Patient/bench-patient-" .. n
    .. "&code=http://loinc.org|2823-3&_count=10", headers)
end

setup = report.setup
done = report.done
