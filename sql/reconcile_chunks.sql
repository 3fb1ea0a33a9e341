-- Reconcile: the key ranges of the correcting transactions, chunk_rows ($1)
-- recounted keys each, per aggregate table, from the recount of the sweep's
-- session. A table's ranges cover every key, the first from the lowest int,
-- each next one from where the one before ends, the last to the highest
-- int, and a table without recounted keys gets one range: a key with
-- neither a row nor an active source row in the snapshot is not in the
-- recount, yet the stream may give it a row after the snapshot, from
-- changes the snapshot saw whose other half the stream could not count
-- (skipped for their replica identity); the chunk covering it corrects it.
WITH k AS (
	SELECT 0 AS t, user_id AS id, (row_number() OVER (ORDER BY user_id) - 1) / $1 AS c FROM recount_user
	UNION ALL
	SELECT 1, track_id, (row_number() OVER (ORDER BY track_id) - 1) / $1 FROM recount_track
	UNION ALL
	SELECT 2, playlist_id, (row_number() OVER (ORDER BY playlist_id) - 1) / $1 FROM recount_playlist
), c AS (
	SELECT t, c, max(id) AS hi FROM k GROUP BY t, c
	UNION ALL
	SELECT g.t, 0, NULL FROM generate_series(0, 2) AS g (t) WHERE NOT EXISTS (SELECT FROM k WHERE k.t = g.t)
)
SELECT t,
	coalesce(lag(hi) OVER w + 1, -2147483648),
	CASE WHEN lead(c) OVER w IS NULL THEN 2147483647 ELSE hi END
FROM c
WINDOW w AS (PARTITION BY t ORDER BY c)
ORDER BY t, c
