-- Slot $1 as slot.c checks it before use: its plugin, whether it belongs
-- to this database, and whether (and by which PID) it is in use. No row:
-- no such slot.
SELECT plugin, database = current_database(), active, active_pid
FROM pg_replication_slots
WHERE slot_name = $1
