#include "slot.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "db.h"
#include "loadwatch.h"
#include "log.h"
#include "lsn.h"
#include "metrics.h"
#include "notify.h"
#include "slotwait.h"
#include "sqlfiles.h"

/* A slot name's limit (NAMEDATALEN - 1) plus its NUL. */
#define NAMEDATALEN_MAX 64

/* --takeover: how long the terminated holder's walsender is given to let
 * go of the slot. */
#define SLOT_POLL_MS 250
#define LOCK_POLL_MS 100

enum slot_state { SLOT_ERROR = -1, SLOT_MISSING, SLOT_READY, SLOT_BUSY, SLOT_FOREIGN };

bool slot_state_schema(PGconn *conn, char *err, size_t errlen)
{
	return db_command(conn, "creating walcount state schema", sql_state, err, errlen);
}

/* 1 when the start-up lock was taken, 0 when another session holds it
 * (its PID in holder), -1 on error. */
static int try_lock(PGconn *conn, char *holder, size_t len, char *err, size_t errlen)
{
	PGresult *res = db_exec(conn, "taking the start-up lock", sql_startup_lock, err, errlen);
	int rc = -1;

	if (res != NULL) {
		rc = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		snprintf(holder, len, "%s", PQgetisnull(res, 0, 1) ? "?" : PQgetvalue(res, 0, 1));
	}
	PQclear(res);
	return rc;
}

bool slot_lock(PGconn *conn, volatile sig_atomic_t *stop, char *err, size_t errlen)
{
	char holder[32];
	int rc;

	for (bool logged = false; (rc = try_lock(conn, holder, sizeof holder, err, errlen)) == 0; logged = true) {
		if (!logged)
			log_info("waiting for PID %s, another walcount creating or checking a slot of this database", holder);
		/* The holder's initial load may take minutes: a wait the
		 * service manager must not end as a stuck start. */
		notify_start_progress(clock_now_ms());
		db_backoff_sleep(LOCK_POLL_MS, stop);
		if (stop != NULL && *stop) {
			snprintf(err, errlen, "stopped while waiting for PID %s to finish creating or checking its slot", holder);
			return false;
		}
	}
	return rc == 1;
}

void slot_unlock(PGconn *conn)
{
	char err[512];

	if (!db_command(conn, "releasing the start-up lock", "SELECT pg_advisory_unlock_all()", err, sizeof err))
		log_warn("%s", err);
}

/* Runs a statement whose only parameter is the slot name. */
static PGresult *slot_query(PGconn *conn, const char *what, const char *sql, const char *slot, char *err, size_t errlen)
{
	const char *params[1] = {slot};

	return db_exec_params(conn, what, sql, 1, params, err, errlen);
}

static enum slot_state inspect(PGconn *conn, const char *name, int *holder, char *err, size_t errlen)
{
	PGresult *res = slot_query(conn, "inspecting replication slot", sql_slot_inspect, name, err, errlen);
	enum slot_state st = SLOT_READY;

	if (res == NULL)
		return SLOT_ERROR;
	if (PQntuples(res) == 0) {
		st = SLOT_MISSING;
	} else if (strcmp(PQgetvalue(res, 0, 0), "wal2json") != 0) {
		snprintf(
			err, errlen,
			"slot %s uses plugin %s, not wal2json; choose another slot.name, or drop it: SELECT pg_drop_replication_slot('%s');",
			name, PQgetvalue(res, 0, 0), name);
		st = SLOT_FOREIGN;
	} else if (strcmp(PQgetvalue(res, 0, 1), "t") != 0) {
		snprintf(err, errlen, "slot %s belongs to another database", name);
		st = SLOT_FOREIGN;
	} else if (strcmp(PQgetvalue(res, 0, 2), "t") == 0) {
		snprintf(err, errlen, "slot %s is in use by PID %s", name, PQgetvalue(res, 0, 3));
		*holder = atoi(PQgetvalue(res, 0, 3));
		st = SLOT_BUSY;
	}
	PQclear(res);
	return st;
}

/* The LSN a server returned as text, for a log line's lsn field; 0 (none)
 * when it is not one. */
static lsn_t lsn_or_0(const char *text)
{
	lsn_t lsn = LSN_INVALID;

	lsn_parse(text, &lsn);
	return lsn;
}

/* Ends the backend holding the slot (a stale walcount, as Materialize's
 * takeover does) so this process can have it. */
static void take_over(PGconn *conn, const char *name)
{
	char err[512];
	PGresult *res = slot_query(conn, "taking over the slot", sql_slot_take_over, name, err, sizeof err);

	if (res == NULL)
		log_warn("%s", err);
	else if (PQntuples(res) == 1)
		log_event(LOG_WARN, "takeover", 0, 0, "takeover: terminated PID %s, which held slot %s", PQgetvalue(res, 0, 0),
			  name);
	PQclear(res);
}

