#!/bin/sh
# run-local.sh (make run): starts the project-local PostgreSQL in .pgdata on
# port 5499, loads the Audius-shaped schema into database "audius" and runs
# walcount in the foreground. Ctrl-C stops walcount (it flushes first) and
# then the server.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
dir="$top/.pgdata" port=${WALCOUNT_LOCAL_PORT:-5499}

sh "$top/scripts/pg-local.sh" start "$dir" "$port"
trap 'sh "$top/scripts/pg-local.sh" stop "$dir"' EXIT
export PGHOST=127.0.0.1 PGPORT="$port" PGUSER=postgres
psql -qAt -d postgres -c "SELECT 1 FROM pg_database WHERE datname = 'audius'" | grep -q 1 ||
	psql -q -d postgres -c "CREATE DATABASE audius"
psql -q -v ON_ERROR_STOP=1 -d audius -f "$top/sql/schema.sql"

echo "walcount: PostgreSQL on 127.0.0.1:$port, database audius. In another terminal:"
echo "  psql -h 127.0.0.1 -p $port -U postgres audius"
export WALCOUNT_DATABASE_DSN="host=127.0.0.1 port=$port dbname=audius user=postgres"
trap "" INT TERM  # walcount handles them itself, then the EXIT trap stops the server
"$top/bin/walcount" run --config "$top/config.yaml" || true
