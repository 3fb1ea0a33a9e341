#!/bin/sh
# run-local.sh (make run): starts the project-local PostgreSQL in .pgdata on
# port 5499 (or reuses it when it runs already), loads the Audius-shaped
# schema into database "audius" and runs walcount in the foreground with
# config.yaml, whose DSN is this server: the README's commands in a second
# terminal read the same file. Ctrl-C stops walcount only (it applies and
# confirms its open batch first); the server keeps running for the commands
# meant for afterwards, until `make stop` (run-local.sh stop).
#   WALCOUNT_LOCAL_PORT  another port (walcount then gets it through
#                        WALCOUNT_DATABASE_DSN, printed for the other terminal)
#   WALCOUNT_LOCAL_DIR   another cluster directory (default: .pgdata)
# Exits with walcount's status: 0 after a clean stop, 1 when it failed.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${WALCOUNT_LOCAL_DIR:-$top/.pgdata} port=${WALCOUNT_LOCAL_PORT:-5499}
config=${WALCOUNT_CONFIG:-$top/config.yaml}
# Not configuration keys: walcount refuses WALCOUNT_* names it does not know.
unset WALCOUNT_LOCAL_DIR WALCOUNT_LOCAL_PORT

if [ "${1:-}" = stop ]; then
	if [ -f "$dir/data/postmaster.pid" ]; then
		running=$(sh "$top/scripts/pg-local.sh" port "$dir")
		sh "$top/scripts/pg-local.sh" stop "$dir"
		echo "walcount: PostgreSQL on 127.0.0.1:$running stopped ($dir kept; make run starts it again)"
	else
		echo "walcount: no local PostgreSQL running in $dir"
	fi
	exit 0
fi

sh "$top/scripts/pg-local.sh" start "$dir" "$port"
export PGHOST=127.0.0.1 PGPORT="$port" PGUSER=postgres
psql -qAt -d postgres -c "SELECT 1 FROM pg_database WHERE datname = 'audius'" | grep -q 1 ||
	psql -q -d postgres -c "CREATE DATABASE audius"
# Again on a reused server: its "already exists, skipping" notices are noise.
PGOPTIONS="-c client_min_messages=warning" psql -q -v ON_ERROR_STOP=1 -d audius -f "$top/sql/schema.sql"
unset PGHOST PGPORT PGUSER

echo "walcount: PostgreSQL on 127.0.0.1:$port, database audius, data in $dir"
if [ "$port" != 5499 ]; then
	export WALCOUNT_DATABASE_DSN="host=127.0.0.1 port=$port dbname=audius user=postgres"
	echo "walcount: in another terminal, first: export WALCOUNT_DATABASE_DSN='$WALCOUNT_DATABASE_DSN'"
fi
echo "walcount: in another terminal: bin/walcount status; Ctrl-C stops walcount, make stop the server"
# exec: walcount gets the signals itself and its exit status is make's; it
# keeps this shell's PID, known before a long initial load logs it.
echo "walcount: starting walcount, pid $$"
exec "$top/bin/walcount" run --config "$config"
