-- Change generator and helpers for bench/suite.sh.
--
-- bench.gen(n, first, stride, ...) writes about n source changes in transactions of 10, the
-- shape of an indexer committing a block: per transaction 3 new reposts,
-- 3 repost toggles, 1 new save, 1 save toggle, 1 new follow, 1 follow toggle
-- (half inserts, half in-place updates of is_delete with a new txhash, the
-- current indexer's writes), spread uniformly over the users and tracks (no
-- hot keys: the worst case for walcount's coalescing); one transaction in
-- ten reposts a playlist instead of a track. A new identity that already
-- exists becomes a toggle (ON CONFLICT ... DO UPDATE), so every row written
-- is one change. Sessions run in parallel with first = base + 5 * j and
-- stride = the number of sessions, so their new identities never repeat;
-- bench.gen_state keeps base across rounds. The caller counts the changes exactly from
-- pg_stat_user_tables. Run it with synchronous_commit = off: generating is
-- not what is measured.
\set ON_ERROR_STOP on
CREATE SCHEMA IF NOT EXISTS bench;
CREATE TABLE IF NOT EXISTS bench.gen_state (next bigint NOT NULL);
INSERT INTO bench.gen_state SELECT 0 WHERE NOT EXISTS (SELECT FROM bench.gen_state);

CREATE OR REPLACE PROCEDURE bench.gen(n bigint, first bigint, stride int, users int, tracks int, playlists int,
	kr int, ks int, kf int)
LANGUAGE plpgsql AS $$
DECLARE
	g bigint := first;
	done bigint := 0;
	t bigint := 0;
BEGIN
	PERFORM setseed(((first % 1000) + 1) / 1001.0);
	WHILE done < n LOOP
		t := t + 1;
		-- 3 new reposts (one of them a playlist every tenth transaction).
		INSERT INTO reposts AS r (user_id, repost_item_id, repost_type, is_current, is_delete, txhash, blocknumber)
		SELECT 1 + (g + i) % users,
			CASE WHEN i = 0 AND t % 10 = 0 THEN 1 + ((g + i) * 40503) % playlists
			     ELSE 1 + ((g + i) * 2654435761 + (g + i) / users) % tracks END,
			CASE WHEN i = 0 AND t % 10 = 0 THEN 'playlist' ELSE 'track' END::reposttype,
			true, false, md5('gr' || (g + i)), t
		FROM generate_series(0, 2) AS i
		ON CONFLICT (user_id, repost_item_id, repost_type) WHERE is_current
		DO UPDATE SET is_delete = NOT r.is_delete, txhash = excluded.txhash, blocknumber = excluded.blocknumber;
		-- 3 toggles of seeded reposts.
		UPDATE reposts SET is_delete = NOT is_delete, txhash = md5('tr' || g || ':' || x.u), blocknumber = t
		FROM (SELECT 1 + floor(random() * users)::int AS u, floor(random() * kr)::int AS k
		      FROM generate_series(1, 3)) AS x
		WHERE user_id = x.u AND repost_item_id = bench.item(x.u, x.k, tracks) AND repost_type = 'track' AND is_current;
		-- 1 new save, 1 save toggle.
		INSERT INTO saves AS s (user_id, save_item_id, save_type, is_current, is_delete, txhash, blocknumber)
		VALUES (1 + (g + 3) % users, 1 + ((g + 3) * 2654435761 + (g + 3) / users) % tracks, 'track', true, false,
			md5('gs' || g), t)
		ON CONFLICT (user_id, save_item_id, save_type) WHERE is_current
		DO UPDATE SET is_delete = NOT s.is_delete, txhash = excluded.txhash, blocknumber = excluded.blocknumber;
		UPDATE saves SET is_delete = NOT is_delete, txhash = md5('ts' || g), blocknumber = t
		FROM (SELECT 1 + floor(random() * users)::int AS u, floor(random() * ks)::int AS k) AS x
		WHERE user_id = x.u AND save_item_id = bench.item(x.u, x.k, tracks) AND save_type = 'track' AND is_current;
		-- 1 new follow, 1 follow toggle.
		INSERT INTO follows AS f (follower_user_id, followee_user_id, is_current, is_delete, txhash, blocknumber)
		VALUES (1 + (g + 4) % users, 1 + ((g + 4) * 40503 + (g + 4) / users) % users, true, false, md5('gf' || g), t)
		ON CONFLICT (follower_user_id, followee_user_id) WHERE is_current
		DO UPDATE SET is_delete = NOT f.is_delete, txhash = excluded.txhash, blocknumber = excluded.blocknumber;
		UPDATE follows SET is_delete = NOT is_delete, txhash = md5('tf' || g), blocknumber = t
		FROM (SELECT 1 + floor(random() * users)::int AS u, floor(random() * kf)::int AS k) AS x
		WHERE follower_user_id = x.u AND followee_user_id = bench.item(x.u, x.k, users) AND is_current;
		COMMIT;
		g := g + 5 * stride;
		done := done + 10;
	END LOOP;
END $$;

-- One transaction of n changes (scenario 4): n reposts upserted in one
-- statement, each (user, track) pair distinct, spread over all users and
-- tracks so the transaction touches ~2n aggregate rows.
CREATE OR REPLACE PROCEDURE bench.big_txn(n int, users int, tracks int, salt int)
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO reposts AS r (user_id, repost_item_id, repost_type, is_current, is_delete, txhash, blocknumber)
	SELECT 1 + i % users, 1 + (i::bigint * 7 + salt) % tracks, 'track', true, false, md5('big' || salt || ':' || i), salt
	FROM generate_series(0, n - 1) AS i
	ON CONFLICT (user_id, repost_item_id, repost_type) WHERE is_current
	DO UPDATE SET is_delete = NOT r.is_delete, txhash = excluded.txhash, blocknumber = excluded.blocknumber;
END $$;

-- Source changes so far (inserts + updates + deletes of the three tables),
-- as the statistics system counts them.
CREATE OR REPLACE FUNCTION bench.changes() RETURNS bigint LANGUAGE sql AS $$
	SELECT sum(n_tup_ins + n_tup_upd + n_tup_del)::bigint FROM pg_stat_user_tables
	WHERE schemaname = 'public' AND relname IN ('reposts', 'saves', 'follows') $$;

-- Checksums of what the stream maintains: per column, the aggregate sum and
-- the number of active source rows it must equal.
CREATE OR REPLACE FUNCTION bench.sums() RETURNS TABLE (col text, agg bigint, src bigint) LANGUAGE sql AS $$
	SELECT 'aggregate_track.repost_count', (SELECT sum(repost_count) FROM aggregate_track),
		(SELECT count(*) FROM reposts WHERE is_current AND NOT is_delete AND repost_type = 'track')
	UNION ALL SELECT 'aggregate_track.save_count', (SELECT sum(save_count) FROM aggregate_track),
		(SELECT count(*) FROM saves WHERE is_current AND NOT is_delete AND save_type = 'track')
	UNION ALL SELECT 'aggregate_playlist.repost_count', (SELECT sum(repost_count) FROM aggregate_playlist),
		(SELECT count(*) FROM reposts WHERE is_current AND NOT is_delete AND repost_type <> 'track')
	UNION ALL SELECT 'aggregate_user.repost_count', (SELECT sum(repost_count) FROM aggregate_user),
		(SELECT count(*) FROM reposts WHERE is_current AND NOT is_delete)
	UNION ALL SELECT 'aggregate_user.track_save_count', (SELECT sum(track_save_count) FROM aggregate_user),
		(SELECT count(*) FROM saves WHERE is_current AND NOT is_delete AND save_type = 'track')
	UNION ALL SELECT 'aggregate_user.follower_count', (SELECT sum(follower_count) FROM aggregate_user),
		(SELECT count(*) FROM follows WHERE is_current AND NOT is_delete)
	UNION ALL SELECT 'aggregate_user.following_count', (SELECT sum(following_count) FROM aggregate_user),
		(SELECT count(*) FROM follows WHERE is_current AND NOT is_delete) $$;

-- Wait-event sampler for the writers of scenario 2: every 50 ms, what each
-- active pgbench backend waits on ('CPU' when on a CPU or waiting for one).
CREATE UNLOGGED TABLE IF NOT EXISTS bench.wait_samples (setup text NOT NULL, ev text NOT NULL);
CREATE OR REPLACE PROCEDURE bench.waits(setup text, seconds double precision)
LANGUAGE plpgsql AS $$
DECLARE
	d timestamptz := clock_timestamp() + make_interval(secs => seconds);
BEGIN
	WHILE clock_timestamp() < d LOOP
		INSERT INTO bench.wait_samples
		SELECT setup, coalesce(wait_event_type || ':' || wait_event, 'CPU')
		FROM pg_stat_activity WHERE application_name = 'pgbench' AND state = 'active';
		COMMIT;
		PERFORM pg_sleep(0.05);
	END LOOP;
END $$;
