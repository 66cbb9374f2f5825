-- create.lua: wrk script, POST /fhir/Observation (server-assigned ids) as fast as possible.
--   wrk -t T -c C -d 10s -s bench/create.lua http://127.0.0.1:8181
local dir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
package.path = dir .. "/?.lua;" .. package.path
local obs = require("observation")
local report = require("report")

thread_no = 1
local i = 0

function init(_args)
  math.randomseed(os.time() * 1000 + thread_no)
  i = math.random(1, 1000000)
end

function request()
  i = i + 1
  return wrk.format("POST", "/fhir/Observation", obs.headers, obs.body(i))
end

setup = report.setup
done = report.done
