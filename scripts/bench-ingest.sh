#!/usr/bin/env bash
# bench-ingest.sh — `make bench-ingest`: ingest throughput in resources per second (not part of
# the tests).
#
# Three ways of writing data, each into a fresh database `invicta_ingest` (dropped and
# recreated), with the server, PostgreSQL (fsync on) and the load driver on this machine:
#
#   creates   POST /fhir/Observation (bench/create.lua), one resource per request, with wrk at
#             1 and 8 clients for a fixed time: resources/s = requests/s.
#   bundles   POST /fhir of 100-entry transaction Bundles, one per synthetic person
#             (bench/ingest/gen.py): a conditional create of the Patient by NHS number and 99
#             clinical resources referring to it by the conditional reference
#             Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|N or by its urn:uuid. Sent
#             by bench/ingest/post.py with INGEST_WORKERS keep-alive connections; every answer
#             must be a transaction-response with only 200/201 entries. Then a replay of the
#             first INGEST_REPLAY Bundles, which must not add a single version.
#   load      `invicta load` of the same people as NDJSON files with ids, into a fresh database;
#             then a replay of the Patient file, which must not add a version either. When the
#             build has no `load` subcommand the mode is reported as not available.
#
# By default 500,000 resources per mode (INGEST_RESOURCES; 100 per person). While the bundles
# and load modes run, bench/ingest/procstat.py records where the CPU went (server, PostgreSQL
# backends, WAL writer, checkpointer, driver, anything else; iowait and idle), the WAL written
# (bytes, records, full-page images, syncs and their time) and the commits; with `perf` (when
# it works here) a sampled profile of the whole machine is split into parsing, validation, index
# extraction, SQL, WAL and so on (bench/ingest/perfsplit.py). The report,
# target/bench/ingest.md (also printed), puts these side by side with a short reading. Raw
# outputs and the generated data (kept for the next run) in target/bench/ingest/. About 10
# minutes at the default size once built and generated.
#
# Knobs (environment):
#   INVICTA_BIN            use this binary instead of building target/release/invicta
#   INVICTA_LISTEN         server address, loopback only (default 127.0.0.1:8185)
#   INVICTA_DB_POOL        server pool size (default: the server's own)
#   INGEST_DB              database name (default invicta_ingest; dropped and recreated!)
#   INGEST_MODES           which modes, in order (default "creates bundles load")
#   INGEST_RESOURCES       resources per mode for bundles and load (default 500000; rounded up
#                          to whole people of 100; e.g. 20000 for a quick run)
#   INGEST_WORKERS         concurrent Bundle posts (default 4)
#   INGEST_REPLAY          Bundles re-posted after the run (default 50; 0 = none)
#   INGEST_PLAIN_POST=1    clinical entries as plain POSTs without ifNoneExist (the replay then
#                          adds resources, and is reported but not failed)
#   INGEST_SEED            generator seed (default: gen.py's)
#   INGEST_SPLIT           NDJSON lines per file (default 50000)
#   INGEST_CREATE_DURATION seconds per wrk run of the creates mode (default 15)
#   INGEST_CREATE_CLIENTS  wrk client counts (default "1 8")
#   INGEST_WARMUP          seconds of wrk warm-up before each creates run (default 2; 0 = none)
#   INGEST_PERF            1 = profile with perf, 0 = don't, auto (default) = when perf works
#   INGEST_PERF_DELAY      seconds into a mode before the profile starts (default 10)
#   INGEST_PERF_SECONDS    seconds profiled (default 20)
#   INGEST_LOAD_ARGS       extra arguments for `invicta load` (e.g. "--chunk 1000"; default none)
#   INGEST_TIMEOUT         seconds allowed per bundles/load run (default 3600)
#   INGEST_LOG             server log level, INVICTA_LOG (default warn)
#   DATABASE_URL           a PostgreSQL server to use instead of the local default / private
#                          cluster (see scripts/ensure-postgres.sh); must be on this machine
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PROG=bench-ingest
# shellcheck source=bench/search/lib.sh
source bench/search/lib.sh
trap 'printf "bench-ingest: error: unexpected failure (line %s): %s\n" "$LINENO" "$BASH_COMMAND" >&2' ERR

case ${1:-} in
  -h | --help)
    sed -n '2,/^set -/{/^set -/d;s/^# \{0,1\}//;p}' "$0"
    exit 0
    ;;
  '') ;;
  *) die "unknown argument '$1' (scripts/bench-ingest.sh takes no arguments; see --help)" ;;
esac

