#!/bin/sh
# replay.sh (make fuzz-replay): the kept crashers and the seed corpus as
# regression tests, each input in its own process of the plain-driver build
# (tests/fuzz/replay.c, gcc with ASan/UBSan), so every failing input is named.
# Ends with "fuzz-replay: N passed, M failed".
#   replay.sh DIR   where replay_decode and replay_config are (build-san/fuzz)
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
bindir=${1:-build-san/fuzz}
passed=0 failed=0
for t in decode config; do
	for f in tests/fuzz/crashers/"$t"/* tests/fuzz/corpus/"$t"/*; do
		[ -f "$f" ] || continue
		# Through a shell of its own, whose "Aborted" notice is dropped.
		if out=$(sh -c '"$0" "$1" 2>&1; exit $?' "$bindir/replay_$t" "$f" 2>/dev/null); then
			passed=$((passed + 1))
		else
			failed=$((failed + 1))
			why=$(printf '%s\n' "$out" | grep -m1 -E 'runtime error|ERROR: AddressSanitizer|contract broken|LeakSanitizer' |
				sed 's/^==[0-9]*==//')
			printf 'FAIL - fuzz %s: %s: %s\n' "$t" "$f" "${why:-exited non-zero}"
		fi
	done
done
echo "fuzz-replay: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
