-- record.lua: wrk script for `make bench-record`: one of a person's whole-record reads, for a
-- random person of bench/record/gen.py (Patient rec-1 … rec-BENCH_PEOPLE), first page of 50.
--   BENCH_OP=timeline    GET /fhir/Patient/rec-N/$timeline?_count=50
--   BENCH_OP=everything  GET /fhir/Patient/rec-N/$everything?_count=50
--   BENCH_OP=per-type    GET /fhir/Observation?patient=rec-N&_sort=-date&_count=50
-- Sends BENCH_TOKEN when set.
local dir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
package.path = dir .. "/?.lua;" .. package.path
local report = require("report")

thread_no = 1
local headers = { ["Accept"] = "application/fhir+json" }
if os.getenv("BENCH_TOKEN") then
  headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
end
local people = tonumber(os.getenv("BENCH_PEOPLE") or "20")
local op = os.getenv("BENCH_OP") or "timeline"

function init(_args)
  math.randomseed(os.time() * 1000 + thread_no)
end

function request()
  local id = "rec-" .. math.random(1, people)
  local path
  if op == "timeline" then
    path = "/fhir/Patient/" .. id .. "/$timeline?_count=50"
  elseif op == "everything" then
    path = "/fhir/Patient/" .. id .. "/$everything?_count=50"
  else
    path = "/fhir/Observation?patient=" .. id .. "&_sort=-date&_count=50"
  end
  return wrk.format("GET", path, headers)
end

setup = report.setup
done = report.done
