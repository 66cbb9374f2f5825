#!/usr/bin/env bash
# make test: every test of the workspace. End-to-end tests (tests/e2e) start the real `invicta`
# binary against a real PostgreSQL, one database per test, created and dropped by the harness.
# A missing PostgreSQL is provisioned (scripts/ensure-postgres.sh), never skipped.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
INVICTA_TEST_ADMIN_URL="$(scripts/ensure-postgres.sh)"
# Some end-to-end tests sign people in at a real OpenID Connect provider and drive the viewer in
# a real browser: tests/node runs oidc-provider and playwright-core on Node.js (20 or later), and
# playwright-core drives Debian's Chromium (no browser is downloaded).
scripts/ensure-node.sh
# The read-replica test makes its own primary and standby (scripts/replica-pair.sh): it needs the
# PostgreSQL server tools even when the server it tests against runs elsewhere.
if [[ -z ${PG_BINDIR:-} ]] && ! ls /usr/lib/postgresql/*/bin/pg_basebackup >/dev/null 2>&1 && ! command -v pg_basebackup >/dev/null 2>&1; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing the PostgreSQL server tools with apt-get" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2 ||
      { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2; }
  else
    echo "The read-replica test needs initdb, pg_ctl and pg_basebackup: install PostgreSQL's server package, or set PG_BINDIR" >&2
    exit 1
  fi
fi
if [[ -z "${CHROMIUM:-}" && ! -x /usr/bin/chromium ]]; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing Chromium with apt-get" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y chromium fonts-liberation >&2 ||
      { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium fonts-liberation >&2; }
  else
    echo "Chromium is needed for the viewer's browser tests: install Debian's chromium package, or set CHROMIUM" >&2
    exit 1
  fi
fi
if [[ ! tests/node/node_modules/.package-lock.json -nt tests/node/package-lock.json ]]; then
  # Optional dependencies are React Native and Expo modules of fhirclient's crypto shim: not for Node.
  npm ci --prefix tests/node --omit=optional --no-audit --no-fund >&2
fi
scripts/build-viewer.sh
export INVICTA_TEST_ADMIN_URL
echo "==> tests against ${INVICTA_TEST_ADMIN_URL}" >&2
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --all-targets --locked "$@" 2>&1 | tee "$log" || status=$?
# Doc-tests are not among --all-targets; they hold the compile-fail proofs (e.g. that nothing
# reaches data without an authorization decision).
cargo test --workspace --doc --locked "$@" 2>&1 | tee -a "$log" || status=$?
# One closing line over every test binary: cargo prints a result line per binary.
read -r passed failed < <(awk '/^test result:/ { p += $4; f += $6 } END { print p + 0, f + 0 }' "$log")
echo "${passed:-0} passed, ${failed:-0} failed"
if [[ "${passed:-0}" -eq 0 ]]; then
  echo "no test ran" >&2
  exit 1
fi
exit "$status"
