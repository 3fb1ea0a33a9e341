#!/bin/sh
# pg-local.sh: a project-local PostgreSQL 15 cluster for `make run`, the tests
# and the benchmarks, set up for logical decoding with wal2json.
#
#   pg-local.sh start DIR PORT [name=value ...]  create (once) and start on
#                                                  PORT; a running one is kept
#                                                  (refused on another port)
#   pg-local.sh port DIR                           the running server's port
#   pg-local.sh restart DIR                        fast restart
#   pg-local.sh stop DIR                           fast stop
#
# The server listens on 127.0.0.1:PORT and on a socket in DIR, trusting
# local connections (a throwaway cluster, never exposed). As root it runs as
# the postgres user, since PostgreSQL refuses to run as root.
set -eu

bin=/usr/lib/postgresql/15/bin
cmd=$1 dir=$2
shift 2

as_owner() {
	if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# The running server's port (postmaster.pid's fourth line).
running_port() {
	sed -n 4p "$dir/data/postmaster.pid"
}

create() {
	mkdir -p "$dir"
	[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"
	chmod 700 "$dir"
	as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log"
	# output_plugin_libraries exists from 15.19; an older server refuses to
	# start with it set, and then allows every plugin anyway.
	plugins=""
	if as_owner "$bin/postgres" --describe-config | grep "^output_plugin_libraries" >/dev/null; then
		plugins="output_plugin_libraries = 'pgoutput, test_decoding, wal2json'"
	fi
	cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
wal_level = logical
$plugins
max_replication_slots = 20
max_wal_senders = 20
# For tests that leave a prepared transaction in the slot's way.
max_prepared_transactions = 10
logging_collector = off
CONF
	for kv in "$@"; do echo "$kv" | sed 's/=/ = /' >>"$dir/data/postgresql.conf"; done
}

case "$cmd" in
start)
	port=$1; shift
	[ -f "$dir/data/PG_VERSION" ] || create "$@"
	# `make run` after a Ctrl-C finds its server still up: kept, when it
	# listens where it is asked to.
	if as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
		running=$(running_port)
		[ "$running" = "$port" ] && exit 0
		echo "pg-local: the server in $dir runs on port $running, not $port; stop it first (make stop)" >&2
		exit 1
	fi
	# The port is the one asked for now, not the one of the first start.
	as_owner sed -i "s/^port = .*/port = $port/" "$dir/data/postgresql.conf"
	as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null
	;;
port)
	running_port
	;;
restart)
	as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -m fast -w -t 60 restart >/dev/null
	;;
stop)
	as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null
	;;
*)
	echo "usage: pg-local.sh start DIR PORT [name=value ...] | port DIR | restart DIR | stop DIR" >&2
	exit 2
	;;
esac
