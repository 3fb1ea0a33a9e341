/* Slot lifecycle tests: the exact initial load under concurrent writers,
 * WAL retention of a quiet slot, takeover of a held slot, exact rebuilds of
 * an advanced, replaced or lost slot, and drop. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cases.h"

#define PRELOAD_ROWS 200000
#define WRITER_CHANGES 30000

/* Source rows from three indexer eras: active, deleted and demoted rows,
 * one per identity (the partial unique indexes); and wrong counts in the
 * aggregates, which the load must overwrite. */
static const char PRELOAD_SQL[] =
	"INSERT INTO reposts (user_id, repost_item_id, repost_type, is_current, is_delete, txhash) "
	"SELECT g % 997, g / 997, (ARRAY['track','playlist','album'])[1 + g % 3]::reposttype, g % 11 <> 0, g % 7 = 0, 'pre' || g "
	"FROM generate_series(1, $1::int * 2 / 5) g ON CONFLICT DO NOTHING;"
	"INSERT INTO saves (user_id, save_item_id, save_type, is_current, is_delete, txhash) "
	"SELECT g % 3001, g / 3001, (ARRAY['track','track','playlist','album'])[1 + g % 4]::savetype, g % 13 <> 0, g % 5 = 0, 'pre' || g "
	"FROM generate_series(1, $1::int * 3 / 10) g ON CONFLICT DO NOTHING;"
	"INSERT INTO follows (follower_user_id, followee_user_id, is_current, is_delete, txhash) "
	"SELECT g % 5003, g / 5003, g % 17 <> 0, g % 6 = 0, 'pre' || g "
	"FROM generate_series(1, $1::int * 3 / 10) g ON CONFLICT DO NOTHING;"
	"INSERT INTO aggregate_user (user_id, repost_count, follower_count) SELECT g, 999, NULL FROM generate_series(1, 500) g;"
	"INSERT INTO aggregate_track (track_id, repost_count, save_count) SELECT g, -3, 77 FROM generate_series(1, 500) g;";

bool preload(struct ctx *t, long *rows)
{
	char n[16], total[32], err[IT_ERRLEN], sql[sizeof PRELOAD_SQL + 64];

	/* Several statements: inline the size rather than bind it. */
	snprintf(n, sizeof n, "%d", PRELOAD_ROWS);
	snprintf(sql, sizeof sql, "%s", PRELOAD_SQL);
	for (char *p; (p = strstr(sql, "$1::int")) != NULL;)
		memmove(p + strlen(n), p + 7, strlen(p + 7) + 1), memcpy(p, n, strlen(n));
	if (!it_exec(t->conn, sql, 0, NULL, err, sizeof err) ||
	    !it_value(t->conn,
		      "SELECT (SELECT count(*) FROM reposts) + (SELECT count(*) FROM saves) + (SELECT count(*) FROM follows)", 0,
		      NULL, total, sizeof total, err, sizeof err))
		return fail_err(t, "preloading source rows", err);
	*rows = atol(total);
	return *rows >= PRELOAD_ROWS || fail(t, "preload made only %ld rows", *rows);
}

/* A writer in a child process, so it runs while walcount init works. */
pid_t start_writer(struct ctx *t, long changes)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	char err[IT_ERRLEN];
	PGconn *conn = it_connect(t->db, err, sizeof err);
	long done = 0;
	while (conn != NULL && done < changes) {
		long rc = workload_run(&t->wl, conn, 500, err, sizeof err);
		if (rc < 0)
			break;
		done += rc;
	}
	if (done < changes)
		fprintf(stderr, "writer: %s\n", err);
	PQfinish(conn);
	_exit(done >= changes ? 0 : 1);
}

bool writer_done(struct ctx *t, pid_t pid)
{
	int status;

	if (!it_reap(pid, 120, &status, NULL)) {
		kill(pid, SIGKILL);
		it_reap(pid, 10, &status, NULL);
		return fail(t, "the concurrent writer did not finish in 120 s");
	}
	return (WIFEXITED(status) && WEXITSTATUS(status) == 0) || fail(t, "the concurrent writer failed");
}

/* Runs a walcount command to completion and wants exit code `want`. */
static bool command(struct ctx *t, const char *label, const char *const *args, int want, char **errtext)
{
	char *out = NULL, what[64];
	int status;

	*errtext = NULL;
	if (!run_walcount(t, label, args, &status, &out, errtext))
		return false;
	free(out);
	snprintf(what, sizeof what, "walcount %s", args[0]);
	return expect_exit_code(t, what, want, status, *errtext);
}

