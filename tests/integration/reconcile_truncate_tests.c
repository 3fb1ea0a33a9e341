/* reconcile_truncate: the immediate sweep after a TRUNCATE. */

#include "reconcile.h"

/* expected_cells := the follower and following cells that are not 0 now:
 * after TRUNCATE follows each is wrong, and nothing else is. */
static bool expect_truncate(struct ctx *t)
{
	return expect_cells(t, "SELECT 'aggregate_user.follower_count' AS cell, count(*) AS n FROM aggregate_user "
			       "WHERE follower_count IS DISTINCT FROM 0 "
			       "UNION ALL SELECT 'aggregate_user.following_count', count(*) FROM aggregate_user "
			       "WHERE following_count IS DISTINCT FROM 0");
}

bool test_truncate_follows(struct ctx *t)
{
	struct wc_opts o = {.checkpoint_interval = "1h", .reconcile = true};
	struct sweep_row r;
	char err[IT_ERRLEN];
	long before, id, written;

	if (!configure(t, &o) || !start_streaming(t) || !run_changes(t, 5000, false) || !caught_up(t, CAUGHT_UP_TIMEOUT) ||
	    !drift_zero(t) || !recount_zero(t) || !last_checkpoint(t, &before) || !expect_truncate(t))
		return false;
	/* The interval is an hour: any sweep from here on is the TRUNCATE's. */
	if (!expect_eq_long(t, "checkpoint rows before the TRUNCATE", 0, before))
		return false;
	written = t->wl.committed;
	if (!it_exec(t->conn, "TRUNCATE follows", 0, NULL, err, sizeof err))
		return fail_err(t, "TRUNCATE follows", err);
	if (!wait_sweep(t, before, &id) || !check_sweep(t, id, "TRUNCATE", &r))
		return false;
	if (log_lines(t, "TRUNCATE of public.follows") == 0)
		return fail(t, "no \"TRUNCATE of public.follows\" line in %s", t->wc.log);
	if (!recount_zero(t) || !run_changes(t, 3000, false) || !caught_up(t, CAUGHT_UP_TIMEOUT) || !drift_zero(t) ||
	    !recount_zero(t))
		return false;
	snprintf(t->details, sizeof t->details,
		 "TRUNCATE follows after %ld changes: the immediate sweep corrected %ld follower/following cells of %ld rows "
		 "in %ld ms; 3000 more changes; full recount and drift 0",
		 written, r.corrected, r.checked, r.ms);
	return true;
}
