#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define POLL_MS 20
#define CONNECT_TIMEOUT "10"
/* statement_timeout bounds every statement of the tests, including the 1,000,000-row insert,
 * so a stuck server fails the test instead of hanging it. */
#define SESSION_OPTIONS "-c statement_timeout=600s -c client_min_messages=warning"

extern char **environ;

struct it_env IT;

static const char *need_env(const char *name, char *err, size_t errlen)
{
	const char *v = getenv(name);

	if (v == NULL || *v == '\0')
		snprintf(err, errlen, "environment variable %s is not set (tests/run.sh sets it)", name);
	return v && *v ? v : NULL;
}

bool it_env_load(char *err, size_t errlen)
{
	if ((IT.host = need_env("IT_PGHOST", err, errlen)) == NULL || (IT.port = need_env("IT_PGPORT", err, errlen)) == NULL ||
	    (IT.tmp = need_env("IT_TMP", err, errlen)) == NULL || (IT.pgdir = need_env("IT_PGDIR", err, errlen)) == NULL ||
	    (IT.bin = need_env("WALCOUNT_BIN", err, errlen)) == NULL)
		return false;
	if (access(IT.bin, X_OK) != 0) {
		snprintf(err, errlen, "WALCOUNT_BIN %s: %s (run make first)", IT.bin, strerror(errno));
		return false;
	}
	if (mkdir(IT.tmp, 0755) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "IT_TMP %s: %s", IT.tmp, strerror(errno));
		return false;
	}
	IT.schema_sql = it_read_file("sql/schema.sql", NULL, err, errlen);
	IT.drift_sql = it_read_file("tests/integration/expected_counts.sql", NULL, err, errlen);
	return IT.schema_sql != NULL && IT.drift_sql != NULL;
}

double it_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

void it_sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

char *it_read_file(const char *path, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long size;

	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t) size + 1)) != NULL && fread(buf, 1, (size_t) size, f) == (size_t) size) {
		buf[size] = '\0';
		if (len != NULL)
			*len = (size_t) size;
	} else {
		snprintf(err, errlen, "%s: cannot read", path);
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

/* First line of a libpq message, so every failure stays one line. */
static void first_line(const char *msg, char *out, size_t len)
{
	snprintf(out, len, "%.*s", (int) strcspn(msg, "\n"), msg);
}

PGconn *it_connect(const char *db, char *err, size_t errlen)
{
	return it_connect_port(IT.port, db, err, errlen);
}

PGconn *it_connect_port(const char *port, const char *db, char *err, size_t errlen)
{
	const char *keys[] = {"host", "port", "dbname", "user", "application_name", "connect_timeout", "options", NULL};
	const char *vals[] = {IT.host, port, db, "postgres", "walcount-it", CONNECT_TIMEOUT, SESSION_OPTIONS, NULL};
	PGconn *conn = PQconnectdbParams(keys, vals, 0);
	char line[512];

	if (conn != NULL && PQstatus(conn) == CONNECTION_OK)
		return conn;
	first_line(conn ? PQerrorMessage(conn) : "out of memory", line, sizeof line);
	snprintf(err, errlen, "connecting to %s:%s/%s: %s", IT.host, port, db, line);
	PQfinish(conn);
	return NULL;
}

bool it_reconnect(PGconn **conn, const char *db, double timeout_s, char *err, size_t errlen)
{
	double end = it_now() + timeout_s;

	PQfinish(*conn);
	while ((*conn = it_connect(db, err, errlen)) == NULL) {
		if (it_now() >= end)
			return false;
		it_sleep_ms(200);
	}
	return true;
}

/* The start of sql on one line, to name a failed statement. */
static void sql_excerpt(const char *sql, char *out, size_t len)
{
	size_t n = 0;

	for (const char *p = sql; *p && n + 4 < len; p++)
		out[n++] = (*p == '\n' || *p == '\t') ? ' ' : *p;
	snprintf(out + n, len - n, "%s", strlen(sql) > n ? "..." : "");
}

PGresult *it_query(PGconn *conn, const char *sql, int nparams, const char *const *params, char *err, size_t errlen)
{
	/* PQexec without parameters, so a whole file (sql/schema.sql) can run. */
	PGresult *res = nparams == 0 ? PQexec(conn, sql) : PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);
	char line[512], excerpt[124];

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return res;
	first_line(PQerrorMessage(conn), line, sizeof line);
	sql_excerpt(sql, excerpt, sizeof excerpt);
	snprintf(err, errlen, "%s: %s", excerpt, line);
	PQclear(res);
	return NULL;
}

