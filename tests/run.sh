#!/bin/sh
# run.sh (make test): unit tests, then the integration tests against a
# throwaway PostgreSQL 15 + wal2json cluster started here, and a closing
# "N passed, N failed" line over both.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
tmp="$top/tests/tmp"
port=${IT_PORT:-5497}
unit_out="" it_out=""

if [ "${1:-}" != "--integration-only" ]; then
	unit_out=$(sh tests/run-unit.sh build/tests/test_* 2>&1)
	printf '%s\n' "$unit_out"
fi

[ -f "$tmp/pg/data/postmaster.pid" ] && sh scripts/pg-local.sh stop "$tmp/pg" 2>/dev/null
rm -rf "$tmp"
mkdir -p "$tmp"
[ "$(id -u)" -eq 0 ] && chmod 755 "$tmp"
# fsync is off: the tests kill walcount, never the server host; restarts
# are clean shutdowns.
if sh scripts/pg-local.sh start "$tmp/pg" "$port" "fsync=off" "synchronous_commit=on"; then
	it_out=$(IT_PGHOST=127.0.0.1 IT_PGPORT=$port IT_TMP="$tmp" IT_PGDIR="$tmp/pg" \
		WALCOUNT_BIN="$top/bin/walcount" build/tests/integration 2>&1)
	printf '%s\n' "$it_out"
	sh scripts/pg-local.sh stop "$tmp/pg"
else
	echo "integration: could not start PostgreSQL, see $tmp/pg/server.log"
	cat "$tmp/pg/server.log" 2>/dev/null | tail -n 20
	it_out="integration: 0 passed, 1 failed"
fi

count() { printf '%s\n' "$1" | sed -n "s/^[a-z]*: \([0-9]*\) passed, \([0-9]*\) failed.*/\\$2/p" | tail -n1; }
p=$(( $(count "$unit_out" 1 || echo 0)0 / 10 + $(count "$it_out" 1)0 / 10 ))
f=$(( $(count "$unit_out" 2)0 / 10 + $(count "$it_out" 2)0 / 10 ))
[ -z "$(count "$it_out" 1)" ] && f=$((f + 1))
echo "$p passed, $f failed"
[ "$f" -eq 0 ]
