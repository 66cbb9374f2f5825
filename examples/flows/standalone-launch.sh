#!/usr/bin/env bash
# Standalone launch by hand, as an app with no secret does it (authorization code with PKCE):
#
#   standalone-launch.sh start FHIR_BASE CLIENT_ID REDIRECT_URI "SCOPES"
#     prints the PKCE verifier and the URL to open in a browser; sign in and allow there, and the
#     browser lands on REDIRECT_URI?code=…&state=…
#   standalone-launch.sh token FHIR_BASE CLIENT_ID REDIRECT_URI CODE VERIFIER
#     exchanges the code and prints the token response
#
# e.g. with `make run`: start http://127.0.0.1:8080/fhir postman https://oauth.pstmn.io/v1/callback "launch/patient patient/*.rs"
# The endpoints come from the server's SMART configuration.
set -euo pipefail
usage() { sed -n '4,10p' "$0" >&2; exit 2; }
[[ $# -ge 1 ]] || usage
step=$1; shift
enc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
endpoint() { curl -sS --fail "$1/.well-known/smart-configuration" | python3 -c "import json, sys; print(json.load(sys.stdin)['$2'])"; }
case $step in
  start)
    [[ $# -eq 4 ]] || usage
    base=$1 client=$2 redirect=$3 scope=$4
    verifier=$(head -c 48 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    challenge=$(printf %s "$verifier" | openssl dgst -binary -sha256 | base64 | tr '+/' '-_' | tr -d '=\n')
    state=$(head -c 12 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    echo "verifier: $verifier"
    echo "open: $(endpoint "$base" authorization_endpoint)?response_type=code&client_id=$(enc "$client")&redirect_uri=$(enc "$redirect")&scope=$(enc "$scope")&state=$state&aud=$(enc "$base")&code_challenge=$challenge&code_challenge_method=S256"
    ;;
  token)
    [[ $# -eq 5 ]] || usage
    base=$1 client=$2 redirect=$3 code=$4 verifier=$5
    curl -sS --fail-with-body "$(endpoint "$base" token_endpoint)" \
      --data-urlencode grant_type=authorization_code --data-urlencode "code=$code" \
      --data-urlencode "redirect_uri=$redirect" --data-urlencode "client_id=$client" \
      --data-urlencode "code_verifier=$verifier"
    echo
    ;;
  *) usage ;;
esac
