-- expected_counts.sql: every count cell walcount maintains whose value differs
-- from a recount of the source tables. No rows means no drift.
-- The integration tests run it (harness.c, it_drift); by hand:
--   psql -h 127.0.0.1 -p PORT -U postgres -d it_random_workload -f tests/integration/expected_counts.sql
--
-- Counting rules: shared/audius-schema-facts.md. A row counts when it is
-- active (is_current AND NOT is_delete). A missing aggregate row, and a count
-- that is 0 or NULL, all mean 0: walcount may leave rows at 0 behind.
WITH active_reposts AS (
	SELECT user_id, repost_item_id AS item_id, repost_type::text AS type
	FROM reposts WHERE is_current AND NOT is_delete
), active_saves AS (
	SELECT user_id, save_item_id AS item_id, save_type::text AS type
	FROM saves WHERE is_current AND NOT is_delete
), active_follows AS (
	SELECT follower_user_id, followee_user_id
	FROM follows WHERE is_current AND NOT is_delete
), expected (tbl, id, col, n) AS (
	SELECT 'aggregate_user', user_id, 'repost_count', count(*)
	FROM active_reposts GROUP BY user_id
	UNION ALL
	SELECT 'aggregate_user', user_id, 'track_save_count', count(*)
	FROM active_saves WHERE type = 'track' GROUP BY user_id
	UNION ALL
	SELECT 'aggregate_user', follower_user_id, 'following_count', count(*)
	FROM active_follows GROUP BY follower_user_id
	UNION ALL
	SELECT 'aggregate_user', followee_user_id, 'follower_count', count(*)
	FROM active_follows GROUP BY followee_user_id
	UNION ALL
	SELECT 'aggregate_track', item_id, 'repost_count', count(*)
	FROM active_reposts WHERE type = 'track' GROUP BY item_id
	UNION ALL
	SELECT 'aggregate_track', item_id, 'save_count', count(*)
	FROM active_saves WHERE type = 'track' GROUP BY item_id
	UNION ALL
	SELECT 'aggregate_playlist', item_id, 'repost_count', count(*)
	FROM active_reposts WHERE type IN ('playlist', 'album') GROUP BY item_id
	UNION ALL
	SELECT 'aggregate_playlist', item_id, 'save_count', count(*)
	FROM active_saves WHERE type IN ('playlist', 'album') GROUP BY item_id
), actual (tbl, id, col, n) AS (
	SELECT 'aggregate_user', u.user_id, c.col, c.n
	FROM aggregate_user u CROSS JOIN LATERAL (VALUES
		('repost_count', u.repost_count),
		('track_save_count', u.track_save_count),
		('following_count', u.following_count),
		('follower_count', u.follower_count)) AS c (col, n)
	UNION ALL
	SELECT 'aggregate_track', t.track_id, c.col, c.n
	FROM aggregate_track t CROSS JOIN LATERAL (VALUES
		('repost_count', t.repost_count::bigint),
		('save_count', t.save_count::bigint)) AS c (col, n)
	UNION ALL
	SELECT 'aggregate_playlist', p.playlist_id, c.col, c.n
	FROM aggregate_playlist p CROSS JOIN LATERAL (VALUES
		('repost_count', p.repost_count::bigint),
		('save_count', p.save_count::bigint)) AS c (col, n)
)
SELECT tbl, id, col, coalesce(e.n, 0) AS expected, coalesce(a.n, 0) AS actual
FROM expected e FULL OUTER JOIN actual a USING (tbl, id, col)
WHERE coalesce(e.n, 0) <> coalesce(a.n, 0)
ORDER BY tbl, id, col
