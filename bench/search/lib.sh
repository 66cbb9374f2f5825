# shellcheck shell=bash
# lib.sh: shared by scripts/plan-check.sh and scripts/bench-search.sh (sourced, not run).
# The caller sets PROG (the name used in messages) and runs from the repository root with
# `set -euo pipefail`.

say() { printf '==> %s\n' "$*" >&2; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
die() {
  printf '%s: error: %s\n' "$PROG" "$*" >&2
  exit 1
}

# ---------------------------------------------------------------------------------------------
# Loopback only
# ---------------------------------------------------------------------------------------------
is_loopback_host() {
  case $1 in
    127.* | localhost | ::1 | '[::1]' | '') return 0 ;;
    *) return 1 ;;
  esac
}

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

# check_listen ADDRESS: dies unless ADDRESS is loopback HOST:PORT; sets BASE (http://ADDRESS).
check_listen() {
  local host=${1%:*} port=${1##*:}
  [[ $port =~ ^[0-9]+$ ]] || die "INVICTA_LISTEN must be HOST:PORT, got '$1'"
  is_loopback_host "$host" ||
    die "INVICTA_LISTEN must be a loopback address (127.0.0.1:PORT), got '$1'"
  BASE="http://$1"
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

# need_tool COMMAND DEBIAN-PACKAGE
need_tool() {
  command -v "$1" >/dev/null 2>&1 && return 0
  apt_install "$2" || die "$1 is missing; install it (Debian/Ubuntu: sudo apt-get install $2)"
  command -v "$1" >/dev/null 2>&1 || die "$1 is still missing after installing $2"
}

need_python() {
  need_tool python3 python3
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 9))' ||
    die "python3 is older than 3.9 ($(python3 --version 2>&1)); bench/generate.py needs 3.9+"
}

# Sets BIN: INVICTA_BIN, or target/release/invicta built now.
build_server() {
  if [[ -n ${INVICTA_BIN:-} ]]; then
    BIN=$INVICTA_BIN
    [[ -x $BIN ]] || die "INVICTA_BIN=$BIN is not an executable"
    say "using $BIN (INVICTA_BIN)"
  else
    say "building (release)"
    cargo build --release --bin invicta
    BIN=target/release/invicta
  fi
}

# ---------------------------------------------------------------------------------------------
# Database
# ---------------------------------------------------------------------------------------------

# sql URL STATEMENT: one statement, unaligned tuples only.
sql_at() { psql "$1" -XAtqv ON_ERROR_STOP=1 -c "$2"; }

# fresh_database NAME: drops and recreates NAME; sets DB_URL.
fresh_database() {
  psql "$ADMIN_URL" -Xqv ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" >/dev/null
  DB_URL=$(scripts/db-url.sh "$1")
  is_loopback_host "$(url_host "$DB_URL")" || die "database URL is not on loopback"
}

# data_digest PATIENTS SEED: a digest of the resources bench/generate.py writes for patients
# 0..PATIENTS-1 (a few seconds per 10,000 patients). Recorded with the data, so that data from a
# generator that has since changed is reloaded, and only then.
data_digest() {
  python3 bench/generate.py generate --patients "$1" --seed "$2" | sha256sum | cut -c1-16
}

# dataset_marker URL: "PATIENTS SEED DIGEST" of the data loaded by these scripts, or nothing.
dataset_marker() {
  sql_at "$1" "SELECT CASE WHEN to_regclass('bench_dataset') IS NULL THEN '' ELSE
    (SELECT patients || ' ' || seed || ' ' || generator FROM bench_dataset) END" 2>/dev/null || true
}

