#!/bin/sh
# bench/reconcile.sh (make bench-reconcile): what a reconcile sweep costs, for
# a baseline revision and the current tree side by side, in one run.
#
#   Variants:  "current" is bin/walcount (`make`); "baseline" is revision
#              BENCH_BASELINE (default 8e95089, the last commit before issue
#              16's work), built from `git archive` in bench/tmp/baseline-REV
#              and kept there for the next run; BENCH_BASELINE=none measures
#              the current tree alone.
#   Figure 1:  each variant's sweep (`walcount reconcile`) vs the bare
#              recount (the seed's three recompute statements as SELECTs, in
#              bench/bare_recount.sql) on the same data, alternating bare,
#              then the variants (their order swapped every run), median of
#              BENCH_REPS runs each; where a sweep's statements spend the time
#              (pg_stat_statements).
#   Figure 2:  for each rate of BENCH_RATES (tx/s; one change per
#              transaction) and each variant, `walcount run` streaming a
#              steady write load (pgbench -R): BENCH_PHASE_SECONDS without a
#              sweep, then as long with sweeps back to back (SIGUSR1 every
#              second). Commit->apply latency (a probe's exact latencies and
#              the walcount_commit_to_apply_seconds histogram's estimates),
#              walcount_lag_bytes, the longest stream stall seen by a poller
#              of walcount.progress (bench.stall, the same for both
#              variants) and walcount_reconcile_pause_seconds where the
#              binary exports it. A control phase for the current
#              variant: as long again with no sweep, while a loop runs the
#              bare recount (bench/bare_recount.sql) back to back, the
#              server-side cost that any sweep pays.
#   Goals:     issue 16's goals checked on the current variant, PASS/FAIL.
#
# Starts its own PostgreSQL 15 + wal2json (scripts/pg-local.sh, bench/tmp/pg,
# a free port or BENCH_PORT, fsync on; walcount's metrics on a free port or
# BENCH_METRICS), stops it on exit, and writes the "## Reconcile" section of
# bench/results.md. Exits non-zero when a dry-run sweep of the current
# variant after its load finds something to correct. About 12 minutes on 2
# CPUs at the defaults; sizes and durations can be changed from the
# environment (BENCH_* below).
# `set -- $(...)` and `read a b c` split result lines into named fields on
# purpose, not all of them used; dash has `local`.
# shellcheck disable=SC2046,SC2086,SC2034,SC3043
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
bench="$top/bench"
tmp="$bench/tmp"
pgdir="$tmp/pg"
db=walbench
users=${BENCH_USERS:-100000}
tracks=${BENCH_TRACKS:-200000}
playlists=${BENCH_PLAYLISTS:-30000}
comments=${BENCH_COMMENTS:-300000}
reposts=${BENCH_REPOSTS:-500000}
saves=${BENCH_SAVES:-400000}
follows=${BENCH_FOLLOWS:-300000}
min_source=${BENCH_MIN_SOURCE:-1000000}
reps=${BENCH_REPS:-5}
phase_s=${BENCH_PHASE_SECONDS:-30}
warmup_s=${BENCH_WARMUP_SECONDS:-5}
rates=${BENCH_RATES:-200 2000}
baseline=${BENCH_BASELINE:-8e95089}
walcount="$top/bin/walcount"
wc_bin=$walcount
results="$bench/results.md"
stats="$tmp/stats"
tab=$(printf '\t')

say() { printf '%s\n' "bench: $*" >&2; }
die() { say "$*"; exit 1; }

[ -x "$walcount" ] || die "$walcount is missing: run make first"
sh "$top/scripts/deps.sh" bench
for t in psql pgbench curl awk git tar make; do
	command -v "$t" >/dev/null || die "$t not found (scripts/deps.sh installs postgresql-client-15; the others are base tools)"
done

# shellcheck source=bench/lib.sh
. "$bench/lib.sh"
export PGHOST=127.0.0.1 PGPORT="$port" PGUSER=postgres PGDATABASE="$db"
export WALCOUNT_CONFIG="$tmp/walcount.yaml"
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

# Everything started here is stopped on exit, by its pid, then the server.
load_pid="" probe_pid="" stall_pid="" sampler_pid="" usr1_pid="" bare_pid=""
trap 'bench_cleanup_all "$?"' EXIT
bench_cleanup_all() {
	bg_pids="$usr1_pid $bare_pid $sampler_pid $stall_pid $load_pid $probe_pid"
	bench_cleanup "$1"
}
trap 'exit 130' INT
trap 'exit 143' TERM