bool test_initial_load(struct ctx *t)
{
	const char *init[] = {"init", "--config", t->wc.config, NULL};
	struct wc_opts o = {0};
	char *errtext;
	long rows;

	if (!configure(t, &o) || !preload(t, &rows))
		return false;
	pid_t writer = start_writer(t, WRITER_CHANGES);
	if (writer < 0)
		return fail(t, "fork: %s", strerror(errno));
	/* init starts once the writer writes: another backend of the database
	 * has run a statement. */
	if (!poll_until(
		    t, "the writer starting to write",
		    "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() "
		    "AND backend_type = 'client backend' AND query <> '')",
		    "SELECT count(*) || ' other backends' FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
		    30)) {
		writer_done(t, writer);
		return false;
	}
	bool ok = command(t, "initial_load-init", init, 0, &errtext);
	bool loaded = ok && strstr(errtext, "initial load:") != NULL;
	/* The point is writes racing the load: a writer already done would
	 * make this an easy test. */
	bool overlapped = waitpid(writer, NULL, WNOHANG) == 0;
	free(errtext);
	if (!writer_done(t, writer) || !ok)
		return false;
	if (!loaded)
		return fail(t, "walcount init did not report an initial load");
	if (!overlapped)
		return fail(t, "the writer finished before walcount init did; nothing raced the load");
	if (!start_streaming(t) || !caught_up(t, CAUGHT_UP_TIMEOUT) || !drift_zero(t))
		return false;
	snprintf(t->details, sizeof t->details, "%ld preloaded rows, %d changes written by a writer racing init; drift 0", rows,
		 WRITER_CHANGES);
	return true;
}

static bool retained_bytes(struct ctx *t, long *bytes)
{
	const char *params[1] = {t->db};
	char v[32], err[IT_ERRLEN];

	if (!it_value(t->conn, "SELECT pg_current_wal_lsn() - restart_lsn FROM pg_replication_slots WHERE slot_name = $1", 1,
		      params, v, sizeof v, err, sizeof err))
		return fail_err(t, "reading retained WAL", err);
	*bytes = atol(v);
	return true;
}

/* WAL written to a table walcount does not stream, in this database and in
 * another one of the cluster. */
static bool unrelated_writes(struct ctx *t, PGconn *other, long *max_retained)
{
	char err[IT_ERRLEN];
	const char *sql = "INSERT INTO unrelated SELECT g, repeat('x', 200) FROM generate_series(1, 40000) g";

	for (int round = 0; round < 16; round++) {
		long r;
		if (!it_exec(round % 2 ? other : t->conn, sql, 0, NULL, err, sizeof err))
			return fail_err(t, "unrelated writes", err);
		if (!retained_bytes(t, &r))
			return false;
		if (r > *max_retained)
			*max_retained = r;
		/* Load pacing: the writes span several heartbeats (1 s). */
		it_sleep_ms(250);
	}
	return true;
}

bool test_idle_wal_retention(struct ctx *t)
{
	struct wc_opts o = {.heartbeat = "1s"};
	const char *params[1] = {t->db};
	char err[IT_ERRLEN], written[32], before[32];
	long max_retained = 0, final;
	PGconn *other = it_connect("postgres", err, sizeof err);
	const char *ddl = "DROP TABLE IF EXISTS unrelated; CREATE TABLE unrelated (id int, pad text)";

	if (other == NULL)
		return fail_err(t, "connecting to another database", err);
	bool ok = configure(t, &o) && start_streaming(t) && it_exec(t->conn, ddl, 0, NULL, err, sizeof err) &&
		  it_exec(other, ddl, 0, NULL, err, sizeof err) &&
		  it_value(t->conn, "SELECT pg_current_wal_lsn()", 0, NULL, before, sizeof before, err, sizeof err);
	ok = ok && unrelated_writes(t, other, &max_retained);
	ok = ok && it_exec(other, "DROP TABLE unrelated", 0, NULL, err, sizeof err);
	PQfinish(other);
	if (!ok)
		return t->reason[0] ? false : fail_err(t, "setting up", err);
	const char *wparams[1] = {before};
	if (!it_value(t->conn, "SELECT pg_current_wal_lsn() - $1::pg_lsn", 1, wparams, written, sizeof written, err, sizeof err))
		return fail_err(t, "measuring WAL written", err);
	/* restart_lsn moves at the server's next running-xacts record (every
	 * 15 s with activity), so allow a few of them. */
	int rc = it_poll(
		t->conn,
		"SELECT pg_current_wal_lsn() - restart_lsn < 16 * 1024 * 1024 FROM pg_replication_slots WHERE slot_name = $1", 1,
		params, 60, &t->wc, err, sizeof err);
	if (rc < 0 || !retained_bytes(t, &final))
		return rc < 0 ? fail_err(t, "polling retained WAL", err) : false;
	if (rc == 0)
		return fail(t, "retained WAL still %ld bytes 60 s after %s bytes of unrelated writes", final, written);
	snprintf(t->details, sizeof t->details,
		 "%s bytes of unrelated WAL (two databases): retained at most %ld bytes while writing, %ld after", written,
		 max_retained, final);
	return true;
}

/* A consumer that hangs (SIGSTOP) still holds the slot: a second one
 * stands by, naming the holder's PID, and takes over exactly once the hung
 * one is gone. */
