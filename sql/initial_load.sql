-- The exact initial load (design.md §6), after recount.sql, inside the
-- REPEATABLE READ transaction whose snapshot is the one the new slot
-- exported: every transaction committed before the slot's consistent point
-- is counted here, every later one by the stream. Writes the recounted
-- columns to the rows that differ (a missing row is created when a count is
-- non-zero) and records the consistent point as the progress, in one
-- statement.
--   $1 slot name, $2 the slot's consistent point, $3 apply.workers (every
--   partition's progress row starts there)
-- Returns the rows written per aggregate table.
WITH u AS (
	INSERT INTO aggregate_user AS a
		(user_id, repost_count, track_save_count, follower_count, following_count, dominant_genre_count)
	SELECT r.user_id, r.repost_count, r.track_save_count, r.follower_count, r.following_count, NULL::int
	FROM recount_user r LEFT JOIN aggregate_user cur ON cur.user_id = r.user_id
	WHERE (cur.repost_count, cur.track_save_count, cur.follower_count, cur.following_count)
		IS DISTINCT FROM (r.repost_count, r.track_save_count, r.follower_count, r.following_count)
	ON CONFLICT (user_id) DO UPDATE SET
		repost_count = excluded.repost_count,
		track_save_count = excluded.track_save_count,
		follower_count = excluded.follower_count,
		following_count = excluded.following_count
	RETURNING 1
), t AS (
	INSERT INTO aggregate_track AS a (track_id, repost_count, save_count)
	SELECT r.track_id, r.repost_count, r.save_count
	FROM recount_track r LEFT JOIN aggregate_track cur ON cur.track_id = r.track_id
	WHERE (cur.repost_count, cur.save_count) IS DISTINCT FROM (r.repost_count, r.save_count)
	ON CONFLICT (track_id) DO UPDATE SET
		repost_count = excluded.repost_count,
		save_count = excluded.save_count
	RETURNING 1
), p AS (
	-- A new row copies is_album from playlists, as the seed's triggers do.
	INSERT INTO aggregate_playlist AS a (playlist_id, repost_count, save_count, is_album)
	SELECT r.playlist_id, r.repost_count, r.save_count,
		(SELECT pl.is_album FROM playlists pl WHERE pl.playlist_id = r.playlist_id AND pl.is_current LIMIT 1)
	FROM recount_playlist r LEFT JOIN aggregate_playlist cur ON cur.playlist_id = r.playlist_id
	WHERE (cur.repost_count, cur.save_count) IS DISTINCT FROM (r.repost_count, r.save_count)
	ON CONFLICT (playlist_id) DO UPDATE SET
		repost_count = excluded.repost_count,
		save_count = excluded.save_count
	RETURNING 1
), progress AS (
	INSERT INTO walcount.progress (slot_name, part, lsn, partial_xid, partial_changes, updated_at)
	SELECT $1, n, $2::pg_lsn, NULL, 0, now() FROM generate_series(0, $3::int - 1) n
	ON CONFLICT (slot_name, part) DO UPDATE SET
		lsn = excluded.lsn, partial_xid = NULL, partial_changes = 0, updated_at = now()
	RETURNING 1
), gone AS (
	DELETE FROM walcount.progress WHERE slot_name = $1 AND part >= $3::int
)
SELECT (SELECT count(*) FROM u), (SELECT count(*) FROM t), (SELECT count(*) FROM p),
	(SELECT count(*) FROM progress)
