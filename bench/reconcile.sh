#!/bin/sh
# bench/reconcile.sh (make bench-reconcile): what a reconcile sweep costs.
#
#   Figure 1: a walcount sweep over >= 1M source rows vs the bare recount
#             (the seed's three recompute statements as SELECTs, in
#             bench/bare_recount.sql) on the same data, alternating, median
#             of BENCH_REPS runs each.
#   Figure 2: commit->apply latency of a steady write load (pgbench -R) with
#             `walcount run` streaming, ~30 s without a sweep and ~30 s with
#             sweeps back to back (SIGUSR1): a probe's exact latencies and
#             the walcount_commit_to_apply_seconds histogram's estimates.
#
# Starts its own PostgreSQL 15 + wal2json (scripts/pg-local.sh, bench/tmp/pg,
# a free port or BENCH_PORT, fsync on; walcount's metrics on a free port or
# BENCH_METRICS), stops it on exit, and writes the "## Reconcile"
# section of bench/results.md. Needs bin/walcount (`make`). Sizes and
# durations can be changed from the environment (BENCH_* below).
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
rate=${BENCH_RATE:-200}
walcount="$top/bin/walcount"
wc_bin=$walcount
results="$bench/results.md"

say() { printf '%s\n' "bench: $*" >&2; }
die() { say "$*"; exit 1; }

[ -x "$walcount" ] || die "$walcount is missing: run make first"
sh "$top/scripts/deps.sh" bench
for t in psql pgbench curl awk; do
	command -v "$t" >/dev/null || die "$t not found (scripts/deps.sh installs postgresql-client-15; curl, awk are base tools)"
done

# shellcheck source=bench/lib.sh
. "$bench/lib.sh"
export PGHOST=127.0.0.1 PGPORT="$port" PGUSER=postgres PGDATABASE="$db"
export WALCOUNT_CONFIG="$tmp/walcount.yaml"
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

# Everything started here is stopped on exit, by its pid, then the server.
load_pid="" probe_pid="" sampler_pid="" usr1_pid=""
trap 'bench_cleanup_all "$?"' EXIT
bench_cleanup_all() {
	bg_pids="$usr1_pid $sampler_pid $load_pid $probe_pid"
	bench_cleanup "$1"
}
trap 'exit 130' INT
trap 'exit 143' TERM

