-- --takeover: ends the backend streaming from slot $1 and names it. No
-- row: nobody holds the slot.
SELECT active_pid, pg_terminate_backend(active_pid)
FROM pg_replication_slots
WHERE slot_name = $1 AND active