started=$(date +%s)
MODES=${INGEST_MODES:-creates bundles load}
RESOURCES=${INGEST_RESOURCES:-500000}
WORKERS=${INGEST_WORKERS:-4}
REPLAY=${INGEST_REPLAY:-50}
PLAIN_POST=${INGEST_PLAIN_POST:-0}
SEED=${INGEST_SEED:-$(sed -n 's/^DEFAULT_SEED = \([0-9]*\)$/\1/p' bench/ingest/gen.py)}
SPLIT=${INGEST_SPLIT:-50000}
CREATE_DURATION=${INGEST_CREATE_DURATION:-15}
CREATE_CLIENTS=${INGEST_CREATE_CLIENTS:-1 8}
WARMUP=${INGEST_WARMUP:-2}
PERF=${INGEST_PERF:-auto}
PERF_DELAY=${INGEST_PERF_DELAY:-10}
PERF_SECONDS=${INGEST_PERF_SECONDS:-20}
TIMEOUT=${INGEST_TIMEOUT:-3600}
read -r -a LOAD_ARGS <<<"${INGEST_LOAD_ARGS:-}"
LOG_LEVEL=${INGEST_LOG:-warn}
DB_NAME=${INGEST_DB:-invicta_ingest}
LISTEN=${INVICTA_LISTEN:-127.0.0.1:8185}
check_listen "$LISTEN"
OUT=target/bench/ingest
DATA=$OUT/data
REPORT=target/bench/ingest.md
TARGET_RPS=3000
STRETCH_RPS=5000

for m in $MODES; do
  [[ $m == creates || $m == bundles || $m == load ]] ||
    die "INGEST_MODES holds '$m'; the modes are: creates bundles load"
