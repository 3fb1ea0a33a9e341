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
