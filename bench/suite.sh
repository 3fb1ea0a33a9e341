#!/bin/sh
# bench/suite.sh (make bench, make bench-quick): walcount against the raw
# decode limit and against the seed's triggers.
#
#   1. Throughput vs the decode limit: a backlog of N source changes in a
#      slot; walcount applying it vs pg_recvlogical draining the same WAL
#      with walcount's wal2json options to /dev/null (its slot created at
#      the same position). Also: what wal2json options and a narrower
#      replica identity save in the walsender, and a perf profile of
#      walcount applying the scenario-1 backlog.
#   2. Hot-key writers: pgbench upserts in place, two setups: "hot", 16
#      clients with 90% of the writes on 1% of the tracks, and "viral", 64
#      clients with 90% of the writes on 10 tracks; each runs no triggers
#      (baseline), the seed's delta triggers (bench/seed_triggers.sql) and
#      walcount consuming, with a keep-up verdict for walcount.
#   3. Lag: a steady 2,000 changes/s; commit -> aggregate-visible latency
#      (walcount_commit_to_apply_seconds and a polling probe).
#   4. Memory: walcount's peak RSS applying single transactions of 10k,
#      100k and 1M rows.
#   5. Scaling: scenario 1 at 10k, 100k, 1M (and 10M in the full run).
#   6. Reconcile: bench/reconcile.sh (make bench-reconcile), not rerun here.
#
# BENCH_MODE=quick (make bench-quick, ~8 min) or full (make bench, ~25 min
# on 2 CPUs). Starts its own PostgreSQL 15 + wal2json (scripts/pg-local.sh,
# bench/tmp/suite/pg, a free port or BENCH_PORT, fsync on; walcount's
# metrics on a free port or BENCH_METRICS), stops it on exit, and writes the
# "## Suite: ..." section of bench/results.md for its mode; other sections
# (Reconcile) are kept. Uses a copy of bin/walcount (bench/tmp/suite).
#
# Knobs besides the sizes below (BENCH_*, all optional):
#   BENCH_NO_DEPS=1     do not run scripts/deps.sh (no apt): a bare machine
#                       with PostgreSQL 15 + wal2json at /usr/lib/postgresql/15
#   BENCH_SCENARIOS     the scenarios to run, numbers or names separated by
#                       spaces or commas: 1 backlog, 2 hot, 3 lag, 4 memory,
#                       5 scaling (default: all); "1" alone runs the backlog
#                       rounds at BENCH_S1_SIZE (and BENCH_OPT_SIZE) only
#   BENCH_HOT_SETUPS    scenario 2's setups, "hot viral" (default) or one
#   BENCH_HOT_N, BENCH_HOT_CLIENTS, BENCH_HOT_JOBS
#                       the "hot" setup: hot tracks (1% of the tracks),
#                       pgbench clients (16) and threads (2)
#   BENCH_VIRAL_N, BENCH_VIRAL_CLIENTS, BENCH_VIRAL_JOBS
#                       the "viral" setup: 10 hot tracks, 64 clients, 8
#                       threads (BENCH_HOT_JOBS on fewer than 8 CPUs)
#   BENCH_KEEPUP_SLACK  bytes the lag may rise from the first to the last
#                       third and still count as kept up (1048576)
#   BENCH_WORKERS       apply.workers values, e.g. "1 2 4" (default "1"):
#                       every scenario that runs walcount runs it once per
#                       value in the same run, side by side, and reports each
#                       (the goals table: the first value); apply backend CPU
#                       is the sum over its N connections
#   BENCH_SECTION       the results.md section written ("Suite: make
#                       bench-quick" or "Suite: make bench"), e.g. to keep a
#                       partial run apart from the mode's section
#   BENCH_DECODE_WORKERS a list of decode.workers values ("0 1 2"): scenario 1
#                       also applies its backlog once per value and
#                       repetition (BENCH_DECODE_REPS, 2), on slots of their
#                       own, in alternating order; prints changes/s and CPU
# perf is optional: without it on PATH the profile is skipped.
# `set -- $(...)` and `read a b c` split result lines into named fields on
# purpose, not all of them used; dash has `local`.
# shellcheck disable=SC2046,SC2086,SC2034,SC3043
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
bench="$top/bench"
tmp="$bench/tmp/suite"
pgdir="$tmp/pg"
mode=${BENCH_MODE:-full}
ncpu=$(nproc)
db=walsuite
users=${BENCH_USERS:-100000}
tracks=${BENCH_TRACKS:-1000000}
playlists=${BENCH_PLAYLISTS:-10000}
hot=${BENCH_HOT_N:-$((tracks / 100))}
results="$bench/results.md"
slot=walcount_suite

case "$mode" in
quick)
	sizes=${BENCH_SIZES:-"10000 100000"}          # scenario 5 backlogs
	s1_size=${BENCH_S1_SIZE:-100000}              # scenario 1 and the profile
	opt_size=${BENCH_OPT_SIZE:-100000}            # wal2json option drains
	ri_size=${BENCH_RI_SIZE:-100000}              # replica identity round
	hot_s=${BENCH_HOT_SECONDS:-10}                # scenario 2, measured per setup and repetition
	hot_warm=${BENCH_HOT_WARMUP:-5}               # ... after this warm-up
	hot_reps=${BENCH_HOT_REPS:-3}
	lag_s=${BENCH_LAG_SECONDS:-20}
	mem_sizes=${BENCH_MEM_SIZES:-"10000 100000"}
	prof_s=${BENCH_PROFILE_SECONDS:-10}
	lag_warm=${BENCH_LAG_WARMUP:-5}
	target=make\ bench-quick
	;;
full)
	sizes=${BENCH_SIZES:-"10000 100000 1000000 10000000"}
	s1_size=${BENCH_S1_SIZE:-1000000}
	opt_size=${BENCH_OPT_SIZE:-100000}
	ri_size=${BENCH_RI_SIZE:-100000}
	hot_s=${BENCH_HOT_SECONDS:-20}
	hot_warm=${BENCH_HOT_WARMUP:-10}
	hot_reps=${BENCH_HOT_REPS:-5}
	lag_s=${BENCH_LAG_SECONDS:-60}
	mem_sizes=${BENCH_MEM_SIZES:-"10000 100000 1000000"}
	prof_s=${BENCH_PROFILE_SECONDS:-30}
	lag_warm=${BENCH_LAG_WARMUP:-10}
	target=make\ bench
	;;
*)
	echo "bench: BENCH_MODE must be quick or full" >&2
	exit 2
	;;
esac
opt_reps=${BENCH_OPT_REPS:-3}
lag_rate=${BENCH_LAG_RATE:-2000}  # changes/s, in transactions of 4 (bench/suite_steady.pgbench)
hot_clients=${BENCH_HOT_CLIENTS:-16}
hot_jobs=${BENCH_HOT_JOBS:-2}
viral_n=${BENCH_VIRAL_N:-10}
viral_clients=${BENCH_VIRAL_CLIENTS:-64}
viral_jobs=${BENCH_VIRAL_JOBS:-$([ "$ncpu" -ge 8 ] && echo 8 || echo "$hot_jobs")}
hot_setups=${BENCH_HOT_SETUPS:-hot viral}
keep_slack=${BENCH_KEEPUP_SLACK:-1048576}
workers=$(echo "${BENCH_WORKERS:-1}" | tr ',' ' ')
for x in $workers; do
	case $x in
	'' | *[!0-9]*) echo "bench: BENCH_WORKERS: '$x' is not a number of apply workers (1 to 64)" >&2; exit 2 ;;
	esac
	if [ "$x" -lt 1 ] || [ "$x" -gt 64 ]; then
		echo "bench: BENCH_WORKERS: $x is out of range (1 to 64)" >&2
		exit 2
	fi
done
set -- $workers
[ $# -gt 0 ] || { echo "bench: BENCH_WORKERS is empty" >&2; exit 2; }
w1=$1
shift
wrest="$*"
workers="$w1${wrest:+ $wrest}"
decode_list=${BENCH_DECODE_WORKERS:-}
decode_reps=${BENCH_DECODE_REPS:-2}
# The selected scenarios as " 1 2 ... ", numbers only.
scen=" "
for x in $(echo "${BENCH_SCENARIOS:-1 2 3 4 5}" | tr ',' ' '); do
	case $x in
	1 | backlog) scen="${scen}1 " ;;
	2 | hot) scen="${scen}2 " ;;
	3 | lag) scen="${scen}3 " ;;
	4 | memory) scen="${scen}4 " ;;
	5 | scaling) scen="${scen}5 " ;;
	*) echo "bench: BENCH_SCENARIOS: unknown scenario '$x' (1 backlog, 2 hot, 3 lag, 4 memory, 5 scaling)" >&2; exit 2 ;;
	esac
done
want() { case $scen in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
for x in $hot_setups; do
	case $x in hot | viral) ;; *) echo "bench: BENCH_HOT_SETUPS: unknown setup '$x' (hot, viral)" >&2; exit 2 ;; esac
done
# Scenario 5 alone leaves out scenario 1's extra passes, profile, option
# drains and identity round; scenario 1 alone runs only its own rounds.
# With both, scenario 1's sizes are rounds too (its table reads them).
want 5 || sizes=""
if want 1; then
	sizes=$(printf '%s\n' $sizes "$s1_size" "$opt_size" | sort -nu | tr '\n' ' ')
	sizes=${sizes% }
fi
want 1 || opt_size=-1

say() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "bench: $*" >&2; }
die() { say "$*"; exit 1; }

[ -x "$top/bin/walcount" ] || die "$top/bin/walcount is missing: run make first"
[ -n "${BENCH_NO_DEPS:-}" ] || sh "$top/scripts/deps.sh" bench
PATH=/usr/lib/postgresql/15/bin:$PATH
for t in psql pgbench pg_recvlogical curl awk; do
	command -v "$t" >/dev/null || die "$t not found (scripts/deps.sh installs postgresql-client-15)"
done
have_perf=""
if ! want 1; then
	:
elif command -v perf >/dev/null; then
	have_perf=1
else
	say "perf not found: scenario 1's profile is skipped (apt-get install linux-perf)"
fi

# shellcheck source=bench/lib.sh
. "$bench/lib.sh"
export PGHOST=127.0.0.1 PGPORT="$port" PGUSER=postgres PGDATABASE="$db"
unset PGOPTIONS
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
now_ms() { date +%s%3N; }
hz=$(getconf CLK_TCK)
t_begin=$(now_ms)

# Everything started here is stopped on exit, by its pid, then the server.
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

