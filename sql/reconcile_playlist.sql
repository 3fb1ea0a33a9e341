-- Reconcile aggregate_playlist, for the keys $2 or every key; see
-- reconcile_user.sql. $3 ids, $4 repost and $5 save deltas of the stream
-- since the snapshot. A created row copies is_album from playlists, as the
-- seed's triggers do.
WITH d AS (
	SELECT * FROM unnest($3::int[], $4::bigint[], $5::bigint[]) AS d (id, rp, sv)
), cur AS (
	-- As in reconcile_user.sql: per key its recount, row and noted delta.
	SELECT coalesce(r.playlist_id, a.playlist_id, d.id) AS playlist_id, a.playlist_id IS NULL AS missing,
		(coalesce(r.repost_count, 0) + coalesce(d.rp, 0))::int AS repost_count,
		(coalesce(r.save_count, 0) + coalesce(d.sv, 0))::int AS save_count,
		a.repost_count AS a_repost_count, a.save_count AS a_save_count
	FROM recount_playlist r
	FULL JOIN aggregate_playlist a ON a.playlist_id = r.playlist_id
	FULL JOIN d ON d.id = coalesce(r.playlist_id, a.playlist_id)
	WHERE $2::int[] IS NULL
	UNION ALL
	SELECT k.playlist_id, a.playlist_id IS NULL,
		(coalesce(r.repost_count, 0) + coalesce(d.rp, 0))::int, (coalesce(r.save_count, 0) + coalesce(d.sv, 0))::int,
		a.repost_count, a.save_count
	FROM unnest($2::int[]) AS k (playlist_id)
	LEFT JOIN recount_playlist r ON r.playlist_id = k.playlist_id
	LEFT JOIN aggregate_playlist a ON a.playlist_id = k.playlist_id
	LEFT JOIN d ON d.id = k.playlist_id
), diff AS (
	SELECT c.*,
		c.a_repost_count IS DISTINCT FROM c.repost_count AND (NOT c.missing OR c.repost_count <> 0) AS c1,
		c.a_save_count IS DISTINCT FROM c.save_count AND (NOT c.missing OR c.save_count <> 0) AS c2
	FROM cur c
	WHERE NOT c.missing OR (c.repost_count, c.save_count) <> (0, 0)
), fix AS (
	SELECT * FROM diff WHERE c1 OR c2
), upd AS (
	UPDATE aggregate_playlist a SET repost_count = f.repost_count, save_count = f.save_count
	FROM fix f
	WHERE NOT $1 AND NOT f.missing AND a.playlist_id = f.playlist_id
	RETURNING 1
), ins AS (
	INSERT INTO aggregate_playlist (playlist_id, repost_count, save_count, is_album)
	SELECT f.playlist_id, f.repost_count, f.save_count,
		(SELECT pl.is_album FROM playlists pl WHERE pl.playlist_id = f.playlist_id AND pl.is_current LIMIT 1)
	FROM fix f WHERE NOT $1 AND f.missing
	ON CONFLICT (playlist_id) DO NOTHING
	RETURNING 1
)
SELECT (SELECT count(*) FROM cur), count(*),
	count(*) FILTER (WHERE c1), count(*) FILTER (WHERE c2),
	(SELECT count(*) FROM upd) + (SELECT count(*) FROM ins),
	coalesce(string_agg(playlist_id::text, ',' ORDER BY playlist_id), '')
FROM fix
