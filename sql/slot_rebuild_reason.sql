-- Whether slot $1 can continue from walcount.progress: no progress row,
-- WAL lost, or a confirmed_flush_lsn ahead of the applied progress, the
-- earliest partition's, which is what walcount confirms (then both LSNs,
-- for the message). No row: the slot is gone.
SELECT p.lsn IS NULL, s.wal_status = 'lost', s.confirmed_flush_lsn > p.lsn,
	s.confirmed_flush_lsn::text, p.lsn::text
FROM pg_replication_slots s
LEFT JOIN LATERAL (
	SELECT min(lsn) AS lsn FROM walcount.progress WHERE slot_name = s.slot_name
) p ON true
WHERE s.slot_name = $1
