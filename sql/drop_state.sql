-- Removes walcount's state of the slot named in setting walcount.drop_slot
-- (its ownership of the counts included), and the walcount schema once no
-- other slot has state in it.
DO $$
BEGIN
	IF to_regclass('walcount.progress') IS NULL THEN
		RETURN;
	END IF;
	DELETE FROM walcount.progress WHERE slot_name = current_setting('walcount.drop_slot');
	DELETE FROM walcount.checkpoints WHERE slot_name = current_setting('walcount.drop_slot');
	DELETE FROM walcount.owner WHERE slot_name = current_setting('walcount.drop_slot');
	DELETE FROM walcount.sweep_requests WHERE slot_name = current_setting('walcount.drop_slot');
	IF NOT EXISTS (SELECT 1 FROM walcount.progress) THEN
		DROP SCHEMA walcount CASCADE;
	END IF;
END $$