# Other work on the machine skews every figure: the load averages at the
# start and the end go into the results.
started=$(date +%s)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
commit=$(cd "$top" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
[ "$commit" = unknown ] || [ -z "$(cd "$top" && git status --porcelain -- src sql 2>/dev/null)" ] || commit="$commit (src/sql modified)"
mkdir -p "$tmp"
: >"$stats"
# put KEY VALUE...: a figure for the results; get KEY prints it, n/a if none.
put() {
	k=$1
	shift
	printf '%s %s\n' "$k" "$*" >>"$stats"
}
get() { awk -v k="$1" '$1 == k { sub(/^[^ ]* /, ""); v = $0 } END { print (v == "" ? "n/a" : v) }' "$stats"; }

# --- the baseline binary -----------------------------------------------------
# The archive has no .git: `git describe` in the Makefile would describe the
# enclosing checkout (bench/tmp is inside it) or say "unknown", so the
# revision is given to make. Built in a scratch directory and renamed, so an
# interrupted build is never taken for a cached one.
build_baseline() { # build_baseline REV: sets bin_baseline
	local dir
	dir="$tmp/baseline-$1"
	bin_baseline="$dir/bin/walcount"
	[ -x "$bin_baseline" ] && return
	say "building the baseline $1 in $dir"
	rm -rf "$dir.new"
	mkdir -p "$dir.new"
	git -C "$top" archive "$1" >"$tmp/baseline.tar" || die "git archive $1 failed"
	tar -x -C "$dir.new" -f "$tmp/baseline.tar"
	rm -f "$tmp/baseline.tar"
	make -C "$dir.new" REVISION="$1" bin/walcount >"$tmp/baseline-$1.build.log" 2>&1 ||
		{ tail -20 "$tmp/baseline-$1.build.log" >&2; die "building the baseline $1 failed"; }
	rm -rf "$dir"
	mv "$dir.new" "$dir"
}
variants=current
bin_current=$walcount
rev_current=$commit
if [ "$baseline" != none ]; then
	rev_baseline=$(git -C "$top" rev-parse --verify --short "$baseline^{commit}" 2>/dev/null) ||
		die "BENCH_BASELINE=$baseline is not a commit of $top (or none)"
	build_baseline "$rev_baseline"
	variants="baseline current"
fi
bin_of() { if [ "$1" = baseline ]; then echo "$bin_baseline"; else echo "$bin_current"; fi; }
for v in $variants; do
	put "version_$v" "$("$(bin_of $v)" --version)"
done

# --- server and data -------------------------------------------------------
say "starting PostgreSQL on 127.0.0.1:$port ($pgdir)"
cluster_start fsync=on synchronous_commit=on \
	shared_buffers=1GB max_wal_size=4GB checkpoint_timeout=15min shared_preload_libraries=pg_stat_statements
q -d postgres -c "CREATE DATABASE $db"
q -f "$top/sql/schema.sql"
q -c "CREATE EXTENSION pg_stat_statements"
pg_version=$(q -c "SHOW server_version")

say "generating data: $users users, $tracks tracks, $playlists playlists, $comments comments, ~$((reposts + saves + follows)) reposts/saves/follows"
t0=$(date +%s)
q -v users="$users" -v tracks="$tracks" -v playlists="$playlists" -v comments="$comments" \
	-v reposts="$reposts" -v saves="$saves" -v follows="$follows" -f "$bench/reconcile_data.sql" >/dev/null
q -c "VACUUM (ANALYZE)"
counts=$(q -F ' ' -c "SELECT (SELECT count(*) FROM reposts), (SELECT count(*) FROM saves), (SELECT count(*) FROM follows),
	(SELECT count(*) FROM reposts WHERE NOT is_current OR is_delete) + (SELECT count(*) FROM saves WHERE NOT is_current OR is_delete)
	+ (SELECT count(*) FROM follows WHERE NOT is_current OR is_delete),
	(SELECT count(*) FROM tracks), (SELECT count(*) FROM playlists), (SELECT count(*) FROM comments)")
set -- $counts
n_reposts=$1 n_saves=$2 n_follows=$3 n_inactive=$4 n_tracks=$5 n_playlists=$6 n_comments=$7
n_source=$((n_reposts + n_saves + n_follows))
[ "$n_source" -ge "$min_source" ] || die "only $n_source source rows, want >= $min_source"
db_size=$(q -c "SELECT pg_size_pretty(pg_database_size(current_database()))")
say "loaded $n_source source rows ($n_reposts reposts, $n_saves saves, $n_follows follows; $n_inactive inactive), $n_tracks tracks, $n_playlists playlists, $n_comments comments, $db_size in $(($(date +%s) - t0)) s"

# Only keys every revision's config parser knows: an older one rejects a
# key it does not know (reconcile.chunk_time, for one).
cat >"$WALCOUNT_CONFIG" <<EOF
database:
  dsn: "host=127.0.0.1 port=$port dbname=$db user=postgres"
slot:
  name: walcount_bench
checkpoint:
  interval: 1h
metrics:
  listen: $metrics_addr
EOF

# Both variants use this one slot, walcount_bench, and its state
# (walcount.progress and walcount.checkpoints, the same tables in both
# revisions), never at the same time: a `walcount run` is stopped (wc_stop)
# before anything else streams, and each `walcount reconcile` runs while no
# `walcount run` does, so it streams the slot itself up to its snapshot.
# A variant thus starts where the other left: the stream caught up and the
# aggregates exact, which the dry-run sweep ending each Figure-2 block
# checks, and every sweep of Figure 1 reports (0 corrected). A `walcount
# init` per variant would rebuild the slot and reload everything at every
# switch for the same starting state.
say "walcount init (exact initial load, $rev_current)"
t0=$(date +%s%N)
"$walcount" init >"$tmp/init.log" 2>&1 || { cat "$tmp/init.log" >&2; die "walcount init failed"; }
init_ms=$((($(date +%s%N) - t0) / 1000000))

# sweep BIN [--dry-run]: one `walcount reconcile` of BIN; sets sweep_r to
# "checked corrected ms pause_ms" (pause n/a where the line has none). The
# line: "reconcile: checked N rows, corrected M[ (cols)][, longest stream
# pause P ms,] in X ms".
sweep() {
	local bin
	bin=$1
	shift
	"$bin" reconcile "$@" >"$tmp/sweep.out" 2>"$tmp/sweep.err" || { cat "$tmp/sweep.err" >&2; die "$bin reconcile failed"; }
	sweep_r=$(sed -n 's/^reconcile: checked \([0-9]*\) rows, [a-z ]* \([0-9]*\).* in \([0-9]*\) ms$/\1 \2 \3/p' "$tmp/sweep.out")
	[ -n "$sweep_r" ] || { cat "$tmp/sweep.out" "$tmp/sweep.err" >&2; die "no result line from $bin reconcile"; }
	sweep_r="$sweep_r $(sed -n 's/^reconcile: .*longest stream pause \([0-9.]*\) ms.*/\1/p' "$tmp/sweep.out" | grep . || echo n/a)"
}
# init loads the stream's columns only; the first sweep fills track_count,
# playlist/album counts, the dominant genre and comment_count. After it the
# aggregates are exact: the sweeps measured below find nothing to correct,
# the steady state of a healthy deployment.
say "first sweep (fills the columns init does not load)"
sweep "$walcount"
first_line=$(cat "$tmp/sweep.out")
q -c "VACUUM (ANALYZE)" -c "CHECKPOINT"

# --- Figure 1 --------------------------------------------------------------
# A sweep's statements, grouped: recount.sql's (the same text in both
# revisions) and every other one by the start of its text, comments
# stripped, and the per-table names it mentions (aggregate_user,
# recount_track, ...), since the revisions' other statements differ:
# "label<TAB>calls<TAB>total ms". The reset before each sweep leaves only
# its statements.
stmts_query="SELECT CASE WHEN s ~ '^(CREATE TEMP TABLE IF NOT EXISTS recount_|TRUNCATE recount_|CREATE TEMP VIEW active_|INSERT INTO recount_|DROP VIEW active_|ANALYZE recount_)'
		THEN 'recount' ELSE left(regexp_replace(s, '[[:space:]|\`]+', ' ', 'g'), 56) || coalesce(' [' || (SELECT string_agg(DISTINCT m[1], ', ')
			FROM regexp_matches(s, '\\m([a-z]+_(user|track|playlist))\\M', 'g') AS m) || ']', '') END, calls, total_exec_time
	FROM (SELECT regexp_replace(query, '^([[:space:]]*--[^\n]*\n)*[[:space:]]*', '') AS s, calls, total_exec_time
		FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%') AS p"
say "Figure 1: bare recount vs sweep ($variants), $reps runs each, alternating"
for v in $variants; do
	: >"$tmp/sweep-$v.ms"
	: >"$tmp/sweep-$v.wall"
	: >"$tmp/sweep-$v.pause"
	: >"$tmp/stmts-$v.tsv"
done
: >"$tmp/bare.ms"
: >"$tmp/bare_parts.ms"
fig1_sweep() { # fig1_sweep VARIANT
	local v t0 wall
	v=$1
	q -c "SELECT pg_stat_statements_reset()" >/dev/null
	t0=$(date +%s%N)
	sweep "$(bin_of "$v")"
	wall=$((($(date +%s%N) - t0) / 1000000))
	set -- $sweep_r
	echo "$3" >>"$tmp/sweep-$v.ms"
	echo "$wall" >>"$tmp/sweep-$v.wall"
	[ "$4" = n/a ] || echo "$4" >>"$tmp/sweep-$v.pause"
	put "fig1_checked_$v" "$1"
	put "fig1_corrected_$v" "$(($(get "fig1_corrected_$v" | sed 's,n/a,0,') + $2))"
	q -F "$tab" -c "$stmts_query" >>"$tmp/stmts-$v.tsv"
	say "  $v sweep $3 ms (process $wall ms, checked $1, corrected $2, longest stream pause $4 ms)"
}
order=$variants
i=0
while [ "$i" -lt "$reps" ]; do
	i=$((i + 1))
	q -c '\timing on' -f "$bench/bare_recount.sql" >"$tmp/bare.out"
	bare_ms=$(awk '/^Time:/ { s += $2 } END { printf "%.0f", s }' "$tmp/bare.out")
	awk '/^Time:/ { printf "%s%.0f", n++ ? " " : "", $2 } END { print "" }' "$tmp/bare.out" >>"$tmp/bare_parts.ms"
	bare_rows=$(awk -F'|' '/^aggregate_/ { c += $2; w += $3 } END { print c, w }' "$tmp/bare.out")
	echo "$bare_ms" >>"$tmp/bare.ms"
	say "  run $i: bare $bare_ms ms (checked/would update: $bare_rows)"
	for v in $order; do
		fig1_sweep "$v"
	done
	order=$(echo "$order" | awk '{ for (i = NF; i > 0; i--) printf "%s%s", $i, (i > 1 ? " " : "\n") }')
done
bare_med=$(median <"$tmp/bare.ms")
bare_user=$(awk '{ print $1 }' "$tmp/bare_parts.ms" | median)
bare_track=$(awk '{ print $2 }' "$tmp/bare_parts.ms" | median)
bare_playlist=$(awk '{ print $3 }' "$tmp/bare_parts.ms" | median)
bare_list=$(paste -sd, "$tmp/bare.ms" | sed 's/,/, /g')
for v in $variants; do
	put "fig1_med_$v" "$(median <"$tmp/sweep-$v.ms")"
	put "fig1_wall_$v" "$(median <"$tmp/sweep-$v.wall")"
	put "fig1_list_$v" "$(paste -sd, "$tmp/sweep-$v.ms" | sed 's/,/, /g')"
	put "fig1_ratio_$v" "$(ratio "$(get "fig1_med_$v")" "$bare_med")"
	put "fig1_pause_$v" "$(sort -n "$tmp/sweep-$v.pause" | tail -1 | grep . || echo n/a)"
	# Per sweep (mean over the runs): recount.sql, the rest, and the four
	# costliest other statements with their calls.
	awk -F'\t' -v reps="$reps" '
		{ t[$1] += $3; c[$1] += $2; if ($1 == "recount") r += $3; else o += $3 }
		END {
			printf "recount %.0f other %.0f\n", r / reps, o / reps
			fflush()
			for (k in t) if (k != "recount") printf "%.0f\t%g\t%s\n", t[k] / reps, c[k] / reps, k | "sort -t\"\t\" -k1,1nr | head -4"
		}' "$tmp/stmts-$v.tsv" >"$tmp/stmts-$v.sum"
	set -- $(head -1 "$tmp/stmts-$v.sum")
	put "st_recount_$v" "$2"
	put "st_other_$v" "$4"
	put "st_top_$v" "$(sed 1d "$tmp/stmts-$v.sum" | awk -F'\t' '{ printf "%s`%s` %s ms (%s calls)", (NR > 1 ? "; " : ""), $3, $1, $2 }')"
done

# --- Figure 2 --------------------------------------------------------------
murl="http://$metrics_addr/metrics"
metrics_up() { curl -sf "$murl" >/dev/null 2>&1; }
q -f "$bench/reconcile_probe.sql" >/dev/null
# Until walcount has applied everything committed so far: a probe toggle is
# applied after all earlier commits (the stream is in commit order), then
# the lag gauge (refreshed every 5 s) must show it. Starting up, walcount
# re-reads the WAL written since the last `walcount reconcile` confirmed;
# none of that belongs in a phase.
catch_up() {
	q -c "CALL bench.probe('catch-up', 0.5, $((users + 1)), $((tracks + 1)))"
	n=0
	until [ "$(curl -sf "$murl" | awk '/^walcount_lag_bytes / { print ($2 < 1048576) }')" = 1 ]; do
		n=$((n + 1))
		[ "$n" -lt 600 ] || die "walcount did not catch up in 60 s"
		sleep 0.1
	done
}

# One phase: load, probe, stall sampler and lag sampling for phase_s
# seconds; metrics snapshots before and after for the histograms' deltas.
phase() { # phase NAME
	curl -sf "$murl" >"$tmp/metrics-$1-before.txt"
	$load -T "$phase_s" "$db" >"$tmp/pgbench-$1.out" 2>&1 &
	load_pid=$!
	psql -X -q -v ON_ERROR_STOP=1 -c "CALL bench.probe('$1', $phase_s, $((users + 1)), $((tracks + 1)))" &
	probe_pid=$!
	psql -X -q -v ON_ERROR_STOP=1 -c "CALL bench.stall('$1', $phase_s)" &
	stall_pid=$!
	(while :; do curl -sf "$murl" | awk '/^walcount_lag_bytes / { print $2 }'; sleep 1; done) >"$tmp/lag-$1.txt" &
	sampler_pid=$!
	wait "$load_pid" || { cat "$tmp/pgbench-$1.out" >&2; die "pgbench failed in phase $1"; }
	load_pid=""
	wait "$probe_pid" || die "the probe failed in phase $1"
	probe_pid=""
	wait "$stall_pid" || die "the stall sampler failed in phase $1"
	stall_pid=""
	kill "$sampler_pid" 2>/dev/null || true
	wait "$sampler_pid" 2>/dev/null || true
	sampler_pid=""
	curl -sf "$murl" >"$tmp/metrics-$1-after.txt"
}

# Probe percentiles (nearest rank): N p50 p99 max unseen.
probe_stats() {
	q -F ' ' -c "SELECT count(*), round(percentile_disc(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1),
		round(percentile_disc(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1), round(max(ms)::numeric, 1),
		count(*) FILTER (WHERE NOT seen) FROM bench.probe_samples WHERE phase = '$1'"
}
# The stall sampler's: longest_ms p99_ms moves.
stall_stats() {
	q -F ' ' -c "SELECT round(longest_ms::numeric), round(p99_ms::numeric), moves FROM bench.stall_samples WHERE phase = '$1'"
}
lag_stats() { # samples max_bytes median_bytes
	printf '%s %s %s\n' "$(wc -l <"$tmp/lag-$1.txt")" "$(sort -n "$tmp/lag-$1.txt" | tail -1)" "$(median <"$tmp/lag-$1.txt")"
}
tps() { awk '/^tps = / { printf "%.0f", $3; exit }' "$tmp/pgbench-$1.out"; }
# walcount_reconcile_pause_seconds over a phase: "count sum_ms max_ms", max
# being the upper bound of the highest bucket that gained a pause (">B" for
# +Inf, B the largest finite bound; "-" for none); "n/a n/a n/a" when the
# binary does not export the histogram.
pause_stats() {
	awk -v name=walcount_reconcile_pause_seconds '
		FNR == 1 { f++ }
		index($0, name "_bucket{") == 1 { k = $1; sub(/.*le="/, "", k); sub(/".*/, "", k); v[f, k] = $2; if (f == 1) order[++nb] = k }
		index($0, name "_sum ") == 1 { s[f] = $2; has = 1 }
		index($0, name "_count ") == 1 { c[f] = $2 }
		END {
			if (!has) { print "n/a n/a n/a"; exit }
			top = "-"; prevd = 0; fin = 0
			for (i = 1; i <= nb; i++) {
				d = v[2, order[i]] - v[1, order[i]]
				if (d > prevd) top = order[i] == "+Inf" ? ">" fin * 1000 : order[i] * 1000
				if (order[i] != "+Inf") fin = order[i]
				prevd = d
			}
			printf "%d %.1f %s\n", c[2] - c[1], (s[2] - s[1]) * 1000, top
		}' "$tmp/metrics-$1-before.txt" "$tmp/metrics-$1-after.txt"
}
# A phase's figures into the stats file, keys suffixed _NAME.
phase_stats() { # phase_stats NAME
	set -- "$1" $(probe_stats "$1")
	put "probe_n_$1" "${2:-n/a}"
	put "probe_50_$1" "${3:-n/a}"
	put "probe_99_$1" "${4:-n/a}"
	put "probe_max_$1" "${5:-n/a}"
	put "probe_unseen_$1" "${6:-n/a}"
	set -- "$1" $(hist_stats "$tmp/metrics-$1-before.txt" "$tmp/metrics-$1-after.txt" walcount_commit_to_apply_seconds %.0f)
	put "hist_n_$1" "${2:-n/a}"
	put "hist_99_$1" "${4:-n/a}"
	set -- "$1" $(lag_stats "$1")
	put "lag_max_$1" "${3:-n/a}"
	set -- "$1" $(stall_stats "$1")
	put "stall_$1" "${2:-n/a}"
	put "stall_p99_$1" "${3:-n/a}"
	put "stall_moves_$1" "${4:-n/a}"
	set -- "$1" $(pause_stats "$1")
	put "pause_n_$1" "${2:-n/a}"
	put "pause_sum_$1" "${3:-n/a}"
	put "pause_max_$1" "${4:-n/a}"
	put "tps_$1" "$(tps "$1")"
}

# bare_loop BLOCK: the bare recount back to back until SIGTERM, each run's
# ms appended to bare-BLOCK.ms. Its psql runs in the background so that the
# trap can stop it at once; the server finishes the statement in flight
# anyway, so bare_stop terminates its backend by the application name.
bare_loop() {
	local bq
	bq=""
	trap '[ -z "$bq" ] || kill "$bq" 2>/dev/null; exit 0' TERM
	while :; do
		PGAPPNAME=walbench_bare psql -X -q -At -v ON_ERROR_STOP=1 -c '\timing on' -f "$bench/bare_recount.sql" \
			>"$tmp/bare-$1.out" 2>>"$tmp/bare-$1.err" &
		bq=$!
		wait "$bq" || exit 0
		awk '/^Time:/ { s += $2 } END { printf "%.0f\n", s }' "$tmp/bare-$1.out" >>"$tmp/bare-$1.ms"
	done
}
bare_stop() {
	kill "$bare_pid" 2>/dev/null || true
	wait "$bare_pid" 2>/dev/null || true
	bare_pid=""
	q -c "SELECT count(pg_terminate_backend(pid, 10000)) FROM pg_stat_activity WHERE application_name = 'walbench_bare'" >/dev/null
}

# One block: VARIANT at RATE tx/s, from start to stop, then a dry run of
# the same binary. 4 clients as in the first runs of this benchmark, more
# from 1000 tx/s up: with fsync on, each client waits for its commit.
fig2_block() { # fig2_block VARIANT RATE
	local v r b bin clients n sweep_from
	v=$1 r=$2
	b="$v-$r"
	bin=$(bin_of "$v")
	clients=$(awk -v r="$r" 'BEGIN { c = int(r / 250); print (c < 4 ? 4 : (c > 16 ? 16 : c)) }')
	load="pgbench -n -c $clients -j 2 -R $r -D users=$users -D tracks=$tracks -f $bench/reconcile_load.pgbench"
	say "Figure 2: $v ($bin) at $r tx/s ($clients clients), metrics on $murl"
	wc_bin=$bin
	wc_launch "$tmp/run-$b.log"
	wc_await 300 0.1 "no metrics on $murl after 30 s" metrics_up
	catch_up
	say "  warm-up load, $warmup_s s"
	$load -T "$warmup_s" "$db" >"$tmp/pgbench-$b-warmup.out" 2>&1 || { cat "$tmp/pgbench-$b-warmup.out" >&2; die "pgbench failed"; }
	catch_up
	say "  $phase_s s without a sweep"
	phase "$b-nosweep"
	catch_up
	say "  $phase_s s with sweeps back to back (SIGUSR1 every second)"
	sweep_from=$(q -c "SELECT coalesce(max(id), 0) FROM walcount.checkpoints")
	(while :; do kill -USR1 "$wc_pid" 2>/dev/null || exit 0; sleep 1; done) &
	usr1_pid=$!
	phase "$b-sweep"
	kill "$usr1_pid" 2>/dev/null || true
	wait "$usr1_pid" 2>/dev/null || true
	usr1_pid=""
	sleep 1.5
	# The sweep in flight finishes; then walcount stops and a dry-run sweep
	# checks that the aggregates are exact after all this.
	n=0
	until [ "$(q -c "SELECT count(*) FROM walcount.checkpoints WHERE id > $sweep_from AND reconcile_duration_ms IS NULL")" = 0 ]; do
		n=$((n + 1))
		[ "$n" -lt 1200 ] || die "the last sweep did not finish in 120 s"
		sleep 0.1
	done
	set -- $(q -F ' ' -c "SELECT count(*), coalesce(sum((SELECT sum(v::bigint) FROM jsonb_each_text(reconcile_corrected) AS j (k, v))), 0),
		coalesce(percentile_disc(0.5) WITHIN GROUP (ORDER BY reconcile_duration_ms), 0),
		coalesce(string_agg(reconcile_duration_ms::text, ', ' ORDER BY id), '')
		FROM walcount.checkpoints WHERE id > $sweep_from AND reconcile_duration_ms IS NOT NULL")
	put "sweeps_n_$b" "$1"
	put "sweeps_corrected_$b" "$2"
	put "sweeps_med_$b" "$3"
	shift 3
	put "sweeps_list_$b" "$*"
	if [ "$v" = current ]; then
		catch_up
		say "  $phase_s s without a sweep, the bare recount back to back"
		sweep_from=$(q -c "SELECT coalesce(max(id), 0) FROM walcount.checkpoints")
		: >"$tmp/bare-$b.ms"
		bare_loop "$b" &
		bare_pid=$!
		phase "$b-bare"
		bare_stop
		put "bare_n_$b" "$(wc -l <"$tmp/bare-$b.ms")"
		put "bare_med_$b" "$(median <"$tmp/bare-$b.ms")"
		put "bare_sweeps_$b" "$(q -c "SELECT count(*) FROM walcount.checkpoints WHERE id > $sweep_from AND reconcile_duration_ms IS NOT NULL")"
		catch_up
	fi
	wc_stop
	put "run_corrections_$b" "$(grep -c 'reconcile: corrected' "$tmp/run-$b.log" || true)"
	phase_stats "$b-nosweep"
	phase_stats "$b-sweep"
	[ "$v" != current ] || phase_stats "$b-bare"
	say "  dry-run sweep"
	sweep "$bin" --dry-run
	set -- $sweep_r
	put "dry_would_$b" "$2"
	put "dry_line_$b" "$(cat "$tmp/sweep.out")"
	say "  $(cat "$tmp/sweep.out")"
}
for r in $rates; do
	for v in $variants; do
		fig2_block "$v" "$r"
	done
done

# --- results ---------------------------------------------------------------
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
run_s=$(($(date +%s) - started))
# cell VARIANT RATE PHASE KEY: a figure of one phase.
cell() { get "$4_$1-$2-$3"; }
# Per rate, the columns: each variant's no-sweep and sweeps phases, then
# the current variant's bare-recount control phase.
# row TITLE UNIT KEY: one table row over every column.
row() {
	local line r v
	line="| $1 |"
	for r in $rates; do
		for v in $variants; do
			line="$line $(unit "$(cell "$v" "$r" nosweep "$3")" "$2") | $(unit "$(cell "$v" "$r" sweep "$3")" "$2") |"
		done
		line="$line $(unit "$(cell current "$r" bare "$3")" "$2") |"
	done
	echo "$line"
}
unit() { case $1 in n/a | - | "") echo "${1:-n/a}" ;; *) echo "$1$2" ;; esac; }
# srow TITLE CMD [BARE_CMD]: a row whose no-sweep cells are "", sweep
# cells come from CMD VARIANT RATE and bare-recount cells from BARE_CMD
# RATE ("" without it).
srow() {
	local line r v
	line="| $1 |"
	for r in $rates; do
		for v in $variants; do
			line="$line | $($2 "$v" "$r") |"
		done
		line="$line $([ -z "${3:-}" ] || $3 "$r") |"
	done
	echo "$line"
}
p99_ratio() { ratio "$(cell "$1" "$2" sweep probe_99)" "$(cell "$1" "$2" nosweep probe_99)"; }
bare_p99_ratio() { ratio "$(cell current "$1" bare probe_99)" "$(cell current "$1" nosweep probe_99)"; }
bare_stall_added() {
	awk -v a="$(cell current "$1" bare stall)" -v b="$(cell current "$1" nosweep stall)" \
		'BEGIN { if (a == "n/a" || b == "n/a") print "n/a"; else printf "%+d ms", a - b }'
}
bare_cell() { echo "$(get "bare_n_current-$1") bare recounts, median $(get "bare_med_current-$1") ms; $(get "bare_sweeps_current-$1") walcount sweeps"; }
stall_added() {
	awk -v a="$(cell "$1" "$2" sweep stall)" -v b="$(cell "$1" "$2" nosweep stall)" \
		'BEGIN { if (a == "n/a" || b == "n/a") print "n/a"; else printf "%+d ms", a - b }'
}
pause_cell() {
	local n
	n=$(cell "$1" "$2" sweep pause_n)
	case $n in
	n/a) echo "n/a (not exported)" ;;
	*) echo "$(unit "$(cell "$1" "$2" sweep pause_max)" " ms") ($n pauses, $(cell "$1" "$2" sweep pause_sum) ms in all)" ;;
	esac
}
sweeps_cell() { echo "$(get "sweeps_n_$1-$2") sweeps, median $(get "sweeps_med_$1-$2") ms"; }
fig1_cell() { echo "$(get "fig1_ratio_$1") ($(get "fig1_med_$1") ms)"; }
dry_cell() { get "dry_would_$1-$2"; }

# The goals, on the current variant.
goals="$tmp/goals.md"
: >"$goals"
fails=0
goal() { # goal PASS|FAIL TEXT
	[ "$1" = PASS ] || fails=$((fails + 1))
	echo "- **$1** $2" >>"$goals"
}
# verdict A OP B: PASS when the figure A (not n/a) is OP (< or <=) B.
verdict() {
	if awk -v a="$1" -v op="$2" -v b="$3" 'BEGIN { exit !(a ~ /^[0-9.]+$/ && (op == "<" ? a + 0 < b + 0 : a + 0 <= b + 0)) }'; then
		echo PASS
	else
		echo FAIL
	fi
}
for r in $rates; do
	pr=$(p99_ratio current "$r")
	goal "$(verdict "$pr" "<" 2)" "probe p99 at $r tx/s: $(cell current "$r" sweep probe_99) ms during sweeps vs $(cell current "$r" nosweep probe_99) ms without: **${pr}x** (goal < 2x)"
	echo "- (info, no goal) probe p99 at $r tx/s during back-to-back bare recounts (no sweep): $(cell current "$r" bare probe_99) ms = $(bare_p99_ratio "$r")x the no-sweep p99; sweeps / bare-recount loop: $(ratio "$(cell current "$r" sweep probe_99)" "$(cell current "$r" bare probe_99)")x" >>"$goals"
done
pause_max=$(for r in $rates; do cell current "$r" sweep pause_max; done | awk '
	$1 == "n/a" { na = 1 } $1 ~ /^>/ { inf = $1 } $1 ~ /^[0-9]/ && $1 + 0 > m { m = $1 + 0 }
	END { print na ? "n/a" : inf != "" ? inf : m + 0 }')
stall_max=$(for r in $rates; do stall_added current "$r"; done | awk '$1 != "n/a" && $1 + 0 > m { m = $1 + 0 } END { print m + 0 }')
stall_note="the stall sampler's longest stall during sweeps minus without: $(for r in $rates; do printf '%s at %s tx/s; ' "$(stall_added current "$r")" "$r"; done | sed 's/; $//')"
case $pause_max in
n/a) goal "$(verdict "$stall_max" "<=" 100)" "longest stream pause caused by a sweep <= 100 ms: the binary exports no walcount_reconcile_pause_seconds; from the sampler instead, $stall_note" ;;
">"*) goal FAIL "longest stream pause caused by a sweep <= 100 ms: walcount_reconcile_pause_seconds has a pause above its largest bound ($pause_max ms); cross-check: $stall_note" ;;
*) goal "$(verdict "$pause_max" "<=" 100)" "longest stream pause caused by a sweep <= 100 ms: walcount_reconcile_pause_seconds' highest non-empty bucket ends at $pause_max ms (during sweeps at every rate); cross-check: $stall_note" ;;
esac
r1=$(get fig1_ratio_current)
goal "$(verdict "$r1" "<=" 1.3)" "sweep / bare recount (Figure 1, medians): **$r1** (goal <= 1.3)"
dry_bad=0
dry_note=""
for r in $rates; do
	w=$(get "dry_would_current-$r")
	[ "$w" = 0 ] || dry_bad=1
	dry_note="$dry_note, $w after $r tx/s"
