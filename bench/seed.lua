-- seed.lua: wrk script, PUT /fhir/Observation/obs-1 .. obs-N (fixed ids) over one connection,
-- then stops. Run with -t 1 -c 1 and a generous -d as an upper bound:
--   wrk -t 1 -c 1 -d 120s -s bench/seed.lua http://127.0.0.1:8181 -- 2000
-- Prints "SEED sent=N ok=N failed=N" (ok counts 200/201 answers).
local dir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
package.path = dir .. "/?.lua;" .. package.path
local obs = require("observation")

local total = 2000
local sent, ok, failed = 0, 0, 0

function init(args)
  total = tonumber(args[1]) or total
end

function request()
  sent = sent + 1
  -- Past the last id (never reached with one connection: we stop first) just re-send it.
  local n = math.min(sent, total)
  local id = "obs-" .. n
  return wrk.format("PUT", "/fhir/Observation/" .. id, obs.headers, obs.body(n, id))
end

function response(status, _headers, _body)
  if status == 200 or status == 201 then
    ok = ok + 1
  else
    failed = failed + 1
    if failed <= 3 then
      io.stderr:write("seed: HTTP " .. status .. ": " .. tostring(_body):sub(1, 300) .. "\n")
    end
  end
  if ok + failed >= total then
    io.write(string.format("SEED sent=%d ok=%d failed=%d\n", ok + failed, ok, failed))
    wrk.thread:stop()
  end
end
