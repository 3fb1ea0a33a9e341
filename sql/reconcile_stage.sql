-- Reconcile: the columns the stream does not maintain (track, playlist and
-- album counts, the dominant genre, comment_count), recounted once per
-- sweep, right after the transaction of recount.sql, on the sweep's own
-- connection while the stream keeps applying. One pass over tracks,
-- playlists and comments each: the compare and the correcting steps then
-- only look these values up by key, and the stream never waits for a scan
-- of the source tables. As the seed's job, a sweep writes the values it
-- read here; a track uploaded later is counted by the next sweep.
CREATE TEMP TABLE IF NOT EXISTS stage_user (
	user_id int PRIMARY KEY, track_count bigint, playlist_count bigint, album_count bigint,
	dominant_genre varchar, dominant_genre_count int);
CREATE TEMP TABLE IF NOT EXISTS stage_track (
	track_id int PRIMARY KEY, comment_count int);
TRUNCATE stage_user, stage_track;

INSERT INTO stage_user
WITH t AS (
	-- The tracks counted by track_count and the genre, grouped by genre,
	-- with the latest to break a tie in count.
	SELECT owner_id, genre, count(*) AS n, max(created_at) AS latest
	FROM tracks
	WHERE is_current AND NOT is_delete AND NOT is_unlisted AND is_available AND stem_of IS NULL
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
	WHERE is_current AND NOT is_delete AND NOT is_private
	GROUP BY playlist_owner_id
)
SELECT coalesce(tt.owner_id, pl.owner_id), coalesce(tt.n, 0), coalesce(pl.playlists, 0), coalesce(pl.albums, 0),
	g.genre, g.n::int
FROM (totals tt JOIN genre g ON g.owner_id = tt.owner_id)
FULL JOIN pl ON pl.owner_id = tt.owner_id;

INSERT INTO stage_track
SELECT entity_id, count(*)
FROM comments
WHERE NOT is_delete AND is_visible AND entity_type = 'Track'
GROUP BY entity_id;

ANALYZE stage_user, stage_track;
