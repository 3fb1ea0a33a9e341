-- The progress rows of slot $1 (apply.c), one per partition: the last fully
-- applied commit end LSN and, for a transaction applied in parts, its xid
-- and how many of its changes are applied. No row: nothing applied yet.
SELECT part, lsn::text, coalesce(partial_xid, 0), partial_changes
FROM walcount.progress
WHERE slot_name = $1
ORDER BY part
