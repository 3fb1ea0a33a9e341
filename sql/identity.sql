-- What a normal connection says about its server (system identifier,
-- timeline, WAL end) and what the progress row of slot $1 records: its
-- position and the server that wrote it (NULLs: no row, or a row an older
-- walcount wrote). identity.c compares both with IDENTIFY_SYSTEM.
SELECT i.system_id::text, i.timeline, pg_current_wal_lsn()::text,
	p.lsn::text, p.system_id::text, p.timeline
FROM walcount.server_identity() i
LEFT JOIN walcount.progress p ON p.slot_name = $1
