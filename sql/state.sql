-- walcount's own state (design.md §5). Idempotent: run at every start.
-- Not CREATE SCHEMA IF NOT EXISTS: that needs CREATE on the database even
-- when the schema exists, which the role of roles.sql does not have.
DO $$
BEGIN
	IF to_regnamespace('walcount') IS NULL THEN
		CREATE SCHEMA walcount;
	END IF;
END $$;

-- One row per slot and partition of the aggregate rows (apply.workers;
-- ledger.h): lsn is the commit end LSN of the last transaction whose changes
-- are all applied to the partition; a transaction applied in parts (larger
-- than batch.max_keys) records its xid and how many of its changes are
-- applied, so a restart skips exactly those.
CREATE TABLE IF NOT EXISTS walcount.progress (
	slot_name text NOT NULL,
	part int NOT NULL DEFAULT 0,
	lsn pg_lsn NOT NULL,
	partial_xid bigint,
	partial_changes bigint NOT NULL DEFAULT 0,
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (slot_name, part)
);

-- An install from before partitions has one row per slot: partition 0.
DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'walcount.progress'::regclass
			AND attname = 'part' AND NOT attisdropped) THEN
		ALTER TABLE walcount.progress ADD COLUMN part int NOT NULL DEFAULT 0;
		ALTER TABLE walcount.progress DROP CONSTRAINT progress_pkey;
		ALTER TABLE walcount.progress ADD PRIMARY KEY (slot_name, part);
	END IF;
END $$;

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

-- Which server wrote the progress row: its system identifier and timeline,
-- stamped by a trigger on every write (the initial load's and each
-- batch's, atomically with the position), so a start or a reconnect can
-- tell a promoted standby from a diverged server or another cluster
-- (identity.c). Each step only when missing: an older install is upgraded
-- by its owner, an up-to-date one needs no privilege beyond the others.
DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'walcount.progress'::regclass
			AND attname = 'timeline' AND NOT attisdropped) THEN
		ALTER TABLE walcount.progress ADD COLUMN IF NOT EXISTS system_id numeric,
			ADD COLUMN IF NOT EXISTS timeline bigint;
	END IF;
	-- pg_control_system() gives the identifier as a signed bigint.
	IF to_regprocedure('walcount.server_system_id()') IS NULL THEN
		CREATE FUNCTION walcount.server_system_id() RETURNS numeric LANGUAGE sql STABLE AS $f$
			SELECT CASE WHEN system_identifier < 0 THEN system_identifier::numeric + 18446744073709551616
				ELSE system_identifier::numeric END
			FROM pg_control_system()
		$f$;
	END IF;
	-- The timeline WAL is written on now, IDENTIFY_SYSTEM's.
	IF to_regprocedure('walcount.server_timeline()') IS NULL THEN
		CREATE FUNCTION walcount.server_timeline() RETURNS bigint LANGUAGE sql STABLE AS $f$
			SELECT ('x' || left(pg_walfile_name(pg_current_wal_lsn()), 8))::bit(32)::bigint
		$f$;
	END IF;
	-- pg_control_system() reads the control file: only when the timeline
	-- changed, not on every batch.
	IF to_regprocedure('walcount.stamp_identity()') IS NULL THEN
		CREATE FUNCTION walcount.stamp_identity() RETURNS trigger LANGUAGE plpgsql AS $f$
		BEGIN
			NEW.timeline := walcount.server_timeline();
			IF TG_OP = 'INSERT' OR OLD.system_id IS NULL OR OLD.timeline IS DISTINCT FROM NEW.timeline THEN
				NEW.system_id := walcount.server_system_id();
			END IF;
			RETURN NEW;
		END
		$f$;
	END IF;
	IF NOT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = 'walcount.progress'::regclass
			AND tgname = 'progress_identity') THEN
		CREATE TRIGGER progress_identity BEFORE INSERT OR UPDATE ON walcount.progress
			FOR EACH ROW EXECUTE FUNCTION walcount.stamp_identity();
	END IF;
END $$;
