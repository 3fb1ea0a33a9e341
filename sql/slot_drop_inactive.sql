-- Drops slot $1 when it exists and nobody streams from it:
-- pg_drop_replication_slot fails on an active slot.
SELECT pg_drop_replication_slot(slot_name)
FROM pg_replication_slots
WHERE slot_name = $1
