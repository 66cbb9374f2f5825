#!/usr/bin/env bash
# make run: build the release binary, make sure PostgreSQL is reachable, apply migrations, start
# the server, load the sample care record (idempotent PUTs with fixed ids) and print the base URL.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

listen="${INVICTA_LISTEN:-127.0.0.1:8080}"
base="${INVICTA_BASE_URL:-http://${listen}/fhir}"

echo "==> building (release)" >&2
cargo build --release --bin invicta
bin=target/release/invicta

if [[ -n "${DATABASE_URL:-}" ]] && psql "$DATABASE_URL" -Atqc 'SELECT 1' >/dev/null 2>&1; then
  db="$DATABASE_URL"
else
  db="$(DATABASE_URL="${DATABASE_URL:-}" scripts/db-url.sh invicta)"
fi
export DATABASE_URL="$db" INVICTA_LISTEN="$listen" INVICTA_BASE_URL="$base"

"$bin" migrate
"$bin" serve &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null' EXIT INT TERM

for _ in $(seq 1 100); do
  curl -fsS "http://${listen}/ready" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { echo "invicta exited during start-up" >&2; exit 1; }
  sleep 0.2
done

echo "==> loading the sample care record from examples/" >&2
loaded=0
while read -r file; do
  [[ -z "$file" ]] && continue
  name="${file%.json}"
  type="${name%%-*}"
  id="${name#*-}"
  status=$(curl -s -o /tmp/invicta-load.$$ -w '%{http_code}' -X PUT "${base}/${type}/${id}" \
    -H 'Content-Type: application/fhir+json' --data-binary "@examples/${file}")
  if [[ "$status" != 200 && "$status" != 201 ]]; then
    echo "failed to load examples/${file}: HTTP ${status}" >&2
    cat /tmp/invicta-load.$$ >&2; echo >&2
    exit 1
  fi
  loaded=$((loaded + 1))
done < examples/load-order.txt
rm -f /tmp/invicta-load.$$
echo "==> loaded ${loaded} sample resources" >&2

cat <<MSG

Invicta is running.
  FHIR base URL: ${base}
  Database:      ${DATABASE_URL}
  Try:           curl ${base}/metadata
                 curl ${base}/Patient/margaret-thornton
  Stop:          Ctrl-C
  Auth:          none yet (access control arrives with the access-control work)

MSG
set +e
wait "$server"
code=$?
set -e
trap - EXIT INT TERM
# A stop by Ctrl-C or SIGTERM is a normal end.
[[ $code -eq 0 || $code -eq 130 || $code -eq 143 ]] || exit "$code"
