#include "slotwait.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "db.h"
#include "log.h"
#include "notify.h"
#include "sqlfiles.h"

/* A forgotten transaction can hold it up for days: once a minute is
 * enough to keep it visible without flooding the log. */
#define REPEAT_REPORT_MS 60000
/* Signals wake poll() (no SA_RESTART); this bounds the race of one that
 * arrives just before it. */
#define POLL_MS 250

bool slotwait_blockers(PGconn *conn, const char *slot, char *buf, size_t len, char *err, size_t errlen)
{
	const char *params[1] = {slot};
	PGresult *res = db_exec_params(conn, "looking up what the slot creation waits for", sql_slot_create_blockers, 1, params,
				       err, errlen);
	int n;

	if (res == NULL)
		return false;
	buf[0] = '\0';
	if ((n = PQntuples(res)) == 1)
		snprintf(buf, len, "%s", PQgetvalue(res, 0, 0));
	else if (n > 1)
		snprintf(buf, len, "%s and %d more transaction%s", PQgetvalue(res, 0, 0), n - 1, n > 2 ? "s" : "");
	PQclear(res);
	return true;
}

static void report(PGconn *conn, const char *slot, int64_t waited_ms)
{
	char what[1024], err[512];

	if (!slotwait_blockers(conn, slot, what, sizeof what, err, sizeof err))
		log_warn("slot %s is being created: waiting %" PRId64 " s; %s", slot, waited_ms / 1000, err);
	else if (what[0] == '\0')
		log_warn("slot %s is being created: waiting %" PRId64 " s for the server to reach a consistent point", slot,
			 waited_ms / 1000);
	else
		log_warn("slot %s is being created: waiting %" PRId64 " s for %s; still waiting", slot, waited_ms / 1000, what);
}

/* Asks the server to end the statement; it then drops the slot, which is
 * not persistent before it is consistent. The answer is read and dropped;
 * without a cancel sent there is none to wait for. */
static void cancel(PGconn *repl)
{
	char err[512];

	if (db_cancel(repl, "the slot creation"))
		db_collect(repl, "cancelling the slot creation", true, NULL, err, sizeof err);
}

PGresult *slotwait_create(PGconn *conn, PGconn *repl, const char *slot, const char *sql, int64_t first_report_ms,
			  volatile sig_atomic_t *stop, char *err, size_t errlen)
{
	const char *what = "creating replication slot";
	int64_t start = clock_now_ms(), next = start + first_report_ms;
	PGresult *res = NULL;
	char line[512];

	if (PQsendQuery(repl, sql) != 1) {
		snprintf(err, errlen, "%s: %s", what, db_error_line(repl, line, sizeof line));
		return NULL;
	}
	for (;;) {
		enum db_async st = db_collect(repl, what, false, &res, err, errlen);
		if (st != DB_BUSY)
			return st == DB_DONE ? res : NULL;
		if (*stop) {
			snprintf(err, errlen, "%s %s: stopped by a signal while waiting; the creation was cancelled", what, slot);
			break;
		}
		int64_t now = clock_now_ms();
		if (now >= next) {
			report(conn, slot, now - start);
			next = now + REPEAT_REPORT_MS;
		}
		notify_start_progress(now);
		struct pollfd pfd = {PQsocket(repl), POLLIN, 0};
		if (poll(&pfd, 1, POLL_MS) < 0 && errno != EINTR) {
			snprintf(err, errlen, "%s: waiting for the server: %s", what, strerror(errno));
			break;
		}
	}
	cancel(repl);
	return NULL;
}