/* Inspects the slot; with takeover, ends its holder and waits for the
 * holder's walsender to let go. */
static enum slot_state inspect_taking_over(PGconn *conn, const char *name, bool takeover, int64_t wait_ms, int *holder, char *err,
					   size_t errlen)
{
	enum slot_state st = inspect(conn, name, holder, err, errlen);

	for (int64_t waited = 0; takeover && st == SLOT_BUSY && waited < wait_ms; waited += SLOT_POLL_MS) {
		take_over(conn, name);
		nanosleep(&(struct timespec){0, SLOT_POLL_MS * 1000000L}, NULL);
		st = inspect(conn, name, holder, err, errlen);
	}
	return st;
}

/* Recounts in the slot's exported snapshot and records its consistent point
 * as the progress of every partition, in one transaction on conn. */
static bool load_in_snapshot(PGconn *conn, const struct config *cfg, const char *snapshot, const char *point,
			     volatile sig_atomic_t *stop, char *err, size_t errlen)
{
	char sql[128], parts[24];
	const char *slot = cfg->slot_name, *params[3] = {slot, point, parts};

	snprintf(sql, sizeof sql, "SET TRANSACTION SNAPSHOT '%s'", snapshot);
	snprintf(parts, sizeof parts, "%" PRId64, cfg->apply_workers);
	if (!db_command(conn, "starting initial load", "BEGIN ISOLATION LEVEL REPEATABLE READ", err, errlen))
		return false;
	PGresult *res = NULL, *counted = NULL;
	struct loadwatch w;
	char took[160];
	loadwatch_init(&w, slot);
	if (db_command(conn, "importing the slot's snapshot", sql, err, errlen) &&
	    (counted = loadwatch_exec(&w, conn, "recount", sql_recount, 0, NULL, stop, err, errlen)) != NULL)
		res = loadwatch_exec(&w, conn, "write", sql_initial_load, 3, params, stop, err, errlen);
	PQclear(counted);
	if (res == NULL || !db_command(conn, "committing initial load", "COMMIT", err, errlen)) {
		PQclear(res);
		PQclear(PQexec(conn, "ROLLBACK"));
		return false;
	}
	loadwatch_summary(&w, took, sizeof took);
	log_event(LOG_INFO, "initial_load", lsn_or_0(point), 0,
		  "initial load: slot %s at %s; rows written: %s aggregate_user, %s aggregate_track, %s aggregate_playlist%s",
		  slot, point, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2), took);
	PQclear(res);
	return true;
}

/* Drops a slot nobody streams from; false with err set when it is in use
 * or the drop fails (pg_drop_replication_slot itself refuses an active
 * slot, so the check and the drop cannot race). */
static bool drop_inactive(PGconn *conn, const char *slot, char *err, size_t errlen)
{
	const char *params[1] = {slot};

	return db_command_params(conn, "dropping slot", sql_slot_drop_inactive, 1, params, err, errlen);
}

static void drop_slot_quietly(PGconn *conn, const char *slot)
{
	char err[512];

	if (!drop_inactive(conn, slot, err, sizeof err))
		log_warn("%s", err);
}

/* Creates the slot with an exported snapshot over a replication connection,
 * which must stay open and idle until the snapshot has been imported. A
 * failed load drops the new slot, so a retry starts clean. */
static bool create_and_load_on(PGconn *conn, PGconn *repl, const struct config *cfg, volatile sig_atomic_t *stop, char *err,
			       size_t errlen)
{
	char sql[256];

	snprintf(sql, sizeof sql, "CREATE_REPLICATION_SLOT \"%s\" LOGICAL wal2json (SNAPSHOT 'export')", cfg->slot_name);
	notify_status("creating slot %s", cfg->slot_name);
	PGresult *res = slotwait_create(conn, repl, cfg->slot_name, sql, cfg->slot_create_report_after_ms, stop, err, errlen);
	bool ok = res != NULL;
	if (ok) {
		log_event(LOG_INFO, "slot_created", lsn_or_0(PQgetvalue(res, 0, 1)), 0, "slot created: %s at %s", cfg->slot_name,
			  PQgetvalue(res, 0, 1));
		notify_status("initial load of slot %s: recounting the source tables", cfg->slot_name);
		ok = load_in_snapshot(conn, cfg, PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 1), stop, err, errlen);
	}
	PQclear(res);
	if (res != NULL && !ok)
		drop_slot_quietly(conn, cfg->slot_name);
	return ok;
}

/* The one way into slot creation, so walcount_starting is 1 for exactly
 * the wait, the creation and the load, whichever way they end. */
