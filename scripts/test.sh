#!/usr/bin/env bash
# make test: every test of the workspace. End-to-end tests (tests/e2e) start the real `invicta`
# binary against a real PostgreSQL, one database per test, created and dropped by the harness.
# A missing PostgreSQL is provisioned (scripts/ensure-postgres.sh), never skipped.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
INVICTA_TEST_ADMIN_URL="$(scripts/ensure-postgres.sh)"
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
