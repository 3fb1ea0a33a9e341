-- The bare recount for bench/reconcile.sh (Figure 1): the seed's three
-- reconcile statements (shared/audius-schema-facts.md, "Reconcile") as plain
-- SELECTs. Each one computes the new values of every existing aggregate row
-- (aggregate table LEFT JOIN grouped counts, a missing count is 0) and finds
-- the rows where some column differs (IS DISTINCT FROM), exactly the work of
-- the seed's UPDATE ... FROM minus the writes. Each returns the rows checked
-- and the rows the UPDATE would write. They run independently, one
-- autocommit statement each, as the seed's job runs them.

-- aggregate_user: the stream's counts, tracks, playlists and dominant genre.
SELECT 'aggregate_user' AS tbl, count(*) AS checked, count(*) FILTER (WHERE changed) AS would_update
FROM (
	SELECT (a.repost_count, a.track_save_count, a.follower_count, a.following_count,
		a.track_count, a.playlist_count, a.album_count, a.dominant_genre, a.dominant_genre_count)
		IS DISTINCT FROM
		(coalesce(r.n, 0), coalesce(s.n, 0), coalesce(fr.n, 0), coalesce(fg.n, 0),
		 coalesce(t.n, 0), coalesce(p.playlists, 0), coalesce(p.albums, 0), g.genre, g.n::int) AS changed
	FROM aggregate_user a
	LEFT JOIN (
		SELECT user_id AS id, count(*) AS n FROM reposts
		WHERE is_current AND NOT is_delete GROUP BY user_id
	) r ON r.id = a.user_id
	LEFT JOIN (
		SELECT user_id AS id, count(*) AS n FROM saves
		WHERE is_current AND NOT is_delete AND save_type = 'track' GROUP BY user_id
	) s ON s.id = a.user_id
	LEFT JOIN (
		SELECT followee_user_id AS id, count(*) AS n FROM follows
		WHERE is_current AND NOT is_delete GROUP BY followee_user_id
	) fr ON fr.id = a.user_id
	LEFT JOIN (
		SELECT follower_user_id AS id, count(*) AS n FROM follows
		WHERE is_current AND NOT is_delete GROUP BY follower_user_id
	) fg ON fg.id = a.user_id
	LEFT JOIN (
		SELECT playlist_owner_id AS id,
			count(*) FILTER (WHERE NOT is_album) AS playlists, count(*) FILTER (WHERE is_album) AS albums
		FROM playlists
		WHERE is_current AND NOT is_delete AND NOT is_private GROUP BY playlist_owner_id
	) p ON p.id = a.user_id
	LEFT JOIN (
		SELECT owner_id AS id, count(*) AS n FROM tracks
		WHERE is_current AND NOT is_delete AND NOT is_unlisted AND is_available AND stem_of IS NULL
		GROUP BY owner_id
	) t ON t.id = a.user_id
	LEFT JOIN (
		-- Highest count, then the newest latest upload, then genre (NULL last).
		SELECT DISTINCT ON (owner_id) owner_id AS id, genre, n
		FROM (
			SELECT owner_id, genre, count(*) AS n, max(created_at) AS latest FROM tracks
			WHERE is_current AND NOT is_delete AND NOT is_unlisted AND is_available AND stem_of IS NULL
			GROUP BY owner_id, genre
		) AS x
		ORDER BY owner_id, n DESC, latest DESC, genre ASC NULLS LAST
	) g ON g.id = a.user_id
) AS u;

-- aggregate_track: reposts and saves of type 'track', visible comments.
SELECT 'aggregate_track' AS tbl, count(*) AS checked, count(*) FILTER (WHERE changed) AS would_update
FROM (
	SELECT (a.repost_count, a.save_count, a.comment_count)
		IS DISTINCT FROM (coalesce(r.n, 0), coalesce(s.n, 0), coalesce(c.n, 0)) AS changed
	FROM aggregate_track a
	LEFT JOIN (
		SELECT repost_item_id AS id, count(*) AS n FROM reposts
		WHERE is_current AND NOT is_delete AND repost_type = 'track' GROUP BY repost_item_id
	) r ON r.id = a.track_id
	LEFT JOIN (
		SELECT save_item_id AS id, count(*) AS n FROM saves
		WHERE is_current AND NOT is_delete AND save_type = 'track' GROUP BY save_item_id
	) s ON s.id = a.track_id
	LEFT JOIN (
		SELECT entity_id AS id, count(*) AS n FROM comments
		WHERE NOT is_delete AND is_visible AND entity_type = 'Track' GROUP BY entity_id
	) c ON c.id = a.track_id
) AS t;

-- aggregate_playlist: reposts and saves of type 'playlist' or 'album'.
SELECT 'aggregate_playlist' AS tbl, count(*) AS checked, count(*) FILTER (WHERE changed) AS would_update
FROM (
	SELECT (a.repost_count, a.save_count)
		IS DISTINCT FROM (coalesce(r.n, 0), coalesce(s.n, 0)) AS changed
	FROM aggregate_playlist a
	LEFT JOIN (
		SELECT repost_item_id AS id, count(*) AS n FROM reposts
		WHERE is_current AND NOT is_delete AND repost_type IN ('playlist', 'album') GROUP BY repost_item_id
	) r ON r.id = a.playlist_id
	LEFT JOIN (
		SELECT save_item_id AS id, count(*) AS n FROM saves
		WHERE is_current AND NOT is_delete AND save_type IN ('playlist', 'album') GROUP BY save_item_id
	) s ON s.id = a.playlist_id
) AS p;