done
[[ $RESOURCES =~ ^[1-9][0-9]*$ ]] || die "INGEST_RESOURCES must be a positive number"
[[ $WORKERS =~ ^[1-9][0-9]*$ ]] || die "INGEST_WORKERS must be a positive number"
[[ $REPLAY =~ ^[0-9]+$ ]] || die "INGEST_REPLAY must be a number of Bundles"
[[ $PLAIN_POST == 0 || $PLAIN_POST == 1 ]] || die "INGEST_PLAIN_POST must be 0 or 1"
[[ $SEED =~ ^[0-9]+$ ]] || die "INGEST_SEED must be a number"
[[ $SPLIT =~ ^[1-9][0-9]*$ ]] || die "INGEST_SPLIT must be a positive number"
[[ $CREATE_DURATION =~ ^[1-9][0-9]*$ ]] || die "INGEST_CREATE_DURATION must be a positive number of seconds"
[[ $WARMUP =~ ^[0-9]+$ ]] || die "INGEST_WARMUP must be a number of seconds"
[[ $PERF == auto || $PERF == 0 || $PERF == 1 ]] || die "INGEST_PERF must be auto, 0 or 1"
[[ $PERF_DELAY =~ ^[0-9]+$ ]] || die "INGEST_PERF_DELAY must be a number of seconds"
[[ $PERF_SECONDS =~ ^[1-9][0-9]*$ ]] || die "INGEST_PERF_SECONDS must be a positive number"
[[ $TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "INGEST_TIMEOUT must be a positive number of seconds"
[[ $DB_NAME =~ ^[a-z_][a-z0-9_]*$ ]] || die "INGEST_DB must be a plain lower-case identifier"
for c in $CREATE_CLIENTS; do
  [[ $c =~ ^[1-9][0-9]*$ ]] || die "INGEST_CREATE_CLIENTS must hold positive numbers, got '$c'"
done
PEOPLE=$(((RESOURCES + 99) / 100))
RESOURCES=$((PEOPLE * 100))
((REPLAY <= PEOPLE)) || REPLAY=$PEOPLE
has_mode() { [[ " $MODES " == *" $1 "* ]]; }

# ---------------------------------------------------------------------------------------------
# Tools, build, PostgreSQL
# ---------------------------------------------------------------------------------------------
need_tool curl curl
has_mode creates && need_tool wrk wrk
need_python
need_tool psql postgresql-client
if [[ $PERF != 0 ]]; then
  if ! command -v perf >/dev/null 2>&1 ||
    ! perf record -q -F 99 -a -o /dev/null -- sleep 0.1 >/dev/null 2>&1; then
    [[ $PERF == 1 ]] && die "INGEST_PERF=1 but \`perf record -a\` does not work here (missing, or kernel.perf_event_paranoid too high)"
    say "perf is not usable here: no profile (INGEST_PERF=1 to insist, 0 to silence)"
    PERF=0
  else
    PERF=1
  fi
fi
mkdir -p "$OUT" "$DATA"
# One run at a time: two runs would drop each other's database and outputs.
if command -v flock >/dev/null 2>&1; then
  exec 9>>"$OUT/.lock"
  flock -n 9 || die "another scripts/bench-ingest.sh is running (it holds $OUT/.lock); wait for it to end"
fi
build_server
# Only this script's outputs (the generated data in $DATA is kept for the next run).
rm -f "$REPORT" "$OUT"/*.txt "$OUT"/*.json "$OUT"/*.log "$OUT"/*.data "$OUT"/*.data.old \
  "$OUT"/failures-*.txt

say "preparing PostgreSQL"
ADMIN_URL=$(scripts/ensure-postgres.sh)
is_loopback_host "$(url_host "$ADMIN_URL")" ||
  die "PostgreSQL must run on this machine (loopback); refusing $(url_host "$ADMIN_URL")"
sql() { sql_at "$DB_URL" "$1"; }
pg_is_superuser=$(sql_at "$ADMIN_URL" "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")

# fresh: drop and recreate the database; WAL sync times recorded when we may ask for them.
fresh() {
  say "fresh database $DB_NAME"
  fresh_database "$DB_NAME"
  if [[ $pg_is_superuser == t ]]; then
    sql_at "$ADMIN_URL" "ALTER DATABASE \"$DB_NAME\" SET track_wal_io_timing = on" >/dev/null
  fi
}
checkpoint() { sql "CHECKPOINT" >/dev/null 2>&1 || true; }

# ---------------------------------------------------------------------------------------------
# Data (generated once per size, seed and generator; kept in $DATA)
# ---------------------------------------------------------------------------------------------
GEN_DIGEST=$(sha256sum bench/ingest/gen.py | cut -c1-12)
GEN_FLAGS=()
BUNDLES=$DATA/bundles-$PEOPLE-$SEED-$GEN_DIGEST.ndjson
if [[ $PLAIN_POST == 1 ]]; then
  GEN_FLAGS=(--plain-post)
  BUNDLES=$DATA/bundles-$PEOPLE-$SEED-$GEN_DIGEST-plain.ndjson
fi
NDJSON_DIR=$DATA/ndjson-$PEOPLE-$SEED-$SPLIT-$GEN_DIGEST
if has_mode bundles && [[ ! -s $BUNDLES ]]; then
  rm -f "$DATA"/bundles-*.ndjson
  say "generating $PEOPLE transaction Bundles ($RESOURCES resources) into $BUNDLES"
  python3 bench/ingest/gen.py bundles --people "$PEOPLE" --seed "$SEED" -o "$BUNDLES" \
    ${GEN_FLAGS[@]+"${GEN_FLAGS[@]}"} >"$OUT/gen-bundles.txt" ||
    die "generating the Bundles failed"
  say "$(cat "$OUT/gen-bundles.txt")"
fi
if has_mode load && [[ ! -f $NDJSON_DIR/.complete ]]; then
  rm -rf "$DATA"/ndjson-*
  say "generating $RESOURCES resources as NDJSON into $NDJSON_DIR"
  python3 bench/ingest/gen.py ndjson --people "$PEOPLE" --seed "$SEED" --dir "$NDJSON_DIR" \
    --split "$SPLIT" >"$OUT/gen-ndjson.txt" || die "generating the NDJSON files failed"
  touch "$NDJSON_DIR/.complete"
  say "$(cat "$OUT/gen-ndjson.txt")"
fi

# ---------------------------------------------------------------------------------------------
# Measuring helpers
# ---------------------------------------------------------------------------------------------
# snap NAME [SERVER_PID]: a procstat snapshot into $OUT/snap-NAME.json.
snap() {
  python3 bench/ingest/procstat.py snapshot --db-url "$DB_URL" --db "$DB_NAME" \
    --server-pid "${2:-0}" -o "$OUT/snap-$1.json"
}

# watch NAME PID [SERVER_PID]: follows PID (the driver, or invicta load) to its end in the
# background, reading every process's CPU; the closing snapshot goes to $OUT/snap-NAME-1.json.
WATCH_PID=""
watch() {
  python3 bench/ingest/procstat.py watch --pid "$2" --db-url "$DB_URL" --db "$DB_NAME" \
    --server-pid "${3:-0}" -o "$OUT/snap-$1-1.json" &
  WATCH_PID=$!
}
watched() { # waits for the watcher; dies when it failed
  wait "$WATCH_PID" || die "bench/ingest/procstat.py watch failed"
  WATCH_PID=""
}

# Profile: start_perf NAME waits INGEST_PERF_DELAY seconds while PID lives, then records the
# whole machine for INGEST_PERF_SECONDS in the background; stop_perf ends it early if needed.
PERF_PID=""
PERF_NAME=""
start_perf() {
  local name=$1 pid=$2 waited=0
  ((PERF == 1)) || return 0
  while ((waited < PERF_DELAY * 10)) && kill -0 "$pid" 2>/dev/null; do
    sleep 0.1
    waited=$((waited + 1))
  done
  kill -0 "$pid" 2>/dev/null || return 0
  snap "perf-$name"
  say "$name: profiling the machine for ${PERF_SECONDS}s with perf"
  perf record -a -g --call-graph dwarf,16384 -F 49 -o "$OUT/perf-$name.data" \
    -- sleep "$PERF_SECONDS" >"$OUT/perf-record-$name.log" 2>&1 &
  PERF_PID=$!
  PERF_NAME=$name
}
stop_perf() {
  [[ -n $PERF_PID ]] || return 0
  if kill -0 "$PERF_PID" 2>/dev/null; then
    kill -INT "$PERF_PID" 2>/dev/null || true
  fi
  wait "$PERF_PID" 2>/dev/null || true
  PERF_PID=""
}
trap 'stop_server; stop_perf; [[ -z $WATCH_PID ]] || wait "$WATCH_PID" 2>/dev/null || true' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# perf_split NAME INVICTA_PIDS: the profile's samples by process and phase, as JSON
# ($OUT/perf-NAME.json); without pids, invicta is any process with a thread named invicta*.
perf_split() {
  local name=$1 pid=$2
  [[ -s $OUT/perf-$name.data ]] || return 0
  say "$name: reading the profile"
  perf script -i "$OUT/perf-$name.data" -F comm,pid,tid,time,ip,sym,dso --no-inline 2>/dev/null |
    python3 bench/ingest/perfsplit.py --invicta-pid "$pid" --snapshot "$OUT/snap-perf-$name.json" \
      --db "$DB_NAME" >"$OUT/perf-$name.json" 2>"$OUT/perf-split-$name.log" ||
    { warn "could not read the profile of $name (see $OUT/perf-split-$name.log)"; rm -f "$OUT/perf-$name.json"; }
}

# Loaded resources by type, one "Type=N" a line.
counts_by_type() {
  sql "SELECT res_type || '=' || count(*) FROM resource WHERE NOT deleted GROUP BY res_type ORDER BY res_type"
}
# Clinical resources whose compartment names no stored Patient (a reference left unresolved).
orphans() {
  sql "SELECT count(*) FROM resource r WHERE r.res_type <> 'Patient' AND NOT r.deleted
    AND NOT EXISTS (SELECT 1 FROM resource p WHERE p.res_type = 'Patient' AND NOT p.deleted
      AND p.id = ANY (r.compartments))"
}
history_count() { sql "SELECT count(*) FROM resource_history"; }
resource_count() { sql "SELECT count(*) FROM resource WHERE NOT deleted"; }
# What a stored resource costs: its body, its index rows (counted), the database.
storage_line() {
  local tables counts
  tables=$(sql "SELECT string_agg(format('(SELECT count(*) FROM %I)', tablename), ' + ')
    FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE 'idx\_%'")
  counts=${tables:-0}
  sql "SELECT format('stored body %s B on average; %s index rows per resource; database %s',
      (SELECT round(avg(length(body))) FROM resource WHERE NOT deleted),
      round(($counts)::numeric / GREATEST(1, (SELECT count(*) FROM resource WHERE NOT deleted)), 1),
      pg_size_pretty(pg_database_size(current_database())))"
}

load_before=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo '?')
FAILED=()                  # what failed, for the summary and the exit status
SUMMARY_ROWS=()
declare -A SECTION         # mode -> markdown

verdict() { # resources/s -> against the target
  awk -v r="$1" -v t="$TARGET_RPS" -v s="$STRETCH_RPS" 'BEGIN {
    if (r >= s) print "meets the stretch target (" s ")";
    else if (r >= t) print "meets the target (" t ")";
    else printf "%.0f%% of the target (%d)\n", 100 * r / t, t }'
}

# where_section NAME RESOURCES SECONDS [where.py options]: the "where the time goes" markdown of
# mode NAME from its snapshots (and profile).
where_section() {
  local name=$1 resources=$2 seconds=$3
  shift 3
  local perf=()
  [[ -s $OUT/perf-$name.json ]] && perf=(--perf "$OUT/perf-$name.json")
  python3 bench/ingest/where.py --diff "$OUT/cpu-$name.txt" --resources "$resources" \
    --seconds "$seconds" "$@" ${perf[@]+"${perf[@]}"}
}

# ---------------------------------------------------------------------------------------------
# Mode 1: single creates
# ---------------------------------------------------------------------------------------------
mode_creates() {
  local c t name line rows=() errs rps pid kv
  fresh
  start_server "$OUT/server-creates.log"
  for c in $CREATE_CLIENTS; do
    name=creates-c$c
    t=$((c < 2 ? 1 : 2))
    if ((WARMUP > 0)); then
      wrk -t "$t" -c "$c" -d "${WARMUP}s" --timeout 10s -s bench/create.lua "$BASE" \
        >"$OUT/wrk-$name-warmup.txt" 2>&1 || die "wrk warm-up failed (see $OUT/wrk-$name-warmup.txt)"
    fi
    checkpoint
    say "$name: POST /fhir/Observation, $c client(s), ${CREATE_DURATION}s"
    snap "$name-0" "$SERVER_PID"
    wrk -t "$t" -c "$c" -d "${CREATE_DURATION}s" --timeout 10s -s bench/create.lua "$BASE" \
      >"$OUT/wrk-$name.txt" 2>&1 &
    pid=$!
    watch "$name" "$pid" "$SERVER_PID"
    wait "$pid" || die "wrk failed (see $OUT/wrk-$name.txt)"
    watched
    line=$(grep '^BENCH ' "$OUT/wrk-$name.txt" || true)
    [[ -n $line ]] || die "no BENCH line in $OUT/wrk-$name.txt"
    python3 bench/ingest/procstat.py diff "$OUT/snap-$name-0.json" "$OUT/snap-$name-1.json" \
      --resources "$(field requests "$line")" >"$OUT/cpu-$name.txt"
    errs=$(($(field status_errors "$line") + $(field socket_errors "$line")))
    if ((errs > 0)); then
      warn "$name: $errs failed requests (see $OUT/wrk-$name.txt and $OUT/server-creates.log)"
      FAILED+=("creates: $errs failed requests at $c clients")
    fi
    rps=$(field rps "$line")
    kv=$(tr '\n' ' ' <"$OUT/cpu-$name.txt")
    rows+=("$(awk -v c="$c" -v n="$(field requests "$line")" -v s="$(field duration_s "$line")" \
      -v r="$rps" -v p50="$(field p50_ms "$line")" -v p99="$(field p99_ms "$line")" -v e="$errs" \
      -v sv="$(field cpu_server "$kv")" -v pg="$(field cpu_postgres "$kv")" -v drv="$(field cpu_driver "$kv")" \
      -v busy="$(field cpu_machine_busy "$kv")" -v io="$(field cpu_machine_iowait "$kv")" \
      -v wal="$(field wal_bytes_per_resource "$kv")" -v sync="$(field wal_sync_ms_avg "$kv")" \
      -v sps="$(field wal_syncs_per_s "$kv")" \
      'BEGIN { printf "| %d | %d | %.1f s | **%.0f** | %.2f ms | %.2f ms | %d | %.2f | %.2f | %.2f | %.2f / %.2f | %.1f kB | %.0f/s, %s ms |", c, n, s, r, p50, p99, e, sv, pg, drv, busy, io, wal / 1024, sps, (sync == "" ? "–" : sync) }')")
    SUMMARY_ROWS+=("| single creates (POST /fhir/Observation), $c client(s) | $(field requests "$line") | $(field duration_s "$line") s | **$(printf '%.0f' "$rps")** | – | $errs failed |")
  done
  stop_server
  SECTION[creates]=$(
    cat <<EOF
## 1. Single creates

\`POST /fhir/Observation\` of one lab result (bench/create.lua, bench/observation.lua: server-assigned
ids), each request a transaction of its own, with wrk for ${CREATE_DURATION}s per run after a
${WARMUP}s warm-up. resources/s = requests/s. CPU in cores (1.00 = one core busy throughout; the
machine has $(nproc)): the server process, all PostgreSQL processes, and the whole machine (busy /
iowait). WAL per resource, and WAL syncs (fsync) per second with their average time, from
pg_stat_wal.

| clients | resources | time | resources/s | p50 | p99 | errors | server CPU | PostgreSQL CPU | wrk CPU | machine busy / iowait | WAL / resource | WAL syncs, average |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
$(printf '%s\n' "${rows[@]}")
EOF
  )
}

# ---------------------------------------------------------------------------------------------
# Mode 2: transaction Bundles
# ---------------------------------------------------------------------------------------------
mode_bundles() {
  local line rc=0 pid h0 h1 r0 r1 replay_line="" replay_note orph types patients storage failkinds
  fresh
  start_server "$OUT/server-bundles.log"
  checkpoint
  say "bundles: POST /fhir, $PEOPLE transaction Bundles of 100 entries, $WORKERS workers"
  snap bundles-0 "$SERVER_PID"
  timeout "$TIMEOUT" python3 bench/ingest/post.py --base-url "$BASE/fhir" --input "$BUNDLES" \
    --workers "$WORKERS" --failures "$OUT/failures-bundles.txt" >"$OUT/post-bundles.txt" &
  pid=$!
  watch bundles "$pid" "$SERVER_PID"
  start_perf bundles "$pid"
  wait "$pid" || rc=$?
  watched
  stop_perf
  ((rc != 124)) || die "the Bundles took longer than ${TIMEOUT}s (INGEST_TIMEOUT)"
  line=$(grep '^INGEST ' "$OUT/post-bundles.txt" || true)
  [[ -n $line ]] || die "bundles: the driver printed no result (exit $rc; see above and $OUT/server-bundles.log)"
  if ((rc != 0)); then
    warn "bundles: $(field failures "$line") of $PEOPLE Bundles failed; the first answers are in $OUT/failures-bundles.txt"
    FAILED+=("bundles: $(field failures "$line") of $PEOPLE Bundles failed (see $OUT/failures-bundles.txt)")
  fi
  say "bundles: ${line#INGEST }"
  python3 bench/ingest/procstat.py diff "$OUT/snap-bundles-0.json" "$OUT/snap-bundles-1.json" \
    --resources "$(field resources "$line")" --driver-cpu-s "$(field driver_cpu_s "$line")" \
    >"$OUT/cpu-bundles.txt"
  perf_split bundles "$SERVER_PID"

  types=$(counts_by_type | paste -sd' ')
  storage=$(storage_line)
  failkinds=$(sed -n 's/^FAILED /- /p' "$OUT/post-bundles.txt")
  patients=$(sql "SELECT count(*) FROM resource WHERE res_type = 'Patient' AND NOT deleted")
  orph=$(orphans)
  if ((rc == 0)) && [[ $patients != "$PEOPLE" ]]; then
    FAILED+=("bundles: $patients Patients stored for $PEOPLE people (the conditional create did not find or create exactly one per person)")
  fi
  if [[ $orph != 0 ]]; then
    FAILED+=("bundles: $orph clinical resources are in no stored Patient's compartment (a conditional or urn:uuid reference not resolved)")
  fi

  replay_note="not run (INGEST_REPLAY=0)"
  if ((REPLAY > 0)); then
    h0=$(history_count)
    r0=$(resource_count)
    say "bundles: replaying the first $REPLAY Bundles"
    rc=0
    python3 bench/ingest/post.py --base-url "$BASE/fhir" --input "$BUNDLES" --workers "$WORKERS" \
      --limit "$REPLAY" --progress 0 --failures "$OUT/failures-replay.txt" >"$OUT/post-replay.txt" || rc=$?
    replay_line=$(grep '^INGEST ' "$OUT/post-replay.txt" || true)
    h1=$(history_count)
    r1=$(resource_count)
    replay_note="$REPLAY Bundles ($((REPLAY * 100)) entries) re-posted: resource_history $h0 → $h1 versions, resource $r0 → $r1 rows; answers: $(field created "$replay_line") created (201), $(field unchanged "$replay_line") unchanged (200), $(field failures "$replay_line") failed Bundles, in $(field seconds "$replay_line") s."
    if ((rc != 0)); then
      FAILED+=("bundles replay: $(field failures "$replay_line") of $REPLAY Bundles failed (see $OUT/failures-replay.txt): $(sed -n 's/^FAILED //p' "$OUT/post-replay.txt" | head -n 3 | paste -sd';')")
    elif [[ $PLAIN_POST == 0 && $h0 != "$h1" ]]; then
      FAILED+=("bundles replay: resource_history went from $h0 to $h1 versions (expected no change)")
      replay_note="$replay_note **Not idempotent.**"
    elif [[ $PLAIN_POST == 0 ]]; then
      replay_note="$replay_note Idempotent: no version added."
    else
      replay_note="$replay_note (INGEST_PLAIN_POST=1: plain POSTs create new resources, as expected.)"
    fi
    say "bundles replay: resource_history $h0 → $h1"
  fi
  stop_server

  local rps=$(field rps "$line")
  SUMMARY_ROWS+=("| transaction Bundles (100 entries, $WORKERS workers) | $(field resources "$line") | $(field seconds "$line") s | **$(printf '%.0f' "$rps")** | $(verdict "$rps") | $(field failures "$line") failed Bundles |")
  SECTION[bundles]=$(
    cat <<EOF
## 2. Transaction Bundles

\`POST /fhir\` (\`Content-Type: application/fhir+json\`, \`Prefer: return=minimal\`) of $PEOPLE
transaction Bundles of 100 entries, one per synthetic person (bench/ingest/gen.py, seed $SEED),
by bench/ingest/post.py with $WORKERS threads on keep-alive connections, into a fresh database.
Entry 0: \`POST Patient\` with \`ifNoneExist: identifier=https://fhir.nhs.uk/Id/nhs-number|N\` (a
valid Modulus-11 NHS number) and a hospital number. Entries 1-99: 70 lab Observations (LOINC,
category laboratory, valueQuantity, reference range, encounter), 8 Encounters, 8 Conditions, 10
MedicationStatements, 3 AllergyIntolerances, whose subject/patient is the conditional reference
\`Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|N\` (half) or the Patient's \`urn:uuid:\`
(the other half); Observations name their Encounter by its \`urn:uuid:\`.
$(if [[ $PLAIN_POST == 1 ]]; then
      echo "INGEST_PLAIN_POST=1: the 99 clinical entries are plain \`POST\`s without a condition."
    else
      echo "So that a replay changes nothing, Observation, MedicationStatement and AllergyIntolerance are \`POST\` with \`ifNoneExist: identifier=<source system>|<key>\` (a conditional create each), and Encounter and Condition, which this server cannot search, are \`PUT Type/<key>\`."
    fi)

| Bundles | resources | created (201) | unchanged (200) | time | resources/s | Bundles/s | Bundle p50 | p95 | p99 | failed Bundles |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
$(awk -v l=" $line" 'function f(k,  m) { if (match(l, " " k "=[^ ]*")) return substr(l, RSTART + length(k) + 2, RLENGTH - length(k) - 2); return "" }
  BEGIN { printf "| %d | %d | %d | %d | %.1f s | **%.0f** | %.1f | %.0f ms | %.0f ms | %.0f ms | %d |\n", f("bundles"), f("resources"), f("created"), f("unchanged"), f("seconds"), f("rps"), f("bundles_per_s"), f("p50_ms"), f("p95_ms"), f("p99_ms"), f("failures") }')

Against the target: $(verdict "$rps").
${failkinds:+
**Failed Bundles** by status and OperationOutcome text (numbers replaced by N; the first answers
in full in $OUT/failures-bundles.txt):

$failkinds
}
Checks: stored resources by type: $types. Patients: $patients for $PEOPLE people. Clinical
resources in no stored Patient's compartment (unresolved references): $orph. Storage: $storage.

Replay: $replay_note

### Where the time goes (transaction Bundles)

$(where_section bundles "$(field resources "$line")" "$(field seconds "$line")" \
  --driver-cpu-s "$(field driver_cpu_s "$line")" --driver-label "load driver (post.py, $WORKERS threads)")
EOF
  )
}

# ---------------------------------------------------------------------------------------------
# Mode 3: invicta load
# ---------------------------------------------------------------------------------------------
LOAD_ENV=()
run_load() { # run_load OUTFILE FILES...: invicta load with the engine settings
  local out=$1
  shift
  env DATABASE_URL="$DB_URL" INVICTA_AUTH=off INVICTA_AUDIT=off INVICTA_LOG="$LOG_LEVEL" \
    "$BIN" load ${LOAD_ARGS[@]+"${LOAD_ARGS[@]}"} "$@" >"$out" 2>&1
}

mode_load() {
  local files=() rc=0 probe sub secs user sys loaded orph h0 h1 r0 r1 types rps replay_note storage
  mapfile -t files < <(find "$NDJSON_DIR" -name '*.ndjson' | sort)
  ((${#files[@]} > 0)) || die "no NDJSON files in $NDJSON_DIR"
  fresh
  env DATABASE_URL="$DB_URL" INVICTA_LOG="$LOG_LEVEL" "$BIN" migrate >"$OUT/migrate.log" 2>&1 ||
    { cat "$OUT/migrate.log" >&2; die "invicta migrate failed"; }

  # Does this build have `invicta load`? Try it on one Patient.
  probe=$OUT/load-probe.ndjson
  head -n 1 "${files[0]}" | sed 's/"id":"[^"]*"/"id":"ingest-probe"/' >"$probe"
  run_load "$OUT/load-probe.txt" "$probe" || rc=$?
  if ((rc != 0)) && grep -qiE "unknown (argument|command|subcommand)[^a-z]*'?load|unrecognized.*load" "$OUT/load-probe.txt"; then
    say "invicta load: not available in this build"
    SUMMARY_ROWS+=("| \`invicta load\` (NDJSON) | – | – | – | **not available in this build** | – |")
    SECTION[load]=$(
      cat <<EOF
## 3. \`invicta load\`

**invicta load: not available in this build.** \`$BIN load\` answered:

    $(head -c 400 "$OUT/load-probe.txt" | tr '\n' ' ')

The $RESOURCES resources are ready as NDJSON in $NDJSON_DIR (${#files[@]} files); rerun with
\`INGEST_MODES=load\` once the subcommand exists.
EOF
    )
    return 0
  fi
  if ((rc != 0)) || [[ $(sql "SELECT count(*) FROM resource WHERE res_type = 'Patient' AND id = 'ingest-probe'") != 1 ]]; then
    FAILED+=("load: \`invicta load\` of one Patient failed (exit $rc; see $OUT/load-probe.txt)")
    SUMMARY_ROWS+=("| \`invicta load\` (NDJSON) | – | – | – | **failed on one Patient** | exit $rc |")
    SECTION[load]=$(
      printf '## 3. `invicta load`\n\n**Failed** on a one-Patient file (exit %s):\n\n```\n%s\n```\n' \
        "$rc" "$(head -c 2000 "$OUT/load-probe.txt")"
    )
    return 0
  fi

  fresh
  env DATABASE_URL="$DB_URL" INVICTA_LOG="$LOG_LEVEL" "$BIN" migrate >>"$OUT/migrate.log" 2>&1 ||
    { cat "$OUT/migrate.log" >&2; die "invicta migrate failed"; }
  checkpoint
  say "load: invicta load of ${#files[@]} NDJSON files ($RESOURCES resources)"
  snap load-0
  rc=0
  (
    TIMEFORMAT='%R %U %S'
    time timeout "$TIMEOUT" env DATABASE_URL="$DB_URL" INVICTA_AUTH=off INVICTA_AUDIT=off \
      INVICTA_LOG="$LOG_LEVEL" "$BIN" load ${LOAD_ARGS[@]+"${LOAD_ARGS[@]}"} "${files[@]}" >"$OUT/load.txt" 2>&1
  ) 2>"$OUT/load-time.txt" &
  sub=$!
  watch load "$sub"
  start_perf load "$sub"
  wait "$sub" || rc=$?
  watched
  stop_perf
  read -r secs user sys <<<"$(tail -n 1 "$OUT/load-time.txt")"
  ((rc != 124)) || die "invicta load took longer than ${TIMEOUT}s (INGEST_TIMEOUT)"
  loaded=$(resource_count)
  if ((rc != 0)); then
    warn "invicta load exited with $rc (see $OUT/load.txt)"
    FAILED+=("load: invicta load exited with $rc after $loaded resources (see $OUT/load.txt)")
  elif [[ $loaded != "$RESOURCES" ]]; then
    FAILED+=("load: $loaded resources stored, $RESOURCES expected")
  fi
  python3 bench/ingest/procstat.py diff "$OUT/snap-load-0.json" "$OUT/snap-load-1.json" \
    --resources "$loaded" >"$OUT/cpu-load.txt"
  perf_split load "$(python3 bench/ingest/procstat.py descendants "$OUT/snap-load-1.json" --prefix invicta)"
  types=$(counts_by_type | paste -sd' ')
  storage=$(storage_line)
  orph=$(orphans)
  [[ $orph == 0 ]] || FAILED+=("load: $orph clinical resources are in no stored Patient's compartment")

  # Replay: the Patient files again (stored as updates under their ids; no change expected).
  local pfiles=()
  mapfile -t pfiles < <(printf '%s\n' "${files[@]}" | grep -- '-Patient-')
  h0=$(history_count)
  r0=$(resource_count)
  say "load: replaying ${pfiles[*]}"
  local rrc=0
  run_load "$OUT/load-replay.txt" "${pfiles[@]}" || rrc=$?
  h1=$(history_count)
  r1=$(resource_count)
  replay_note="\`invicta load\` of the Patient file(s) again ($PEOPLE lines with ids): exit $rrc, resource_history $h0 → $h1 versions, resource $r0 → $r1 rows."
  if ((rrc != 0)); then
    FAILED+=("load replay: exit $rrc (see $OUT/load-replay.txt)")
  elif [[ $h0 != "$h1" ]]; then
    FAILED+=("load replay: resource_history went from $h0 to $h1 versions (expected no change)")
    replay_note="$replay_note **Not idempotent.**"
  else
    replay_note="$replay_note Idempotent: no version added."
  fi

  rps=$(awk -v n="$loaded" -v s="$secs" 'BEGIN { printf "%.1f", (s > 0 ? n / s : 0) }')
  SUMMARY_ROWS+=("| \`invicta load\` (NDJSON, ${#files[@]} files) | $loaded | $secs s | **$(printf '%.0f' "$rps")** | $(verdict "$rps") | exit $rc |")
  SECTION[load]=$(
    cat <<EOF
## 3. \`invicta load\`

\`$BIN load${LOAD_ARGS[*]+ ${LOAD_ARGS[*]}}\` of the same $PEOPLE people as NDJSON (${#files[@]} files of at most $SPLIT lines, one
resource per line, with ids, references as \`Patient/<id>\`; Patient files first) into a fresh,
migrated database, \`INVICTA_AUTH=off INVICTA_AUDIT=off\`. Time is the whole process, start-up
included.

| files | resources stored | time | resources/s | load CPU (user + sys) | exit |
|---:|---:|---:|---:|---:|---:|
| ${#files[@]} | $loaded | $secs s | **$(printf '%.0f' "$rps")** | ${user}s + ${sys}s | $rc |

Against the target: $(verdict "$rps").

Its summary:

\`\`\`
$({ grep -vE '^[0-9]+ files?, [0-9]+ resources, ' "$OUT/load.txt" || true; } | tail -n 12)
\`\`\`

Checks: stored resources by type: $types. Clinical resources in no stored Patient's
compartment: $orph. Storage: $storage.

Replay: $replay_note

### Where the time goes (\`invicta load\`)

$(where_section load "$loaded" "$secs" --load \
  --app-cpu-s "$(awk -v u="${user:-0}" -v s="${sys:-0}" 'BEGIN { print u + s }')")
EOF
  )
}

for m in $MODES; do
  "mode_$m"
done

# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------
DB_URL=$ADMIN_URL
pg_version=$(sql "SHOW server_version")
pg_settings=$(sql "SELECT string_agg(name || '=' || setting || COALESCE(unit, ''), ', ' ORDER BY name)
  FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'wal_level',
    'shared_buffers', 'max_wal_size', 'checkpoint_timeout', 'wal_compression', 'autovacuum',
    'commit_delay')")
pg_fsync=$(sql "SHOW fsync")
rev=$(git rev-parse --short HEAD 2>/dev/null || echo 'no commit')
git diff --quiet HEAD 2>/dev/null || rev="$rev with uncommitted changes"
load_after=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo '?')
elapsed=$(($(date +%s) - started))
busy=""
if awk -v l="$load_before" -v n="$(nproc)" 'BEGIN { exit !(l + 0 > n / 2) }'; then
  busy="**The machine was busy before the run (load average $load_before on $(nproc) CPUs): other work competed for the CPUs, so take these figures as rough.**"
  warn "load average $load_before before the run: the figures are noisy"
fi
{
  cat <<EOF
# Invicta ingest benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')

- Machine: $(machine_line); nproc $(nproc); load average (1 min) $load_before before the run,
  $load_after after.
- PostgreSQL $pg_version, **fsync=$pg_fsync** ($pg_settings), on this machine over loopback.
- Build: $rev, \`$BIN\`; $(python3 --version)$(if has_mode creates; then printf '; '; { wrk -v 2>&1 || true; } | sed -n '1s/^\(wrk [^ ]*\).*/\1/p'; fi).
- Server \`INVICTA_AUTH=off INVICTA_AUDIT=off\` (the engine), \`INVICTA_LOG=$LOG_LEVEL\`, pool
  INVICTA_DB_POOL=${INVICTA_DB_POOL:-default}; the load driver runs on the same $(nproc) CPUs.
- $RESOURCES resources per mode ($PEOPLE people of 100), modes: $MODES. The whole run took
  $((elapsed / 60)) min $((elapsed % 60)) s.
${busy:+
$busy
}
Target (for transaction Bundles and \`invicta load\`): at least $TARGET_RPS resources/s, stretch
$STRETCH_RPS.

| mode | resources | time | resources/s | against the target | failures |
|---|---:|---:|---:|---|---|
EOF
  printf '%s\n' "${SUMMARY_ROWS[@]}"
  if ((${#FAILED[@]})); then
    printf '\n**Failures:**\n\n'
    printf -- '- %s\n' "${FAILED[@]}"
  fi
  for m in $MODES; do
    printf '\n%s\n' "${SECTION[$m]:-}"
  done
  cat <<EOF

Raw outputs in $OUT/: post-*.txt (driver), failures-*.txt (first failed answers), wrk-*.txt,
load*.txt, snap-*.json and cpu-*.txt (CPU and WAL counters), perf-*.data and perf-*.json (profiles),
server-*.log. Generated data in $DATA/ (kept; delete it to regenerate).
EOF
} >"$REPORT"

cat "$REPORT"
if ((${#FAILED[@]})); then
  die "$(printf '%s; ' "${FAILED[@]}")see $REPORT"
fi