bool it_exec(PGconn *conn, const char *sql, int nparams, const char *const *params, char *err, size_t errlen)
{
	PGresult *res = it_query(conn, sql, nparams, params, err, errlen);

	PQclear(res);
	return res != NULL;
}

bool it_value(PGconn *conn, const char *sql, int nparams, const char *const *params, char *out, size_t outlen, char *err,
	      size_t errlen)
{
	PGresult *res = it_query(conn, sql, nparams, params, err, errlen);
	bool ok = res != NULL && PQntuples(res) == 1 && PQnfields(res) == 1;

	if (ok)
		snprintf(out, outlen, "%s", PQgetvalue(res, 0, 0));
	else if (res != NULL)
		snprintf(err, errlen, "%.120s: expected one value, got %d rows", sql, PQntuples(res));
	PQclear(res);
	return ok;
}

/* Drops every WALCOUNT_* variable: the caller's environment (say, from
 * scripts/run-local.sh) must not override the test's config file. Restarts
 * the scan after each removal since unsetenv rearranges environ. */
static void clear_walcount_env(void)
{
	for (bool again = true; again;) {
		again = false;
		for (char **e = environ; *e != NULL; e++) {
			if (strncmp(*e, "WALCOUNT_", 9) == 0) {
				char name[256];
				snprintf(name, sizeof name, "%.*s", (int) strcspn(*e, "="), *e);
				unsetenv(name);
				again = true;
				break;
			}
		}
	}
}

/* execv takes char *const[] for historical reasons and writes to none of
 * the strings; the union drops the qualifier without a cast. */
static char *const *exec_argv(const char *const *argv)
{
	union {
		const char *const *in;
		char *const *out;
	} u = {.in = argv};

	return u.out;
}

