/* walcount integration tests: a real walcount against a real PostgreSQL with
 * wal2json (started by tests/run.sh), checked against a recount of the
 * source tables. Each test gets its own database it_... and slot, and
 * drops the slot at the end so nothing pins WAL.
 *
 * Output: "seed=N", then per test "ok - NAME (details)" or
 * "FAIL - NAME: reason (seed=N)" plus the tail of walcount's log, and last
 * "integration: N passed, M failed". IT_SEED replays a seed; IT_ONLY
 * (comma-separated names) runs a subset. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "workload.h"

#define ACTIVE_SQL "SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND active)"
#define INACTIVE_SQL "SELECT NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND active)"
#define CAUGHT_UP_TIMEOUT 120
#define STOP_TIMEOUT 30
#define RSS_LIMIT_KIB (100L * 1024)

static uint64_t seed;

/* Config keys a test sets; 0 / NULL leaves walcount's default. */
struct wc_opts {
	long max_changes, max_keys;
	const char *max_delay;
};

struct ctx {
	char db[64];          /* database and slot name (it_...) */
	PGconn *conn;
	struct walcount wc;
	struct workload wl;
	uint64_t rng;         /* the test's own choices: chunk sizes, sleeps */
	int markers;
	char details[1024];
	char reason[IT_ERRLEN];
};

/* Records why the test failed; the first reason wins, since later ones
 * (cleanup) are usually consequences. Returns false. */
static bool fail(struct ctx *t, const char *fmt, ...)
{
	va_list ap;

	if (t->reason[0] != '\0')
		return false;
	va_start(ap, fmt);
	vsnprintf(t->reason, sizeof t->reason, fmt, ap);
	va_end(ap);
	return false;
}

static bool fail_err(struct ctx *t, const char *what, const char *err)
{
	return fail(t, "%s: %s", what, err);
}

/* Writes the test's config file. Reconnects are fast and the status
 * interval short so the tests do not wait on walcount's timers. */
static bool configure(struct ctx *t, const struct wc_opts *o)
{
	FILE *f = fopen(t->wc.config, "w");

	if (f == NULL)
		return fail(t, "%s: %s", t->wc.config, strerror(errno));
	fprintf(f, "database:\n  dsn: \"host=%s port=%s dbname=%s user=postgres\"\n", IT.host, IT.port, t->db);
	fprintf(f, "slot:\n  name: %s\n", t->db);
	fprintf(f, "batch:\n  max_delay: %s\n", o->max_delay ? o->max_delay : "100ms");
	if (o->max_changes)
		fprintf(f, "  max_changes: %ld\n", o->max_changes);
	if (o->max_keys)
		fprintf(f, "  max_keys: %ld\n", o->max_keys);
	/* The stream alone must be exact: a reconcile sweep would hide drift. */
	fprintf(f, "reconcile:\n  enabled: false\n");
	/* No fixed port: other walcount instances may run on this host. */
	fprintf(f, "metrics:\n  listen: \"\"\n");
	fprintf(f, "log:\n  level: info\n");
	fprintf(f, "stream:\n  status_interval: 1s\n  reconnect_min: 100ms\n  reconnect_max: 2s\n");
	if (fclose(f) != 0)
		return fail(t, "%s: %s", t->wc.config, strerror(errno));
	return true;
}

static bool wait_slot(struct ctx *t, bool active, double timeout_s)
{
	const char *params[1] = {t->db};
	char err[IT_ERRLEN];
	int rc = it_poll(t->conn, active ? ACTIVE_SQL : INACTIVE_SQL, 1, params, timeout_s, active ? &t->wc : NULL,
			 err, sizeof err);

	if (rc < 0)
		return fail_err(t, active ? "waiting for the slot to become active" : "waiting for the slot to be released", err);
	if (rc == 0)
		return fail(t, "slot %s not %s within %.0f s", t->db, active ? "active" : "released", timeout_s);
	return true;
}

static bool start(struct ctx *t)
{
	char err[IT_ERRLEN];

	return wc_start(&t->wc, err, sizeof err) || fail_err(t, "starting walcount", err);
}

/* Starts walcount and waits for its slot to stream: changes made before the
 * slot exists would not be counted. */
static bool start_streaming(struct ctx *t)
{
	return start(t) && wait_slot(t, true, 60);
}