rate() { awk -v n="$1" -v ms="$2" 'BEGIN { if (ms > 0) printf "%.0f", n * 1000 / ms; else print "n/a" }'; }
secs() { awk -v ms="$1" 'BEGIN { printf "%.2f", ms / 1000 }'; }
# CPU seconds of a live process, and of its reaped children.
cpu_s() { [ -n "$1" ] && awk -v hz="$hz" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0; }
child_s() { awk -v hz="$hz" '{ sub(/^.*\) /, ""); printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }
sub_s() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; }
hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
mb() { awk -v kb="$1" 'BEGIN { printf "%.1f", kb / 1024 }'; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
commit=$(cd "$top" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
[ "$commit" = unknown ] || [ -z "$(cd "$top" && git status --porcelain -- src sql 2>/dev/null)" ] || commit="$commit (src/sql modified)"
load_start=$(load)
load1=- load2=- load3=- load4=-
profiled=""

# --- server, walcount copy, data -------------------------------------------
mkdir -p "$tmp"
wc="$tmp/walcount"
wc_bin=$wc
cp "$top/bin/walcount" "$wc"
wc_version=$("$wc" --version | awk '{ print $2 }')
say "mode $mode; starting PostgreSQL on 127.0.0.1:$port ($pgdir)"
# autovacuum off so no background WAL lands between a backlog and its
# timings; the scenarios VACUUM where it matters.
cluster_start fsync=on synchronous_commit=on shared_buffers=1GB \
	max_wal_size=32GB checkpoint_timeout=60min autovacuum=off max_connections=100 max_replication_slots=40
pm_pid=$(head -1 "$pgdir/data/postmaster.pid")
q -d postgres -c "CREATE DATABASE $db"
q -f "$top/sql/schema.sql"
pg_version=$(q -c "SHOW server_version")
w2j_version=$(dpkg-query -W -f='${Version}' postgresql-15-wal2json 2>/dev/null || echo unknown)

say "data: $users users, $tracks tracks, $playlists playlists"
t0=$(now_ms)
q -v users="$users" -v tracks="$tracks" -v playlists="$playlists" -v k_reposts=3 -v k_saves=2 -v k_follows=1 \
	-f "$bench/suite_data.sql" >/dev/null
q -f "$bench/suite_gen.sql" 2>/dev/null
q -f "$bench/reconcile_probe.sql" 2>/dev/null
q -c "VACUUM ANALYZE"
data_rows=$(q -c "SELECT (SELECT count(*) FROM reposts) + (SELECT count(*) FROM saves) + (SELECT count(*) FROM follows)")
data_ms=$(($(now_ms) - t0))

conf="$tmp/walcount.yaml"
wc_conf() { # file slot listen [apply.workers] [decode.workers]
	cat >"$1" <<EOF
database:
  dsn: "host=127.0.0.1 port=$port dbname=$db user=postgres"
slot:
  name: $2
# Sweeps are measured by bench/reconcile.sh; none may start mid-scenario.
checkpoint:
  interval: 1h
metrics:
  listen: "$3"
EOF
	[ "${4:-1}" -eq 1 ] || printf 'apply:\n  workers: %s\n' "$4" >>"$1"
	[ -z "${5:-}" ] || printf 'decode:\n  workers: %s\n' "$5" >>"$1"
}
wc_conf "$conf" "$slot" "$metrics_addr" "$w1"
# The main slot's config per BENCH_WORKERS value.
wconf() { echo "$tmp/walcount-w$1.yaml"; }
for x in $workers; do
	wc_conf "$(wconf "$x")" "$slot" "$metrics_addr" "$x"
done
# A walcount configuration's label in the tables: "walcount" alone when
# BENCH_WORKERS is the default.
wlabel() { if [ "$workers" = 1 ]; then echo "walcount"; else echo "walcount, apply.workers $1"; fi; }
murl="http://$metrics_addr/metrics"

say "walcount init"
t0=$(now_ms)
"$wc" init --config "$conf" >"$tmp/init.log" 2>&1 || { cat "$tmp/init.log" >&2; die "walcount init failed"; }
init_ms=$(($(now_ms) - t0))

# The options walcount gives START_REPLICATION (src/stream.c), as -o
# name=value for pg_recvlogical.
wc_opts=$(grep -o '\\"[a-z-]*\\" '"'"'[^'"'"']*'"'"'' "$top/src/stream.c" | sed 's/\\"\([a-z-]*\)\\" '"'"'\([^'"'"']*\)'"'"'/-o \1=\2/' | tr '\n' ' ')
case "$wc_opts" in
*format-version=2*include-types=0*add-tables=*) ;;
*) die "could not read walcount's wal2json options from src/stream.c (got: $wc_opts)" ;;
esac
wc_opts=${wc_opts% }
opts_types=$(echo "$wc_opts" | sed 's/include-types=0/include-types=1/')
opts_oids="$opts_types -o include-type-oids=1"

