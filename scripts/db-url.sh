#!/usr/bin/env bash
# db-url.sh NAME — make sure a PostgreSQL server is reachable (scripts/ensure-postgres.sh) and
# that database NAME exists on it; print its URL. Used by `make run`, `make test` and `make bench`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
name="${1:?usage: db-url.sh DATABASE_NAME}"
admin="$("$here/ensure-postgres.sh")"
# Replace the database path of the admin URL (…/postgres?query) with NAME.
base="${admin%%\?*}"
query=""
[[ "$admin" == *\?* ]] && query="?${admin#*\?}"
url="${base%/*}/${name}${query}"
if ! psql "$admin" -Atqc "SELECT 1 FROM pg_database WHERE datname = '${name}'" | grep -q 1; then
  psql "$admin" -qc "CREATE DATABASE \"${name}\"" >/dev/null 2>&1 ||
    psql "$admin" -Atqc "SELECT 1 FROM pg_database WHERE datname = '${name}'" | grep -q 1
fi
echo "$url"
