#include "slot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "log.h"
#include "metrics.h"
#include "sqlfiles.h"

/* How long a slot held by another process is waited for: the walsender of a
 * walcount that was just killed lets go of the slot only once it notices the
 * closed connection, usually within milliseconds. */
#define SLOT_BUSY_WAIT_MS 15000
#define SLOT_BUSY_POLL_MS 250

enum slot_state { SLOT_ERROR = -1, SLOT_MISSING, SLOT_READY, SLOT_BUSY };

bool slot_state_schema(PGconn *conn, char *err, size_t errlen)
{
	PGresult *res = db_exec(conn, "creating walcount state schema", sql_state, err, errlen);

	PQclear(res);
	return res != NULL;
}

/* Runs a statement whose only parameter is the slot name. */
static PGresult *slot_query(PGconn *conn, const char *what, const char *sql, const char *slot, char *err,
			    size_t errlen)
{
	const char *params[1] = {slot};

	return db_exec_params(conn, what, sql, 1, params, err, errlen);
}

static enum slot_state inspect(PGconn *conn, const char *name, char *err, size_t errlen)
{
	PGresult *res = slot_query(conn, "inspecting replication slot",
				   "SELECT plugin, database = current_database(), active, active_pid "
				   "FROM pg_replication_slots WHERE slot_name = $1",
				   name, err, errlen);
	enum slot_state st = SLOT_READY;

	if (res == NULL)
		return SLOT_ERROR;
	if (PQntuples(res) == 0) {
		st = SLOT_MISSING;
	} else if (strcmp(PQgetvalue(res, 0, 0), "wal2json") != 0) {
		snprintf(err, errlen, "slot %s uses plugin %s, not wal2json; choose another slot.name, or drop it: SELECT pg_drop_replication_slot('%s');",
			 name, PQgetvalue(res, 0, 0), name);
		st = SLOT_ERROR;
	} else if (strcmp(PQgetvalue(res, 0, 1), "t") != 0) {
		snprintf(err, errlen, "slot %s belongs to another database", name);
		st = SLOT_ERROR;
	} else if (strcmp(PQgetvalue(res, 0, 2), "t") == 0) {
		snprintf(err, errlen, "slot %s is in use by PID %s; stop that consumer, or start with --takeover to end it",
			 name, PQgetvalue(res, 0, 3));
		st = SLOT_BUSY;
	}
	PQclear(res);
	return st;
}

/* Ends the backend holding the slot (a stale walcount, as Materialize's
 * takeover does) so this process can have it. */
static void take_over(PGconn *conn, const char *name)
{
	char err[512];
	PGresult *res = slot_query(conn, "taking over the slot",
				   "SELECT active_pid, pg_terminate_backend(active_pid) FROM pg_replication_slots "
				   "WHERE slot_name = $1 AND active",
				   name, err, sizeof err);

	if (res == NULL)
		log_warn("%s", err);
	else if (PQntuples(res) == 1)
		log_warn("takeover: terminated PID %s, which held slot %s", PQgetvalue(res, 0, 0), name);
	PQclear(res);
}

/* Inspects the slot, waiting a while for one another process holds. */
static enum slot_state inspect_patiently(PGconn *conn, const char *name, bool takeover, char *err, size_t errlen)
{
	enum slot_state st = inspect(conn, name, err, errlen);

	for (int waited = 0; st == SLOT_BUSY && waited < SLOT_BUSY_WAIT_MS; waited += SLOT_BUSY_POLL_MS) {
		if (takeover)
			take_over(conn, name);
		else if (waited == 0)
			log_warn("%s; waiting up to %d s for it to be released", err, SLOT_BUSY_WAIT_MS / 1000);
		nanosleep(&(struct timespec){0, SLOT_BUSY_POLL_MS * 1000000L}, NULL);
		st = inspect(conn, name, err, errlen);
	}
	return st;
}

static bool exec_simple(PGconn *conn, const char *what, const char *sql, char *err, size_t errlen)
{
	PGresult *res = db_exec(conn, what, sql, err, errlen);

	PQclear(res);
	return res != NULL;
}

/* Recounts in the slot's exported snapshot and records its consistent point
 * as the progress, in one transaction on conn. */
static bool load_in_snapshot(PGconn *conn, const char *slot, const char *snapshot, const char *point, char *err,
			     size_t errlen)
{
	char sql[128];
	const char *params[2] = {slot, point};

	snprintf(sql, sizeof sql, "SET TRANSACTION SNAPSHOT '%s'", snapshot);
	if (!exec_simple(conn, "starting initial load", "BEGIN ISOLATION LEVEL REPEATABLE READ", err, errlen))
		return false;
	PGresult *res = NULL;
	if (exec_simple(conn, "importing the slot's snapshot", sql, err, errlen) &&
	    exec_simple(conn, "initial load recount", sql_recount, err, errlen))
		res = db_exec_params(conn, "initial load", sql_initial_load, 2, params, err, errlen);
	if (res == NULL || !exec_simple(conn, "committing initial load", "COMMIT", err, errlen)) {
		PQclear(res);
		PQclear(PQexec(conn, "ROLLBACK"));
		return false;
	}
	log_info("initial load: slot %s at %s; rows written: %s aggregate_user, %s aggregate_track, %s aggregate_playlist",
		 slot, point, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2));
	PQclear(res);
	return true;
}

static void drop_slot_quietly(PGconn *conn, const char *slot)
{
	char err[512];
	PGresult *res = slot_query(conn, "dropping slot", "SELECT pg_drop_replication_slot($1)", slot, err, sizeof err);

	if (res == NULL)
		log_warn("%s", err);
	PQclear(res);
}

