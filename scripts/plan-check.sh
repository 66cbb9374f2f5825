#!/usr/bin/env bash
# plan-check.sh — `make plan-check`: the query plans of the common care-record searches.
#
# Loads a generated population (bench/generate.py; default --patients 2000, about 100,000
# resources) into a dedicated database, runs VACUUM ANALYZE (as autovacuum would
# have by then: statistics, and no GIN pending list), then asks the server for each query shape
# with `_explain=true` (INVICTA_SEARCH_EXPLAIN=on) and writes every FHIR query, its SQL and
# PostgreSQL's plan to crates/search/PLANS.md. Fails, naming the shape, when a plan scans the
# `resource` table or an index table (`idx_*`) sequentially.
#
# The database is kept between runs: when it already holds this population (same size, seed
# and a digest of the generated resources, recorded in its table bench_dataset), nothing is
# loaded again and a run takes well under a minute once the binary is built. A first load takes
# about two minutes.
#
# Usage: scripts/plan-check.sh [--patients N]
#
# Knobs (environment):
#   INVICTA_BIN         use this binary instead of building target/release/invicta
#   INVICTA_LISTEN      server address, loopback only (default 127.0.0.1:8182)
#   PLANCHECK_DB        database name (default invicta_plancheck; dropped and recreated when it
#                       does not hold the expected population)
#   PLANCHECK_SEED      generator seed (default: the generator's)
#   PLANCHECK_RELOAD=1  reload the population even when it is already there
#   PLANCHECK_OUT       the plan document (default crates/search/PLANS.md)
#   PLANCHECK_MAX_REMOVED  also fail when one plan node's filter throws away more than this many
#                       rows (a nested loop re-reading an index; default 0: only reported)
#   LOAD_WORKERS        loader connections (default 8)
#   DATABASE_URL        a PostgreSQL server to use instead of the local default / private
#                       cluster (see scripts/ensure-postgres.sh); must be on this machine
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PROG=plan-check
# shellcheck source=bench/search/lib.sh
source bench/search/lib.sh
trap 'printf "plan-check: error: unexpected failure (line %s): %s\n" "$LINENO" "$BASH_COMMAND" >&2' ERR

PATIENTS=2000
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
    -h | --help)
      sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
      exit 0
      ;;
    *) die "unknown argument '$1' (usage: scripts/plan-check.sh [--patients N])" ;;
  esac
done
[[ $PATIENTS =~ ^[1-9][0-9]*$ ]] || die "--patients must be a positive number"
SEED=${PLANCHECK_SEED:-$(sed -n 's/^DEFAULT_SEED = \([0-9]*\)$/\1/p' bench/generate.py)}
[[ $SEED =~ ^[0-9]+$ ]] || die "PLANCHECK_SEED must be a number"
DB_NAME=${PLANCHECK_DB:-invicta_plancheck}
[[ $DB_NAME =~ ^[a-z_][a-z0-9_]*$ ]] || die "PLANCHECK_DB must be a plain lower-case identifier"
LISTEN=${INVICTA_LISTEN:-127.0.0.1:8182}
check_listen "$LISTEN"
PLANS=${PLANCHECK_OUT:-crates/search/PLANS.md}
OUT=target/bench/plan-check
LOG_LEVEL=warn

need_tool curl curl
need_python
build_server
mkdir -p "$OUT"

# ---------------------------------------------------------------------------------------------
# Database: reuse it when it holds this population
# ---------------------------------------------------------------------------------------------
ADMIN_URL=$(scripts/ensure-postgres.sh)
is_loopback_host "$(url_host "$ADMIN_URL")" ||
  die "PostgreSQL must run on this machine (loopback); refusing $(url_host "$ADMIN_URL")"
DB_URL=$(scripts/db-url.sh "$DB_NAME")
is_loopback_host "$(url_host "$DB_URL")" || die "database URL is not on loopback"
digest=$(data_digest "$PATIENTS" "$SEED")
want="$PATIENTS $SEED $digest"
have=$(dataset_marker "$DB_URL")
need_load=1
if [[ ${PLANCHECK_RELOAD:-0} != 1 && $have == "$want" ]]; then
  need_load=0
  say "database $DB_NAME already holds the population ($PATIENTS patients, seed $SEED)"
else
  say "recreating database $DB_NAME (holds: '${have:-nothing recorded}', wanted: '$want')"
  fresh_database "$DB_NAME"
fi

trap 'stop_server' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
start_server "$OUT/server.log" INVICTA_SEARCH_EXPLAIN=on

if ((need_load)); then
  load_patients 0 "$PATIENTS" "$SEED" "$OUT/load.txt"
  record_dataset "$DB_URL" "$PATIENTS" "$SEED" "$digest"
fi
resources=$(sql_at "$DB_URL" "SELECT count(*) FROM resource WHERE NOT deleted")
patients=$(sql_at "$DB_URL" "SELECT count(*) FROM resource WHERE res_type = 'Patient' AND NOT deleted")
[[ $patients == "$PATIENTS" ]] ||
  die "expected $PATIENTS Patients in $DB_NAME, found $patients; rerun with PLANCHECK_RELOAD=1"
say "VACUUM ANALYZE ($resources resources)"
sql_at "$DB_URL" "VACUUM ANALYZE" >/dev/null

# ---------------------------------------------------------------------------------------------
# Plans
# ---------------------------------------------------------------------------------------------
python3 bench/generate.py values --patients "$PATIENTS" --seed "$SEED" -o "$OUT/values.tsv"
pg_version=$(sql_at "$DB_URL" "SHOW server_version")
pg_settings=$(sql_at "$DB_URL" "SELECT string_agg(name || '=' || setting || COALESCE(unit, ''), ', ' ORDER BY name)
  FROM pg_settings WHERE name IN ('shared_buffers', 'work_mem', 'random_page_cost', 'effective_cache_size')")
rev=$(git rev-parse --short HEAD 2>/dev/null || echo 'no commit')
git diff --quiet HEAD 2>/dev/null || rev="$rev with uncommitted changes"
note="Run of $(date -u '+%Y-%m-%d %H:%M UTC'): $resources resources ($PATIENTS generated patients, \
seed $SEED, \`bench/generate.py\`), after \`VACUUM ANALYZE\`; PostgreSQL $pg_version ($pg_settings); \
build $rev; machine: $(machine_line)."

say "explaining the query shapes into $PLANS"
rc=0
python3 bench/search/searchtool.py plans --base "$BASE/fhir" --values "$OUT/values.tsv" \
  --out "$PLANS" --header-note "$note" --max-removed "${PLANCHECK_MAX_REMOVED:-0}" || rc=$?
case $rc in
  0) say "no sequential scan of resource or idx_* in any plan; see $PLANS" ;;
  1) die "some plans degraded (named above); see $PLANS" ;;
  *) die "could not explain the searches (see above and $OUT/server.log)" ;;
esac
