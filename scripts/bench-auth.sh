#!/usr/bin/env bash
# bench-auth.sh — `make bench-auth`: what access control and auditing cost (not part of the tests).
#
# One database, seeded once through the API by a feed client (2,000 Observations over 500
# patients; the feed's writes give its organisation a legitimate relationship with them). Then
# the same wrk runs (read by id; a patient's results by subject and code) against the server in
# three modes:
#   engine    INVICTA_AUTH=off INVICTA_AUDIT=off  (no tokens, no audit)
#   auth      INVICTA_AUTH=on  INVICTA_AUDIT=off  (token check, policy, access rules in the SQL)
#   audited   INVICTA_AUTH=on  INVICTA_AUDIT=on   (as in production: every request audited)
# as a hospital clinician of the feed's organisation. Reports req/s and latency per mode and the
# ratios auth/engine (the cost of token verification and policy) and audited/auth (the cost of
# the audit trail). About 3 minutes. Output in target/bench-auth/.
#
# Knobs: INVICTA_BIN, INVICTA_LISTEN (default 127.0.0.1:8184), BENCH_DURATION (10),
# BENCH_WARMUP (2), BENCH_CONCURRENCY ("1 8"), BENCH_SEED (2000), DATABASE_URL.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
CONCURRENCY=${BENCH_CONCURRENCY:-1 8}
SEED=${BENCH_SEED:-2000}
LISTEN=${INVICTA_LISTEN:-127.0.0.1:8184}
BASE="http://$LISTEN"
OUT=target/bench-auth
say() { printf '==> %s\n' "$*" >&2; }
die() {
  printf 'bench-auth: error: %s\n' "$*" >&2
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
if [[ -n ${INVICTA_BIN:-} ]]; then
  BIN=$INVICTA_BIN
else
  say "building (release)"
  cargo build --release --bin invicta
  BIN=target/release/invicta
fi
admin=$(scripts/ensure-postgres.sh)
DB_URL="${admin%%\?*}"
DB_URL="${DB_URL%/*}/invicta_bench_auth"
psql "$admin" -qc 'DROP DATABASE IF EXISTS invicta_bench_auth WITH (FORCE)' >/dev/null
psql "$admin" -qc 'CREATE DATABASE invicta_bench_auth' >/dev/null
export DATABASE_URL=$DB_URL INVICTA_LISTEN=$LISTEN INVICTA_BASE_URL="$BASE/fhir" \
  INVICTA_SIGNING_KEY="$OUT/signing-key.pem" INVICTA_LOG=warn

SERVER_PID=
start() {
  INVICTA_AUTH=$1 INVICTA_AUDIT=$2 "$BIN" serve >"$OUT/server-$1-$2.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 300); do
    curl -fs -o /dev/null --max-time 2 "$BASE/ready" && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  die "the server did not start (see $OUT/server-$1-$2.log)"
}
stop() {
  [[ -n $SERVER_PID ]] && kill -TERM "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}
trap stop EXIT

start on on
say "seeding $SEED Observations as a feed (org BENCHLAB)"
BENCH_TOKEN=$("$BIN" token --role feed --org BENCHLAB --ttl 3600) \
  wrk -t 1 -c 1 -d 300s --timeout 10s -s bench/seed.lua "$BASE" -- "$SEED" >"$OUT/seed.txt" 2>&1 ||
  { cat "$OUT/seed.txt" >&2; die "seeding failed"; }
grep -q "failed=0" "$OUT/seed.txt" || { cat "$OUT/seed.txt" >&2; die "seeding had failures"; }
stop
# A regional record's relationship table holds millions of (organisation, patient) pairs; give
# it 200,000 of other organisations so that its plans are those of a real table, not of the
# 500 rows the seeding left. Then fresh statistics for every mode.
psql "$DB_URL" -qc "INSERT INTO care_relationship (patient_id, org_code, kind) \
  SELECT 'other-patient-' || g, 'ORG' || (g % 700), 'registered-gp' FROM generate_series(1, 200000) g \
  ON CONFLICT DO NOTHING" >/dev/null
psql "$DB_URL" -qc 'VACUUM ANALYZE' >/dev/null
TOKEN=$("$BIN" token --role hospital-clinician --org BENCHLAB --ttl 3600)

declare -A RPS P50 P99
for mode in "off off" "on off" "on on"; do
  read -r auth audit <<<"$mode"
  start "$auth" "$audit"
  for op in read patient-search; do
    for c in $CONCURRENCY; do
      t=$((c < 2 ? 1 : 2))
      args=()
      [[ $op == read ]] && args=(-- "$SEED")
      ((WARMUP > 0)) && BENCH_TOKEN=$TOKEN wrk -t "$t" -c "$c" -d "${WARMUP}s" -s "bench/$op.lua" "$BASE" "${args[@]}" >/dev/null 2>&1
      BENCH_TOKEN=$TOKEN wrk -t "$t" -c "$c" -d "${DURATION}s" --timeout 10s -s "bench/$op.lua" "$BASE" "${args[@]}" \
        >"$OUT/wrk-$op-c$c-$auth-$audit.txt" 2>&1
      line=$(grep '^BENCH ' "$OUT/wrk-$op-c$c-$auth-$audit.txt") || die "no result in $OUT/wrk-$op-c$c-$auth-$audit.txt"
      [[ $line == *"status_errors=0 "* ]] || die "HTTP errors: $line"
      key="$op-$c-$auth-$audit"
      RPS[$key]=$(sed -n 's/.* rps=\([0-9.]*\).*/\1/p' <<<"$line")
      P50[$key]=$(sed -n 's/.* p50_ms=\([0-9.]*\).*/\1/p' <<<"$line")
      P99[$key]=$(sed -n 's/.* p99_ms=\([0-9.]*\).*/\1/p' <<<"$line")
      say "$op c=$c auth=$auth audit=$audit: ${RPS[$key]} req/s, p50 ${P50[$key]} ms, p99 ${P99[$key]} ms"
    done
  done
  stop
done
audits=$(psql "$DB_URL" -Atqc "SELECT count(*) FROM resource WHERE res_type = 'AuditEvent'")
{
  echo "# Access control and audit overhead ($(date -u +%F), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB)"
  echo
  echo "| operation | clients | engine req/s | auth req/s | audited req/s | auth / engine | audited / auth | p99 engine / auth / audited (ms) |"
  echo "|---|---:|---:|---:|---:|---:|---:|---|"
  for op in read patient-search; do
    for c in $CONCURRENCY; do
      e=${RPS[$op-$c-off-off]} a=${RPS[$op-$c-on-off]} u=${RPS[$op-$c-on-on]}
      printf '| %s | %s | %s | %s | %s | %.2f | %.2f | %s / %s / %s |\n' "$op" "$c" "$e" "$a" "$u" \
        "$(awk -v x="$a" -v y="$e" 'BEGIN { print x / y }')" "$(awk -v x="$u" -v y="$a" 'BEGIN { print x / y }')" \
        "${P99[$op-$c-off-off]}" "${P99[$op-$c-on-off]}" "${P99[$op-$c-on-on]}"
    done
  done
  echo
  echo "AuditEvents stored during the audited runs and seeding: $audits. Server, PostgreSQL (fsync on) and wrk share the machine."
} | tee "$OUT/results.md"
