-- Whether walcount's state tables exist, asked apart from status.sql: a
-- query naming a missing table fails as a whole, and a missing schema
-- deserves a message that says what to do.
SELECT to_regclass('walcount.progress') IS NOT NULL
	AND to_regclass('walcount.checkpoints') IS NOT NULL
	AND to_regclass('walcount.owner') IS NOT NULL
