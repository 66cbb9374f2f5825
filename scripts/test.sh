#!/usr/bin/env bash
# make test: every test of the workspace. End-to-end tests (tests/e2e) start the real `invicta`
# binary against a real PostgreSQL, one database per test, created and dropped by the harness.
# A missing PostgreSQL is provisioned (scripts/ensure-postgres.sh), never skipped.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
INVICTA_TEST_ADMIN_URL="$(scripts/ensure-postgres.sh)"
export INVICTA_TEST_ADMIN_URL
echo "==> tests against ${INVICTA_TEST_ADMIN_URL}" >&2
cargo test --workspace --locked "$@"