static bool create_and_load(PGconn *conn, const struct config *cfg, volatile sig_atomic_t *stop, char *err, size_t errlen)
{
	metrics_starting(true);
	PGconn *repl = db_connect(cfg, DB_REPLICATION, err, errlen);
	bool ok = repl != NULL && create_and_load_on(conn, repl, cfg, stop, err, errlen);

	PQfinish(repl);
	metrics_starting(false);
	return ok;
}

/* Why an existing slot cannot continue from walcount.progress; NULL when it
 * can. The reason is written into buf. */
static const char *rebuild_reason(PGconn *conn, const char *slot, char *buf, size_t len, char *err, size_t errlen, bool *failed,
				  enum rebuild_reason *label)
{
	PGresult *res = slot_query(conn, "checking slot against progress", sql_slot_rebuild_reason, slot, err, errlen);
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
		snprintf(buf, len,
			 "its confirmed_flush_lsn %s is ahead of the applied progress %s (advanced or replaced by something else)",
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
				   "SELECT min(lsn)::text FROM walcount.progress WHERE slot_name = $1 HAVING count(*) > 0", slot,
				   err, errlen);

	bool ok = res != NULL;

	if (ok && PQntuples(res) == 1) {
		log_event(LOG_WARN, "rebuild", lsn_or_0(PQgetvalue(res, 0, 0)), 0,
			  "rebuild: slot %s is missing but walcount.progress is at %s (promoted server or dropped slot); "
			  "creating it and loading the counts again",
			  slot, PQgetvalue(res, 0, 0));
		metrics_rebuild(REBUILD_SLOT_MISSING);
	}
	PQclear(res);
	return ok;
}

/* Moves the counts to cfg's slot: the owning slot and both slots' state go
 * (the owner's counts are recounted exactly for the new slot by its
 * initial load), and the new slot is made owner. */
static enum slot_outcome take_ownership(PGconn *conn, const struct config *cfg, const char *old, char *err, size_t errlen)
{
	const char *params[2] = {cfg->slot_name, old};

	if (!drop_inactive(conn, old, err, errlen) || !drop_inactive(conn, cfg->slot_name, err, errlen))
		return SLOT_REFUSED;
	if (!db_command_params(conn, "moving ownership of the counts", sql_owner_move, 2, params, err, errlen))
		return SLOT_RETRY;
	log_event(LOG_WARN, "ownership_moved", 0, 0,
		  "ownership: slot %s takes over the counts from slot %s, which is dropped; recounting them exactly",
		  cfg->slot_name, old);
	return SLOT_OK;
}

/* One owner per database's counts: a slot that is not it is refused, with
 * what the owner is and how to move ownership. */
static enum slot_outcome check_owner(PGconn *conn, const struct config *cfg, bool take, char *err, size_t errlen)
{
	const char *params[1] = {cfg->slot_name};
	PGresult *res = db_exec(conn, "reading the owner of the counts", sql_owner, err, errlen);
	enum slot_outcome out = SLOT_OK;

	if (res == NULL)
		return SLOT_RETRY;
	if (PQntuples(res) == 0) {
		PQclear(res);
		res = db_exec_params(conn, "claiming the counts",
				     "INSERT INTO walcount.owner (slot_name) VALUES ($1) ON CONFLICT (one) DO NOTHING", 1, params,
				     err, errlen);
		out = res != NULL ? SLOT_OK : SLOT_RETRY;
	} else if (strcmp(PQgetvalue(res, 0, 0), cfg->slot_name) == 0) {
		out = SLOT_OK;
	} else if (strcmp(PQgetvalue(res, 0, 2), "t") == 0) {
		snprintf(err, errlen,
			 "the counts of database %s are owned by slot %s (active, PID %s, retaining %s of WAL), not by slot %s; "
			 "stop the consumer of slot %s first, then run `walcount run --take-ownership` to move them to %s",
			 PQdb(conn), PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 4), cfg->slot_name,
			 PQgetvalue(res, 0, 0), cfg->slot_name);
		out = SLOT_REFUSED;
	} else if (take) {
		char old[NAMEDATALEN_MAX];
		snprintf(old, sizeof old, "%s", PQgetvalue(res, 0, 0));
		PQclear(res);
		return take_ownership(conn, cfg, old, err, errlen);
	} else {
		char state[128];
		if (strcmp(PQgetvalue(res, 0, 1), "t") == 0)
			snprintf(state, sizeof state, "inactive, retaining %s of WAL", PQgetvalue(res, 0, 4));
		else
			snprintf(state, sizeof state, "its slot no longer exists");
		snprintf(err, errlen,
			 "the counts of database %s are owned by slot %s (%s), not by slot %s; "
			 "`walcount run --take-ownership` moves them to %s (drops slot %s and recounts exactly), "
			 "`walcount drop --yes` with slot %s's configuration releases them",
			 PQdb(conn), PQgetvalue(res, 0, 0), state, cfg->slot_name, cfg->slot_name, PQgetvalue(res, 0, 0),
			 PQgetvalue(res, 0, 0));
		out = SLOT_REFUSED;
	}
	PQclear(res);
	return out;
}

