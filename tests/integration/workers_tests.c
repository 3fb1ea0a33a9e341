/* workers_change: apply.workers changed between runs. A stop brings every
 * partition's progress row to one position, so the next start splits the
 * keys anew (1 -> 4 -> 2) and stays exact; rows at different positions
 * (a crash) are refused with the procedure, and nothing is written. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"
#include "expect.h"
#include "harness.h"

/* Runs with `workers`, applies changes exactly, stops. */
static bool run_with(struct ctx *t, long workers, const char *repartitioned)
{
	int before = count_in_file(t->wc.log, repartitioned);

	if (!configure(t, &(struct wc_opts){.workers = workers}) || !start_streaming(t) || !run_changes(t, 3000, false) ||
	    !caught_up(t, CAUGHT_UP_TIMEOUT) || !drift_zero(t) || !stop_clean(t) || !progress_rows(t, workers))
		return false;
	if (*repartitioned != '\0' && count_in_file(t->wc.log, repartitioned) <= before)
		return fail(t, "no \"%s\" line in %s", repartitioned, t->wc.log);
	return true;
}

static bool refused_while_apart(struct ctx *t)
{
	const char *run[] = {"run", "--config", t->wc.config, NULL};
	const char *params[1] = {t->db};
	char err[IT_ERRLEN], saved[32], label[96], *out = NULL, *errtext = NULL;
	int status;

	/* One row ahead of the others, as a SIGKILL between shares leaves them
	 * (one behind would be a slot confirmed past its progress: rebuilt). */
	if (!it_value(t->conn, "SELECT lsn::text FROM walcount.progress WHERE slot_name = $1 AND part = 3", 1, params, saved,
		      sizeof saved, err, sizeof err) ||
	    !it_exec(t->conn, "UPDATE walcount.progress SET lsn = lsn + 1 WHERE slot_name = $1 AND part = 3", 1, params, err,
		     sizeof err))
		return fail_err(t, "moving a progress row", err);
	snprintf(label, sizeof label, "%s-refused", t->db);
	bool ok = configure(t, &(struct wc_opts){.workers = 2}) && run_walcount(t, label, run, &status, &out, &errtext) &&
		  expect_exit_code(t, label, 1, status, errtext) &&
		  expect_str_contains(t, "refusal", errtext, "has 4 partitions at different positions") &&
		  expect_str_contains(t, "procedure", errtext, "start once with apply.workers: 4") && progress_rows(t, 4);
	const char *restore[2] = {t->db, saved};
	if (!it_exec(t->conn, "UPDATE walcount.progress SET lsn = $2::pg_lsn WHERE slot_name = $1 AND part = 3", 2, restore, err,
		     sizeof err))
		ok = fail_err(t, "restoring the progress row", err);
	free(out);
	free(errtext);
	return ok;
}

bool test_workers_change(struct ctx *t)
{
	if (!run_with(t, 1, "") || !run_with(t, 4, "re-partitioned from 1 to 4 partitions") || !refused_while_apart(t) ||
	    !run_with(t, 2, "re-partitioned from 4 to 2 partitions"))
		return false;
	snprintf(t->details, sizeof t->details,
		 "apply.workers 1 -> 4 -> 2: re-partitioned at each start, drift 0 each time; rows apart refused with the "
		 "procedure, nothing written");
	return true;
}
