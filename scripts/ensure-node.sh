#!/usr/bin/env bash
# Makes sure Node.js 20 or later is here (the viewer's build, the identity provider and browser
# tests of tests/node); as root on Debian it is installed with apt-get when missing.
set -euo pipefail
if ! command -v node >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
  echo "==> installing Node.js with apt-get" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm >&2 ||
    { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm >&2; }
fi
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' ||
  { echo "Node.js 20 or later is needed (the viewer's build and the tests of tests/node)" >&2; exit 1; }