# --- walcount process helpers ----------------------------------------------
wc_start() { # log [config]
	wc_launch "$1" --config "${2:-$conf}"
	wc_await 1200 0.05 "walcount did not start streaming in 60 s" grep -q "stream: started slot" "$1"
}
# The end marker: a toggle of its own repost; prints the count walcount
# makes visible once it has applied everything before and including it.
mtrack=$((tracks + 2))
mark() {
	q -c "UPDATE reposts SET is_delete = NOT is_delete, txhash = md5(clock_timestamp()::text)
		WHERE user_id = $((users + 1)) AND repost_item_id = $mtrack AND repost_type = 'track' AND is_current
		RETURNING CASE WHEN is_delete THEN 0 ELSE 1 END"
}
wait_mark() { # value timeout_s: polls every 5 ms in one session
	q -c "DO \$\$ DECLARE d timestamptz := clock_timestamp() + interval '$2 s'; BEGIN
		LOOP
			EXIT WHEN (SELECT repost_count FROM aggregate_track WHERE track_id = $mtrack) = $1;
			IF clock_timestamp() > d THEN RAISE EXCEPTION 'marker not applied within $2 s'; END IF;
			PERFORM pg_sleep(0.005);
		END LOOP; END \$\$" || die "walcount did not apply the marker (see $tmp/*.log)"
}
# Lets walcount apply everything in its slot (also the WAL of its own
# earlier batches), then stops it: its slot is then at the WAL end.
wc_sync() {
	local sm
	sm=$(mark)
	wc_start "$tmp/sync.log"
	wait_mark "$sm" 3600
	wc_stop
}
# When walcount has applied every source change, the WAL after its progress
# (its own batches, VACUUM, CHECKPOINT, triggers' aggregate writes) moves no
# count: skip it, slot and progress together, so the next run starts where
# a fresh slot would. A CHECKPOINT logs the running transactions, and the
# second advance moves restart_lsn up to it: a stopped slot's restart_lsn
# otherwise lags, and every start re-decodes from there (up to GBs here).
wc_settle() {
	q -c "CHECKPOINT" -c "SELECT pg_replication_slot_advance('$slot', pg_current_wal_lsn())" \
		-c "SELECT pg_replication_slot_advance('$slot', pg_current_wal_lsn())" >/dev/null
	q -c "UPDATE walcount.progress SET lsn = s.confirmed_flush_lsn, partial_xid = NULL, partial_changes = 0
		FROM pg_replication_slots s WHERE s.slot_name = '$slot' AND progress.slot_name = s.slot_name"
}
# The extra passes of scenario 1 count the same backlog again from other
# slots; walcount refuses a slot that does not own the counts (issue 12),
# so ownership moves to the pass's slot for its run and back after.
own() { # slot
	q -c "UPDATE walcount.owner SET slot_name = '$1', since = now()" >/dev/null
}
metric_sum() { # name file: sum over all label sets
	awk -v n="$1" 'index($0, n) == 1 && (substr($0, length(n) + 1, 1) == "{" || substr($0, length(n) + 1, 1) == " ") { s += $NF } END { printf "%.0f", s }' "$2"
}
sums() { q -F ' ' -c "SELECT col, agg, src FROM bench.sums() ORDER BY col"; }
# Exactness over a stretch: every column's aggregate sum moved by as much as
# its active source rows did. Prints "exact" or the columns that did not.
sums_check() { # before after
	awk 'NR == FNR { a[$1] = $2; s[$1] = $3; next }
		{ da = $2 - a[$1]; ds = $3 - s[$1]; if (da != ds) { bad = bad sprintf(" %s moved %d, source %d;", $1, da, ds) } n++ }
		END { if (bad == "") print "exact (" n " columns)"; else print "NOT EXACT:" bad }' "$1" "$2"
}
# Sets ws_pid (walsender) of walcount on slot $1, be_pid (its apply
# backends: one per apply.workers connection, space-separated) and be_n.
# One walcount runs at a time here.
wc_pids() {
	ws_pid=$(q -c "SELECT active_pid FROM pg_replication_slots WHERE slot_name = '$1'")
	be_pid=$(q -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'walcount' AND backend_type = 'client backend'
		AND pid <> pg_backend_pid() ORDER BY backend_start" | tr '\n' ' ')
	be_pid=${be_pid% }
	be_n=$(echo "$be_pid" | wc -w)
}
# CPU seconds of live processes, summed.
cpu_sum() {
	local p t=0
	for p in "$@"; do
		t=$(awk -v a="$t" -v b="$(cpu_s "$p")" 'BEGIN { printf "%.2f", a + b }')
	done
	echo "$t"
}

# Starts sampling walcount's lag (WAL end - applied progress; with
# apply.workers, the earliest partition's row) every second, after DELAY
# seconds.
lag_sampler() { # file [delay]
	(sleep "${2:-0}"
	 while :; do
		q -c "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), min(lsn))::bigint FROM walcount.progress WHERE slot_name = '$slot'" || true
		sleep 1
	done) >"$1" 2>/dev/null &
	lag_pid=$!
	bg_pids="$bg_pids $lag_pid"
}
lag_stop() { kill "$lag_pid" 2>/dev/null || true; wait "$lag_pid" 2>/dev/null || true; }
# lag samples: n first-third-median last-third-median max
lag_stats() {
	local ln lt
	ln=$(grep -c . "$1" || true)
	lt=$((ln / 3))
	if [ "$lt" -lt 1 ]; then
		echo "$ln n/a n/a n/a"
		return 0
	fi
	echo "$ln $(grep . "$1" | head -n "$lt" | median) $(grep . "$1" | tail -n "$lt" | median) $(sort -n "$1" | tail -1)"
}

# --- scenario 3: lag at a steady rate ---------------------------------------
# lag_run W: one lag run with apply.workers W; its figures go to lag-w.txt
# (see the results below) and, for the first BENCH_WORKERS value, into the
# l_* variables of the section.
: >"$tmp/lag-w.txt"
lag_run() {
	local w=$1 f ph
	f="$tmp/lag-w$1" ph=lag
	[ "$w" = "$w1" ] || ph="lag-w$w"
	say "scenario 3: steady $lag_rate changes/s for $lag_s s with $(wlabel "$w") running (default batch settings)"
	wc_settle
	wc_start "$f.log" "$(wconf "$w")"
	m=$(mark)
	wait_mark "$m" 600
	pgbench -n -c 16 -j 2 -R "$((lag_rate / 4))" -T "$((lag_s + lag_warm))" -D users="$users" -D tracks="$tracks" \
		-f "$bench/suite_steady.pgbench" "$db" >"$f-pgbench.out" 2>&1 &
	lag_load_pid=$!
	bg_pids="$bg_pids $lag_load_pid"
	sleep "$lag_warm"
	curl -sf "$murl" >"$f-metrics-before.txt" || die "no metrics on $murl"
	lag_sampler "$f-bytes.txt"
	psql -X -q -v ON_ERROR_STOP=1 -c "CALL bench.probe('$ph', $lag_s, $((users + 1)), $((tracks + 1)))" >/dev/null &
	lag_probe_pid=$!
	bg_pids="$bg_pids $lag_probe_pid"
	wait "$lag_load_pid" || { cat "$f-pgbench.out" >&2; die "pgbench failed"; }
	wait "$lag_probe_pid" || die "probe failed"
	t0=$(now_ms)
	m=$(mark)
	wait_mark "$m" 600
	l_catchup_ms=$(($(now_ms) - t0))
	lag_stop
	curl -sf "$murl" >"$f-metrics-after.txt"
	wc_stop
	wc_settle
	set -- $(hist_stats "$f-metrics-before.txt" "$f-metrics-after.txt")
	l_n=$1 l_p50=$2 l_p99=$3 l_mean=$4 l_le100=$5 l_top=$6
	set -- $(hist_stats "$f-metrics-before.txt" "$f-metrics-after.txt" walcount_batch_duration_seconds)
	lb_n=$1 lb_p50=$2 lb_p99=$3 lb_mean=$4
	set -- $(q -F ' ' -c "SELECT count(*), round(percentile_disc(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1),
		round(percentile_disc(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1), round(max(ms)::numeric, 1),
		count(*) FILTER (WHERE NOT seen) FROM bench.probe_samples WHERE phase = '$ph'")
	lp_n=$1 lp_p50=$2 lp_p99=$3 lp_max=$4 lp_unseen=$5
	l_tps=$(awk '/^tps = / { printf "%.0f", $3; exit }' "$f-pgbench.out")
	l_sched=$(sed -n 's/^rate limit schedule lag: //p' "$f-pgbench.out" | head -1)
	set -- $(lag_stats "$f-bytes.txt")
	ll_n=$1 ll_first=$2 ll_last=$3 ll_max=$4
	echo "$w $l_tps $l_n $l_p50 $l_p99 $l_le100 $lb_p50 $lb_p99 $lp_n $lp_p50 $lp_p99 $lp_max $ll_first $ll_last $ll_max $l_catchup_ms" >>"$tmp/lag-w.txt"
	say "  $(wlabel "$w"): histogram p50 $l_p50 ms, p99 $l_p99 ms, <=100 ms: $l_le100%; probe p50 $lp_p50 p99 $lp_p99 max $lp_max ms; load $l_tps tx/s"
}
if want 3; then
	load3=$(load)
	# The first value last: the section's l_* figures are its run's.
	for x in $wrest $w1; do
		lag_run "$x"
	done
	l_goal=missed
	awk -v p="$l_le100" 'BEGIN { exit !(p != "n/a" && p >= 99) }' && l_goal=met
fi

# --- scenario 2: hot-key writers --------------------------------------------
hot_prep() {
	q -c "VACUUM ANALYZE reposts, saves, follows, aggregate_user, aggregate_track, aggregate_playlist" -c "CHECKPOINT"
}
# The keep-up verdict of setup $1 with apply.workers $2 over its runs:
# keep (yes: every run kept up; n/a: no run was judged; no) and nk (runs
# that kept up).
keep_verdict() {
	nk=$(awk -v s="$1" -v w="$2" '$1 == s && $17 == w && $16 == "yes"' "$tmp/hot-wc-runs.txt" | wc -l)
	keep=no
	if [ "$nk" -eq "$hot_reps" ]; then
		keep=yes
	elif ! awk -v s="$1" -v w="$2" '$1 == s && $17 == w && $16 == "no"' "$tmp/hot-wc-runs.txt" | grep -q .; then
		keep=n/a
	fi
}
wal_snap() { q -F ' ' -c "SELECT wal_records, wal_fpi, wal_bytes, wal_sync FROM pg_stat_wal"; }
# One writer run of the current setup ($s2_clients clients, $s2_jobs
# threads, 90% of the writes on $s2_hot tracks): $hot_warm s of warm-up
# (right after the CHECKPOINT every first change of a page writes a
# full-page image; a short run would be mostly that), then $hot_s s
# measured: tx/s and latency from pgbench's per-second progress lines, WAL
# and wait events over the same window.
hot_run() { # name
	local wp
	(sleep "$hot_warm"
	 wal_snap >"$tmp/hot-$1.wal0"
	 psql -X -q -v ON_ERROR_STOP=1 -c "CALL bench.waits('$1', $hot_s - 1)") >/dev/null 2>&1 &
	wp=$!
	bg_pids="$bg_pids $wp"
	pgbench -n -P 1 -c "$s2_clients" -j "$s2_jobs" -T "$((hot_warm + hot_s))" -D users="$users" -D tracks="$tracks" -D hot="$s2_hot" \
		-f "$bench/suite_hot.pgbench" "$db" >"$tmp/hot-$1.out" 2>&1 || { cat "$tmp/hot-$1.out" >&2; die "pgbench failed"; }
	awk -v w="$hot_warm" '/^progress: / && $2 + 0 > w { s += $4; n++ } END { printf "%.0f", n ? s / n : 0 }' "$tmp/hot-$1.out" >"$tmp/hot-$1.tps"
	awk -v w="$hot_warm" '/^progress: / && $2 + 0 > w { s += $7; n++ } END { printf "%.2f", n ? s / n : 0 }' "$tmp/hot-$1.out" >"$tmp/hot-$1.lat"
	wait "$wp" || true
}
# WAL written per writer transaction and WAL flushes per second over a run
# (the after-snapshot once the run's backends, walcount's too, are gone).
hot_wal() { # name
	local k=0
	while [ "$(q -c "SELECT count(*) FROM pg_stat_activity WHERE application_name IN ('pgbench', 'walcount')")" != 0 ]; do
		k=$((k + 1))
		[ "$k" -lt 250 ] || break
		sleep 0.02
	done
	wal_snap >"$tmp/hot-$1.wal1"
	set -- "$1" $(cat "$tmp/hot-$1.wal0") $(cat "$tmp/hot-$1.wal1") "$(cat "$tmp/hot-$1.tps")"
	awk -v n="$1" -v r0="$2" -v f0="$3" -v b0="$4" -v s0="$5" -v r1="$6" -v f1="$7" -v b1="$8" -v s1="$9" -v tps="${10}" -v secs="$hot_s" \
		'BEGIN { tx = tps * secs; printf "%s %.0f %.2f %.0f %.0f\n", n, (b1 - b0) / tx, (f1 - f0) / tx, (s1 - s0) / secs, (b1 - b0) / secs }' \
		>>"$tmp/hot-wal.txt"
}
# The run name of apply.workers W in repetition R of the current setup
# ("hot-wc1" for the first BENCH_WORKERS value, as without it; "hot-w4-1")
# and the prefix of those names; the file listing W's tx/s per repetition.
wpfx() { if [ "$1" = "$w1" ]; then echo "$s2-wc"; else echo "$s2-w$1-"; fi; }
wlist() { if [ "$1" = "$w1" ]; then echo "$tmp/hot-$s2-wc.list"; else echo "$tmp/hot-$s2-w$1.list"; fi; }
# BENCH_WORKERS rotated by repetition R (1 2 4, 2 4 1, 4 1 2, ...), so no
# value always runs first after the baseline's catch-up.
wrot() {
	local k=$((($1 - 1) % $(echo "$workers" | wc -w)))
	set -- $workers
	while [ "$k" -gt 0 ]; do
		set -- "$@" "$1"
		shift
		k=$((k - 1))
	done
	echo "$*"
}
# hot_wc W R: the writers with walcount (apply.workers W) consuming;
# appends the run to hot-wc-runs.txt (see hot_setup) and ends settled.
hot_wc() {
	local w=$1 r=$2 n m catchup ex hn hp50 hp99 hmean hle100 lfirst llast lmax nb nc keep
	n="$(wpfx "$w")$r"
	say "  $s2 repetition $r: $(wlabel "$w") consuming"
	wc_start "$tmp/hot-$n.log" "$(wconf "$w")"
	sums >"$tmp/hot-$n-sums0.txt"
	hot_prep
	m=$(mark)
	wait_mark "$m" 600
	curl -sf "$murl" >"$tmp/hot-$n-metrics0.txt"
	# Lag over the measured part only: from the end of the warm-up
	# until the writers stop (the catch-up is timed on its own).
	lag_sampler "$tmp/hot-$n-lag.txt" "$hot_warm"
	wc_pids "$slot"
	c_wc=$(cpu_s "$wc_pid") c_ws=$(cpu_s "$ws_pid") c_be=$(cpu_sum $be_pid)
	hot_run "$n"
	lag_stop
	c_wc=$(sub_s "$(cpu_s "$wc_pid")" "$c_wc") c_ws=$(sub_s "$(cpu_s "$ws_pid")" "$c_ws") c_be=$(sub_s "$(cpu_sum $be_pid)" "$c_be")
	t0=$(now_ms)
	m=$(mark)
	wait_mark "$m" 3600
	catchup=$(($(now_ms) - t0))
	curl -sf "$murl" >"$tmp/hot-$n-metrics1.txt"
	wc_stop
	hot_wal "$n"
	sums >"$tmp/hot-$n-sums1.txt"
	ex=$(sums_check "$tmp/hot-$n-sums0.txt" "$tmp/hot-$n-sums1.txt")
	case $ex in exact*) ;; *) wc_ex="$wc_ex $(wlabel "$w") run $r: $ex" ;; esac
	cat "$tmp/hot-$n.tps" >>"$(wlist "$w")"
	echo >>"$(wlist "$w")"
	set -- $(hist_stats "$tmp/hot-$n-metrics0.txt" "$tmp/hot-$n-metrics1.txt")
	hn=$1 hp50=$2 hp99=$3 hmean=$4 hle100=$5
	set -- $(lag_stats "$tmp/hot-$n-lag.txt")
	lfirst=$2 llast=$3 lmax=$4
	nb=$(($(metric_sum walcount_batches_total "$tmp/hot-$n-metrics1.txt") - $(metric_sum walcount_batches_total "$tmp/hot-$n-metrics0.txt")))
	nc=$(($(metric_sum walcount_changes_total "$tmp/hot-$n-metrics1.txt") - $(metric_sum walcount_changes_total "$tmp/hot-$n-metrics0.txt")))
	# Keeping up (issue 14): the lag's median over the last third of
	# the measured run is not above the first third's, and after the
	# writers stop the end marker is visible in < 1 s. At a steady
	# state the samples jitter by about a batch in flight, so a rise
	# of up to $keep_slack bytes counts as flat. n/a: fewer than 3
	# lag samples (a measured part under 3 s).
	keep=no
	if [ "$lfirst" = n/a ]; then
		keep=n/a
	elif awk -v a="$lfirst" -v b="$llast" -v c="$catchup" -v s="$keep_slack" 'BEGIN { exit !(b + 0 <= a + s && c < 1000) }'; then
		keep=yes
	fi
	echo "$s2 $r $(cat "$tmp/hot-$n.tps") $nc $nb $c_wc $c_ws $c_be $lfirst $llast $lmax $catchup $hp50 $hp99 $hle100 $keep $w $be_n" >>"$tmp/hot-wc-runs.txt"
	say "  $s2 repetition $r: $(wlabel "$w") keeps up: $keep (lag first -> last third $lfirst -> $llast B, catch-up $catchup ms)"
	wc_settle
}
# hot_setup NAME CLIENTS JOBS HOT: $hot_reps repetitions of (no triggers,
# walcount consuming with each BENCH_WORKERS value, seed triggers),
# alternating. Appends a line per walcount run to hot-wc-runs.txt (name
# repetition tx/s changes batches CPU-walcount CPU-walsender CPU-backends
# lag-first lag-last lag-max catch-up-ms p50 p99 <=100ms keeps-up workers
# backends), one for the setup to hot-setups.txt: name clients jobs hot base
# trg wc wc/base wc/trg trg/base keeps-up runs-kept max-catch-up-ms (wc: the
# first BENCH_WORKERS value), and one per workers value to hot-workers.txt:
# name workers tx/s wc/base wc/first-value keeps-up runs-kept
# max-catch-up-ms mean-CPU-walcount walsender backends backends; the counts'
# exactness in hot-NAME-exact.txt.
hot_setup() {
	local r ex wc_ex trg_ex keep b w t nk wx
	s2=$1 s2_clients=$2 s2_jobs=$3 s2_hot=$4
	say "scenario 2, setup $s2: $s2_clients clients (-j $s2_jobs), 90% of the writes on $s2_hot tracks, $hot_reps x ($hot_warm + $hot_s) s per configuration, alternating"
	: >"$tmp/hot-$s2-base.list"
	: >"$tmp/hot-$s2-trg.list"
	for wx in $workers; do
		: >"$(wlist "$wx")"
	done
	wc_ex="" trg_ex=""
	r=0
	while [ "$r" -lt "$hot_reps" ]; do
		r=$((r + 1))
		say "  $s2 repetition $r: no triggers (walcount stopped)"
		hot_prep
		hot_run "$s2-base$r"
		hot_wal "$s2-base$r"
		cat "$tmp/hot-$s2-base$r.tps" >>"$tmp/hot-$s2-base.list"
		echo >>"$tmp/hot-$s2-base.list"
		# walcount applies what the baseline wrote (nobody counted it).
		wc_sync
		wc_settle
		for wx in $(wrot "$r"); do
			hot_wc "$wx" "$r"
		done
		say "  $s2 repetition $r: seed triggers (walcount stopped)"
		q -f "$bench/seed_triggers.sql" >/dev/null
		sums >"$tmp/hot-$s2-trg$r-sums0.txt"
		hot_prep
		hot_run "$s2-trg$r"
		hot_wal "$s2-trg$r"
		sums >"$tmp/hot-$s2-trg$r-sums1.txt"
		ex=$(sums_check "$tmp/hot-$s2-trg$r-sums0.txt" "$tmp/hot-$s2-trg$r-sums1.txt")
		case $ex in exact*) ;; *) trg_ex="$trg_ex run $r: $ex" ;; esac
		q -c "DROP TRIGGER bench_on_repost ON reposts" -c "DROP TRIGGER bench_on_save ON saves" -c "DROP TRIGGER bench_on_follow ON follows"
		cat "$tmp/hot-$s2-trg$r.tps" >>"$tmp/hot-$s2-trg.list"
		echo >>"$tmp/hot-$s2-trg.list"
		# The triggers counted that run: walcount skips it (its slot and
		# progress move past it), so the aggregates stay exact.
		wc_settle
		say "  $s2 repetition $r: tx/s no triggers $(cat "$tmp/hot-$s2-base$r.tps"), $(wlabel "$w1") $(cat "$tmp/hot-$s2-wc$r.tps"), triggers $(cat "$tmp/hot-$s2-trg$r.tps")"
	done
	echo "walcount ${wc_ex:-"exact (every run)"}; triggers ${trg_ex:-"exact (every run)"}" >"$tmp/hot-$s2-exact.txt"
	b=$(median <"$tmp/hot-$s2-base.list") w=$(median <"$tmp/hot-$s2-wc.list") t=$(median <"$tmp/hot-$s2-trg.list")
	for wx in $workers; do
		t=$(median <"$(wlist "$wx")")
		keep_verdict "$s2" "$wx"
		echo "$s2 $wx $t $(ratio "$t" "$b") $(ratio "$t" "$w") $keep $nk $(awk -v s="$s2" -v w="$wx" '$1 == s && $17 == w {
			if ($12 > m) m = $12; a += $6; c += $7; d += $8; n++; k = $18 }
			END { printf "%d %.2f %.2f %.2f %d", m, a / n, c / n, d / n, k }' "$tmp/hot-wc-runs.txt")" >>"$tmp/hot-workers.txt"
	done
	t=$(median <"$tmp/hot-$s2-trg.list")
	keep_verdict "$s2" "$w1"
	echo "$s2 $s2_clients $s2_jobs $s2_hot $b $t $w $(ratio "$w" "$b") $(ratio "$w" "$t") $(ratio "$t" "$b") $keep $nk \
$(awk -v s="$s2" -v w="$w1" '$1 == s && $17 == w && $12 > m { m = $12 } END { print m + 0 }' "$tmp/hot-wc-runs.txt")" >>"$tmp/hot-setups.txt"
	say "  $s2 median tx/s: no triggers $b, walcount $w ($(ratio "$w" "$b") x), triggers $t (walcount/triggers $(ratio "$w" "$t") x); walcount keeps up: $keep ($nk of $hot_reps runs)"
}
if want 2; then
	load2=$(load)
	: >"$tmp/hot-wc-runs.txt"
	: >"$tmp/hot-wal.txt"
	: >"$tmp/hot-setups.txt"
	: >"$tmp/hot-workers.txt"
	for x in $hot_setups; do
		case $x in
		hot) hot_setup hot "$hot_clients" "$hot_jobs" "$hot" ;;
		viral) hot_setup viral "$viral_clients" "$viral_jobs" "$viral_n" ;;
		esac
	done
fi

# --- scenario 4: memory ----------------------------------------------------
if want 4; then
	say "scenario 4: peak RSS applying single transactions of $mem_sizes rows"
	load4=$(load)
	: >"$tmp/mem.txt"
	: >"$tmp/mem-w.txt"
	salt=1
	# Each size once per BENCH_WORKERS value; mem.txt: the first value's.
	for n in $mem_sizes; do
		for x in $workers; do
			wc_settle
			wc_start "$tmp/mem-$n-w$x.log" "$(wconf "$x")"
			sleep 0.5
			idle_kb=$(hwm_kb "$wc_pid")
			t0=$(now_ms)
			q -c "CALL bench.big_txn($n, $users, $tracks, $salt)"
			salt=$((salt + 1))
			gen_ms=$(($(now_ms) - t0))
			m=$(mark)
			t0=$(now_ms)
			wait_mark "$m" 3600
			apply_ms=$(($(now_ms) - t0))
			peak_kb=$(hwm_kb "$wc_pid")
			rss_kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$wc_pid/status")
			curl -sf "$murl" >"$tmp/mem-$n-w$x-metrics.txt"
			wc_stop
			batches=$(metric_sum walcount_batches_total "$tmp/mem-$n-w$x-metrics.txt")
			[ "$x" != "$w1" ] || echo "$n $idle_kb $peak_kb $rss_kb $gen_ms $apply_ms $batches" >>"$tmp/mem.txt"
			echo "$n $x $idle_kb $peak_kb $rss_kb $gen_ms $apply_ms $batches" >>"$tmp/mem-w.txt"
			say "  $n rows, $(wlabel "$x"): peak RSS $(mb "$peak_kb") MB (idle $(mb "$idle_kb") MB), applied in $apply_ms ms, $batches batches"
		done
	done
	mem_first=$(awk 'NR == 1 { print $3 }' "$tmp/mem.txt")
	mem_max=$(awk '$3 > m { m = $3 } END { print m }' "$tmp/mem.txt")
	mem_goal=missed
	awk -v m="$mem_max" -v f="$mem_first" 'BEGIN { exit !(m < 65536 && m <= f * 1.5) }' && mem_goal=met
fi

# --- scenarios 1 and 5: backlog rounds ---------------------------------------
# gen N: about N changes from two sessions, synchronous_commit off.
gen() {
	local base half g1 g2
	base=$(q -c "SELECT next FROM bench.gen_state")
	half=$(($1 / 2))
	PGOPTIONS="-c synchronous_commit=off" q -c "CALL bench.gen($half, $base, 2, $users, $tracks, $playlists, 3, 2, 1)" &
	g1=$!
	PGOPTIONS="-c synchronous_commit=off" q -c "CALL bench.gen($half, $((base + 5)), 2, $users, $tracks, $playlists, 3, 2, 1)" &
	g2=$!
	bg_pids="$bg_pids $g1 $g2"
	wait "$g1" || die "generator failed"
	wait "$g2" || die "generator failed"
	q -c "UPDATE bench.gen_state SET next = next + $((10 * (half / 10 + 2)))"
}
# drain SLOT OPTS...: pg_recvlogical from SLOT to $end_lsn into /dev/null.
# Sets d_ms (wall), d_ws (its walsender's CPU s, from the postmaster's
# reaped-children time), d_cl (pg_recvlogical's own CPU s).
drain() {
	local ds dc0 dt0 k=0
	ds=$1
	shift
	dc0=$(child_s "$pm_pid")
	dt0=$(now_ms)
	# shellcheck disable=SC2068
	/usr/bin/time -f "%U %S" -o "$tmp/recv.time" pg_recvlogical -d "$db" -S "$ds" --start --endpos="$end_lsn" --no-loop \
		-f /dev/null $@ || die "pg_recvlogical failed"
	d_ms=$(($(now_ms) - dt0))
	while [ -n "$(q -c "SELECT 1 FROM pg_stat_replication WHERE application_name = 'pg_recvlogical'")" ]; do
		k=$((k + 1))
		[ "$k" -lt 500 ] || die "pg_recvlogical's walsender did not exit"
		sleep 0.02
	done
	d_ws=$(sub_s "$(child_s "$pm_pid")" "$dc0")
	d_cl=$(awk '{ printf "%.2f", $1 + $2 }' "$tmp/recv.time")
}

# The decode.workers passes' slots, "walcount_dw_W_R", in the order they run:
# the repetitions alternate direction, so neither end of the list always
# runs on the slots with more WAL of earlier passes to skip.
decode_slots() {
	local r w ws
	r=1
	while [ "$r" -le "$decode_reps" ]; do
		ws=$decode_list
		[ $((r % 2)) -eq 1 ] || ws=$(echo "$decode_list" | tr ' ' '\n' | grep . | sort -rn | tr '\n' ' ')
		for w in $ws; do echo "walcount_dw_${w}_$r"; done
		r=$((r + 1))
	done
}
# Applies the round's backlog once per decode.workers pass, each on its own
# slot created before the backlog; each pass counts the backlog again, so
# the marker's count moves once more per pass (as in the second pass).
decode_passes() { # marker changes
	local s w m2 t0 ms cpu be main
	: >"$tmp/decode-passes.txt"
	for s in $(decode_slots); do
		w=${s#walcount_dw_} w=${w%_*}
		m2=$(q -c "SELECT repost_count + CASE WHEN $1 = 1 THEN 1 ELSE -1 END FROM aggregate_track WHERE track_id = $mtrack")
		wc_conf "$tmp/dw.yaml" "$s" "$metrics_addr" "$w1" "$w"
		own "$s"
		t0=$(now_ms)
		wc_start "$tmp/dw-$s.log" "$tmp/dw.yaml"
		wc_pids "$s"
		wait_mark "$m2" 7200
		ms=$(($(now_ms) - t0))
		cpu=$(cpu_s "$wc_pid") be=$(cpu_sum $be_pid) main=$(cpu_s "$wc_pid/task/$wc_pid")
		wc_stop
		q -c "SELECT pg_drop_replication_slot('$s')" -c "DELETE FROM walcount.progress WHERE slot_name = '$s'" >/dev/null
		echo "$w $ms $cpu $be $main" >>"$tmp/decode-passes.txt"
		say "  decode.workers $w (slot $s): $ms ms ($(rate "$2" "$ms") changes/s), walcount CPU $cpu s (stream thread $main s), apply backend CPU $be s"
	done
	for w in $decode_list; do
		say "  decode.workers $w: median $(awk -v w="$w" '$1 == w { print $2 }' "$tmp/decode-passes.txt" | median) ms," \
			"walcount CPU median $(awk -v w="$w" '$1 == w { print $3 }' "$tmp/decode-passes.txt" | median) s" \
			"(stream thread $(awk -v w="$w" '$1 == w { print $5 }' "$tmp/decode-passes.txt" | median) s)"
	done
}

: >"$tmp/rounds.txt"
: >"$tmp/options.txt"
: >"$tmp/wpasses.txt"
reversed() {
	local r="" x
	for x in "$@"; do
		r="$x${r:+ $r}"
	done
	echo "$r"
}
# moved_check FIRST0 FIRST1 PASS0 PASS1: a pass that counted a round's
# backlog again moved every aggregate column by as much as the round's first
# pass did (bench.sums() before and after each).
moved_check() {
	awk 'FILENAME == ARGV[1] { a[$1] = $2; next } FILENAME == ARGV[2] { d[$1] = $2 - a[$1]; next }
		FILENAME == ARGV[3] { p[$1] = $2; next }
		{ dp = $2 - p[$1]; if (dp != d[$1]) { bad = bad sprintf(" %s moved %d, the first pass %d;", $1, dp, d[$1]) } n++ }
		END { if (bad == "") print "exact (" n " columns, as the first pass)"; else print "NOT EXACT:" bad }' "$@"
}
# wpass LABEL W SLOT PASS: walcount with apply.workers W applies the round's
# backlog again from SLOT (created with the drain slot), counting it a
# second time: its end is the marker's count ($m in round) moved once more by
# the toggle. With more than one BENCH_WORKERS value every such pass starts
# after a CHECKPOINT, as the round's first one does, so each writes the same
# full-page images. Appends "label workers pass ms CPU-walcount
# CPU-walsender CPU-backends backends batches apply-ms exactness" to
# wpasses.txt (the round's first pass is the line round() writes); SLOT and
# its progress rows are dropped after.
wpass() {
	local m2 t0 ms c_wc c_ws c_be nb bs ex
	wc_conf "$tmp/wpass.yaml" "$3" "$metrics_addr" "$2"
	own "$3"
	[ -z "$wrest" ] || q -c "CHECKPOINT"
	sums >"$tmp/round-$1-$3-sums0.txt"
	m2=$(q -c "SELECT repost_count + CASE WHEN $m = 1 THEN 1 ELSE -1 END FROM aggregate_track WHERE track_id = $mtrack")
	t0=$(now_ms)
	wc_start "$tmp/round-$1-$3.log" "$tmp/wpass.yaml"
	wc_pids "$3"
	wait_mark "$m2" 7200
	ms=$(($(now_ms) - t0))
	c_wc=$(cpu_s "$wc_pid") c_ws=$(cpu_s "$ws_pid") c_be=$(cpu_sum $be_pid)
	curl -sf "$murl" >"$tmp/round-$1-$3-metrics.txt"
	wc_stop
	sums >"$tmp/round-$1-$3-sums1.txt"
	ex=$(moved_check "$tmp/round-$1-sums0.txt" "$tmp/round-$1-sums1.txt" "$tmp/round-$1-$3-sums0.txt" "$tmp/round-$1-$3-sums1.txt")
	nb=$(metric_sum walcount_batches_total "$tmp/round-$1-$3-metrics.txt")
	bs=$(awk '/^walcount_batch_duration_seconds_sum / { printf "%.0f", $2 * 1000 }' "$tmp/round-$1-$3-metrics.txt")
	q -c "SELECT pg_drop_replication_slot('$3')" -c "DELETE FROM walcount.progress WHERE slot_name = '$3'" >/dev/null
	echo "$1 $2 $4 $ms $c_wc $c_ws $c_be $be_n $nb $bs $ex" >>"$tmp/wpasses.txt"
	say "  $(wlabel "$2") pass $4 (slot $3): $ms ms ($(rate "$changes" "$ms") changes/s, apply connections: $be_n); $ex"
}
round() { # size label
	local n label extra prof s1x s c0 l0 t0 m changes lw0 k kind is_opt wslots x
	n=$1 label=$2
	say "round $label: $n changes"
	wc_settle
	# wal2json option drains: $opt_reps each, interleaved with repeats of
	# walcount's options (the round's own drain is the first of those).
	extra="" is_opt=""
	if [ "$n" = "$opt_size" ] && [ "$label" = "$n" ]; then
		is_opt=1
		k=1
		while [ "$k" -le "$opt_reps" ]; do
			[ "$k" -eq 1 ] || extra="$extra ob_$k"
			extra="$extra ot_$k oo_$k"
			k=$((k + 1))
		done
	fi
	prof="" s1x=""
	want 1 && [ "$n" = "$s1_size" ] && [ "$label" = "$n" ] && s1x=1
	[ -z "$s1x" ] || [ -z "$have_perf" ] || prof=walcount_prof
	# The other BENCH_WORKERS values apply the same backlog from slots of
	# their own: two passes each in scenario 1, one in scenario 5.
	wslots=""
	if [ -n "$wrest" ] && [ "$label" = "$n" ] && { [ -n "$s1x" ] || want 5; }; then
		for x in $wrest; do
			wslots="$wslots wc_w${x}_1"
			[ -z "$s1x" ] || wslots="$wslots wc_w${x}_2"
		done
	fi
	for s in $wslots; do
		q -c "SELECT pg_create_logical_replication_slot('$s', 'wal2json')" >/dev/null
		q -c "INSERT INTO walcount.progress (slot_name, lsn) SELECT slot_name, confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '$s'"
	done
	for s in drain $extra; do
		q -c "SELECT pg_create_logical_replication_slot('$s', 'wal2json')" >/dev/null
	done
	if [ -n "$s1x" ]; then
		# Scenario 1 also times a second drain and a second walcount pass
		# (slot walcount_rep), then profiles a third (walcount_prof).
		extra="$extra ob_x"
		q -c "SELECT pg_create_logical_replication_slot('ob_x', 'wal2json')" >/dev/null
		for s in walcount_rep $prof $(decode_slots); do
			q -c "SELECT pg_create_logical_replication_slot('$s', 'wal2json')" >/dev/null
			q -c "INSERT INTO walcount.progress (slot_name, lsn) SELECT slot_name, confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '$s'"
		done
	fi
	slot_gap=$(q -c "SELECT pg_wal_lsn_diff(max(confirmed_flush_lsn), min(confirmed_flush_lsn))::bigint FROM pg_replication_slots WHERE slot_name IN ('$slot', 'drain')")
	sums >"$tmp/round-$label-sums0.txt"
	c0=$(q -c "SELECT bench.changes()")
	l0=$(q -c "SELECT pg_current_wal_lsn()")
	t0=$(now_ms)
	gen "$n"
	m=$(mark)
	end_lsn=$(q -c "SELECT pg_current_wal_lsn()")
	gen_ms=$(($(now_ms) - t0))
	changes=$(($(q -c "SELECT bench.changes()") - c0))
	wal_bytes=$(q -c "SELECT pg_wal_lsn_diff('$end_lsn', '$l0')::bigint")
	q -c "CHECKPOINT"
	say "  generated $changes changes ($wal_bytes bytes of WAL) in $gen_ms ms; draining"
	drain drain $wc_opts
	dr_ms=$d_ms dr_ws=$d_ws dr_cl=$d_cl
	[ -z "$is_opt" ] || echo "$label base $dr_ms $dr_ws $changes" >>"$tmp/options.txt"
	for s in $extra; do
		case $s in
		ob_x) continue ;;
		ob_*) kind=base; drain "$s" $wc_opts ;;
		ot_*) kind=types; drain "$s" $opts_types ;;
		oo_*) kind=oids; drain "$s" $opts_oids ;;
		esac
		echo "$label $kind $d_ms $d_ws $changes" >>"$tmp/options.txt"
	done
	say "  drain: $dr_ms ms ($(rate "$changes" "$dr_ms") changes/s); walcount"
	lw0=$(q -c "SELECT pg_current_wal_lsn()")
	t0=$(now_ms)
	wc_start "$tmp/round-$label.log"
	wc_pids "$slot"
	wait_mark "$m" 7200
	wc_ms=$(($(now_ms) - t0))
	wc_wal=$(q -c "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$lw0')::bigint")
	wc_cpu=$(cpu_s "$wc_pid") ws_cpu=$(cpu_s "$ws_pid") be_cpu=$(cpu_sum $be_pid) peak_kb=$(hwm_kb "$wc_pid")
	curl -sf "$murl" >"$tmp/round-$label-metrics.txt"
	wc_stop
	started=$(sed -n 's/^\([0-9T:.-]*\)Z .*stream: started slot.*/\1/p' "$tmp/round-$label.log" | head -1)
	start_ms=$(($(date -d "${started}Z" +%s%3N) - t0))
	sums >"$tmp/round-$label-sums1.txt"
	exact=$(sums_check "$tmp/round-$label-sums0.txt" "$tmp/round-$label-sums1.txt")
	mchanges=$(metric_sum walcount_changes_total "$tmp/round-$label-metrics.txt")
	batches=$(metric_sum walcount_batches_total "$tmp/round-$label-metrics.txt")
	bsum=$(awk '/^walcount_batch_duration_seconds_sum / { printf "%.0f", $2 * 1000 }' "$tmp/round-$label-metrics.txt")
	echo "$label $n $changes $mchanges $wal_bytes $gen_ms $dr_ms $dr_ws $dr_cl $wc_ms $start_ms $wc_cpu $ws_cpu $be_cpu $batches $bsum $peak_kb $slot_gap $wc_wal $exact" >>"$tmp/rounds.txt"
	say "  $(wlabel "$w1"): $wc_ms ms ($(rate "$changes" "$wc_ms") changes/s, $(ratio "$dr_ms" "$wc_ms") x drain), $batches batches, apply $bsum ms; $exact"
	echo "$label $w1 1 $wc_ms $wc_cpu $ws_cpu $be_cpu $be_n $batches $bsum $exact" >>"$tmp/wpasses.txt"
	if [ -n "$wslots" ]; then
		for x in $wrest; do
			wpass "$label" "$x" "wc_w${x}_1" 1
		done
	fi
	if [ -n "$s1x" ]; then
		# Second drain and second walcount passes, alternating with the
		# first ones (the BENCH_WORKERS values in reverse order).
		echo "drain $dr_ms $dr_ws" >"$tmp/s1-passes.txt"
		echo "walcount $wc_ms $batches $bsum" >>"$tmp/s1-passes.txt"
		drain ob_x $wc_opts
		echo "drain $d_ms $d_ws" >>"$tmp/s1-passes.txt"
		[ -z "$is_opt" ] || echo "$label base $d_ms $d_ws $changes" >>"$tmp/options.txt"
		say "  second drain: $d_ms ms; second walcount passes"
		for x in $(reversed $wrest); do
			wpass "$label" "$x" "wc_w${x}_2" 2
		done
		wpass "$label" "$w1" walcount_rep 2
		set -- $(tail -n 1 "$tmp/wpasses.txt")
		echo "walcount $4 $9 ${10}" >>"$tmp/s1-passes.txt"
		[ -z "$decode_list" ] || decode_passes "$m" "$changes"
	fi
	if [ -n "$prof" ]; then
		say "  profile: walcount applying the same backlog from slot $prof under perf for $prof_s s"
		wc_conf "$tmp/prof.yaml" "$prof" "" "$w1"
		own "$prof"
		wc_start "$tmp/prof.log" "$tmp/prof.yaml"
		wc_pids "$prof"
		prof_pids="$wc_pid $ws_pid $(echo "$be_pid" | tr ' ' ,)"
		perf record -q -a -F 999 -o "$tmp/perf-all.data" -- sleep "$prof_s" >/dev/null 2>&1 &
		pa=$!
		perf record -q -F 999 --call-graph dwarf,16384 -p "$wc_pid" -o "$tmp/perf-walcount.data" -- sleep "$prof_s" >/dev/null 2>&1 &
		pw=$!
		bg_pids="$bg_pids $pa $pw"
		wait "$pa" || true
		wait "$pw" || true
		wc_stop
		q -c "SELECT pg_drop_replication_slot('$prof')" -c "DELETE FROM walcount.progress WHERE slot_name = '$prof'" >/dev/null
		echo "$prof_pids" >"$tmp/perf-pids.txt"
		profiled=1
	fi
	if [ -n "$s1x" ] || [ -n "$wslots" ]; then
		own "$slot"
		# The extra passes counted the backlog again: the checks use
		# deltas, but the marker and the probe need their exact counts
		# back (the main slot has applied everything).
		q -c "UPDATE aggregate_track a SET repost_count = (SELECT count(*) FROM reposts r WHERE r.repost_item_id = a.track_id
			AND r.repost_type = 'track' AND r.is_current AND NOT r.is_delete) WHERE track_id IN ($((tracks + 1)), $mtrack)"
	fi
	for s in drain $extra; do
		q -c "SELECT pg_drop_replication_slot('$s')" >/dev/null
	done
}

