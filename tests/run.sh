#!/bin/sh
# run.sh (make test): every test part, against a throwaway PostgreSQL 15 +
# wal2json cluster started here, and a closing "N passed, N failed" line
# over all parts. Each part prints its own "PART: N passed, M failed"; a
# part without that line (it crashed) counts as one failure.
#   (no argument)        make test: the -O2 build's unit, command-line
#                        (cli, tests/cli-check.sh), deployment (compose,
#                        install), README-path, alert-rule and metric-name
#                        checks and integration tests (the short fault
#                        loop included), then the unit and integration
#                        tests built with ASan/UBSan (build-san), the
#                        integration tests there
#                        with apply.workers = 4 (IT_WORKERS) so that both
#                        apply paths run, the fuzz crashers replayed under
#                        them, and the unit tests under Valgrind
#   --check              make check: the formatting check, the -O2 build's
#                        unit and command-line tests, the README path and
#                        its integration tests with a shorter fault loop
#                        (IT_FAULT_SECONDS, default 20) and fewer rounds of
#                        the repetitive ones (IT_QUICK=1)
#   --integration-only   the -O2 build's integration tests (make integration)
#   --sanitize           the ASan/UBSan parts only (make check-sanitize)
#   --valgrind           the unit tests under Valgrind (make check-valgrind)
#   IT_ONLY=a,b  IT_SEED=n  IT_FAULT_SECONDS=s  IT_WORKERS=n (apply.workers
#   of every test that does not set its own)  passed on to the integration
#   tests; IT_PORT=p  the cluster's port (the failover tests also use p+1
#   and p+2), by default the first free one from a random start
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
tmp="$top/tests/tmp"
mode=${1:-all}
san="$top/build-san"

# The last "NAME: N passed, M failed" line of file $1, as "N M".
summary() { sed -n "s/^[a-z-]*: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p" "$1" 2>/dev/null | tail -n1; }

case "$mode" in
all) parts="unit cli compose install readme-path alerts metric-names integration san-unit san-integration fuzz-replay valgrind" ;;
--check)
	parts="format unit cli readme-path integration"
	export IT_FAULT_SECONDS="${IT_FAULT_SECONDS:-20}" IT_QUICK="${IT_QUICK:-1}" ;;
--integration-only) parts="integration" ;;
--sanitize) parts="san-unit san-integration fuzz-replay" ;;
--valgrind) parts="valgrind" ;;
*) echo "usage: tests/run.sh [--check|--integration-only|--sanitize|--valgrind]" >&2; exit 2 ;;
esac

# The unit-test binaries of build $1: the files beside them (dependency
# files, Valgrind reports) have a dot in their names.
unit_bins() {
	for t in "$1"/tests/test_*; do
		case "${t##*/}" in *.*) continue ;; esac
		[ -x "$t" ] && echo "$t"
	done
}

[ -f "$tmp/pg/data/postmaster.pid" ] && sh scripts/pg-local.sh stop "$tmp/pg" 2>/dev/null
rm -rf "$tmp"
mkdir -p "$tmp"
chmod 755 "$tmp"

# integration WALCOUNT_BIN IT_BIN: the integration tests of one build.
integration() {
	IT_PGHOST=127.0.0.1 IT_PGPORT=$port IT_TMP="$tmp" IT_PGDIR="$tmp/pg" WALCOUNT_BIN="$1" "$2" 2>&1
}

# For the ASan builds (the others ignore it): a small quarantine keeps the
# 1M-row test's memory bound meaningful.
export ASAN_OPTIONS="${ASAN_OPTIONS:-quarantine_size_mb=16}"

pg_started=
# unit_bins' paths have no blanks.
# shellcheck disable=SC2046
run_part() {
	case "$1" in
	format) sh scripts/format.sh --check ;;
	unit) sh tests/run-unit.sh $(unit_bins build) ;;
	# The command line without a server: help, usage errors, `walcount config`.
	cli) sh tests/cli-check.sh bin/walcount ;;
	# The deployment files: there is no Docker engine here, so the compose
	# file, the Dockerfiles and the image's first start are checked without.
	compose) sh tests/compose-check.sh ;;
	# make install into temporary trees, the unit through systemd-analyze
	# verify, the man pages through mandoc.
	install) sh tests/install-check.sh ;;
	# The alert rules (promtool check and test rules) and the metric names
	# the rules and the Grafana dashboard query, against a running walcount.
	alerts) sh tests/alerts-check.sh ;;
	metric-names) sh tests/metric-names.sh ;;
	# The README's set-up section as a new user follows it: make run, the
	# second terminal's commands, Ctrl-C, make stop (its own cluster).
	readme-path) sh tests/readme-path.sh ;;
	integration) integration "$top/bin/walcount" build/tests/integration ;;
	san-unit) sh tests/run-unit.sh $(unit_bins "$san") | sed 's/^unit:/san-unit:/' ;;
	san-integration) IT_WORKERS=${IT_WORKERS:-4} integration "$san/walcount" "$san/tests/integration" |
		sed 's/^integration:/san-integration:/' ;;
	fuzz-replay) sh tests/fuzz/replay.sh "$san/fuzz" ;;
	valgrind) sh tests/run-valgrind.sh $(unit_bins build) ;;
	esac
}

for part in $parts; do
	case "$part" in
	*integration)
		# fsync is off: the tests kill walcount, never the machine;
		# server restarts are clean shutdowns. The port is chosen just
		# before the server takes it, so two runs rarely race for one.
		if [ -z "$pg_started" ]; then
			port=${IT_PORT:-$(sh scripts/free-port.sh 3)} || exit 1
			if ! sh scripts/pg-local.sh start "$tmp/pg" "$port" "fsync=off"; then
				echo "$part: could not start PostgreSQL on port $port:"
				tail -n 20 "$tmp/pg/server.log" 2>/dev/null
				continue
			fi
			echo "PostgreSQL 15 on 127.0.0.1:$port ($tmp/pg)"
			pg_started=1
		fi ;;
	esac
	echo "== $part"
	run_part "$part" 2>&1 | tee "$tmp/$part.out"
done
[ -n "$pg_started" ] && sh scripts/pg-local.sh stop "$tmp/pg"

passed=0 failed=0
for part in $parts; do
	# shellcheck disable=SC2046
	set -- $(summary "$tmp/$part.out") 0 1
	passed=$((passed + $1)) failed=$((failed + $2))
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