# Other work on the machine skews every figure: the load averages at the
# start and the end go into the results.
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
commit=$(cd "$top" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
[ "$commit" = unknown ] || [ -z "$(cd "$top" && git status --porcelain -- src sql 2>/dev/null)" ] || commit="$commit (src/sql modified)"

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

say "walcount init (exact initial load)"
t0=$(date +%s%N)
"$walcount" init >"$tmp/init.log" 2>&1 || { cat "$tmp/init.log" >&2; die "walcount init failed"; }
init_ms=$((($(date +%s%N) - t0) / 1000000))

# init loads the stream's columns only; the first sweep fills track_count,
# playlist/album counts, the dominant genre and comment_count. After it the
# aggregates are exact: the sweeps measured below find nothing to correct,
# the steady state of a healthy deployment.
sweep() { # prints "checked corrected ms" of one `walcount reconcile`
	"$walcount" reconcile "$@" >"$tmp/sweep.out" 2>"$tmp/sweep.err" || { cat "$tmp/sweep.err" >&2; die "walcount reconcile failed"; }
	r=$(sed -n 's/^reconcile: checked \([0-9]*\) rows, [a-z ]* \([0-9]*\).* in \([0-9]*\) ms$/\1 \2 \3/p' "$tmp/sweep.out")
	[ -n "$r" ] || { cat "$tmp/sweep.out" "$tmp/sweep.err" >&2; die "no result line from walcount reconcile"; }
	echo "$r"
}
say "first sweep (fills the columns init does not load)"
set -- $(sweep)
first_checked=$1 first_corrected=$2 first_ms=$3
first_line=$(cat "$tmp/sweep.out")
q -c "VACUUM (ANALYZE)" -c "CHECKPOINT"

# --- Figure 1 --------------------------------------------------------------
say "Figure 1: bare recount vs sweep, $reps runs each, alternating"
: >"$tmp/bare.ms"
: >"$tmp/bare_parts.ms"
: >"$tmp/sweep.ms"
: >"$tmp/sweep_wall.ms"
q -c "SELECT pg_stat_statements_reset()" >/dev/null
i=0
while [ "$i" -lt "$reps" ]; do
	i=$((i + 1))
	q -c '\timing on' -f "$bench/bare_recount.sql" >"$tmp/bare.out"
	bare_ms=$(awk '/^Time:/ { s += $2 } END { printf "%.0f", s }' "$tmp/bare.out")
	awk '/^Time:/ { printf "%s%.0f", n++ ? " " : "", $2 } END { print "" }' "$tmp/bare.out" >>"$tmp/bare_parts.ms"
	bare_rows=$(awk -F'|' '/^aggregate_/ { c += $2; w += $3 } END { print c, w }' "$tmp/bare.out")
	echo "$bare_ms" >>"$tmp/bare.ms"
	t0=$(date +%s%N)
	set -- $(sweep)
	wall=$((($(date +%s%N) - t0) / 1000000))
	sweep_checked=$1 sweep_corrected=$2
	echo "$3" >>"$tmp/sweep.ms"
	echo "$wall" >>"$tmp/sweep_wall.ms"
	say "  run $i: bare $bare_ms ms (checked/would update: $bare_rows), sweep $3 ms (process $wall ms, checked $1, corrected $2)"
done
# Where a sweep's time goes: its statements' execution time per sweep.
set -- $(q -F ' ' -c "SELECT
	round(sum(total_exec_time) FILTER (WHERE query ~ '^(CREATE TEMP|TRUNCATE recount_|INSERT INTO recount_|DROP VIEW active_|ANALYZE recount_)') / $reps),
	round(sum(total_exec_time) FILTER (WHERE query LIKE '%row_number() OVER (ORDER BY user_id)%') / $reps),
	round(sum(total_exec_time) FILTER (WHERE query LIKE '%FROM recount_user r%') / $reps),
	(sum(calls) FILTER (WHERE query LIKE '%FROM recount_user r%'))::bigint / $reps,
	round(sum(total_exec_time) FILTER (WHERE query LIKE '%FROM recount_track r%') / $reps),
	(sum(calls) FILTER (WHERE query LIKE '%FROM recount_track r%'))::bigint / $reps,
	round(sum(total_exec_time) FILTER (WHERE query LIKE '%FROM recount_playlist r%') / $reps),
	(sum(calls) FILTER (WHERE query LIKE '%FROM recount_playlist r%'))::bigint / $reps
	FROM pg_stat_statements")
st_recount=$1 st_plan=$2 st_user=$3 st_user_n=$4 st_track=$5 st_track_n=$6 st_playlist=$7 st_playlist_n=$8
bare_med=$(median <"$tmp/bare.ms")
sweep_med=$(median <"$tmp/sweep.ms")
wall_med=$(median <"$tmp/sweep_wall.ms")
ratio1=$(ratio "$sweep_med" "$bare_med")
ckpt_ms=$(q -c "SELECT string_agg(reconcile_duration_ms::text, ', ' ORDER BY id) FROM (
	SELECT id, reconcile_duration_ms FROM walcount.checkpoints WHERE reconcile_duration_ms IS NOT NULL ORDER BY id DESC LIMIT $reps) c")
bare_user=$(awk '{ print $1 }' "$tmp/bare_parts.ms" | median)
bare_track=$(awk '{ print $2 }' "$tmp/bare_parts.ms" | median)
bare_playlist=$(awk '{ print $3 }' "$tmp/bare_parts.ms" | median)
bare_list=$(paste -sd, "$tmp/bare.ms" | sed 's/,/, /g')
sweep_list=$(paste -sd, "$tmp/sweep.ms" | sed 's/,/, /g')

# --- Figure 2 --------------------------------------------------------------
murl="http://$metrics_addr/metrics"
say "Figure 2: walcount run, metrics on $murl, load $rate tx/s"
metrics_up() { curl -sf "$murl" >/dev/null 2>&1; }
wc_launch "$tmp/run.log"
wc_await 300 0.1 "no metrics on $murl after 30 s" metrics_up
q -f "$bench/reconcile_probe.sql" >/dev/null
load="pgbench -n -c 4 -j 2 -R $rate -D users=$users -D tracks=$tracks -f $bench/reconcile_load.pgbench"
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
catch_up
say "  warm-up load, 5 s"
$load -T 5 "$db" >"$tmp/pgbench-warmup.out" 2>&1 || { cat "$tmp/pgbench-warmup.out" >&2; die "pgbench failed"; }
catch_up

# One phase: load, probe and lag sampling for phase_s seconds; metrics
# snapshots before and after for the histogram's deltas.
phase() { # phase NAME
	curl -sf "$murl" >"$tmp/metrics-$1-before.txt"
	$load -T "$phase_s" "$db" >"$tmp/pgbench-$1.out" 2>&1 &
	load_pid=$!
	psql -X -q -v ON_ERROR_STOP=1 -c "CALL bench.probe('$1', $phase_s, $((users + 1)), $((tracks + 1)))" &
	probe_pid=$!
	(while :; do curl -sf "$murl" | awk '/^walcount_lag_bytes / { print $2 }'; sleep 1; done) >"$tmp/lag-$1.txt" &
	sampler_pid=$!
	wait "$load_pid"
	load_pid=""
	wait "$probe_pid"
	probe_pid=""
	kill "$sampler_pid" 2>/dev/null || true
	wait "$sampler_pid" 2>/dev/null || true
	sampler_pid=""
	curl -sf "$murl" >"$tmp/metrics-$1-after.txt"
}

say "  phase 1: ${phase_s} s without a sweep"
phase nosweep
catch_up

say "  phase 2: ${phase_s} s with sweeps back to back (SIGUSR1 every second)"
sweep_from=$(q -c "SELECT coalesce(max(id), 0) FROM walcount.checkpoints")
q -c "SELECT pg_stat_statements_reset()" >/dev/null
(while :; do kill -USR1 "$wc_pid" 2>/dev/null || exit 0; sleep 1; done) &
usr1_pid=$!
phase sweep
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
sweeps=$(q -F ' ' -c "SELECT count(*), coalesce(sum((SELECT sum(v::bigint) FROM jsonb_each_text(reconcile_corrected) AS j (k, v))), 0),
	coalesce(percentile_disc(0.5) WITHIN GROUP (ORDER BY reconcile_duration_ms), 0),
	coalesce(string_agg(reconcile_duration_ms::text, ', ' ORDER BY id), '')
	FROM walcount.checkpoints WHERE id > $sweep_from AND reconcile_duration_ms IS NOT NULL")
set -- $sweeps
n_sweeps=$1 sweeps_corrected=$2 sweep_load_med=$3
shift 3
sweep_load_list="$*"
# The stream waits while a correcting chunk runs (one per 100 ms tick,
# between batches): the longest of those statements during the phase.
set -- $(q -F ' ' -c "SELECT
	round(max(max_exec_time) FILTER (WHERE query LIKE '%FROM recount_user r%')),
	round(max(max_exec_time) FILTER (WHERE query LIKE '%FROM recount_track r%')),
	round(max(max_exec_time) FILTER (WHERE query LIKE '%FROM recount_playlist r%')),
	round(max(max_exec_time) FILTER (WHERE query LIKE '%row_number() OVER (ORDER BY user_id)%'))
	FROM pg_stat_statements")
chunk_max_user=$1 chunk_max_track=$2 chunk_max_playlist=$3 plan_max=$4
wc_stop
run_corrections=$(grep -c 'reconcile: corrected' "$tmp/run.log" || true)
set -- $(sweep --dry-run)
final_would=$2
final_line=$(cat "$tmp/sweep.out")

# Probe percentiles (nearest rank) and the histogram's estimates.
probe_stats() { # N p50 p99 max unseen
	q -F ' ' -c "SELECT count(*), round(percentile_disc(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1),
		round(percentile_disc(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1), round(max(ms)::numeric, 1),
		count(*) FILTER (WHERE NOT seen) FROM bench.probe_samples WHERE phase = '$1'"
}
# The phase's commit->apply histogram (bench/lib.sh): N p50_ms p99_ms mean_ms ...
phase_hist() {
	hist_stats "$tmp/metrics-$1-before.txt" "$tmp/metrics-$1-after.txt" walcount_commit_to_apply_seconds %.0f
}
lag_stats() { # samples max_bytes median_bytes
	printf '%s %s %s\n' "$(wc -l <"$tmp/lag-$1.txt")" "$(sort -n "$tmp/lag-$1.txt" | tail -1)" "$(median <"$tmp/lag-$1.txt")"
}
tps() { awk '/^tps = / { printf "%.0f", $3; exit }' "$tmp/pgbench-$1.out"; }
set -- $(probe_stats nosweep); pa_n=$1 pa_50=$2 pa_99=$3 pa_max=$4 pa_unseen=$5
set -- $(probe_stats sweep); pb_n=$1 pb_50=$2 pb_99=$3 pb_max=$4 pb_unseen=$5
set -- $(phase_hist nosweep); ha_n=$1 ha_50=$2 ha_99=$3 ha_mean=$4
set -- $(phase_hist sweep); hb_n=$1 hb_50=$2 hb_99=$3 hb_mean=$4
set -- $(lag_stats nosweep); la_max=$2 la_med=$3
set -- $(lag_stats sweep); lb_max=$2 lb_med=$3
tps_a=$(tps nosweep) tps_b=$(tps sweep)

# --- results ---------------------------------------------------------------
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
section="$tmp/reconcile-section.md"
cat >"$section" <<EOF
## Reconcile

Run $(date -u '+%Y-%m-%d %H:%M UTC') by \`make bench-reconcile\` (bench/reconcile.sh), walcount $("$walcount" --version | awk '{ print $2 }') at $commit, PostgreSQL $pg_version (fsync on, synchronous_commit on, shared_buffers 1GB), other settings default (work_mem 4MB), walcount defaults (batch.max_delay 200ms, reconcile.chunk_rows 50000). Load average at the start $load_start, at the end $load_end (1/5/15 min; other processes share the machine's $(nproc) CPUs).

Data: $n_source source rows ($n_reposts reposts, $n_saves saves, $n_follows follows; $n_inactive of them inactive: un-reposted or demoted older rows), $n_tracks tracks, $n_playlists playlists, $n_comments comments for $users users; every user, track and playlist has an aggregate row; $db_size. \`walcount init\` (exact initial load) took $init_ms ms. The first sweep filled the columns init does not load: \`$first_line\`. Every sweep below starts from exact aggregates and finds nothing to correct, the steady state.

### Figure 1: sweep vs bare recount

| | median | runs |
|---|---:|---|
| bare recount: the seed's 3 recompute statements as SELECTs (bench/bare_recount.sql), psql \\timing summed | $bare_med ms | $bare_list |
| of which aggregate_user / aggregate_track / aggregate_playlist | $bare_user / $bare_track / $bare_playlist ms | |
| walcount sweep: \`walcount reconcile\`, its reported ms | $sweep_med ms | $sweep_list |
| ratio sweep / bare | **$ratio1** | |

Alternating runs on the same data, $reps each. The sweep's ms (= the checkpoints rows' reconcile_duration_ms: $ckpt_ms) run from its connection to its last correcting chunk: snapshot, recount into temporary tables, waiting for the stream to pass the snapshot's LSN, then one statement per chunk of 50000 keys per aggregate table, that recount tracks, playlists, comments and the dominant genre and compare; the whole \`walcount reconcile\` process took $wall_med ms (median, including start-up and slot checks). Per sweep (pg_stat_statements, mean over the $reps): the recount into temporary tables $st_recount ms, planning the chunks $st_plan ms; the correcting statements, which also recount tracks, playlists, the dominant genre and comments per key range, $st_user ms for aggregate_user ($st_user_n chunks), $st_track ms for aggregate_track ($st_track_n), $st_playlist ms for aggregate_playlist ($st_playlist_n); the rest, about $(awk -v a="$sweep_med" -v b="$st_recount" -v c="$st_plan" -v d="$st_user" -v e="$st_track" -v f="$st_playlist" 'BEGIN { printf "%.0f", a - b - c - d - e - f }') ms of the median, is connecting, taking the snapshot, waiting for the stream to pass its LSN and the consumer's polling between steps. Both checked the same rows (sweep: $sweep_checked; bare: ${bare_rows% *}) and found $sweep_corrected / ${bare_rows#* } to change.

### Figure 2: streaming latency without and during sweeps

\`walcount run\` streaming while pgbench (4 clients, -R $rate) upserts in place (60% reposts, 30% saves, 10% follows, hot items), $phase_s s without a sweep, then $phase_s s with sweeps back to back (SIGUSR1 every second; $n_sweeps sweeps, median $sweep_load_med ms under load: $sweep_load_list; corrected $sweeps_corrected cells in total). The consumer runs a sweep's correcting statements itself, one per 100 ms tick between batches, and applies nothing while one runs; the longest of them in this phase took $chunk_max_user ms (aggregate_user chunk), $chunk_max_track ms (aggregate_track), $chunk_max_playlist ms (aggregate_playlist), and planning the chunks up to $plan_max ms (pg_stat_statements max_exec_time).

| commit -> apply | no sweep | sweeps back to back | ratio |
|---|---:|---:|---:|
| probe p50 | $pa_50 ms | $pb_50 ms | $(ratio "$pb_50" "$pa_50") |
| probe p99 | $pa_99 ms | $pb_99 ms | $(ratio "$pb_99" "$pa_99") |
| probe max | $pa_max ms | $pb_max ms | $(ratio "$pb_max" "$pa_max") |
| histogram p50 (estimate) | $ha_50 ms | $hb_50 ms | $(ratio "$hb_50" "$ha_50") |
| histogram p99 (estimate) | $ha_99 ms | $hb_99 ms | $(ratio "$hb_99" "$ha_99") |
| histogram mean (exact) | $ha_mean ms | $hb_mean ms | $(ratio "$hb_mean" "$ha_mean") |
| walcount_lag_bytes median | $la_med B | $lb_med B | $(ratio "$lb_med" "$la_med") |
| walcount_lag_bytes max | $la_max B | $lb_max B | $(ratio "$lb_max" "$la_max") |
| load achieved | $tps_a tx/s | $tps_b tx/s | |

Probe: a procedure (bench/reconcile_probe.sql) toggles its own repost in place, commits and polls the probe track's aggregate_track.repost_count every 2 ms until it moves; from just before COMMIT to the first poll that sees the change; $pa_n and $pb_n samples ($pa_unseen / $pb_unseen not seen within 60 s), nearest-rank percentiles. Histogram: deltas of walcount_commit_to_apply_seconds (commit timestamp -> batch committed, every transaction of the load: $ha_n and $hb_n) over the phase, quantiles interpolated within the buckets (bounds 1 ms ... 10 s) as Prometheus histogram_quantile does; the mean is sum/count. walcount_lag_bytes (server WAL position minus applied, so it counts all WAL including full-page images) is refreshed every 5 s and sampled every second; a coarse view. Afterwards: $run_corrections "reconcile: corrected" lines in the run's log, and a dry-run sweep over the final data: \`$final_line\`.
EOF

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
[ "$final_would" = 0 ] || die "the final dry-run sweep would correct $final_would rows"
