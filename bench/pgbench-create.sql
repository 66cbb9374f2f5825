-- pgbench-create.sql: the SQL of one create (crates/store/src/write.rs, Store::create and
-- crates/store/src/index_rows.rs) for the Observation of bench/observation.lua, in one
-- transaction: the current row, the history row, then one multi-row INSERT per index table in
-- the server's order, with the index rows the server writes for that Observation.
-- bench.sh passes the stored body of obs-1 as -D body=... (a bind parameter, as in the server)
-- and compares the server's index rows per Observation with this line (keep it up to date):
-- rows: idx_date=1 idx_number=0 idx_quantity=2 idx_reference=3 idx_string=0 idx_token=4 idx_uri=0
--   pgbench -n -M prepared -c 8 -j 2 -T 10 -D body="$(cat obs.json)" -f bench/pgbench-create.sql DBURL
\set p random(1, 500)
BEGIN;
INSERT INTO resource (res_type, id, version, last_updated, deleted, body, compartments)
  VALUES ('Observation', gen_random_uuid()::text, 1, date_trunc('milliseconds', now()), FALSE,
          convert_to(:body, 'UTF8'), ARRAY['bench-patient-' || CAST(:p AS text)])
  ON CONFLICT (res_type, id) DO NOTHING RETURNING rid, id, last_updated \gset
INSERT INTO resource_history (rid, res_type, id, version, last_updated, deleted, method, body)
  VALUES (:rid, 'Observation', :id, 1, :last_updated, FALSE, 'POST', convert_to(:body, 'UTF8'));
INSERT INTO idx_token (rid, res_type, param, system, code, text) VALUES
  (:rid, 'Observation', 'category', 'http://terminology.hl7.org/CodeSystem/observation-category', 'laboratory', 'Laboratory'),
  (:rid, 'Observation', 'code', 'http://loinc.org', '2823-3', 'Serum potassium'),
  (:rid, 'Observation', 'combo-code', 'http://loinc.org', '2823-3', 'Serum potassium'),
  (:rid, 'Observation', 'status', NULL, 'final', NULL);
INSERT INTO idx_date (rid, res_type, param, lo, hi) VALUES
  (:rid, 'Observation', 'date', COALESCE('2026-11-11 09:10:00+00'::timestamptz, '-infinity'::timestamptz),
   COALESCE('2026-11-11 09:10:01+00'::timestamptz, 'infinity'::timestamptz));
INSERT INTO idx_reference (rid, res_type, param, target_type, target_id, url, ident_system, ident_value) VALUES
  (:rid, 'Observation', 'patient', 'Patient', 'bench-patient-' || CAST(:p AS text), NULL, NULL, NULL),
  (:rid, 'Observation', 'performer', 'Organization', 'bench-lab', NULL, NULL, NULL),
  (:rid, 'Observation', 'subject', 'Patient', 'bench-patient-' || CAST(:p AS text), NULL, NULL, NULL);
INSERT INTO idx_quantity (rid, res_type, param, value, lo, hi, system, code, unit) VALUES
  (:rid, 'Observation', 'combo-value-quantity', '4.0'::numeric, '3.95'::numeric, '4.05'::numeric,
   'http://unitsofmeasure.org', 'mmol/L', 'mmol/L'),
  (:rid, 'Observation', 'value-quantity', '4.0'::numeric, '3.95'::numeric, '4.05'::numeric,
   'http://unitsofmeasure.org', 'mmol/L', 'mmol/L');
COMMIT;
