/* badinput_value: design.md §9 rows 7-9, values walcount cannot count (an
 * enum value it does not know, a NULL is_delete, a count overflowing its
 * column). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "badinput.h"

/* Row 7: a repost_type value added to the enum. */

/* 'remix' is no type walcount knows: the change is skipped, logged with
 * its LSN and counted in walcount_skipped_changes_total{reason=
 * "unknown_type"}, and every other change is counted. The skip includes
 * the user's repost_count (which counts reposts of every type): that one
 * cell is the only difference, and it disappears when the remix repost is
 * deleted again (also skipped). */
bool test_bi_enum_value(struct ctx *t)
{
	char listen[32], examples[1024];
	int port = free_port(t);
	lsn_t l0, l1;

	snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
	if (port == 0 || !configure(t, &(struct wc_opts){.metrics_listen = listen}) || !start_streaming(t) ||
	    !run_changes(t, 1000, false) || !caught_up(t, CAUGHT_UP_TIMEOUT) ||
	    !bi_sql(t, "ALTER TYPE reposttype ADD VALUE 'remix'") || !current_lsn(t, &l0) ||
	    !bi_sql(t, "INSERT INTO reposts (user_id, repost_item_id, repost_type, is_current, is_delete, txhash) "
		       "VALUES (4401, 4401, 'remix', true, false, 'remix')") ||
	    !current_lsn(t, &l1) || !run_changes(t, 1000, false) || !caught_up(t, CAUGHT_UP_TIMEOUT))
		return false;
	if (!logged_at(t, "warn", "skipped insert change of reposts at ",
		       ": unknown_type (counted in walcount_skipped_changes_total)", l0, l1))
		return false;
	if (!metric_is(t, port, "walcount_skipped_changes_total{reason=\"unknown_type\"}", 1))
		return false;
	long n = drift_cells(t, examples, sizeof examples);
	if (n < 0)
		return false;
	if (n != 1 || strcmp(examples, "aggregate_user[4401].repost_count expected 1 actual 0") != 0)
		return fail(t, "want exactly the remix user's repost_count uncounted, drift is %ld cells: %s", n, examples);
	if (!bi_sql(t, "DELETE FROM reposts WHERE txhash = 'remix'") || !run_changes(t, 500, false) ||
	    !caught_up(t, CAUGHT_UP_TIMEOUT) ||
	    !metric_is(t, port, "walcount_skipped_changes_total{reason=\"unknown_type\"}", 2) || !drift_zero(t))
		return false;
	if (!wc_alive(&t->wc))
		return fail(t, "walcount exited after the unknown type");
	snprintf(t->details, sizeof t->details,
		 "skip line with the remix insert's LSN, unknown_type counter 1 then 2 after its delete; all other counts "
		 "exact; the remix user's repost_count alone stayed uncounted until the delete");
	return true;
}

/* Row 8: NULL is_delete. */

/* A change with a NULL is_delete is logged with its LSN and counted
 * (null_flag); that image counts as not active, as in the recount, so an
 * UPDATE from NULL to false adds its +1 and one from false to NULL takes
 * its -1. */
bool test_bi_null_is_delete(struct ctx *t)
{
	char listen[32];
	int port = free_port(t);
	lsn_t l0, l1;

	snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
	if (port == 0 || !configure(t, &(struct wc_opts){.metrics_listen = listen}) ||
	    !bi_sql(t, "ALTER TABLE reposts ALTER COLUMN is_delete DROP NOT NULL") || !start_streaming(t) ||
	    !run_changes(t, 1000, false) || !current_lsn(t, &l0) ||
	    !bi_sql(t, "INSERT INTO reposts (user_id, repost_item_id, repost_type, is_current, is_delete, txhash) "
		       "VALUES (4501, 4501, 'track', true, NULL, 'null')") ||
	    !current_lsn(t, &l1) || !run_changes(t, 500, false) || !caught_up(t, CAUGHT_UP_TIMEOUT))
		return false;
	if (!logged_at(t, "warn", "insert change of reposts at ",
		       " has a NULL is_current or is_delete: counted as not active (null_flag in "
		       "walcount_skipped_changes_total)",
		       l0, l1))
		return false;
	if (!metric_is(t, port, "walcount_skipped_changes_total{reason=\"null_flag\"}", 1) || !drift_zero(t))
		return false;
	/* NULL -> false: the repost becomes active. */
	if (!bi_sql(t, "UPDATE reposts SET is_delete = false WHERE txhash = 'null'") || !run_changes(t, 500, false) ||
	    !caught_up(t, CAUGHT_UP_TIMEOUT) || !metric_is(t, port, "walcount_skipped_changes_total{reason=\"null_flag\"}", 2))
		return false;
	if (!no_drift_cells(t, "UPDATE is_delete NULL -> false (the repost became active): its +1 lost"))
		return false;
	/* false -> NULL: no longer active. */
	if (!bi_sql(t, "UPDATE reposts SET is_delete = NULL WHERE txhash = 'null'") || !run_changes(t, 500, false) ||
	    !caught_up(t, CAUGHT_UP_TIMEOUT))
		return false;
	if (!no_drift_cells(t, "UPDATE is_delete false -> NULL (no longer active): its -1 lost"))
		return false;
	snprintf(t->details, sizeof t->details,
		 "warning with the NULL insert's LSN, null_flag counter; NULL <-> false transitions counted; drift 0");
	return true;
}

