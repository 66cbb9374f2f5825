-- observation.lua: the Observation every wrk script sends (shared module, not a wrk script).
-- A realistic lab result: LOINC-coded serum potassium with a laboratory category, a subject
-- reference, effectiveDateTime, issued, a performer, a valueQuantity (UCUM) and a reference
-- range. `i` varies the patient, the value and the dates so that rows are not all identical.
-- pgbench-create.sql mirrors the index rows the server writes for this shape.
local M = {}

M.patients = 500

function M.body(i, id)
  local patient = i % M.patients + 1
  local day = i % 28 + 1
  local minute = i % 60
  local value = string.format("%.1f", 3.0 + (i % 31) / 10)
  local id_member = ""
  if id then
    id_member = '"id":"' .. id .. '",'
  end
  return '{"resourceType":"Observation",' .. id_member
    .. '"status":"final",'
    .. '"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category",'
    .. '"code":"laboratory","display":"Laboratory"}]}],'
    .. '"code":{"coding":[{"system":"http://loinc.org","code":"2823-3",'
    .. '"display":"Potassium [Moles/volume] in Serum or Plasma"}],"text":"Serum potassium"},'
    .. '"subject":{"reference":"Patient/bench-patient-' .. patient .. '"},'
    .. string.format('"effectiveDateTime":"2026-11-%02dT09:%02d:00+00:00",', day, minute)
    .. string.format('"issued":"2026-11-%02dT15:%02d:11+00:00",', day, minute)
    .. '"performer":[{"reference":"Organization/bench-lab","display":"Bench Pathology Laboratory"}],'
    .. '"valueQuantity":{"value":' .. value .. ',"unit":"mmol/L",'
    .. '"system":"http://unitsofmeasure.org","code":"mmol/L"},'
    .. '"referenceRange":[{"low":{"value":3.5,"unit":"mmol/L","system":"http://unitsofmeasure.org","code":"mmol/L"},'
    .. '"high":{"value":5.3,"unit":"mmol/L","system":"http://unitsofmeasure.org","code":"mmol/L"}}]}'
end

M.headers = {
  ["Content-Type"] = "application/fhir+json",
  ["Accept"] = "application/fhir+json",
}
-- With access control on, the scripts send BENCH_TOKEN (see scripts/bench-auth.sh).
if os.getenv("BENCH_TOKEN") then
  M.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
end

return M
