#include "slot.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "log.h"
#include "sqlfiles.h"

bool slot_state_schema(PGconn *conn, char *err, size_t errlen)
{
	PGresult *res = db_exec(conn, "creating walcount state schema", sql_state, err, errlen);

	PQclear(res);
	return res != NULL;
}

/* How long a slot held by another process is waited for: the walsender of a
 * walcount that was just killed lets go of the slot only once it notices the
 * closed connection, usually within milliseconds. */
#define SLOT_BUSY_WAIT_MS 15000
#define SLOT_BUSY_POLL_MS 250

enum slot_state { SLOT_ERROR = -1, SLOT_MISSING, SLOT_READY, SLOT_BUSY };

static enum slot_state inspect(PGconn *conn, const char *name, char *err, size_t errlen)
{
	const char *params[1] = {name};
	PGresult *res = db_exec_params(conn, "inspecting replication slot",
				       "SELECT plugin, database = current_database(), active, active_pid "
				       "FROM pg_replication_slots WHERE slot_name = $1",
				       1, params, err, errlen);
	enum slot_state rc = SLOT_READY;

	if (res == NULL)
		return SLOT_ERROR;
	if (PQntuples(res) == 0)
		rc = SLOT_MISSING;
	else if (strcmp(PQgetvalue(res, 0, 0), "wal2json") != 0)
		rc = SLOT_ERROR, snprintf(err, errlen, "slot %s uses plugin %s, not wal2json; choose another slot.name or drop it: SELECT pg_drop_replication_slot('%s');",
				  name, PQgetvalue(res, 0, 0), name);
	else if (strcmp(PQgetvalue(res, 0, 1), "t") != 0)
		rc = SLOT_ERROR, snprintf(err, errlen, "slot %s belongs to another database", name);
	else if (strcmp(PQgetvalue(res, 0, 2), "t") == 0)
		rc = SLOT_BUSY, snprintf(err, errlen, "slot %s is in use by PID %s (another walcount?)", name, PQgetvalue(res, 0, 3));
	PQclear(res);
	return rc;
}

/* Creates the slot over a replication connection; *point gets its
 * consistent point as text. */
static bool create_slot(const struct config *cfg, char *point, size_t pointlen, char *err, size_t errlen)
{
	char sql[256];
	PGconn *repl = db_connect(cfg, DB_REPLICATION, err, errlen);

	if (repl == NULL)
		return false;
	snprintf(sql, sizeof sql, "CREATE_REPLICATION_SLOT \"%s\" LOGICAL wal2json (SNAPSHOT 'nothing')", cfg->slot_name);
	PGresult *res = db_exec(repl, "creating replication slot", sql, err, errlen);
	if (res != NULL)
		snprintf(point, pointlen, "%s", PQgetvalue(res, 0, 1));
	PQclear(res);
	PQfinish(repl);
	return res != NULL;
}

static bool record_start(PGconn *conn, const char *slot, const char *point, char *err, size_t errlen)
{
	const char *params[2] = {slot, point};
	PGresult *res = db_exec_params(conn, "recording slot start",
				       "INSERT INTO walcount.progress (slot_name, lsn) VALUES ($1, $2::pg_lsn) "
				       "ON CONFLICT (slot_name) DO UPDATE SET lsn = excluded.lsn, partial_xid = NULL, "
				       "partial_changes = 0, updated_at = now()",
				       2, params, err, errlen);

	PQclear(res);
	return res != NULL;
}

/* Until the exact initial load exists, rows written before the slot are not
 * counted by the stream: say so instead of starting silently wrong. */
static void warn_if_preexisting(PGconn *conn)
{
	char err[256];
	PGresult *res = db_exec(conn, "checking source tables",
				"SELECT EXISTS (SELECT 1 FROM public.reposts) OR EXISTS (SELECT 1 FROM public.saves) "
				"OR EXISTS (SELECT 1 FROM public.follows)",
				err, sizeof err);

	if (res == NULL)
		log_warn("%s", err);
	else if (strcmp(PQgetvalue(res, 0, 0), "t") == 0)
		log_warn("source tables held rows before the slot was created: the stream counts only later changes; "
			 "run `walcount reconcile` to count the earlier rows");
	PQclear(res);
}

/* Inspects the slot, waiting a while for one that another process holds. */
static enum slot_state inspect_patiently(PGconn *conn, const char *name, char *err, size_t errlen)
{
	enum slot_state st = inspect(conn, name, err, errlen);

	for (int waited = 0; st == SLOT_BUSY && waited < SLOT_BUSY_WAIT_MS; waited += SLOT_BUSY_POLL_MS) {
		if (waited == 0)
			log_warn("%s; waiting up to %d s for it to be released", err, SLOT_BUSY_WAIT_MS / 1000);
		nanosleep(&(struct timespec){0, SLOT_BUSY_POLL_MS * 1000000L}, NULL);
		st = inspect(conn, name, err, errlen);
	}
	return st;
}

bool slot_ensure(PGconn *conn, const struct config *cfg, bool *created, char *err, size_t errlen)
{
	char point[32];

	*created = false;
	if (cfg->slot_temporary)
		return true;
	enum slot_state state = inspect_patiently(conn, cfg->slot_name, err, errlen);
	if (state != SLOT_MISSING)
		return state == SLOT_READY;
	if (!create_slot(cfg, point, sizeof point, err, errlen) || !record_start(conn, cfg->slot_name, point, err, errlen))
		return false;
	*created = true;
	log_info("slot created: %s at %s", cfg->slot_name, point);
	warn_if_preexisting(conn);
	return true;
}
