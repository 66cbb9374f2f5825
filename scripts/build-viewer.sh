#!/usr/bin/env bash
# Builds the care-record viewer (apps/viewer) into apps/viewer/dist, which Invicta serves at
# /apps/viewer/: installs its npm packages when the lock file changed, then `npm run build`.
# Needs Node.js 20 or later (scripts/ensure-node.sh installs it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ ! apps/viewer/node_modules/.package-lock.json -nt apps/viewer/package-lock.json ]]; then
  echo "==> installing the viewer's npm packages" >&2
  npm ci --prefix apps/viewer --no-audit --no-fund >&2
fi
npm run --silent build --prefix apps/viewer >&2
