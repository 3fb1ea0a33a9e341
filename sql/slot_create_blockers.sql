-- What the creation of slot $1 waits for, one line per transaction, the
-- one its walsender waits on first, then the oldest. CREATE_REPLICATION_SLOT
-- reaches its consistent point only once every transaction that held an xid
-- when it started has ended, prepared ones included; meanwhile the slot is
-- listed, active, with no confirmed_flush_lsn. The walsender waits on one
-- xid lock at a time (pg_locks, readable by any role); pg_stat_activity
-- shows other roles' sessions only to members of pg_read_all_stats, so a
-- waited-on xid with no visible holder is still named.
WITH waited AS (
	SELECT l.transactionid::text::xid8 AS xid
	FROM pg_replication_slots s
	JOIN pg_locks l ON l.pid = s.active_pid AND l.locktype = 'transactionid' AND NOT l.granted
	WHERE s.slot_name = $1 AND s.confirmed_flush_lsn IS NULL
),
holders AS (
	SELECT p.transaction::text AS xid, p.prepared AS since,
		format('prepared transaction gid=%s xid=%s (age %s, owner %s, database %s; end it with COMMIT PREPARED %L or ROLLBACK PREPARED %L)',
			p.gid, p.transaction, date_trunc('second', now() - p.prepared), p.owner, p.database, p.gid, p.gid) AS what
	FROM pg_prepared_xacts p
	UNION ALL
	SELECT a.backend_xid::text, a.xact_start,
		format('transaction xid=%s of PID %s (age %s, state %s, query start %s, user %s, database %s, application %s)',
			a.backend_xid, a.pid, date_trunc('second', now() - a.xact_start), a.state,
			to_char(a.query_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), a.usename, a.datname,
			nullif(a.application_name, ''))
	FROM pg_stat_activity a
	WHERE a.backend_xid IS NOT NULL AND a.pid <> pg_backend_pid()
)
SELECT coalesce(h.what, format('transaction xid=%s (its session is not visible to this role)', w.xid)) AS what
FROM waited w
FULL JOIN holders h ON h.xid = w.xid::text
WHERE EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND confirmed_flush_lsn IS NULL)
ORDER BY w.xid IS NULL, h.since NULLS FIRST
