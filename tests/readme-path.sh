#!/bin/sh
# readme-path.sh: the README's set-up section, followed as a new user would,
# on a cluster of its own (a free port and a data directory under a
# temporary directory, never .pgdata, 5499 or 9187):
#   - `make run` in the background, in a process group of its own so a
#     Ctrl-C can be sent as a terminal sends it (to the whole group);
#   - the commands of the README's block marked
#     "<!-- readme-path: while make run runs" exactly as written there, but
#     for the ports (5499 and 9187 become this run's), each to exit 0, with
#     config.yaml (ports changed the same way) as the only configuration;
#   - what the section promises around them: walcount's PID in its first
#     line, a progress line within a few seconds, the counts moved,
#     heartbeats not counted as batches;
#   - a Ctrl-C: walcount stops cleanly, make reports the interrupt (130),
#     the server keeps running;
#   - the block marked "<!-- readme-path: after make run stopped", each
#     command to exit 0, `make stop` last;
#   - `make run` again (starts the server again), ended by SIGTERM to the
#     PID walcount logged: exit 0; a `make run` whose walcount fails: not 0;
#   - every package scripts/deps.sh installs is named in the README.
# The commands are read from README.md, so the README and this test cannot
# drift apart. Ends with "readme-path: N passed, M failed".
#   README_PATH_PORT  first of the two ports it uses (default: a free pair)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
# Run from make test: the make below is no sub-make of that one.
unset MAKEFLAGS MFLAGS MAKELEVEL
port=${README_PATH_PORT:-$(sh scripts/free-port.sh 2)} || exit 1
mport=$((port + 1))
tmp=$(mktemp -d)
chmod 755 "$tmp"
pgdir="$tmp/pgdata"

. tests/checks.sh

runpid=""
cleanup() {
	[ -n "$runpid" ] && kill -s TERM -- "-$runpid" 2>/dev/null && wait "$runpid" 2>/dev/null
	[ -f "$pgdir/data/postmaster.pid" ] && sh scripts/pg-local.sh stop "$pgdir" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# The make targets learn this run's cluster from WALCOUNT_LOCAL_*; walcount
# itself reads config.yaml, here the repository's with this run's ports.
sed -e "s/5499/$port/g" -e "s/9187/$mport/g" config.yaml >"$tmp/config.yaml"
export WALCOUNT_CONFIG="$tmp/config.yaml"
local_make() { env WALCOUNT_LOCAL_PORT="$port" WALCOUNT_LOCAL_DIR="$pgdir" make --no-print-directory "$@"; }
sql() { psql -X -qAt -h 127.0.0.1 -p "$port" -U postgres -d audius -c "$1" 2>&1; }

# The commands of the README block after marker $1, ports changed.
block() {
	awk -v m="<!-- readme-path: $1" '
		index($0, m) == 1 { on = 1; next }
		on && /^```sh/ { inside = 1; next }
		inside && /^```/ { exit }
		inside && NF { print }' README.md | sed -e "s/5499/$port/g" -e "s/9187/$mport/g"
}

# run_block MARKER: each command of the block, which must exit 0; make
# commands get this run's cluster.
run_block() {
	cmds=$(block "$1")
	if [ -z "$cmds" ]; then
		bad "README has a block marked '$1'"
		return
	fi
	printf '%s\n' "$cmds" | {
		n=0
		while IFS= read -r cmd; do
			n=$((n + 1))
			case "$cmd" in
			make\ *) out=$(WALCOUNT_LOCAL_PORT="$port" WALCOUNT_LOCAL_DIR="$pgdir" sh -c "$cmd" 2>&1 </dev/null) ;;
			*) out=$(sh -c "$cmd" 2>&1 </dev/null) ;;
			esac
			rc=$?
			printf '%s\n' "$out" >"$tmp/block-$n.out"
			if [ "$rc" -eq 0 ]; then echo "ok   $cmd"; else echo "FAIL $cmd (exit $rc)" && printf '%s\n' "$out" | tail -n 5 | sed 's/^/       /'; fi
		done
	} >"$tmp/block.txt"
	cat "$tmp/block.txt"
	passed=$((passed + $(grep -c '^ok ' "$tmp/block.txt")))
	failed=$((failed + $(grep -c '^FAIL ' "$tmp/block.txt")))
}