load1=$(load)
for n in $sizes; do
	round "$n" "$n"
done
if want 1; then
	# Replica identity: the old image of an UPDATE carries only the identity
	# index's columns instead of all 11 (wal2json 2.5 has no column filter).
	say "round identity: REPLICA IDENTITY USING INDEX (key columns, txhash, is_current, is_delete)"
	q -c "CREATE UNIQUE INDEX bench_reposts_ri ON reposts (user_id, repost_item_id, repost_type, txhash, is_current, is_delete)" \
		-c "CREATE UNIQUE INDEX bench_saves_ri ON saves (user_id, save_item_id, save_type, txhash, is_current, is_delete)" \
		-c "CREATE UNIQUE INDEX bench_follows_ri ON follows (follower_user_id, followee_user_id, txhash, is_current, is_delete)" \
		-c "ALTER TABLE reposts REPLICA IDENTITY USING INDEX bench_reposts_ri" \
		-c "ALTER TABLE saves REPLICA IDENTITY USING INDEX bench_saves_ri" \
		-c "ALTER TABLE follows REPLICA IDENTITY USING INDEX bench_follows_ri"
	round "$ri_size" identity
	q -c "ALTER TABLE reposts REPLICA IDENTITY FULL" -c "ALTER TABLE saves REPLICA IDENTITY FULL" -c "ALTER TABLE follows REPLICA IDENTITY FULL" \
		-c "DROP INDEX bench_reposts_ri, bench_saves_ri, bench_follows_ri"
