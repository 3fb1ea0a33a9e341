#!/bin/sh
# bench/apply.sh (make bench-apply): the apply statement measured on its
# own, without walcount or a stream. bench/apply_bench.c sends batches of a
# realistic shape through several ways of sending sql/apply_batch.sql (and
# two study variants of it), one connection each, interleaved round by
# round on the same batches, and prints per variant the backend's CPU, the
# client's CPU and the wall time per 1M source changes, with ratios to the
# first variant (see apply_bench.c's header for the letters). Run while
# other work loads the machine, only the ratios within one run mean much.
#
# Starts its own PostgreSQL 15 (scripts/pg-local.sh, bench/tmp/apply-pg, a
# free port or BENCH_PORT; fsync and synchronous_commit on, autovacuum on
# as on a running system), loads the aggregate rows of bench/suite.sh's
# data (BENCH_USERS users, BENCH_TRACKS tracks, BENCH_PLAYLISTS playlists:
# every one has its aggregate row) and stops the server on exit. Prints the
# tables on stdout; writes nothing else.
#   BENCH_APPLY_VARIANTS  default "tpwum"
#   BENCH_APPLY_SHAPES    "SHAPE CHANGES ROUNDS BATCHES" per run, ';'
#                         between runs; default: the backlog's mix at 1,000
#                         and 5,000 changes a batch, and small batches of
#                         reposts only (the steady state's)
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
bench="$top/bench"
tmp="$bench/tmp"
pgdir="$tmp/apply-pg"
db=applybench
users=${BENCH_USERS:-100000}
tracks=${BENCH_TRACKS:-1000000}
playlists=${BENCH_PLAYLISTS:-10000}
variants=${BENCH_APPLY_VARIANTS:-tpwum}
shapes=${BENCH_APPLY_SHAPES:-"mixed 1000 30 10; mixed 5000 10 4; repost 200 30 25"}

say() { printf '%s\n' "bench: $*" >&2; }
die() { say "$*"; exit 1; }

for t in psql cc pg_config; do
	command -v "$t" >/dev/null || die "$t not found (scripts/deps.sh installs the PostgreSQL client and libpq)"
done
# shellcheck source=bench/lib.sh
. "$bench/lib.sh"
trap 'bench_cleanup "$?"' EXIT
trap 'exit 130' INT TERM
export PGHOST=127.0.0.1 PGPORT="$port" PGUSER=postgres PGDATABASE="$db"
export BENCH_USERS="$users" BENCH_TRACKS="$tracks" BENCH_PLAYLISTS="$playlists"
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

mkdir -p "$tmp"
driver="$tmp/apply_bench"
cc -O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -I"$(pg_config --includedir)" -o "$driver" \
	"$bench/apply_bench.c" -lpq
say "starting PostgreSQL on 127.0.0.1:$port ($pgdir)"
cluster_start fsync=on synchronous_commit=on shared_buffers=512MB max_wal_size=8GB
q -d postgres -c "CREATE DATABASE $db"
q -f "$top/sql/schema.sql"
q -f "$top/sql/state.sql"
say "data: aggregate rows of $users users, $tracks tracks, $playlists playlists"
q -v users="$users" -v tracks="$tracks" -v playlists="$playlists" <<'SQL'
INSERT INTO playlists (playlist_id, playlist_owner_id, is_album, is_private, is_current, is_delete, txhash)
SELECT n, 1 + n % :users, n % 4 = 0, false, true, false, md5('p' || n) FROM generate_series(1, :playlists) AS n;
INSERT INTO aggregate_user (user_id) SELECT generate_series(1, :users + 1);
INSERT INTO aggregate_track (track_id) SELECT generate_series(1, :tracks + 2);
INSERT INTO aggregate_playlist (playlist_id, is_album) SELECT playlist_id, is_album FROM playlists;
VACUUM ANALYZE;
SQL
# One warm-up round per shape, not printed: the first batches of a fresh
# table write every page's first image after the checkpoint.
echo "$shapes" | tr ';' '\n' | while read -r shape changes rounds batches; do
	[ -n "$shape" ] || continue
	"$driver" "host=127.0.0.1 port=$port user=postgres dbname=$db" "$top/sql/apply_batch.sql" \
		"$shape" "$changes" 1 "$batches" "$variants" >/dev/null
	"$driver" "host=127.0.0.1 port=$port user=postgres dbname=$db" "$top/sql/apply_batch.sql" \
		"$shape" "$changes" "$rounds" "$batches" "$variants"
	echo
done
