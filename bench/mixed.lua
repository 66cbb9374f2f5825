-- mixed.lua: wrk script for scripts/bench-mixed.sh, a clinical day's traffic on one server.
-- Every request picks a random patient of the value list (`bench/generate.py values`, TSV: id,
-- nhs, family, birthdate, ...) and one of these, by weight (out of 100):
--   30  read        GET Patient/{id}
--   10  nhs         GET Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}
--   15  medicines   GET MedicationStatement?patient={id}&status=active
--   15  labs        GET Observation?patient={id}&category=laboratory&date=ge2025-11-01&_sort=-date
--    5  alerts      GET Flag?patient={id}&status=active
--    8  everything  GET Patient/{id}/$everything?_count=50
--    7  timeline    GET Patient/{id}/$timeline?_count=50
--   10  feed        POST / a transaction Bundle of 5 new vital-sign Observations for the patient
-- BENCH_ONLY=<kind> (one of the names above) sends only that kind, to measure what each costs.
-- Reads carry BENCH_TOKEN (a clinician), feed transactions BENCH_FEED_TOKEN (a feed system).
--   wrk -t 2 -c 8 -d 60s -s bench/mixed.lua http://127.0.0.1:8187 -- values.tsv
-- The first failed answer's status and body are printed, so a failing run says why; done()
-- prints the shared BENCH line (bench/report.lua).
local dir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
package.path = dir .. "/?.lua;" .. package.path
local report = require("report")

thread_no = 1
local rows = {}
local reader = { ["Accept"] = "application/fhir+json" }
local feeder = { ["Accept"] = "application/fhir+json", ["Content-Type"] = "application/fhir+json" }
if os.getenv("BENCH_TOKEN") then
  reader["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
end
if os.getenv("BENCH_FEED_TOKEN") then
  feeder["Authorization"] = "Bearer " .. os.getenv("BENCH_FEED_TOKEN")
end
local NHS = "https%3A%2F%2Ffhir.nhs.uk%2FId%2Fnhs-number%7C"
local reported = false
-- A draw that falls in each kind's band of the weights below.
local ONLY = { read = 1, nhs = 31, medicines = 41, labs = 56, alerts = 71, everything = 76,
  timeline = 84, feed = 91 }
local only = os.getenv("BENCH_ONLY")
if only and only ~= "" then
  assert(ONLY[only], "BENCH_ONLY must be one of read, nhs, medicines, labs, alerts, everything, timeline, feed")
end
local sent = 0

local function load(path)
  local f = assert(io.open(path, "r"), "cannot open " .. path)
  local header = true
  for line in f:lines() do
    if header then
      header = false
    elseif line ~= "" then
      local id, nhs = line:match("^([^\t]*)\t([^\t]*)")
      if id then
        rows[#rows + 1] = { id = id, nhs = nhs }
      end
    end
  end
  f:close()
  assert(#rows > 0, "no rows in " .. path)
end

local function observation(id, n)
  local rate = 50 + math.random(0, 60)
  return string.format(
    '{"fullUrl":"urn:uuid:%08x-0000-4000-8000-%012d","request":{"method":"POST","url":"Observation"},'
      .. '"resource":{"resourceType":"Observation","status":"final","category":[{"coding":'
      .. '[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],'
      .. '"code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"}]},'
      .. '"subject":{"reference":"Patient/%s"},"effectiveDateTime":"%s",'
      .. '"valueQuantity":{"value":%d,"unit":"beats/minute","system":"http://unitsofmeasure.org","code":"/min"}}}',
    thread_no, sent * 10 + n, id, os.date("!%Y-%m-%dT%H:%M:%SZ"), rate)
end

local function feed(id)
  local entries = {}
  for n = 1, 5 do
    entries[n] = observation(id, n)
  end
  return '{"resourceType":"Bundle","type":"transaction","entry":[' .. table.concat(entries, ",") .. "]}"
end

function init(args)
  assert(args[1], "usage: -- VALUES.tsv")
  load(args[1])
  math.randomseed(os.time() * 1000 + thread_no)
end

function request()
  sent = sent + 1
  local row = rows[math.random(1, #rows)]
  local id = row.id
  local pick = (only and ONLY[only]) or math.random(1, 100)
  local path
  if pick <= 30 then
    path = "/fhir/Patient/" .. id
  elseif pick <= 40 then
    path = "/fhir/Patient?identifier=" .. NHS .. row.nhs
  elseif pick <= 55 then
    path = "/fhir/MedicationStatement?patient=" .. id .. "&status=active"
  elseif pick <= 70 then
    path = "/fhir/Observation?patient=" .. id .. "&category=laboratory&date=ge2025-11-01&_sort=-date"
  elseif pick <= 75 then
    path = "/fhir/Flag?patient=" .. id .. "&status=active"
  elseif pick <= 83 then
    path = "/fhir/Patient/" .. id .. "/$everything?_count=50"
  elseif pick <= 90 then
    path = "/fhir/Patient/" .. id .. "/$timeline?_count=50"
  else
    return wrk.format("POST", "/fhir", feeder, feed(id))
  end
  return wrk.format("GET", path, reader)
end

function response(status, _headers, body)
  if status > 399 and not reported then
    reported = true
    io.write(string.format("FAILED status=%d body=%s\n", status, (body or ""):sub(1, 400)))
  end
end

setup = report.setup
done = report.done