/* SIGTERM: walcount must flush and exit 0. */
static bool stop_clean(struct ctx *t)
{
	char err[IT_ERRLEN], st[32];

	if (!wc_signal(&t->wc, SIGTERM, STOP_TIMEOUT, err, sizeof err))
		return fail_err(t, "stopping walcount", err);
	if (!WIFEXITED(t->wc.status) || WEXITSTATUS(t->wc.status) != 0)
		return fail(t, "walcount stopped by SIGTERM ended with %s, want exit 0",
			    it_status_text(t->wc.status, st, sizeof st));
	return true;
}

/* SIGKILL, reap, and wait for the server to release the slot, since a new
 * walcount refuses a slot that is still held. */
static bool kill_hard(struct ctx *t)
{
	char err[IT_ERRLEN], st[32];

	if (!wc_signal(&t->wc, SIGKILL, 10, err, sizeof err))
		return fail_err(t, "killing walcount", err);
	if (!WIFSIGNALED(t->wc.status) || WTERMSIG(t->wc.status) != SIGKILL)
		return fail(t, "walcount had already ended (%s) before SIGKILL", it_status_text(t->wc.status, st, sizeof st));
	return wait_slot(t, false, 30);
}

/* Runs the workload until `target` more changes are committed. With
 * reconnect, a broken connection (server restart) is replaced and the
 * workload goes on. */
static bool run_changes(struct ctx *t, long target, bool reconnect)
{
	char err[IT_ERRLEN];
	long goal = t->wl.committed + target;

	while (t->wl.committed < goal) {
		long rc = workload_run(&t->wl, t->conn, goal - t->wl.committed, err, sizeof err);
		if (rc == WL_FAILED || (rc == WL_LOST && !reconnect))
			return fail_err(t, "workload", err);
		if (rc == WL_LOST && !it_reconnect(&t->conn, t->db, 60, err, sizeof err))
			return fail_err(t, "reconnecting the workload", err);
	}
	return true;
}

static bool marker(struct ctx *t, char m[LSN_BUFLEN])
{
	char err[IT_ERRLEN];

	return it_marker(t->conn, ++t->markers, m, err, sizeof err) || fail_err(t, "marker transaction", err);
}

static bool wait_applied(struct ctx *t, const char m[LSN_BUFLEN], double timeout_s)
{
	char err[IT_ERRLEN];

	return it_wait_applied(t->conn, t->db, m, timeout_s, &t->wc, err, sizeof err) || fail_err(t, "caught-up wait", err);
}

static bool caught_up(struct ctx *t, double timeout_s)
{
	char m[LSN_BUFLEN];

	return marker(t, m) && wait_applied(t, m, timeout_s);
}

static bool drift_zero(struct ctx *t)
{
	char err[IT_ERRLEN], examples[1024];
	long n = it_drift(t->conn, examples, sizeof examples, err, sizeof err);

	if (n < 0)
		return fail_err(t, "drift check", err);
	if (n > 0)
		return fail(t, "drift: %ld count cells differ from the source tables, e.g. %s", n, examples);
	return true;
}

/* 1. A random workload is counted exactly, live and from a backlog. */
static bool test_random_workload(struct ctx *t)
{
	char m[LSN_BUFLEN];

	if (!configure(t, &(struct wc_opts){.max_delay = "100ms"}) || !start_streaming(t) || !run_changes(t, 20000, false) ||
	    !caught_up(t, CAUGHT_UP_TIMEOUT) || !drift_zero(t) || !stop_clean(t))
		return false;
	long live = t->wl.committed, live_txns = t->wl.transactions;
	if (!run_changes(t, 20000, false) || !marker(t, m))
		return false;
	long backlog = t->wl.committed - live;
	double t0 = it_now();
	if (!start(t) || !wait_applied(t, m, 300))
		return false;
	double secs = it_now() - t0;
	if (!drift_zero(t))
		return false;
	snprintf(t->details, sizeof t->details,
		 "live: %ld changes in %ld transactions, drift 0; backlog: applied %ld changes in %.2f s (%.0f changes/s), drift 0; "
		 "%ld big transactions, %ld rolled back",
		 live, live_txns, backlog, secs, (double) backlog / secs, t->wl.big, t->wl.rollbacks);
	return true;
}

