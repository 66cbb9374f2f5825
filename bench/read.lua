-- read.lua: wrk script, GET /fhir/Observation/obs-N for random N in 1..SEED (ids created by
-- seed.lua beforehand).
--   wrk -t T -c C -d 10s -s bench/read.lua http://127.0.0.1:8181 -- 2000
local dir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
package.path = dir .. "/?.lua;" .. package.path
local report = require("report")

thread_no = 1
local seeded = 2000
local headers = { ["Accept"] = "application/fhir+json" }
if os.getenv("BENCH_TOKEN") then
  headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
end

function init(args)
  seeded = tonumber(args[1]) or seeded
  math.randomseed(os.time() * 1000 + thread_no)
end

function request()
  return wrk.format("GET", "/fhir/Observation/obs-" .. math.random(1, seeded), headers)
end

setup = report.setup
done = report.done
