#!/usr/bin/env bash
# Measures the storage choice for resource bodies: bytea vs text vs jsonb, read by primary key
# with pgbench (prepared, c=8), as the server's read path does. Writes
# target/bench/body-storage.md. Usage: bench/body-storage.sh [ROWS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rows="${1:-100000}"
db="$(scripts/db-url.sh invicta_body_bench)"
out=target/bench
mkdir -p "$out"
body='{"resourceType":"Observation","id":"ID","meta":{"versionId":"1","lastUpdated":"2026-11-23T10:00:00.000Z"},"status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory","display":"Laboratory"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"4548-4","display":"Hemoglobin A1c/Hemoglobin.total in Blood"}],"text":"HbA1c"},"subject":{"reference":"Patient/margaret-thornton"},"effectiveDateTime":"2026-11-20T09:30:00Z","issued":"2026-11-20T14:00:00.000Z","performer":[{"reference":"Organization/kent-hospital"}],"valueQuantity":{"value":48,"unit":"mmol/mol","system":"http://unitsofmeasure.org","code":"mmol/mol"},"interpretation":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation","code":"H"}]}],"referenceRange":[{"low":{"value":20,"unit":"mmol/mol"},"high":{"value":41,"unit":"mmol/mol"}}]}'
psql "$db" -qv ON_ERROR_STOP=1 <<SQL
DROP TABLE IF EXISTS body_bytea, body_text, body_jsonb;
CREATE TABLE body_bytea (id text PRIMARY KEY, body bytea NOT NULL);
CREATE TABLE body_text (id text PRIMARY KEY, body text NOT NULL);
CREATE TABLE body_jsonb (id text PRIMARY KEY, body jsonb NOT NULL);
INSERT INTO body_text SELECT 'o' || g, replace('$body', '"ID"', '"o' || g || '"') FROM generate_series(1, $rows) g;
INSERT INTO body_bytea SELECT id, convert_to(body, 'UTF8') FROM body_text;
INSERT INTO body_jsonb SELECT id, body::jsonb FROM body_text;
VACUUM ANALYZE body_bytea, body_text, body_jsonb;
SQL
{
  echo "# Body storage: read by id, pgbench -M prepared -c 8 -j 2 -T 10, ${rows} rows"
  echo
  echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(psql "$db" -Atc 'SHOW server_version')"
  echo
  echo "| column type | tps | avg latency ms | table size |"
  echo "|---|---|---|---|"
} > "$out/body-storage.md"
for t in bytea text jsonb; do
  printf '\\set n random(1, %s)\nSELECT body FROM body_%s WHERE id = '"'"'o'"'"' || :n;\n' "$rows" "$t" > "$out/body-$t.sql"
  res="$(pgbench -n -M prepared -c 8 -j 2 -T 10 -f "$out/body-$t.sql" "$db" 2>&1)"
  tps="$(grep -oP 'tps = \K[0-9.]+' <<<"$res" | head -1)"
  lat="$(grep -oP 'latency average = \K[0-9.]+' <<<"$res")"
  size="$(psql "$db" -Atc "SELECT pg_size_pretty(pg_total_relation_size('body_$t'))")"
  echo "| $t | $tps | $lat | $size |" >> "$out/body-storage.md"
done
psql "$db" -qc 'DROP TABLE body_bytea, body_text, body_jsonb'
cat "$out/body-storage.md"
