-- health.lua: wrk script, GET /health (no database): the HTTP stack alone, as a baseline.
--   wrk -t 2 -c 8 -d 10s -s bench/health.lua http://127.0.0.1:8181/health
local dir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
package.path = dir .. "/?.lua;" .. package.path
local report = require("report")

setup = report.setup
done = report.done