/* Creates the slot with an exported snapshot over a replication connection,
 * which must stay open and idle until the snapshot has been imported. A
 * failed load drops the new slot, so a retry starts clean. */
static bool create_and_load(PGconn *conn, const struct config *cfg, char *err, size_t errlen)
{
	char sql[256];
	PGconn *repl = db_connect(cfg, DB_REPLICATION, err, errlen);

	if (repl == NULL)
		return false;
	snprintf(sql, sizeof sql, "CREATE_REPLICATION_SLOT \"%s\" LOGICAL wal2json (SNAPSHOT 'export')", cfg->slot_name);
	PGresult *res = db_exec(repl, "creating replication slot", sql, err, errlen);
	bool ok = res != NULL;
	if (ok) {
		log_info("slot created: %s at %s", cfg->slot_name, PQgetvalue(res, 0, 1));
		ok = load_in_snapshot(conn, cfg->slot_name, PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 1), err, errlen);
	}
	PQclear(res);
	PQfinish(repl);
	if (res != NULL && !ok)
		drop_slot_quietly(conn, cfg->slot_name);
	return ok;
}

/* Why an existing slot cannot continue from walcount.progress; NULL when it
 * can. The reason is written into buf. */
static const char *rebuild_reason(PGconn *conn, const char *slot, char *buf, size_t len, char *err, size_t errlen,
				  bool *failed, enum rebuild_reason *label)
{
	PGresult *res = slot_query(conn, "checking slot against progress",
				   "SELECT p.lsn IS NULL, s.wal_status = 'lost', s.confirmed_flush_lsn > p.lsn, "
				   "s.confirmed_flush_lsn::text, p.lsn::text "
				   "FROM pg_replication_slots s LEFT JOIN walcount.progress p ON p.slot_name = s.slot_name "
				   "WHERE s.slot_name = $1",
				   slot, err, errlen);
	const char *why = NULL;

	*failed = res == NULL || PQntuples(res) != 1;
	if (*failed) {
		if (res != NULL)
			snprintf(err, errlen, "slot %s disappeared while being checked", slot);
	} else if (strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
		why = "walcount has no progress for it (its initial load never finished)";
		*label = REBUILD_NO_PROGRESS;
	} else if (strcmp(PQgetvalue(res, 0, 1), "t") == 0) {
		why = "the server removed WAL it still needed (wal_status lost)";
		*label = REBUILD_WAL_LOST;
	} else if (strcmp(PQgetvalue(res, 0, 2), "t") == 0) {
		*label = REBUILD_SLOT_AHEAD;
		snprintf(buf, len, "its confirmed_flush_lsn %s is ahead of the applied progress %s (advanced or replaced by something else)",
			 PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 4));
		why = buf;
	}
	if (why != NULL && why != buf)
		snprintf(buf, len, "%s", why);
	PQclear(res);
	return why ? buf : NULL;
}

/* A missing slot whose progress row is still there was not lost by a first
 * install: the server was promoted (PostgreSQL 15 copies no logical slot
 * to a standby) or someone dropped it. Says so before the load. */
static bool note_missing(PGconn *conn, const char *slot, char *err, size_t errlen)
{
	PGresult *res = slot_query(conn, "reading walcount.progress",
				   "SELECT lsn::text FROM walcount.progress WHERE slot_name = $1", slot, err, errlen);

	if (res != NULL && PQntuples(res) == 1) {
		log_warn("rebuild: slot %s is missing but walcount.progress is at %s (promoted server or dropped slot); "
			 "creating it and loading the counts again", slot, PQgetvalue(res, 0, 0));
		metrics_rebuild(REBUILD_SLOT_MISSING);
	}
	PQclear(res);
	return res != NULL;
}

bool slot_ensure(PGconn *conn, const struct config *cfg, bool takeover, char *err, size_t errlen)
{
	char why[512];
	bool failed;
	enum rebuild_reason label = REBUILD_NO_PROGRESS;

	if (cfg->slot_temporary)
		return true;
	enum slot_state st = inspect_patiently(conn, cfg->slot_name, takeover, err, errlen);
	if (st == SLOT_MISSING)
		return note_missing(conn, cfg->slot_name, err, errlen) && create_and_load(conn, cfg, err, errlen);
	if (st != SLOT_READY)
		return false;
	if (rebuild_reason(conn, cfg->slot_name, why, sizeof why, err, errlen, &failed, &label) == NULL)
		return !failed;
	log_warn("rebuild: slot %s cannot continue exactly: %s; dropping it and loading the counts again", cfg->slot_name,
		 why);
	metrics_rebuild(label);
	drop_slot_quietly(conn, cfg->slot_name);
	return create_and_load(conn, cfg, err, errlen);
}

bool slot_drop(PGconn *conn, const struct config *cfg, char *err, size_t errlen)
{
	enum slot_state st = inspect(conn, cfg->slot_name, err, errlen);
	PGresult *res;

	if (st == SLOT_ERROR || st == SLOT_BUSY)
		return false;
	if (st == SLOT_READY) {
		res = slot_query(conn, "dropping slot", "SELECT pg_drop_replication_slot($1)", cfg->slot_name, err, errlen);
		if (res == NULL)
			return false;
		PQclear(res);
		log_info("dropped slot %s", cfg->slot_name);
	}
	/* A DO block takes no parameters: the slot name goes in a setting. */
	res = slot_query(conn, "dropping walcount state", "SELECT set_config('walcount.drop_slot', $1, false)",
			 cfg->slot_name, err, errlen);
	PQclear(res);
	return res != NULL && exec_simple(conn, "dropping walcount state", sql_drop_state, err, errlen);
}
