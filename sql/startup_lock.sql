-- Tries the start-up lock: true when taken, and the PID holding it (this
-- session's own when taken). Its keys ('wcnt', 1) = (2003070580, 1) name
-- one lock per database whatever the slot name, since advisory locks are
-- scoped to the database: two deployments with different slot names are
-- serialized too. pg_locks shows a two-key lock with objsubid 2.
SELECT pg_try_advisory_lock(2003070580, 1),
	(SELECT min(pid)
	FROM pg_locks
	WHERE locktype = 'advisory' AND granted AND (classid, objid, objsubid) = (2003070580, 1, 2)
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))
