-- Data for bench/suite.sh (make bench / make bench-quick). psql variables:
-- users, tracks, playlists (population) and k_reposts, k_saves, k_follows
-- (seeded rows per user). Deterministic (setseed, no parallel plans).
--
-- Every user, track and playlist has an aggregate row, as the indexer
-- creates them. Each user u starts with k_reposts reposts, k_saves saves
-- and k_follows follows at fixed positions (bench.item(u, k, n)), so the
-- generator can toggle an existing row with an index lookup and no search.
-- One user/track pair beyond the population (users + 1, tracks + 1) is the
-- latency probe's, and track tracks + 2 the end marker's (bench.mark).
\set ON_ERROR_STOP on
SELECT setseed(0.898);
SET max_parallel_workers_per_gather = 0;

CREATE SCHEMA IF NOT EXISTS bench;

-- The k-th seeded item of user u among n items: spread over all of them.
CREATE OR REPLACE FUNCTION bench.item(u int, k int, n int) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT 1 + ((u::bigint * 7919 + k::bigint * 104729) % n)::int $$;

INSERT INTO playlists (playlist_id, playlist_owner_id, is_album, is_private, is_current, is_delete, txhash)
SELECT n, 1 + n % :users, n % 4 = 0, false, true, false, md5('p' || n)
FROM generate_series(1, :playlists) AS n;

INSERT INTO aggregate_user (user_id) SELECT generate_series(1, :users + 1);
INSERT INTO aggregate_track (track_id) SELECT generate_series(1, :tracks + 2);
INSERT INTO aggregate_playlist (playlist_id, is_album)
SELECT playlist_id, is_album FROM playlists;

-- ~10% of the seeded rows are un-reposted / un-saved / unfollowed.
INSERT INTO reposts (user_id, repost_item_id, repost_type, is_current, is_delete, txhash, blocknumber)
SELECT u, bench.item(u, k, :tracks), 'track', true, random() < 0.1, md5('r' || u || ':' || k), 0
FROM generate_series(1, :users) AS u, generate_series(0, :k_reposts - 1) AS k;
INSERT INTO saves (user_id, save_item_id, save_type, is_current, is_delete, txhash, blocknumber)
SELECT u, bench.item(u, k, :tracks), 'track', true, random() < 0.1, md5('s' || u || ':' || k), 0
FROM generate_series(1, :users) AS u, generate_series(0, :k_saves - 1) AS k;
INSERT INTO follows (follower_user_id, followee_user_id, is_current, is_delete, txhash, blocknumber)
SELECT u, bench.item(u, k, :users), true, random() < 0.1, md5('f' || u || ':' || k), 0
FROM generate_series(1, :users) AS u, generate_series(0, :k_follows - 1) AS k
ON CONFLICT DO NOTHING;

-- The latency probe's repost and the end marker's (both active).
INSERT INTO reposts (user_id, repost_item_id, repost_type, is_current, is_delete, txhash)
VALUES (:users + 1, :tracks + 1, 'track', true, false, 'probe'),
       (:users + 1, :tracks + 2, 'track', true, false, 'marker');