# record_dataset URL PATIENTS SEED DIGEST: the marker, written after a successful load.
record_dataset() {
  sql_at "$1" "CREATE TABLE IF NOT EXISTS bench_dataset (
      singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
      patients INTEGER NOT NULL, seed BIGINT NOT NULL, generator TEXT NOT NULL,
      loaded_at TIMESTAMPTZ NOT NULL DEFAULT now());
    INSERT INTO bench_dataset (patients, seed, generator) VALUES ($2, $3, '$4')
    ON CONFLICT (singleton) DO UPDATE SET patients = EXCLUDED.patients, seed = EXCLUDED.seed,
      generator = EXCLUDED.generator, loaded_at = now()" >/dev/null
}

# ---------------------------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------------------------
SERVER_PID=""
stop_server() {
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}

# start_server LOGFILE [NAME=VALUE...]: starts $BIN on $LISTEN against $DB_URL and waits for
# /ready (the server may rebuild index rows first, so allow READY_TIMEOUT seconds).
start_server() {
  local log=$1 waited=0 timeout=${READY_TIMEOUT:-900}
  shift
  if curl -s -o /dev/null --max-time 2 "$BASE/" 2>/dev/null; then
    die "something already listens on $LISTEN; stop it or set INVICTA_LISTEN=127.0.0.1:OTHERPORT"
  fi
  say "starting $BIN serve on $LISTEN (output in $log)"
  # The search engine is measured without tokens or audit; `make bench-auth` measures what
  # access control and auditing add on top.
  env DATABASE_URL="$DB_URL" INVICTA_LISTEN="$LISTEN" INVICTA_BASE_URL="$BASE/fhir" \
    INVICTA_AUTH=off INVICTA_AUDIT=off \
    INVICTA_LOG="${LOG_LEVEL:-warn}" "$@" "$BIN" serve >"$log" 2>&1 &
  SERVER_PID=$!
  while ! curl -fs -o /dev/null --max-time 2 "$BASE/ready"; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      tail -n 20 "$log" >&2 || true
      die "the server exited before becoming ready (see $log)"
    fi
    if ((waited >= timeout * 10)); then
      tail -n 20 "$log" >&2 || true
      die "the server did not become ready within ${timeout}s (see $log)"
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
}

# load_patients FIRST LAST SEED OUTFILE: loads patients FIRST..LAST-1 (and, when FIRST is 0, the
# Organizations) within LOAD_TIMEOUT seconds (default 2400); the LOAD line goes to OUTFILE; sets
# L_LINE. BENCH_LOADER picks how: `invicta` (default) writes them as NDJSON and runs
# `invicta load` (the path a REST transaction takes, 500 resources a transaction, five times
# faster than the API on the 2-core machine); `api` PUTs each resource through the running server.
L_LINE=""
load_patients() {
  case ${BENCH_LOADER:-invicta} in
    invicta) load_patients_bulk "$@" ;;
    api) load_patients_api "$@" ;;
    *) die "BENCH_LOADER must be invicta or api, got '${BENCH_LOADER}'" ;;
  esac
}

# How the last load_patients loaded, for the reports.
loader_line() {
  case ${BENCH_LOADER:-invicta} in
    invicta) printf '%s' "\`invicta load\` of \`bench/generate.py generate\` NDJSON (ids kept; 500 resources a transaction, 2 writers; validated and indexed as a transaction Bundle would be)" ;;
    *) printf '%s' "through the server's API: \`PUT /fhir/{type}/{id}\` with fixed ids from \`bench/generate.py load\` (${LOAD_WORKERS:-8} keep-alive connections), every resource validated, indexed and committed in its own transaction, as a feed would write it" ;;
  esac
}

