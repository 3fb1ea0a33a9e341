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
mode=${1:-}

# The last "NAME: N passed, M failed" line of file $1, as "N M".
summary() { sed -n "s/^[a-z]*: \([0-9]*\) passed, \([0-9]*\) failed\(, [0-9]* skipped\)\{0,1\}$/\1 \2/p" "$1" 2>/dev/null | tail -n1; }

[ -f "$tmp/pg/data/postmaster.pid" ] && sh scripts/pg-local.sh stop "$tmp/pg" 2>/dev/null
rm -rf "$tmp"
mkdir -p "$tmp"
chmod 755 "$tmp"

if [ "$mode" != "--integration-only" ]; then
	sh tests/run-unit.sh "${UNIT_DIR:-build/tests}"/test_* >"$tmp/unit.out" 2>&1
	cat "$tmp/unit.out"
	# The deployment files: there is no Docker engine here, so the compose
	# file, the Dockerfiles and the image's first start are checked without.
	sh tests/compose-check.sh >"$tmp/compose.out" 2>&1
	cat "$tmp/compose.out"
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

passed=0 failed=0
for part in unit compose integration; do
	[ "$part" != integration ] && [ "$mode" = "--integration-only" ] && continue
	# A part without its summary line (it crashed) counts as one failure.
	set -- $(summary "$tmp/$part.out") 0 1
	passed=$((passed + $1)) failed=$((failed + $2))
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