/* Row 9: integer overflow of a count. */

/* aggregate_track.repost_count is int. At 2147483647 one more repost makes
 * the batch fail with "integer out of range" (the exact message below).
 * Found: walcount retries the whole batch for ever, about every
 * reconnect_min, and applies nothing else meanwhile (the stream stalls);
 * it loses nothing: once an operator corrects the cell, the retry applies
 * the held changes and every count is exact. */
bool test_bi_count_overflow(struct ctx *t)
{
	char err[IT_ERRLEN], v[32], line[512];
	const char *msg = "apply: applying batch: ERROR:  integer out of range; discarding the unapplied batch, it will be "
			  "received again";
	lsn_t before, applied;

	if (!configure(t, &(struct wc_opts){0}) || !start_streaming(t) || !run_changes(t, 1000, false) ||
	    !bi_sql(t, "INSERT INTO reposts (user_id, repost_item_id, repost_type, is_current, is_delete, txhash) "
		       "VALUES (4601, 4601, 'track', true, false, 'ovf-1')") ||
	    !caught_up(t, CAUGHT_UP_TIMEOUT) || !drift_zero(t))
		return false;
	if (!bi_sql(t, "UPDATE aggregate_track SET repost_count = 2147483647 WHERE track_id = 4601") ||
	    !current_lsn(t, &before) ||
	    !bi_sql(t, "INSERT INTO reposts (user_id, repost_item_id, repost_type, is_current, is_delete, txhash) "
		       "VALUES (4602, 4601, 'track', true, false, 'ovf-2')") ||
	    !bi_sql(t, "INSERT INTO follows (follower_user_id, followee_user_id, is_current, is_delete, txhash) "
		       "VALUES (4603, 4604, true, false, 'after-ovf')"))
		return false;
	double t0 = it_now();
	/* Retried, not given up on: the third failure of the same batch. */
	if (!bi_wait_log(t, log_line(line, sizeof line, "warn", msg), 3, 30))
		return false;
	double window = it_now() - t0;
	int retries = count_in_log(t, msg);
	if (!wc_alive(&t->wc))
		return fail(t, "walcount exited on the overflow");
	if (!progress_lsn(t, &applied))
		return false;
	if (applied > before)
		return fail(t, "walcount.progress moved past the transaction it could not apply");
	if (!it_value(t->conn, "SELECT coalesce((SELECT follower_count FROM aggregate_user WHERE user_id = 4604), 0)", 0, NULL, v,
		      sizeof v, err, sizeof err))
		return fail_err(t, "reading aggregate_user", err);
	bool stalled = strcmp(v, "0") == 0;
	/* The operator's fix: the cell back to its true count. */
	if (!bi_sql(t, "UPDATE aggregate_track SET repost_count = 1 WHERE track_id = 4601") || !run_changes(t, 1000, false) ||
	    !caught_up(t, CAUGHT_UP_TIMEOUT) || !drift_zero(t))
		return false;
	snprintf(t->details, sizeof t->details,
		 "\"%s\" %d times in %.1f s (retried with backoff); %s; nothing lost: after the cell was "
		 "corrected drift 0",
		 msg, retries, window,
		 stalled ? "the whole stream stalled meanwhile (a later follows change waited)" : "other changes went on");
	return true;
}

/* A message walcount did not write but with its prefix, emitted outside a
 * transaction (pg_logical_emit_message(false, ...)): wal2json gives it
 * "xid": null. It moves no count and must not stop the stream. */
bool test_bi_foreign_message(struct ctx *t)
{
	pid_t pid;

	if (!configure(t, &(struct wc_opts){0}) || !start_streaming(t) || !run_changes(t, 500, false))
		return false;
	pid = t->wc.pid;
	if (!bi_sql(t, "SELECT pg_logical_emit_message(false, 'walcount', 'not a heartbeat')") ||
	    !bi_sql(t, "SELECT pg_logical_emit_message(true, 'walcount', 'not a heartbeat either')") ||
	    !run_changes(t, 500, false) || !caught_up(t, CAUGHT_UP_TIMEOUT) || !drift_zero(t))
		return false;
	if (!wc_alive(&t->wc) || t->wc.pid != pid)
		return fail(t, "walcount did not stream on past a non-transactional message with its prefix");
	snprintf(t->details, sizeof t->details,
		 "a transactional and a non-transactional message with prefix walcount passed; same pid; drift 0");
	return true;
}
