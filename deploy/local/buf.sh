#!/usr/bin/env bash
# Runs buf (from the npm registry, installed once under target/tools) with the given arguments.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tools=$repo/target/tools
BUF_VERSION=1.75.0
if [ ! -x "$tools/node_modules/.bin/buf" ]; then
  mkdir -p "$tools"
  npm install --silent --prefix "$tools" "@bufbuild/buf@$BUF_VERSION" >/dev/null
fi
cd "$repo"
exec "$tools/node_modules/.bin/buf" "$@"
