-- Where sweep request $1 stands, for the `walcount reconcile` that waits on
-- it: finished, its outcome and printed result, whether a consumer streams
-- the slot (a request nobody streams for long fails), and started.
SELECT r.finished_at IS NOT NULL, coalesce(r.ok, false), coalesce(r.result, ''),
	coalesce(s.active, false), r.started_at IS NOT NULL
FROM walcount.sweep_requests r
LEFT JOIN pg_replication_slots s ON s.slot_name = r.slot_name
WHERE r.id = $1
