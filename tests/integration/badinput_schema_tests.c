/* badinput_schema: design.md §9 rows 1-3, the source tables' schema
 * changed under a running walcount (a column added or dropped, a table
 * renamed). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "badinput.h"

/* Row 1: schema change: a column added. */

/* ADD COLUMN on a source table while streaming: wal2json then sends the new
 * column in every image; walcount reads the columns it needs by name, so
 * nothing changes: no message, nothing skipped, drift 0. */
bool test_bi_column_added(struct ctx *t)
{
	if (!configure(t, &(struct wc_opts){0}) || !start_streaming(t) || !run_changes(t, 2000, false))
		return false;
	int before = count_in_log(t, " warn ") + count_in_log(t, " error ");
	if (!bi_sql(t, "ALTER TABLE reposts ADD COLUMN it_x int") || !run_changes(t, 1500, false) ||
	    !bi_sql(t, "ALTER TABLE saves ADD COLUMN it_y text NOT NULL DEFAULT 'y'") || !run_changes(t, 1500, false) ||
	    !bi_sql(t, "UPDATE reposts SET it_x = 1 WHERE ctid IN (SELECT ctid FROM reposts WHERE is_current LIMIT 100)") ||
	    !bi_sql(t, "INSERT INTO reposts (user_id, repost_item_id, repost_type, is_current, is_delete, txhash, it_x) "
		       "VALUES (4101, 4101, 'track', true, false, 'added', 7)") ||
	    !caught_up(t, CAUGHT_UP_TIMEOUT) || !drift_zero(t))
		return false;
	int after = count_in_log(t, " warn ") + count_in_log(t, " error ");
	if (after != before) {
		char *text = read_log(t);
		fail(t, "walcount logged %d warnings/errors after ADD COLUMN, want none: %.600s", after - before, text);
		free(text);
		return false;
	}
	snprintf(t->details, sizeof t->details,
		 "ADD COLUMN on reposts and saves while streaming: no message, nothing skipped, %ld changes, drift 0",
		 t->wl.committed);
	return true;
}

/* Row 2: schema change: a column dropped. */

/* DROP COLUMN of a column walcount does not read (blockhash): nothing
 * changes. DROP COLUMN of one it needs (saves.is_current): the next saves
 * record lacks it, and walcount must stop with the record's LSN, apply
 * nothing of that transaction and skip nothing, also when restarted. */
bool test_bi_column_dropped(struct ctx *t)
{
	char *text = NULL, want[512], line[640];
	lsn_t before, at = 0, applied;

	if (!configure(t, &(struct wc_opts){0}) || !start_streaming(t) || !run_changes(t, 2000, false) ||
	    !bi_sql(t, "ALTER TABLE reposts DROP COLUMN blockhash") ||
	    !bi_sql(t, "ALTER TABLE follows DROP COLUMN blocknumber") || !run_changes(t, 2000, false) ||
	    !caught_up(t, CAUGHT_UP_TIMEOUT) || !drift_zero(t))
		return false;
	if (count_in_log(t, " error ") > 0)
		return fail(t, "walcount logged an error after dropping columns it does not read");
	long unneeded = t->wl.committed;
	if (!current_lsn(t, &before) || !bi_sql(t, "ALTER TABLE saves DROP COLUMN is_current") ||
	    !bi_sql(t,
		    "INSERT INTO saves (user_id, save_item_id, save_type, is_delete, txhash) VALUES (4201, 4201, 'track', false, 'dropped')"))
		return false;
	/* It must stop by itself, with a non-zero exit. */
	for (double end = it_now() + 30; wc_alive(&t->wc) && it_now() < end;)
		it_sleep_ms(50);
	if (wc_alive(&t->wc))
		return fail(t, "walcount still runs 30 s after a saves record without is_current");
	char st[32];
	if (!WIFEXITED(t->wc.status) || WEXITSTATUS(t->wc.status) == 0)
		return fail(t, "walcount ended with %s after an undecodable record, want a non-zero exit",
			    it_status_text(t->wc.status, st, sizeof st));
	text = read_log(t);
	bool found = lsn_after(text, " error decode: wal2json record at ", ": saves \"columns\" image lacks column is_current",
			       &at);
	if (found) {
		char l1[LSN_BUFLEN];
		snprintf(
			want, sizeof want,
			"decode: wal2json record at %s: saves \"columns\" image lacks column is_current (message at WAL %s); stopping",
			lsn_format(at, l1), l1);
		found = strstr(text, log_line(line, sizeof line, "error", want)) != NULL;
	}
	free(text);
	if (!found)
		return fail(t,
			    "no exact line \"error decode: wal2json record at L: saves \\\"columns\\\" image lacks column "
			    "is_current (message at WAL L); stopping\" in %s",
			    t->wc.log);
	if (at < before)
		return fail(t, "the stop names LSN %" PRIX64 ", not one after the DROP COLUMN", at);
	if (!progress_lsn(t, &applied))
		return false;
	if (applied > at)
		return fail(t, "walcount.progress moved past the record it could not read: nothing may be skipped");
	/* A restart stops at the same record again: it is never skipped. */
	int stops = count_in_log(t, want);
	if (!start(t))
		return false;
	for (double end = it_now() + 30; wc_alive(&t->wc) && it_now() < end;)
		it_sleep_ms(50);
	if (wc_alive(&t->wc))
		return fail(t, "a restarted walcount streams past the record it could not read");
	if (count_in_log(t, want) != stops + 1)
		return fail(t, "the restarted walcount did not stop at the same record (%s)", want);
	snprintf(t->details, sizeof t->details,
		 "DROP COLUMN blockhash/blocknumber: no message, %ld changes, drift 0; DROP COLUMN saves.is_current: "
		 "stopped with \"%s\", progress not past it, again after a restart",
		 unneeded, want);
	return true;
}

