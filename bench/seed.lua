-- seed.lua: wrk script, PUT /fhir/Observation/obs-1 .. obs-N (fixed ids) over ONE connection,
-- then ends wrk. Run with -t 1 -c 1 and a generous -d as an upper bound:
--   wrk -t 1 -c 1 -d 300s -s bench/seed.lua http://127.0.0.1:8181 -- 2000
-- Prints "SEED sent=N ok=N failed=N" (ok counts 200/201 answers) and exits with status 0.
-- The id of the next request is derived from the answers received so far, not from the number of
-- request() calls: wrk calls request() once more than it sends (to check the script).
local dir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
package.path = dir .. "/?.lua;" .. package.path
local obs = require("observation")

local total = 2000
local ok, failed = 0, 0

function init(args)
  total = tonumber(args[1]) or total
end

function request()
  local n = math.min(ok + failed + 1, total)
  local id = "obs-" .. n
  return wrk.format("PUT", "/fhir/Observation/" .. id, obs.headers, obs.body(n, id))
end

function response(status, _headers, body)
  if status == 200 or status == 201 then
    ok = ok + 1
  else
    failed = failed + 1
    if failed <= 3 then
      io.stderr:write("seed: HTTP " .. status .. ": " .. tostring(body):sub(1, 300) .. "\n")
    end
  end
  if ok + failed >= total then
    -- wrk itself would wait for -d to pass: end the process (a single thread, nothing lost).
    io.write(string.format("SEED sent=%d ok=%d failed=%d\n", ok + failed, ok, failed))
    io.flush()
    os.exit(0)
  end
end
