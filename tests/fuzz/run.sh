#!/bin/sh
# run.sh (make fuzz): runs each libFuzzer target for FUZZ_SECONDS, seeded
# with the checked-in corpus, the wal2json sample (one record per line) and
# the project's config files. The working corpus grows in build-fuzz/corpus
# across runs; findings go to build-fuzz/crashes/TARGET/. The kept crashers
# (tests/fuzz/crashers/TARGET) are replayed first: they are regression tests.
#   FUZZ_SECONDS=600  FUZZ_TARGETS="decode config"
#   FUZZ_FORK=1  keep fuzzing after a finding (libFuzzer -fork=1
#                -ignore_crashes=1), to collect every finding in one run
# Ends with one "fuzz TARGET: ..." line per target and exits 1 when any
# target found something.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
out=build-fuzz
secs=${FUZZ_SECONDS:-600}
targets=${FUZZ_TARGETS:-decode config}
found=0
summary=""

seed() {
	dir="$out/corpus/$1"
	mkdir -p "$dir" "$out/crashes/$1"
	cp tests/fuzz/corpus/"$1"/* "$dir"/
	case "$1" in
	decode)
		# One seed per record of the sample.
		i=0
		while IFS= read -r line; do
			i=$((i + 1))
			printf '%s' "$line" >"$dir/sample-$i.json"
		done <tests/data/wal2json-v2-sample.jsonl
		;;
	config)
		cp config.yaml "$dir/config.yaml"
		;;
	esac
}

for t in $targets; do
	bin="$out/fuzz_$t"
	seed "$t"
	if ls tests/fuzz/crashers/"$t"/* >/dev/null 2>&1; then
		echo "fuzz $t: replaying kept crashers"
		if ! "$bin" -runs=0 tests/fuzz/crashers/"$t"/* >"$out/$t-replay.log" 2>&1; then
			echo "fuzz $t: a kept crasher still fails (see $out/$t-replay.log)"
			tail -n 30 "$out/$t-replay.log"
			found=1
		fi
	fi
	fork=""
	[ "${FUZZ_FORK:-0}" = 1 ] && fork="-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1"
	echo "fuzz $t: $secs s ($bin)"
	# shellcheck disable=SC2086
	"$bin" "$out/corpus/$t" -dict="tests/fuzz/$t.dict" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-max_len=8192 -artifact_prefix="$out/crashes/$t/" -print_final_stats=1 $fork >"$out/$t.log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$t.log" | tail -n1)
	[ -z "$execs" ] && execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' "$out/$t.log" | tail -n1)
	crashes=$(find "$out/crashes/$t" -type f | wc -l)
	cov=$(grep -o 'cov: [0-9]*' "$out/$t.log" | tail -n1)
	line="fuzz $t: ${execs:-?} executions in $secs s, $cov, corpus $(find "$out/corpus/$t" -type f | wc -l) inputs, $crashes findings in $out/crashes/$t (exit $rc)"
	summary="$summary$line
"
	if [ "$rc" -ne 0 ] || [ "$crashes" -gt 0 ]; then
		found=1
		grep -m3 -E 'ERROR: |runtime error|contract broken' "$out/$t.log"
	fi
done
printf '%s' "$summary"
exit "$found"
