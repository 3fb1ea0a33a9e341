-- The slot gauges of /metrics for slot $1: bytes from the applied progress
-- $2 and from the slot's restart_lsn to the server's WAL end, whether the
-- slot is active, its wal_status, and how many walcount standbys wait for
-- it (consumer.c names a standby's connection "walcount standby SLOT";
-- the server keeps 63 bytes of an application_name, NAMEDATALEN - 1, so a
-- slot name over 46 bytes is matched as truncated: slot names are ASCII,
-- so left() counts bytes).
SELECT pg_current_wal_lsn() - $2::pg_lsn, pg_current_wal_lsn() - restart_lsn, active, coalesce(wal_status, ''),
	(SELECT count(*)
	FROM pg_stat_activity
	WHERE datname = current_database() AND application_name = left('walcount standby ' || $1, 63))
FROM pg_replication_slots
WHERE slot_name = $1
