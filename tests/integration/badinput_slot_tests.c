/* badinput_slot: design.md §9 rows 4-6, the slot or the role is not what
 * walcount needs (a pgoutput slot, two consumers on one slot, a role
 * without REPLICATION). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "badinput.h"

/* Row 4: a slot created with pgoutput. */

/* slot.name names a slot of another plugin: refused with the exact fix, the
 * foreign slot untouched, the running consumer unaffected. */
bool test_bi_pgoutput_slot(struct ctx *t)
{
	char slot[80], cfg[PATH_MAX], dsn[256], want[512], before[256], after[256];
	const char *params[1] = {slot};
	char err[IT_ERRLEN];
	const char *argv[] = {IT.bin, "run", "--config", cfg, NULL};

	snprintf(slot, sizeof slot, "%s_pg", t->db);
	snprintf(cfg, sizeof cfg, "%s/bi-pgoutput.yaml", IT.tmp);
	snprintf(dsn, sizeof dsn, "host=%s port=%s dbname=%s user=postgres", IT.host, IT.port, t->db);
	drop_slot(t, slot);
	if (!configure(t, &(struct wc_opts){0}) || !start_streaming(t) || !run_changes(t, 1000, false) ||
	    !bi_write_config(t, cfg, dsn, slot, NULL))
		return false;
	const char *q =
		"SELECT plugin || ' ' || confirmed_flush_lsn || ' ' || restart_lsn FROM pg_replication_slots WHERE slot_name = $1";
	bool ok = it_exec(t->conn, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", 1, params, err, sizeof err) ||
		  fail_err(t, "creating the pgoutput slot", err);
	ok = ok &&
	     (it_value(t->conn, q, 1, params, before, sizeof before, err, sizeof err) || fail_err(t, "reading the slot", err));
	snprintf(want, sizeof want,
		 " error slot %s uses plugin pgoutput, not wal2json; choose another slot.name, or drop it: "
		 "SELECT pg_drop_replication_slot('%s');\n",
		 slot, slot);
	ok = ok && refused(t, "bi-pgoutput", argv, want, 1);
	ok = ok &&
	     (it_value(t->conn, q, 1, params, after, sizeof after, err, sizeof err) || fail_err(t, "reading the slot", err));
	ok = ok && expect_str_eq(t, "the pgoutput slot after the refusal", before, after);
	char rows[16];
	ok = ok && (it_value(t->conn, "SELECT count(*) FROM walcount.progress WHERE slot_name = $1", 1, params, rows, sizeof rows,
			     err, sizeof err) ||
		    fail_err(t, "reading walcount.progress", err));
	ok = ok && expect_str_eq(t, "progress rows written for the pgoutput slot", "0", rows);
	ok = ok && run_changes(t, 1000, false) && caught_up(t, CAUGHT_UP_TIMEOUT) && drift_zero(t);
	drop_slot(t, slot);
	if (ok)
		snprintf(t->details, sizeof t->details,
			 "refused with \"%.*s\"; pgoutput slot untouched; the running consumer stayed exact (drift 0)",
			 (int) strlen(want) - 8, want + 7);
	return ok;
}

/* Row 5: two walcount processes on the same slot. */

/* A second `run` on a held slot stands by, saying once the holder's PID,
 * and disturbs nothing. Then both run on: each walsender termination hands
 * the slot to whichever is first, the other stands by, and the counts must
 * stay exact through every hand-over.
 *
 * A consumer whose stream died may still apply its held batch after the
 * other has read walcount.progress and taken the slot; the progress write
 * (sql/apply_batch.sql) only moves the row from the position the batch
 * started from, so one of the two writes nothing and re-reads. */
bool test_bi_two_consumers(struct ctx *t)
{
	const char *params[1] = {t->db};
	char err[IT_ERRLEN], pid[16], pid2[16], want[512], st[32];
	struct walcount b = {0};

	if (!configure(t, &(struct wc_opts){.max_delay = "1s", .max_changes = 100000}) || !start_streaming(t) ||
	    !run_changes(t, 2000, false) || !caught_up(t, CAUGHT_UP_TIMEOUT))
		return false;
	const char *holder =
		"SELECT coalesce((SELECT active_pid::text FROM pg_replication_slots WHERE slot_name = $1 AND active), '')";
	if (!it_value(t->conn, holder, 1, params, pid, sizeof pid, err, sizeof err))
		return fail_err(t, "reading the slot's holder", err);
	snprintf(want, sizeof want, "standby: slot %s is in use by PID %s; standing by", t->db, pid);
	snprintf(b.config, sizeof b.config, "%s", t->wc.config);
	snprintf(b.log, sizeof b.log, "%s/bi-two-consumers-b.log", IT.tmp);
	unlink(b.log);
	if (!wc_start(&b, err, sizeof err))
		return fail_err(t, "starting the second consumer", err);
	double t0 = it_now();
	while (count_in_file(b.log, want) == 0 && it_now() < t0 + 30)
		it_sleep_ms(20);
	double waited = it_now() - t0;
	if (!expect_eq_long(t, "lines of the second consumer's refusal", 1, count_in_file(b.log, want))) {
		kill(b.pid, SIGKILL);
		return false;
	}
	if (!it_value(t->conn, holder, 1, params, pid2, sizeof pid2, err, sizeof err))
		return fail_err(t, "reading the slot's holder", err);
	if (!wc_alive(&t->wc) || strcmp(pid, pid2) != 0)
		return fail(t, "the standing-by second consumer disturbed the first (walsender %s -> %s)", pid, pid2);

	/* Both at once. Every progress write takes 1 s (a slow disk), and each
	 * walsender is ended while its consumer's apply is in flight. */
	if (!bi_sql(t, "CREATE FUNCTION it_slow_progress() RETURNS trigger LANGUAGE plpgsql AS "
		       "$$ BEGIN PERFORM pg_sleep(1); RETURN NEW; END $$") ||
	    !bi_sql(t, "CREATE TRIGGER it_slow_progress BEFORE UPDATE ON walcount.progress FOR EACH ROW "
		       "EXECUTE FUNCTION it_slow_progress()"))
		return false;
	bool ok = true;
	int kills = rounds(16, 6); /* walsender kills */
	const char *in_flight = "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND application_name = "
				"'walcount' AND backend_type = 'client backend' AND wait_event = 'PgSleep')";
	/* walcount.progress must only move forward: a step back means two
	 * writers overwrote each other's position. */
	char back[160] = "";
	lsn_t highest = 0;
	for (int i = 0; ok && i < kills; i++) {
		ok = run_changes(t, rng_between(&t->rng, 200, 800), false);
		int rc = ok ? it_poll(t->conn, in_flight, 1, params, 10, NULL, err, sizeof err) : 1;
		ok = ok && (rc >= 0 || fail_err(t, "watching the apply", err)) && terminate_walsender(t, false);
		/* Sampled for a second after each kill: the hand-over's writes. */
		for (double end = it_now() + 1.0; ok && it_now() < end; it_sleep_ms(20)) {
			lsn_t now;
			char l1[LSN_BUFLEN], l2[LSN_BUFLEN];
			ok = progress_lsn(t, &now);
			if (ok && now < highest && *back == '\0')
				snprintf(back, sizeof back, "from %s to %s", lsn_format(highest, l1), lsn_format(now, l2));
			if (ok && now > highest)
				highest = now;
		}
	}
	ok = ok && caught_up(t, CAUGHT_UP_TIMEOUT);
	char examples[1024];
	long drift = ok ? drift_cells(t, examples, sizeof examples) : 0;
	ok = ok && drift >= 0;
	bool a_alive = wc_alive(&t->wc), b_alive = wc_alive(&b);
	int b_streams = 0;
	char *btext = it_read_file(b.log, NULL, err, sizeof err);
	b_streams = btext ? count_in(btext, "stream: started slot") : 0;
	free(btext);
	int a_streams = count_in_log(t, "stream: started slot");
	if (b.pid > 0 && !wc_signal(&b, SIGTERM, STOP_TIMEOUT, err, sizeof err))
		ok = ok && fail_err(t, "stopping the second consumer", err);
	else if (ok && b_alive && (!WIFEXITED(b.status) || WEXITSTATUS(b.status) != 0))
		ok = fail(t, "the second consumer stopped with %s, want exit 0", it_status_text(b.status, st, sizeof st));
	if (!ok) {
		it_print_tail(b.log, 10);
		return false;
	}
	if (drift > 0)
		return fail(t,
			    "with two consumers on one slot, %ld count cells drifted after %d walsender kills (changes "
			    "applied twice and lost), e.g. %s; the slot was streamed %d times by the first, %d by the second",
			    drift, kills, examples, a_streams, b_streams);
	/* A rebuild recounts everything, which hides the drift above: with
	 * nothing lost or advanced behind walcount's back, there must be none. */
	int rebuilds = count_in_log(t, "rebuild:");
	if ((btext = it_read_file(b.log, NULL, err, sizeof err)) != NULL)
		rebuilds += count_in(btext, "rebuild:");
	free(btext);
	if (rebuilds > 0 || *back)
		return fail(t,
			    "with two consumers on one slot, walcount.progress went backwards (%s) and the consumers "
			    "rebuilt the slot %d times (drop, new slot, full initial load), each hiding what the other "
			    "applied twice",
			    *back ? back : "not seen by the samples", rebuilds);
	if (!a_alive)
		return fail(t, "the first consumer exited (%s) while both ran", it_status_text(t->wc.status, st, sizeof st));
	if (!bi_sql(t, "DROP TRIGGER it_slow_progress ON walcount.progress") || !run_changes(t, 1000, false) ||
	    !caught_up(t, CAUGHT_UP_TIMEOUT) || !drift_zero(t))
		return false;
	snprintf(t->details, sizeof t->details,
		 "second run stood by after %.1f s naming the holder's PID; then both ran through %d walsender kills: "
		 "the slot was streamed %d times by the first, %d by the second (%s); drift 0",
		 waited, kills, a_streams, b_streams, b_alive ? "alive throughout" : "it had exited");
	return true;
}

/* Row 6: a role without REPLICATION. */

bool test_bi_no_replication(struct ctx *t)
{
	char slot[80], cfg[PATH_MAX], dsn[256], want[256];
	const char *argv[] = {IT.bin, "run", "--config", cfg, NULL};
	bool exists = true;

	snprintf(slot, sizeof slot, "%s_b", t->db);
	snprintf(cfg, sizeof cfg, "%s/bi-norepl.yaml", IT.tmp);
	snprintf(dsn, sizeof dsn, "host=%s port=%s dbname=%s user=it_norepl", IT.host, IT.port, t->db);
	if (!configure(t, &(struct wc_opts){0}) || !start_streaming(t) || !run_changes(t, 1000, false) ||
	    !bi_sql(t, "DROP ROLE IF EXISTS it_norepl") || !bi_sql(t, "CREATE ROLE it_norepl LOGIN NOREPLICATION") ||
	    !bi_write_config(t, cfg, dsn, slot, NULL))
		return false;
	snprintf(want, sizeof want,
		 " error role it_norepl lacks the REPLICATION attribute; fix: ALTER ROLE it_norepl REPLICATION;\n");
	bool ok = refused(t, "bi-norepl", argv, want, 1) && slot_exists(t, slot, &exists) &&
		  (!exists || fail(t, "a slot was created for the refused role"));
	ok = ok && run_changes(t, 1000, false) && caught_up(t, CAUGHT_UP_TIMEOUT) && drift_zero(t);
	drop_slot(t, slot);
	ok = bi_sql(t, "DROP ROLE IF EXISTS it_norepl") && ok;
	if (ok)
		snprintf(t->details, sizeof t->details,
			 "refused with \"role it_norepl lacks the REPLICATION attribute; fix: ALTER ROLE it_norepl REPLICATION;\", "
			 "no slot; the running consumer stayed exact (drift 0)");
	return ok;
}