enum slot_outcome slot_ensure(PGconn *conn, const struct config *cfg, const struct slot_opts *o, volatile sig_atomic_t *stop,
			      int *holder, char *err, size_t errlen)
{
	char why[512];
	bool failed;
	enum slot_outcome out;
	enum rebuild_reason label = REBUILD_NO_PROGRESS;

	if (cfg->slot_temporary)
		return SLOT_OK;
	/* A slot of another plugin or database is a mistake in slot.name,
	 * whoever owns the counts: said first. */
	if (inspect(conn, cfg->slot_name, holder, err, errlen) == SLOT_FOREIGN)
		return SLOT_REFUSED;
	if ((out = check_owner(conn, cfg, o->take_ownership, err, errlen)) != SLOT_OK)
		return out;
	switch (inspect_taking_over(conn, cfg->slot_name, o->takeover, cfg->slot_release_wait_ms, holder, err, errlen)) {
	case SLOT_ERROR:
		return SLOT_RETRY;
	case SLOT_FOREIGN:
		return SLOT_REFUSED;
	case SLOT_BUSY:
		return SLOT_HELD;
	case SLOT_MISSING:
		return note_missing(conn, cfg->slot_name, err, errlen) && create_and_load(conn, cfg, stop, err, errlen)
			       ? SLOT_OK
			       : SLOT_RETRY;
	case SLOT_READY:
		break;
	}
	if (rebuild_reason(conn, cfg->slot_name, why, sizeof why, err, errlen, &failed, &label) == NULL)
		return failed ? SLOT_RETRY : SLOT_OK;
	log_event(LOG_WARN, "rebuild", 0, 0,
		  "rebuild: slot %s cannot continue exactly: %s; dropping it and loading the counts again", cfg->slot_name, why);
	metrics_rebuild(label);
	drop_slot_quietly(conn, cfg->slot_name);
	return create_and_load(conn, cfg, stop, err, errlen) ? SLOT_OK : SLOT_RETRY;
}

bool slot_moved_by_others(PGconn *conn, const char *slot, char *why, size_t len, bool *failed, char *err, size_t errlen)
{
	enum rebuild_reason label;

	return rebuild_reason(conn, slot, why, len, err, errlen, failed, &label) != NULL;
}

/* Whether drop must refuse: a walcount streams the slot, holds the
 * start-up lock, or stands by for it (consumer.c names a standby's
 * connection "walcount standby SLOT"); err says which. A streaming
 * consumer is named first: it keeps the start-up lock for a moment after
 * its slot turns active, and its PID is what the operator must stop. */
static bool refuse_busy(PGconn *conn, const struct config *cfg, char *err, size_t errlen)
{
	char holder[32];
	int locked = try_lock(conn, holder, sizeof holder, err, errlen);
	PGresult *res;

	if (locked < 0)
		return true;
	res = slot_query(conn, "looking for consumers of the slot", sql_slot_consumers, cfg->slot_name, err, errlen);
	if (res == NULL)
		return true;
	bool busy = true;
	if (!PQgetisnull(res, 0, 0))
		snprintf(err, errlen, "slot %s is in use by PID %s; stop that consumer first", cfg->slot_name,
			 PQgetvalue(res, 0, 0));
	else if (locked == 0)
		snprintf(err, errlen, "a walcount is starting on this database (PID %s holds the start-up lock); stop it first",
			 holder);
	else if (!PQgetisnull(res, 0, 1))
		snprintf(err, errlen,
			 "walcount standbys of slot %s are waiting (backend PID %s) and would recreate it; stop them first",
			 cfg->slot_name, PQgetvalue(res, 0, 1));
	else
		busy = false;
	PQclear(res);
	return busy;
}

bool slot_drop(PGconn *conn, const struct config *cfg, char *err, size_t errlen)
{
	const char *params[1] = {cfg->slot_name};

	if (refuse_busy(conn, cfg, err, errlen))
		return false;
	int holder;
	enum slot_state st = inspect(conn, cfg->slot_name, &holder, err, errlen);
	if (st == SLOT_ERROR || st == SLOT_FOREIGN)
		return false;
	if (st != SLOT_MISSING) {
		if (!drop_inactive(conn, cfg->slot_name, err, errlen))
			return false;
		log_event(LOG_INFO, "slot_dropped", 0, 0, "dropped slot %s", cfg->slot_name);
	}
	/* A DO block takes no parameters: the slot name goes in a setting. */
	return db_command_params(conn, "dropping walcount state", "SELECT set_config('walcount.drop_slot', $1, false)", 1, params,
				 err, errlen) &&
	       db_command(conn, "dropping walcount state", sql_drop_state, err, errlen);
}
