-- walcount's own state (design.md §5). Idempotent: run at every start.
-- Not CREATE SCHEMA IF NOT EXISTS: that needs CREATE on the database even
-- when the schema exists, which the role of roles.sql does not have.
DO $$
BEGIN
	IF to_regnamespace('walcount') IS NULL THEN
		CREATE SCHEMA walcount;
	END IF;
END $$;

-- One row per slot. lsn is the commit end LSN of the last transaction whose
-- changes are all applied; a transaction applied in parts (larger than
-- batch.max_keys) records its xid and how many of its changes are applied,
-- so a restart skips exactly those.
CREATE TABLE IF NOT EXISTS walcount.progress (
	slot_name text PRIMARY KEY,
	lsn pg_lsn NOT NULL,
	partial_xid bigint,
	partial_changes bigint NOT NULL DEFAULT 0,
	updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS walcount.checkpoints (
	id bigserial PRIMARY KEY,
	slot_name text NOT NULL,
	lsn pg_lsn NOT NULL,
	at timestamptz NOT NULL DEFAULT now(),
	reconcile_checked bigint,
	reconcile_corrected jsonb,
	reconcile_duration_ms bigint
);

-- Which slot's consumer owns the aggregate counts of this database: at most
-- one row. Two slots that both applied their deltas would double every
-- count, so a start with another slot name is refused (slot.c).
CREATE TABLE IF NOT EXISTS walcount.owner (
	one boolean PRIMARY KEY DEFAULT true CHECK (one),
	slot_name text NOT NULL,
	since timestamptz NOT NULL DEFAULT now()
);

-- An install from before the owner table: the slot that wrote progress
-- last owns the counts.
INSERT INTO walcount.owner (slot_name)
SELECT slot_name FROM walcount.progress ORDER BY updated_at DESC LIMIT 1
ON CONFLICT (one) DO NOTHING;

-- `walcount reconcile` next to a running consumer: the request is a row
-- here, the consumer of slot_name runs the sweep and writes its result
-- (the text `walcount reconcile` prints) back. Through the database, so it
-- works from any host.
CREATE TABLE IF NOT EXISTS walcount.sweep_requests (
	id bigserial PRIMARY KEY,
	slot_name text NOT NULL,
	dry_run boolean NOT NULL,
	requested_at timestamptz NOT NULL DEFAULT now(),
	started_at timestamptz,
	finished_at timestamptz,
	ok boolean,
	result text
);
