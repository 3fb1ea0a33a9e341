/* reconcile_row_lock: a correcting step never holds the stream longer than
 * its bound, twice reconcile.chunk_time, even when another session holds
 * row locks on the rows it must correct: the server cancels it, it is
 * retried smaller and later, and a lock held for good fails the sweep, not
 * the stream. */
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "reconcile.h"

/* Bound 10 ms: the baseline's corrections take several steps. */
#define CHUNK_TIME "5ms"
/* A user outside the workload's (1..2000), the world's and the harness's
 * markers' (900000 + k) keys: its row is locked for good while the stream
 * keeps applying the workload. */
#define LONE_USER "600001"
#define RETRIED "retried with"
#define GAVE_UP "in a row were cancelled at 10 ms"

/* Every wait of the stream for a sweep was within bound_s. */
static bool pauses_within(struct ctx *t, int port, double bound_s)
{
	char series[96];
	double n = metric(port, "walcount_reconcile_pause_seconds_count");

	snprintf(series, sizeof series, "walcount_reconcile_pause_seconds_bucket{le=\"%g\"}", bound_s);
	double within = metric(port, series);
	if (n <= 0)
		return fail(t, "walcount_reconcile_pause_seconds_count is %g: no sweep pause was observed", n);
	return within == n || fail(t, "%g of %g stream pauses for sweeps took longer than %g s", n - within, n, bound_s);
}

/* Waits until walcount's log has a line with needle. */
static bool await_log(struct ctx *t, const char *needle, double timeout_s)
{
	for (double waited = 0; waited < timeout_s; waited += 0.02) {
		if (log_lines(t, needle) > 0)
			return true;
		usleep(20000);
	}
	return fail(t, "no \"%s\" line in walcount's log within %.0f s", needle, timeout_s);
}

/* The baseline sweep's aggregate_user rows are locked by another session
 * until its steps have been cancelled and retried: the sweep then ends,
 * exact. */
static bool locked_then_released(struct ctx *t, PGconn *locker, struct sweep_row *r)
{
	char err[IT_ERRLEN];
	long after, id;

	if (!last_checkpoint(t, &after))
		return false;
	if (!it_exec(locker, "BEGIN", 0, NULL, err, sizeof err) ||
	    !it_exec(locker, "SELECT 1 FROM aggregate_user WHERE user_id <= 2000 FOR UPDATE", 0, NULL, err, sizeof err))
		return fail_err(t, "locking aggregate_user", err);
	if (kill(t->wc.pid, SIGUSR1) != 0)
		return fail(t, "cannot signal walcount");
	bool ok = await_log(t, RETRIED, SWEEP_TIMEOUT);
	usleep(200000);
	if (!it_exec(locker, "COMMIT", 0, NULL, err, sizeof err))
		return fail_err(t, "releasing the locks", err);
	return ok && wait_sweep(t, after, &id) && check_sweep(t, id, "baseline", r);
}

/* A drifted row locked for good: the sweep fails after its retries while
 * the stream applies the workload; released, the next sweep corrects it. */
static bool locked_for_good(struct ctx *t, PGconn *locker, int port, struct sweep_row *r)
{
	char err[IT_ERRLEN];
	long id;

	if (!it_exec(t->conn,
		     "INSERT INTO aggregate_user (user_id, track_count, dominant_genre_count) VALUES (" LONE_USER ", 5, NULL)", 0,
		     NULL, err, sizeof err) ||
	    !it_exec(locker, "BEGIN", 0, NULL, err, sizeof err) ||
	    !it_exec(locker, "SELECT 1 FROM aggregate_user WHERE user_id = " LONE_USER " FOR UPDATE", 0, NULL, err, sizeof err))
		return fail_err(t, "drifting and locking user " LONE_USER, err);
	if (kill(t->wc.pid, SIGUSR1) != 0)
		return fail(t, "cannot signal walcount");
	bool ok = run_changes(t, 2000, false) && caught_up(t, CAUGHT_UP_TIMEOUT) && await_log(t, GAVE_UP, SWEEP_TIMEOUT);
	ok = ok &&
	     (metric(port, "walcount_reconcile_failures_total") == 1 ||
	      fail(t, "walcount_reconcile_failures_total is %g, want 1", metric(port, "walcount_reconcile_failures_total")));
	ok = ok && (log_lines(t, "keys of aggregate_user (keys ") == 1 ||
		    fail(t, "the failed sweep's warning does not name the locked table and keys"));
	if (!it_exec(locker, "COMMIT", 0, NULL, err, sizeof err))
		return fail_err(t, "releasing the lock", err);
	return ok && expect_cells(t, "SELECT 'aggregate_user.track_count' AS cell, 1 AS n") && sweep_now(t, &id) &&
	       check_sweep(t, id, "released", r);
}

bool test_reconcile_row_lock(struct ctx *t)
{
	char listen[32], err[IT_ERRLEN];
	int port = free_port(t);
	struct wc_opts o = {.checkpoint_interval = "1h",
			    .reconcile = true,
			    .chunk_time = CHUNK_TIME,
			    .log_level = "debug",
			    .metrics_listen = listen};
	struct sweep_row base, fixed;
	int retried = 0;

	snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
	if (port == 0 || !it_exec(t->conn, WORLD_SQL, 0, NULL, err, sizeof err))
		return port != 0 && fail_err(t, "creating the world", err);
	PGconn *locker = it_connect(t->db, err, sizeof err);
	if (locker == NULL)
		return fail_err(t, "connecting the locking session", err);
	bool ok = expect_baseline(t) && configure(t, &o) && start_streaming(t) && wait_stream_started(t) &&
		  locked_then_released(t, locker, &base) && pauses_within(t, port, 0.25);
	retried = log_lines(t, RETRIED);
	ok = ok && locked_for_good(t, locker, port, &fixed) && pauses_within(t, port, 0.25) && recount_zero(t) && drift_zero(t);
	PQfinish(locker);
	if (ok)
		snprintf(t->details, sizeof t->details,
			 "chunk_time %s: baseline sweep behind locked rows retried %d times, then corrected %ld cells of %ld "
			 "rows in %ld ms; a row locked for good failed its sweep after %d cancellations while the stream "
			 "applied 2000 changes, released it was corrected (%ld cell); every stream pause <= 0.25 s; "
			 "full recount and drift 0",
			 CHUNK_TIME, retried, base.corrected, base.checked, base.ms, 6, fixed.corrected);
	return ok;
}
