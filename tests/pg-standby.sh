#!/bin/sh
# pg-standby.sh: a physical standby of a scripts/pg-local.sh cluster, and the
# operations a failover test needs (the failover integration tests).
#
#   pg-standby.sh create DIR PORT PRIMARY_PORT  pg_basebackup of the primary
#                                               into DIR, started as a hot
#                                               standby on PORT
#   pg-standby.sh detach DIR PORT  stop streaming from the primary (it lags)
#   pg-standby.sh promote DIR    promote, waiting until it accepts writes
#   pg-standby.sh kill DIR       immediate shutdown (a crash, as kill -9)
#   pg-standby.sh start DIR      start again (crash recovery after kill)
#   pg-standby.sh stop DIR       fast stop
set -eu

bin=/usr/lib/postgresql/15/bin
cmd=$1 dir=$2

as_owner() {
	if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

ctl() { as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 "$@" >/dev/null; }

case "$cmd" in
create)
	port=$3 primary_port=$4
	rm -rf "$dir"
	mkdir -p "$dir"
	[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"
	chmod 700 "$dir"
	# -R writes standby.signal and primary_conninfo; the copied
	# postgresql.conf names the primary's port and socket, overridden here.
	as_owner "$bin/pg_basebackup" -h 127.0.0.1 -p "$primary_port" -U postgres -D "$dir/data" -R -X stream -c fast
	cat >>"$dir/data/postgresql.conf" <<CONF
port = $port
unix_socket_directories = '$dir'
hot_standby = on
CONF
	ctl start
	;;
detach)
	as_owner "$bin/psql" -h "$dir" -p "$3" -U postgres -d postgres -q -v ON_ERROR_STOP=1 \
		-c "ALTER SYSTEM SET primary_conninfo = ''" -c "SELECT pg_reload_conf()" >/dev/null
	;;
promote) ctl promote ;;
kill) ctl -m immediate stop ;;
start) ctl start ;;
stop) ctl -m fast stop ;;
*)
	echo "usage: pg-standby.sh create DIR PORT PRIMARY_PORT | detach DIR PORT | promote|kill|start|stop DIR" >&2
	exit 2
	;;
esac
