-- The slot gauges of /metrics for slot $1: bytes from the applied progress
-- $2 and from the slot's restart_lsn to the server's WAL end, and whether
-- the slot is active.
SELECT pg_current_wal_lsn() - $2::pg_lsn, pg_current_wal_lsn() - restart_lsn, active
FROM pg_replication_slots
WHERE slot_name = $1
