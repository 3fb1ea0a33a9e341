-- What a normal connection says about its server (system identifier,
-- timeline, WAL end) and what the progress row of slot $1 records: its
-- position and the server that wrote it (NULLs: no row, or a row an older
-- walcount wrote). identity.c compares both with IDENTIFY_SYSTEM.
SELECT walcount.server_system_id()::text, walcount.server_timeline(), pg_current_wal_lsn()::text,
	p.lsn::text, p.system_id::text, p.timeline
FROM (SELECT) one
LEFT JOIN walcount.progress p ON p.slot_name = $1
