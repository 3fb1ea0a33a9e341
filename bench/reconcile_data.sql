-- Synthetic Audius-shaped data for bench/reconcile.sh. psql variables:
-- users, tracks, playlists, comments (population) and reposts, saves,
-- follows (source rows drawn before de-duplication). Deterministic for a
-- given set of sizes (setseed; nothing here runs in parallel).
--
-- Shape: user ids 1..users, the first 30% of them artists owning the
-- tracks; item popularity skewed (random()^3: low ids are hot); 80/12/8
-- track/playlist/album reposts, 75/15/10 saves; ~10% of current rows are
-- un-reposted (is_delete), ~6% of identities also keep a demoted older row
-- (is_current = false, another txhash), as rows of the older indexers do.
-- Every user, track and playlist has an aggregate row (zeros), as the
-- indexer creates them; `walcount init` then loads the stream's counts.
-- One extra user/track pair (users + 1, tracks + 1) is the latency probe's.
\set ON_ERROR_STOP on
SELECT setseed(0.4242);

INSERT INTO tracks (track_id, owner_id, is_current, is_delete, is_unlisted, is_available, stem_of, genre,
	created_at, updated_at, txhash, blocknumber)
SELECT n, 1 + floor(:users * 0.3 * random() ^ 1.5)::int, true, random() < 0.03, random() < 0.05,
	random() >= 0.02, CASE WHEN random() < 0.02 THEN '{"parent_track_id": 1}'::jsonb END,
	CASE WHEN g < 0.03 THEN NULL WHEN g < 0.05 THEN ''
	     ELSE (ARRAY['Electronic', 'Hip-Hop/Rap', 'Alternative', 'Pop', 'Lo-Fi', 'House', 'Techno',
			'R&B/Soul', 'Rock', 'Ambient', 'Experimental', 'Dubstep'])[1 + floor(12 * random() ^ 2)::int] END,
	ts, ts, md5('t' || n), n
FROM (SELECT n, random() AS g, now() - random() * interval '1000 days' AS ts
      FROM generate_series(1, :tracks) AS n) AS s;
-- Older, demoted versions of 10% of the tracks.
INSERT INTO tracks (track_id, owner_id, is_current, is_delete, genre, created_at, updated_at, txhash, blocknumber)
SELECT track_id, owner_id, false, false, genre, created_at, created_at, md5('t-old' || track_id), 0
FROM tracks WHERE random() < 0.1;

INSERT INTO playlists (playlist_id, playlist_owner_id, is_album, is_private, is_current, is_delete, created_at,
	updated_at, txhash, blocknumber)
SELECT n, 1 + floor(:users * random())::int, random() < 0.3, random() < 0.1, true, random() < 0.05,
	ts, ts, md5('p' || n), n
FROM (SELECT n, now() - random() * interval '1000 days' AS ts FROM generate_series(1, :playlists) AS n) AS s;

INSERT INTO comments (comment_id, entity_id, entity_type, is_delete, is_visible)
SELECT n, 1 + floor(:tracks * random() ^ 3)::int, 'Track', random() < 0.05, random() >= 0.03
FROM generate_series(1, :comments) AS n;

INSERT INTO reposts (user_id, repost_item_id, repost_type, is_current, is_delete, created_at, txhash, blocknumber)
SELECT u, CASE WHEN ty = 'track' THEN 1 + floor(:tracks * random() ^ 3)::int
	       ELSE 1 + floor(:playlists * random() ^ 2)::int END,
	ty::reposttype, true, random() < 0.1, now() - random() * interval '1000 days', md5('r' || n), n
FROM (SELECT n, 1 + floor(:users * random())::int AS u,
	     CASE WHEN r < 0.8 THEN 'track' WHEN r < 0.92 THEN 'playlist' ELSE 'album' END AS ty
      FROM (SELECT n, random() AS r FROM generate_series(1, :reposts) AS n) AS a) AS s
ON CONFLICT DO NOTHING;
INSERT INTO reposts (user_id, repost_item_id, repost_type, is_current, is_delete, created_at, txhash, blocknumber)
SELECT user_id, repost_item_id, repost_type, false, random() < 0.5, created_at - interval '30 days',
	md5('r-old' || txhash), 0
FROM reposts WHERE random() < 0.06;

INSERT INTO saves (user_id, save_item_id, save_type, is_current, is_delete, created_at, txhash, blocknumber)
SELECT u, CASE WHEN ty = 'track' THEN 1 + floor(:tracks * random() ^ 3)::int
	       ELSE 1 + floor(:playlists * random() ^ 2)::int END,
	ty::savetype, true, random() < 0.1, now() - random() * interval '1000 days', md5('s' || n), n
FROM (SELECT n, 1 + floor(:users * random())::int AS u,
	     CASE WHEN r < 0.75 THEN 'track' WHEN r < 0.9 THEN 'playlist' ELSE 'album' END AS ty
      FROM (SELECT n, random() AS r FROM generate_series(1, :saves) AS n) AS a) AS s
ON CONFLICT DO NOTHING;
INSERT INTO saves (user_id, save_item_id, save_type, is_current, is_delete, created_at, txhash, blocknumber)
SELECT user_id, save_item_id, save_type, false, random() < 0.5, created_at - interval '30 days',
	md5('s-old' || txhash), 0
FROM saves WHERE random() < 0.06;

INSERT INTO follows (follower_user_id, followee_user_id, is_current, is_delete, created_at, txhash, blocknumber)
SELECT f, e, true, random() < 0.1, now() - random() * interval '1000 days', md5('f' || n), n
FROM (SELECT n, 1 + floor(:users * random())::int AS f, 1 + floor(:users * random() ^ 3)::int AS e
      FROM generate_series(1, :follows) AS n) AS s
WHERE f <> e
ON CONFLICT DO NOTHING;
INSERT INTO follows (follower_user_id, followee_user_id, is_current, is_delete, created_at, txhash, blocknumber)
SELECT follower_user_id, followee_user_id, false, random() < 0.5, created_at - interval '30 days',
	md5('f-old' || txhash), 0
FROM follows WHERE random() < 0.06;

-- The latency probe's repost (active, so init creates its aggregate row).
INSERT INTO reposts (user_id, repost_item_id, repost_type, is_current, is_delete, txhash)
VALUES (:users + 1, :tracks + 1, 'track', true, false, 'probe');

INSERT INTO aggregate_user (user_id) SELECT generate_series(1, :users + 1);
INSERT INTO aggregate_track (track_id) SELECT generate_series(1, :tracks + 1);
INSERT INTO aggregate_playlist (playlist_id, is_album)
SELECT playlist_id, is_album FROM playlists WHERE is_current;
