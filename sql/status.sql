-- The health of one slot for `walcount status` (design.md §7), after
-- PeerDB's slot monitoring: the slot, its walsender and decoding statistics,
-- and walcount's own progress and checkpoints. $1 is the slot name.
-- Always exactly one row: the columns of whatever is missing (slot,
-- walsender, statistics, progress row, checkpoint) are NULL. Needs the
-- walcount schema, which status.c checks for first.
WITH arg AS (
	SELECT $1::text AS slot_name, pg_current_wal_lsn() AS wal_lsn, now() AS now
)
SELECT
	arg.slot_name,
	s.plugin, s.active, s.active_pid, s.restart_lsn, s.confirmed_flush_lsn,
	s.wal_status, s.safe_wal_size,
	pg_wal_lsn_diff(arg.wal_lsn, s.restart_lsn)::bigint AS retained_wal_bytes,
	r.state AS walsender_state,
	(extract(epoch FROM r.write_lag) * 1000)::bigint AS write_lag_ms,
	(extract(epoch FROM r.flush_lag) * 1000)::bigint AS flush_lag_ms,
	(extract(epoch FROM r.replay_lag) * 1000)::bigint AS replay_lag_ms,
	st.spill_txns, st.spill_bytes, st.total_bytes,
	p.lsn AS applied_lsn,
	pg_wal_lsn_diff(arg.wal_lsn, p.lsn)::bigint AS lag_bytes,
	(extract(epoch FROM arg.now - p.updated_at) * 1000)::bigint AS progress_age_ms,
	-- PostgreSQL 15 has no pg_replication_slots.inactive_since (17 adds
	-- it). The last progress write (a batch or a heartbeat) is the best
	-- proxy for when walcount last used the slot; it overstates the
	-- inactive time by however long walcount was idle before it stopped.
	CASE WHEN NOT s.active
		THEN (extract(epoch FROM arg.now - p.updated_at) * 1000)::bigint
	END AS inactive_ms,
	c.lsn AS checkpoint_lsn,
	to_char(c.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS checkpoint_at,
	to_char(rc.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS reconcile_at,
	rc.reconcile_checked, rc.reconcile_corrected, rc.reconcile_duration_ms,
	(SELECT slot_name FROM walcount.owner) AS owner,
	-- Instances standing by for the slot name their connection so
	-- (consumer.c), cut by the server to 63 bytes (NAMEDATALEN - 1; slot
	-- names are ASCII, so left() counts bytes): where they run and since when.
	(SELECT coalesce(json_agg(json_build_object('pid', a.pid, 'client_addr', a.client_addr,
		'application_name', a.application_name,
		'since', to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
		ORDER BY a.backend_start), '[]')
	 FROM pg_stat_activity a
	 WHERE a.datname = current_database() AND a.application_name = left('walcount standby ' || arg.slot_name, 63)) AS standbys,
	-- wal2json slots of this database that do not own the counts: an old
	-- walcount slot left behind pins WAL, and a consumer of it would count
	-- every change a second time.
	(SELECT coalesce(json_agg(json_build_object('name', o.slot_name, 'active', o.active,
		'retained_wal_bytes', pg_wal_lsn_diff(arg.wal_lsn, o.restart_lsn)::bigint) ORDER BY o.slot_name), '[]')
	 FROM pg_replication_slots o
	 WHERE o.plugin = 'wal2json' AND o.database = current_database()
	   AND o.slot_name <> coalesce((SELECT slot_name FROM walcount.owner), arg.slot_name)) AS other_slots
FROM arg
LEFT JOIN pg_replication_slots s ON s.slot_name = arg.slot_name
LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid
LEFT JOIN pg_stat_replication_slots st ON st.slot_name = arg.slot_name
-- The earliest partition is what walcount confirms; the last write of any
-- partition is when it last applied something.
LEFT JOIN LATERAL (
	SELECT min(lsn) AS lsn, max(updated_at) AS updated_at FROM walcount.progress
	WHERE slot_name = arg.slot_name HAVING count(*) > 0
) p ON true
LEFT JOIN LATERAL (
	SELECT lsn, at FROM walcount.checkpoints
	WHERE slot_name = arg.slot_name ORDER BY id DESC LIMIT 1
) c ON true
-- A checkpoint taken with reconcile disabled has no sweep: the last
-- reconcile is the newest checkpoint that has one.
LEFT JOIN LATERAL (
	SELECT at, reconcile_checked, reconcile_corrected, reconcile_duration_ms
	FROM walcount.checkpoints
	WHERE slot_name = arg.slot_name AND reconcile_checked IS NOT NULL
	ORDER BY id DESC LIMIT 1
) rc ON true
