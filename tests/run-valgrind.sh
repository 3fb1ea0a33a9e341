#!/bin/sh
# run-valgrind.sh BIN... : runs each unit-test binary under Valgrind
# (memcheck: no invalid access, no uninitialised read, no definite or
# indirect leak), keeps each report in BIN.valgrind.log and prints a closing
# "valgrind: N passed, N failed" counted over binaries.
passed=0; failed=0
for t in "$@"; do
	# Not the dependency files and Valgrind reports beside the binaries.
	case "${t##*/}" in *.*) continue ;; esac
	valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
		--show-leak-kinds=definite,indirect --track-origins=yes "$t" >"$t.valgrind.log" 2>&1
	rc=$?
	if [ "$rc" -eq 0 ]; then
		passed=$((passed + 1))
		echo "ok   valgrind $t"
	else
		failed=$((failed + 1))
		echo "FAIL valgrind $t: exited $rc"
		grep -E '^==[0-9]+==' "$t.valgrind.log" | head -n 40
	fi
done
echo "valgrind: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
