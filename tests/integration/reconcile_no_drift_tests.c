/* reconcile_no_drift: sweeps without drift, under writers, correct
 * nothing. */
#include <stdlib.h>

#include "reconcile.h"

#define NO_DRIFT_SWEEPS 20 /* IT_QUICK: 5 */

/* Waits until `want` sweeps have finished. */
static bool wait_sweeps(struct ctx *t, long want)
{
	char sw[24], err[IT_ERRLEN];
	const char *params[1] = {sw};

	snprintf(sw, sizeof sw, "%ld", want);
	int rc = it_poll(t->conn, "SELECT count(*) >= $1 FROM walcount.checkpoints WHERE reconcile_checked IS NOT NULL", 1,
			 params, 300, &t->wc, err, sizeof err);
	if (rc < 0)
		return fail_err(t, "waiting for sweeps", err);
	return rc == 1 || fail(t, "fewer than %ld sweeps finished within 300 s", want);
}

struct sweep_stats {
	long first; /* checkpoint id of the baseline sweep */
	long sweeps, dirty, unfinished, min_ms, max_ms, avg_ms;
	char dirty_ids[256];
};

/* Every sweep after the baseline: how many, how many corrected anything. */
static bool sweep_stats(struct ctx *t, struct sweep_stats *s)
{
	char err[IT_ERRLEN];
	PGresult *res = it_query(
		t->conn,
		"WITH s AS (SELECT id, reconcile_checked IS NOT NULL AS done, reconcile_duration_ms AS ms, "
		"  (SELECT coalesce(sum(value::bigint), 0) FROM jsonb_each_text(reconcile_corrected)) AS cells "
		"  FROM walcount.checkpoints), b AS (SELECT min(id) AS first FROM s WHERE done) "
		"SELECT b.first, count(*) FILTER (WHERE done), count(*) FILTER (WHERE cells <> 0), "
		"  count(*) FILTER (WHERE NOT done), coalesce(min(ms), 0), coalesce(max(ms), 0), coalesce(avg(ms)::bigint, 0), "
		"  coalesce(string_agg(id || ':' || cells, ',') FILTER (WHERE cells <> 0), '') "
		"FROM s, b WHERE s.id > b.first GROUP BY b.first",
		0, NULL, err, sizeof err);

	if (res == NULL)
		return fail_err(t, "summing up the sweeps", err);
	bool ok = PQntuples(res) == 1;
	if (ok) {
		s->first = atol(PQgetvalue(res, 0, 0));
		s->sweeps = atol(PQgetvalue(res, 0, 1));
		s->dirty = atol(PQgetvalue(res, 0, 2));
		s->unfinished = atol(PQgetvalue(res, 0, 3));
		s->min_ms = atol(PQgetvalue(res, 0, 4));
		s->max_ms = atol(PQgetvalue(res, 0, 5));
		s->avg_ms = atol(PQgetvalue(res, 0, 6));
		snprintf(s->dirty_ids, sizeof s->dirty_ids, "%s", PQgetvalue(res, 0, 7));
	}
	PQclear(res);
	return ok || fail(t, "no sweep after the baseline");
}

/* The sweeps after the baseline corrected nothing, and the log says so: one
 * "corrected" line, the baseline's, and no failed sweep. */
static bool no_corrections(struct ctx *t, const struct sweep_stats *s)
{
	struct sweep_row base;

	if (!check_sweep(t, s->first, "baseline", &base))
		return false;
	if (s->dirty > 0)
		return fail(t, "%ld of %ld sweeps without drift corrected cells (checkpoint:cells %s)", s->dirty, s->sweeps,
			    s->dirty_ids);
	int logged = log_lines(t, "reconcile: corrected");
	int failed = log_lines(t, "the sweep is skipped") + log_lines(t, "sweep abandoned");
	if (logged != (base.corrected > 0) || failed > 0)
		return fail(t, "log: %d \"reconcile: corrected\" lines (want %d, the baseline's), %d failed sweeps", logged,
			    base.corrected > 0, failed);
	return true;
}

bool test_reconcile_no_drift(struct ctx *t)
{
	/* Batches of up to a second: the recount then regularly finishes before
	 * the stream has applied everything its snapshot saw, so a sweep must
	 * wait for the stream before it may compare (design.md §8). */
	struct wc_opts o = {.checkpoint_interval = "300ms", .reconcile = true, .max_delay = "1s", .max_changes = 100000};
	struct sweep_stats s = {0};
	struct writers w = {0};
	char err[IT_ERRLEN];

	if (!it_exec(t->conn, WORLD_SQL, 0, NULL, err, sizeof err))
		return fail_err(t, "creating the world", err);
	if (!expect_baseline(t) || !configure(t, &o) || !start_streaming(t) || !start_writers(t, &w, true)) {
		stop_writers(t, &w); /* those that did start */
		return false;
	}
	/* The baseline, then NO_DRIFT_SWEEPS more while the writers run. The
	 * sweeps are judged first: a wrong correction is the finding, the drift
	 * it leaves behind only its consequence. */
	bool ok = wait_sweeps(t, 1 + rounds(NO_DRIFT_SWEEPS, 5));
	ok = stop_writers(t, &w) && ok;
	if (!ok || !sweep_stats(t, &s) || !no_corrections(t, &s) || !caught_up(t, CAUGHT_UP_TIMEOUT) || !recount_zero(t) ||
	    !drift_zero(t))
		return false;
	snprintf(t->details, sizeof t->details,
		 "%ld sweeps after the baseline with %d writers on hot keys (%ld changes and %ld in %d-row transactions "
		 "in %.1f s, %ld conflicts): 0 corrections; "
		 "%ld sweep rows retried or unfinished; duration min/avg/max %ld/%ld/%ld ms; full recount and drift 0",
		 s.sweeps, WRITERS, w.committed, w.bulk, BULK_ROWS, w.secs, w.conflicts, s.unfinished, s.min_ms, s.avg_ms,
		 s.max_ms);
	return true;
}