fi
load_end=$(load)

# --- profile reports --------------------------------------------------------
if [ -n "$profiled" ]; then
	say "profile reports"
	set -- $(cat "$tmp/perf-pids.txt")
	p_wc=$1 p_ws=$2 p_be=$3
	# One line per sample: pid, library, symbol. Kernel samples are one bucket
	# (in this VM most of them land on pvm_irq_enable, where sampling resumes
	# after a syscall or interrupt, so their symbols say little).
	perf script -i "$tmp/perf-all.data" -F comm,pid,ip,sym,dso 2>/dev/null | awk '{
		dso = $NF; gsub(/[()]/, "", dso); n = split(dso, parts, "/"); dso = parts[n]
		sym = ""; for (i = 4; i < NF; i++) sym = sym (i > 4 ? " " : "") $i
		if (dso ~ /kernel/) { dso = "kernel"; sym = "(kernel: syscalls, interrupts, page faults)" }
		if (sym == "" || sym == "[unknown]") sym = "(unresolved: stripped library)"
		printf "%s\t%s\t%s\t%s\n", $2, $1, dso, sym }' >"$tmp/perf-samples.tsv"
	pshare() { awk -F'\t' -v p="$1" '{ n++ } index("," p ",", "," $1 ",") { k++ } END { printf "%.1f", n ? k * 100 / n : 0 }' "$tmp/perf-samples.tsv"; }
	idle_share=$(awk -F'\t' '{ n++ } $1 == 0 { k++ } END { printf "%.1f", n ? k * 100 / n : 0 }' "$tmp/perf-samples.tsv")
	ps_wc=$(pshare "$p_wc") ps_ws=$(pshare "$p_ws") ps_be=$(pshare "$p_be")
	ps_other=$(awk -v a="$ps_wc" -v b="$ps_ws" -v c="$ps_be" -v d="$idle_share" 'BEGIN { printf "%.1f", 100 - a - b - c - d }')
	# "lib 45.0%; lib 20.0%" for one pid or a comma-separated list (the
	# apply backends)
	dso_line() {
		awk -F'\t' -v p="$1" 'index("," p ",", "," $1 ",") { n++; c[$3]++ } END { for (d in c) printf "%.1f\t%s\n", c[d] * 100 / n, d }' "$tmp/perf-samples.tsv" |
			sort -rn | head -6 | awk -F'\t' '{ printf "%s%s %s%%", (NR > 1 ? "; " : ""), $2, $1 }'
	}
	# markdown rows: share of the pid's (pids') samples, library, symbol
	sym_rows() {
		awk -F'\t' -v p="$1" 'index("," p ",", "," $1 ",") { n++; c[$3 "\t" $4]++ } END { for (k in c) printf "%.1f\t%s\n", c[k] * 100 / n, k }' "$tmp/perf-samples.tsv" |
			sort -rn | head -"$2" | awk -F'\t' '{ s = $3; gsub(/\|/, "\\|", s); printf "| %s%% | %s | `%s` |\n", $1, $2, s }'
	}
	# walcount with its callees (DWARF call graphs): named functions
	perf report -i "$tmp/perf-walcount.data" --stdio --children --sort sym --percent-limit 2 -g none 2>/dev/null |
		grep -v '^#' | grep -v '^$' | head -80 >"$tmp/perf-walcount-children.txt" || true