/* Row 3: schema change: a table renamed. */

/* The slot streams the tables named public.reposts/saves/follows
 * (wal2json "add-tables"), so while reposts is renamed the server filters
 * its changes out. walcount notices (its source check, every 5 s and at
 * stop), leaves a checkpoint without a sweep result, and refuses a restart
 * while the table is missing ("source table public.reposts does not
 * exist"); after the rename back its start sweeps first, restoring what was
 * filtered out: drift 0. */
bool test_bi_table_renamed(struct ctx *t)
{
	const char *argv[] = {IT.bin, "run", "--config", t->wc.config, NULL};

	const char *noticed = " error source table public.reposts does not exist (renamed or dropped?): the slot streams "
			      "source tables by name, so its changes are not counted until it is back; a reconcile sweep "
			      "then recounts them\n";
	const char *resumed = " info  reconcile: the last checkpoint's sweep did not finish; sweeping now\n";

	if (!configure(t, &(struct wc_opts){.reconcile = true}) || !start_streaming(t) || !run_changes(t, 2000, false) ||
	    !caught_up(t, CAUGHT_UP_TIMEOUT) || !drift_zero(t))
		return false;
	int warnings = count_in_log(t, " warn ") + count_in_log(t, " error ");
	if (!bi_sql(t, "ALTER TABLE reposts RENAME TO reposts_renamed") ||
	    !bi_sql(t, "INSERT INTO reposts_renamed (user_id, repost_item_id, repost_type, is_current, is_delete, txhash) "
		       "VALUES (4301, 4301, 'track', true, false, 'while-renamed')") ||
	    !caught_up(t, CAUGHT_UP_TIMEOUT))
		return false;
	bool alive = wc_alive(&t->wc);
	int said = count_in_log(t, " warn ") + count_in_log(t, " error ") - warnings;
	if (alive && !stop_clean(t))
		return false;
	if (count_in_log(t, noticed) != 1)
		return fail(t, "want one line \"%.*s\" by the time walcount stopped, found %d", (int) strlen(noticed) - 2,
			    noticed + 1, count_in_log(t, noticed));
	char want[256];
	snprintf(want, sizeof want, " error source table public.reposts does not exist\n");
	if (!refused(t, "bi-renamed-restart", argv, want, 1))
		return false;
	if (!bi_sql(t, "ALTER TABLE reposts_renamed RENAME TO reposts") || !start_streaming(t) || !run_changes(t, 1000, false) ||
	    !caught_up(t, CAUGHT_UP_TIMEOUT))
		return false;
	if (count_in_log(t, resumed) != 1)
		return fail(t, "the restart did not say \"%.*s\"", (int) strlen(resumed) - 2, resumed + 1);
	if (!bi_wait_log(t, " info  reconcile: corrected ", 1, 30))
		return false;
	char why[192];
	snprintf(why, sizeof why,
		 "a repost written while public.reposts was renamed was never counted (walcount %s and logged %d "
		 "warnings/errors meanwhile)",
		 alive ? "kept running" : "stopped", said);
	if (!no_drift_cells(t, why))
		return false;
	snprintf(t->details, sizeof t->details,
		 "renamed reposts: noticed (%d lines while running, one at stop), restart refused with \"source table "
		 "public.reposts does not exist\"; after the rename back the start swept first: drift 0",
		 said);
	return true;
}