load_patients_bulk() {
  local first=$1 last=$2 seed=$3 out=$4 chunk=${BENCH_LOAD_CHUNK:-20000} dir rc from to t0 t1
  local n=0 secs=0
  [[ $chunk =~ ^[1-9][0-9]*$ ]] || die "BENCH_LOAD_CHUNK must be a positive number of patients"
  dir=$(mktemp -d "${TMPDIR:-/tmp}/invicta-bench-load.XXXXXX")
  say "loading patients $first..$((last - 1)) (bench/generate.py generate | invicta load, $chunk patients a file)"
  : >"$out"
  # One file of at most BENCH_LOAD_CHUNK patients at a time (about 1.3 GB of NDJSON at 20,000),
  # so a 10M-resource run needs disk for the database and one file, not for all of it. Only
  # `invicta load` is timed; the generator is deterministic per patient, so the chunks hold what
  # one file would.
  for ((from = first; from < last; from += chunk)); do
    to=$((from + chunk < last ? from + chunk : last))
    python3 bench/generate.py generate --first "$from" --patients "$to" --seed "$seed" \
      -o "$dir/population.ndjson" || { rm -rf "$dir"; die "bench/generate.py generate failed"; }
    n=$((n + $(wc -l <"$dir/population.ndjson")))
    rc=0
    t0=$(date +%s.%N)
    timeout "${LOAD_TIMEOUT:-2400}" env DATABASE_URL="$DB_URL" INVICTA_LOG=warn \
      "$BIN" load "$dir/population.ndjson" >"$out.part" 2>&1 || rc=$?
    t1=$(date +%s.%N)
    cat "$out.part" >>"$out"
    rm -f "$out.part" "$dir/population.ndjson"
    ((rc != 124)) || { rm -rf "$dir"; die "loading took longer than ${LOAD_TIMEOUT:-2400}s (BENCH_LOAD_TIMEOUT)"; }
    ((rc == 0)) || { rm -rf "$dir"; tail -n 20 "$out" >&2; die "invicta load failed (see $out)"; }
    grep -q ' 0 failed' <(tail -n 5 "$out") ||
      { rm -rf "$dir"; tail -n 5 "$out" >&2; die "invicta load refused resources (see $out)"; }
    secs=$(awk -v s="$secs" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", s + b - a }')
    ((to == last)) || say "  patients $from..$((to - 1)) loaded ($n resources so far)"
  done
  rm -rf "$dir"
  L_LINE=$(awk -v n="$n" -v s="$secs" \
    'BEGIN { printf "LOAD resources=%d seconds=%.1f rps=%.1f workers=2", n, s, n / s }')
  echo "$L_LINE" >>"$out"
  say "${L_LINE#LOAD }"
}

load_patients_api() {
  local first=$1 last=$2 seed=$3 out=$4 rc=0
  say "loading patients $first..$((last - 1)) (bench/generate.py load, ${LOAD_WORKERS:-8} workers)"
  timeout "${LOAD_TIMEOUT:-2400}" python3 bench/generate.py load --base-url "$BASE/fhir" \
    --first "$first" --patients "$last" --seed "$seed" --workers "${LOAD_WORKERS:-8}" \
    >"$out" || rc=$?
  ((rc != 124)) || die "loading took longer than ${LOAD_TIMEOUT:-2400}s (BENCH_LOAD_TIMEOUT)"
  ((rc == 0)) || die "loading failed (the first refused resource and the answer are above)"
  L_LINE=$(grep '^LOAD ' "$out" || true)
  [[ -n $L_LINE ]] || die "no LOAD line in $out"
  say "${L_LINE#LOAD }"
}

# Value of key=... in a BENCH/LOAD/PROBE line.
field() { sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" <<<" $2"; }

# ---------------------------------------------------------------------------------------------
# Machine
# ---------------------------------------------------------------------------------------------
machine_line() {
  local cpu mem_kb mem
  cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
  [[ -n $cpu ]] || cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)
  mem_kb=$(sed -n 's/^MemTotal:[[:space:]]*\([0-9]*\) kB/\1/p' /proc/meminfo 2>/dev/null || true)
  mem=$(awk -v k="${mem_kb:-0}" 'BEGIN { printf "%.1f GiB", k / 1048576 }')
  printf '%s CPUs, %s, %s; %s' "$(nproc)" "$mem" "${cpu:-unknown CPU}" "$(uname -sr)"
}