fi
children_rows() { # file count: named functions below the 99% call-chain roots
	awk -v max="$2" '$1 ~ /%$/ && $2 ~ /%$/ && $4 !~ /^0x/ && $1 + 0 < 99 && n < max {
		sym = ""; for (i = 4; i <= NF; i++) sym = sym (i > 4 ? " " : "") $i
		printf "| %s | %s | `%s` |\n", $1, $2, sym; n++ }' "$1"
}

# --- results ----------------------------------------------------------------
total_s=$((($(now_ms) - t_begin) / 1000))
mem=$(free -h | awk '/^Mem:/ { print $2 }')
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
row() { awk -v l="$1" '$1 == l' "$tmp/rounds.txt"; }
# rounds.txt: 1 label 2 size 3 changes 4 changes(walcount metric) 5 backlog WAL 6 gen ms 7 drain ms
# 8 drain walsender CPU 9 pg_recvlogical CPU 10 walcount ms 11 start-up ms 12 walcount CPU
# 13 its walsender CPU 14 apply backend CPU 15 batches 16 apply statements ms 17 peak RSS kB
# 18 slot gap B 19 walcount's own WAL B 20.. exactness
if want 1; then
	set -- $(row "$s1_size")
	s1_changes=$3 s1_mch=$4 s1_wal=$5 s1_dr_ms=$7 s1_dr_ws=$8 s1_dr_cl=$9 s1_wc_ms=${10} s1_start=${11} s1_wc_cpu=${12} s1_ws_cpu=${13}
	s1_be_cpu=${14} s1_batches=${15} s1_bsum=${16} s1_gap=${18} s1_own=${19}
	# medians over the passes (two drains, two walcount passes, alternating)
	s1_dr_ms=$(awk '$1 == "drain" { print $2 }' "$tmp/s1-passes.txt" | median)
	s1_wc_ms=$(awk '$1 == "walcount" { print $2 }' "$tmp/s1-passes.txt" | median)
	s1_dr_list=$(awk '$1 == "drain" { printf "%s%.2f", (n++ ? ", " : ""), $2 / 1000 }' "$tmp/s1-passes.txt")
	s1_wc_list=$(awk '$1 == "walcount" { printf "%s%.2f", (n++ ? ", " : ""), $2 / 1000 }' "$tmp/s1-passes.txt")
	s1_bsum_list=$(awk '$1 == "walcount" { printf "%s%.2f", (n++ ? ", " : ""), $4 / 1000 }' "$tmp/s1-passes.txt")
	s1_dr_rate=$(rate "$s1_changes" "$s1_dr_ms") s1_wc_rate=$(rate "$s1_changes" "$s1_wc_ms")
	s1_ratio=$(ratio "$s1_wc_rate" "$s1_dr_rate")
	s1_goal=missed
	awk -v r="$s1_ratio" 'BEGIN { exit !(r >= 0.95) }' && s1_goal=met
	s1_wc_ms_1=$(awk '$1 == "walcount" { print $2; exit }' "$tmp/s1-passes.txt")
	# CPU of the processes each side needs, against what the machine has
	s1_cpu_wc=$(awk -v a="$s1_ws_cpu" -v b="$s1_wc_cpu" -v c="$s1_be_cpu" 'BEGIN { printf "%.2f", a + b + c }')
	s1_cpu_dr=$(awk -v a="$s1_dr_ws" -v b="$s1_dr_cl" 'BEGIN { printf "%.2f", a + b }')
	s1_cpu_floor=$(awk -v t="$s1_cpu_wc" -v n="$ncpu" 'BEGIN { printf "%.2f", t / n }')
	s1_cpu_bound=$(awk -v t="$s1_cpu_wc" -v n="$ncpu" -v d="$s1_dr_ms" 'BEGIN { printf "%.2f", (d / 1000) / (t / n) }')
	s1_dr_ms=${s1_dr_ms%.*} s1_wc_ms=${s1_wc_ms%.*}
	if awk -v b="$s1_cpu_bound" 'BEGIN { exit !(b < 0.95) }'; then
		s1_bound_text="Even with reading, decoding and applying perfectly overlapped, the three processes' $s1_cpu_wc CPU-s need at least $s1_cpu_floor s on $ncpu CPUs: at most ${s1_cpu_bound}x the drain rate. On this machine the goal needs less CPU per change (walcount's parse, the apply statement), not more overlap."
	else
		s1_bound_text="The three processes' $s1_cpu_wc CPU-s fit in the drain's time on $ncpu CPUs, so the gap is waiting, not CPU."
	fi
	set -- $(row identity)
	ri_n=$3 ri_wal=$5 ri_dr=$7 ri_ws=$8 ri_wc=${10}
	shift 19
	ri_exact="$*"
	set -- $(row "$ri_size")
	fr_n=${3:-0} fr_wal=${5:-0} fr_dr=${7:-0} fr_ws=${8:-0} fr_wc=${10:-0}
	opt_med() { awk -v k="$1" -v c="$2" '$2 == k { print $c }' "$tmp/options.txt" | median; }
	ob_ms=$(opt_med base 3) ob_cpu=$(opt_med base 4)
fi
if want 5; then
	set -- $(row 100000)
	r100=$(rate "${3:-0}" "${10:-0}")
	scale_min=$(awk -v b="$r100" '$1 ~ /^[0-9]+$/ && $2 >= 100000 { r = $3 * 1000 / $10 / b; if (min == "" || r < min) min = r } END { printf "%.2f", min }' "$tmp/rounds.txt")
	scale_n=$(awk '$1 ~ /^[0-9]+$/ && $2 > 100000' "$tmp/rounds.txt" | wc -l)
	scale_goal=missed
	awk -v r="$scale_min" 'BEGIN { exit !(r >= 0.9) }' && scale_goal=met
	[ "$scale_n" -gt 0 ] || scale_goal="not measured (no round above 100k)"
fi

# Results of scenario 2 (hot-setups.txt, hot-wc-runs.txt; see hot_setup).
# wait events per run name prefix: "ev 45%, ev 20%, ..."
waits_line() {
	q -F ' ' -c "SELECT ev, round(100.0 * count(*) / sum(count(*)) OVER (), 1) FROM bench.wait_samples
		WHERE setup ~ '^$1[0-9]+\$' GROUP BY ev ORDER BY count(*) DESC LIMIT 5" | awk '{ printf "%s%s %s%%", (NR > 1 ? ", " : ""), $1, $2 }'
}
walavg() { # run name prefix, column: mean over its runs
	awk -v p="^$1[0-9]+\$" -v c="$2" '$1 ~ p { s += $c; n++ } END { printf "%.2f", n ? s / n : 0 }' "$tmp/hot-wal.txt"
}
not_run() { echo "| $1 | $2 | not run (BENCH_SCENARIOS) | | | |"; }
hot_goal_rows() {
	local sn cl jb hn b t w rb rt rtb keep nk cmax ga gb gc pairs
	while read -r sn cl jb hn b t w rb rt rtb keep nk cmax; do
		ga=missed gb=missed gc=missed
		awk -v r="$rb" 'BEGIN { exit !(r >= 0.85) }' && ga=met
		awk -v r="$rt" 'BEGIN { exit !(r >= 1.4) }' && gb=met
		case $keep in yes) gc=met ;; n/a) gc="not judged (under 3 lag samples)" ;; esac
		pairs=$(awk -v s="$sn" -v w="$w1" '$1 == s && $17 == w { printf "%s%s -> %s", (n++ ? ", " : ""), $9, $10 }' "$tmp/hot-wc-runs.txt")
		cat <<EOT
| 2a | $sn ($cl clients, 90% of the writes on $hn tracks): writers with walcount consuming >= 0.85x no triggers | $w tx/s | no triggers $b tx/s | $rb | **$ga** |
| 2b | $sn: writers with walcount >= 1.4x the seed's triggers | $w tx/s | seed triggers $t tx/s | $rt | **$gb** |
| 2c | $sn: walcount keeps up (lag in the last third <= the first third + $keep_slack B, catch-up < 1 s) | lag $pairs B (first -> last third, per run); catch-up <= $cmax ms | | $nk of $hot_reps runs | **$gc** |
EOT
	done <"$tmp/hot-setups.txt"
}
hot_section() {
	local sn cl jb hn b t w rb rt rtb keep nk cmax k kn r tps nc nb cw cs cb lf ll lm cu p50 p99 le kp kl wk bn rw
	cat <<EOT

### 2. Hot-key writer throughput

pgbench, bench/suite_hot.pgbench: one upsert in place per transaction (a repost or save of a track with the action's is_delete and a new txhash, 50/50), 90% of the writes on the setup's hot tracks (ids 1..N), the rest spread over the others, synchronous_commit on. Per setup, $hot_reps repetitions of (no triggers, walcount consuming, seed triggers), each after VACUUM ANALYZE and CHECKPOINT on the same tables, $hot_warm s of warm-up then $hot_s s measured (tx/s and latency: mean of pgbench's per-second progress over the measured part). The seed's triggers: bench/seed_triggers.sql, written from the seed's description (AFTER INSERT OR UPDATE, delta = (NEW.is_delete ? 0 : 1) - (UPDATE and NOT OLD.is_delete ? 1 : 0), the missing aggregate row created first, then \`col = col + delta\` for every row written). Medians of the repetitions. walcount keeps up when, in every run, the median of its lag (WAL end - applied progress, sampled every second over the measured part) in the last third is not above the first third's by more than $keep_slack B (a batch in flight) and the end marker is visible less than 1 s after the writers stop.

| setup | clients (-j) | hot tracks | no triggers tx/s | seed triggers tx/s | walcount tx/s | walcount / no triggers | walcount / triggers | triggers / no triggers | walcount keeps up | counts |
|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|
EOT
	while read -r sn cl jb hn b t w rb rt rtb keep nk cmax; do
		echo "| $sn | $cl (-j $jb) | $hn | $b | $t | $w | **$rb** | $rt | $rtb | **$keep** ($nk of $hot_reps runs; catch-up <= $cmax ms) | $(cat "$tmp/hot-$sn-exact.txt") |"
	done <"$tmp/hot-setups.txt"
	cat <<EOT

The runs, and why the writers slow down (means over the runs; WAL from pg_stat_wal, including walcount's own writes in its configuration; wait events: every 50 ms, what the active pgbench backends waited on, CPU = running or waiting for a CPU):

| setup | configuration | tx/s per run | WAL per writer tx | full-page images per tx | WAL flushes/s | WAL MB/s | writers' wait events (share of samples) |
|---|---|---|---:|---:|---:|---:|---|
EOT
	while read -r sn rest; do
		s2=$sn
		for k in base trg $workers; do
			case $k in
			base) kn="no triggers" kp="$sn-base" kl="$tmp/hot-$sn-base.list" ;;
			trg) kn="seed triggers" kp="$sn-trg" kl="$tmp/hot-$sn-trg.list" ;;
			*) kn="$(wlabel "$k") consuming" kp=$(wpfx "$k") kl=$(wlist "$k") ;;
			esac
			echo "| $sn | $kn | $(grep . "$kl" | paste -sd, | sed 's/,/, /g') | $(walavg "$kp" 2) B | $(walavg "$kp" 3) | $(walavg "$kp" 4) | $(awk -v b="$(walavg "$kp" 5)" 'BEGIN { printf "%.1f", b / 1048576 }') | $(waits_line "$kp") |"
		done
	done <"$tmp/hot-setups.txt"
	cat <<EOT

walcount in each run (CPU over the whole run, warm-up included: $((hot_warm + hot_s)) s, of $((ncpu * (hot_warm + hot_s))) CPU-s on the machine; lag over the measured part; commit -> apply from the histogram):

| setup | apply.workers | run | tx/s | changes (whole run) | batches | CPU walcount / walsender / backends | lag first -> last third (median), max | catch-up | commit -> apply p50 / p99, <= 100 ms | keeps up |
|---|---:|---:|---:|---:|---:|---|---|---:|---|---|
EOT
	while read -r sn r tps nc nb cw cs cb lf ll lm cu p50 p99 le keep wk bn; do
		echo "| $sn | $wk | $r | $tps | $nc | $nb | $cw / $cs / $cb s | $lf -> $ll B, $lm B | $cu ms | $p50 / $p99 ms, $le% | $keep |"
	done <"$tmp/hot-wc-runs.txt"
	[ -n "$wrest" ] || return 0
	cat <<EOT

#### By apply.workers

Each repetition ran walcount once per apply.workers value ($(echo "$workers" | sed 's/ /, /g'); the order rotated by repetition), between the same no-triggers and seed-triggers runs. tx/s: medians of the repetitions; CPU: means over the runs (whole run, warm-up included: $((hot_warm + hot_s)) s of $((ncpu * (hot_warm + hot_s))) CPU-s), the apply backends summed over their connections; lag: WAL end - the earliest partition's progress row.

| setup | apply.workers | apply connections | writers tx/s | / no triggers | / apply.workers $w1 | keeps up | max catch-up | CPU walcount / walsender / backends |
|---|---:|---:|---:|---:|---:|---|---:|---|
EOT
	while read -r sn wk tps rb rw keep nk cmax cw cs cb bn; do
		echo "| $sn | $wk | $bn | $tps | $rb | $rw | **$keep** ($nk of $hot_reps runs) | $cmax ms | $cw / $cs / $cb s |"
	done <"$tmp/hot-workers.txt"
}

