#include "loadwatch.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "db.h"
#include "log.h"
#include "notify.h"
#include "sqlscript.h"
#include "strbuf.h"
#include "xalloc.h"

#define REPORT_MS 10000
/* Signals wake poll() (no SA_RESTART); this bounds the race of one that
 * arrives just before it. */
#define POLL_MS 250

/* The order of recount.sql's INSERTs. */
static const char *const table_names[LOADWATCH_TABLES] = {"aggregate_user", "aggregate_track", "aggregate_playlist"};

void loadwatch_init(struct loadwatch *w, const char *slot)
{
	*w = (struct loadwatch){.slot = slot, .start_ms = clock_now_ms()};
	w->next_ms = w->start_ms + REPORT_MS;
}

static double rate(long long rows, int64_t ms)
{
	return (double) rows * 1000.0 / (double) (ms > 0 ? ms : 1);
}

static void report(const struct loadwatch *w, int64_t now)
{
	struct strbuf b = {0};

	strbuf_appendf(&b, "initial load: slot %s, %.0f s so far (step: %s, %.0f s)", w->slot, (double) (now - w->start_ms) / 1e3,
		       w->step, (double) (now - w->step_ms) / 1e3);
	for (int i = 0; i < w->tables; i++) {
		strbuf_appendf(&b, "%s %s %lld rows in %.1f s", i == 0 ? "; recounted" : ",", table_names[i], w->rows[i],
			       (double) w->took_ms[i] / 1e3);
		/* A rate over milliseconds says nothing. */
		if (w->took_ms[i] >= 1000)
			strbuf_appendf(&b, " (%.0f rows/s)", rate(w->rows[i], w->took_ms[i]));
	}
	if (w->recounting && w->tables < LOADWATCH_TABLES)
		strbuf_appendf(&b, "; now recounting %s", table_names[w->tables]);
	log_info("%s", strbuf_str(&b));
	strbuf_free(&b);
}

/* A recount INSERT completed: its table's rows and time. */
static void note(struct loadwatch *w, PGresult *res, int64_t now, int64_t *since)
{
	if (strncmp(PQcmdStatus(res), "INSERT", 6) != 0 || w->tables >= LOADWATCH_TABLES)
		return;
	w->rows[w->tables] = strtoll(PQcmdTuples(res), NULL, 10);
	w->took_ms[w->tables++] = now - *since;
	*since = now;
}

/* Reads the results that are in; true once the last one is. */
static bool drain(struct loadwatch *w, PGconn *conn, PGresult **last, bool *failed, int64_t *since, char *err, size_t errlen)
{
	char line[512];

	while (!PQisBusy(conn)) {
		PGresult *res = PQgetResult(conn);
		if (res == NULL)
			return true;
		ExecStatusType st = PQresultStatus(res);
		if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
			if (!*failed)
				snprintf(err, errlen, "initial load %s: %s", w->step, db_error_line(conn, line, sizeof line));
			*failed = true;
			PQclear(res);
			continue;
		}
		note(w, res, clock_now_ms(), since);
		PQclear(*last);
		*last = res;
	}
	return false;
}

/* Ends the statement in flight: asks the server to cancel it and reads
 * every result (the error the cancel causes included), so that conn is
 * idle and the caller's ROLLBACK is the next thing the server sees. A
 * cancel that cannot be sent is logged; the results are then read as the
 * statement finishes on its own. A lost connection has nothing to cancel. */
static void abandon(PGconn *conn)
{
	if (PQstatus(conn) == CONNECTION_OK)
		db_cancel(conn, "the initial load's statement");
	for (PGresult *res; (res = PQgetResult(conn)) != NULL;)
		PQclear(res);
}

/* Sends one statement (a script's piece when nparams is 0) and reads its
 * results, logging a line every REPORT_MS and telling the service manager
 * that start-up progresses meanwhile; *stop cancels it. */
static PGresult *exec_one(struct loadwatch *w, PGconn *conn, const char *sql, int nparams, const char *const *params,
			  volatile sig_atomic_t *stop, int64_t *since, char *err, size_t errlen)
{
	PGresult *last = NULL;
	bool failed = false;
	char line[512];
	int sent = nparams == 0 ? PQsendQuery(conn, sql) : PQsendQueryParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);

	if (sent != 1) {
		snprintf(err, errlen, "initial load %s: %s", w->step, db_error_line(conn, line, sizeof line));
		return NULL;
	}
	for (;;) {
		if (PQconsumeInput(conn) != 1) {
			if (!failed)
				snprintf(err, errlen, "initial load %s: %s", w->step, db_error_line(conn, line, sizeof line));
			break;
		}
		if (drain(w, conn, &last, &failed, since, err, errlen)) {
			if (!failed)
				return last;
			PQclear(last);
			return NULL;
		}
		if (*stop) {
			if (!failed)
				snprintf(err, errlen, "initial load cancelled: stop requested (during the %s step)", w->step);
			break;
		}
		int64_t now = clock_now_ms();
		if (now >= w->next_ms) {
			report(w, now);
			w->next_ms = now + REPORT_MS;
		}
		notify_start_progress(now);
		struct pollfd pfd = {PQsocket(conn), POLLIN, 0};
		if (poll(&pfd, 1, (int) (w->next_ms - now < POLL_MS ? w->next_ms - now : POLL_MS)) < 0 && errno != EINTR) {
			if (!failed)
				snprintf(err, errlen, "initial load %s: waiting for the server: %s", w->step, strerror(errno));
			break;
		}
	}
	abandon(conn);
	PQclear(last);
	return NULL;
}

/* The script one statement at a time (sqlscript.h), so that each one's
 * end is seen. */
static PGresult *exec_script(struct loadwatch *w, PGconn *conn, const char *sql, volatile sig_atomic_t *stop, int64_t *since,
			     char *err, size_t errlen)
{
	PGresult *res = NULL;

	for (char *stmt; (stmt = sqlscript_next(&sql)) != NULL;) {
		PQclear(res);
		res = exec_one(w, conn, stmt, 0, NULL, stop, since, err, errlen);
		free(stmt);
		if (res == NULL)
			return NULL;
	}
	return res;
}

PGresult *loadwatch_exec(struct loadwatch *w, PGconn *conn, const char *step, const char *sql, int nparams,
			 const char *const *params, volatile sig_atomic_t *stop, char *err, size_t errlen)
{
	int64_t since;

	w->step = step;
	w->step_ms = since = clock_now_ms();
	w->recounting = nparams == 0;
	if (nparams == 0)
		return exec_script(w, conn, sql, stop, &since, err, errlen);
	return exec_one(w, conn, sql, nparams, params, stop, &since, err, errlen);
}

void loadwatch_summary(const struct loadwatch *w, char *buf, size_t len)
{
	long long rows = 0;
	int64_t ms = 0;

	for (int i = 0; i < w->tables; i++)
		rows += w->rows[i], ms += w->took_ms[i];
	/* A rate over milliseconds says nothing. */
	if (ms >= 1000)
		snprintf(buf, len, "; recounted %lld aggregate rows in %.1f s (%.0f rows/s); took %.1f s", rows,
			 (double) ms / 1e3, rate(rows, ms), (double) (clock_now_ms() - w->start_ms) / 1e3);
	else
		snprintf(buf, len, "; recounted %lld aggregate rows; took %.1f s", rows,
			 (double) (clock_now_ms() - w->start_ms) / 1e3);
}
