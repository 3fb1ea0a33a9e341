/* The replica identity of a source table changed while streaming (issue 12,
 * item 4): walcount notices it, says so in one line with the fix, marks
 * the counts stale (/metrics), keeps running, skips the records it cannot
 * count (naming their LSN) and, once the identity is FULL again, sweeps:
 * drift 0. Reconcile is on with an hour's interval, so every sweep is the
 * identity change's. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"

#define STALE "walcount_counts_stale"
#define VIOLATIONS "walcount_prerequisite_violations_total{check=\"replica_identity\"}"
#define SKIPPED "walcount_skipped_changes_total{reason=\"identity\"}"

static bool id_sql(struct ctx *t, const char *text)
{
	char err[IT_ERRLEN];

	return it_exec(t->conn, text, 0, NULL, err, sizeof err) || fail_err(t, "SQL", err);
}

static bool id_wait_log(struct ctx *t, const char *needle, int n, double timeout_s)
{
	for (double end = it_now() + timeout_s;; it_sleep_ms(50)) {
		if (count_in_file(t->wc.log, needle) >= n)
			return true;
		if (it_now() >= end)
			return fail(t, "walcount's log did not show \"%s\" %d time(s) within %.0f s (%d seen)", needle, n,
				    timeout_s, count_in_file(t->wc.log, needle));
	}
}

/* Waits until the metric satisfies lo <= value <= hi. */
static bool id_metric(struct ctx *t, int port, const char *series, double lo, double hi, double timeout_s)
{
	double v = -1;

	for (double end = it_now() + timeout_s; it_now() < end; it_sleep_ms(100))
		if ((v = metric(port, series)) >= lo && v <= hi)
			return true;
	return fail(t, "%s is %g, want %g..%g", series, v, lo, hi);
}

static bool alive(struct ctx *t, const char *when)
{
	return wc_alive(&t->wc) || fail(t, "walcount exited %s; its log: %s", when, t->wc.log);
}

/* Drift cells now (-1 on error). */
static long id_drift(struct ctx *t)
{
	char err[IT_ERRLEN], examples[1024];
	long n = it_drift(t->conn, examples, sizeof examples, err, sizeof err);

	if (n < 0)
		fail_err(t, "drift check", err);
	return n;
}

/* How many checkpoint rows carry a sweep result. */
static bool swept(struct ctx *t, long *n)
{
	const char *params[1] = {t->db};
	char err[IT_ERRLEN], v[32];

	if (!it_value(t->conn, "SELECT count(*) FROM walcount.checkpoints WHERE slot_name = $1 AND reconcile_checked IS NOT NULL",
		      1, params, v, sizeof v, err, sizeof err))
		return fail_err(t, "reading walcount.checkpoints", err);
	*n = strtol(v, NULL, 10);
	return true;
}

static bool wait_swept(struct ctx *t, long more_than, double timeout_s)
{
	long n = 0;

	for (double end = it_now() + timeout_s;; it_sleep_ms(200)) {
		if (!swept(t, &n))
			return false;
		if (n > more_than)
			return true;
		if (it_now() >= end)
			return fail(t, "no reconcile sweep finished within %.0f s after the identity was FULL again", timeout_s);
	}
}

/* Follows made inactive, so their counts surely move. */
#define DEMOTE_FOLLOWS                                                                                          \
	"UPDATE follows SET is_delete = true WHERE ctid IN (SELECT ctid FROM follows WHERE is_current AND NOT " \
	"is_delete LIMIT 20)"
#define DELETE_FOLLOWS "DELETE FROM follows WHERE ctid IN (SELECT ctid FROM follows WHERE is_current AND NOT is_delete LIMIT 20)"

static bool start_identity_test(struct ctx *t, int port)
{
	char listen[32];

	snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
	return configure(t,
			 &(struct wc_opts){
				 .metrics_listen = listen, .checkpoint_interval = "1h", .reconcile = true, .refresh = "500ms"}) &&
	       start_streaming(t) && run_changes(t, 2000, false) && caught_up(t, CAUGHT_UP_TIMEOUT) && drift_zero(t);
}

/* REPLICA IDENTITY NOTHING: wal2json drops follows' UPDATEs and DELETEs
 * with only a server WARNING. walcount's periodic check must say so within
 * 10 s, count it, mark the counts stale and keep running; after FULL, a
 * sweep restores what was dropped. */
