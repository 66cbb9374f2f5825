#!/usr/bin/env bash
# bench-mixed.sh — `make bench-mixed`: a clinical day's mixed traffic with access control and
# audit on, as in production (not part of the tests).
#
# Loads a synthetic population (bench/generate.py, about 50 resources per patient; BENCH_PATIENTS,
# default 2000: about 100,000 resources) through the API, gives the benchmark's organisation
# (BENCHLAB) a registered-GP relationship with every patient, then runs bench/mixed.lua for
# BENCH_DURATION seconds (default 600) in slices of BENCH_SLICE seconds (default 60) with
# BENCH_CONCURRENCY clients (default 8): 90% reads, searches, $everything and $timeline as a
# hospital clinician of BENCHLAB, 10% feed transactions (a Bundle of 5 Observations each) as
# BENCHLAB's feed, every request audited. After each slice: its req/s and latency percentiles,
# the server's resident memory, the audit trail's and the database's size. Over the whole run:
# CPU per request split between the server and PostgreSQL (bench/ingest/procstat.py).
# Target on the 2-core machine: at least 2,000 req/s with no failed request.
#
# Results: target/bench/mixed-results.md (also printed) and target/bench/mixed.json; raw
# outputs in target/bench/mixed/. About 15 minutes at the defaults.
#
# Knobs: INVICTA_BIN, INVICTA_LISTEN (127.0.0.1:8187), BENCH_PATIENTS (2000), BENCH_DURATION
# (600), BENCH_SLICE (60), BENCH_CONCURRENCY (8), BENCH_DB (invicta_bench_mixed; dropped and
# recreated unless BENCH_REUSE=1 finds the same population in it), BENCH_SEED, LOAD_WORKERS (8),
# DATABASE_URL.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PROG=bench-mixed
# shellcheck source=bench/search/lib.sh
source bench/search/lib.sh
trap 'printf "bench-mixed: error: unexpected failure (line %s): %s\n" "$LINENO" "$BASH_COMMAND" >&2' ERR

started=$(date +%s)
PATIENTS=${BENCH_PATIENTS:-2000}
DURATION=${BENCH_DURATION:-600}
SLICE=${BENCH_SLICE:-60}
CLIENTS=${BENCH_CONCURRENCY:-8}
DB_NAME=${BENCH_DB:-invicta_bench_mixed}
SEED=${BENCH_SEED:-$(sed -n 's/^DEFAULT_SEED = \([0-9]*\)$/\1/p' bench/generate.py)}
LISTEN=${INVICTA_LISTEN:-127.0.0.1:8187}
LOG_LEVEL=warn
for v in PATIENTS DURATION SLICE CLIENTS SEED; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "BENCH_$v must be a positive number, got '${!v}'"
done
((SLICE <= DURATION)) || die "BENCH_SLICE ($SLICE) is longer than BENCH_DURATION ($DURATION)"
[[ $DB_NAME =~ ^[a-z_][a-z0-9_]*$ ]] || die "BENCH_DB must be a plain lower-case identifier"
check_listen "$LISTEN"
OUT=target/bench/mixed
REPORT=target/bench/mixed-results.md
JSON=target/bench/mixed.json

need_tool curl curl
need_tool wrk wrk
need_python
build_server
mkdir -p "$OUT"
rm -f "$OUT"/wrk-*.txt "$REPORT" "$JSON"

say "preparing PostgreSQL database $DB_NAME"
ADMIN_URL=$(scripts/ensure-postgres.sh)
is_loopback_host "$(url_host "$ADMIN_URL")" ||
  die "PostgreSQL must run on this machine (loopback); refusing $(url_host "$ADMIN_URL")"
DB_URL=$(scripts/db-url.sh "$DB_NAME")
sql() { sql_at "$DB_URL" "$1"; }
reuse=0
if [[ ${BENCH_REUSE:-0} == 1 ]]; then
  read -r have_p have_s have_g <<<"$(dataset_marker "$DB_URL") x x x"
  [[ $have_p == "$PATIENTS" && $have_s == "$SEED" && $have_g == "$(data_digest "$PATIENTS" "$SEED")" ]] &&
    reuse=1
fi
trap 'stop_server' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if ((reuse)); then
  say "BENCH_REUSE=1: $DB_NAME already holds the population; the feeds' earlier writes stay"
else
  fresh_database "$DB_NAME"
  start_server "$OUT/server-load.log"
  load_patients 0 "$PATIENTS" "$SEED" "$OUT/load.txt"
  record_dataset "$DB_URL" "$PATIENTS" "$SEED" "$(data_digest "$PATIENTS" "$SEED")"
  stop_server
fi
# The population was loaded with access control off, so no organisation has a relationship
# with anyone yet: make BENCHLAB every patient's registered practice, as a GP feed would.
sql "INSERT INTO care_relationship (patient_id, org_code, kind)
  SELECT id, 'BENCHLAB', 'registered-gp' FROM resource WHERE res_type = 'Patient' AND NOT deleted
  ON CONFLICT DO NOTHING" >/dev/null
