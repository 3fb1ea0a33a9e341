/* harness: what the integration tests share. Connections to the test
 * cluster, checked statements, walcount as a child process, polling with a
 * timeout, the caught-up marker and the drift check. Every wait here is
 * bounded: a test fails, it never hangs. */
#ifndef IT_HARNESS_H
#define IT_HARNESS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <libpq-fe.h>

#include "lsn.h"

#define IT_ERRLEN 2048

/* The environment tests/run.sh provides, plus the SQL files read once at
 * start (the binary runs with the repository root as its cwd). */
struct it_env {
	const char *host, *port, *tmp, *pgdir, *bin;
	char *schema_sql; /* sql/schema.sql */
	char *drift_sql;  /* tests/integration/expected_counts.sql */
};

extern struct it_env IT;

/* Fills IT from the environment and reads the SQL files. */
bool it_env_load(char *err, size_t errlen);

double it_now(void);
void it_sleep_ms(long ms);

/* Reads a whole file into a NUL-terminated malloc'd buffer. */
char *it_read_file(const char *path, size_t *len, char *err, size_t errlen);

/* Connects to database db as postgres; NULL with err set on failure. */
PGconn *it_connect(const char *db, char *err, size_t errlen);
/* The same on another port of IT.host (a second cluster). */
PGconn *it_connect_port(const char *port, const char *db, char *err, size_t errlen);

/* Replaces *conn by a new connection, retrying for timeout_s (the server may
 * be restarting). */
bool it_reconnect(PGconn **conn, const char *db, double timeout_s, char *err, size_t errlen);

/* Runs sql with text parameters (none: PQexec, so sql may hold several
 * statements); returns the result when it succeeded (command or tuples),
 * else NULL with "sql: server message" in err. */
PGresult *it_query(PGconn *conn, const char *sql, int nparams, const char *const *params, char *err, size_t errlen);

/* it_query for statements whose result is not needed. */
bool it_exec(PGconn *conn, const char *sql, int nparams, const char *const *params, char *err, size_t errlen);

/* it_query of a one-row, one-column query; the value goes to out. */
bool it_value(PGconn *conn, const char *sql, int nparams, const char *const *params, char *out, size_t outlen, char *err,
	      size_t errlen);

/* Starts argv[0] (a path) with stdout and stderr on the given descriptors
 * and every WALCOUNT_* variable removed from its environment. Returns the
 * pid, or -1 with err set. */
pid_t it_spawn(const char *const argv[], int out_fd, int err_fd, char *err, size_t errlen);

/* Reaps pid within timeout_s (wait4, so *ru gets its resource usage).
 * False when it did not exit in time. */
bool it_reap(pid_t pid, double timeout_s, int *status, struct rusage *ru);

/* "exit 1" or "signal 9" for a wait status. */
const char *it_status_text(int status, char *buf, size_t len);

/* Restarts the test cluster with scripts/pg-local.sh (fast shutdown). */
bool it_restart_server(char *err, size_t errlen);

/* One walcount process of a test. Every run appends to the same log file,
 * after a separator line, so the history of a test with restarts is in one
 * place. */
struct walcount {
	char config[PATH_MAX];
	char log[PATH_MAX];
	pid_t pid; /* 0 when not running */
	int runs;
	int status;       /* wait status of the last reaped run */
	struct rusage ru; /* resource usage of the last reaped run */
	/* Peak RSS in KiB of the last run signalled by wc_signal, from VmHWM
	 * just before the signal. ru.ru_maxrss is an upper bound only: Linux
	 * carries the forked test process's peak across exec into it. */
	long hwm_kib;
};

bool wc_start(struct walcount *wc, char *err, size_t errlen);
/* wc_start with one extra argument after the config (NULL: none). */
bool wc_start_args(struct walcount *wc, const char *extra, char *err, size_t errlen);
/* The same for another command ("init", "reconcile"). */
bool wc_start_command(struct walcount *wc, const char *command, const char *extra, char *err, size_t errlen);

/* True while the process runs; reaps it (status, ru) once it has exited. */
bool wc_alive(struct walcount *wc);

/* Samples hwm_kib, sends sig and reaps the process within timeout_s; on a
 * timeout it is SIGKILLed, reaped, and false returned. */
bool wc_signal(struct walcount *wc, int sig, double timeout_s, char *err, size_t errlen);

/* Prints the last `lines` lines of path, each prefixed with "#   ". */
void it_print_tail(const char *path, int lines);

/* Polls sql (one boolean) every 20 ms until it returns true. Returns 1 when
 * it did, 0 on timeout, -1 on a query error or, when wc is not NULL, when
 * walcount exited meanwhile (err says which). */
int it_poll(PGconn *conn, const char *sql, int nparams, const char *const *params, double timeout_s, struct walcount *wc,
	    char *err, size_t errlen);

/* The marker transaction: BEGIN; lsn := pg_current_wal_lsn(); INSERT an
 * active follows row (999999 -> 900000 + k, txhash 'marker-k'); COMMIT;
 * end := pg_current_wal_lsn(). Every transaction committed before it ends
 * at or before lsn, and the marker's commit ends after lsn, at or before
 * end. */
struct it_mark {
	char lsn[LSN_BUFLEN];
	char end[LSN_BUFLEN];
	int k;
};
bool it_marker(PGconn *conn, int k, struct it_mark *m, char *err, size_t errlen);

/* Waits until walcount.progress of slot shows the marker applied: beyond
 * m->lsn, and either at m->end or with the marker's follow counted.
 * Progress beyond m->lsn alone is not enough: an idle consumer moves it to
 * the walsender's position, which can pass the marker's INSERT before its
 * COMMIT is decoded. On timeout err tells how far behind it was. */
bool it_wait_applied(PGconn *conn, const char *slot, const struct it_mark *m, double timeout_s, struct walcount *wc, char *err,
		     size_t errlen);

/* Runs IT.drift_sql and returns the number of mismatching count cells (-1
 * on error, err set); up to 5 of them are described in examples. */
long it_drift(PGconn *conn, char *examples, size_t exlen, char *err, size_t errlen);

#endif
