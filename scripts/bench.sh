#!/usr/bin/env bash
# bench.sh — `make bench`: a first benchmark of Invicta (not part of the tests).
#
# Measures create (POST /fhir/Observation) and read-by-id (GET /fhir/Observation/{id})
# throughput and p50/p95/p99 latency over HTTP with wrk, and beside each figure the ceiling of
# the same SQL run directly with pgbench against the same tables in the same database, in the
# same run: ratio = server req/s / pgbench tps. Everything stays on this machine: the server
# listens on loopback and PostgreSQL is reached on loopback (or a local socket).
#
# Steps: build target/release/invicta; drop and recreate the database `invicta_bench`; start
# the server (it applies the migrations); create obs-1..obs-2000 with PUT; then for each
# operation and concurrency a short wrk warm-up, a wrk run, a pgbench run (-M prepared: the
# ceiling) and a pgbench run "as the server talks" (-M extended);
# finally GET /health (no database) as an HTTP baseline. About 3 minutes. Results go to
# target/bench/: results.md (the tables, also printed) and the raw outputs (wrk-*.txt,
# pgbench-*.txt, pgbench per-transaction logs, server.log). See bench/README.md.
#
# Knobs (environment):
#   INVICTA_BIN         use this binary instead of building target/release/invicta
#   INVICTA_LISTEN      server address, loopback only (default 127.0.0.1:8181)
#   INVICTA_DB_POOL     server pool size (default: the server's own, 16)
#   BENCH_DB            database name (default invicta_bench; dropped and recreated!)
#   BENCH_DURATION      seconds per measured run (default 10)
#   BENCH_WARMUP        seconds of wrk warm-up before each server run (default 2; 0 = none)
#   BENCH_CONCURRENCY   space-separated client counts (default "1 8")
#   BENCH_SEED          Observations created before the reads (default 2000)
#   BENCH_LOG           server log level, INVICTA_LOG (default warn: no per-request lines)
#   DATABASE_URL        a PostgreSQL server to use instead of the local default / private
#                       cluster (see scripts/ensure-postgres.sh); must be on this machine
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
CONCURRENCY=${BENCH_CONCURRENCY:-1 8}
SEED=${BENCH_SEED:-2000}
DB_NAME=${BENCH_DB:-invicta_bench}
LOG_LEVEL=${BENCH_LOG:-warn}
LISTEN=${INVICTA_LISTEN:-127.0.0.1:8181}
OUT=target/bench
BENCH_DIR=bench

say() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'bench: warning: %s\n' "$*" >&2; }
die() {
  printf 'bench: error: %s\n' "$*" >&2
  exit 1
}
# An unexpected failing command (set -e) still says where it happened.
trap 'printf "bench: error: unexpected failure (line %s): %s\n" "$LINENO" "$BASH_COMMAND" >&2' ERR

[[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "BENCH_DURATION must be a positive number of seconds"
[[ $WARMUP =~ ^[0-9]+$ ]] || die "BENCH_WARMUP must be a number of seconds"
[[ $SEED =~ ^[1-9][0-9]*$ ]] || die "BENCH_SEED must be a positive number"
[[ $DB_NAME =~ ^[a-z_][a-z0-9_]*$ ]] || die "BENCH_DB must be a plain lower-case identifier"
for c in $CONCURRENCY; do
  [[ $c =~ ^[1-9][0-9]*$ ]] || die "BENCH_CONCURRENCY must hold positive numbers, got '$c'"
done

# ---------------------------------------------------------------------------------------------
# Loopback only
# ---------------------------------------------------------------------------------------------
is_loopback_host() {
  case $1 in
    127.* | localhost | ::1 | '[::1]' | '') return 0 ;;
    *) return 1 ;;
  esac
}

