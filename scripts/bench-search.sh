#!/usr/bin/env bash
# bench-search.sh — `make bench-search`: search throughput and latency over a generated care
# record (not part of the tests).
#
# Generates a synthetic UK population with bench/generate.py (about 50 resources per patient
# across Patient, Observation, MedicationStatement, AllergyIntolerance, Flag and CarePlan) and
# loads it in batches (`invicta load`, or the API with BENCH_LOADER=api): by default 1/10 of
# --patients first, then the rest on top, so that every search is measured at two data sizes
# (100,000 and 1,000,000 resources at the default --patients 20000): the scale curve. After each
# batch: VACUUM ANALYZE, then for each search below a wrk warm-up and a measured run at each
# concurrency (1 and 8 clients), every request with values
# drawn at random from the patients loaded so far (bench/search/search.lua).
#
#   patient-nhs               Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|N
#   patient-family-birthdate  Patient?family=<first 4 letters>&birthdate=YYYY-MM-DD
#   medication-active         MedicationStatement?patient=X&status=active
#   observation-labs-recent   Observation?patient=X&category=laboratory&date=ge2025-11-01&_sort=-date
#   flags-active              Flag?patient=X&status=active
#   patient-revinclude-flags  Patient?identifier=…|N&_revinclude=Flag:patient
#
# Results: target/bench/search-results.md (also printed) and target/bench/search.json (read by
# bench/report.py), raw outputs in target/bench/search/.
# At the default scale this takes about 45 minutes on the 2-core development machine once the
# binary is built (loading 1,000,000 resources through the API is most of it). The scale curve's
# third point, 10,000,000 resources, is a manual run: --patients 200000 --sizes "2000 20000 200000"
# with BENCH_LOAD_TIMEOUT=7200 (about 65 GB of database; see the README for its measured result).
#
# Usage: scripts/bench-search.sh [--patients N] [--sizes "A B ..."]
#   --patients N   final population (default 20000, about 1,000,000 resources)
#   --sizes LIST   populations to measure at, ascending (default "N/10 N")
#
# Knobs (environment):
#   INVICTA_BIN         use this binary instead of building target/release/invicta
#   INVICTA_LISTEN      server address, loopback only (default 127.0.0.1:8183)
#   INVICTA_DB_POOL     server pool size (default: the server's own, 16)
#   BENCH_DB            database name (default invicta_search_bench; dropped and recreated!)
#   BENCH_REUSE=1       keep the database when it holds this population up to at most the first
#                       size (same seed, same generated resources), and only load what is missing
#   BENCH_SEED          generator seed (default: the generator's)
#   BENCH_DURATION      seconds per measured run (default 10)
#   BENCH_WARMUP        seconds of wrk warm-up before each run (default 2; 0 = none)
#   BENCH_CONCURRENCY   space-separated client counts (default "1 8")
#   BENCH_QUERIES       space-separated subset of the searches above (default: all)
#   BENCH_LOG           server log level, INVICTA_LOG (default warn)
#   BENCH_LOAD_TIMEOUT  seconds allowed per generated file's load (default 2400)
#   BENCH_LOAD_CHUNK    patients per generated NDJSON file (default 20000, about 1.3 GB): what
#                       the run needs on disk besides the database
#   BENCH_LOADER        invicta (default: `invicta load` of the generated NDJSON) or api (PUT
#                       each resource through the server, about a fifth as fast)
#   LOAD_WORKERS        loader connections with BENCH_LOADER=api (default 8)
#   DATABASE_URL        a PostgreSQL server to use instead of the local default / private
#                       cluster (see scripts/ensure-postgres.sh); must be on this machine
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PROG=bench-search
# shellcheck source=bench/search/lib.sh
source bench/search/lib.sh
trap 'printf "bench-search: error: unexpected failure (line %s): %s\n" "$LINENO" "$BASH_COMMAND" >&2' ERR

