-- Reconcile aggregate_track, for the keys $2 or every key; see
-- reconcile_user.sql. $3 ids, $4 repost and $5 save deltas of the stream
-- since the snapshot; comment_count comes from the sweep's stage.
WITH d AS (
	SELECT * FROM unnest($3::int[], $4::bigint[], $5::bigint[]) AS d (id, rp, sv)
), cur AS (
	-- As in reconcile_user.sql: per key its recount, row and noted delta.
	SELECT coalesce(r.track_id, a.track_id, d.id) AS track_id, a.track_id IS NULL AS missing,
		(coalesce(r.repost_count, 0) + coalesce(d.rp, 0))::int AS repost_count,
		(coalesce(r.save_count, 0) + coalesce(d.sv, 0))::int AS save_count,
		a.repost_count AS a_repost_count, a.save_count AS a_save_count, a.comment_count AS a_comment_count
	FROM recount_track r
	FULL JOIN aggregate_track a ON a.track_id = r.track_id
	FULL JOIN d ON d.id = coalesce(r.track_id, a.track_id)
	WHERE $2::int[] IS NULL
	UNION ALL
	SELECT k.track_id, a.track_id IS NULL,
		(coalesce(r.repost_count, 0) + coalesce(d.rp, 0))::int, (coalesce(r.save_count, 0) + coalesce(d.sv, 0))::int,
		a.repost_count, a.save_count, a.comment_count
	FROM unnest($2::int[]) AS k (track_id)
	LEFT JOIN recount_track r ON r.track_id = k.track_id
	LEFT JOIN aggregate_track a ON a.track_id = k.track_id
	LEFT JOIN d ON d.id = k.track_id
), want AS (
	SELECT c.*, coalesce(s.comment_count, 0) AS comment_count
	FROM cur c LEFT JOIN stage_track s ON s.track_id = c.track_id
), diff AS (
	SELECT w.*,
		w.a_repost_count IS DISTINCT FROM w.repost_count AND (NOT w.missing OR w.repost_count <> 0) AS c1,
		w.a_save_count IS DISTINCT FROM w.save_count AND (NOT w.missing OR w.save_count <> 0) AS c2,
		w.a_comment_count IS DISTINCT FROM w.comment_count AND (NOT w.missing OR w.comment_count <> 0) AS c3
	FROM want w
	WHERE NOT w.missing OR (w.repost_count, w.save_count) <> (0, 0)
), fix AS (
	SELECT * FROM diff WHERE c1 OR c2 OR c3
), upd AS (
	UPDATE aggregate_track a SET
		repost_count = f.repost_count, save_count = f.save_count, comment_count = f.comment_count
	FROM fix f
	WHERE NOT $1 AND NOT f.missing AND a.track_id = f.track_id
	RETURNING 1
), ins AS (
	INSERT INTO aggregate_track (track_id, repost_count, save_count, comment_count)
	SELECT track_id, repost_count, save_count, comment_count FROM fix WHERE NOT $1 AND missing
	ON CONFLICT (track_id) DO NOTHING
	RETURNING 1
)
SELECT (SELECT count(*) FROM cur), count(*),
	count(*) FILTER (WHERE c1), count(*) FILTER (WHERE c2), count(*) FILTER (WHERE c3),
	(SELECT count(*) FROM upd) + (SELECT count(*) FROM ins),
	coalesce(string_agg(track_id::text, ',' ORDER BY track_id), '')
FROM fix
