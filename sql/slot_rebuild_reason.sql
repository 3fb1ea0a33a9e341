-- Whether slot $1 can continue from walcount.progress: no progress row,
-- WAL lost, or a confirmed_flush_lsn ahead of the applied progress (then
-- both LSNs, for the message). No row: the slot is gone.
SELECT p.lsn IS NULL, s.wal_status = 'lost', s.confirmed_flush_lsn > p.lsn,
	s.confirmed_flush_lsn::text, p.lsn::text
FROM pg_replication_slots s
LEFT JOIN walcount.progress p ON p.slot_name = s.slot_name
WHERE s.slot_name = $1
