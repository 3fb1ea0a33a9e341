# bench/lib.sh: what bench/suite.sh and bench/reconcile.sh share, sourced
# by both after they set top, tmp, pgdir and define say and die:
#   ports          port and metrics_addr: BENCH_PORT, BENCH_METRICS or two
#                  free ones (scripts/free-port.sh)
#   cluster_start  a fresh scripts/pg-local.sh cluster in $pgdir
#   wc_launch, wc_await, wc_stop   one `walcount run` ($wc_bin, $wc_pid)
#   bench_cleanup  the EXIT trap: background pids ($bg_pids), walcount,
#                  then the server
#   median, ratio, hist_stats      figures
# The sourcing script sets top, tmp, pgdir and wc_bin and reads port and
# metrics_addr.
# shellcheck shell=sh disable=SC2154,SC2034

bench_free=$(sh "$top/scripts/free-port.sh" 2) || exit 1
port=${BENCH_PORT:-$bench_free}
metrics_addr=${BENCH_METRICS:-127.0.0.1:$((bench_free + 1))}

wc_pid="" bg_pids="" server=""

# Stops everything started here, by its pid, then the server; exits with
# the script's status ($1, or the status the trap was entered with).
bench_cleanup() {
	rc=${1:-$?}
	trap - EXIT INT TERM
	for p in $bg_pids; do
		kill "$p" 2>/dev/null || true
	done
	if [ -n "$wc_pid" ]; then
		kill -TERM "$wc_pid" 2>/dev/null || true
		wait "$wc_pid" 2>/dev/null || true
	fi
	if [ -n "$server" ]; then
		sh "$top/scripts/pg-local.sh" stop "$pgdir" 2>/dev/null || true
	fi
	[ "$rc" -eq 0 ] || say "failed (exit $rc); logs in $tmp"
	exit "$rc"
}

# cluster_start [name=value ...]: a new cluster in $pgdir on $port; a server
# left running there by an interrupted earlier run is stopped first.
cluster_start() {
	mkdir -p "$tmp"
	if [ -f "$pgdir/data/postmaster.pid" ]; then
		sh "$top/scripts/pg-local.sh" stop "$pgdir" 2>/dev/null || true
	fi
	rm -rf "$pgdir"
	server=1
	sh "$top/scripts/pg-local.sh" start "$pgdir" "$port" "$@"
}

# wc_launch LOG [ARG ...]: `$wc_bin run ARG...` in the background, its
# output in LOG.
wc_launch() {
	wc_log=$1
	shift
	# Emptied here, not only by the background job's redirection: a log
	# left by an earlier run must not satisfy wc_await before this
	# process writes.
	: >"$wc_log"
	"$wc_bin" run "$@" >"$wc_log" 2>&1 &
	wc_pid=$!
}

# wc_await TRIES PAUSE WHAT CMD...: polls CMD every PAUSE seconds until it
# succeeds; dies with WHAT after TRIES polls, or with walcount's log when it
# exits.
wc_await() {
	# Global names of their own: callers keep `local` variables (dash
	# scopes them dynamically).
	wc_tries=$1 wc_pause=$2 wc_what=$3
	shift 3
	wc_polls=0
	until "$@"; do
		kill -0 "$wc_pid" 2>/dev/null || { cat "$wc_log" >&2; wc_pid=""; die "walcount run exited"; }
		wc_polls=$((wc_polls + 1))
		[ "$wc_polls" -lt "$wc_tries" ] || die "$wc_what"
		sleep "$wc_pause"
	done
}

# wc_stop: SIGTERM, and walcount must exit with 0.
wc_stop() {
	wc_rc=0
	kill -TERM "$wc_pid"
	wait "$wc_pid" || wc_rc=$?
	[ "$wc_rc" -eq 0 ] || { wc_pid=""; die "walcount run exited with $wc_rc"; }
	wc_pid=""
}

median() { sort -n | awk '{ a[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print a[(NR + 1) / 2]; else printf "%.10g\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a != "n/a") printf "%.2f", a / b; else print "n/a" }'; }

# hist_stats BEFORE AFTER [NAME [MEAN_FORMAT]]: the deltas of histogram NAME
# (default walcount_commit_to_apply_seconds) between two /metrics snapshots,
# as "n p50_ms p99_ms mean_ms share<=100ms(%) highest_bucket"; quantiles
# interpolated within the bucket holding the rank, as Prometheus'
# histogram_quantile does (in the +Inf bucket: the largest finite bound);
# the mean printed with MEAN_FORMAT (default %.1f).
hist_stats() {
	awk -v name="${3:-walcount_commit_to_apply_seconds}" -v meanfmt="${4:-%.1f}" '
		function le(line) { sub(/.*le="/, "", line); sub(/".*/, "", line); return line }
		FNR == 1 { f++ }
		index($0, name "_bucket{") == 1 { k = le($1); v[f, k] = $2; if (f == 1) { order[++nb] = k } }
		index($0, name "_sum ") == 1 { s[f] = $2 }
		index($0, name "_count ") == 1 { c[f] = $2 }
		function q(p,   rank, i, prev, prevc, b, d) {
			rank = p * total; prev = 0; prevc = 0
			for (i = 1; i <= nb; i++) {
				d = v[2, order[i]] - v[1, order[i]]
				if (d >= rank) {
					if (order[i] == "+Inf") return prev * 1000
					b = order[i] + 0
					return (prev + (b - prev) * (rank - prevc) / (d - prevc)) * 1000
				}
				if (order[i] != "+Inf") prev = order[i] + 0
				prevc = d
			}
			return prev * 1000
		}
		END {
			total = c[2] - c[1]
			if (total <= 0) { print 0, "n/a", "n/a", "n/a", "n/a", "n/a"; exit }
			top = "n/a"; prevd = 0
			for (i = 1; i <= nb; i++) { d = v[2, order[i]] - v[1, order[i]]; if (d > prevd) top = order[i]; prevd = d }
			le100 = v[2, "0.1"] - v[1, "0.1"]
			printf "%d %.0f %.0f " meanfmt " %.2f %s\n", total, q(0.5), q(0.99), (s[2] - s[1]) / total * 1000, le100 * 100 / total, top
		}' "$1" "$2"
}
