-- The sweep result of checkpoint $1: keys checked, the cells it corrected
-- per table.column (JSON), and how long it took.
UPDATE walcount.checkpoints
SET reconcile_checked = $2, reconcile_corrected = $3::jsonb, reconcile_duration_ms = $4
WHERE id = $1
