# checks.sh: the check helpers of the server-free test scripts
# (tests/*-check.sh, tests/readme-path.sh), sourced after they cd to the
# repository root. Each script ends with checks_summary NAME, the
# "NAME: N passed, M failed" line tests/run.sh counts.
# shellcheck shell=sh

passed=0 failed=0
ok() {
	passed=$((passed + 1))
	echo "ok   $1"
}
# bad NAME [DETAIL]: a failed check, with its detail indented below.
bad() {
	failed=$((failed + 1))
	echo "FAIL $1"
	[ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/       /'
	return 0
}
# check NAME CMD...: passed when CMD exits 0; its output on failure.
check() {
	name=$1
	shift
	if out=$("$@" 2>&1); then ok "$name"; else bad "$name" "$out"; fi
}
# check_silent NAME CMD...: passed when CMD exits 0 and prints nothing (a
# linter's warnings exit 0).
check_silent() {
	name=$1
	shift
	if out=$("$@" 2>&1) && [ -z "$out" ]; then ok "$name"; else bad "$name" "$out"; fi
}
checks_summary() {
	echo "$1: $passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}