bool test_identity_nothing(struct ctx *t)
{
	const char *noticed = " error replica identity of public.follows is NOTHING: the old row images of its UPDATEs and "
			      "DELETEs lack is_current and is_delete, so those changes are not counted and the counts are "
			      "stale until a reconcile sweep after the fix; fix: ALTER TABLE public.follows REPLICA "
			      "IDENTITY FULL;\n";
	const char *back = " info  replica identity of the source tables covers is_current and is_delete again; "
			   "reconcile sweep requested\n";
	int port = free_port(t);
	long sweeps;

	if (port == 0 || !start_identity_test(t, port) || !swept(t, &sweeps))
		return false;
	double at = it_now();
	if (!id_sql(t, "ALTER TABLE follows REPLICA IDENTITY NOTHING") || !id_sql(t, DEMOTE_FOLLOWS) ||
	    !id_sql(t, DELETE_FOLLOWS) || !run_changes(t, 1500, false) || !id_wait_log(t, noticed, 1, 10 - (it_now() - at)))
		return false;
	double seen = it_now() - at;
	if (!id_metric(t, port, STALE, 1, 1, 10) || !id_metric(t, port, VIOLATIONS, 1, 1, 10) ||
	    !caught_up(t, CAUGHT_UP_TIMEOUT) || !alive(t, "under REPLICA IDENTITY NOTHING"))
		return false;
	long wrong = id_drift(t);
	if (wrong < 0)
		return false;
	if (wrong == 0)
		return fail(t, "no drift after UPDATEs and DELETEs under REPLICA IDENTITY NOTHING: the test shows nothing");
	if (!run_changes(t, 500, false) || !id_sql(t, "ALTER TABLE follows REPLICA IDENTITY FULL") ||
	    !run_changes(t, 1000, false) || !id_wait_log(t, back, 1, 15) || !wait_swept(t, sweeps, 60) ||
	    !id_wait_log(t, " info  reconcile: corrected ", 1, 10) || !caught_up(t, CAUGHT_UP_TIMEOUT) || !drift_zero(t) ||
	    !id_metric(t, port, STALE, 0, 0, 10) || !alive(t, "after REPLICA IDENTITY FULL"))
		return false;
	if (!expect_eq_long(t, "times the NOTHING line was logged", 1, count_in_file(t->wc.log, noticed)))
		return false;
	snprintf(t->details, sizeof t->details,
		 "NOTHING noticed within %.1f s of the ALTER (one line, stale 1, violations 1), %ld cells wrong meanwhile; "
		 "FULL again: sweep corrected, drift 0, stale 0",
		 seen, wrong);
	return true;
}

/* REPLICA IDENTITY DEFAULT: follows' old images carry only the primary key.
 * walcount skips each such record with its LSN (identity counter), keeps
 * running, and is not stopped by them after a restart either: records
 * written under DEFAULT while it was down (SIGKILL) are skipped after the
 * table is fixed. The start sweeps first; drift 0. */
bool test_identity_default(struct ctx *t)
{
	const char *noticed = " error replica identity of public.follows is DEFAULT: the old row images of its UPDATEs and "
			      "DELETEs lack is_current and is_delete, so those changes are not counted and the counts are "
			      "stale until a reconcile sweep after the fix; fix: ALTER TABLE public.follows REPLICA "
			      "IDENTITY FULL;\n";
	const char *skip = " warn  skipped update change of follows at ";
	const char *skip_tail = ": its old row image lacks is_current and is_delete, the replica identity does not carry "
				"them (identity in walcount_skipped_changes_total); a reconcile sweep recounts once "
				"public.follows is REPLICA IDENTITY FULL\n";
	const char *resumed = " info  reconcile: the last checkpoint's sweep did not finish; sweeping now\n";
	int port = free_port(t);
	long sweeps;

	if (port == 0 || !start_identity_test(t, port) || !swept(t, &sweeps))
		return false;
	double at = it_now();
	if (!id_sql(t, "ALTER TABLE follows REPLICA IDENTITY DEFAULT") || !id_sql(t, DEMOTE_FOLLOWS) ||
	    !id_sql(t, DELETE_FOLLOWS) || !run_changes(t, 1500, false) || !id_wait_log(t, skip, 1, 10 - (it_now() - at)) ||
	    !id_wait_log(t, skip_tail, 1, 1))
		return false;
	double seen = it_now() - at;
	if (!id_wait_log(t, noticed, 1, 10) || !id_metric(t, port, SKIPPED, 20, 1e9, 10) ||
	    !id_metric(t, port, STALE, 1, 1, 10) || !caught_up(t, CAUGHT_UP_TIMEOUT) ||
	    !alive(t, "on a record written under REPLICA IDENTITY DEFAULT"))
		return false;
	int skipped = count_in_file(t->wc.log, skip);
	/* Killed, records under DEFAULT pile up in the slot; the table is
	 * fixed before the restart, which meets them first. */
	if (!kill_hard(t) || !id_sql(t, DEMOTE_FOLLOWS) || !id_sql(t, DELETE_FOLLOWS) || !run_changes(t, 1000, false) ||
	    !id_sql(t, "ALTER TABLE follows REPLICA IDENTITY FULL") || !start_streaming(t) || !run_changes(t, 500, false) ||
	    !caught_up(t, CAUGHT_UP_TIMEOUT) || !alive(t, "after a restart on records written under DEFAULT"))
		return false;
	if (count_in_file(t->wc.log, skip) <= skipped)
		return fail(t, "the restart skipped no record written under DEFAULT while walcount was stopped");
	if (count_in_file(t->wc.log, resumed) != 1)
		return fail(t, "the restart did not say \"%.*s\"", (int) strlen(resumed) - 2, resumed + 1);
	if (!wait_swept(t, sweeps, 60) || !caught_up(t, CAUGHT_UP_TIMEOUT) || !drift_zero(t) ||
	    !id_metric(t, port, STALE, 0, 0, 15))
		return false;
	snprintf(t->details, sizeof t->details,
		 "DEFAULT: first skip line within %.1f s, %d skipped while running, %d more after a restart past "
		 "records written under DEFAULT; the start swept first; drift 0, stale 0",
		 seen, skipped, count_in_file(t->wc.log, skip) - skipped);
	return true;
}

