/* The streaming tests: exactly-once under a random workload, SIGKILL,
 * reconnects, a huge transaction, and the prerequisite errors. */
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

#include "cases.h"

#define RSS_LIMIT_KIB (100L * 1024)

static bool random_workload(struct ctx *t, long workers)
{
	struct it_mark m;

	/* Parsed on threads: the state machine must still see stream order. */
	if (!configure(t, &(struct wc_opts){.max_delay = "100ms", .workers = workers, .decode_workers = "2"}) ||
	    !start_streaming(t) || !run_changes(t, 20000, false) || !caught_up(t, CAUGHT_UP_TIMEOUT) || !drift_zero(t) ||
	    !stop_clean(t))
		return false;
	long live = t->wl.committed, live_txns = t->wl.transactions;
	if (!run_changes(t, 20000, false) || !marker(t, &m))
		return false;
	long backlog = t->wl.committed - live;
	double t0 = it_now();
	if (!start(t) || !wait_applied(t, &m, 300))
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

bool test_random_workload(struct ctx *t)
{
	return random_workload(t, 0);
}

/* The same with the aggregate rows split over four apply connections. */
bool test_random_workload_w4(struct ctx *t)
{
	return random_workload(t, 4);
}

/* Samples, just before a kill, whether a transaction was half applied and
 * whether the last marker m (the newest source transaction) was pending. */
static bool sample_state(struct ctx *t, const char m[LSN_BUFLEN], int *partial, int *lagging)
{
	const char *params[2] = {t->db, m};
	char err[IT_ERRLEN];
	PGresult *res = it_query(
		t->conn,
		"SELECT bool_or(partial_xid IS NOT NULL), NOT (min(lsn) > $2::pg_lsn) FROM walcount.progress WHERE slot_name = $1 "
		"HAVING count(*) > 0",
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
static bool sigkill_restarts(struct ctx *t, long workers)
{
	enum { KILLS = 20 };
	int partial = 0, lagging = 0;
	char st[32];
	struct it_mark m;

	/* Parsed on the stream's thread: the path without decode threads. */
	if (!configure(
		    t,
		    &(struct wc_opts){
			    .max_changes = 500, .max_keys = 16, .max_delay = "50ms", .workers = workers, .decode_workers = "0"}) ||
	    !start_streaming(t))
		return false;
	for (int i = 0; i < KILLS; i++) {
		if (!wc_alive(&t->wc))
			return fail(t, "walcount ended by itself (%s) before kill %d",
				    it_status_text(t->wc.status, st, sizeof st), i + 1);
		if (!run_changes(t, rng_between(&t->rng, 300, 2500), false) || !marker(t, &m))
			return false;
		it_sleep_ms(rng_between(&t->rng, 0, 400)); /* load pattern: a random moment to kill */
		if (!sample_state(t, m.lsn, &partial, &lagging) || !kill_hard(t) || !start(t))
			return false;
	}
	if (!caught_up(t, CAUGHT_UP_TIMEOUT) || !drift_zero(t))
		return false;
	snprintf(t->details, sizeof t->details,
		 "%d kills over %ld changes: %d during a partly applied transaction, %d while behind; drift 0", KILLS,
		 t->wl.committed, partial, lagging);
	return true;
}

bool test_sigkill_restarts(struct ctx *t)
{
	return sigkill_restarts(t, 0);
}

/* With four partitions, a kill leaves their rows at different positions
 * and parts of one transaction applied in some of them. */
bool test_sigkill_restarts_w4(struct ctx *t)
{
	return sigkill_restarts(t, 4);
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
bool test_reconnects(struct ctx *t)
{
	enum { CHUNKS = 20, CHUNK = 1000, RESTART_AT = 15 };
	char st[32];

	if (!configure(t, &(struct wc_opts){.max_delay = "100ms"}) || !start_streaming(t))
		return false;
	pid_t pid = t->wc.pid;
	for (int i = 0; i < CHUNKS; i++) {
		if (!run_changes(t, CHUNK, true))
			return false;
		if (i % 4 == 3 && i < 12 && !terminate_walsender(t, true))
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

/* 4. A 1,000,000-row transaction (IT_QUICK: 200,000) is applied in parts
 * with memory bounded by batch.max_keys, and resumes exactly after a
 * SIGKILL mid-way. */
bool test_huge_transaction(struct ctx *t)
{
	const char *params[1] = {t->db};
	char err[IT_ERRLEN], v[32], rows[16];
	struct it_mark m;

	if (!configure(t, &(struct wc_opts){.max_keys = 1000}) || !start_streaming(t))
		return false;
	snprintf(rows, sizeof rows, "%d", rounds(1000000, 200000));
	const char *insert_params[1] = {rows};
	double t0 = it_now();
	PGresult *res = it_query(t->conn,
				 "INSERT INTO follows (follower_user_id, followee_user_id, is_current, is_delete, txhash) "
				 "SELECT g, (g % 1000) + 1, true, false, 'big' FROM generate_series(1, $1::int) g",
				 1, insert_params, err, sizeof err);
	if (res == NULL)
		return fail_err(t, "the huge insert", err);
	PQclear(res);
	double committed = it_now();
	int rc = it_poll(
		t->conn,
		"SELECT coalesce((SELECT bool_or(partial_xid IS NOT NULL) FROM walcount.progress WHERE slot_name = $1), false)",
		1, params, 300, &t->wc, err, sizeof err);
	if (rc <= 0)
		return rc < 0 ? fail_err(t, "waiting for a partly applied transaction", err)
			      : fail(t, "walcount.progress.partial_xid stayed NULL for 300 s");
	if (!it_value(t->conn, "SELECT max(partial_changes) FROM walcount.progress WHERE slot_name = $1", 1, params, v, sizeof v,
		      err, sizeof err))
		return fail_err(t, "reading partial_changes", err);
	if (!kill_hard(t))
		return false;
	long hwm1 = t->wc.hwm_kib, rss1 = t->wc.ru.ru_maxrss;
	if (!marker(t, &m) || !start(t) || !wait_applied(t, &m, 600))
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
		 "%s rows: insert %.1f s, killed at partial_changes %s, applied %.1f s after commit; peak RSS %ld KiB and "
		 "%ld KiB (VmHWM; ru_maxrss %ld and %ld KiB); drift 0",
		 rows, committed - t0, v, done - committed, hwm1, hwm2, rss1, rss2);
	return true;
}

/* True when the file's text is one non-empty line (newline optional). */
static bool one_line(const char *s)
{
	size_t n = strcspn(s, "\n");

	return n > 0 && (s[n] == '\0' || s[n + 1] == '\0');
}

/* Runs `walcount run --config config` to completion (prereq-NAME.out/err). */
static bool run_to_exit(struct ctx *t, const char *name, const char *config, int *status, char **out, char **errtext)
{
	const char *args[] = {"run", "--config", config, NULL};
	char label[64];

	snprintf(label, sizeof label, "prereq-%s", name);
	return run_walcount(t, label, args, status, out, errtext);
}

/* A refused start leaves neither the state schema nor the slot behind. */
static bool no_trace(struct ctx *t, const char *name)
{
	const char *params[1] = {t->db};
	char err[IT_ERRLEN], v[64], what[96];

	if (!it_value(t->conn,
		      "SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = 'walcount') || ' ' || "
		      "(SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1)",
		      1, params, v, sizeof v, err, sizeof err))
		return fail_err(t, "checking for leftovers", err);
	snprintf(what, sizeof what, "case %s: state left behind (walcount schemas, slots)", name);
	return expect_str_eq(t, what, "0 0", v);
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
	else if (ok)
		ok = expect_str_contains(t, name, errtext, want1) &&
		     (want2 == NULL || expect_str_contains(t, name, errtext, want2));
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

	if (!it_value(t->conn,
		      "SELECT coalesce(string_agg(slot_name, ', '), '') FROM pg_replication_slots WHERE slot_type = 'logical'", 0,
		      NULL, v, sizeof v, err, sizeof err))
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
bool test_prerequisites(struct ctx *t)
{
	if (!configure(t, &(struct wc_opts){0}))
		return false;
	bool ok = prereq_config(t);
	ok = prereq_identity(t) && ok;
	ok = prereq_plugins(t) && ok;
	ok = prereq_wal_level(t) && ok;
	if (!server_restored(t) || !ok)
		return false;
	snprintf(
		t->details, sizeof t->details,
		"config, replica identity, output_plugin_libraries, wal_level: each refused with one line, no state left; server restored");
	return true;
}
