-- `walcount reconcile` asks the consumer of slot $1 for a sweep (dry run
-- when $2); the id is what it then waits on (request_state.sql).
INSERT INTO walcount.sweep_requests (slot_name, dry_run)
VALUES ($1, $2)
RETURNING id
