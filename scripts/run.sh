#!/usr/bin/env bash
# make run: build the release binary, make sure PostgreSQL is reachable, apply migrations, start
# the server, load the sample care record (`invicta load`: fixed ids, so a reload changes nothing)
# and print the base URL.
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
# The care-record viewer (apps/viewer), built with Node.js and served at /apps/viewer/.
scripts/ensure-node.sh
echo "==> building the care-record viewer (apps/viewer)" >&2
scripts/build-viewer.sh
# The sample clients and the development sign-in page, so that an app or Postman can sign in at
# once; never turn the development sign-in on for real records. The clients are those of
# examples/clients.json, the viewer (a public SMART app at this server's /apps/viewer/) and a
# sample backend service, whose key pair is made once in .data/sample-backend (with Node.js, by
# examples/flows/backend-service.mjs).
if [[ -z "${INVICTA_CLIENTS:-}" ]]; then
  [[ -f .data/sample-backend/jwks.json ]] ||
    node examples/flows/backend-service.mjs setup sample-backend .data/sample-backend >/dev/null
  python3 - .data/sample-backend/jwks.json examples/clients.json .data/clients.json "${base%/fhir}/apps/viewer/" <<'PY'
import json, sys
jwks, sample, out, viewer = sys.argv[1:]
clients = json.load(open(sample))
clients.append({"id": "viewer", "name": "Care record viewer", "kind": "public",
                "redirect_uris": [viewer], "launch_url": viewer,
                "scope": "openid fhirUser launch launch/patient user/*.rs patient/*.rs patient/AuditEvent.rs online_access"})
clients.append({"id": "sample-backend", "name": "Sample backend service", "kind": "confidential-asymmetric",
                "jwks": json.load(open(jwks)), "scope": "system/*.rs", "role": "feed", "org": "R0X"})
json.dump(clients, open(out, "w"), indent=2)
PY
  INVICTA_CLIENTS=.data/clients.json
fi
export INVICTA_CLIENTS INVICTA_DEV_SIGNIN="${INVICTA_DEV_SIGNIN:-on}"

"$bin" migrate
# Access control is on (INVICTA_AUTH defaults to on). The signing keys live in the database; on
# the first start .data/signing-key.pem (INVICTA_SIGNING_KEY, created when missing) becomes the
# first one. `invicta token` signs with the newest.
"$bin" serve &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null' EXIT INT TERM

for _ in $(seq 1 100); do
  curl -fsS "http://${listen}/ready" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { echo "invicta exited during start-up" >&2; exit 1; }
  sleep 0.2
done

echo "==> loading the sample care record from examples/ (as the acute trust's feed, ODS R0X)" >&2
# `invicta load` writes through the same path as a REST transaction (validation, indexing,
# provenance, audit). The examples carry fixed ids, so loading them again changes nothing.
if ! "$bin" load --org R0X --client sample-loader examples; then
  echo "failed to load the sample care record (see above). If the database holds sample data" >&2
  echo "written before access control or by another source, start from an empty database, e.g.:" >&2
  echo "  psql '${DATABASE_URL%/*}/postgres' -c 'DROP DATABASE ${DATABASE_URL##*/}'" >&2
  exit 1
fi

cat <<MSG

Invicta is running.
  FHIR base URL: ${base}
  Database:      ${DATABASE_URL}
  Get a token:   (in another shell, same directory and environment)
                 TOKEN=\$(DATABASE_URL='${DATABASE_URL}' INVICTA_BASE_URL='${base}' \\
                   ${bin} token --role gp --org G82977)
  Backend:       node examples/flows/backend-service.mjs run sample-backend .data/sample-backend ${base}
  Sign in:       Postman's OAuth 2.0 helper: authorization code with PKCE (SHA-256), client id
                 postman, auth URL ${base%/fhir}/auth/authorize, token URL ${base%/fhir}/auth/token,
                 scope "launch/patient patient/*.rs", audience ${base} (README "Connecting an app")
  Viewer:        ${base%/fhir}/apps/viewer/  (staff: the development sign-in as role gp, organisation
                 G82977, then NHS number 999 041 7385; citizens: role patient, NHS number
                 9990726159, P9; EHR launch: examples/flows/ehr-launch.sh, README "The viewer")
  Try:           curl ${base}/metadata
                 curl -H "Authorization: Bearer \$TOKEN" ${base}/Patient/margaret-thornton
  Roles:         gp, hospital-clinician, paramedic, community-nurse, mental-health-clinician,
                 pharmacist, social-worker-adults, social-worker-children, safeguarding-lead,
                 receptionist, patient (--patient ID), privacy-officer, feed (see README "Access")
  Stop:          Ctrl-C

MSG
set +e
wait "$server"
code=$?
set -e
trap - EXIT INT TERM
# A stop by Ctrl-C or SIGTERM is a normal end.
[[ $code -eq 0 || $code -eq 130 || $code -eq 143 ]] || exit "$code"
