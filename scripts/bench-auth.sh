#!/usr/bin/env bash
# bench-auth.sh — `make bench-auth`: what access control and auditing cost (not part of the tests).
#
# One database, seeded once through the API by a feed client (2,000 Observations over 500
# patients; the feed's writes give its organisation a legitimate relationship with them). Then
# the same wrk runs (read by id; a patient's results by subject and code) against the server in
# four modes, as a hospital clinician of the feed's organisation:
#   engine    INVICTA_AUTH=off INVICTA_AUDIT=off  (no tokens, no audit)
#   rules     INVICTA_AUTH=on  INVICTA_AUDIT=off, a policy where this role needs no legitimate
#             relationship (token check, policy, scope, label and alert rules in the SQL)
#   auth      INVICTA_AUTH=on  INVICTA_AUDIT=off  (all of that and the relationship lookup)
#   audited   INVICTA_AUTH=on  INVICTA_AUDIT=on   (as in production: every request audited)
# The four servers run side by side (one port each) and the modes take turns in rounds
# (engine, rules, auth, audited, engine, …), so a slow minute of this shared machine falls on
# every mode alike rather than on whichever ran then. The audit trail defers no work (each
# event is stored, indexed and searchable before its response), so whatever auditing costs
# falls inside the audited run that caused it. Reports per mode the median req/s and latency
# over the rounds, and the median over rounds of the ratios rules/engine (token verification
# and policy evaluation), auth/rules (the relationship lookup), auth/engine (all access
# control) and audited/auth (the audit trail).
#
# Then the growth check: each search runs on the audited server, the audit trail grows by
# BENCH_AUDIT_GROWTH (1,000,000) AuditEvents written through the API (bench/audit-fill.lua),
# and each search runs again, with statistics as autovacuum leaves them (no ANALYZE): the two
# figures must agree within 10%. About 25 minutes. Output in target/bench-auth/.
#
# Knobs: INVICTA_BIN, INVICTA_LISTEN (first port; default 127.0.0.1:8184, the next three follow),
# BENCH_DURATION (seconds per run, 60), BENCH_ROUNDS (2), BENCH_WARMUP (5),
# BENCH_CONCURRENCY ("8"), BENCH_SEED (2000), BENCH_AUDIT_GROWTH (1000000), DATABASE_URL.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DURATION=${BENCH_DURATION:-60}
ROUNDS=${BENCH_ROUNDS:-2}
WARMUP=${BENCH_WARMUP:-5}
CONCURRENCY=${BENCH_CONCURRENCY:-8}
GROWTH=${BENCH_AUDIT_GROWTH:-1000000}
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

