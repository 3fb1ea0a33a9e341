#include "request.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "db.h"
#include "log.h"
#include "sqlfiles.h"

#define POLL_MS 200
/* A request with no consumer streaming the slot for this long fails: a
 * standby takes over within seconds, a stopped deployment never does. */
#define ORPHAN_MS 30000

/* Queues the request and wakes the consumer; *id gets its row. */
static bool queue(PGconn *conn, const char *slot, bool dry_run, char *id, size_t idlen, char *err, size_t errlen)
{
	const char *params[2] = {slot, dry_run ? "true" : "false"};
	PGresult *res = db_exec_params(conn, "queueing the sweep request", sql_request_queue, 2, params, err, errlen);

	if (res == NULL)
		return false;
	snprintf(id, idlen, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return db_command_params(conn, "notifying the consumer", "SELECT pg_notify('" REQUEST_CHANNEL "', $1)", 1, params, err,
				 errlen);
}

static void withdraw(PGconn *conn, const char *id)
{
	char err[512];
	const char *params[1] = {id};
	if (!db_command_params(conn, "withdrawing the sweep request",
			       "DELETE FROM walcount.sweep_requests WHERE id = $1 AND started_at IS NULL", 1, params, err,
			       sizeof err))
		log_warn("%s", err);
}

/* One look at the request: 1 finished (its outcome printed), 0 not yet,
 * -1 on a query error. *streamed tells whether a consumer holds the slot. */
static int look(PGconn *conn, const char *id, bool *streamed, bool *ok, bool *started, char *err, size_t errlen)
{
	const char *params[1] = {id};
	PGresult *res = db_exec_params(conn, "waiting for the sweep", sql_request_state, 1, params, err, errlen);
	int rc = 0;

	if (res == NULL || PQntuples(res) != 1) {
		if (res != NULL)
			snprintf(err, errlen, "sweep request %s disappeared (walcount drop?)", id);
		PQclear(res);
		return -1;
	}
	*streamed = strcmp(PQgetvalue(res, 0, 3), "t") == 0;
	*started = strcmp(PQgetvalue(res, 0, 4), "t") == 0;
	if (strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
		*ok = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
		if (*ok)
			printf("%s\n", PQgetvalue(res, 0, 2));
		else
			snprintf(err, errlen, "%s", PQgetvalue(res, 0, 2));
		rc = 1;
	}
	PQclear(res);
	return rc;
}

int request_sweep(PGconn *conn, const char *slot, bool dry_run, volatile sig_atomic_t *stop)
{
	char id[24], err[1024];
	bool streamed = true, ok = false, started = false, said = false;
	int64_t seen_ms = clock_now_ms();
	int rc;

	if (!queue(conn, slot, dry_run, id, sizeof id, err, sizeof err)) {
		log_error("%s", err);
		return 1;
	}
	log_info("reconcile: slot %s is streamed by a running walcount; asked it for a %ssweep (request %s)", slot,
		 dry_run ? "dry-run " : "", id);
	while ((rc = look(conn, id, &streamed, &ok, &started, err, sizeof err)) == 0) {
		if (started && !said)
			log_info("reconcile: the running walcount is sweeping");
		said |= started;
		if (streamed)
			seen_ms = clock_now_ms();
		if (*stop || clock_now_ms() - seen_ms > ORPHAN_MS) {
			withdraw(conn, id);
			log_error("reconcile: %s", *stop ? "stopped while waiting for the sweep"
							 : "no walcount has streamed the slot for 30 s; nothing was swept");
			return 1;
		}
		db_backoff_sleep(POLL_MS, stop);
	}
	if (rc < 0 || !ok)
		log_error("reconcile: %s", err);
	return rc > 0 && ok ? 0 : 1;
}

bool request_claim(PGconn *conn, const char *slot, int64_t *id, bool *dry_run, char *err, size_t errlen)
{
	const char *params[1] = {slot};
	PGresult *res = db_exec_params(conn, "claiming a sweep request", sql_request_claim, 1, params, err, errlen);

	*id = 0;
	if (res == NULL)
		return false;
	if (PQntuples(res) == 1) {
		*id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		*dry_run = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
	}
	PQclear(res);
	return true;
}

bool request_finish(PGconn *conn, int64_t id, bool ok, const char *text, char *err, size_t errlen)
{
	char sid[24];
	const char *params[3] = {sid, ok ? "true" : "false", text};

	snprintf(sid, sizeof sid, "%" PRId64, id);
	return db_command_params(conn, "recording the sweep request's result", sql_request_finish, 3, params, err, errlen);
}
