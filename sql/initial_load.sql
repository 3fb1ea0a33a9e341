-- The exact initial load (design.md §6): run inside a REPEATABLE READ
-- transaction whose snapshot is the one the new slot exported, so every
-- transaction committed before the slot's consistent point is counted here
-- and every later one by the stream. Recomputes every column the stream
-- maintains, writes only rows that differ (missing rows are created when a
-- count is non-zero) and records the consistent point as the progress, all
-- in one statement.
--   $1 slot name, $2 the slot's consistent point
-- Returns the rows written per aggregate table.
WITH r AS (
	SELECT user_id, repost_item_id AS item, repost_type::text AS type
	FROM reposts WHERE is_current AND NOT is_delete
), s AS (
	SELECT user_id, save_item_id AS item, save_type::text AS type
	FROM saves WHERE is_current AND NOT is_delete
), f AS (
	SELECT follower_user_id, followee_user_id
	FROM follows WHERE is_current AND NOT is_delete
), user_counts AS (
	SELECT id, sum(rp) AS rp, sum(ts) AS ts, sum(fr) AS fr, sum(fg) AS fg
	FROM (
		SELECT user_id, 1, 0, 0, 0 FROM r WHERE type IN ('track', 'playlist', 'album')
		UNION ALL SELECT user_id, 0, 1, 0, 0 FROM s WHERE type = 'track'
		UNION ALL SELECT followee_user_id, 0, 0, 1, 0 FROM f
		UNION ALL SELECT follower_user_id, 0, 0, 0, 1 FROM f
	) AS x (id, rp, ts, fr, fg)
	GROUP BY id
), track_counts AS (
	SELECT id, sum(rp) AS rp, sum(sv) AS sv
	FROM (
		SELECT item, 1, 0 FROM r WHERE type = 'track'
		UNION ALL SELECT item, 0, 1 FROM s WHERE type = 'track'
	) AS x (id, rp, sv)
	GROUP BY id
), playlist_counts AS (
	SELECT id, sum(rp) AS rp, sum(sv) AS sv
	FROM (
		SELECT item, 1, 0 FROM r WHERE type IN ('playlist', 'album')
		UNION ALL SELECT item, 0, 1 FROM s WHERE type IN ('playlist', 'album')
	) AS x (id, rp, sv)
	GROUP BY id
), u AS (
	INSERT INTO aggregate_user AS a
		(user_id, repost_count, track_save_count, follower_count, following_count, dominant_genre_count)
	SELECT coalesce(a.user_id, c.id), coalesce(c.rp, 0), coalesce(c.ts, 0),
		coalesce(c.fr, 0), coalesce(c.fg, 0), NULL::int
	FROM aggregate_user a FULL JOIN user_counts c ON c.id = a.user_id
	WHERE (a.repost_count, a.track_save_count, a.follower_count, a.following_count)
		IS DISTINCT FROM (coalesce(c.rp, 0), coalesce(c.ts, 0), coalesce(c.fr, 0), coalesce(c.fg, 0))
	ON CONFLICT (user_id) DO UPDATE SET
		repost_count = excluded.repost_count,
		track_save_count = excluded.track_save_count,
		follower_count = excluded.follower_count,
		following_count = excluded.following_count
	RETURNING 1
), t AS (
	INSERT INTO aggregate_track AS a (track_id, repost_count, save_count)
	SELECT coalesce(a.track_id, c.id), coalesce(c.rp, 0), coalesce(c.sv, 0)
	FROM aggregate_track a FULL JOIN track_counts c ON c.id = a.track_id
	WHERE (a.repost_count, a.save_count) IS DISTINCT FROM (coalesce(c.rp, 0), coalesce(c.sv, 0))
	ON CONFLICT (track_id) DO UPDATE SET
		repost_count = excluded.repost_count,
		save_count = excluded.save_count
	RETURNING 1
), p AS (
	INSERT INTO aggregate_playlist AS a (playlist_id, repost_count, save_count, is_album)
	SELECT coalesce(a.playlist_id, c.id), coalesce(c.rp, 0), coalesce(c.sv, 0),
		(SELECT pl.is_album FROM playlists pl
		 WHERE pl.playlist_id = coalesce(a.playlist_id, c.id) AND pl.is_current LIMIT 1)
	FROM aggregate_playlist a FULL JOIN playlist_counts c ON c.id = a.playlist_id
	WHERE (a.repost_count, a.save_count) IS DISTINCT FROM (coalesce(c.rp, 0), coalesce(c.sv, 0))
	ON CONFLICT (playlist_id) DO UPDATE SET
		repost_count = excluded.repost_count,
		save_count = excluded.save_count
	RETURNING 1
), progress AS (
	INSERT INTO walcount.progress (slot_name, lsn, partial_xid, partial_changes, updated_at)
	VALUES ($1, $2::pg_lsn, NULL, 0, now())
	ON CONFLICT (slot_name) DO UPDATE SET
		lsn = excluded.lsn, partial_xid = NULL, partial_changes = 0, updated_at = now()
	RETURNING 1
)
SELECT (SELECT count(*) FROM u), (SELECT count(*) FROM t), (SELECT count(*) FROM p),
	(SELECT count(*) FROM progress)