HOST=${LISTEN%:*}
PORT=${LISTEN##*:}
declare -A PIDS
# start MODE AUTH AUDIT PORT [POLICY]
start() {
  local base="http://$HOST:$4"
  INVICTA_POLICY=${5:-profiles/role-policy.json} INVICTA_LISTEN="$HOST:$4" INVICTA_AUTH=$2 \
    INVICTA_AUDIT=$3 "$BIN" serve >"$OUT/server-$1.log" 2>&1 &
  PIDS[$1]=$!
  for _ in $(seq 1 300); do
    curl -fs -o /dev/null --max-time 2 "$base/ready" && return 0
    kill -0 "${PIDS[$1]}" 2>/dev/null || break
    sleep 0.1
  done
  die "the $1 server did not start (see $OUT/server-$1.log)"
}
stop() {
  local m
  for m in "${!PIDS[@]}"; do
    kill -TERM "${PIDS[$m]}" 2>/dev/null && wait "${PIDS[$m]}" 2>/dev/null || true
    unset "PIDS[$m]"
  done
}
trap stop EXIT

start seed on on "$PORT"
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

# The shipped policy but for the relationship rule of the benchmark's role.
NOREL="$OUT/policy-no-relationship.json"
sed '/"hospital-clinician": {/,/}/ s/"relationship": true/"relationship": false/' \
  profiles/role-policy.json >"$NOREL"
cmp -s profiles/role-policy.json "$NOREL" && die "could not turn off the relationship rule in $NOREL"

declare -A PORTS=([engine]=$PORT [rules]=$((PORT + 1)) [auth]=$((PORT + 2)) [audited]=$((PORT + 3)))
start engine off off "${PORTS[engine]}"
start rules on off "${PORTS[rules]}" "$NOREL"
start auth on off "${PORTS[auth]}"
start audited on on "${PORTS[audited]}"
MODES="engine rules auth audited"

audit_count() { psql "$DB_URL" -Atqc 'SELECT count(*) FROM audit_event'; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

declare -A RPS P50 P99 RATIO_RULES RATIO_REL RATIO_AUTH RATIO_AUDIT
for op in read patient-search; do
  args=()
  [[ $op == read ]] && args=(-- "$SEED")
  for c in $CONCURRENCY; do
    t=$((c < 2 ? 1 : 2))
    declare -A runs=() p50s=() p99s=()
    rr=() rl=() ra=() ru=()
    for mode in $MODES; do
      ((WARMUP > 0)) && BENCH_TOKEN=$TOKEN wrk -t "$t" -c "$c" -d "${WARMUP}s" -s "bench/$op.lua" \
        "http://$HOST:${PORTS[$mode]}" "${args[@]}" >/dev/null 2>&1
    done
    for round in $(seq 1 "$ROUNDS"); do
      declare -A this=()
      for mode in $MODES; do
        f="$OUT/wrk-$op-c$c-$mode-$round.txt"
        BENCH_TOKEN=$TOKEN wrk -t "$t" -c "$c" -d "${DURATION}s" --timeout 10s -s "bench/$op.lua" \
          "http://$HOST:${PORTS[$mode]}" "${args[@]}" >"$f" 2>&1
        line=$(grep '^BENCH ' "$f") || die "no result in $f"
        [[ $line == *"status_errors=0 "* ]] || die "HTTP errors: $line"
        this[$mode]=$(sed -n 's/.* rps=\([0-9.]*\).*/\1/p' <<<"$line")
        runs[$mode]+="${this[$mode]} "
        p50s[$mode]+="$(sed -n 's/.* p50_ms=\([0-9.]*\).*/\1/p' <<<"$line") "
        p99s[$mode]+="$(sed -n 's/.* p99_ms=\([0-9.]*\).*/\1/p' <<<"$line") "
      done
      rr+=("$(awk -v x="${this[rules]}" -v y="${this[engine]}" 'BEGIN { print x / y }')")
      rl+=("$(awk -v x="${this[auth]}" -v y="${this[rules]}" 'BEGIN { print x / y }')")
      ra+=("$(awk -v x="${this[auth]}" -v y="${this[engine]}" 'BEGIN { print x / y }')")
      ru+=("$(awk -v x="${this[audited]}" -v y="${this[auth]}" 'BEGIN { print x / y }')")
      say "$op c=$c round $round: engine ${this[engine]}, rules ${this[rules]}, auth ${this[auth]}, audited ${this[audited]} req/s"
    done
    for mode in $MODES; do
      key="$op-$c-$mode"
      RPS[$key]=$(tr ' ' '\n' <<<"${runs[$mode]}" | grep . | median)
      P50[$key]=$(tr ' ' '\n' <<<"${p50s[$mode]}" | grep . | median)
      P99[$key]=$(tr ' ' '\n' <<<"${p99s[$mode]}" | grep . | median)
    done
    RATIO_RULES[$op-$c]=$(printf '%s\n' "${rr[@]}" | median)
    RATIO_REL[$op-$c]=$(printf '%s\n' "${rl[@]}" | median)
    RATIO_AUTH[$op-$c]=$(printf '%s\n' "${ra[@]}" | median)
    RATIO_AUDIT[$op-$c]=$(printf '%s\n' "${ru[@]}" | median)
    say "$op c=$c: rules/engine $(printf '%s ' "${rr[@]}")-> median ${RATIO_RULES[$op-$c]}"
    say "$op c=$c: auth/engine $(printf '%s ' "${ra[@]}")-> median ${RATIO_AUTH[$op-$c]}"
    unset runs p50s p99s
  done
done
# The growth check, on the audited server at the largest concurrency.
c=${CONCURRENCY##* }
t=$((c < 2 ? 1 : 2))
declare -A BEFORE AFTER
measure() { # OP -> req/s
  local args=() f="$OUT/wrk-growth-$1-$2.txt"
  [[ $1 == read ]] && args=(-- "$SEED")
  BENCH_TOKEN=$TOKEN wrk -t "$t" -c "$c" -d "${DURATION}s" --timeout 10s -s "bench/$1.lua" \
    "http://$HOST:${PORTS[audited]}" "${args[@]}" >"$f" 2>&1
  line=$(grep '^BENCH ' "$f") || die "no result in $f"
  [[ $line == *"status_errors=0 "* ]] || die "HTTP errors: $line"
  sed -n 's/.* rps=\([0-9.]*\).*/\1/p' <<<"$line"
}
for op in read patient-search; do BEFORE[$op]=$(measure "$op" before); done
start_count=$(audit_count)
say "growing the audit trail by $GROWTH AuditEvents from $start_count (audited searches)"
fill_started=$SECONDS
while (($(audit_count) - start_count < GROWTH)); do
  BENCH_TOKEN=$TOKEN wrk -t "$t" -c "$c" -d 20s --timeout 10s -s bench/audit-fill.lua \
    "http://$HOST:${PORTS[audited]}" >"$OUT/wrk-audit-fill.txt" 2>&1
  grep -q 'status_errors=0 ' "$OUT/wrk-audit-fill.txt" || { cat "$OUT/wrk-audit-fill.txt" >&2; die "audit fill had errors"; }
done
grown=$(($(audit_count) - start_count))
fill_secs=$((SECONDS - fill_started))
for op in read patient-search; do AFTER[$op]=$(measure "$op" after); done
stop
audits=$(audit_count)
trail_bytes=$(psql "$DB_URL" -Atqc "SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0) FROM pg_inherits i \
  JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'audit_event'::regclass")
{
  echo "# Access control and audit overhead ($(date -u +%F), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB)"
  echo
  echo "Medians over $ROUNDS rounds of ${DURATION} s per mode, the modes taking turns; the ratios are medians of each round's ratio."
  echo
  echo "| operation | clients | engine req/s | rules req/s | auth req/s | audited req/s | rules / engine | auth / rules | auth / engine | audited / auth | p99 engine / rules / auth / audited (ms) |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
  for op in read patient-search; do
    for c in $CONCURRENCY; do
      printf '| %s | %s | %.0f | %.0f | %.0f | %.0f | %.2f | %.2f | %.2f | %.2f | %s / %s / %s / %s |\n' \
        "$op" "$c" "${RPS[$op-$c-engine]}" "${RPS[$op-$c-rules]}" "${RPS[$op-$c-auth]}" \
        "${RPS[$op-$c-audited]}" "${RATIO_RULES[$op-$c]}" "${RATIO_REL[$op-$c]}" \
        "${RATIO_AUTH[$op-$c]}" "${RATIO_AUDIT[$op-$c]}" "${P99[$op-$c-engine]}" \
        "${P99[$op-$c-rules]}" "${P99[$op-$c-auth]}" "${P99[$op-$c-audited]}"
    done
  done
  echo
  echo
  echo "Deferred audit work at the end of each run: none (every AuditEvent is stored with its keys and index entries before its response; nothing is projected later)."
  echo
  echo "### Clinical searches as the audit trail grows"
  echo
  echo "The audit trail grew by $grown AuditEvents in ${fill_secs} s through audited searches ($((grown / (fill_secs > 0 ? fill_secs : 1))) events/s), to $audits in all ($((trail_bytes / 1048576)) MiB with indexes, $((trail_bytes / (audits > 0 ? audits : 1))) bytes per event). No ANALYZE was run: statistics are as autovacuum left them. Audited server, $c clients, ${DURATION} s each."
  echo
  echo "| operation | before req/s | after req/s | after / before |"
  echo "|---|---:|---:|---:|"
  for op in read patient-search; do
    printf '| %s | %.0f | %.0f | %.2f |\n' "$op" "${BEFORE[$op]}" "${AFTER[$op]}" \
      "$(awk -v a="${AFTER[$op]}" -v b="${BEFORE[$op]}" 'BEGIN { print a / b }')"
  done
  echo
  echo "AuditEvents stored in all: $audits. Server, PostgreSQL (fsync on) and wrk share the machine."
} | tee "$OUT/results.md"
# The same figures as data, for bench/report.py.
{
  modes=() ratios=() growth=()
  for op in read patient-search; do
    for c in $CONCURRENCY; do
      for mode in $MODES; do
        modes+=("$(printf '{"operation": "%s", "mode": "%s", "clients": %d, "rps": %s, "p50_ms": %s, "p99_ms": %s}' \
          "$op" "$mode" "$c" "${RPS[$op-$c-$mode]}" "${P50[$op-$c-$mode]}" "${P99[$op-$c-$mode]}")")
      done
      ratios+=("$(printf '{"operation": "%s", "clients": %d, "rules_over_engine": %s, "auth_over_rules": %s, "auth_over_engine": %s, "audited_over_auth": %s}' \
        "$op" "$c" "${RATIO_RULES[$op-$c]}" "${RATIO_REL[$op-$c]}" "${RATIO_AUTH[$op-$c]}" "${RATIO_AUDIT[$op-$c]}")")
    done
    growth+=("$(printf '{"operation": "%s", "clients": %d, "before_rps": %s, "after_rps": %s}' \
      "$op" "$c" "${BEFORE[$op]}" "${AFTER[$op]}")")
  done
  printf '{"bench": "auth", "date": "%s", "commit": "%s", "duration_s": %d, "rounds": %d, "growth_events": %d, "audit_events": %d, "audit_bytes": %d, "modes": [%s], "ratios": [%s], "growth": [%s]}\n' \
    "$(date -u +%FT%TZ)" "$(git rev-parse --short HEAD 2>/dev/null || echo none)" "$DURATION" "$ROUNDS" \
    "$grown" "$audits" "$trail_bytes" "$(IFS=,; echo "${modes[*]}")" "$(IFS=,; echo "${ratios[*]}")" \
    "$(IFS=,; echo "${growth[*]}")"
} >"$OUT/results.json"
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$OUT/results.json" || die "wrote invalid JSON to $OUT/results.json"
