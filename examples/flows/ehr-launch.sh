#!/usr/bin/env bash
# EHR launch, as a point-of-care system does it: create a launch context for the patient open in
# the clinician's record, then open the app at the launch URL Invicta answers with. The system is
# a client registered with the launch scope; this one authenticates with a secret:
#   invicta client add --id gp-system --name "GP system" --kind confidential-symmetric --scope launch
#
# usage: ehr-launch.sh SERVER_ROOT CLIENT_ID CLIENT_SECRET PATIENT USER ROLE ORG APP_CLIENT_ID
#   e.g. ehr-launch.sh http://127.0.0.1:8080 gp-system "$SECRET" margaret-thornton dr-marsh gp G82977 myapp
# Prints {"launch": …, "expires_in": 300, "launch_url": …}; open launch_url in the browser within
# five minutes, sign in as USER (role ROLE at ORG) and allow.
set -euo pipefail
[[ $# -eq 8 ]] || { sed -n '8,9p' "$0" >&2; exit 2; }
root=$1 client=$2 secret=$3 patient=$4 user=$5 role=$6 org=$7 app=$8
curl -sS --fail-with-body -u "$client:$secret" "$root/auth/launch" \
  --data-urlencode "patient=$patient" --data-urlencode "user=$user" \
  --data-urlencode "role=$role" --data-urlencode "org=$org" --data-urlencode "app=$app"
echo
