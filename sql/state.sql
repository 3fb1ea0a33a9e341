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
