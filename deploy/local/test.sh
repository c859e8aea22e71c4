#!/usr/bin/env bash
# Runs every check and test against the real stack: formatting, clippy, the
# supply chain (cargo deny), buf lint,
# buf breaking against the committed baseline, the web client (generated code,
# npm test, bundle), the deployment files' checks,
# then all unit and end-to-end tests with cargo-nextest. Starts the local stack if
# it is not running, and stops it afterwards if this script started it.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"

was_running=no
if [ -f "$(deploy/local/stack.sh env)" ] && [ -f target/stack/garage/pid ] \
   && kill -0 "$(cat target/stack/garage/pid)" 2>/dev/null; then
  was_running=yes
fi
# Set before `up`, so that a start-up that fails half-way stops what it started.
if [ "$was_running" = no ]; then
  trap 'deploy/local/stack.sh down' EXIT
fi
deploy/local/stack.sh up

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets -q -- -D warnings
echo "== cargo deny (licenses, duplicate majors, sources; deny.toml)"
cargo deny --log-level error check licenses bans sources
echo "== buf lint"
deploy/local/buf.sh lint
echo "== buf breaking (against proto/baseline, and a scratch copy that must fail)"
deploy/local/buf-breaking.sh
echo "== web client (lockfile install, src/gen as buf generates it, npm test: build, bundles, node:test)"
(
  cd clients/web
  npm ci --no-audit --no-fund --silent
  cp package-lock.json node_modules/.installed-from-lock
  npm run --silent generate
  if [ -n "$(git status --porcelain -- src/gen)" ]; then
    git status --short -- src/gen
    echo "clients/web/src/gen differs from what buf generates from proto/: run npm run generate there and commit it" >&2
    exit 1
  fi
  npm test --silent
)
echo "== deployment files (Kubernetes schemas; AWS policies and rules against the code)"
deploy/local/deploy-check.sh
echo "== tests"
cargo nextest run --workspace --no-fail-fast
