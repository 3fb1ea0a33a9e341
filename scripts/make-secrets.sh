#!/bin/sh
# make-secrets.sh [DIR]: writes the passwords docker-compose.yml hands to its
# containers as Docker secrets, DIR/postgres_password (the postgres
# superuser), DIR/walcount_password (the walcount role) and
# DIR/grafana_admin_password (Grafana's admin, monitoring profile), each 48 random
# hex characters from /dev/urandom. DIR defaults to ./secrets, which is
# gitignored. Existing files are kept: the database took its passwords on
# its first start, so new ones would no longer match (to change one, use
# ALTER ROLE and then edit the file).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$top/secrets}

umask 077
mkdir -p "$dir"
# The directory keeps other local users out. The files themselves must be
# readable inside the containers by uids that are not the owner's (postgres
# 999, walcount 10001, grafana 472): Compose bind-mounts them as they are.
chmod 700 "$dir"
for name in postgres_password walcount_password grafana_admin_password; do
	f="$dir/$name"
	if [ -s "$f" ]; then
		echo "make-secrets: keeping $f"
		continue
	fi
	od -An -v -N24 -tx1 /dev/urandom | tr -d ' \n' >"$f.tmp"
	echo >>"$f.tmp"
	chmod 644 "$f.tmp"
	mv "$f.tmp" "$f"
	echo "make-secrets: wrote $f"
done
