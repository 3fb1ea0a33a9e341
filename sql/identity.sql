-- What a normal connection says about its server (system identifier,
-- timeline, WAL end) and what the progress rows of slot $1 record: the
-- furthest position of its partitions and the server that wrote it (NULLs:
-- no row, or a row an older walcount wrote). identity.c compares both with
-- IDENTIFY_SYSTEM. The furthest row was written last: a partition without
-- deltas lags, its row maybe from before a promotion.
SELECT walcount.server_system_id()::text, walcount.server_timeline(), pg_current_wal_lsn()::text,
	p.lsn::text, p.system_id::text, p.timeline
FROM (SELECT) one
LEFT JOIN LATERAL (
	SELECT lsn, system_id, timeline FROM walcount.progress
	WHERE slot_name = $1 ORDER BY lsn DESC, part LIMIT 1
) p ON true
