#!/bin/sh
# run-unit.sh BIN... : runs each cmocka binary, prints their output and a
# closing "unit: N passed, N failed" counted over test cases.
passed=0; failed=0
for t in "$@"; do
	# Not the dependency files and Valgrind reports beside the binaries.
	case "${t##*/}" in *.*) continue ;; esac
	out=$("$t" 2>&1); rc=$?
	printf '%s\n' "$out"
	p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -n1)
	f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -n1)
	passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
	if [ "$rc" -ne 0 ] && [ -z "$f" ]; then failed=$((failed + 1)); echo "$t: exited $rc"; fi
done
echo "unit: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
