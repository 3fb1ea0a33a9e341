-- apply.workers changed (consumer.c): the progress rows of slot $1, all at
-- one position ($2 lsn, $3 partial xid or 0, $4 partial changes), become $5
-- rows at that position. Every partition has applied exactly the same
-- deltas then, so any split of the keys continues exactly. Nothing is
-- written when a row is elsewhere (another consumer moved it meanwhile).
-- Returns whether the rows were at the position.
WITH old AS (
	SELECT bool_and(lsn = $2::pg_lsn AND coalesce(partial_xid, 0) = $3::bigint
		AND partial_changes = $4::bigint) AS same
	FROM walcount.progress
	WHERE slot_name = $1
), gone AS (
	DELETE FROM walcount.progress
	WHERE slot_name = $1 AND part >= $5::int AND (SELECT same FROM old)
), added AS (
	INSERT INTO walcount.progress (slot_name, part, lsn, partial_xid, partial_changes, updated_at)
	SELECT $1, n, $2::pg_lsn, nullif($3::bigint, 0), $4::bigint, now()
	FROM generate_series(0, $5::int - 1) n
	WHERE (SELECT same FROM old)
	ON CONFLICT (slot_name, part) DO NOTHING
)
SELECT coalesce(same, false) FROM old
