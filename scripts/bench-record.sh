#!/usr/bin/env bash
# bench-record.sh — `make bench-record`: a person's whole record as one read (not part of the tests).
#
# BENCH_PEOPLE people of 200 resources each from 6 source organisations (bench/record/gen.py),
# loaded as those sources, in a database grown with the ingest benchmark's people (100 resources
# each, bench/ingest/gen.py) first to 100,000 and then to 1,000,000 resources. At each size, as a
# GP of the people's registered practice with access control and audit on (as in production),
# wrk runs for BENCH_DURATION seconds at 1 and 8 clients each of:
#   timeline    GET Patient/rec-N/$timeline?_count=50
#   everything  GET Patient/rec-N/$everything?_count=50
#   per-type    GET Observation?patient=rec-N&_sort=-date&_count=50 (one type, the same page size)
# and reports req/s and p50/p95/p99 latency. Target on the 2-core machine: p95 under 50 ms for the
# first page of $timeline and $everything, flat from 100k to 1M. About 20 minutes (most of it
# loading). Output in target/bench-record/.
#
# Knobs: INVICTA_BIN, INVICTA_LISTEN (127.0.0.1:8186), BENCH_DURATION (20), BENCH_PEOPLE (20),
# BENCH_SIZES ("100000 1000000"), BENCH_CONCURRENCY ("1 8"), DATABASE_URL.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DURATION=${BENCH_DURATION:-20}
PEOPLE=${BENCH_PEOPLE:-20}
SIZES=${BENCH_SIZES:-100000 1000000}
CONCURRENCY=${BENCH_CONCURRENCY:-1 8}
LISTEN=${INVICTA_LISTEN:-127.0.0.1:8186}
BASE="http://$LISTEN"
OUT=target/bench-record
say() { printf '==> %s\n' "$*" >&2; }
die() {
  printf 'bench-record: error: %s\n' "$*" >&2
  exit 1
}
apt_install() {
  [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1 || return 1
  say "installing $* with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >&2 ||
    { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >&2; }
}
command -v wrk >/dev/null 2>&1 || apt_install wrk || die "wrk is missing (Debian: apt-get install wrk)"
command -v curl >/dev/null 2>&1 || apt_install curl || die "curl is missing"
mkdir -p "$OUT"
exec 9>"$OUT/.lock"
flock -n 9 || die "another bench-record is running"
if [[ -n ${INVICTA_BIN:-} ]]; then
  BIN=$INVICTA_BIN
else
  say "building (release)"
  cargo build --release --bin invicta
  BIN=target/release/invicta
fi
admin=$(scripts/ensure-postgres.sh)
DB_URL="${admin%%\?*}"
DB_URL="${DB_URL%/*}/invicta_bench_record"
psql "$admin" -qc 'DROP DATABASE IF EXISTS invicta_bench_record WITH (FORCE)' >/dev/null
psql "$admin" -qc 'CREATE DATABASE invicta_bench_record' >/dev/null
export DATABASE_URL=$DB_URL INVICTA_LISTEN=$LISTEN INVICTA_BASE_URL="$BASE/fhir" \
  INVICTA_SIGNING_KEY="$OUT/signing-key.pem" INVICTA_LOG=warn

PID=
start() {
  INVICTA_AUTH=on INVICTA_AUDIT=on "$BIN" serve >"$OUT/server.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 600); do
    curl -fs -o /dev/null --max-time 2 "$BASE/ready" && return 0
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
  done
  die "the server did not start (see $OUT/server.log)"
}
stop() {
  [[ -n $PID ]] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  PID=
}
trap stop EXIT
count() { psql "$DB_URL" -Atqc "SELECT count(*) FROM resource WHERE res_type <> 'AuditEvent'"; }

say "generating $PEOPLE people of 200 resources from 6 sources"
rm -rf "$OUT/people" "$OUT/background"
python3 bench/record/gen.py --people "$PEOPLE" --dir "$OUT/people" >&2
for source in "$OUT"/people/*/; do
  INVICTA_AUDIT=off "$BIN" load --org "$(basename "$source")" --client bench-record "$source" >>"$OUT/load.txt" 2>&1 ||
    { tail -20 "$OUT/load.txt" >&2; die "loading $source failed"; }
done
loaded_people=0
declare -A RES
for size in $SIZES; do
  have=$(count)
  if ((have < size)); then
    # Background people of the ingest benchmark (100 resources each). gen.py is deterministic,
    # so the people loaded for a smaller size come again first and load as unchanged.
    loaded_people=$((loaded_people + (size - have + 99) / 100))
    say "growing the record from $have to about $size resources ($loaded_people background people)"
    rm -rf "$OUT/background"
    python3 bench/ingest/gen.py ndjson --people "$loaded_people" --dir "$OUT/background" >&2
    INVICTA_AUDIT=off "$BIN" load --client bench-background "$OUT/background" >>"$OUT/load.txt" 2>&1 ||
      { tail -20 "$OUT/load.txt" >&2; die "loading the background failed"; }
  fi
  psql "$DB_URL" -qc 'VACUUM ANALYZE' >/dev/null
  total=$(count)
  say "measuring at $total resources"
  start
  TOKEN=$("$BIN" token --role gp --org BENCHGP --ttl 3600)
  for op in timeline everything per-type; do
    for c in $CONCURRENCY; do
      t=$((c < 2 ? 1 : 2))
      BENCH_TOKEN=$TOKEN BENCH_OP=$op BENCH_PEOPLE=$PEOPLE wrk -t "$t" -c "$c" -d 3s -s bench/record.lua "$BASE" >/dev/null 2>&1
      f="$OUT/wrk-$size-$op-c$c.txt"
      BENCH_TOKEN=$TOKEN BENCH_OP=$op BENCH_PEOPLE=$PEOPLE wrk -t "$t" -c "$c" -d "${DURATION}s" --timeout 10s \
        -s bench/record.lua "$BASE" >"$f" 2>&1
      line=$(grep '^BENCH ' "$f") || die "no result in $f"
      [[ $line == *"status_errors=0 "* ]] || die "HTTP errors: $line"
      RES[$size-$op-$c]="$total $line"
      say "$size $op c=$c: $line"
    done
  done
  # The first page really is 50 events from 6 sources.
  page=$(curl -fs -H "Authorization: Bearer $TOKEN" "$BASE/fhir/Patient/rec-1/\$timeline?_count=50")
  n=$(python3 -c '
import json, sys
b = json.load(sys.stdin)
sources = {p["valueIdentifier"]["value"] for e in b.get("entry", []) for x in e.get("extension", [])
           for p in x["extension"] if p["url"] == "source"}
print(len(b.get("entry", [])), "entries from", len(sources), "sources of", b.get("total"), "events")' <<<"$page")
  say "rec-1's first timeline page: $n"
  stop
done
{
  echo "# A person's whole record ($(date -u +%F), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(git rev-parse --short HEAD))"
  echo
  echo "A person of 200 resources from 6 sources; auth and audit on (a GP of the registered practice); first page of 50; wrk ${DURATION} s per row. Server, PostgreSQL (fsync on) and wrk share the machine."
  echo
  echo "| resources in the database | operation | clients | req/s | p50 ms | p95 ms | p99 ms |"
  echo "|---:|---|---:|---:|---:|---:|---:|"
  for size in $SIZES; do
    for op in timeline everything per-type; do
      for c in $CONCURRENCY; do
        set -- ${RES[$size-$op-$c]}
        total=$1
        line="${*:2}"
        v() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$line"; }
        printf '| %s | %s | %s | %.0f | %s | %s | %s |\n' "$total" "$op" "$c" "$(v rps)" "$(v p50_ms)" "$(v p95_ms)" "$(v p99_ms)"
      done
    done
  done
} | tee "$OUT/results.md"
# The same figures as data, for bench/report.py.
{
  rows=()
  for size in $SIZES; do
    for op in timeline everything per-type; do
      for c in $CONCURRENCY; do
        set -- ${RES[$size-$op-$c]}
        total=$1
        line="${*:2}"
        v() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$line"; }
        rows+=("$(printf '{"resources": %d, "operation": "%s", "clients": %d, "rps": %s, "p50_ms": %s, "p95_ms": %s, "p99_ms": %s}' \
          "$total" "$op" "$c" "$(v rps)" "$(v p50_ms)" "$(v p95_ms)" "$(v p99_ms)")")
      done
    done
  done
  printf '{"bench": "record", "date": "%s", "commit": "%s", "duration_s": %d, "results": [%s]}\n' \
    "$(date -u +%FT%TZ)" "$(git rev-parse --short HEAD 2>/dev/null || echo none)" "$DURATION" \
    "$(IFS=,; echo "${rows[*]}")"
} >"$OUT/results.json"
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$OUT/results.json" || die "wrote invalid JSON to $OUT/results.json"
