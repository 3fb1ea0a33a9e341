#!/bin/sh
# check-sql.sh FILE... : fails when an embedded sql/NAME.sql is not used,
# that is when no src/*.c names its symbol sql_NAME (see embed-sql.sh).
# Run by `make unit`, so SQL the binary never runs is not compiled in.
unused=0
for f in "$@"; do
	sym=sql_$(basename "$f" .sql | tr -c 'A-Za-z0-9\n' _)
	if ! grep -qw -- "$sym" src/*.c; then
		echo "check-sql: $f is embedded as $sym but no src/*.c uses it; use it, or list it in the Makefile's OPS_SQL" >&2
		unused=$((unused + 1))
	fi
done
[ "$unused" -eq 0 ] && echo "check-sql: all $# embedded SQL files are used"
