-- Whether the last checkpoint of slot $1 has no sweep result (true), so
-- its sweep never finished. No row: no checkpoint yet.
SELECT reconcile_checked IS NULL
FROM walcount.checkpoints
WHERE slot_name = $1
ORDER BY id DESC
LIMIT 1
