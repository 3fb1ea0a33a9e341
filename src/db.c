#include "db.h"
#include "clock.h"
#include "dsn.h"
#include "log.h"
#include "notify.h"
#include "session.h"
#include "xalloc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void first_line(const char *msg, char *buf, size_t len)
{
	size_t n = strcspn(msg, "\n");

	if (n >= len)
		n = len - 1;
	memcpy(buf, msg, n);
	buf[n] = '\0';
}

const char *db_error_line(const PGconn *conn, char *buf, size_t len)
{
	first_line(conn ? PQerrorMessage(conn) : "out of memory", buf, len);
	return buf;
}

/* Reads the first line of a password file. Returns a malloc'd string the
 * caller frees, or NULL with err set. */
static char *read_password(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char line[1024];

	if (f == NULL) {
		snprintf(err, errlen, "database.password_file %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fgets(line, sizeof line, f) == NULL)
		line[0] = '\0';
	fclose(f);
	line[strcspn(line, "\r\n")] = '\0';
	return xstrdup(line);
}

/* Server notices ("schema walcount already exists, skipping") are routine:
 * they go to the debug log instead of stderr. */
static void notice_to_log(void *arg, const char *message)
{
	(void) arg;
	log_debug("server: %.*s", (int) strcspn(message, "\n"), message);
}

/* Once; *transient says whether retrying may help: the server did not
 * answer or is not accepting connections yet (starting, shutting down).
 * A refused login or a bad DSN is final. */
static PGconn *connect_once(const struct config *cfg, enum db_kind kind, bool *transient, char *err, size_t errlen)
{
	const char *keys[7] = {"connect_timeout", "dbname", "application_name", "options", NULL, NULL, NULL};
	/* Before dbname, so a connect_timeout in the DSN wins over this
	 * default, which keeps a blackholed host from hanging for minutes.
	 * The options after it: they carry the DSN's own. */
	const char *vals[7] = {"10", cfg->database_dsn, "walcount", NULL, NULL, NULL, NULL};
	char *password = NULL, *options, shown[512];
	int n = 4;

	/* libpq's own message for a DSN it cannot parse quotes the DSN. */
	if (!dsn_redact(cfg->database_dsn, shown, sizeof shown)) {
		snprintf(err, errlen, "database.dsn: %s", shown);
		return NULL;
	}
	vals[3] = options = session_options(cfg->database_dsn);
	if (kind == DB_REPLICATION) {
		keys[n] = "replication";
		vals[n++] = "database";
	}
	if (cfg->database_password_file != NULL) {
		password = read_password(cfg->database_password_file, err, errlen);
		if (password == NULL) {
			free(options);
			return NULL;
		}
		keys[n] = "password";
		vals[n++] = password;
	}
	PGconn *conn = PQconnectdbParams(keys, vals, 1);
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
		PGPing ping = PQpingParams(keys, vals, 1);
		*transient = ping == PQPING_NO_RESPONSE || ping == PQPING_REJECT;
	}
	free(password);
	free(options);
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
		char line[512];
		db_error_line(conn, line, sizeof line);
		dsn_scrub(cfg->database_dsn, line, sizeof line);
		snprintf(err, errlen, "cannot connect to \"%s\": %s", shown, line);
		PQfinish(conn);
		return NULL;
	}
	PQsetNoticeProcessor(conn, notice_to_log, NULL);
	return conn;
}

PGconn *db_connect(const struct config *cfg, enum db_kind kind, char *err, size_t errlen)
{
	bool transient = false;

	return connect_once(cfg, kind, &transient, err, errlen);
}

void db_backoff_sleep(int64_t ms, volatile sig_atomic_t *stop)
{
	/* The wait between reconnects and a standby's polls are where the
	 * service is alive though not streaming: the watchdog is fed here. */
	for (int64_t end = clock_now_ms() + ms; !*stop && clock_now_ms() < end;) {
		notify_watchdog(clock_now_ms());
		nanosleep(&(struct timespec){0, 20 * 1000000}, NULL);
	}
}

int64_t db_next_backoff(const struct config *cfg, int64_t delay_ms)
{
	return delay_ms > cfg->stream_reconnect_max_ms / 2 ? cfg->stream_reconnect_max_ms : delay_ms * 2;
}

/* The waits still ahead after a failed attempt, with delay the next one,
 * in seconds: what "gives up in about" says. Once the delay reaches
 * reconnect_max the rest is one product: stream.connect_attempts may be
 * set huge to mean "forever". */
static double waits_left_s(const struct config *cfg, int64_t attempt, int64_t delay)
{
	double ms = 0;
	int64_t a = attempt;

	for (; a < cfg->stream_connect_attempts && delay < cfg->stream_reconnect_max_ms; a++)
		ms += (double) delay, delay = db_next_backoff(cfg, delay);
	if (a < cfg->stream_connect_attempts)
		ms += (double) (cfg->stream_connect_attempts - a) * (double) cfg->stream_reconnect_max_ms;
	return ms / 1e3;
}