/* Samples, just before a kill, whether a transaction was half applied and
 * whether the last marker m (the newest source transaction) was pending. */
static bool sample_state(struct ctx *t, const char m[LSN_BUFLEN], int *partial, int *lagging)
{
	const char *params[2] = {t->db, m};
	char err[IT_ERRLEN];
	PGresult *res = it_query(t->conn,
				 "SELECT partial_xid IS NOT NULL, NOT (lsn > $2::pg_lsn) FROM walcount.progress WHERE slot_name = $1",
				 2, params, err, sizeof err);

	if (res == NULL)
		return fail_err(t, "reading walcount.progress", err);
	if (PQntuples(res) == 1) {
		*partial += strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		*lagging += strcmp(PQgetvalue(res, 0, 1), "t") == 0;
	}
	PQclear(res);
	return true;
}

/* 2. SIGKILL at random points, with transactions applied in parts, loses
 * and doubles nothing. */
static bool test_sigkill_restarts(struct ctx *t)
{
	enum { KILLS = 20 };
	int partial = 0, lagging = 0;
	char m[LSN_BUFLEN], st[32];

	if (!configure(t, &(struct wc_opts){.max_changes = 500, .max_keys = 16, .max_delay = "50ms"}) ||
	    !start_streaming(t))
		return false;
	for (int i = 0; i < KILLS; i++) {
		if (!wc_alive(&t->wc))
			return fail(t, "walcount ended by itself (%s) before kill %d", it_status_text(t->wc.status, st, sizeof st), i + 1);
		if (!run_changes(t, rng_between(&t->rng, 300, 2500), false) || !marker(t, m))
			return false;
		it_sleep_ms(rng_between(&t->rng, 0, 400));
		if (!sample_state(t, m, &partial, &lagging) || !kill_hard(t) || !start(t))
			return false;
	}
	if (!caught_up(t, CAUGHT_UP_TIMEOUT) || !drift_zero(t))
		return false;
	snprintf(t->details, sizeof t->details,
		 "%d kills over %ld changes: %d during a partly applied transaction, %d while behind; drift 0", KILLS,
		 t->wl.committed, partial, lagging);
	return true;
}

static bool terminate_walsender(struct ctx *t)
{
	const char *params[1] = {t->db};
	char err[IT_ERRLEN], v[8];

	if (!wait_slot(t, true, 60))
		return false;
	if (!it_value(t->conn,
		      "SELECT coalesce(bool_and(pg_terminate_backend(active_pid)), false) FROM pg_replication_slots "
		      "WHERE slot_name = $1 AND active",
		      1, params, v, sizeof v, err, sizeof err))
		return fail_err(t, "terminating the walsender", err);
	return strcmp(v, "t") == 0 || fail(t, "pg_terminate_backend of the walsender returned %s", v);
}

static bool restart_server(struct ctx *t)
{
	char err[IT_ERRLEN];

	if (!it_restart_server(err, sizeof err))
		return fail_err(t, "restarting PostgreSQL", err);
	return true;
}

/* Lines of walcount's log that mention a reconnect. */
static int count_reconnects(const char *log)
{
	char err[256];
	char *text = it_read_file(log, NULL, err, sizeof err);
	int n = 0;

	for (char *p = text; p && (p = strstr(p, "reconnect")) != NULL; p++)
		n++;
	free(text);
	return n;
}

/* 3. walcount survives a terminated walsender and a server restart by
 * itself. The workload connection breaks at the restart and is reconnected
 * (run_changes). */
static bool test_reconnects(struct ctx *t)
{
	enum { CHUNKS = 20, CHUNK = 1000, RESTART_AT = 15 };
	char st[32];

	if (!configure(t, &(struct wc_opts){.max_delay = "100ms"}) || !start_streaming(t))
		return false;
	pid_t pid = t->wc.pid;
	for (int i = 0; i < CHUNKS; i++) {
		if (!run_changes(t, CHUNK, true))
			return false;
		if (i % 4 == 3 && i < 12 && !terminate_walsender(t))
			return false;
		if (i == RESTART_AT && !restart_server(t))
			return false;
	}
	if (!caught_up(t, CAUGHT_UP_TIMEOUT))
		return false;
	if (!wc_alive(&t->wc) || t->wc.pid != pid || t->wc.runs != 1)
		return fail(t, "walcount (pid %d) did not survive: %s", (int) pid, it_status_text(t->wc.status, st, sizeof st));
	int reconnects = count_reconnects(t->wc.log);
	if (reconnects == 0)
		return fail(t, "no \"reconnect\" line in %s", t->wc.log);
	if (!drift_zero(t))
		return false;
	snprintf(t->details, sizeof t->details,
		 "%ld changes, 3 walsender kills and a server restart, same pid %d, %d reconnect log lines, drift 0",
		 t->wl.committed, (int) pid, reconnects);
	return true;
}