pid_t it_spawn(const char *const argv[], int out_fd, int err_fd, char *err, size_t errlen)
{
	fflush(stdout);
	pid_t pid = fork();

	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		/* A walcount left behind by a crashed test run would hold its slot. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (dup2(out_fd, STDOUT_FILENO) < 0 || dup2(err_fd, STDERR_FILENO) < 0)
			_exit(126);
		clear_walcount_env();
		execv(argv[0], exec_argv(argv));
		dprintf(STDERR_FILENO, "it: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return pid;
}

bool it_reap(pid_t pid, double timeout_s, int *status, struct rusage *ru)
{
	double end = it_now() + timeout_s;

	for (;;) {
		pid_t r = wait4(pid, status, WNOHANG, ru);
		if (r == pid)
			return true;
		if (r < 0 && errno != EINTR)
			return false;
		if (it_now() >= end)
			return false;
		it_sleep_ms(10);
	}
}

const char *it_status_text(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exit %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "signal %d", WTERMSIG(status));
	else
		snprintf(buf, len, "wait status %#x", (unsigned) status);
	return buf;
}

bool it_restart_server(char *err, size_t errlen)
{
	char log[PATH_MAX], st[32];
	const char *argv[] = {"/bin/sh", "scripts/pg-local.sh", "restart", IT.pgdir, NULL};
	int status;

	snprintf(log, sizeof log, "%s/pg-restart.log", IT.tmp);
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", log, strerror(errno));
		return false;
	}
	pid_t pid = it_spawn(argv, fd, fd, err, errlen);
	close(fd);
	if (pid < 0)
		return false;
	if (!it_reap(pid, 180, &status, NULL)) {
		kill(pid, SIGKILL);
		it_reap(pid, 10, &status, NULL);
		snprintf(err, errlen, "pg-local.sh restart took over 180 s (see %s)", log);
		return false;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		snprintf(err, errlen, "pg-local.sh restart %s: %s (see %s and %s/server.log)", IT.pgdir,
			 it_status_text(status, st, sizeof st), log, IT.pgdir);
		return false;
	}
	return true;
}

bool wc_start(struct walcount *wc, char *err, size_t errlen)
{
	return wc_start_args(wc, NULL, err, errlen);
}

bool wc_start_args(struct walcount *wc, const char *extra, char *err, size_t errlen)
{
	return wc_start_command(wc, "run", extra, err, errlen);
}

bool wc_start_command(struct walcount *wc, const char *command, const char *extra, char *err, size_t errlen)
{
	const char *argv[] = {IT.bin, command, "--config", wc->config, extra, NULL};
	int fd = open(wc->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", wc->log, strerror(errno));
		return false;
	}
	dprintf(fd, "--- it: walcount %s %d ---\n", command, ++wc->runs);
	wc->pid = it_spawn(argv, fd, fd, err, errlen);
	close(fd);
	if (wc->pid < 0)
		wc->pid = 0;
	return wc->pid > 0;
}

bool wc_alive(struct walcount *wc)
{
	if (wc->pid == 0)
		return false;
	if (wait4(wc->pid, &wc->status, WNOHANG, &wc->ru) == 0)
		return true;
	wc->pid = 0;
	return false;
}

/* VmHWM of /proc/PID/status in KiB, -1 when unreadable. */
static long vm_hwm_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;

	snprintf(path, sizeof path, "/proc/%d/status", (int) pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

bool wc_signal(struct walcount *wc, int sig, double timeout_s, char *err, size_t errlen)
{
	pid_t pid = wc->pid;

	if (pid == 0) {
		snprintf(err, errlen, "walcount is not running");
		return false;
	}
	wc->pid = 0;
	wc->hwm_kib = vm_hwm_kib(pid);
	if (kill(pid, sig) != 0) {
		snprintf(err, errlen, "kill %d: %s", (int) pid, strerror(errno));
		return false;
	}
	if (it_reap(pid, timeout_s, &wc->status, &wc->ru))
		return true;
	kill(pid, SIGKILL);
	it_reap(pid, 10, &wc->status, &wc->ru);
	snprintf(err, errlen, "walcount did not exit within %.0f s of signal %d; SIGKILLed", timeout_s, sig);
	return false;
}

void it_print_tail(const char *path, int lines)
{
	char err[256];
	size_t len;
	char *text = it_read_file(path, &len, err, sizeof err);

	if (text == NULL) {
		printf("#   (no log: %s)\n", err);
		return;
	}
	size_t end = len > 0 && text[len - 1] == '\n' ? len - 1 : len;
	size_t start = end;
	for (int n = 0; start > 0; start--)
		if (text[start - 1] == '\n' && ++n == lines)
			break;
	printf("#   --- last %d lines of %s ---\n", lines, path);
	for (size_t i = start; i < end;) {
		size_t n = strcspn(text + i, "\n");
		printf("#   %.*s\n", (int) n, text + i);
		i += n + 1;
	}
	free(text);
}

int it_poll(PGconn *conn, const char *sql, int nparams, const char *const *params, double timeout_s, struct walcount *wc,
	    char *err, size_t errlen)
{
	double end = it_now() + timeout_s;
	char v[16], st[32];

	for (;;) {
		if (!it_value(conn, sql, nparams, params, v, sizeof v, err, errlen))
			return -1;
		if (strcmp(v, "t") == 0)
			return 1;
		if (wc != NULL && !wc_alive(wc)) {
			snprintf(err, errlen, "walcount exited (%s) while the test waited",
				 it_status_text(wc->status, st, sizeof st));
			return -1;
		}
		if (it_now() >= end)
			return 0;
		it_sleep_ms(POLL_MS);
	}
}

bool it_marker(PGconn *conn, int k, struct it_mark *m, char *err, size_t errlen)
{
	char followee[16], txhash[32];
	const char *params[2] = {followee, txhash};
	lsn_t parsed;

	snprintf(followee, sizeof followee, "%d", 900000 + k);
	snprintf(txhash, sizeof txhash, "marker-%d", k);
	m->k = k;
	if (!it_exec(conn, "BEGIN", 0, NULL, err, errlen))
		return false;
	bool ok = it_value(conn, "SELECT pg_current_wal_lsn()", 0, NULL, m->lsn, LSN_BUFLEN, err, errlen) &&
		  it_exec(conn,
			  "INSERT INTO follows (follower_user_id, followee_user_id, is_current, is_delete, txhash) "
			  "VALUES (999999, $1, true, false, $2)",
			  2, params, err, errlen) &&
		  it_exec(conn, "COMMIT", 0, NULL, err, errlen);
	if (!ok) {
		PQclear(PQexec(conn, "ROLLBACK")); /* best effort: leave the connection usable */
		return false;
	}
	if (!it_value(conn, "SELECT pg_current_wal_lsn()", 0, NULL, m->end, LSN_BUFLEN, err, errlen))
		return false;
	if (!lsn_parse(m->lsn, &parsed) || !lsn_parse(m->end, &parsed)) {
		snprintf(err, errlen, "pg_current_wal_lsn() returned '%s', '%s'", m->lsn, m->end);
		return false;
	}
	return true;
}

/* After a timeout: where progress stood, for the failure message. */
static void describe_lag(PGconn *conn, const char *slot, const char m[LSN_BUFLEN], char *err, size_t errlen)
{
	const char *params[1] = {slot};
	char qerr[256];
	PGresult *res = it_query(conn,
				 "SELECT lsn, coalesce(partial_xid::text, '-'), partial_changes "
				 "FROM walcount.progress WHERE slot_name = $1 ORDER BY lsn, part LIMIT 1",
				 1, params, qerr, sizeof qerr);
	lsn_t at, want;

	if (res == NULL || PQntuples(res) != 1)
		snprintf(err, errlen, "marker %s not applied in time; no progress row%s%s", m, res ? "" : ": ", res ? "" : qerr);
	else if (lsn_parse(PQgetvalue(res, 0, 0), &at) && lsn_parse(m, &want) && at <= want)
		snprintf(err, errlen,
			 "marker %s not applied in time: progress at %s (%" PRIu64
			 " bytes behind), partial_xid %s, partial_changes %s",
			 m, PQgetvalue(res, 0, 0), want - at, PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2));
	else
		snprintf(err, errlen, "marker %s not applied in time: progress at %s", m, PQgetvalue(res, 0, 0));
	PQclear(res);
}

bool it_wait_applied(PGconn *conn, const char *slot, const struct it_mark *m, double timeout_s, struct walcount *wc, char *err,
		     size_t errlen)
{
	char followee[16];
	const char *params[4] = {slot, m->lsn, m->end, followee};

	snprintf(followee, sizeof followee, "%d", 900000 + m->k);
	int rc = it_poll(conn,
			 "SELECT coalesce((SELECT min(lsn) > $2::pg_lsn AND (min(lsn) >= $3::pg_lsn OR EXISTS ("
			 "SELECT 1 FROM aggregate_user WHERE user_id = $4::int AND follower_count > 0)) "
			 "FROM walcount.progress WHERE slot_name = $1), false)",
			 4, params, timeout_s, wc, err, errlen);

	if (rc == 0)
		describe_lag(conn, slot, m->lsn, err, errlen);
	return rc == 1;
}

long it_drift(PGconn *conn, char *examples, size_t exlen, char *err, size_t errlen)
{
	PGresult *res = it_query(conn, IT.drift_sql, 0, NULL, err, errlen);
	size_t used = 0;

	if (res == NULL)
		return -1;
	examples[0] = '\0';
	for (int i = 0; i < PQntuples(res) && i < 5 && used < exlen; i++) {
		int n = snprintf(examples + used, exlen - used, "%s%s[%s].%s expected %s actual %s", i ? "; " : "",
				 PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
				 PQgetvalue(res, i, 4));
		used += n > 0 ? (size_t) n : 0;
	}
	long n = PQntuples(res);
	PQclear(res);
	return n;
}
