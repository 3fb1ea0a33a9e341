-- The owner of the counts (walcount.owner) and the state of its slot, for
-- slot.c's ownership check and its refusal line. No row: nobody owns them.
SELECT o.slot_name,
	s.slot_name IS NOT NULL AS slot_exists,
	coalesce(s.active, false) AS active,
	s.active_pid,
	pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)) AS retained
FROM walcount.owner o
LEFT JOIN pg_replication_slots s ON s.slot_name = o.slot_name
