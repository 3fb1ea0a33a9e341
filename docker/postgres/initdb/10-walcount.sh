#!/bin/bash
# 10-walcount.sh: walcount's part of the database's first start. The
# official image's docker-entrypoint.sh runs it once, on an empty data
# directory, as the postgres user, against its temporary socket-only server
# (the real server starts after it):
#   1. sql/schema.sql  the Audius-shaped tables (a real deployment has them)
#   2. sql/roles.sql   the least-privilege walcount role
#   3. the walcount role's password, read from the walcount_password secret
#   4. pg_hba.conf lines that let walcount in over the compose network
# 1-3 run in one transaction. sql/ is the project's, mounted at /sql. To run
# this again, start from an empty volume: docker-compose down -v.
#
# Written to work whether the entrypoint runs it (executable) or sources it,
# so it only sets the options the entrypoint has anyway.
set -Eeo pipefail

walcount_sql=${WALCOUNT_SQL_DIR:-/sql}
walcount_pw=${WALCOUNT_PASSWORD_FILE:-/run/secrets/walcount_password}

for walcount_f in "$walcount_sql/schema.sql" "$walcount_sql/roles.sql" "$walcount_pw"; do
	if [ ! -r "$walcount_f" ]; then
		echo "10-walcount.sh: cannot read $walcount_f (./sql mounted at $walcount_sql? walcount_password secret given?)" >&2
		exit 1
	fi
done
if ! head -n 1 "$walcount_pw" | grep -q .; then
	echo "10-walcount.sh: $walcount_pw is empty; run scripts/make-secrets.sh" >&2
	exit 1
fi

# The temporary server listens on its socket only: like the entrypoint's
# own psql calls, ignore a PGHOST that names a TCP host (a socket directory
# is kept). The password goes from the file into a psql variable inside psql
# (a backquoted command), so it is on no command line; :'pw' quotes it.
case ${PGHOST:-} in
/*) ;;
*) PGHOST='' ;;
esac
echo "10-walcount.sh: loading schema.sql and roles.sql into $POSTGRES_DB, setting the walcount password"
PGHOST=$PGHOST PGHOSTADDR='' psql -v ON_ERROR_STOP=1 --no-psqlrc --no-password --quiet --single-transaction \
	--username "$POSTGRES_USER" --dbname "$POSTGRES_DB" --set=pw_file="$walcount_pw" \
	-f "$walcount_sql/schema.sql" -f "$walcount_sql/roles.sql" -f - <<'EOSQL'
\set pw `head -n 1 :'pw_file'`
ALTER ROLE walcount PASSWORD :'pw';
\unset pw
EOSQL

# pg_hba.conf is matched top down and the image's generated file ends with
# "host all all all scram-sha-256", so these go first. walcount's
# replication connections are logical (replication=database): PostgreSQL
# matches those by database name, like ordinary connections, never by the
# "replication" keyword, which admits physical replication only (a full
# base backup of the cluster). walcount never needs that, so there is no
# "host replication walcount" line: the role gets this database and nothing
# else.
walcount_hba="$PGDATA/pg_hba.conf"
{
	printf '%s\n' \
		'# walcount (docker/postgres/initdb/10-walcount.sh): its normal and its' \
		'# logical replication connections, to this database only.' \
		"host $POSTGRES_DB walcount all scram-sha-256" \
		'host all walcount all reject' \
		''
	cat "$walcount_hba"
} >"$walcount_hba.walcount"
chmod 600 "$walcount_hba.walcount"
mv "$walcount_hba.walcount" "$walcount_hba"
echo "10-walcount.sh: pg_hba.conf admits walcount to $POSTGRES_DB"
unset walcount_sql walcount_pw walcount_f walcount_hba
