-- Reconcile: the key ranges of the correcting transactions, chunk_rows ($1)
-- keys each, per aggregate table, from the recount of the sweep's session.
SELECT t, min(id), max(id)
FROM (
	SELECT 0 AS t, user_id AS id, (row_number() OVER (ORDER BY user_id) - 1) / $1 AS c FROM recount_user
	UNION ALL
	SELECT 1, track_id, (row_number() OVER (ORDER BY track_id) - 1) / $1 FROM recount_track
	UNION ALL
	SELECT 2, playlist_id, (row_number() OVER (ORDER BY playlist_id) - 1) / $1 FROM recount_playlist
) AS k
GROUP BY t, c
ORDER BY t, c
