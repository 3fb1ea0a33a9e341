-- The consumer of slot $1 takes the oldest sweep request nobody has
-- started; SKIP LOCKED so two consumers never claim the same one. No row:
-- none waiting.
UPDATE walcount.sweep_requests
SET started_at = now()
WHERE id = (
	SELECT id
	FROM walcount.sweep_requests
	WHERE slot_name = $1 AND started_at IS NULL
	ORDER BY id
	LIMIT 1
	FOR UPDATE SKIP LOCKED
)
RETURNING id, dry_run