/* Keys that have neither an aggregate row nor an active source row in the
 * sweep's snapshot S, but whose counts the stream moves after the sweep
 * began with changes S saw, are corrected too. Here the +1 of each pair
 * (an UPDATE activating a follow under REPLICA IDENTITY DEFAULT) was
 * skipped, and its -1 (deactivated under FULL, while walcount was down)
 * reaches the stream only after the restart's sweep took S: a backlog of
 * transactions on another table holds the stream back. Counted alone, the
 * stream leaves -1 on both keys of each pair; the sweep must write 0.
 * 7000 -> 7001 lies inside the recount's key range (100..9000), 9500 ->
 * 9501 past its end. */
bool test_identity_sweep_new_keys(struct ctx *t)
{
	const char *skip = " warn  skipped update change of follows at ";
	const char *params[2] = {t->db, NULL};
	char err[IT_ERRLEN], lsn[LSN_BUFLEN + 8], before[8] = "";
	long sweeps;

	if (!configure(t, &(struct wc_opts){.checkpoint_interval = "1h", .reconcile = true}) || !start_streaming(t) ||
	    !id_sql(t, "INSERT INTO follows (follower_user_id, followee_user_id, is_current, is_delete, txhash) "
		       "VALUES (100, 9000, true, false, 'anchor')") ||
	    !caught_up(t, CAUGHT_UP_TIMEOUT) || !drift_zero(t) || !swept(t, &sweeps))
		return false;
	if (!id_sql(t, "ALTER TABLE follows REPLICA IDENTITY DEFAULT") ||
	    !id_sql(t, "INSERT INTO follows (follower_user_id, followee_user_id, is_current, is_delete, txhash) "
		       "VALUES (7000, 7001, true, true, 'pair'), (9500, 9501, true, true, 'pair')") ||
	    !id_sql(t, "UPDATE follows SET is_delete = false WHERE txhash = 'pair'") || !id_wait_log(t, skip, 2, 15) ||
	    !caught_up(t, CAUGHT_UP_TIMEOUT) || !kill_hard(t))
		return false;
	if (!id_sql(t, "ALTER TABLE follows REPLICA IDENTITY FULL") || !id_sql(t, "CREATE TABLE backlog (i int)") ||
	    !id_sql(t, "DO $$ BEGIN FOR i IN 1..150000 LOOP INSERT INTO backlog VALUES (i); COMMIT; END LOOP; END $$") ||
	    !id_sql(t, "UPDATE follows SET is_delete = true WHERE txhash = 'pair'") ||
	    !it_value(t->conn, "SELECT pg_current_wal_insert_lsn()::text", 0, NULL, lsn, sizeof lsn, err, sizeof err) ||
	    !start_streaming(t) || !wait_swept(t, sweeps, 60) || !caught_up(t, CAUGHT_UP_TIMEOUT) ||
	    !alive(t, "after the restart"))
		return false;
	/* The sweep's checkpoint row holds the progress it began at, after
	 * applying everything held: before the deactivation's end, the stream
	 * had not applied it. */
	params[1] = lsn;
	if (!it_value(t->conn,
		      "SELECT lsn < $2::pg_lsn FROM walcount.checkpoints WHERE slot_name = $1 AND reconcile_checked IS NOT NULL "
		      "ORDER BY id DESC LIMIT 1",
		      2, params, before, sizeof before, err, sizeof err))
		return fail_err(t, "reading walcount.checkpoints", err);
	if (strcmp(before, "t") != 0)
		return fail(t, "the restart's sweep began after the stream had applied the deactivation: the test shows nothing");
	if (!drift_zero(t))
		return false;
	snprintf(t->details, sizeof t->details,
		 "a follow activated under DEFAULT (skipped), deactivated under FULL before the restart's sweep took its "
		 "snapshot and streamed after it: drift 0 on keys without a row in the snapshot");
	return true;
}
