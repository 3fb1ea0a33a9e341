-- Reconcile aggregate_playlist, for the keys $2 or every key; see
-- reconcile_user.sql. $3 ids, $4 repost and $5 save deltas of the stream
-- since the snapshot. A created row copies is_album from playlists, as the
-- seed's triggers do.
WITH d AS (
	SELECT * FROM unnest($3::int[], $4::bigint[], $5::bigint[]) AS d (id, rp, sv)
), keys AS (
	SELECT unnest($2::int[]) AS playlist_id
	UNION
	SELECT playlist_id FROM recount_playlist WHERE $2 IS NULL
	UNION
	SELECT playlist_id FROM aggregate_playlist WHERE $2 IS NULL
	UNION
	SELECT id FROM d WHERE $2 IS NULL
), want AS (
	SELECT k.playlist_id,
		(coalesce(r.repost_count, 0) + coalesce(d.rp, 0))::int AS repost_count,
		(coalesce(r.save_count, 0) + coalesce(d.sv, 0))::int AS save_count
	FROM keys k
	LEFT JOIN recount_playlist r ON r.playlist_id = k.playlist_id
	LEFT JOIN d ON d.id = k.playlist_id
), diff AS (
	SELECT w.*, a.playlist_id IS NULL AS missing,
		a.repost_count IS DISTINCT FROM w.repost_count AND (a.playlist_id IS NOT NULL OR w.repost_count <> 0) AS c1,
		a.save_count IS DISTINCT FROM w.save_count AND (a.playlist_id IS NOT NULL OR w.save_count <> 0) AS c2
	FROM want w LEFT JOIN aggregate_playlist a ON a.playlist_id = w.playlist_id
	WHERE a.playlist_id IS NOT NULL OR (w.repost_count, w.save_count) <> (0, 0)
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
SELECT (SELECT count(*) FROM want), count(*),
	count(*) FILTER (WHERE c1), count(*) FILTER (WHERE c2),
	(SELECT count(*) FROM upd) + (SELECT count(*) FROM ins),
	coalesce(string_agg(playlist_id::text, ',' ORDER BY playlist_id), '')
FROM fix
