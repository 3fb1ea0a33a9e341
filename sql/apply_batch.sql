-- One batch as one statement, hence one transaction: the aggregate upserts
-- and the progress row commit together or not at all (design.md §5).
-- The progress row moves only from the position the batch started from
-- ($16..$18): when another consumer moved it meanwhile (two processes on
-- one slot), nothing is written and the statement returns 0, so a batch
-- can never be applied twice.
-- Deltas arrive as parallel arrays, one element per aggregate row, sorted by
-- key so concurrent writers lock rows in the same order. Every array is an
-- int8[] in binary form (apply.c prepares the statement once per
-- connection with these types); a key or delta that does not fit its int
-- column fails the batch with "integer out of range", as an overflowing
-- count does. apply.c numbers
-- the arrays from src/counters.c: per aggregate table in its order, the
-- keys then one array per stream column in the table's column order; a
-- column added there moves the numbers below.
--   $1 slot name, $2 progress lsn, $3 partial xid (NULL when none),
--   $4 changes applied of the partial transaction
--   $5 user ids; $6 repost, $7 track_save, $8 follower, $9 following deltas
--   $10 track ids; $11 repost, $12 save deltas
--   $13 playlist ids; $14 repost, $15 save deltas
--   after the arrays ($16..$18): lsn, partial xid (0 when none), partial
--   changes the progress row holds now (all 0 and no row before the first
--   batch); $19 the partition (apply.workers) whose share this is: the
--   arrays hold only its keys, and only its progress row moves
-- Nullable count columns count NULL as 0, as the reconcile sweep does.
-- Nor is a position past this server's own WAL end ever written: it can
-- only come from another server (a failover), and would skip what this
-- one writes below it. The second column says which condition failed.
WITH bound AS (
	SELECT $2::pg_lsn <= pg_current_wal_lsn() AS ok
), progress AS (
	INSERT INTO walcount.progress AS p (slot_name, part, lsn, partial_xid, partial_changes, updated_at)
	SELECT $1, $19::int, $2::pg_lsn, $3::bigint, $4::bigint, now() FROM bound WHERE bound.ok
	ON CONFLICT (slot_name, part) DO UPDATE SET
		lsn = excluded.lsn,
		partial_xid = excluded.partial_xid,
		partial_changes = excluded.partial_changes,
		updated_at = excluded.updated_at
	WHERE p.lsn = $16::pg_lsn AND coalesce(p.partial_xid, 0) = $17::bigint AND p.partial_changes = $18::bigint
	RETURNING 1
), u AS (
	-- A new row's dominant_genre_count is NULL, as for a user without
	-- tracks; the reconcile sweep fills the track-derived columns.
	INSERT INTO aggregate_user AS a
		(user_id, repost_count, track_save_count, follower_count, following_count, dominant_genre_count)
	SELECT *, NULL::int FROM unnest($5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[])
	WHERE EXISTS (SELECT FROM progress)
	ON CONFLICT (user_id) DO UPDATE SET
		repost_count = coalesce(a.repost_count, 0) + excluded.repost_count,
		track_save_count = coalesce(a.track_save_count, 0) + excluded.track_save_count,
		follower_count = coalesce(a.follower_count, 0) + excluded.follower_count,
		following_count = coalesce(a.following_count, 0) + excluded.following_count
), t AS (
	INSERT INTO aggregate_track AS a (track_id, repost_count, save_count)
	SELECT * FROM unnest($10::bigint[], $11::bigint[], $12::bigint[])
	WHERE EXISTS (SELECT FROM progress)
	ON CONFLICT (track_id) DO UPDATE SET
		repost_count = a.repost_count + excluded.repost_count,
		save_count = a.save_count + excluded.save_count
), p AS (
	-- A new aggregate_playlist row copies is_album from playlists, as the
	-- seed's triggers do.
	INSERT INTO aggregate_playlist AS a (playlist_id, repost_count, save_count, is_album)
	SELECT d.id, d.r, d.s,
		(SELECT pl.is_album FROM playlists pl
		 WHERE pl.playlist_id = d.id AND pl.is_current LIMIT 1)
	FROM unnest($13::bigint[], $14::bigint[], $15::bigint[]) AS d(id, r, s)
	WHERE EXISTS (SELECT FROM progress)
	ON CONFLICT (playlist_id) DO UPDATE SET
		repost_count = coalesce(a.repost_count, 0) + excluded.repost_count,
		save_count = coalesce(a.save_count, 0) + excluded.save_count
)
SELECT (SELECT count(*) FROM progress), ok FROM bound