listen_host=${LISTEN%:*}
listen_port=${LISTEN##*:}
[[ $listen_port =~ ^[0-9]+$ ]] || die "INVICTA_LISTEN must be HOST:PORT, got '$LISTEN'"
is_loopback_host "$listen_host" ||
  die "INVICTA_LISTEN must be a loopback address (127.0.0.1:PORT), got '$LISTEN'"
BASE="http://${LISTEN}"

# Host of a postgres:// URL (empty for a Unix socket).
url_host() {
  local rest=${1#*://}
  rest=${rest%%/*}
  rest=${rest##*@}
  if [[ $rest == \[* ]]; then
    rest=${rest%%]*}
    printf '%s' "${rest#[}"
  else
    printf '%s' "${rest%%:*}"
  fi
}

# ---------------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------------
apt_install() {
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    say "installing $* with apt-get"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >&2; then
      apt-get update >&2 || die "apt-get update failed"
      DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >&2 || die "apt-get install $* failed"
    fi
    return 0
  fi
  return 1
}

command -v curl >/dev/null 2>&1 || apt_install curl ||
  die "curl is missing; install it (Debian/Ubuntu: sudo apt-get install curl)"
command -v wrk >/dev/null 2>&1 || apt_install wrk ||
  die "wrk (the HTTP load driver) is missing; install it (Debian/Ubuntu: sudo apt-get install wrk)"

# pgbench ships with the PostgreSQL server package on Debian; found after ensure-postgres.sh.
find_pgbench() {
  local candidate best=""
  if command -v pgbench >/dev/null 2>&1; then
    command -v pgbench
    return 0
  fi
  for candidate in /usr/lib/postgresql/*/bin/pgbench; do
    [[ -x $candidate ]] && best=$candidate
  done
  [[ -n $best ]] && printf '%s\n' "$best"
}

# ---------------------------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------------------------
if [[ -n ${INVICTA_BIN:-} ]]; then
  BIN=$INVICTA_BIN
  [[ -x $BIN ]] || die "INVICTA_BIN=$BIN is not an executable"
  say "using $BIN (INVICTA_BIN)"
else
  say "building (release)"
  cargo build --release --bin invicta
  BIN=target/release/invicta
fi

mkdir -p "$OUT"
# Only this script's outputs: other tools (bench/body-storage.sh) also write to target/bench.
rm -f "$OUT"/results.md "$OUT"/wrk-*.txt "$OUT"/pgbench-*.txt "$OUT"/pgbench-*.log.* \
  "$OUT"/pgbench-*-as-server.sql "$OUT"/server.log "$OUT"/index-rows.txt "$OUT"/sample-create.json

# ---------------------------------------------------------------------------------------------
# Database: a dedicated one, dropped and recreated for a clean run
# ---------------------------------------------------------------------------------------------
say "preparing PostgreSQL database $DB_NAME"
ADMIN_URL=$(scripts/ensure-postgres.sh)
is_loopback_host "$(url_host "$ADMIN_URL")" ||
  die "PostgreSQL must run on this machine (loopback); refusing to benchmark against $(url_host "$ADMIN_URL")"
psql "$ADMIN_URL" -Xqv ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)" >/dev/null
DB_URL=$(scripts/db-url.sh "$DB_NAME")
is_loopback_host "$(url_host "$DB_URL")" || die "database URL is not on loopback"

PGBENCH=$(find_pgbench || true)
if [[ -z $PGBENCH ]]; then
  apt_install postgresql || true
  PGBENCH=$(find_pgbench || true)
fi
[[ -n $PGBENCH ]] ||
  die "pgbench is missing; install it (Debian/Ubuntu: sudo apt-get install postgresql)"

sql() { psql "$DB_URL" -XAtqv ON_ERROR_STOP=1 -c "$1"; }

# ---------------------------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------------------------
if curl -s -o /dev/null --max-time 2 "$BASE/" 2>/dev/null; then
  die "something already listens on $LISTEN; stop it or set INVICTA_LISTEN=127.0.0.1:OTHERPORT"
fi

SERVER_PID=""
cleanup() {
  local rc=$?
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "starting $BIN serve on $LISTEN (INVICTA_LOG=$LOG_LEVEL, output in $OUT/server.log)"
# The engine is measured without tokens or audit (comparable with pgbench); `make bench-auth`
# measures what access control and auditing add on top.
DATABASE_URL=$DB_URL INVICTA_LISTEN=$LISTEN INVICTA_BASE_URL="$BASE/fhir" INVICTA_LOG=$LOG_LEVEL \
  INVICTA_AUTH=off INVICTA_AUDIT=off "$BIN" serve >"$OUT/server.log" 2>&1 &
SERVER_PID=$!
ready=0
for _ in $(seq 1 300); do
  if curl -fs -o /dev/null --max-time 2 "$BASE/ready"; then
    ready=1
    break
  fi
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.1
done
if ((!ready)); then
  tail -n 20 "$OUT/server.log" >&2 || true
  die "the server did not become ready (see $OUT/server.log)"
fi

# ---------------------------------------------------------------------------------------------
# Data: obs-1..obs-SEED through the server (PUT with fixed ids), one connection
# ---------------------------------------------------------------------------------------------
say "creating $SEED Observations with PUT (obs-1..obs-$SEED)"
wrk -t 1 -c 1 -d 300s --timeout 10s -s "$BENCH_DIR/seed.lua" "$BASE" -- "$SEED" >"$OUT/wrk-seed.txt" 2>&1 ||
  { cat "$OUT/wrk-seed.txt" >&2; die "seeding with wrk failed"; }
seeded=$(sql "SELECT count(*) FROM resource WHERE res_type = 'Observation' AND id LIKE 'obs-%' AND NOT deleted")
[[ $seeded == "$SEED" ]] ||
  { cat "$OUT/wrk-seed.txt" >&2; die "expected $SEED seeded Observations, found $seeded (see $OUT/wrk-seed.txt)"; }

# The stored body of obs-1 is what pgbench inserts. A POST of it must answer 201, and
# pgbench-create.sql must write the index rows the server writes for this Observation (its
# "-- rows:" line): warn when the indexer changed.
BODY=$(sql "SELECT convert_from(body, 'UTF8') FROM resource WHERE res_type = 'Observation' AND id = 'obs-1'")
created=$(curl -s -o "$OUT/sample-create.json" -w '%{http_code}' -X POST "$BASE/fhir/Observation" \
  -H 'Content-Type: application/fhir+json' -H 'Accept: application/fhir+json' --data-binary "$BODY")
[[ $created == 201 ]] ||
  { cat "$OUT/sample-create.json" >&2; die "POST /fhir/Observation answered $created, not 201"; }
rid=$(sql "SELECT rid FROM resource WHERE res_type = 'Observation' AND id = 'obs-1'")
server_rows=$(sql "SELECT concat_ws(' ',
    'idx_date=' || (SELECT count(*) FROM idx_date WHERE rid = $rid),
    'idx_number=' || (SELECT count(*) FROM idx_number WHERE rid = $rid),
    'idx_quantity=' || (SELECT count(*) FROM idx_quantity WHERE rid = $rid),
    'idx_reference=' || (SELECT count(*) FROM idx_reference WHERE rid = $rid),
    'idx_string=' || (SELECT count(*) FROM idx_string WHERE rid = $rid),
    'idx_token=' || (SELECT count(*) FROM idx_token WHERE rid = $rid),
    'idx_uri=' || (SELECT count(*) FROM idx_uri WHERE rid = $rid))")
script_rows=$(sed -n 's/^-- rows: //p' "$BENCH_DIR/pgbench-create.sql")
printf 'server index rows per Observation: %s\npgbench-create.sql rows:            %s\n' \
  "$server_rows" "$script_rows" >"$OUT/index-rows.txt"
if [[ $server_rows != "$script_rows" ]]; then
  warn "the server writes index rows '$server_rows' per Observation but bench/pgbench-create.sql mirrors '$script_rows'; update it"
fi

sql "VACUUM ANALYZE" >/dev/null

# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------
threads_for() { # wrk/pgbench threads for $1 clients: at most 2, never more than clients
  if (($1 < 2)); then echo 1; else echo 2; fi
}

# Value of key=... in a BENCH line.
field() { sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" <<<" $2"; }

# Percentiles (ms) of the per-transaction latencies (µs, column 3) of pgbench logs $1.*
log_percentiles() {
  cat "$1".* 2>/dev/null | awk '{print $3}' | sort -n | awk '
    { v[NR] = $1 }
    END {
      if (NR == 0) { print "0 0 0"; exit }
      split("50 95 99", ps, " ")
      out = ""
      for (i = 1; i <= 3; i++) {
        k = int(NR * ps[i] / 100 + 0.999999); if (k < 1) k = 1; if (k > NR) k = NR
        out = out sprintf("%s%.3f", (i > 1 ? " " : ""), v[k] / 1000)
      }
      print out
    }'
}

# A checkpoint before each measured run, so that none lands in the middle of the next one
# (needs superuser or pg_checkpoint; skipped otherwise).
checkpoint() { sql "CHECKPOINT" >/dev/null 2>&1 || true; }

# wrk NAME CLIENTS SCRIPT URL [ARGS...]: one measured run (after a warm-up); sets W_LINE.
W_LINE=""
run_wrk() {
  local name=$1 c=$2 script=$3 url=$4 t errs
  shift 4
  t=$(threads_for "$c")
  if ((WARMUP > 0)); then
    wrk -t "$t" -c "$c" -d "${WARMUP}s" --timeout 10s -s "$script" "$url" -- "$@" \
      >"$OUT/wrk-$name-warmup.txt" 2>&1 || die "wrk warm-up failed (see $OUT/wrk-$name-warmup.txt)"
  fi
  checkpoint
  say "$name: wrk, ${DURATION}s"
  wrk -t "$t" -c "$c" -d "${DURATION}s" --timeout 10s -s "$script" "$url" -- "$@" \
    >"$OUT/wrk-$name.txt" 2>&1 || die "wrk failed (see $OUT/wrk-$name.txt)"
  W_LINE=$(grep '^BENCH ' "$OUT/wrk-$name.txt" || true)
  [[ -n $W_LINE ]] || die "no BENCH line in $OUT/wrk-$name.txt"
  errs=$(($(field status_errors "$W_LINE") + $(field socket_errors "$W_LINE")))
  ((errs == 0)) || warn "$name: $errs failed requests over HTTP (see $OUT/wrk-$name.txt)"
}

# pgbench NAME CLIENTS MODE SCRIPT: one run; sets P_TPS and P_LAT (average latency, ms).
P_TPS=""
P_LAT=""
run_pgbench() {
  local name=$1 c=$2 mode=$3 script=$4 t
  t=$(threads_for "$c")
  checkpoint
  say "$name: pgbench -M $mode, ${DURATION}s"
  "$PGBENCH" -n -M "$mode" -c "$c" -j "$t" -T "$DURATION" -D "seed=$SEED" -D "body=$BODY" \
    -f "$script" -l --log-prefix="$OUT/pgbench-$name.log" "$DB_URL" \
    >"$OUT/pgbench-$name.txt" 2>&1 || die "pgbench failed (see $OUT/pgbench-$name.txt)"
  P_TPS=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' "$OUT/pgbench-$name.txt")
  [[ -n $P_TPS ]] || P_TPS=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$OUT/pgbench-$name.txt" | tail -n 1)
  [[ -n $P_TPS ]] || die "no tps in $OUT/pgbench-$name.txt"
  P_LAT=$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' "$OUT/pgbench-$name.txt")
}

ROWS=()
PG_ROWS=()
HTTP_ROWS=()
load_before=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo '?')

for op in read create; do
  # The same statements the way a one-off statement is sent: unnamed (extended protocol,
  # parsed and planned each time). The pool checks a connection with `SELECT 1` only when it
  # has not been checked for a second, so that round trip is left out.
  { echo '-- generated by scripts/bench.sh: bench/pgbench-'"$op"'.sql as a one-off statement'
    cat "$BENCH_DIR/pgbench-$op.sql"; } >"$OUT/pgbench-$op-as-server.sql"
  for c in $CONCURRENCY; do
    run_wrk "$op-c$c" "$c" "$BENCH_DIR/$op.lua" "$BASE" "$SEED"
    run_pgbench "$op-c$c" "$c" prepared "$BENCH_DIR/pgbench-$op.sql"
    read -r -a pg_p <<<"$(log_percentiles "$OUT/pgbench-$op-c$c.log")"
    prepared_tps=$P_TPS
    prepared_lat=${P_LAT:-0}
    run_pgbench "$op-c$c-as-server" "$c" extended "$OUT/pgbench-$op-as-server.sql"
    ROWS+=("$(awk -v op="$op" -v c="$c" -v rps="$(field rps "$W_LINE")" \
      -v p50="$(field p50_ms "$W_LINE")" -v p95="$(field p95_ms "$W_LINE")" \
      -v p99="$(field p99_ms "$W_LINE")" -v tps="$prepared_tps" \
      'BEGIN { printf "| %s | %d | %.0f | %.2f ms | %.2f ms | %.2f ms | %.0f | %.2f |", op, c, rps, p50, p95, p99, tps, (tps > 0 ? rps / tps : 0) }')")
    PG_ROWS+=("$(awk -v op="$op" -v c="$c" -v lat="$prepared_lat" -v a="${pg_p[0]}" -v b="${pg_p[1]}" \
      -v d="${pg_p[2]}" -v tps2="$P_TPS" -v rps="$(field rps "$W_LINE")" \
      'BEGIN { printf "| %s | %d | %.2f ms | %.2f ms | %.2f ms | %.2f ms | %.0f | %.2f |", op, c, lat, a, b, d, tps2, (tps2 > 0 ? rps / tps2 : 0) }')")
  done
done

# HTTP alone: GET /health answers without touching the database.
for c in $CONCURRENCY; do
  run_wrk "health-c$c" "$c" "$BENCH_DIR/health.lua" "$BASE/health"
  HTTP_ROWS+=("$(awk -v c="$c" -v rps="$(field rps "$W_LINE")" -v p50="$(field p50_ms "$W_LINE")" \
    -v p95="$(field p95_ms "$W_LINE")" -v p99="$(field p99_ms "$W_LINE")" \
    'BEGIN { printf "| GET /health | %d | %.0f | %.2f ms | %.2f ms | %.2f ms |", c, rps, p50, p95, p99 }')")
done

# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
[[ -n $cpu ]] || cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)
mem_kb=$(sed -n 's/^MemTotal:[[:space:]]*\([0-9]*\) kB/\1/p' /proc/meminfo 2>/dev/null || true)
mem=$(awk -v k="${mem_kb:-0}" 'BEGIN { printf "%.1f GiB", k / 1048576 }')
pg_version=$(sql "SHOW server_version")
pg_settings=$(sql "SELECT string_agg(name || '=' || setting || COALESCE(unit, ''), ', ' ORDER BY name)
  FROM pg_settings WHERE name IN ('shared_buffers', 'fsync', 'synchronous_commit', 'ssl')")
pg_tls=$(sql "SELECT CASE WHEN ssl THEN version ELSE 'no TLS' END FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
rev=$(git rev-parse --short HEAD 2>/dev/null || echo 'no commit')
git diff --quiet HEAD 2>/dev/null || rev="$rev with uncommitted changes"
wrk_version=$({ wrk -v 2>&1 || true; } | sed -n '1s/^wrk \([^ ]*\).*/\1/p')
pgbench_version=$("$PGBENCH" --version | awk '{print $3}')
busy=""
if awk -v l="$load_before" -v n="$(nproc)" 'BEGIN { exit !(l + 0 > n / 2) }'; then
  busy="**The machine was busy before the run (load average $load_before on $(nproc) CPUs): other work competed for the CPUs, so take these figures as rough.**"
  warn "load average $load_before before the run: the figures are noisy"
fi
{
  cat <<EOF
# Invicta benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')

- Machine: $(nproc) CPUs, $mem, ${cpu:-unknown CPU}; $(uname -sr); load average (1 min) before
  the run $load_before.
- PostgreSQL $pg_version ($pg_settings; clients connect with $pg_tls).
- Build: $rev, \`$BIN\`; wrk $wrk_version; pgbench $pgbench_version.
- Server, PostgreSQL, wrk and pgbench all run on this machine, over loopback. Server log level
  \`INVICTA_LOG=$LOG_LEVEL\` (output in server.log); pool INVICTA_DB_POOL=${INVICTA_DB_POOL:-16 (default)}.
- Each run ${DURATION}s (wrk after a ${WARMUP}s warm-up), wrk and pgbench with min(clients, 2)
  threads. Reads GET random ids among $SEED Observations created with PUT; creates POST a
  LOINC-coded lab Observation (bench/observation.lua).
${busy:+
$busy
}
Server latency as wrk sees it. pgbench runs the same statements (bench/pgbench-*.sql,
\`-n -M prepared\`, same clients) directly on the same tables: its tps is the ceiling, and
ratio = server req/s / pgbench tps.

| operation | concurrency | server req/s | p50 | p95 | p99 | pgbench tps | ratio |
|---|---:|---:|---:|---:|---:|---:|---:|
EOF
  printf '%s\n' "${ROWS[@]}"
  cat <<EOF

pgbench detail. Latency of the prepared runs above (average as pgbench reports it,
percentiles from its per-transaction log). "As the server talks": the same script with
\`-M extended\` (one-off statements are unnamed: parsed and planned every time);
the last column is the server's share of that.

| operation | concurrency | average | p50 | p95 | p99 | tps as the server talks | server / that |
|---|---:|---:|---:|---:|---:|---:|---:|
EOF
  printf '%s\n' "${PG_ROWS[@]}"
  cat <<EOF

HTTP alone (no database):

| request | concurrency | req/s | p50 | p95 | p99 |
|---|---:|---:|---:|---:|---:|
EOF
  printf '%s\n' "${HTTP_ROWS[@]}"
  cat <<EOF

Index rows per Observation (the server's, and those bench/pgbench-create.sql writes):
$(sed 's/^/    /' "$OUT/index-rows.txt")

Raw outputs in $OUT/: wrk-*.txt, pgbench-*.txt, pgbench-*.log.* (per transaction),
pgbench-*-as-server.sql, server.log.
EOF
} >"$OUT/results.md"

cat "$OUT/results.md"
