-- Commit-to-visible latency probe for bench/reconcile.sh (Figure 2).
-- bench.probe(phase, seconds, user, track) toggles is_delete of the probe's
-- own repost (an upsert-in-place re-delivery with a new txhash), commits,
-- then polls aggregate_track.repost_count of the probe track every 2 ms
-- until walcount has applied the change; the time from just before COMMIT
-- to the first poll that sees the new count goes into bench.probe_samples
-- (unlogged: not in the WAL, so not in the stream). Probes are spaced by a
-- random 20-70 ms so they fall at random points of the batch cycle.
CREATE SCHEMA IF NOT EXISTS bench;
CREATE UNLOGGED TABLE IF NOT EXISTS bench.probe_samples (
	phase text NOT NULL, ms double precision NOT NULL, seen boolean NOT NULL,
	at timestamptz NOT NULL DEFAULT clock_timestamp());

CREATE OR REPLACE PROCEDURE bench.probe(phase text, seconds double precision, probe_user int, probe_track int)
LANGUAGE plpgsql AS $$
DECLARE
	deadline timestamptz := clock_timestamp() + make_interval(secs => seconds);
	del boolean;
	want int;
	got int;
	t0 timestamptz;
BEGIN
	SELECT is_delete INTO STRICT del FROM reposts
	WHERE user_id = probe_user AND repost_item_id = probe_track AND repost_type = 'track' AND is_current;
	WHILE clock_timestamp() < deadline LOOP
		del := NOT del;
		want := CASE WHEN del THEN 0 ELSE 1 END;
		UPDATE reposts SET is_delete = del, txhash = md5(clock_timestamp()::text)
		WHERE user_id = probe_user AND repost_item_id = probe_track AND repost_type = 'track' AND is_current;
		t0 := clock_timestamp();
		COMMIT;
		LOOP
			SELECT repost_count INTO got FROM aggregate_track WHERE track_id = probe_track;
			EXIT WHEN got = want OR clock_timestamp() > t0 + interval '60 s';
			PERFORM pg_sleep(0.002);
		END LOOP;
		INSERT INTO bench.probe_samples (phase, ms, seen)
		VALUES (phase, extract(epoch FROM clock_timestamp() - t0) * 1000, got = want);
		COMMIT;
		PERFORM pg_sleep(0.02 + random() * 0.05);
	END LOOP;
END $$;

-- Stream stall sampler for bench/reconcile.sh (Figure 2), the same for
-- every walcount revision: walcount writes its walcount.progress row(s) in
-- the transaction of each batch it applies, so max(lsn) moves once per
-- applied batch. bench.stall(phase, seconds) polls it every 2 ms, each poll
-- its own transaction (no snapshot held for the phase), and records the
-- longest time between two polls that saw it move (the interval still open
-- at the end counts too), the p99 of those intervals and how many there
-- were. Without a sweep the longest is the batch interval plus one apply;
-- a sweep's step that holds up the stream adds to it.
CREATE UNLOGGED TABLE IF NOT EXISTS bench.stall_samples (
	phase text NOT NULL, longest_ms double precision NOT NULL, p99_ms double precision,
	moves int NOT NULL, polls int NOT NULL, longest_at timestamptz);

CREATE OR REPLACE PROCEDURE bench.stall(phase text, seconds double precision)
LANGUAGE plpgsql AS $$
DECLARE
	deadline timestamptz := clock_timestamp() + make_interval(secs => seconds);
	cur pg_lsn;
	last pg_lsn;
	since timestamptz;
	seen_at timestamptz;
	gap double precision;
	longest double precision := 0;
	longest_at timestamptz;
	gaps double precision[] := '{}';
	polls int := 0;
BEGIN
	SELECT max(lsn) INTO last FROM walcount.progress;
	since := clock_timestamp();
	COMMIT;
	WHILE clock_timestamp() < deadline LOOP
		SELECT max(lsn) INTO cur FROM walcount.progress;
		seen_at := clock_timestamp();
		COMMIT;
		polls := polls + 1;
		IF cur IS DISTINCT FROM last THEN
			gap := extract(epoch FROM seen_at - since) * 1000;
			gaps := gaps || gap;
			IF gap > longest THEN
				longest := gap;
				longest_at := since;
			END IF;
			last := cur;
			since := seen_at;
		END IF;
		PERFORM pg_sleep(0.002);
	END LOOP;
	gap := extract(epoch FROM clock_timestamp() - since) * 1000;
	IF gap > longest THEN
		longest := gap;
		longest_at := since;
	END IF;
	INSERT INTO bench.stall_samples (phase, longest_ms, p99_ms, moves, polls, longest_at)
	SELECT phase, longest, percentile_disc(0.99) WITHIN GROUP (ORDER BY g), cardinality(gaps), polls, longest_at
	FROM unnest(gaps) AS g;
END $$;