say "VACUUM ANALYZE"
sql "VACUUM ANALYZE" >/dev/null
values="$OUT/values.tsv"
python3 bench/generate.py values --patients "$PATIENTS" --seed "$SEED" -o "$values"

export INVICTA_SIGNING_KEY="$OUT/signing-key.pem"
start_server "$OUT/server.log" INVICTA_AUTH=on INVICTA_AUDIT=on
token() { DATABASE_URL=$DB_URL INVICTA_BASE_URL="$BASE/fhir" INVICTA_LOG=warn "$BIN" token "$@"; }
TTL=$((DURATION + 900))
BENCH_TOKEN=$(token --role hospital-clinician --org BENCHLAB --ttl "$TTL")
BENCH_FEED_TOKEN=$(token --role feed --org BENCHLAB --ttl "$TTL")
export BENCH_TOKEN BENCH_FEED_TOKEN

threads=$((CLIENTS < 2 ? 1 : 2))
rss_kb() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$SERVER_PID/status"; }
hwm_kb() { sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$SERVER_PID/status"; }
audit_count() { sql "SELECT count(*) FROM audit_event"; }
db_bytes() { sql "SELECT pg_database_size(current_database())"; }

say "warm-up, 10 s"
wrk -t "$threads" -c "$CLIENTS" -d 10s --timeout 10s -s bench/mixed.lua "$BASE" -- "$values" \
  >"$OUT/wrk-warmup.txt" 2>&1 || die "wrk warm-up failed (see $OUT/wrk-warmup.txt)"
grep -q '^FAILED' "$OUT/wrk-warmup.txt" && die "the warm-up had failures: $(grep '^FAILED' "$OUT/wrk-warmup.txt")"
sql "CHECKPOINT" >/dev/null

rss_start=$(rss_kb)
audit_start=$(audit_count)
db_start=$(db_bytes)
python3 bench/ingest/procstat.py snapshot --db-url "$DB_URL" --db "$DB_NAME" \
  --server-pid "$SERVER_PID" -o "$OUT/cpu-before.json"
slices=$(((DURATION + SLICE - 1) / SLICE))
ROWS=()
JSON_SLICES=()
total_requests=0
total_secs=0
errors=0
for i in $(seq 1 "$slices"); do
  f="$OUT/wrk-$i.txt"
  wrk -t "$threads" -c "$CLIENTS" -d "${SLICE}s" --timeout 10s -s bench/mixed.lua "$BASE" -- \
    "$values" >"$f" 2>&1 || die "wrk failed (see $f)"
  line=$(grep '^BENCH ' "$f") || die "no BENCH line in $f"
  e=$(($(field status_errors "$line") + $(field socket_errors "$line")))
  errors=$((errors + e))
  ((e == 0)) || warn "slice $i: $e failed requests: $(grep '^FAILED' "$f" | head -n 1)"
  rss=$(rss_kb)
  audits=$(($(audit_count) - audit_start))
  dbb=$(db_bytes)
  at=$((i * SLICE))
  total_requests=$((total_requests + $(field requests "$line")))
  total_secs=$(awk -v a="$total_secs" -v b="$(field duration_s "$line")" 'BEGIN { print a + b }')
  ROWS+=("$(awk -v at="$at" -v r="$(field rps "$line")" -v p50="$(field p50_ms "$line")" \
    -v p95="$(field p95_ms "$line")" -v p99="$(field p99_ms "$line")" -v mx="$(field max_ms "$line")" \
    -v rss="$rss" -v a="$audits" -v db="$dbb" -v e="$e" \
    'BEGIN { printf "| %d s | %.0f | %.2f | %.2f | %.2f | %.1f | %.0f MiB | %d | %.0f MiB | %d |", at, r, p50, p95, p99, mx, rss / 1024, a, db / 1048576, e }')")
  JSON_SLICES+=("$(awk -v at="$at" -v r="$(field rps "$line")" -v p50="$(field p50_ms "$line")" \
    -v p95="$(field p95_ms "$line")" -v p99="$(field p99_ms "$line")" -v mx="$(field max_ms "$line")" \
    -v rss="$rss" -v a="$audits" -v db="$dbb" -v e="$e" \
    'BEGIN { printf "{\"at_s\": %d, \"rps\": %.1f, \"p50_ms\": %.3f, \"p95_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f, \"server_rss_kb\": %d, \"audit_events\": %d, \"database_bytes\": %d, \"errors\": %d}", at, r, p50, p95, p99, mx, rss, a, db, e }')")
  say "slice $i/$slices: $(field rps "$line") req/s, p99 $(field p99_ms "$line") ms, server RSS $((rss / 1024)) MiB, $e errors"
done
python3 bench/ingest/procstat.py snapshot --db-url "$DB_URL" --db "$DB_NAME" \
  --server-pid "$SERVER_PID" -o "$OUT/cpu-after.json"
python3 bench/ingest/procstat.py diff "$OUT/cpu-before.json" "$OUT/cpu-after.json" \
  --resources "$total_requests" >"$OUT/cpu.txt"
hwm=$(hwm_kb)
audit_total=$(($(audit_count) - audit_start))
db_end=$(db_bytes)
stop_server

rps=$(awk -v n="$total_requests" -v s="$total_secs" 'BEGIN { printf "%.0f", n / s }')
cpu() { sed -n "s/^$1=\([0-9.]*\).*/\1/p" "$OUT/cpu.txt" | head -n 1; }
srv_cores=$(cpu cpu_server)
pg_cores=$(awk -v a="$(cpu cpu_pg_backends)" -v b="$(cpu cpu_pg_walwriter)" -v c="$(cpu cpu_pg_checkpointer)" \
  -v d="$(cpu cpu_pg_bgwriter)" -v e="$(cpu cpu_pg_autovacuum)" 'BEGIN { print a + b + c + d + e }')
us_per() { awk -v c="$1" -v r="$rps" 'BEGIN { printf "%.0f", (r > 0 ? c * 1e6 / r : 0) }'; }
p99_max=$(printf '%s\n' "${JSON_SLICES[@]}" | sed -n 's/.*"p99_ms": \([0-9.]*\).*/\1/p' | sort -n | tail -n 1)
rev=$(git rev-parse --short HEAD 2>/dev/null || echo 'no commit')
git diff --quiet HEAD 2>/dev/null || rev="$rev with uncommitted changes"
resources=$(sql "SELECT count(*) FROM resource WHERE NOT deleted")
verdict="met"
awk -v r="$rps" 'BEGIN { exit !(r < 2000) }' && verdict="not met"
((errors == 0)) || verdict="not met ($errors failed requests)"
{
  cat <<MD
# Mixed clinical workload, $(date -u '+%Y-%m-%d %H:%M UTC')

- Machine: $(machine_line). Server, PostgreSQL and wrk share it, over loopback.
- Build: $rev. Access control and audit on (\`INVICTA_AUTH=on INVICTA_AUDIT=on\`): every
  request's AuditEvent is durable before its answer.
- Record: $PATIENTS patients from \`bench/generate.py\` (seed $SEED), $resources resources at the end.
- Load: bench/mixed.lua, $CLIENTS clients, ${DURATION} s in slices of ${SLICE} s: 30% read by id,
  10% NHS-number search, 15% active medicines, 15% recent labs, 5% active alerts, 8%
  \`\$everything\` and 7% \`\$timeline\` (first page of 50) as a hospital clinician; 10% feed
  transactions of 5 Observations as the organisation's feed.

**$rps req/s over ${total_secs%.*} s, $errors failed requests; highest slice p99 $p99_max ms.
Target (at least 2,000 req/s, no error): $verdict.**

| at | req/s | p50 ms | p95 ms | p99 ms | max ms | server RSS | AuditEvents so far | database | errors |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
MD
  printf '%s\n' "${ROWS[@]}"
  cat <<MD

Server memory: $((rss_start / 1024)) MiB resident before the run, $((hwm / 1024)) MiB at its
highest. The audit trail grew by $audit_total AuditEvents; the database from
$((db_start / 1048576)) MiB to $((db_end / 1048576)) MiB.

Where the CPU went (bench/ingest/procstat.py over the whole run, in cores; 2.00 = both busy):
server $srv_cores ($(us_per "$srv_cores") µs a request), PostgreSQL $pg_cores ($(us_per "$pg_cores") µs a
request, background processes included). The rest of the machine is wrk and the samplers. In
full:

\`\`\`
$(cat "$OUT/cpu.txt")
\`\`\`
MD
} >"$REPORT"
{
  printf '{"bench": "mixed", "date": "%s", "commit": "%s", "patients": %d, "resources": %d, ' \
    "$(date -u +%FT%TZ)" "$rev" "$PATIENTS" "$resources"
  printf '"clients": %d, "duration_s": %s, "requests": %d, "rps": %s, "errors": %d, ' \
    "$CLIENTS" "$total_secs" "$total_requests" "$rps" "$errors"
  printf '"server_rss_start_kb": %d, "server_rss_peak_kb": %d, "audit_events": %d, ' \
    "$rss_start" "$hwm" "$audit_total"
  printf '"server_us_per_request": %s, "postgres_us_per_request": %s, "slices": [%s]}\n' \
    "$(us_per "$srv_cores")" "$(us_per "$pg_cores")" "$(
      IFS=,
      echo "${JSON_SLICES[*]}"
    )"
} >"$JSON"
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$JSON" || die "wrote invalid JSON to $JSON"
cat "$REPORT"
elapsed=$(($(date +%s) - started))
say "done in $((elapsed / 60)) min $((elapsed % 60)) s"
((errors == 0)) || die "$errors requests failed"
