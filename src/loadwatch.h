/* loadwatch: the initial load's long steps (the recount, then writing the
 * rows that differ) sent without blocking, so that a load of minutes says
 * how far it is. The server reports nothing while one of its statements
 * runs (pg_stat_progress_* covers no INSERT ... SELECT), so the lines say
 * what is known: the time so far, the step, and each recounted table's
 * rows and rate once its statement has completed. */
#ifndef WALCOUNT_LOADWATCH_H
#define WALCOUNT_LOADWATCH_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

/* recount.sql's INSERTs, one per aggregate table. */
#define LOADWATCH_TABLES 3

struct loadwatch {
	const char *slot;
	int64_t start_ms, next_ms, step_ms;
	const char *step;
	bool recounting; /* the step is the recount script */
	int tables;      /* recount INSERTs completed */
	long long rows[LOADWATCH_TABLES];
	int64_t took_ms[LOADWATCH_TABLES];
};

void loadwatch_init(struct loadwatch *w, const char *slot);

/* Runs sql on conn and reads every result: with nparams 0 the recount
 * script (recount.sql), whose INSERTs' row counts are noted, else one
 * statement with text parameters; meanwhile logs a line every 10 s (the first after
 * 10 s: a small load says nothing more than it did) and sends the service
 * manager EXTEND_TIMEOUT_USEC (notify_start_progress). step ("recount",
 * "write") names it in those lines. Once *stop is set the statement in
 * flight is cancelled. Returns the last result (the caller PQclear()s it),
 * or NULL with "initial load STEP: first error" or "initial load
 * cancelled: stop requested ..." in err; the connection is idle either
 * way (a statement still running after an error is cancelled), so the
 * caller's ROLLBACK undoes everything. */
PGresult *loadwatch_exec(struct loadwatch *w, PGconn *conn, const char *step, const char *sql, int nparams,
			 const char *const *params, volatile sig_atomic_t *stop, char *err, size_t errlen);

/* ", recounted N aggregate rows in S s" for the load's closing line. */
void loadwatch_summary(const struct loadwatch *w, char *buf, size_t len);

#endif
