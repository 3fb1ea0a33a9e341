-- The outcome of sweep request $1: whether it succeeded, and the text
-- `walcount reconcile` prints (or its error).
UPDATE walcount.sweep_requests
SET finished_at = now(), ok = $2, result = $3
WHERE id = $1