started=$(date +%s)
PATIENTS=20000
SIZES_ARG=""
while (($#)); do
  case $1 in
    --patients)
      [[ $# -ge 2 ]] || die "--patients needs a number"
      PATIENTS=$2
      shift 2
      ;;
    --patients=*)
      PATIENTS=${1#*=}
      shift
      ;;
    --sizes)
      [[ $# -ge 2 ]] || die "--sizes needs a list"
      SIZES_ARG=$2
      shift 2
      ;;
    --sizes=*)
      SIZES_ARG=${1#*=}
      shift
      ;;
    -h | --help)
      sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
      exit 0
      ;;
    *) die "unknown argument '$1' (usage: scripts/bench-search.sh [--patients N] [--sizes \"A B\"])" ;;
  esac
done
[[ $PATIENTS =~ ^[1-9][0-9]*$ ]] || die "--patients must be a positive number"
if [[ -z $SIZES_ARG ]]; then
  if ((PATIENTS >= 10)); then
    SIZES_ARG="$((PATIENTS / 10)) $PATIENTS"
  else
    SIZES_ARG=$PATIENTS
  fi
fi
read -r -a SIZES <<<"$SIZES_ARG"
((${#SIZES[@]} > 0)) || die "--sizes is empty"
prev=0
for s in "${SIZES[@]}"; do
  [[ $s =~ ^[1-9][0-9]*$ ]] || die "--sizes must hold positive numbers, got '$s'"
  ((s > prev)) || die "--sizes must be ascending, got '$SIZES_ARG'"
  prev=$s
done

DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
CONCURRENCY=${BENCH_CONCURRENCY:-1 8}
DB_NAME=${BENCH_DB:-invicta_search_bench}
LOG_LEVEL=${BENCH_LOG:-warn}
LOAD_TIMEOUT=${BENCH_LOAD_TIMEOUT:-2400}
SEED=${BENCH_SEED:-$(sed -n 's/^DEFAULT_SEED = \([0-9]*\)$/\1/p' bench/generate.py)}
LISTEN=${INVICTA_LISTEN:-127.0.0.1:8183}
check_listen "$LISTEN"
OUT=target/bench/search
REPORT=target/bench/search-results.md
JSON=target/bench/search.json
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "BENCH_DURATION must be a positive number of seconds"
[[ $WARMUP =~ ^[0-9]+$ ]] || die "BENCH_WARMUP must be a number of seconds"
[[ $LOAD_TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "BENCH_LOAD_TIMEOUT must be a positive number"
[[ $SEED =~ ^[0-9]+$ ]] || die "BENCH_SEED must be a number"
[[ $DB_NAME =~ ^[a-z_][a-z0-9_]*$ ]] || die "BENCH_DB must be a plain lower-case identifier"
for c in $CONCURRENCY; do
  [[ $c =~ ^[1-9][0-9]*$ ]] || die "BENCH_CONCURRENCY must hold positive numbers, got '$c'"
done

# The searches: name|URL template (placeholders filled per request by bench/search/search.lua).
NHS_Q='identifier=https%3A%2F%2Ffhir.nhs.uk%2FId%2Fnhs-number%7C{nhs}'
ALL_QUERIES=(
  "patient-nhs|/fhir/Patient?$NHS_Q"
  "patient-family-birthdate|/fhir/Patient?family={family}&birthdate={birthdate}"
  "medication-active|/fhir/MedicationStatement?patient={id}&status=active"
  "observation-labs-recent|/fhir/Observation?patient={id}&category=laboratory&date=ge2025-11-01&_sort=-date"
  "flags-active|/fhir/Flag?patient={id}&status=active"
  "patient-revinclude-flags|/fhir/Patient?$NHS_Q&_revinclude=Flag:patient"
)
QUERIES=()
for q in "${ALL_QUERIES[@]}"; do
  if [[ -z ${BENCH_QUERIES:-} || " $BENCH_QUERIES " == *" ${q%%|*} "* ]]; then
    QUERIES+=("$q")
  fi
done
((${#QUERIES[@]} > 0)) || die "BENCH_QUERIES selects none of: $(printf '%s ' "${ALL_QUERIES[@]%%|*}")"

need_tool curl curl
need_tool wrk wrk
need_python
build_server
mkdir -p "$OUT"
rm -f "$REPORT" "$JSON" "$OUT"/wrk-*.txt "$OUT"/probe-*.txt "$OUT"/load-*.txt "$OUT"/values-*.tsv \
  "$OUT"/server.log

# ---------------------------------------------------------------------------------------------
# Database
# ---------------------------------------------------------------------------------------------
say "preparing PostgreSQL database $DB_NAME"
ADMIN_URL=$(scripts/ensure-postgres.sh)
is_loopback_host "$(url_host "$ADMIN_URL")" ||
  die "PostgreSQL must run on this machine (loopback); refusing $(url_host "$ADMIN_URL")"
DB_URL=$(scripts/db-url.sh "$DB_NAME")
is_loopback_host "$(url_host "$DB_URL")" || die "database URL is not on loopback"
loaded=0
if [[ ${BENCH_REUSE:-0} == 1 ]]; then
  read -r have_p have_s have_g <<<"$(dataset_marker "$DB_URL") x x x"
  if [[ $have_p =~ ^[0-9]+$ && $have_s == "$SEED" ]] && ((have_p <= SIZES[0])) &&
    [[ $have_g == "$(data_digest "$have_p" "$SEED")" ]]; then
    loaded=$have_p
    say "BENCH_REUSE=1: $DB_NAME already holds patients 0..$((loaded - 1)); loading only the rest"
  fi
fi
((loaded > 0)) || fresh_database "$DB_NAME"
sql() { sql_at "$DB_URL" "$1"; }

trap 'stop_server' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# `_explain=true` gives each search's SQL with its values, which pgbench runs for the ceiling.
start_server "$OUT/server.log" INVICTA_SEARCH_EXPLAIN=on

# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------
threads_for() { if (($1 < 2)); then echo 1; else echo 2; fi; }
checkpoint() { sql "CHECKPOINT" >/dev/null 2>&1 || true; }

# ceiling_sql VALUES TEMPLATE FILE: the statement the server runs for the template filled from a
# row of the value list, with its values inlined (from `_explain=true`), into FILE.
ceiling_sql() {
  python3 bench/search/searchtool.py ceiling --base "$BASE" --values "$1" --template "$2" -o "$3"
}

# run_pgbench NAME CLIENTS FILE: the same statement with pgbench (prepared: planned once per
# connection, the best the database can do for it); sets PG_TPS.
PG_TPS=0
run_pgbench() {
  local name=$1 c=$2 file=$3 t
  t=$(threads_for "$c")
  pgbench -n -M prepared -c "$c" -j "$t" -T "$DURATION" -f "$file" "$DB_URL" \
    >"$OUT/pgbench-$name.txt" 2>&1 || die "pgbench failed (see $OUT/pgbench-$name.txt)"
  PG_TPS=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$OUT/pgbench-$name.txt" | tail -n 1)
  [[ -n $PG_TPS ]] || die "no tps in $OUT/pgbench-$name.txt"
}

# run_wrk NAME CLIENTS VALUES TEMPLATE: a warm-up and a measured run; sets W_LINE.
W_LINE=""
run_wrk() {
  local name=$1 c=$2 values=$3 template=$4 t errs
  t=$(threads_for "$c")
  if ((WARMUP > 0)); then
    wrk -t "$t" -c "$c" -d "${WARMUP}s" --timeout 10s -s bench/search/search.lua "$BASE" -- \
      "$values" "$template" >"$OUT/wrk-$name-warmup.txt" 2>&1 ||
      die "wrk warm-up failed (see $OUT/wrk-$name-warmup.txt)"
  fi
  checkpoint
  say "$name: wrk, ${DURATION}s"
  wrk -t "$t" -c "$c" -d "${DURATION}s" --timeout 10s -s bench/search/search.lua "$BASE" -- \
    "$values" "$template" >"$OUT/wrk-$name.txt" 2>&1 || die "wrk failed (see $OUT/wrk-$name.txt)"
  W_LINE=$(grep '^BENCH ' "$OUT/wrk-$name.txt" || true)
  [[ -n $W_LINE ]] || die "no BENCH line in $OUT/wrk-$name.txt"
  errs=$(($(field status_errors "$W_LINE") + $(field socket_errors "$W_LINE")))
  ((errs == 0)) || warn "$name: $errs failed requests (see $OUT/wrk-$name.txt)"
}

load_before=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo '?')
LOAD_ROWS=()
SIZE_ROWS=()
RESULT_ROWS=()
CEIL_ROWS=()
SIZE_JSON=()
RESULT_JSON=()
declare -A P50 P99 RPS RES_AT WAL_PER
for size in "${SIZES[@]}"; do
  # Load what is missing.
  if ((size > loaded)); then
    wal_before=$(sql "SELECT pg_current_wal_lsn()")
    res_before=$(sql "SELECT count(*) FROM resource")
    load_patients "$loaded" "$size" "$SEED" "$OUT/load-$size.txt"
    WAL_PER[$size]=$(sql "SELECT round(pg_wal_lsn_diff(pg_current_wal_lsn(), '$wal_before')
      / GREATEST(count(*) - $res_before, 1)) FROM resource")
    record_dataset "$DB_URL" "$size" "$SEED" "$(data_digest "$size" "$SEED")"
    LOAD_ROWS+=("$(awk -v a="$loaded" -v b="$size" -v n="$(field resources "$L_LINE")" \
      -v s="$(field seconds "$L_LINE")" -v r="$(field rps "$L_LINE")" \
      'BEGIN { printf "| %d..%d | %d | %d | %.0f s | %.0f |", a, b - 1, b - a, n, s, r }')")
    loaded=$size
  fi
  patients=$(sql "SELECT count(*) FROM resource WHERE res_type = 'Patient' AND NOT deleted")
  [[ $patients == "$size" ]] || die "expected $size Patients after loading, found $patients"
  say "VACUUM ANALYZE"
  t0=$(date +%s)
  sql "VACUUM ANALYZE" >/dev/null
  vacuum_s=$(($(date +%s) - t0))
  resources=$(sql "SELECT count(*) FROM resource WHERE NOT deleted")
  index_rows=$(sql "SELECT sum(reltuples)::bigint FROM pg_class WHERE relkind = 'r' AND relname LIKE 'idx\_%'")
  db_size=$(sql "SELECT pg_size_pretty(pg_database_size(current_database()))")
  # Heap (with TOAST) and index bytes of the record's tables: resources, history and the index
  # tables (partitions are counted once, parents hold nothing).
  read -r table_b index_b db_b <<<"$(sql "SELECT sum(pg_table_size(oid)), sum(pg_indexes_size(oid)),
      pg_database_size(current_database()) FROM pg_class
    WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace" | tr '|' ' ')"
  wal_per=${WAL_PER[$size]:-}
  SIZE_ROWS+=("$(awk -v s="$size" -v r="$resources" -v i="$index_rows" -v d="$db_size" -v v="$vacuum_s" \
    -v t="$table_b" -v x="$index_b" -v w="${wal_per:-0}" \
    'BEGIN { printf "| %d | %d | ~%d | %s | %.0f | %.0f | %s | %d s |", s, r, i, d, t / r, x / r, (w > 0 ? w : "(reused)"), v }')")
  SIZE_JSON+=("$(printf '{"patients": %d, "resources": %d, "index_rows": %d, "database_bytes": %d, "table_bytes": %d, "index_bytes": %d, "wal_bytes_per_loaded_resource": %s}' \
    "$size" "$resources" "$index_rows" "$db_b" "$table_b" "$index_b" "${wal_per:-null}")")
  RES_AT[$size]=$resources
  values="$OUT/values-$size.tsv"
  python3 bench/generate.py values --patients "$size" --seed "$SEED" -o "$values"

  for q in "${QUERIES[@]}"; do
    name=${q%%|*}
    template=${q#*|}
    # A sample of real answers first: 200, a searchset, how many matches.
    python3 bench/search/searchtool.py probe --base "$BASE" --values "$values" \
      --template "$template" --samples 200 >"$OUT/probe-$name-$size.txt" ||
      die "$name does not answer as expected (see above)"
    probe=$(grep '^PROBE ' "$OUT/probe-$name-$size.txt")
    ceiling_sql "$values" "$template" "$OUT/ceiling-$name-$size.sql" ||
      die "$name: could not get its SQL from _explain=true"
    for c in $CONCURRENCY; do
      run_wrk "$name-$size-c$c" "$c" "$values" "$template"
      run_pgbench "$name-$size-c$c" "$c" "$OUT/ceiling-$name-$size.sql"
      CEIL_ROWS+=("$(awk -v n="$name" -v res="$resources" -v c="$c" -v rps="$(field rps "$W_LINE")" \
        -v pg="$PG_TPS" 'BEGIN { printf "| %s | %d | %d | %.0f | %.0f | %.2f |", n, res, c, rps, pg, (pg > 0 ? rps / pg : 0) }')")
      RESULT_JSON+=("$(printf '{"search": "%s", "patients": %d, "resources": %d, "clients": %d, "rps": %s, "p50_ms": %s, "p95_ms": %s, "p99_ms": %s, "pgbench_tps": %s, "errors": %d}' \
        "$name" "$size" "$resources" "$c" "$(field rps "$W_LINE")" "$(field p50_ms "$W_LINE")" \
        "$(field p95_ms "$W_LINE")" "$(field p99_ms "$W_LINE")" "$PG_TPS" \
        "$(($(field status_errors "$W_LINE") + $(field socket_errors "$W_LINE")))")")
      P50[$name/$size/$c]=$(field p50_ms "$W_LINE")
      P99[$name/$size/$c]=$(field p99_ms "$W_LINE")
      RPS[$name/$size/$c]=$(field rps "$W_LINE")
      RESULT_ROWS+=("$(awk -v n="$name" -v res="$resources" -v c="$c" -v rps="$(field rps "$W_LINE")" \
        -v p50="$(field p50_ms "$W_LINE")" -v p95="$(field p95_ms "$W_LINE")" \
        -v p99="$(field p99_ms "$W_LINE")" -v m="$(field matches_mean "$probe")" \
        -v i="$(field included_mean "$probe")" -v e="$(field empty_pct "$probe")" \
        -v b="$(field bytes_mean "$probe")" -v err="$(($(field status_errors "$W_LINE") + $(field socket_errors "$W_LINE")))" \
        'BEGIN { printf "| %s | %d | %d | %.0f | %.2f ms | %.2f ms | %.2f ms | %.1f%s | %d%% | %.1f kB |%s", n, res, c, rps, p50, p95, p99, m, (i > 0 ? sprintf(" + %.1f incl.", i) : ""), e, b / 1024, (err > 0 ? " " err " errors" : "") }')")
    done
  done
done

# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------
pg_version=$(sql "SHOW server_version")
pg_settings=$(sql "SELECT string_agg(name || '=' || setting || COALESCE(unit, ''), ', ' ORDER BY name)
  FROM pg_settings WHERE name IN ('shared_buffers', 'work_mem', 'effective_cache_size',
    'random_page_cost', 'fsync', 'synchronous_commit')")
rev=$(git rev-parse --short HEAD 2>/dev/null || echo 'no commit')
git diff --quiet HEAD 2>/dev/null || rev="$rev with uncommitted changes"
wrk_version=$({ wrk -v 2>&1 || true; } | sed -n '1s/^wrk \([^ ]*\).*/\1/p')
load_after=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo '?')
elapsed=$(($(date +%s) - started))
first=${SIZES[0]}
last=${SIZES[${#SIZES[@]} - 1]}
busy=""
if awk -v l="$load_before" -v n="$(nproc)" 'BEGIN { exit !(l + 0 > n / 2) }'; then
  busy="**The machine was busy before the run (load average $load_before on $(nproc) CPUs): take these figures as rough.**"
  warn "load average $load_before before the run: the figures are noisy"
fi
{
  cat <<EOF
# Invicta search benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')

- Machine: $(machine_line); load average (1 min) $load_before before the run, $load_after after.
- PostgreSQL $pg_version ($pg_settings).
- Build: $rev, \`$BIN\`; wrk $wrk_version; $(python3 --version).
- Server, PostgreSQL, the loader and wrk all run on this machine, over loopback. Server log
  level \`INVICTA_LOG=$LOG_LEVEL\`; pool INVICTA_DB_POOL=${INVICTA_DB_POOL:-16 (default)}.
- Population: \`bench/generate.py\` (seed $SEED), about 50 resources per patient; measured at
  ${SIZES[*]} patients. The whole run took $((elapsed / 60)) min $((elapsed % 60)) s.
- Each run ${DURATION}s after a ${WARMUP}s warm-up, wrk with min(clients, 2) threads. Every
  request draws a random patient among those loaded (bench/search/search.lua over
  $OUT/values-N.tsv), so most answers come from different index pages.
${busy:+
$busy
}
## Loading

$(loader_line | sed 's/^./\U&/').

| patients | added | resources | time | resources/s |
|---|---:|---:|---:|---:|
EOF
  if ((${#LOAD_ROWS[@]})); then printf '%s\n' "${LOAD_ROWS[@]}"; else echo "| (all loaded by an earlier run, BENCH_REUSE=1) | | | | |"; fi
  cat <<EOF

Bytes per resource: the heap (TOAST included) and the indexes of every table, over the
resources stored (current versions, history and index rows included in the bytes); WAL: bytes
written while loading that batch, per resource loaded.

| patients | resources | index rows | database size | heap B/resource | index B/resource | WAL B/resource loaded | VACUUM ANALYZE |
|---:|---:|---:|---:|---:|---:|---:|---:|
EOF
  printf '%s\n' "${SIZE_ROWS[@]}"
  cat <<EOF

## Searches

matches: mean entries with \`search.mode = match\` per answer (first page: 20 at most), over
200 sample requests; empty: share of those answers with no match (most patients have no alert).

| search | resources | clients | req/s | p50 | p95 | p99 | matches | empty | body |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|
EOF
  printf '%s\n' "${RESULT_ROWS[@]}"
  cat <<EOF

## Beside the database's ceiling

The same search's first-page statement (\`_explain=true\` gives it with its values, for a patient
in the middle of the value list) run by \`pgbench -M prepared\` with the same number of clients,
for the same time, right after the server's run: what PostgreSQL alone does with that SQL when
it is planned once per connection. The server's req/s include HTTP, JSON, planning where a
statement is not prepared, and any statement besides the first page's (counts, includes).

| search | resources | clients | server req/s | pgbench tps | server / pgbench |
|---|---:|---:|---:|---:|---:|
EOF
  printf '%s\n' "${CEIL_ROWS[@]}"
  if ((${#SIZES[@]} > 1)); then
    cat <<EOF

## Growth with the data

From ${RES_AT[$first]} to ${RES_AT[$last]} resources ($(awk -v a="${RES_AT[$first]}" -v b="${RES_AT[$last]}" 'BEGIN { printf "%.1f", b / a }')x):
latency at the larger size / latency at the smaller one (1.00 = no growth).

| search | clients | p50 | p50 ratio | p99 | p99 ratio | req/s ratio |
|---|---:|---:|---:|---:|---:|---:|
EOF
    for q in "${QUERIES[@]}"; do
      name=${q%%|*}
      for c in $CONCURRENCY; do
        awk -v n="$name" -v c="$c" -v a="${P50[$name/$first/$c]}" -v b="${P50[$name/$last/$c]}" \
          -v x="${P99[$name/$first/$c]}" -v y="${P99[$name/$last/$c]}" \
          -v r1="${RPS[$name/$first/$c]}" -v r2="${RPS[$name/$last/$c]}" \
          'BEGIN { printf "| %s | %d | %.2f → %.2f ms | %.2f | %.2f → %.2f ms | %.2f | %.2f |\n", n, c, a, b, (a > 0 ? b / a : 0), x, y, (x > 0 ? y / x : 0), (r1 > 0 ? r2 / r1 : 0) }'
      done
    done
  fi
  cat <<EOF

## The searches

| search | request (placeholders drawn per request) |
|---|---|
EOF
  for q in "${QUERIES[@]}"; do
    printf "| %s | \`GET %s\` |\n" "${q%%|*}" "${q#*|}"
  done
  cat <<EOF

Raw outputs in $OUT/: wrk-*.txt, probe-*.txt, load-*.txt, values-*.tsv, server.log. Query plans
of these shapes: crates/search/PLANS.md (\`scripts/plan-check.sh\`).
EOF
} >"$REPORT"

{
  printf '{"bench": "search", "date": "%s", "commit": "%s", "machine": "%s", "duration_s": %d, "sizes": [%s], "results": [%s]}\n' \
    "$(date -u +%FT%TZ)" "$rev" "$(machine_line | sed 's/"/\\"/g')" "$DURATION" \
    "$(IFS=,; echo "${SIZE_JSON[*]}")" "$(IFS=,; echo "${RESULT_JSON[*]}")"
} >"$JSON"
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$JSON" || die "wrote invalid JSON to $JSON"
cat "$REPORT"
