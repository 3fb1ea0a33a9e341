-- --take-ownership: slot $1 takes the counts from slot $2. Both slots'
-- progress and checkpoints go, since the new slot's initial load recounts
-- the counts exactly.
WITH p AS (DELETE FROM walcount.progress WHERE slot_name IN ($1, $2)),
c AS (DELETE FROM walcount.checkpoints WHERE slot_name IN ($1, $2))
UPDATE walcount.owner SET slot_name = $1, since = now()