# The BENCH_WORKERS tables (only with more than one value). Scenario 1:
# wpasses.txt of its round.
s1_workers() {
	local wk list med rt cw cs cb bn nb bs ex
	cat <<EOT
#### By apply.workers

The same backlog applied by each apply.workers value, from slots created with the drain's: passes in the order drain, apply.workers $(echo "$workers" | sed 's/ /, /g'), drain, $(reversed $workers | sed 's/ /, /g'); every walcount pass after a CHECKPOINT, so each writes the same full-page images. A pass other than the first counts the backlog again; it is exact when every aggregate column moved by as much as in the first pass. CPU: the first pass of each value (/proc, user + system), the apply backends summed over the value's connections.

| apply.workers | apply connections | passes | wall (median) | changes/s | / drain | / apply.workers $w1 | CPU walcount / backends / walsender (pass 1) | walcount + backends CPU-s per 1M changes | batches, apply statements (pass 1) | pass 1 |
|---:|---:|---|---:|---:|---:|---:|---|---:|---|---|
EOT
	med=$(awk -v l="$s1_size" -v w="$w1" '$1 == l && $2 == w { print $4 }' "$tmp/wpasses.txt" | median)
	local r1
	r1=$(rate "$s1_changes" "$med")
	for wk in $workers; do
		list=$(awk -v l="$s1_size" -v w="$wk" '$1 == l && $2 == w { printf "%s%.2f", (n++ ? ", " : ""), $4 / 1000 }' "$tmp/wpasses.txt")
		med=$(awk -v l="$s1_size" -v w="$wk" '$1 == l && $2 == w { print $4 }' "$tmp/wpasses.txt" | median)
		rt=$(rate "$s1_changes" "$med")
		set -- $(awk -v l="$s1_size" -v w="$wk" '$1 == l && $2 == w && $3 == 1' "$tmp/wpasses.txt")
		cw=$5 cs=$6 cb=$7 bn=$8 nb=$9 bs=${10}
		shift 10
		ex="$*"
		echo "| $wk | $bn | $list s | $(secs "$med") s | $rt | $(ratio "$rt" "$s1_dr_rate") | **$(ratio "$rt" "$r1")** | $cw / $cb / $cs s | $(awk -v a="$cw" -v b="$cb" -v n="$s1_changes" 'BEGIN { printf "%.1f", (a + b) * 1000000 / n }') | $nb, $(secs "$bs") s | $ex |"
	done
	echo
}
# Scenario 3: lag-w.txt.
lag_workers() {
	local wk tps n p50 p99 le bp50 bp99 pn pp50 pp99 pmax lf ll lm cu f99
	f99=$(awk -v w="$w1" '$1 == w { print $5 }' "$tmp/lag-w.txt")
	cat <<EOT

By apply.workers (one run each, in the order $(echo "$wrest $w1" | sed 's/ /, /g'); lag: WAL end - the earliest partition's progress row):

| apply.workers | load tx/s | histogram p50 / p99 | <= 100 ms | p99 / apply.workers $w1 | batch statement p50 / p99 | probe p50 / p99 / max | lag first -> last third (median), max | catch-up |
|---:|---:|---|---:|---:|---|---|---|---:|
EOT
	while read -r wk tps n p50 p99 le bp50 bp99 pn pp50 pp99 pmax lf ll lm cu; do
		echo "| $wk | $tps | $p50 / $p99 ms | $le% | $(ratio "$p99" "$f99") | $bp50 / $bp99 ms | $pp50 / $pp99 / $pmax ms | $lf -> $ll B, $lm B | $cu ms |"
	done <"$tmp/lag-w.txt"
}
# Scenario 4: mem-w.txt.
mem_workers() {
	local n wk idle peak rss g a b firsts
	firsts=$(awk -v w="$w1" '$2 == w { print $1, $4 }' "$tmp/mem-w.txt")
	cat <<EOT

By apply.workers (each size once per value, one after the other):

| rows in the transaction | apply.workers | peak RSS (VmHWM) | idle RSS before it | ratio to apply.workers $w1 | apply time | batches |
|---:|---:|---:|---:|---:|---:|---:|
EOT
	while read -r n wk idle peak rss g a b; do
		echo "| $n | $wk | $(mb "$peak") MB | $(mb "$idle") MB | $(ratio "$peak" "$(echo "$firsts" | awk -v n="$n" '$1 == n { print $2 }')") | $(secs "$a") s | $b |"
	done <"$tmp/mem-w.txt"
}
# Scenario 5: the first pass of each value per round (wpasses.txt).
scale_workers() {
	local label n ch rest wk ms r1 line
	cat <<EOT

By apply.workers: changes/s of each value's first pass (the first value's on the round's slot, the others' on slots created with it, one after the other), and the ratio to apply.workers $w1:

| backlog | $(for wk in $workers; do printf 'apply.workers %s | ' "$wk"; done)
|---:|$(for wk in $workers; do printf '%s' '---:|'; done)
EOT
	while read -r label n ch rest; do
		case $label in identity) continue ;; esac
		r1=$(rate "$ch" "$(awk -v l="$label" -v w="$w1" '$1 == l && $2 == w && $3 == 1 { print $4 }' "$tmp/wpasses.txt")")
		line="| $label |"
		for wk in $workers; do
			ms=$(awk -v l="$label" -v w="$wk" '$1 == l && $2 == w && $3 == 1 { print $4 }' "$tmp/wpasses.txt")
			line="$line $(rate "$ch" "${ms:-0}") ($(ratio "$(rate "$ch" "${ms:-0}")" "$r1")) |"
		done
		echo "$line"
	done <"$tmp/rounds.txt"
}
# The "this run" row: what each selected scenario ran.
this_run() {
	local t
	t="scenarios ${BENCH_SCENARIOS:-all}"
	[ -z "$sizes" ] || t="$t; backlogs $(echo "$sizes" | sed 's/ /, /g') changes$([ -z "${BENCH_SIZES:-}" ] || echo " (BENCH_SIZES set)")"
	if want 1; then
		t="$t; scenario 1 at $s1_size; option drains at $opt_size"
	fi
	if want 2; then
		t="$t; scenario 2 setups $hot_setups, $hot_reps x ($hot_warm + $hot_s) s per configuration"
	fi
	if want 3; then
		t="$t; scenario 3 $lag_s s"
	fi
	if want 4; then
		t="$t; scenario 4 $(echo "$mem_sizes" | sed 's/ /, /g') rows"
	fi
	[ "$workers" = 1 ] || t="$t; walcount with apply.workers $(echo "$workers" | sed 's/ /, /g') side by side (BENCH_WORKERS; the goals: $w1)"
	echo "$t"
}
section="$tmp/section.md"
section_name=${BENCH_SECTION:-Suite: $target}
{
	cat <<EOT
## $section_name

Run $(date -u '+%Y-%m-%d %H:%M UTC') by \`$target\` (bench/suite.sh, BENCH_MODE=$mode) in $((total_s / 60)) min $((total_s % 60)) s; walcount $wc_version at $commit. Every ratio is against a baseline measured in this run, on this machine, on the same data.

| machine | |
|---|---|
| CPUs | $(nproc) ($cpu_model) |
| memory | $mem (free -h) |
| PostgreSQL | $pg_version, wal2json $w2j_version |
| server settings | fsync on, synchronous_commit on, shared_buffers 1GB, max_wal_size 32GB, checkpoint_timeout 60min, autovacuum off (VACUUM before each writer run), others default |
| walcount | defaults (batch.max_changes 10000, batch.max_delay 200ms, batch.max_keys 100000), apply.workers $(echo "$workers" | sed 's/ /, /g'), checkpoint.interval 1h (no sweep mid-scenario) |
| load average (1/5/15 min) | start $load_start; at scenario 3 $load3, 2 $load2, 4 $load4, 1+5 $load1; end $load_end |
| this run | $(this_run) |
| data | $users users, $tracks tracks ($hot hot), $playlists playlists, $data_rows seeded source rows, an aggregate row per user/track/playlist; loaded in $((data_ms / 1000)) s; \`walcount init\` $init_ms ms |

The machine is shared: other sessions' tests, fuzzers and soak loops ran during this run (the load averages above, on $(nproc) CPUs), so absolute figures move from run to run and the ratios compare runs made minutes apart; scenario 2 alternates its setups for that reason.

### Goals

| # | goal | measured | baseline (same run) | ratio | |
|---|---|---:|---:|---:|---|
EOT
	if want 1; then
		cat <<EOT
| 1 | walcount applies a backlog at >= 0.95x the decode limit | $s1_wc_rate changes/s | pg_recvlogical drain $s1_dr_rate changes/s | $s1_ratio | **$s1_goal** |
EOT
	else
		not_run 1 "walcount applies a backlog at >= 0.95x the decode limit"
	fi
	if want 2; then
		hot_goal_rows
	else
		not_run 2 "writers with walcount consuming, and walcount keeping up"
	fi
	if want 3; then
		cat <<EOT
| 3 | p99 commit -> visible < 100 ms at $lag_rate changes/s | histogram p99 $l_p99 ms (${l_le100}% of $l_n transactions <= 100 ms); probe p99 $lp_p99 ms | goal 100 ms | $(ratio "$l_p99" 100) (histogram), $(ratio "$lp_p99" 100) (probe) | **$l_goal** |
EOT
	else
		not_run 3 "p99 commit -> visible < 100 ms at $lag_rate changes/s"
	fi
	if want 4; then
		cat <<EOT
| 4 | peak RSS < 64 MB and flat over $(echo "$mem_sizes" | sed 's/ /, /g')-row transactions | max $(mb "$mem_max") MB | 10k-row transaction $(mb "$mem_first") MB | $(ratio "$mem_max" "$mem_first") | **$mem_goal** |
EOT
	else
		not_run 4 "peak RSS < 64 MB and flat over the transaction sizes"
	fi
	if want 5; then
		cat <<EOT
| 5 | backlog throughput flat over sizes (>= 0.9x of the 100k round) | lowest $scale_min x | 100k round $r100 changes/s | $scale_min | **$scale_goal** |
EOT
	else
		not_run 5 "backlog throughput flat over sizes (>= 0.9x of the 100k round)"
	fi
	echo "| 6 | reconcile | see \"## Reconcile\" (make bench-reconcile) | | | |"
	if want 1; then
		cat <<EOT

### 1. Throughput vs the decode limit ($s1_size-change backlog)

The backlog: bench/suite_gen.sql, transactions of 10 changes (an indexer block: 5 inserts of new reposts/saves/follows, 5 in-place toggles of is_delete with a new txhash), uniform over users and tracks (no hot keys: each change moves ~2 aggregate rows of its own, the worst case for walcount's coalescing), written by two sessions with walcount stopped, after walcount's slot and the drain slot were put at the same position ($s1_gap bytes of WAL apart; walcount's restart_lsn moved up to it). $s1_changes changes (pg_stat_user_tables; walcount counted $s1_mch), $s1_wal bytes of WAL (REPLICA IDENTITY FULL), then a CHECKPOINT. Drain (baseline): \`pg_recvlogical --start --no-loop --endpos=<WAL end> -f /dev/null\` with walcount's options, read from src/stream.c: \`$wc_opts\`. walcount: from \`walcount run\` exec until the count of an end marker (the backlog's last transaction) is visible, start-up included ($s1_start ms to "stream: started").

| | wall (median) | passes | changes/s | walsender CPU | consumer CPU | apply backend CPU | ratio |
|---|---:|---|---:|---:|---:|---:|---:|
| pg_recvlogical drain (baseline) | $(secs "$s1_dr_ms") s | $s1_dr_list s | $s1_dr_rate | $s1_dr_ws s | $s1_dr_cl s | - | 1.00 |
| walcount | $(secs "$s1_wc_ms") s | $s1_wc_list s | $s1_wc_rate | $s1_ws_cpu s | $s1_wc_cpu s | $s1_be_cpu s | **$s1_ratio** |

Passes in the order drain, walcount, drain, walcount$([ -z "$wrest" ] || echo " (with the other apply.workers values' passes between them: see \"By apply.workers\" below)"); the second walcount pass reads the same backlog from a third slot created with the others (it counts it a second time; exactness is checked on the first). CPU columns: the first pass of each (/proc: the walsender's, pg_recvlogical's or walcount's, and walcount's apply backend's user + system time).

Where walcount's time goes (first pass): $s1_batches batches, ~$(( s1_changes / (s1_batches > 0 ? s1_batches : 1) )) changes each. walcount sends a batch and keeps reading and decoding the stream while the server applies it; in a backlog a batch grows to batch.max_changes before it is sent. The batches' statements took $(secs "$s1_bsum") s of the $(secs "$s1_wc_ms_1") s wall, send to commit, overlapped with reading (walcount_batch_duration_seconds_sum; both passes: $s1_bsum_list s). CPU in that pass: walsender $s1_ws_cpu + walcount $s1_wc_cpu + apply backend $s1_be_cpu = $s1_cpu_wc s, against the drain's $s1_dr_ws + $s1_dr_cl = $s1_cpu_dr s. $s1_bound_text Applying wrote $s1_own bytes of WAL ($(awk -v a="$s1_own" -v b="$s1_wal" 'BEGIN { printf "%.2f", a / b }')x the backlog's: each of the ~2 rows per change is a new tuple version, and every page's first change after the checkpoint a full-page image), which walcount's own walsender must decode afterwards as well.

EOT
		[ -z "$wrest" ] || s1_workers
		if [ -n "$profiled" ]; then
			cat <<EOT
#### Profile: walcount applying the same backlog

\`perf record -a -F 999\` for $prof_s s while a second \`walcount run\` (slot walcount_prof, created with the drain slot, its progress row at the same position) applied the same backlog, plus \`perf record --call-graph dwarf\` of that walcount process. Share of all samples on the machine ($(nproc) CPUs): walsender $ps_ws%, apply backend $ps_be%, walcount $ps_wc%, idle $idle_share%, other processes $ps_other%.

walcount by library: $(dso_line "$p_wc").

| walcount: self | library | symbol |
|---:|---|---|
$(sym_rows "$p_wc" 12)

| walcount: with callees | self | function |
|---:|---:|---|
$(children_rows "$tmp/perf-walcount-children.txt" 16)

Apply backend by library: $(dso_line "$p_be").

| apply backend: self | library | symbol |
|---:|---|---|
$(sym_rows "$p_be" 12)

Walsender by library: $(dso_line "$p_ws").

| walsender: self | library | symbol |
|---:|---|---|
$(sym_rows "$p_ws" 12)

postgres, libjansson and wal2json.so are stripped: only their exported functions have names, the rest counts as "unresolved" per library.

EOT
		else
			printf '%s\n\n' "Profile: not taken (perf was not on PATH)."
		fi
		cat <<EOT
#### What wal2json options and the replica identity save in the walsender

Drains of the $opt_size-change backlog of that round from slots created together (the same WAL), $opt_reps of each, interleaved; walsender CPU from the postmaster's reaped-children time.

| options | changes | wall (median) | changes/s | walsender CPU (median) | runs: wall / CPU s | ratio to walcount's options: wall, CPU |
|---|---:|---:|---:|---:|---|---:|
EOT
		for kind in base types oids; do
			case $kind in
			base) name="walcount's (include-types 0)" ;;
			types) name="include-types 1 (wal2json's default)" ;;
			oids) name="include-types 1 + include-type-oids 1" ;;
			esac
			on=$(awk -v k="$kind" '$2 == k { print $5; exit }' "$tmp/options.txt")
			oms=$(opt_med "$kind" 3) ocpu=$(opt_med "$kind" 4)
			runs=$(awk -v k="$kind" '$2 == k { printf "%s%.2f / %s", (n++ ? ", " : ""), $3 / 1000, $4 }' "$tmp/options.txt")
			echo "| $name | $on | $(secs "$oms") s | $(rate "$on" "$oms") | $ocpu s | $runs | $(ratio "$oms" "$ob_ms"), $(ratio "$ocpu" "$ob_cpu") |"
		done
		cat <<EOT

Column-level filtering: wal2json $w2j_version has no column filter (its options are include-*, filter-tables/add-tables, filter-msg-prefixes/add-msg-prefixes, filter-origins, actions, format-version, pretty-print, write-in-chunks), and PostgreSQL 15's column lists are pgoutput's. What narrows the columns decoded is the replica identity: with \`REPLICA IDENTITY USING INDEX\` on (key columns, txhash, is_current, is_delete), which walcount accepts, an UPDATE's old image carries 6 of the 11 columns. Same generator and size as the FULL round of $ri_size, a backlog of its own (so not the same WAL):

| replica identity | changes | WAL | drain | drain changes/s | drain walsender CPU | walcount | walcount changes/s |
|---|---:|---:|---:|---:|---:|---:|---:|
| FULL (baseline) | $fr_n | $fr_wal B | $(secs "$fr_dr") s | $(rate "$fr_n" "$fr_dr") | $fr_ws s | $(secs "$fr_wc") s | $(rate "$fr_n" "$fr_wc") |
| USING INDEX | $ri_n | $ri_wal B | $(secs "$ri_dr") s | $(rate "$ri_n" "$ri_dr") | $ri_ws s | $(secs "$ri_wc") s | $(rate "$ri_n" "$ri_wc") |
| ratio | | $(ratio "$ri_wal" "$fr_wal") | $(ratio "$ri_dr" "$fr_dr") | | $(ratio "$ri_ws" "$fr_ws") | $(ratio "$ri_wc" "$fr_wc") | |

walcount with the identity index: $ri_exact. The index adds a unique-index insert to every write (its WAL is in the WAL column).
EOT
	fi
	if want 2; then
		hot_section
	fi
	if want 3; then
		cat <<EOT

### 3. Lag at a steady $lag_rate changes/s

pgbench -R $((lag_rate / 4)) -c 16 -j 2 for $lag_s s after a $lag_warm s warm-up (the first seconds after the preceding CHECKPOINT write a full-page image per first-touched page), bench/suite_steady.pgbench: transactions of 4 upserts in place (2 reposts, 1 save, 1 follow, uniform; one change per transaction at $lag_rate tx/s is more than 2 CPUs commit with fsync while walcount runs), so $lag_rate changes/s; achieved $l_tps tx/s (pgbench's schedule lag: ${l_sched:-n/a}). walcount with its default batch settings. Alongside, the probe (bench/reconcile_probe.sql) toggles its own repost, commits and polls its track's count every 2 ms.

| commit -> aggregate visible | value | goal | ratio to goal |
|---|---:|---:|---:|
| histogram p50 (walcount_commit_to_apply_seconds: commit timestamp -> batch committed, $l_n transactions) | $l_p50 ms | | |
| histogram p99 (interpolated in its bucket) | $l_p99 ms | < 100 ms | $(ratio "$l_p99" 100) |
| histogram: share <= 100 ms (exact bucket count) | ${l_le100}% | >= 99% | |
| histogram: highest non-empty bucket | <= $l_top s | | |
| histogram mean | $l_mean ms | | |
| of which applying: batch statement time p50 / p99 / mean (walcount_batch_duration_seconds, $lb_n batches) | $lb_p50 / $lb_p99 / $lb_mean ms | | |
| probe p50 ($lp_n samples, $lp_unseen unseen) | $lp_p50 ms | | |
| probe p99 | $lp_p99 ms | < 100 ms | $(ratio "$lp_p99" 100) |
| probe max | $lp_max ms | | |

Lag in WAL bytes: median $ll_first B in the first third, $ll_last B in the last third, max $ll_max B ($ll_n samples); after the load stopped, the end marker was visible in $l_catchup_ms ms.
EOT
		[ -z "$wrest" ] || lag_workers
	fi
	if want 4; then
		cat <<EOT

### 4. Memory: peak RSS applying one transaction

Each transaction: one \`INSERT ... ON CONFLICT DO UPDATE\` of n reposts (bench.big_txn), each a distinct (user, track) pair spread over all users and tracks, so it moves ~n track rows and min(n, $users) user rows; walcount (a fresh process per size, default batch.max_keys 100000) applies it in parts. Peak RSS: VmHWM from /proc.

| rows in the transaction | peak RSS (VmHWM) | idle RSS before it | ratio to 10k | apply time | batches |
|---:|---:|---:|---:|---:|---:|
EOT
		while read -r n idle peak rss g a b; do
			echo "| $n | $(mb "$peak") MB | $(mb "$idle") MB | $(ratio "$peak" "$mem_first") | $(secs "$a") s | $b |"
		done <"$tmp/mem.txt"
		[ -z "$wrest" ] || mem_workers
	fi
	if want 5; then
		cat <<EOT

### 5. Scaling: backlog size

Scenario 1 at each size, each a fresh backlog drained and applied from the same WAL. Flatness is against the 100k round; the 10k round is mostly fixed costs (start-up, the first batches' full-page images after the checkpoint).

| backlog | changes | WAL | drain changes/s | walcount changes/s | walcount / drain | walcount / 100k round | walcount peak RSS | apply statements | walcount's own WAL | exact |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|
EOT
		while read -r label n ch mch wal g dr dws dcl wcms st wcc wsc bec bat bs pk gap own rest; do
			case $label in identity) continue ;; esac
			wr=$(rate "$ch" "$wcms")
			echo "| $label | $ch | $wal B | $(rate "$ch" "$dr") | $wr | $(ratio "$dr" "$wcms") | $(ratio "$wr" "$r100") | $(mb "$pk") MB | $bat batches, $(secs "$bs") s | $own B | $rest |"
		done <"$tmp/rounds.txt"
		cat <<EOT

"exact": over each round, every stream-maintained column's aggregate sum moved by exactly as much as its active source rows (bench.sums()).
EOT
		[ -z "$wrest" ] || scale_workers
		if [ "$mode" = full ]; then
			case " $sizes " in
			*" 10000000 "*) ;;
			*) echo
			   echo "The 10M round was left out of this run (BENCH_SIZES). At this run's rates it takes about $(awk -v g="$(row "$s1_size" | awk '{ print $6 }')" -v d="$s1_dr_ms" -v w="$s1_wc_ms" -v n="$s1_size" 'BEGIN { printf "%.0f", (g + d + w) * 10000000 / n / 60000 }') min (generating, draining and applying 10M changes)." ;;
			esac
		fi
	fi
} >"$section"

if [ ! -f "$results" ]; then
	cat >"$results" <<EOF
# walcount benchmarks

Machine: $(nproc) CPUs ($cpu_model), $mem memory (free -h), PostgreSQL $pg_version, $(uname -sr); first written $(date -u '+%Y-%m-%d').
EOF
fi
# Replace this mode's "## Suite: ..." section (up to the next "## ") or add
# it before "## Reconcile" (or at the end).
head="## $section_name"
own=0
grep -qxF "$head" "$results" && own=1
awk -v section="$section" -v head="$head" -v own="$own" '
	function emit(   line) { while ((getline line < section) > 0) print line; close(section); done = 1 }
	/^## / {
		if (skip) { skip = 0; print "" }
		if ($0 == head) { emit(); skip = 1; next }
		if ($0 == "## Reconcile" && !own && !done) { emit(); print "" }
	}
	!skip { print }
	END { if (!done) { print ""; emit() } }' "$results" >"$tmp/results.md.new"
mv "$tmp/results.md.new" "$results"
cat "$section"
say "done in $total_s s"