PGconn *db_connect_retrying(const struct config *cfg, enum db_kind kind, volatile sig_atomic_t *stop, char *err, size_t errlen)
{
	int64_t delay = cfg->stream_reconnect_min_ms, start = clock_now_ms();

	for (int64_t attempt = 1;; attempt++) {
		bool transient = false;
		PGconn *conn = connect_once(cfg, kind, &transient, err, errlen);
		double tried_s = (double) (clock_now_ms() - start) / 1e3;
		if (conn == NULL && transient && attempt > 1 && attempt >= cfg->stream_connect_attempts) {
			size_t used = strlen(err);
			snprintf(err + used, errlen - used,
				 "; gave up after %" PRId64 " attempts in %.1f s (stream.connect_attempts)", attempt, tried_s);
		}
		if (conn != NULL || !transient || attempt >= cfg->stream_connect_attempts || *stop)
			return conn;
		log_warn("%s; attempt %" PRId64 " of %" PRId64 ", next in %" PRId64
			 " ms (trying for %.1f s, giving up in about %.1f s)",
			 err, attempt, cfg->stream_connect_attempts, delay, tried_s, waits_left_s(cfg, attempt, delay));
		db_backoff_sleep(delay, stop);
		delay = db_next_backoff(cfg, delay);
	}
}

static PGresult *check_result(PGconn *conn, PGresult *res, const char *what, char *err, size_t errlen)
{
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	char line[512];

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return res;
	first_line(res ? PQresultErrorMessage(res) : PQerrorMessage(conn), line, sizeof line);
	if (line[0] == '\0')
		db_error_line(conn, line, sizeof line);
	snprintf(err, errlen, "%s: %s", what, line);
	PQclear(res);
	return NULL;
}

PGresult *db_exec(PGconn *conn, const char *what, const char *sql, char *err, size_t errlen)
{
	return check_result(conn, PQexec(conn, sql), what, err, errlen);
}

PGresult *db_exec_params_code(PGconn *conn, const char *what, const char *sql, int nparams, const char *const *params,
			      char code[6], char *err, size_t errlen)
{
	PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	snprintf(code, 6, "%s", state != NULL ? state : "");
	return check_result(conn, res, what, err, errlen);
}

PGresult *db_exec_params(PGconn *conn, const char *what, const char *sql, int nparams, const char *const *params, char *err,
			 size_t errlen)
{
	char code[6];

	return db_exec_params_code(conn, what, sql, nparams, params, code, err, errlen);
}

bool db_command(PGconn *conn, const char *what, const char *sql, char *err, size_t errlen)
{
	PGresult *res = db_exec(conn, what, sql, err, errlen);
	bool ok = res != NULL;

	PQclear(res);
	return ok;
}

bool db_command_params(PGconn *conn, const char *what, const char *sql, int nparams, const char *const *params, char *err,
		       size_t errlen)
{
	PGresult *res = db_exec_params(conn, what, sql, nparams, params, err, errlen);
	bool ok = res != NULL;

	PQclear(res);
	return ok;
}

bool db_send_params(PGconn *conn, const char *what, const char *sql, int nparams, const char *const *params, char *err,
		    size_t errlen)
{
	char line[512];

	if (PQsendQueryParams(conn, sql, nparams, NULL, params, NULL, NULL, 0) == 1)
		return true;
	snprintf(err, errlen, "%s: %s", what, db_error_line(conn, line, sizeof line));
	return false;
}

bool db_prepare(PGconn *conn, const char *what, const char *name, const char *sql, int nparams, const Oid *types, char *err,
		size_t errlen)
{
	PGresult *res = PQdescribePrepared(conn, name);

	if (res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK) {
		PQclear(res);
		return true;
	}
	PQclear(res);
	res = check_result(conn, PQprepare(conn, name, sql, nparams, types), what, err, errlen);
	PQclear(res);
	return res != NULL;
}

bool db_send_prepared(PGconn *conn, const char *what, const char *name, int nparams, const char *const *params,
		      const int *lengths, const int *formats, char *err, size_t errlen)
{
	char line[512];

	if (PQsendQueryPrepared(conn, name, nparams, params, lengths, formats, 0) == 1)
		return true;
	snprintf(err, errlen, "%s: %s", what, db_error_line(conn, line, sizeof line));
	return false;
}

bool db_cancel(PGconn *conn, const char *what)
{
	char buf[256];
	PGcancel *c = PQgetCancel(conn);
	bool sent = c != NULL && PQcancel(c, buf, sizeof buf) == 1;

	if (!sent)
		log_warn("cancelling %s: %s", what, c == NULL ? "no cancel handle (out of memory)" : buf);
	PQfreeCancel(c);
	return sent;
}

enum db_async db_collect(PGconn *conn, const char *what, bool wait, PGresult **last, char *err, size_t errlen)
{
	PGresult *kept = NULL;
	bool failed = false;

	if (!wait && PQconsumeInput(conn) == 1 && PQisBusy(conn))
		return DB_BUSY;
	/* Every result is read, also after an error, so the connection is
	 * idle again whatever happened. */
	for (PGresult *res; (res = PQgetResult(conn)) != NULL;) {
		if (!failed && check_result(conn, res, what, err, errlen) == NULL) {
			failed = true;
			continue;
		}
		PQclear(kept);
		kept = res;
	}
	if (!failed && PQstatus(conn) != CONNECTION_OK) {
		char line[512];
		snprintf(err, errlen, "%s: %s", what, db_error_line(conn, line, sizeof line));
		failed = true;
	}
	if (failed || last == NULL)
		PQclear(kept);
	else
		*last = kept;
	return failed ? DB_FAILED : DB_DONE;
}