# wait_for SECONDS CMD...: until CMD succeeds; false when it never did.
wait_for() {
	end=$(($(date +%s) + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -ge "$end" ] && return 1
		sleep 0.2
	done
}
streaming() { grep -q 'stream: started' "$tmp/run.log"; }
# Streaming, or make has ended: no use waiting longer.
started_or_ended() { streaming || ! kill -0 "$runpid" 2>/dev/null; }
metric() { curl -s "127.0.0.1:$mport/metrics" | awk -v n="$1" '$1 == n { print $2 }'; }

# start_make_run [NAME=VALUE ...]: `make run` in the background as a
# terminal runs it: in a process group of its own (the group a Ctrl-C
# reaches) and with SIGINT not ignored (sh ignores it in background jobs;
# perl is in every Debian). runpid is make's PID, the group's ID.
# shellcheck disable=SC2016
start_make_run() {
	env WALCOUNT_LOCAL_PORT="$port" WALCOUNT_LOCAL_DIR="$pgdir" "$@" \
		perl -e 'setpgrp(0, 0); $SIG{INT} = "DEFAULT"; exec @ARGV or die "exec: $!\n"' \
		make --no-print-directory run >"$tmp/run.log" 2>&1 &
	runpid=$!
}
# stop_make_run SIGNAL TARGET: sends SIGNAL to TARGET ("-$runpid": the
# group), or nothing for SIGNAL "-", then waits for make; rc is its status.
stop_make_run() {
	[ "$1" = - ] || kill -s "$1" -- "$2" 2>/dev/null
	wait "$runpid"
	rc=$?
	runpid=""
}

# --- make run, and the second terminal ---------------------------------------

# The section, in the order a new user follows it; what needs walcount
# streaming is skipped when the first `make run` never got there.
readme_path() {
	# Heartbeats every second, for the batch count below.
	start_make_run WALCOUNT_SLOT_HEARTBEAT_INTERVAL=1s
	wait_for 120 started_or_ended
	if ! streaming; then
		bad "make run: walcount streams within 120 s" "$(tail -n 20 "$tmp/run.log")"
		stop_make_run TERM "-$runpid"
		return
	fi
	ok "make run: walcount streams (local server on $port, metrics on $mport)"
	pid=$(sed -n 's/.*walcount [^ ]* started: pid \([0-9]*\),.*/\1/p' "$tmp/run.log" | head -n 1)
	early=$(sed -n 's/^walcount: starting walcount, pid \([0-9]*\)$/\1/p' "$tmp/run.log" | head -n 1)
	if [ -n "$pid" ] && [ "$early" = "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = walcount ]; then
		ok "make run prints walcount's PID first, walcount logs it at start ($pid)"
	else
		bad "walcount logs its own PID at start" "$(head -n 3 "$tmp/run.log")"
	fi

	t0=$(date +%s)
	run_block "while make run runs"
	if wait_for 10 sh -c "[ \"\$(psql -X -qAt -h 127.0.0.1 -p $port -U postgres -d audius -c 'SELECT repost_count FROM aggregate_track WHERE track_id = 10')\" = 0 ]"; then
		ok "the repost and the un-repost moved track 10's repost_count to 1 and back to 0"
	else
		bad "track 10's repost_count is 0 after the repost and the un-repost" "$(sql 'SELECT * FROM aggregate_track WHERE track_id = 10')"
	fi
	if wait_for 5 grep -q 'progress: applied' "$tmp/run.log"; then
		# The line's own time against the block's start (whole seconds).
		at=$(grep -m1 'progress: applied' "$tmp/run.log" | cut -c1-19)
		secs=$(($(date -u -d "$at" +%s) - t0))
		if [ "$secs" -le 5 ]; then ok "first progress line ${secs} s after the first change"; else bad "first progress line within 5 s" "after $secs s"; fi
	else
		bad "a progress line within 5 s of the first change" "$(tail -n 5 "$tmp/run.log")"
	fi
	# walcount applied two transactions: heartbeats (one a second here) must
	# not add batches.
	b0=$(metric walcount_batches_total)
	sleep 3
	b1=$(metric walcount_batches_total)
	if [ -n "$b0" ] && [ "$b0" = "$b1" ] && [ "$b1" -le 2 ]; then
		ok "heartbeats are not counted as batches (walcount_batches_total $b1)"
	else
		bad "heartbeats are not counted as batches" "walcount_batches_total $b0, 3 s later $b1 (two transactions applied)"
	fi

# --- Ctrl-C ------------------------------------------------------------------

	stop_make_run INT "-$runpid"
	if grep -q 'stopped: applied through' "$tmp/run.log" && [ "$rc" = 130 ]; then
		ok "Ctrl-C: walcount stopped cleanly, make reported the interrupt (130)"
	else
		bad "Ctrl-C: walcount stops cleanly and make exits 130" "exit $rc; $(tail -n 3 "$tmp/run.log")"
	fi
	if [ "$(sql 'SELECT 1')" = 1 ]; then ok "the server keeps running after Ctrl-C"; else bad "the server keeps running after Ctrl-C"; fi

	run_block "after make run stopped"
	if [ -f "$pgdir/data/postmaster.pid" ]; then bad "make stop stopped the server"; else ok "make stop stopped the server"; fi

# --- make run again: SIGTERM, and a failing walcount --------------------------

	start_make_run
	wait_for 120 started_or_ended
	if streaming; then
		pid=$(sed -n 's/.*walcount [^ ]* started: pid \([0-9]*\),.*/\1/p' "$tmp/run.log" | head -n 1)
		stop_make_run TERM "${pid:-0}"
		if [ "$rc" = 0 ]; then ok "make run again, SIGTERM to walcount's PID: exit 0"; else bad "make run exits 0 after SIGTERM to walcount" "exit $rc; $(tail -n 3 "$tmp/run.log")"; fi
	else
		bad "make run streams again after make stop" "$(tail -n 20 "$tmp/run.log")"
		stop_make_run TERM "-$runpid"
	fi
	start_make_run WALCOUNT_BATCH_MAX_CHANGES=0
	stop_make_run - -
	if [ "$rc" != 0 ] && grep -q 'batch.max_changes' "$tmp/run.log"; then
		ok "make run fails (exit $rc) when walcount does"
	else
		bad "make run fails when walcount does" "exit $rc; $(tail -n 3 "$tmp/run.log")"
	fi
	out=$(local_make stop 2>&1)
	if [ -f "$pgdir/data/postmaster.pid" ]; then bad "make stop" "$out"; else ok "make stop: $out"; fi
}
readme_path

# --- dependencies --------------------------------------------------------------

missing=""
for mode in run test fuzz bench; do
	for p in $(sh scripts/deps.sh --list "$mode"); do
		grep -q "\`$p\`" README.md || missing="$missing $p($mode)"
	done
done
if [ -z "$missing" ]; then ok "the README names every package scripts/deps.sh installs"; else bad "the README names every package scripts/deps.sh installs" "missing:$missing"; fi

checks_summary readme-path