bool test_takeover(struct ctx *t)
{
	struct wc_opts o = {0};
	char err[IT_ERRLEN], want[160];
	const char *params[1] = {t->db};
	char pid[16];

	if (!configure(t, &o) || !start_streaming(t) || !run_changes(t, 2000, false) || !caught_up(t, CAUGHT_UP_TIMEOUT))
		return false;
	if (!it_value(t->conn, "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1", 1, params, pid, sizeof pid,
		      err, sizeof err))
		return fail_err(t, "reading the slot's holder", err);
	pid_t stale = t->wc.pid;
	kill(stale, SIGSTOP);
	t->wc.pid = 0;
	snprintf(want, sizeof want, "standby: slot %s is in use by PID %s; standing by", t->db, pid);
	bool ok = start(t);
	for (double end = it_now() + 30; ok && count_in_file(t->wc.log, want) == 0; it_sleep_ms(20))
		ok = it_now() < end || fail(t, "the second consumer did not say \"%s\"", want);
	kill(stale, SIGKILL);
	kill(stale, SIGCONT);
	int status;
	it_reap(stale, 10, &status, NULL);
	if (!ok || !wait_slot(t, true, 60) || !run_changes(t, 2000, false) || !caught_up(t, CAUGHT_UP_TIMEOUT) || !drift_zero(t))
		return false;
	snprintf(t->details, sizeof t->details, "held slot: the second consumer stood by naming the PID, took over; drift 0");
	return true;
}

/* Starts walcount with --takeover while the slot is still held. */
static bool start_takeover(struct ctx *t)
{
	char err[IT_ERRLEN];

	return wc_start_args(&t->wc, "--takeover", err, sizeof err) || fail_err(t, "starting walcount --takeover", err);
}

bool test_takeover_flag(struct ctx *t)
{
	struct wc_opts o = {0};

	if (!configure(t, &o) || !start_streaming(t) || !run_changes(t, 1000, false))
		return false;
	pid_t stale = t->wc.pid;
	kill(stale, SIGSTOP);
	t->wc.pid = 0;
	bool ok = start_takeover(t) && wait_slot(t, true, 60);
	kill(stale, SIGKILL);
	kill(stale, SIGCONT);
	int status;
	it_reap(stale, 10, &status, NULL);
	if (!ok || !run_changes(t, 2000, false) || !caught_up(t, CAUGHT_UP_TIMEOUT) || !drift_zero(t))
		return false;
	snprintf(t->details, sizeof t->details, "--takeover ended the stale walsender and streamed on; drift 0");
	return true;
}

/* Stops walcount, changes the world behind its back with sql, writes more,
 * restarts it and wants one more rebuild in the log and zero drift. */
static bool rebuild_case(struct ctx *t, const char *sql, int *rebuilds)
{
	const char *params[1] = {t->db};
	char err[IT_ERRLEN];

	if (!stop_clean(t) || !run_changes(t, 1500, false))
		return false;
	if (!it_exec(t->conn, sql, 1, params, err, sizeof err))
		return fail_err(t, "changing the slot", err);
	if (!run_changes(t, 500, false) || !start_streaming(t) || !caught_up(t, CAUGHT_UP_TIMEOUT) || !drift_zero(t))
		return false;
	int n = count_in_file(t->wc.log, "rebuild:");
	if (n != *rebuilds + 1)
		return fail(t, "want %d rebuild log lines after \"%s\", found %d", *rebuilds + 1, sql, n);
	*rebuilds = n;
	return true;
}

bool test_rebuild(struct ctx *t)
{
	struct wc_opts o = {0};
	int rebuilds = 0;

	if (!configure(t, &o) || !start_streaming(t) || !run_changes(t, 2000, false) || !caught_up(t, CAUGHT_UP_TIMEOUT))
		return false;
	if (!rebuild_case(t, "SELECT pg_replication_slot_advance($1, pg_current_wal_lsn())", &rebuilds) ||
	    !rebuild_case(t, "SELECT pg_drop_replication_slot($1), pg_create_logical_replication_slot($1, 'wal2json')", &rebuilds))
		return false;
	snprintf(t->details, sizeof t->details, "advanced slot and replaced slot each rebuilt exactly; drift 0");
	return true;
}

bool test_drop(struct ctx *t)
{
	struct wc_opts o = {0};
	const char *drop[] = {"drop", "--config", t->wc.config, NULL};
	const char *drop_yes[] = {"drop", "--yes", "--config", t->wc.config, NULL};
	const char *params[1] = {t->db};
	char *errtext = NULL, err[IT_ERRLEN], v[8];

	if (!configure(t, &o) || !start_streaming(t) || !command(t, "drop-unconfirmed", drop, 2, &errtext))
		return false;
	free(errtext);
	bool refused = command(t, "drop-active", drop_yes, 1, &errtext) &&
		       (strstr(errtext, "in use") != NULL || fail(t, "drop while active: %s", errtext));
	free(errtext);
	if (!refused || !stop_clean(t) || !command(t, "drop", drop_yes, 0, &errtext))
		return false;
	free(errtext);
	if (!it_value(t->conn,
		      "SELECT NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1) "
		      "AND to_regnamespace('walcount') IS NULL",
		      1, params, v, sizeof v, err, sizeof err))
		return fail_err(t, "checking what drop left", err);
	if (strcmp(v, "t") != 0)
		return fail(t, "after drop the slot or the walcount schema is still there");
	snprintf(t->details, sizeof t->details, "refused without --yes and while active; then slot and schema gone");
	return true;
}
