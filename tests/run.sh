#!/bin/sh
# run.sh (make test): unit tests, then the integration tests against a
# throwaway PostgreSQL 15 + wal2json cluster started here, and a closing
# "N passed, N failed" line over both.
#   WALCOUNT_BIN, IT_BIN, UNIT_DIR  binaries to test (make check-sanitize)
#   IT_ONLY=a,b  IT_SEED=n          passed on to the integration tests
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
tmp="$top/tests/tmp"
port=${IT_PORT:-5497}

# The last "NAME: N passed, M failed" line of file $1, as "N M".
summary() { sed -n 's/^[a-z]*: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$1" 2>/dev/null | tail -n1; }

[ -f "$tmp/pg/data/postmaster.pid" ] && sh scripts/pg-local.sh stop "$tmp/pg" 2>/dev/null
rm -rf "$tmp"
mkdir -p "$tmp"
chmod 755 "$tmp"

if [ "${1:-}" != "--integration-only" ]; then
	sh tests/run-unit.sh "${UNIT_DIR:-build/tests}"/test_* >"$tmp/unit.out" 2>&1
	cat "$tmp/unit.out"
fi

# fsync is off: the tests kill walcount, never the machine; server restarts
# are clean shutdowns.
if sh scripts/pg-local.sh start "$tmp/pg" "$port" "fsync=off"; then
	IT_PGHOST=127.0.0.1 IT_PGPORT=$port IT_TMP="$tmp" IT_PGDIR="$tmp/pg" \
		WALCOUNT_BIN="${WALCOUNT_BIN:-$top/bin/walcount}" "${IT_BIN:-build/tests/integration}" 2>&1 |
		tee "$tmp/integration.out"
	sh scripts/pg-local.sh stop "$tmp/pg"
else
	echo "integration: could not start PostgreSQL:"
	tail -n 20 "$tmp/pg/server.log" 2>/dev/null
fi

set -- $(summary "$tmp/unit.out") 0 0
up=$1 uf=$2
set -- $(summary "$tmp/integration.out")
ip=${1:-0} ifl=${2:-1}
echo "$((up + ip)) passed, $((uf + ifl)) failed"
[ $((uf + ifl)) -eq 0 ]
