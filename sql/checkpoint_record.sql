-- A checkpoint of slot $1 at durable progress $2; its id is where the
-- sweep that follows records its result (checkpoint_result.sql).
INSERT INTO walcount.checkpoints (slot_name, lsn)
VALUES ($1, $2::pg_lsn)
RETURNING id