done
goal "$([ "$dry_bad" = 0 ] && echo PASS || echo FAIL)" "the dry-run sweeps after the load correct 0 cells: would correct${dry_note#,}"

machine="$(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $(free -h | awk '/^Mem:/ { print $2 }') memory"
if [ "$baseline" = none ]; then
	revisions="current tree only (BENCH_BASELINE=none): \`$(get version_current)\` at $rev_current"
	header="| | $(for r in $rates; do printf '%s tx/s no sweep | %s tx/s sweeps | %s tx/s bare recounts | ' "$r" "$r" "$r"; done)"
else
	revisions="baseline \`$(get version_baseline)\` (BENCH_BASELINE=$baseline, built from git archive), current \`$(get version_current)\` at $rev_current"
	header="| | $(for r in $rates; do printf '%s/s baseline no sweep | %s/s baseline sweeps | %s/s current no sweep | %s/s current sweeps | %s/s current, bare recounts | ' "$r" "$r" "$r" "$r" "$r"; done)"
fi
ncols=$(echo "$header" | awk -F'|' '{ print NF - 2 }')
align="|---|$(i=1; while [ "$i" -lt "$ncols" ]; do printf -- '---:|'; i=$((i + 1)); done)"

section="$tmp/reconcile-section.md"
{
	cat <<EOF
## Reconcile

Run $(date -u '+%Y-%m-%d %H:%M UTC') by \`make bench-reconcile\` (bench/reconcile.sh) in $((run_s / 60)) min $((run_s % 60)) s: $revisions. Machine: $machine; PostgreSQL $pg_version (fsync on, synchronous_commit on, shared_buffers 1GB), other settings default (work_mem 4MB); walcount at its defaults (only dsn, slot, checkpoint.interval 1h and metrics.listen set: keys both revisions know). Load average at the start $load_start, at the end $load_end (1/5/15 min; other processes share the machine's CPUs and skew every figure, which is why the variants alternate).

Data: $n_source source rows ($n_reposts reposts, $n_saves saves, $n_follows follows; $n_inactive of them inactive: un-reposted or demoted older rows), $n_tracks tracks, $n_playlists playlists, $n_comments comments for $users users; every user, track and playlist has an aggregate row; $db_size. \`walcount init\` (current) took $init_ms ms. The first sweep (current) filled the columns init does not load: \`$first_line\`. Both variants stream the same slot and state, one at a time; each starts where the other stopped, with the stream caught up and the aggregates exact (every sweep below finds nothing to correct: the steady state).

### Figure 1: sweep vs bare recount

| | median | runs |
|---|---:|---|
| bare recount: the seed's 3 recompute statements as SELECTs (bench/bare_recount.sql), psql \\timing summed | $bare_med ms | $bare_list |
| of which aggregate_user / aggregate_track / aggregate_playlist | $bare_user / $bare_track / $bare_playlist ms | |
EOF
	for v in $variants; do
		echo "| $v sweep: \`walcount reconcile\`, its reported ms | $(get "fig1_med_$v") ms | $(get "fig1_list_$v") |"
		echo "| $v ratio sweep / bare | **$(get "fig1_ratio_$v")** | |"
	done
	echo
	echo "Each run: the bare recount, then one sweep of each variant (the variants' order swapped every run), $reps runs, the same data. A sweep's ms run from its connection to its last correcting statement (snapshot, recount into temporary tables, waiting for the stream to pass the snapshot's LSN, comparing and correcting). Per variant:"
	echo
	for v in $variants; do
		echo "- $v: \`walcount reconcile\` process $(get "fig1_wall_$v") ms (median, with start-up and slot checks); checked $(get "fig1_checked_$v") rows, corrected $(get "fig1_corrected_$v") in all; longest stream pause in its result line: $(unit "$(get "fig1_pause_$v")" " ms"). Statements per sweep (pg_stat_statements, mean over the runs): the recount into temporary tables (sql/recount.sql) $(get "st_recount_$v") ms, all others $(get "st_other_$v") ms; the costliest others: $(get "st_top_$v")."
	done
	echo
	echo "Both the bare recount and the sweeps checked the same rows (bare: ${bare_rows% *}) and found ${bare_rows#* } (bare) to change."
	cat <<EOF

### Figure 2: streaming during sweeps, side by side

For each rate, each variant: \`walcount run\` streaming while pgbench (-R rate; 4 clients, rate/250 from 1000 tx/s up) upserts in place (60% reposts, 30% saves, 10% follows, hot items; one change per transaction, so tx/s = changes/s), $phase_s s without a sweep, then $phase_s s with sweeps back to back (SIGUSR1 every second), then, for the current variant only, $phase_s s with no sweep while a loop runs the bare recount (Figure 1's bench/bare_recount.sql, psql) back to back, a catch-up between: the control, what recounting every row costs the stream on this machine (CPU, a snapshot held as long) without any sweep. Rates and variants alternate: $(for r in $rates; do for v in $variants; do printf '%s@%s ' "$v" "$r"; done; done | sed 's/ $//').

$header
$align
EOF
	row "load achieved (pgbench tps)" " tx/s" tps
	row "probe p50" " ms" probe_50
	row "probe p99" " ms" probe_99
	row "probe max" " ms" probe_max
	row "probe samples" "" probe_n
	srow "probe p99 sweeps (bare recounts) / no sweep" p99_ratio bare_p99_ratio
	row "histogram p99 (estimate)" " ms" hist_99
	row "walcount_lag_bytes max" " B" lag_max
	row "longest stall (sampler)" " ms" stall
	row "p99 stall (sampler)" " ms" stall_p99
	srow "longest stall, sweeps (bare recounts) minus no sweep" stall_added bare_stall_added
	srow "walcount_reconcile_pause_seconds max" pause_cell
	srow "sweeps in the phase, ms under load" sweeps_cell
	srow "bare recounts in the phase, ms under load" true bare_cell
	srow "sweep / bare, Figure 1 (idle)" fig1_cell
	srow "dry-run sweep after the block: would correct" dry_cell
	cat <<EOF

What each row is. Probe: a procedure (bench/reconcile_probe.sql) toggles its own repost in place, commits and polls the probe track's aggregate_track.repost_count every 2 ms until it moves; from just before COMMIT to the first poll that sees the change, exact but of one row; nearest-rank percentiles. Histogram: deltas of walcount_commit_to_apply_seconds (commit timestamp -> batch committed, every transaction of the load) over the phase, p99 interpolated within the buckets (bounds 1 ms ... 10 s) as Prometheus histogram_quantile does: an estimate, and 10000 ms means beyond the largest bound. walcount_lag_bytes (server WAL position minus applied, all WAL including full-page images) is refreshed every 5 s and sampled every second: a coarse view. Stall (sampler): bench.stall polls max(lsn) of walcount.progress, which walcount writes with every batch it applies, every 2 ms; the longest time it did not move, the same measurement for both variants; without a sweep it is the longest gap between two batches (under a steady load at most batch.max_delay, 200ms, plus one apply), so the sweeps' own share is the difference, itself noisy by that much. walcount_reconcile_pause_seconds: walcount's own histogram of the stream's pauses for a sweep step, where the binary exports it (n/a: it does not), over the sweep phase; its max is the upper bound of the highest bucket that gained a pause. Sweeps: the checkpoints rows' reconcile_duration_ms of the sweeps in the phase. The dry-run sweep ran right after the block, with the block's binary.

EOF
	for r in $rates; do
		for v in $variants; do
			echo "- $v at $r tx/s: sweeps under load $(get "sweeps_list_$v-$r") ms, corrected $(get "sweeps_corrected_$v-$r") cells; $(get "run_corrections_$v-$r") \"reconcile: corrected\" lines in the run's log; dry run: \`$(get "dry_line_$v-$r")\`."
		done
	done
	echo
	echo "### Goals (issue 16), current variant"
	echo
	cat "$goals"
} >"$section"

if [ ! -f "$results" ]; then
	mem=$(free -h | awk '/^Mem:/ { print $2 }')
	cat >"$results" <<EOF
# walcount benchmarks

Machine: $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $mem memory (free -h), PostgreSQL $pg_version, $(uname -sr); first written $(date -u '+%Y-%m-%d').
EOF
fi
# Replace the "## Reconcile" section (up to the next "## " heading) or append it.
awk -v section="$section" '
	function emit(   line) { while ((getline line < section) > 0) print line; close(section); done = 1 }
	/^## / { if (skip) { skip = 0; print "" } if ($0 == "## Reconcile") { emit(); skip = 1; next } }
	!skip { print }
	END { if (!done) { print ""; emit() } }' "$results" >"$tmp/results.md.new"
mv "$tmp/results.md.new" "$results"
cat "$section"
say "done in $((run_s / 60)) min $((run_s % 60)) s; $fails goal(s) not met"
[ "$dry_bad" = 0 ] || die "a dry-run sweep of the current variant after the load would correct cells"
