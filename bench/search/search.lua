-- search.lua: wrk script for scripts/bench-search.sh. Every request is one search built from a
-- URL template and a random row of the patient value list written by
-- `bench/generate.py values` (TSV: id, nhs, family, birthdate, ...):
--   wrk -t 2 -c 8 -d 10s -s bench/search/search.lua http://127.0.0.1:8183 -- \
--     target/bench/search/values.tsv '/fhir/MedicationStatement?patient={id}&status=active'
-- Placeholders: {id} (Patient id), {nhs} (NHS number), {family} (the first four letters of the
-- family name, lower case, percent-encoded) and {birthdate}.
-- Sends BENCH_TOKEN as a bearer token when set. done() prints the shared BENCH line
-- (bench/report.lua).
local dir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
package.path = dir .. "/../?.lua;" .. package.path
local report = require("report")

thread_no = 1
local rows = {}
local template = nil
local headers = { ["Accept"] = "application/fhir+json" }
if os.getenv("BENCH_TOKEN") then
  headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
end

local function encode(s)
  return (s:gsub("[^%w%-%._~]", function(c)
    return string.format("%%%02X", string.byte(c))
  end))
end

local function load(path)
  local f = assert(io.open(path, "r"), "cannot open " .. path)
  local header = true
  for line in f:lines() do
    if header then
      header = false
    elseif line ~= "" then
      local id, nhs, family, birthdate = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)")
      if id then
        rows[#rows + 1] = {
          id = id,
          nhs = nhs,
          family = encode(family:sub(1, 4):lower()),
          birthdate = birthdate,
        }
      end
    end
  end
  f:close()
  assert(#rows > 0, "no rows in " .. path)
end

function init(args)
  assert(args[1] and args[2], "usage: -- VALUES.tsv URL-TEMPLATE")
  load(args[1])
  template = args[2]
  math.randomseed(os.time() * 1000 + thread_no)
end

function request()
  local row = rows[math.random(1, #rows)]
  local path = template:gsub("{(%a+)}", function(k)
    return assert(row[k], "unknown placeholder {" .. k .. "}")
  end)
  return wrk.format("GET", path, headers)
end

setup = report.setup
done = report.done
