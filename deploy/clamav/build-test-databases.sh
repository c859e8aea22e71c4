#!/usr/bin/env bash
# Builds the test signature databases from their sources: testdb/daily.cud
# (version 1, from test-signatures/a) and testdb-b/daily.cud (version 2, from
# test-signatures/b, which adds one signature for a harmless marker string);
# for the holds and releases of flagged content, testdb-c (version 3: b again, the
# same findings under newer signatures), testdb-d (version 4: EICAR and the
# marker under new names, other findings) and testdb-e (version 3: a again, the
# marker no longer found). All are unsigned containers (.cud) that clamd loads and
# whose version its VERSION answer reports, as it does for the official daily
# database. Run after changing a source; the outputs are committed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build() {
  local src=$1 version=$2 out=$3 work
  work=$(mktemp -d)
  cp "$here/test-signatures/$src"/daily.* "$work/"
  echo "Test signatures of the upload service (not for production use)." > "$work/COPYING"
  (cd "$work" && printf 'upload-service\n\n' | sigtool --build=daily.cud --unsigned --cvd-version="$version" --datadir="$work" >/dev/null)
  mkdir -p "$here/$out"
  cp "$work/daily.cud" "$here/$out/daily.cud"
  rm -rf "$work"
  sigtool --info="$here/$out/daily.cud" | grep -E '^(Version|Signatures):'
}
build a 1 testdb
build b 2 testdb-b
build c 3 testdb-c
build d 4 testdb-d
build e 3 testdb-e
