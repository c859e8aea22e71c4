#!/usr/bin/env bash
# The wire contract. The proto must stay compatible (buf's FILE rules) with the
# committed baseline image, proto/baseline/upload.v1.json: what clients were built
# against. Then the check is shown to bite: scratch copies of the proto with a
# deliberately breaking change (an RPC removed, a field renumbered) must be refused.
#
#   deploy/local/buf-breaking.sh               check (CI runs this)
#   deploy/local/buf-breaking.sh --rebaseline  write the baseline from the proto
#                                              (after a release fixes the contract)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
buf=deploy/local/buf.sh
baseline=proto/baseline/upload.v1.json

if [ "${1:-}" = --rebaseline ]; then
  exec "$buf" build --exclude-source-info -o "$baseline"
fi

"$buf" breaking --against "$baseline"
echo "proto compatible with $baseline"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
refused() {
  local what=$1 expect=$2 copy=$scratch/$3
  if "$buf" breaking "$copy" --against "$baseline" >"$copy.out" 2>&1; then
    echo "buf breaking let a breaking change through: $what" >&2
    exit 1
  fi
  if ! grep -q "$expect" "$copy.out"; then
    echo "buf breaking refused $what without naming it:" >&2
    cat "$copy.out" >&2
    exit 1
  fi
  echo "refused as it must be: $what"
}
copy() {
  mkdir -p "$scratch/$1"
  cp -r buf.yaml proto "$scratch/$1/"
  echo "$scratch/$1/proto/upload/v1/upload.proto"
}

file=$(copy rpc-removed)
sed -i '/^  rpc GetUpload(GetUploadRequest)/d' "$file"
refused "GetUpload removed" "GetUpload" rpc-removed

file=$(copy field-renumbered)
python3 - "$file" <<'PY'
import sys
path = sys.argv[1]
text = open(path).read()
head, tail = text.split("message GetUploadRequest {", 1)
tail = tail.replace("string upload_id = 1;", "string upload_id = 9;", 1)
open(path, "w").write(head + "message GetUploadRequest {" + tail)
PY
refused "GetUploadRequest.upload_id renumbered" "GetUploadRequest" field-renumbered
