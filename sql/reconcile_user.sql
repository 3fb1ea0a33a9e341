-- Reconcile aggregate_user for keys $1..$2 (one correcting transaction).
-- Stream-maintained columns must equal the sweep's recount plus the net
-- delta ($5..$8 for ids $4) of the transactions the stream applied that the
-- sweep's snapshot did not see; the caller runs this between batches, so
-- those deltas are exact. Every aggregate row of the range is checked, also
-- one the recount lacks (created after the snapshot: its recount is 0).
-- The other columns (tracks, playlists, genre) are recounted here, in this
-- statement's snapshot, as the seed's job does.
-- Rows are written only where a column differs (IS DISTINCT FROM: the
-- columns are nullable); a missing row is created when a stream count is
-- non-zero. $3: dry run, compute without writing.
-- Returns rows checked and rows corrected per column. The delta arrays and
-- the per-column counts (here and in reconcile_track/playlist.sql) are in
-- src/counters.c's column order for the table.
WITH d AS (
	SELECT * FROM unnest($4::int[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[])
		AS d (id, rp, ts, fr, fg)
), t AS (
	-- The tracks counted by track_count and the genre, grouped by genre;
	-- latest breaks a tie in count.
	SELECT owner_id, genre, count(*) AS n, max(created_at) AS latest
	FROM tracks
	WHERE is_current AND NOT is_delete AND NOT is_unlisted AND is_available AND stem_of IS NULL
		AND owner_id BETWEEN $1 AND $2
	GROUP BY owner_id, genre
), totals AS (
	SELECT owner_id, sum(n) AS n FROM t GROUP BY owner_id
), genre AS (
	-- Highest count, then newest latest track; a full tie goes to the
	-- genre sorting first, NULL last, so the result is deterministic.
	SELECT DISTINCT ON (owner_id) owner_id, genre, n
	FROM t ORDER BY owner_id, n DESC, latest DESC, genre ASC NULLS LAST
), pl AS (
	SELECT playlist_owner_id AS owner_id,
		count(*) FILTER (WHERE NOT is_album) AS playlists, count(*) FILTER (WHERE is_album) AS albums
	FROM playlists
	WHERE is_current AND NOT is_delete AND NOT is_private AND playlist_owner_id BETWEEN $1 AND $2
	GROUP BY playlist_owner_id
), keys AS (
	-- The recounted keys, and those that got a row or a noted delta after
	-- the snapshot: not in the recount, they had no row and no active
	-- source row in it, so their recount is 0 (reconcile_chunks.sql).
	SELECT user_id FROM recount_user WHERE user_id BETWEEN $1 AND $2
	UNION
	SELECT user_id FROM aggregate_user WHERE user_id BETWEEN $1 AND $2
	UNION
	SELECT id FROM d WHERE id BETWEEN $1 AND $2
), want AS (
	SELECT k.user_id,
		coalesce(r.repost_count, 0) + coalesce(d.rp, 0) AS repost_count,
		coalesce(r.track_save_count, 0) + coalesce(d.ts, 0) AS track_save_count,
		coalesce(r.follower_count, 0) + coalesce(d.fr, 0) AS follower_count,
		coalesce(r.following_count, 0) + coalesce(d.fg, 0) AS following_count,
		coalesce(tt.n, 0) AS track_count,
		coalesce(pl.playlists, 0) AS playlist_count,
		coalesce(pl.albums, 0) AS album_count,
		g.genre AS dominant_genre,
		g.n::int AS dominant_genre_count
	FROM keys k
	LEFT JOIN recount_user r ON r.user_id = k.user_id
	LEFT JOIN d ON d.id = k.user_id
	LEFT JOIN totals tt ON tt.owner_id = k.user_id
	LEFT JOIN pl ON pl.owner_id = k.user_id
	LEFT JOIN genre g ON g.owner_id = k.user_id
), diff AS (
	-- A missing row compares as the row an INSERT would create.
	SELECT w.*, a.user_id IS NULL AS missing,
		a.repost_count IS DISTINCT FROM w.repost_count AND (a.user_id IS NOT NULL OR w.repost_count <> 0) AS c1,
		a.track_save_count IS DISTINCT FROM w.track_save_count AND (a.user_id IS NOT NULL OR w.track_save_count <> 0) AS c2,
		a.follower_count IS DISTINCT FROM w.follower_count AND (a.user_id IS NOT NULL OR w.follower_count <> 0) AS c3,
		a.following_count IS DISTINCT FROM w.following_count AND (a.user_id IS NOT NULL OR w.following_count <> 0) AS c4,
		a.track_count IS DISTINCT FROM w.track_count AND (a.user_id IS NOT NULL OR w.track_count <> 0) AS c5,
		a.playlist_count IS DISTINCT FROM w.playlist_count AND (a.user_id IS NOT NULL OR w.playlist_count <> 0) AS c6,
		a.album_count IS DISTINCT FROM w.album_count AND (a.user_id IS NOT NULL OR w.album_count <> 0) AS c7,
		a.dominant_genre IS DISTINCT FROM w.dominant_genre AND (a.user_id IS NOT NULL OR w.dominant_genre IS NOT NULL) AS c8,
		a.dominant_genre_count IS DISTINCT FROM w.dominant_genre_count AND (a.user_id IS NOT NULL OR w.dominant_genre_count IS NOT NULL) AS c9
	FROM want w LEFT JOIN aggregate_user a ON a.user_id = w.user_id
	WHERE a.user_id IS NOT NULL
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
	WHERE NOT $3 AND NOT f.missing AND a.user_id = f.user_id
	RETURNING 1
), ins AS (
	INSERT INTO aggregate_user (user_id, repost_count, track_save_count, follower_count, following_count,
		track_count, playlist_count, album_count, dominant_genre, dominant_genre_count)
	SELECT user_id, repost_count, track_save_count, follower_count, following_count,
		track_count, playlist_count, album_count, dominant_genre, dominant_genre_count
	FROM fix WHERE NOT $3 AND missing
	ON CONFLICT (user_id) DO NOTHING
	RETURNING 1
)
SELECT (SELECT count(*) FROM want), count(*),
	count(*) FILTER (WHERE c1), count(*) FILTER (WHERE c2), count(*) FILTER (WHERE c3),
	count(*) FILTER (WHERE c4), count(*) FILTER (WHERE c5), count(*) FILTER (WHERE c6),
	count(*) FILTER (WHERE c7), count(*) FILTER (WHERE c8), count(*) FILTER (WHERE c9),
	(SELECT count(*) FROM upd) + (SELECT count(*) FROM ins)
FROM fix
