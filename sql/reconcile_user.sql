-- Reconcile aggregate_user, for the keys $2, or every key when $2 is NULL.
-- Stream-maintained columns must equal the sweep's recount (recount.sql)
-- plus the net delta ($4..$7 for ids $3) of the transactions the stream
-- applied that the sweep's snapshot did not see; the other columns
-- (tracks, playlists, genre) equal the sweep's stage (reconcile_stage.sql).
-- Every key is checked: the recounted ones, and those with a row or a noted
-- delta since the snapshot (not in the recount, they had no row and no
-- active source row in it, so their recount is 0).
-- Two uses (src/reconcile.c):
--  - the compare, off the stream: $2 NULL, $1 true, returns the keys that
--    differ (the candidates);
--  - the correcting step, between batches: $2 the next candidates, with
--    their deltas as they are then; it writes only rows where a column
--    differs (IS DISTINCT FROM: the columns are nullable), and creates a
--    missing row when a stream count is non-zero. $1: dry run, compute
--    without writing.
-- Returns rows checked, rows differing, per column the rows differing,
-- rows written, and the differing keys (comma-separated). The delta arrays
-- and the per-column counts (here and in reconcile_track/playlist.sql) are
-- in src/counters.c's column order for the table.
WITH d AS (
	SELECT * FROM unnest($3::int[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[])
		AS d (id, rp, ts, fr, fg)
), cur AS (
	-- Per key its recount r, its row a (missing: none) and its noted delta:
	-- for the compare every key, in one pass over the recount, the rows and
	-- the deltas; for a step the keys $2.
	SELECT coalesce(r.user_id, a.user_id, d.id) AS user_id, a.user_id IS NULL AS missing,
		coalesce(r.repost_count, 0) + coalesce(d.rp, 0) AS repost_count,
		coalesce(r.track_save_count, 0) + coalesce(d.ts, 0) AS track_save_count,
		coalesce(r.follower_count, 0) + coalesce(d.fr, 0) AS follower_count,
		coalesce(r.following_count, 0) + coalesce(d.fg, 0) AS following_count,
		a.repost_count AS a_repost_count, a.track_save_count AS a_track_save_count,
		a.follower_count AS a_follower_count, a.following_count AS a_following_count,
		a.track_count AS a_track_count, a.playlist_count AS a_playlist_count, a.album_count AS a_album_count,
		a.dominant_genre AS a_dominant_genre, a.dominant_genre_count AS a_dominant_genre_count
	FROM recount_user r
	FULL JOIN aggregate_user a ON a.user_id = r.user_id
	FULL JOIN d ON d.id = coalesce(r.user_id, a.user_id)
	WHERE $2::int[] IS NULL
	UNION ALL
	SELECT k.user_id, a.user_id IS NULL,
		coalesce(r.repost_count, 0) + coalesce(d.rp, 0), coalesce(r.track_save_count, 0) + coalesce(d.ts, 0),
		coalesce(r.follower_count, 0) + coalesce(d.fr, 0), coalesce(r.following_count, 0) + coalesce(d.fg, 0),
		a.repost_count, a.track_save_count, a.follower_count, a.following_count,
		a.track_count, a.playlist_count, a.album_count, a.dominant_genre, a.dominant_genre_count
	FROM unnest($2::int[]) AS k (user_id)
	LEFT JOIN recount_user r ON r.user_id = k.user_id
	LEFT JOIN aggregate_user a ON a.user_id = k.user_id
	LEFT JOIN d ON d.id = k.user_id
), want AS (
	SELECT c.*,
		coalesce(s.track_count, 0) AS track_count,
		coalesce(s.playlist_count, 0) AS playlist_count,
		coalesce(s.album_count, 0) AS album_count,
		s.dominant_genre,
		s.dominant_genre_count
	FROM cur c LEFT JOIN stage_user s ON s.user_id = c.user_id
), diff AS (
	-- A missing row compares as the row an INSERT would create.
	SELECT w.*,
		w.a_repost_count IS DISTINCT FROM w.repost_count AND (NOT w.missing OR w.repost_count <> 0) AS c1,
		w.a_track_save_count IS DISTINCT FROM w.track_save_count AND (NOT w.missing OR w.track_save_count <> 0) AS c2,
		w.a_follower_count IS DISTINCT FROM w.follower_count AND (NOT w.missing OR w.follower_count <> 0) AS c3,
		w.a_following_count IS DISTINCT FROM w.following_count AND (NOT w.missing OR w.following_count <> 0) AS c4,
		w.a_track_count IS DISTINCT FROM w.track_count AND (NOT w.missing OR w.track_count <> 0) AS c5,
		w.a_playlist_count IS DISTINCT FROM w.playlist_count AND (NOT w.missing OR w.playlist_count <> 0) AS c6,
		w.a_album_count IS DISTINCT FROM w.album_count AND (NOT w.missing OR w.album_count <> 0) AS c7,
		w.a_dominant_genre IS DISTINCT FROM w.dominant_genre AND (NOT w.missing OR w.dominant_genre IS NOT NULL) AS c8,
		w.a_dominant_genre_count IS DISTINCT FROM w.dominant_genre_count AND (NOT w.missing OR w.dominant_genre_count IS NOT NULL) AS c9
	FROM want w
	WHERE NOT w.missing
		OR (w.repost_count, w.track_save_count, w.follower_count, w.following_count) <> (0, 0, 0, 0)
), fix AS (
	SELECT * FROM diff WHERE c1 OR c2 OR c3 OR c4 OR c5 OR c6 OR c7 OR c8 OR c9
), upd AS (
	UPDATE aggregate_user a SET
		repost_count = f.repost_count, track_save_count = f.track_save_count,
		follower_count = f.follower_count, following_count = f.following_count,
		track_count = f.track_count, playlist_count = f.playlist_count, album_count = f.album_count,
		dominant_genre = f.dominant_genre, dominant_genre_count = f.dominant_genre_count
	FROM fix f
	WHERE NOT $1 AND NOT f.missing AND a.user_id = f.user_id
	RETURNING 1
), ins AS (
	INSERT INTO aggregate_user (user_id, repost_count, track_save_count, follower_count, following_count,
		track_count, playlist_count, album_count, dominant_genre, dominant_genre_count)
	SELECT user_id, repost_count, track_save_count, follower_count, following_count,
		track_count, playlist_count, album_count, dominant_genre, dominant_genre_count
	FROM fix WHERE NOT $1 AND missing
	ON CONFLICT (user_id) DO NOTHING
	RETURNING 1
)
SELECT (SELECT count(*) FROM cur), count(*),
	count(*) FILTER (WHERE c1), count(*) FILTER (WHERE c2), count(*) FILTER (WHERE c3),
	count(*) FILTER (WHERE c4), count(*) FILTER (WHERE c5), count(*) FILTER (WHERE c6),
	count(*) FILTER (WHERE c7), count(*) FILTER (WHERE c8), count(*) FILTER (WHERE c9),
	(SELECT count(*) FROM upd) + (SELECT count(*) FROM ins),
	coalesce(string_agg(user_id::text, ',' ORDER BY user_id), '')
FROM fix