/* 4. A 1,000,000-row transaction is applied in parts with memory bounded
 * by batch.max_keys, and resumes exactly after a SIGKILL mid-way. */
static bool test_huge_transaction(struct ctx *t)
{
	const char *params[1] = {t->db};
	char err[IT_ERRLEN], m[LSN_BUFLEN], v[32];

	if (!configure(t, &(struct wc_opts){.max_keys = 1000}) || !start_streaming(t))
		return false;
	double t0 = it_now();
	PGresult *res = it_query(t->conn,
				 "INSERT INTO follows (follower_user_id, followee_user_id, is_current, is_delete, txhash) "
				 "SELECT g, (g % 1000) + 1, true, false, 'big' FROM generate_series(1, 1000000) g",
				 0, NULL, err, sizeof err);
	if (res == NULL)
		return fail_err(t, "the 1,000,000-row insert", err);
	PQclear(res);
	double committed = it_now();
	int rc = it_poll(t->conn,
			 "SELECT coalesce((SELECT partial_xid IS NOT NULL FROM walcount.progress WHERE slot_name = $1), false)", 1,
			 params, 300, &t->wc, err, sizeof err);
	if (rc <= 0)
		return rc < 0 ? fail_err(t, "waiting for a partly applied transaction", err)
			      : fail(t, "walcount.progress.partial_xid stayed NULL for 300 s");
	if (!it_value(t->conn, "SELECT partial_changes FROM walcount.progress WHERE slot_name = $1", 1, params, v, sizeof v,
		      err, sizeof err))
		return fail_err(t, "reading partial_changes", err);
	if (!kill_hard(t))
		return false;
	long hwm1 = t->wc.hwm_kib, rss1 = t->wc.ru.ru_maxrss;
	if (!marker(t, m) || !start(t) || !wait_applied(t, m, 600))
		return false;
	double done = it_now();
	if (!drift_zero(t) || !stop_clean(t))
		return false;
	long hwm2 = t->wc.hwm_kib, rss2 = t->wc.ru.ru_maxrss;
	/* VmHWM is walcount's own peak; ru_maxrss also holds the forked test
	 * process's (see struct walcount), so it is reported, not asserted. */
	if (hwm1 < 0 || hwm2 < 0 || hwm1 >= RSS_LIMIT_KIB || hwm2 >= RSS_LIMIT_KIB)
		return fail(t, "peak RSS (VmHWM) %ld KiB (killed run) / %ld KiB (resumed run), want < 100 MiB", hwm1, hwm2);
	snprintf(t->details, sizeof t->details,
		 "insert %.1f s, killed at partial_changes %s, applied %.1f s after commit; peak RSS %ld KiB and %ld KiB "
		 "(VmHWM; ru_maxrss %ld and %ld KiB); drift 0",
		 committed - t0, v, done - committed, hwm1, hwm2, rss1, rss2);
	return true;
}

/* True when the file's text is one non-empty line (newline optional). */
static bool one_line(const char *s)
{
	size_t n = strcspn(s, "\n");

	return n > 0 && (s[n] == '\0' || s[n + 1] == '\0');
}

/* Runs `walcount run` with stdout and stderr in IT_TMP/prereq-<name>.{out,err}
 * to completion; fills *status. */
