-- Recounts every column the stream maintains, for every aggregate row and
-- every key with source rows, into temporary tables of this session, in the
-- snapshot of the REPEATABLE READ transaction it runs in. Two users:
--  - the exact initial load (design.md §6), in the snapshot the new slot
--    exported, followed by initial_load.sql,
--  - a reconcile sweep (design.md §8), right after its snapshot was taken,
--    followed by reconcile_stage.sql, then the compare and the correcting
--    steps (reconcile_*.sql) once the stream has applied everything the
--    snapshot saw.
-- Every statement ends with ';' at the end of a line, and no comment line
-- does: the initial load and a sweep send the statements one by one
-- (src/sqlscript.h).
CREATE TEMP TABLE IF NOT EXISTS recount_user (
	user_id int PRIMARY KEY, repost_count bigint, track_save_count bigint,
	follower_count bigint, following_count bigint);
CREATE TEMP TABLE IF NOT EXISTS recount_track (
	track_id int PRIMARY KEY, repost_count bigint, save_count bigint);
CREATE TEMP TABLE IF NOT EXISTS recount_playlist (
	playlist_id int PRIMARY KEY, repost_count bigint, save_count bigint);
TRUNCATE recount_user, recount_track, recount_playlist;

CREATE TEMP VIEW active_reposts AS
	SELECT user_id, repost_item_id AS item, repost_type::text AS type
	FROM reposts WHERE is_current AND NOT is_delete;
CREATE TEMP VIEW active_saves AS
	SELECT user_id, save_item_id AS item, save_type::text AS type
	FROM saves WHERE is_current AND NOT is_delete;
CREATE TEMP VIEW active_follows AS
	SELECT follower_user_id, followee_user_id
	FROM follows WHERE is_current AND NOT is_delete;

INSERT INTO recount_user
SELECT coalesce(a.user_id, c.id), coalesce(c.rp, 0), coalesce(c.ts, 0), coalesce(c.fr, 0), coalesce(c.fg, 0)
FROM aggregate_user a
FULL JOIN (
	SELECT id, sum(rp) AS rp, sum(ts) AS ts, sum(fr) AS fr, sum(fg) AS fg
	FROM (
		SELECT user_id, 1, 0, 0, 0 FROM active_reposts WHERE type IN ('track', 'playlist', 'album')
		UNION ALL SELECT user_id, 0, 1, 0, 0 FROM active_saves WHERE type = 'track'
		UNION ALL SELECT followee_user_id, 0, 0, 1, 0 FROM active_follows
		UNION ALL SELECT follower_user_id, 0, 0, 0, 1 FROM active_follows
	) AS x (id, rp, ts, fr, fg)
	GROUP BY id
) AS c ON c.id = a.user_id;

INSERT INTO recount_track
SELECT coalesce(a.track_id, c.id), coalesce(c.rp, 0), coalesce(c.sv, 0)
FROM aggregate_track a
FULL JOIN (
	SELECT id, sum(rp) AS rp, sum(sv) AS sv
	FROM (
		SELECT item, 1, 0 FROM active_reposts WHERE type = 'track'
		UNION ALL SELECT item, 0, 1 FROM active_saves WHERE type = 'track'
	) AS x (id, rp, sv)
	GROUP BY id
) AS c ON c.id = a.track_id;

INSERT INTO recount_playlist
SELECT coalesce(a.playlist_id, c.id), coalesce(c.rp, 0), coalesce(c.sv, 0)
FROM aggregate_playlist a
FULL JOIN (
	SELECT id, sum(rp) AS rp, sum(sv) AS sv
	FROM (
		SELECT item, 1, 0 FROM active_reposts WHERE type IN ('playlist', 'album')
		UNION ALL SELECT item, 0, 1 FROM active_saves WHERE type IN ('playlist', 'album')
	) AS x (id, rp, sv)
	GROUP BY id
) AS c ON c.id = a.playlist_id;

DROP VIEW active_reposts, active_saves, active_follows;
ANALYZE recount_user, recount_track, recount_playlist;
