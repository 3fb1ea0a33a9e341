#!/bin/sh
# format.sh [--check]: formats the C sources in place with clang-format 14
# and .clang-format (make format); with --check changes nothing, lists the
# files that would change and ends with "format: 1 passed, 0 failed" or
# "format: 0 passed, 1 failed" (make format-check, part of make check).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
cf=clang-format-14
command -v "$cf" >/dev/null 2>&1 || cf=clang-format
if ! command -v "$cf" >/dev/null 2>&1; then
	echo "format: clang-format is not installed (scripts/deps.sh installs it)"
	echo "format: 0 passed, 1 failed"
	exit 1
fi
files=$(ls src/*.c src/*.h tests/unit/*.c tests/integration/*.c tests/integration/*.h tests/fuzz/*.c)
if [ "${1:-}" != --check ]; then
	# shellcheck disable=SC2086
	exec "$cf" -i --style=file $files
fi
# One check over all files, not one test per file: the closing count of
# make check stays a count of tests.
bad=0
for f in $files; do
	if ! "$cf" --style=file "$f" | cmp -s - "$f"; then
		bad=$((bad + 1))
		echo "format: $f differs from clang-format (make format fixes it)"
	fi
done
if [ "$bad" -eq 0 ]; then
	echo "ok   format: $(echo "$files" | wc -w) files as clang-format writes them"
	echo "format: 1 passed, 0 failed"
else
	echo "FAIL format: $bad files differ"
	echo "format: 0 passed, 1 failed"
	exit 1
fi
