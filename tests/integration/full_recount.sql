-- full_recount.sql: the reference the reconcile tests compare walcount with.
-- One row per aggregate cell walcount writes whose value differs from a full
-- recount of the source tables: (tbl, id, col, expected, actual), values as
-- text, NULL shown as NULL and genres quoted. No rows: every cell is exact.
-- Written from shared/audius-schema-facts.md ("Counting rules",
-- "Reconcile"), independently of sql/reconcile_*.sql. One statement, no
-- trailing semicolon, so a test can wrap it: SELECT ... FROM (<this>) r.
-- By hand:
--   psql -h 127.0.0.1 -p PORT -U postgres -d it_reconcile_drift -f tests/integration/full_recount.sql
--
-- Stricter than expected_counts.sql, which holds between sweeps: this one
-- holds right after a sweep (or when nothing ever drifted), so
--   * every column of an existing aggregate row is compared with
--     IS DISTINCT FROM: a NULL count is wrong where the recount is 0, and a
--     dominant_genre_count of 0 is wrong where the recount is NULL;
--   * a key without an aggregate row is wrong only when one of its stream
--     counts (reposts, saves, follows) is non-zero: the sweep updates the
--     rows that exist and the stream creates rows, so no row is needed for a
--     user who only owns tracks or a track that only has comments;
--   * dominant_genre: over the tracks track_count counts, grouped by genre
--     (NULL a group of its own, '' an ordinary genre, exact comparison); the
--     highest count wins, then the newest latest track, then, on a full tie,
--     the genre sorting first with NULL last. No qualifying track: NULL and
--     NULL, not 0.
-- aggregate_playlist.is_album is not compared: walcount copies it once,
-- when it creates the row, and never maintains it (as the seed's triggers).
WITH live_reposts AS (
	SELECT user_id, repost_item_id, repost_type::text AS kind
	FROM reposts WHERE is_current AND NOT is_delete
), live_saves AS (
	SELECT user_id, save_item_id, save_type::text AS kind
	FROM saves WHERE is_current AND NOT is_delete
), live_follows AS (
	SELECT follower_user_id, followee_user_id
	FROM follows WHERE is_current AND NOT is_delete
), user_stream AS (
	-- One row per user with any live stream row; a column's missing
	-- contributions are 0.
	SELECT uid,
		count(*) FILTER (WHERE what = 'repost') AS repost_count,
		count(*) FILTER (WHERE what = 'track_save') AS track_save_count,
		count(*) FILTER (WHERE what = 'follower') AS follower_count,
		count(*) FILTER (WHERE what = 'following') AS following_count
	FROM (
		SELECT user_id, 'repost' FROM live_reposts
		UNION ALL SELECT user_id, 'track_save' FROM live_saves WHERE kind = 'track'
		UNION ALL SELECT followee_user_id, 'follower' FROM live_follows
		UNION ALL SELECT follower_user_id, 'following' FROM live_follows
	) AS s (uid, what)
	GROUP BY uid
), track_stream AS (
	SELECT tid,
		count(*) FILTER (WHERE what = 'repost') AS repost_count,
		count(*) FILTER (WHERE what = 'save') AS save_count
	FROM (
		SELECT repost_item_id, 'repost' FROM live_reposts WHERE kind = 'track'
		UNION ALL SELECT save_item_id, 'save' FROM live_saves WHERE kind = 'track'
	) AS s (tid, what)
	GROUP BY tid
), playlist_stream AS (
	-- Every type other than 'track' is a playlist-like item.
	SELECT pid,
		count(*) FILTER (WHERE what = 'repost') AS repost_count,
		count(*) FILTER (WHERE what = 'save') AS save_count
	FROM (
		SELECT repost_item_id, 'repost' FROM live_reposts WHERE kind <> 'track'
		UNION ALL SELECT save_item_id, 'save' FROM live_saves WHERE kind <> 'track'
	) AS s (pid, what)
	GROUP BY pid
), counted_tracks AS (
	SELECT owner_id, genre, created_at FROM tracks
	WHERE is_current AND NOT is_delete AND NOT is_unlisted AND is_available AND stem_of IS NULL
), genre_groups AS (
	SELECT owner_id, genre, count(*) AS n, max(created_at) AS latest
	FROM counted_tracks GROUP BY owner_id, genre
), dominant AS (
	-- The group no other group of the same owner beats.
	SELECT g.owner_id, g.genre, g.n
	FROM genre_groups g
	WHERE NOT EXISTS (
		SELECT 1 FROM genre_groups h
		WHERE h.owner_id = g.owner_id AND h.genre IS DISTINCT FROM g.genre
			AND (h.n > g.n
				OR (h.n = g.n AND h.latest > g.latest)
				OR (h.n = g.n AND h.latest = g.latest AND (g.genre IS NULL OR h.genre < g.genre))))
), owned AS (
	SELECT owner_id, sum(n) AS tracks FROM genre_groups GROUP BY owner_id
), owned_playlists AS (
	SELECT playlist_owner_id AS owner_id,
		count(*) FILTER (WHERE is_album) AS albums,
		count(*) FILTER (WHERE NOT is_album) AS playlists
	FROM playlists
	WHERE is_current AND NOT is_delete AND NOT is_private
	GROUP BY playlist_owner_id
), visible_comments AS (
	SELECT entity_id, count(*) AS n FROM comments
	WHERE entity_type = 'Track' AND NOT is_delete AND is_visible
	GROUP BY entity_id
), cells (tbl, id, col, expected, actual) AS (
	SELECT 'aggregate_user', a.user_id, c.*
	FROM aggregate_user a
	LEFT JOIN user_stream s ON s.uid = a.user_id
	LEFT JOIN owned o ON o.owner_id = a.user_id
	LEFT JOIN owned_playlists p ON p.owner_id = a.user_id
	LEFT JOIN dominant d ON d.owner_id = a.user_id
	CROSS JOIN LATERAL (VALUES
		('repost_count', coalesce(s.repost_count, 0)::text, a.repost_count::text),
		('track_save_count', coalesce(s.track_save_count, 0)::text, a.track_save_count::text),
		('follower_count', coalesce(s.follower_count, 0)::text, a.follower_count::text),
		('following_count', coalesce(s.following_count, 0)::text, a.following_count::text),
		('track_count', coalesce(o.tracks, 0)::text, a.track_count::text),
		('playlist_count', coalesce(p.playlists, 0)::text, a.playlist_count::text),
		('album_count', coalesce(p.albums, 0)::text, a.album_count::text),
		('dominant_genre', d.genre::text, a.dominant_genre::text),
		('dominant_genre_count', d.n::text, a.dominant_genre_count::text)
	) AS c (col, expected, actual)
	UNION ALL
	SELECT 'aggregate_user', s.uid, c.*
	FROM user_stream s
	CROSS JOIN LATERAL (VALUES
		('repost_count', s.repost_count::text, NULL::text),
		('track_save_count', s.track_save_count::text, NULL),
		('follower_count', s.follower_count::text, NULL),
		('following_count', s.following_count::text, NULL)
	) AS c (col, expected, actual)
	WHERE NOT EXISTS (SELECT 1 FROM aggregate_user a WHERE a.user_id = s.uid) AND c.expected <> '0'
	UNION ALL
	SELECT 'aggregate_track', a.track_id, c.*
	FROM aggregate_track a
	LEFT JOIN track_stream s ON s.tid = a.track_id
	LEFT JOIN visible_comments v ON v.entity_id = a.track_id
	CROSS JOIN LATERAL (VALUES
		('repost_count', coalesce(s.repost_count, 0)::text, a.repost_count::text),
		('save_count', coalesce(s.save_count, 0)::text, a.save_count::text),
		('comment_count', coalesce(v.n, 0)::text, a.comment_count::text)
	) AS c (col, expected, actual)
	UNION ALL
	SELECT 'aggregate_track', s.tid, c.*
	FROM track_stream s
	CROSS JOIN LATERAL (VALUES
		('repost_count', s.repost_count::text, NULL::text),
		('save_count', s.save_count::text, NULL)
	) AS c (col, expected, actual)
	WHERE NOT EXISTS (SELECT 1 FROM aggregate_track a WHERE a.track_id = s.tid) AND c.expected <> '0'
	UNION ALL
	SELECT 'aggregate_playlist', a.playlist_id, c.*
	FROM aggregate_playlist a
	LEFT JOIN playlist_stream s ON s.pid = a.playlist_id
	CROSS JOIN LATERAL (VALUES
		('repost_count', coalesce(s.repost_count, 0)::text, a.repost_count::text),
		('save_count', coalesce(s.save_count, 0)::text, a.save_count::text)
	) AS c (col, expected, actual)
	UNION ALL
	SELECT 'aggregate_playlist', s.pid, c.*
	FROM playlist_stream s
	CROSS JOIN LATERAL (VALUES
		('repost_count', s.repost_count::text, NULL::text),
		('save_count', s.save_count::text, NULL)
	) AS c (col, expected, actual)
	WHERE NOT EXISTS (SELECT 1 FROM aggregate_playlist a WHERE a.playlist_id = s.pid) AND c.expected <> '0'
)
SELECT tbl, id, col,
	CASE WHEN expected IS NULL THEN 'NULL' WHEN col = 'dominant_genre' THEN quote_literal(expected) ELSE expected END
		AS expected,
	CASE WHEN actual IS NULL THEN 'NULL' WHEN col = 'dominant_genre' THEN quote_literal(actual) ELSE actual END
		AS actual
FROM cells
WHERE expected IS DISTINCT FROM actual
ORDER BY tbl, id, col