static bool run_to_exit(struct ctx *t, const char *name, const char *config, int *status, char **out, char **errtext)
{
	char outp[PATH_MAX], errp[PATH_MAX], err[IT_ERRLEN];
	char *argv[] = {(char *) IT.bin, "run", "--config", (char *) config, NULL};

	snprintf(outp, sizeof outp, "%s/prereq-%s.out", IT.tmp, name);
	snprintf(errp, sizeof errp, "%s/prereq-%s.err", IT.tmp, name);
	int ofd = open(outp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int efd = open(errp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	pid_t pid = ofd < 0 || efd < 0 ? -1 : it_spawn(argv, ofd, efd, err, sizeof err);
	if (ofd >= 0)
		close(ofd);
	if (efd >= 0)
		close(efd);
	if (pid < 0)
		return fail(t, "case %s: cannot start walcount: %s", name, ofd < 0 || efd < 0 ? strerror(errno) : err);
	if (!it_reap(pid, 30, status, NULL)) {
		kill(pid, SIGKILL);
		it_reap(pid, 10, status, NULL);
		return fail(t, "case %s: walcount still running after 30 s", name);
	}
	*out = it_read_file(outp, NULL, err, sizeof err);
	*errtext = it_read_file(errp, NULL, err, sizeof err);
	return (*out && *errtext) || fail_err(t, "reading walcount's output", err);
}

/* A refused start leaves neither the state schema nor the slot behind. */
static bool no_trace(struct ctx *t, const char *name)
{
	const char *params[1] = {t->db};
	char err[IT_ERRLEN], v[64];

	if (!it_value(t->conn,
		      "SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = 'walcount') || ' ' || "
		      "(SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1)",
		      1, params, v, sizeof v, err, sizeof err))
		return fail_err(t, "checking for leftovers", err);
	return strcmp(v, "0 0") == 0 || fail(t, "case %s left state behind (schema walcount, slot): %s", name, v);
}

static bool prereq_case(struct ctx *t, const char *name, const char *config, const char *want1, const char *want2)
{
	char *out = NULL, *errtext = NULL, st[32];
	int status;
	bool ok = run_to_exit(t, name, config, &status, &out, &errtext);

	if (ok && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		ok = fail(t, "case %s: walcount exited 0, want non-zero", name);
	else if (ok && !WIFEXITED(status))
		ok = fail(t, "case %s: walcount ended with %s", name, it_status_text(status, st, sizeof st));
	else if (ok && *out != '\0')
		ok = fail(t, "case %s: stdout not empty: %.200s", name, out);
	else if (ok && !one_line(errtext))
		ok = fail(t, "case %s: stderr is not exactly one line: %.400s", name, errtext);
	else if (ok && (strstr(errtext, want1) == NULL || (want2 && strstr(errtext, want2) == NULL)))
		ok = fail(t, "case %s: stderr lacks \"%s\"%s%s%s: %.400s", name, want1, want2 ? " and \"" : "",
			  want2 ? want2 : "", want2 ? "\"" : "", errtext);
	free(out);
	free(errtext);
	return ok && no_trace(t, name);
}

/* ALTER SYSTEM, restart, and reconnect the test's connection. */
static bool alter_system(struct ctx *t, const char *sql)
{
	char err[IT_ERRLEN];

	if (!it_exec(t->conn, sql, 0, NULL, err, sizeof err))
		return fail_err(t, "ALTER SYSTEM", err);
	if (!restart_server(t))
		return false;
	return it_reconnect(&t->conn, t->db, 60, err, sizeof err) || fail_err(t, "reconnecting after restart", err);
}

static bool write_file(struct ctx *t, const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
		return fail(t, "writing %s: %s", path, strerror(errno));
	return true;
}

/* (a) A config error names the file and the position. */
static bool prereq_config(struct ctx *t)
{
	char dir[PATH_MAX], path[PATH_MAX + 16];

	snprintf(dir, sizeof dir, "%s/prereq-bad", IT.tmp);
	snprintf(path, sizeof path, "%s/config.yaml", dir);
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return fail(t, "mkdir %s: %s", dir, strerror(errno));
	return write_file(t, path, "batch:\n  max_changes: -5\n") && prereq_case(t, "config", path, "config", ":2:");
}

/* (b) Without the old row image walcount refuses and prints the fix. */
static bool prereq_identity(struct ctx *t)
{
	char err[IT_ERRLEN];

	if (!it_exec(t->conn, "ALTER TABLE follows REPLICA IDENTITY DEFAULT", 0, NULL, err, sizeof err))
		return fail_err(t, "ALTER TABLE", err);
	bool ok = prereq_case(t, "identity", t->wc.config, "ALTER TABLE public.follows REPLICA IDENTITY FULL", NULL);
	if (!it_exec(t->conn, "ALTER TABLE follows REPLICA IDENTITY FULL", 0, NULL, err, sizeof err))
		return fail_err(t, "restoring REPLICA IDENTITY FULL", err);
	return ok;
}

/* (c) A server whose output_plugin_libraries does not list wal2json. */
static bool prereq_plugins(struct ctx *t)
{
	if (!alter_system(t, "ALTER SYSTEM SET output_plugin_libraries = 'pgoutput'"))
		return false;
	bool ok = prereq_case(t, "plugins", t->wc.config, "output_plugin_libraries", NULL);
	return alter_system(t, "ALTER SYSTEM RESET output_plugin_libraries") && ok;
}

/* (d) wal_level below logical. The server refuses to start at replica while
 * any logical slot exists, so every earlier test must have dropped its own. */
static bool prereq_wal_level(struct ctx *t)
{
	char err[IT_ERRLEN], v[512];

	if (!it_value(t->conn, "SELECT coalesce(string_agg(slot_name, ', '), '') FROM pg_replication_slots WHERE slot_type = 'logical'",
		      0, NULL, v, sizeof v, err, sizeof err))
		return fail_err(t, "listing slots", err);
	if (*v != '\0')
		return fail(t, "logical slots left by earlier tests (%s): the server would not start with wal_level = replica", v);
	if (!alter_system(t, "ALTER SYSTEM SET wal_level = 'replica'"))
		return false;
	bool ok = prereq_case(t, "wal_level", t->wc.config, "wal_level", NULL);
	return alter_system(t, "ALTER SYSTEM RESET wal_level") && ok;
}

/* The server must end as it started: logical decoding with wal2json. */
static bool server_restored(struct ctx *t)
{
	char err[IT_ERRLEN], v[512];

	if (!it_value(t->conn,
		      "SELECT current_setting('wal_level') || ' ' || coalesce((SELECT setting FROM pg_settings "
		      "WHERE name = 'output_plugin_libraries'), 'wal2json')",
		      0, NULL, v, sizeof v, err, sizeof err))
		return fail_err(t, "reading settings", err);
	return (strncmp(v, "logical ", 8) == 0 && strstr(v, "wal2json") != NULL) ||
	       fail(t, "server not restored: wal_level and output_plugin_libraries are %s", v);
}

/* 5. Each bad prerequisite: non-zero exit within 30 s, one stderr line that
 * says what to fix, nothing written. Last, since it restarts the server. */
static bool test_prerequisites(struct ctx *t)
{
	if (!configure(t, &(struct wc_opts){0}))
		return false;
	bool ok = prereq_config(t);
	ok = prereq_identity(t) && ok;
	ok = prereq_plugins(t) && ok;
	ok = prereq_wal_level(t) && ok;
	if (!server_restored(t) || !ok)
		return false;
	snprintf(t->details, sizeof t->details,
		 "config, replica identity, output_plugin_libraries, wal_level: each refused with one line, no state left; server restored");
	return true;
}

static const struct test {
	const char *name, *db;
	bool (*run)(struct ctx *t);
} TESTS[] = {
	{"random_workload", "it_random_workload", test_random_workload},
	{"sigkill_restarts", "it_sigkill_restarts", test_sigkill_restarts},
	{"reconnects", "it_reconnects", test_reconnects},
	{"huge_transaction", "it_huge_transaction", test_huge_transaction},
	{"prerequisites", "it_prereq", test_prerequisites},
};

/* Drops what an earlier run left (the slot pins the database), then creates
 * the test's database from sql/schema.sql. */
static bool create_database(struct ctx *t)
{
	const char *params[1] = {t->db};
	char err[IT_ERRLEN], sql[160];
	PGconn *admin = it_connect("postgres", err, sizeof err);
	bool ok = admin != NULL;

	snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", t->db);
	ok = ok && it_exec(admin, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1",
			   1, params, err, sizeof err);
	ok = ok && it_exec(admin, sql, 0, NULL, err, sizeof err);
	snprintf(sql, sizeof sql, "CREATE DATABASE %s", t->db);
	ok = ok && it_exec(admin, sql, 0, NULL, err, sizeof err);
	PQfinish(admin);
	ok = ok && (t->conn = it_connect(t->db, err, sizeof err)) != NULL;
	ok = ok && it_exec(t->conn, IT.schema_sql, 0, NULL, err, sizeof err);
	return ok || fail_err(t, "creating the test database", err);
}

/* Stops walcount if the test left it running (it must still stop
 * cleanly), then drops the slot whatever happened, so no WAL stays pinned. */
static bool teardown(struct ctx *t)
{
	const char *params[1] = {t->db};
	char err[IT_ERRLEN];
	bool ok = t->wc.pid == 0 || stop_clean(t);

	if (t->conn == NULL || PQstatus(t->conn) != CONNECTION_OK)
		if (!it_reconnect(&t->conn, t->db, 60, err, sizeof err))
			return fail_err(t, "reconnecting for cleanup", err);
	if (!wait_slot(t, false, 30))
		return false;
	return (it_exec(t->conn, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1",
			1, params, err, sizeof err) ||
		fail_err(t, "dropping the slot", err)) &&
	       ok;
}

static uint64_t name_hash(const char *s)
{
	uint64_t h = UINT64_C(1469598103934665603);

	for (; *s; s++)
		h = (h ^ (unsigned char) *s) * UINT64_C(1099511628211);
	return h;
}

static bool run_test(const struct test *test)
{
	static struct ctx t; /* large; one at a time */

	t = (struct ctx){0};
	snprintf(t.db, sizeof t.db, "%s", test->db);
	snprintf(t.wc.config, sizeof t.wc.config, "%s/%s.yaml", IT.tmp, test->name);
	snprintf(t.wc.log, sizeof t.wc.log, "%s/%s.log", IT.tmp, test->name);
	unlink(t.wc.log);
	/* Per-test streams: IT_ONLY=x replays the same choices as a full run. */
	t.rng = seed ^ name_hash(test->name);
	workload_init(&t.wl, rng_next(&t.rng));
	double t0 = it_now();
	bool ok = create_database(&t) && test->run(&t);
	ok = teardown(&t) && ok;
	PQfinish(t.conn);
	if (ok) {
		printf("ok - %s (%s; %.1f s)\n", test->name, t.details, it_now() - t0);
		return true;
	}
	printf("FAIL - %s: %s (seed=%" PRIu64 ")\n", test->name, t.reason, seed);
	if (t.wc.runs > 0)
		it_print_tail(t.wc.log, 20);
	return false;
}

/* IT_ONLY: comma-separated test names; unset runs everything. */
static bool selected(const char *name)
{
	const char *only = getenv("IT_ONLY");
	size_t n = strlen(name);

	if (only == NULL || *only == '\0')
		return true;
	for (const char *p = only; *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ',')) {
		if (strcspn(p, ",") == n && strncmp(p, name, n) == 0)
			return true;
	}
	return false;
}

/* Names in IT_ONLY that match no test, so a typo fails instead of running
 * nothing. */
static int unknown_selections(void)
{
	const char *only = getenv("IT_ONLY");
	int unknown = 0;

	for (const char *p = only ? only : ""; *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ',')) {
		size_t n = strcspn(p, ",");
		bool found = false;
		for (size_t i = 0; i < sizeof TESTS / sizeof TESTS[0]; i++)
			found |= strlen(TESTS[i].name) == n && strncmp(p, TESTS[i].name, n) == 0;
		if (!found && n > 0) {
			printf("FAIL - IT_ONLY: no test named \"%.*s\" (seed=%" PRIu64 ")\n", (int) n, p, seed);
			unknown++;
		}
	}
	return unknown;
}

int main(void)
{
	char err[IT_ERRLEN];
	const char *s = getenv("IT_SEED");
	int passed = 0, failed = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	seed = s && *s ? strtoull(s, NULL, 10) : (uint64_t) time(NULL) ^ ((uint64_t) getpid() << 32);
	printf("seed=%" PRIu64 "\n", seed);
	if (!it_env_load(err, sizeof err)) {
		printf("FAIL - setup: %s (seed=%" PRIu64 ")\n", err, seed);
		failed++;
	} else {
		failed += unknown_selections();
		for (size_t i = 0; i < sizeof TESTS / sizeof TESTS[0]; i++)
			if (selected(TESTS[i].name))
				run_test(&TESTS[i]) ? passed++ : failed++;
	}
	printf("integration: %d passed, %d failed\n", passed, failed);
	return failed > 0;
}
