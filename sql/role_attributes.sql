-- Whether the current role may open replication connections (REPLICATION,
-- or a superuser), and its name for the fix prereq.c prints.
SELECT rolreplication OR rolsuper, current_user
FROM pg_roles
WHERE rolname = current_user
