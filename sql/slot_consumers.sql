-- Who would stand in the way of dropping slot $1: the PID streaming from
-- it, and the backend PIDs of walcount standbys waiting for it (consumer.c
-- names a standby's connection "walcount standby SLOT", which the server
-- cuts to 63 bytes, NAMEDATALEN - 1: slot names are ASCII, so left()
-- counts bytes).
SELECT (SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1 AND active),
	(SELECT string_agg(pid::text, ', ')
	FROM pg_stat_activity
	WHERE datname = current_database() AND application_name = left('walcount standby ' || $1, 63))
