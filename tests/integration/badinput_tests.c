/* The bad-input table (design.md §9), one test per row: each asserts the
 * exact message walcount gives (or its counter) and that no count was lost. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cases.h"

/* Metrics ports derived from the process id, clear of monitor_tests.c's. */
#define RUNUSER_PATH "/usr/sbin/runuser"

/* ---- shared steps ---- */

static bool sql(struct ctx *t, const char *text)
{
	char err[IT_ERRLEN];

	return it_exec(t->conn, text, 0, NULL, err, sizeof err) || fail_err(t, "SQL", err);
}

static bool value(struct ctx *t, const char *text, char *out, size_t len)
{
	char err[IT_ERRLEN];

	return it_value(t->conn, text, 0, NULL, out, len, err, sizeof err) || fail_err(t, "SQL", err);
}

static char *read_log(struct ctx *t)
{
	char err[IT_ERRLEN];
	char *text = it_read_file(t->wc.log, NULL, err, sizeof err);

	return text ? text : strdup("");
}

static int count_in_log(struct ctx *t, const char *needle)
{
	return count_in_file(t->wc.log, needle);
}

/* Waits until walcount's log holds needle at least n times. */
static bool wait_log(struct ctx *t, const char *needle, int n, double timeout_s)
{
	for (double end = it_now() + timeout_s;; it_sleep_ms(50)) {
		if (count_in_log(t, needle) >= n)
			return true;
		if (it_now() >= end)
			return fail(t, "walcount's log did not show \"%s\" %d time(s) within %.0f s", needle, n, timeout_s);
	}
}

/* A log line is "TIMESTAMP LEVEL MESSAGE" with the level padded to 5
 * (log.c). Writes the exact "Z LEVEL MESSAGE\n" tail into buf. */
static const char *log_line(char *buf, size_t len, const char *level, const char *msg)
{
	snprintf(buf, len, "Z %-5s %s\n", level, msg);
	return buf;
}

/* The LSN of the first log line "…PREFIX<lsn>SUFFIX" into *lsn. */
static bool lsn_after(const char *text, const char *prefix, const char *suffix, lsn_t *lsn)
{
	for (const char *p = text; (p = strstr(p, prefix)) != NULL; p++) {
		char buf[LSN_BUFLEN + 1];
		const char *s = p + strlen(prefix);
		size_t n = strspn(s, "0123456789ABCDEF/");
		if (n == 0 || n > LSN_BUFLEN - 1 || strncmp(s + n, suffix, strlen(suffix)) != 0)
			continue;
		snprintf(buf, sizeof buf, "%.*s", (int) n, s);
		return lsn_parse(buf, lsn);
	}
	return false;
}

static bool current_lsn(struct ctx *t, lsn_t *out)
{
	char v[LSN_BUFLEN + 8];

	if (!value(t, "SELECT pg_current_wal_lsn()", v, sizeof v))
		return false;
	return lsn_parse(v, out) || fail(t, "pg_current_wal_lsn() gave '%s'", v);
}

static bool progress_lsn(struct ctx *t, lsn_t *out)
{
	const char *params[1] = {t->db};
	char err[IT_ERRLEN], v[LSN_BUFLEN + 8];

	if (!it_value(t->conn, "SELECT lsn FROM walcount.progress WHERE slot_name = $1", 1, params, v, sizeof v, err,
		      sizeof err))
		return fail_err(t, "reading walcount.progress", err);
	return lsn_parse(v, out) || fail(t, "walcount.progress.lsn is '%s'", v);
}

/* A config for a second walcount process: the test's database, another
 * slot and user, and whatever extra lines. */
static bool write_config(struct ctx *t, const char *path, const char *dsn, const char *slot, const char *extra)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return fail(t, "%s: %s", path, strerror(errno));
	fprintf(f, "database:\n  dsn: \"%s\"\nslot:\n  name: %s\nreconcile:\n  enabled: false\nmetrics:\n  listen: \"\"\n"
		   "stream:\n  status_interval: 1s\n  reconnect_min: 100ms\n  reconnect_max: 2s\n%s",
		dsn, slot, extra ? extra : "");
	if (fclose(f) != 0)
		return fail(t, "%s: %s", path, strerror(errno));
	return true;
}

static bool write_bytes(struct ctx *t, const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (f == NULL || fwrite(text, 1, len, f) != len || fclose(f) != 0)
		return fail(t, "writing %s: %s", path, strerror(errno));
	return true;
}

/* Runs argv to its end and wants a non-zero exit, nothing on stdout and
 * stderr whose last line ends with want_tail (the exact message, after
 * the timestamp and level when it is a log line). lines: the number of
 * stderr lines wanted, 0 for any. */
static bool refused(struct ctx *t, const char *label, const char *const *argv, const char *want_tail, int lines)
{
	char *out = NULL, *errtext = NULL, st[32];
	int status;
	bool ok = run_program(t, label, argv, &status, &out, &errtext);

	if (ok && (!WIFEXITED(status) || WEXITSTATUS(status) == 0))
		ok = fail(t, "%s: walcount ended with %s, want a non-zero exit: %.300s", label,
			  it_status_text(status, st, sizeof st), errtext);
	if (ok && *out != '\0')
		ok = fail(t, "%s: stdout not empty: %.200s", label, out);
	size_t n = ok ? strlen(errtext) : 0, k = strlen(want_tail);
	if (ok && (n < k || strcmp(errtext + n - k, want_tail) != 0))
		ok = fail(t, "%s: stderr does not end with the exact message \"%.*s\": %.500s", label, (int) strcspn(want_tail, "\n"),
			  want_tail, errtext);
	if (ok && lines > 0 && count_in(errtext, "\n") != lines)
		ok = fail(t, "%s: stderr has %d lines, want %d: %.500s", label, count_in(errtext, "\n"), lines, errtext);
	free(out);
	free(errtext);
	return ok;
}

static bool slot_exists(struct ctx *t, const char *slot, bool *exists)
{
	const char *params[1] = {slot};
	char err[IT_ERRLEN], v[8];

	if (!it_value(t->conn, "SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)", 1, params, v, sizeof v,
		      err, sizeof err))
		return fail_err(t, "reading pg_replication_slots", err);
	*exists = strcmp(v, "t") == 0;
	return true;
}

/* Both tests that refuse a second process's slot must leave no slot behind
 * (test_prerequisites needs none at the end). */
static void drop_slot(struct ctx *t, const char *slot)
{
	const char *params[1] = {slot};
	char err[IT_ERRLEN];

	if (PQstatus(t->conn) != CONNECTION_OK)
		it_reconnect(&t->conn, t->db, 60, err, sizeof err);
	it_exec(t->conn, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active",
		1, params, err, sizeof err);
}

/* The drift cells as "tbl[id].col expected/actual" joined by "; ", and
 * their count (-1 on error). */
static long drift_cells(struct ctx *t, char *buf, size_t len)
{
	char err[IT_ERRLEN];

	long n = it_drift(t->conn, buf, len, err, sizeof err);
	if (n < 0)
		fail_err(t, "drift check", err);
	return n;
}

/* GET /metrics on 127.0.0.1:port; the value of series, -1 when absent. */
double metric(int port, const char *series)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t) port)};
	const char *req = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
	size_t len = 0, cap = 1 << 16;
	char *buf = malloc(cap);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	double v = -1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (buf && fd >= 0 && connect(fd, (struct sockaddr *) &sa, sizeof sa) == 0 &&
	    write(fd, req, strlen(req)) == (ssize_t) strlen(req)) {
		for (ssize_t n; (n = read(fd, buf + len, cap - len - 1)) > 0;) {
			len += (size_t) n;
			if (len + 1 == cap) {
				char *bigger = realloc(buf, cap *= 2);
				if (bigger == NULL)
					break;
				buf = bigger;
			}
		}
	}
	if (fd >= 0)
		close(fd);
	if (buf == NULL)
		return -1;
	buf[len] = '\0';
	size_t n = strlen(series);
	for (const char *p = buf; (p = strstr(p, series)) != NULL; p += n)
		if ((p == buf || p[-1] == '\n') && p[n] == ' ') {
			v = atof(p + n + 1);
			break;
		}
	free(buf);
	return v;
}

static bool metric_is(struct ctx *t, int port, const char *series, double want)
{
	double v = -1;

	/* Metrics follow the stream; give the last change a moment. */
	for (double end = it_now() + 10; it_now() < end; it_sleep_ms(100))
		if ((v = metric(port, series)) == want)
			return true;
	return fail(t, "%s is %g, want %g", series, v, want);
}

/* ---- 1. schema change: a column added ---- */

/* ADD COLUMN on a source table while streaming: wal2json then sends the new
 * column in every image; walcount reads the columns it needs by name, so
 * nothing changes: no message, nothing skipped, drift 0. */
bool test_bi_column_added(struct ctx *t)
{
	if (!configure(t, &(struct wc_opts){0}) || !start_streaming(t) || !run_changes(t, 2000, false))
		return false;
	int before = count_in_log(t, " warn ") + count_in_log(t, " error ");
	if (!sql(t, "ALTER TABLE reposts ADD COLUMN it_x int") || !run_changes(t, 1500, false) ||
	    !sql(t, "ALTER TABLE saves ADD COLUMN it_y text NOT NULL DEFAULT 'y'") || !run_changes(t, 1500, false) ||
	    !sql(t, "UPDATE reposts SET it_x = 1 WHERE ctid IN (SELECT ctid FROM reposts WHERE is_current LIMIT 100)") ||
	    !sql(t, "INSERT INTO reposts (user_id, repost_item_id, repost_type, is_current, is_delete, txhash, it_x) "
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

/* ---- 2. schema change: a column dropped ---- */

/* DROP COLUMN of a column walcount does not read (blockhash): nothing
 * changes. DROP COLUMN of one it needs (saves.is_current): the next saves
 * record lacks it, and walcount must stop with the record's LSN, apply
 * nothing of that transaction and skip nothing, also when restarted. */
bool test_bi_column_dropped(struct ctx *t)
{
	char *text = NULL, want[512], line[640];
	lsn_t before, at = 0, applied;

	if (!configure(t, &(struct wc_opts){0}) || !start_streaming(t) || !run_changes(t, 2000, false) ||
	    !sql(t, "ALTER TABLE reposts DROP COLUMN blockhash") || !sql(t, "ALTER TABLE follows DROP COLUMN blocknumber") ||
	    !run_changes(t, 2000, false) || !caught_up(t, CAUGHT_UP_TIMEOUT) || !drift_zero(t))
		return false;
	if (count_in_log(t, " error ") > 0)
		return fail(t, "walcount logged an error after dropping columns it does not read");
	long unneeded = t->wl.committed;
	if (!current_lsn(t, &before) || !sql(t, "ALTER TABLE saves DROP COLUMN is_current") ||
	    !sql(t, "INSERT INTO saves (user_id, save_item_id, save_type, is_delete, txhash) VALUES (4201, 4201, 'track', false, 'dropped')"))
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
	bool found = lsn_after(text, " error decode: wal2json record at ", ": saves \"columns\" image lacks column is_current", &at);
	if (found) {
		char l1[LSN_BUFLEN];
		snprintf(want, sizeof want,
			 "decode: wal2json record at %s: saves \"columns\" image lacks column is_current (message at WAL %s); stopping",
			 lsn_format(at, l1), l1);
		found = strstr(text, log_line(line, sizeof line, "error", want)) != NULL;
	}
	free(text);
	if (!found)
		return fail(t, "no exact line \"error decode: wal2json record at L: saves \\\"columns\\\" image lacks column "
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

/* ---- 3. schema change: a table renamed ---- */

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
	char examples[1024];

	const char *noticed = " error source table public.reposts does not exist (renamed or dropped?): the slot streams "
			      "source tables by name, so its changes are not counted until it is back; a reconcile sweep "
			      "then recounts them\n";
	const char *resumed = " info  reconcile: the last checkpoint's sweep did not finish; sweeping now\n";

	if (!configure(t, &(struct wc_opts){.reconcile = true}) || !start_streaming(t) || !run_changes(t, 2000, false) ||
	    !caught_up(t, CAUGHT_UP_TIMEOUT) || !drift_zero(t))
		return false;
	int warnings = count_in_log(t, " warn ") + count_in_log(t, " error ");
	if (!sql(t, "ALTER TABLE reposts RENAME TO reposts_renamed") ||
	    !sql(t, "INSERT INTO reposts_renamed (user_id, repost_item_id, repost_type, is_current, is_delete, txhash) "
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
	if (!sql(t, "ALTER TABLE reposts_renamed RENAME TO reposts") || !start_streaming(t) || !run_changes(t, 1000, false) ||
	    !caught_up(t, CAUGHT_UP_TIMEOUT))
		return false;
	if (count_in_log(t, resumed) != 1)
		return fail(t, "the restart did not say \"%.*s\"", (int) strlen(resumed) - 2, resumed + 1);
	if (!wait_log(t, " info  reconcile: corrected ", 1, 30))
		return false;
	long n = drift_cells(t, examples, sizeof examples);
	if (n < 0)
		return false;
	if (n > 0)
		return fail(t, "a repost written while public.reposts was renamed was never counted (%ld cells: %s); "
			       "walcount %s and logged %d warnings/errors meanwhile",
			    n, examples, alive ? "kept running" : "stopped", said);
	snprintf(t->details, sizeof t->details,
		 "renamed reposts: noticed (%d lines while running, one at stop), restart refused with \"source table "
		 "public.reposts does not exist\"; after the rename back the start swept first: drift 0",
		 said);
	return true;
}

/* ---- 4. a slot created with pgoutput ---- */

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
	    !write_config(t, cfg, dsn, slot, NULL))
		return false;
	const char *q = "SELECT plugin || ' ' || confirmed_flush_lsn || ' ' || restart_lsn FROM pg_replication_slots WHERE slot_name = $1";
	bool ok = it_exec(t->conn, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", 1, params, err, sizeof err) ||
		  fail_err(t, "creating the pgoutput slot", err);
	ok = ok && (it_value(t->conn, q, 1, params, before, sizeof before, err, sizeof err) || fail_err(t, "reading the slot", err));
	snprintf(want, sizeof want,
		 " error slot %s uses plugin pgoutput, not wal2json; choose another slot.name, or drop it: "
		 "SELECT pg_drop_replication_slot('%s');\n",
		 slot, slot);
	ok = ok && refused(t, "bi-pgoutput", argv, want, 1);
	ok = ok && (it_value(t->conn, q, 1, params, after, sizeof after, err, sizeof err) || fail_err(t, "reading the slot", err));
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

/* ---- 5. two walcount processes on the same slot ---- */

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
	    !run_changes(t, 2000, false) ||
	    !caught_up(t, CAUGHT_UP_TIMEOUT))
		return false;
	const char *holder = "SELECT coalesce((SELECT active_pid::text FROM pg_replication_slots WHERE slot_name = $1 AND active), '')";
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
	if (!sql(t, "CREATE FUNCTION it_slow_progress() RETURNS trigger LANGUAGE plpgsql AS "
		    "$$ BEGIN PERFORM pg_sleep(1); RETURN NEW; END $$") ||
	    !sql(t, "CREATE TRIGGER it_slow_progress BEFORE UPDATE ON walcount.progress FOR EACH ROW "
		    "EXECUTE FUNCTION it_slow_progress()"))
		return false;
	bool ok = true;
	enum { ROUNDS = 16 };
	const char *in_flight = "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND application_name = "
				"'walcount' AND backend_type = 'client backend' AND wait_event = 'PgSleep')";
	/* walcount.progress must only move forward: a step back means two
	 * writers overwrote each other's position. */
	char back[160] = "";
	lsn_t highest = 0;
	for (int i = 0; ok && i < ROUNDS; i++) {
		ok = run_changes(t, rng_between(&t->rng, 200, 800), false);
		int rc = ok ? it_poll(t->conn, in_flight, 1, params, 10, NULL, err, sizeof err) : 1;
		ok = ok && (rc >= 0 || fail_err(t, "watching the apply", err)) && terminate_walsender(t, false);
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
		return fail(t, "with two consumers on one slot, %ld count cells drifted after %d walsender kills (changes "
				   "applied twice and lost), e.g. %s; the slot was streamed %d times by the first, %d by the second",
			    drift, ROUNDS, examples, a_streams, b_streams);
	/* A rebuild recounts everything, which hides the drift above: with
	 * nothing lost or advanced behind walcount's back, there must be none. */
	int rebuilds = count_in_log(t, "rebuild:");
	if ((btext = it_read_file(b.log, NULL, err, sizeof err)) != NULL)
		rebuilds += count_in(btext, "rebuild:");
	free(btext);
	if (rebuilds > 0 || *back)
		return fail(t, "with two consumers on one slot, walcount.progress went backwards (%s) and the consumers "
				   "rebuilt the slot %d times (drop, new slot, full initial load), each hiding what the other "
				   "applied twice",
			    *back ? back : "not seen by the samples", rebuilds);
	if (!a_alive)
		return fail(t, "the first consumer exited (%s) while both ran", it_status_text(t->wc.status, st, sizeof st));
	if (!sql(t, "DROP TRIGGER it_slow_progress ON walcount.progress") || !run_changes(t, 1000, false) ||
	    !caught_up(t, CAUGHT_UP_TIMEOUT) || !drift_zero(t))
		return false;
	snprintf(t->details, sizeof t->details,
		 "second run stood by after %.1f s naming the holder's PID; then both ran through %d walsender kills: "
		 "the slot was streamed %d times by the first, %d by the second (%s); drift 0",
		 waited, ROUNDS, a_streams, b_streams, b_alive ? "alive throughout" : "it had exited");
	return true;
}

/* ---- 6. a role without REPLICATION ---- */

bool test_bi_no_replication(struct ctx *t)
{
	char slot[80], cfg[PATH_MAX], dsn[256], want[256];
	const char *argv[] = {IT.bin, "run", "--config", cfg, NULL};
	bool exists = true;

	snprintf(slot, sizeof slot, "%s_b", t->db);
	snprintf(cfg, sizeof cfg, "%s/bi-norepl.yaml", IT.tmp);
	snprintf(dsn, sizeof dsn, "host=%s port=%s dbname=%s user=it_norepl", IT.host, IT.port, t->db);
	if (!configure(t, &(struct wc_opts){0}) || !start_streaming(t) || !run_changes(t, 1000, false) ||
	    !sql(t, "DROP ROLE IF EXISTS it_norepl") || !sql(t, "CREATE ROLE it_norepl LOGIN NOREPLICATION") ||
	    !write_config(t, cfg, dsn, slot, NULL))
		return false;
	snprintf(want, sizeof want, " error role it_norepl lacks the REPLICATION attribute; fix: ALTER ROLE it_norepl REPLICATION;\n");
	bool ok = refused(t, "bi-norepl", argv, want, 1) && slot_exists(t, slot, &exists) &&
		  (!exists || fail(t, "a slot was created for the refused role"));
	ok = ok && run_changes(t, 1000, false) && caught_up(t, CAUGHT_UP_TIMEOUT) && drift_zero(t);
	drop_slot(t, slot);
	ok = sql(t, "DROP ROLE IF EXISTS it_norepl") && ok;
	if (ok)
		snprintf(t->details, sizeof t->details,
			 "refused with \"role it_norepl lacks the REPLICATION attribute; fix: ALTER ROLE it_norepl REPLICATION;\", "
			 "no slot; the running consumer stayed exact (drift 0)");
	return ok;
}

/* ---- 7. a repost_type value added to the enum ---- */

/* 'remix' is no type walcount knows: the change is skipped, logged with
 * its LSN and counted in walcount_skipped_changes_total{reason=
 * "unknown_type"}, and every other change is counted. The skip includes
 * the user's repost_count (which counts reposts of every type): that one
 * cell is the only difference, and it disappears when the remix repost is
 * deleted again (also skipped). */
bool test_bi_enum_value(struct ctx *t)
{
	char listen[32], examples[1024], line[512], want[256];
	int port = free_port(t);
	lsn_t l0, l1, at = 0;

	snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
	if (port == 0 || !configure(t, &(struct wc_opts){.metrics_listen = listen}) || !start_streaming(t) || !run_changes(t, 1000, false) ||
	    !caught_up(t, CAUGHT_UP_TIMEOUT) || !sql(t, "ALTER TYPE reposttype ADD VALUE 'remix'") || !current_lsn(t, &l0) ||
	    !sql(t, "INSERT INTO reposts (user_id, repost_item_id, repost_type, is_current, is_delete, txhash) "
		    "VALUES (4401, 4401, 'remix', true, false, 'remix')") ||
	    !current_lsn(t, &l1) || !run_changes(t, 1000, false) || !caught_up(t, CAUGHT_UP_TIMEOUT))
		return false;
	char *text = read_log(t);
	bool found = lsn_after(text, " warn  skipped insert change of reposts at ", ": unknown_type", &at);
	char l[LSN_BUFLEN];
	snprintf(want, sizeof want, "skipped insert change of reposts at %s: unknown_type (counted in walcount_skipped_changes_total)",
		 lsn_format(at, l));
	found = found && strstr(text, log_line(line, sizeof line, "warn", want)) != NULL;
	free(text);
	if (!found)
		return fail(t, "no exact line \"warn  skipped insert change of reposts at L: unknown_type (counted in "
			       "walcount_skipped_changes_total)\"");
	if (at < l0 || at >= l1)
		return fail(t, "the skip names LSN %s, not the remix insert's (between %" PRIX64 " and %" PRIX64 ")", l, l0, l1);
	if (!metric_is(t, port, "walcount_skipped_changes_total{reason=\"unknown_type\"}", 1))
		return false;
	long n = drift_cells(t, examples, sizeof examples);
	if (n < 0)
		return false;
	if (n != 1 || strcmp(examples, "aggregate_user[4401].repost_count expected 1 actual 0") != 0)
		return fail(t, "want exactly the remix user's repost_count uncounted, drift is %ld cells: %s", n, examples);
	if (!sql(t, "DELETE FROM reposts WHERE txhash = 'remix'") || !run_changes(t, 500, false) ||
	    !caught_up(t, CAUGHT_UP_TIMEOUT) ||
	    !metric_is(t, port, "walcount_skipped_changes_total{reason=\"unknown_type\"}", 2) || !drift_zero(t))
		return false;
	if (!wc_alive(&t->wc))
		return fail(t, "walcount exited after the unknown type");
	snprintf(t->details, sizeof t->details,
		 "\"%s\", unknown_type counter 1 then 2 after its delete; all other counts exact; the remix user's "
		 "repost_count alone stayed uncounted until the delete",
		 want);
	return true;
}

/* ---- 8. NULL is_delete ---- */

/* A change with a NULL is_delete is logged with its LSN and counted
 * (null_flag); that image counts as not active, as in the recount, so an
 * UPDATE from NULL to false adds its +1 and one from false to NULL takes
 * its -1. */
bool test_bi_null_is_delete(struct ctx *t)
{
	char listen[32], examples[1024], line[512], want[256], l[LSN_BUFLEN];
	int port = free_port(t);
	lsn_t l0, l1, at = 0;

	snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
	if (port == 0 || !configure(t, &(struct wc_opts){.metrics_listen = listen}) ||
	    !sql(t, "ALTER TABLE reposts ALTER COLUMN is_delete DROP NOT NULL") || !start_streaming(t) ||
	    !run_changes(t, 1000, false) || !current_lsn(t, &l0) ||
	    !sql(t, "INSERT INTO reposts (user_id, repost_item_id, repost_type, is_current, is_delete, txhash) "
		    "VALUES (4501, 4501, 'track', true, NULL, 'null')") ||
	    !current_lsn(t, &l1) || !run_changes(t, 500, false) || !caught_up(t, CAUGHT_UP_TIMEOUT))
		return false;
	char *text = read_log(t);
	bool found = lsn_after(text, " warn  insert change of reposts at ", " has a NULL is_current or is_delete", &at);
	snprintf(want, sizeof want,
		 "insert change of reposts at %s has a NULL is_current or is_delete: counted as not active (null_flag in "
		 "walcount_skipped_changes_total)",
		 lsn_format(at, l));
	found = found && strstr(text, log_line(line, sizeof line, "warn", want)) != NULL;
	free(text);
	if (!found)
		return fail(t, "no exact line \"warn  insert change of reposts at L has a NULL is_current or is_delete: "
			       "counted as not active (null_flag in walcount_skipped_changes_total)\"");
	if (at < l0 || at >= l1)
		return fail(t, "the skip names LSN %s, not the NULL insert's", l);
	if (!metric_is(t, port, "walcount_skipped_changes_total{reason=\"null_flag\"}", 1) || !drift_zero(t))
		return false;
	/* NULL -> false: the repost becomes active. */
	if (!sql(t, "UPDATE reposts SET is_delete = false WHERE txhash = 'null'") || !run_changes(t, 500, false) ||
	    !caught_up(t, CAUGHT_UP_TIMEOUT) || !metric_is(t, port, "walcount_skipped_changes_total{reason=\"null_flag\"}", 2))
		return false;
	long n = drift_cells(t, examples, sizeof examples);
	if (n < 0)
		return false;
	if (n > 0)
		return fail(t, "UPDATE is_delete NULL -> false (the repost became active): its +1 lost: "
				   "%ld cells drift: %s",
			    n, examples);
	/* false -> NULL: no longer active. */
	if (!sql(t, "UPDATE reposts SET is_delete = NULL WHERE txhash = 'null'") || !run_changes(t, 500, false) ||
	    !caught_up(t, CAUGHT_UP_TIMEOUT))
		return false;
	if ((n = drift_cells(t, examples, sizeof examples)) != 0)
		return n < 0 ? false
			     : fail(t, "UPDATE is_delete false -> NULL (no longer active): its -1 lost: "
					   "%ld cells drift: %s",
				    n, examples);
	snprintf(t->details, sizeof t->details, "\"%s\", null_flag counter; NULL <-> false transitions counted; drift 0", want);
	return true;
}

/* ---- 9. integer overflow of a count ---- */

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
	    !sql(t, "INSERT INTO reposts (user_id, repost_item_id, repost_type, is_current, is_delete, txhash) "
		    "VALUES (4601, 4601, 'track', true, false, 'ovf-1')") ||
	    !caught_up(t, CAUGHT_UP_TIMEOUT) || !drift_zero(t))
		return false;
	if (!sql(t, "UPDATE aggregate_track SET repost_count = 2147483647 WHERE track_id = 4601") || !current_lsn(t, &before) ||
	    !sql(t, "INSERT INTO reposts (user_id, repost_item_id, repost_type, is_current, is_delete, txhash) "
		    "VALUES (4602, 4601, 'track', true, false, 'ovf-2')") ||
	    !sql(t, "INSERT INTO follows (follower_user_id, followee_user_id, is_current, is_delete, txhash) "
		    "VALUES (4603, 4604, true, false, 'after-ovf')"))
		return false;
	double t0 = it_now();
	/* Retried, not given up on: the third failure of the same batch. */
	if (!wait_log(t, log_line(line, sizeof line, "warn", msg), 3, 30))
		return false;
	double window = it_now() - t0;
	int retries = count_in_log(t, msg);
	if (!wc_alive(&t->wc))
		return fail(t, "walcount exited on the overflow");
	if (!progress_lsn(t, &applied))
		return false;
	if (applied > before)
		return fail(t, "walcount.progress moved past the transaction it could not apply");
	if (!it_value(t->conn, "SELECT coalesce((SELECT follower_count FROM aggregate_user WHERE user_id = 4604), 0)", 0, NULL,
		      v, sizeof v, err, sizeof err))
		return fail_err(t, "reading aggregate_user", err);
	bool stalled = strcmp(v, "0") == 0;
	/* The operator's fix: the cell back to its true count. */
	if (!sql(t, "UPDATE aggregate_track SET repost_count = 1 WHERE track_id = 4601") || !run_changes(t, 1000, false) ||
	    !caught_up(t, CAUGHT_UP_TIMEOUT) || !drift_zero(t))
		return false;
	snprintf(t->details, sizeof t->details,
		 "\"%s\" %d times in %.1f s (retried with backoff); %s; nothing lost: after the cell was "
		 "corrected drift 0",
		 msg, retries, window,
		 stalled ? "the whole stream stalled meanwhile (a later follows change waited)" : "other changes went on");
	return true;
}

/* ---- 10. a DSN to a server that is down ---- */

/* scripts/pg-local.sh CMD, 90 s at most; how long it took into *secs. */
static bool pg_local(struct ctx *t, const char *cmd, double *secs)
{
	const char *argv[] = {"/bin/sh", "scripts/pg-local.sh", cmd, IT.pgdir, IT.port, NULL};
	char log[PATH_MAX], err[IT_ERRLEN], st[32];
	int status;

	snprintf(log, sizeof log, "%s/bi-pg-%s.log", IT.tmp, cmd);
	int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return fail(t, "%s: %s", log, strerror(errno));
	double t0 = it_now();
	pid_t pid = it_spawn(argv, fd, fd, err, sizeof err);
	close(fd);
	if (pid < 0)
		return fail_err(t, "pg-local.sh", err);
	if (!it_reap(pid, 90, &status, NULL)) {
		kill(pid, SIGKILL);
		it_reap(pid, 10, &status, NULL);
		return fail(t, "pg-local.sh %s took over 90 s (see %s)", cmd, log);
	}
	*secs = it_now() - t0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return fail(t, "pg-local.sh %s: %s (see %s)", cmd, it_status_text(status, st, sizeof st), log);
	return true;
}

/* The delays of the "stream: reconnect attempt N in D ms" lines after the
 * first line holding `from`; how many into *n. */
static int reconnect_delays(const char *text, const char *from, long *delays, int max)
{
	const char *p = strstr(text, from);
	int n = 0;

	for (; p && n < max && (p = strstr(p, "stream: reconnect attempt ")) != NULL; p++) {
		long attempt, ms;
		if (sscanf(p, "stream: reconnect attempt %ld in %ld ms", &attempt, &ms) == 2)
			delays[n++] = ms;
	}
	return n;
}

/* Polls the log until, after the line holding `from`, a reconnect delay
 * has reached reconnect_max (2 s) after at least 5 attempts: the outage
 * has shown the whole backoff. */
static bool wait_backoff_max(struct ctx *t, const char *from)
{
	long delays[64];
	int n = 0;

	for (double end = it_now() + 60;; it_sleep_ms(50)) {
		char *text = read_log(t);
		n = reconnect_delays(text, from, delays, 64);
		free(text);
		if (n >= 5 && delays[n - 1] == 2000)
			return true;
		if (it_now() >= end)
			return fail(t, "within 60 s of the server stopping: %d reconnect attempts logged, the last delay %ld ms, "
				       "want at least 5 and one of 2000 ms",
				    n, n > 0 ? delays[n - 1] : 0);
	}
}

/* The server goes down under a running walcount until its reconnect
 * delay has reached reconnect_max: it keeps trying
 * with delays doubling from reconnect_min (100 ms) to reconnect_max (2 s),
 * then catches up exactly. The fast shutdown must not wait on walcount:
 * the server ends the idle apply connection first, and walcount then drops
 * its stream, which its walsender was waiting on. `run` against a server
 * that is down retries stream.connect_attempts times with the backoff in
 * the log, then exits 1. */
bool test_bi_server_down(struct ctx *t)
{
	char cfg[PATH_MAX], dsn[256], st[32], err[IT_ERRLEN], bugs[1536] = "";
	long delays[64];
	double stop_s, start_s;

	if (!configure(t, &(struct wc_opts){.heartbeat = "20s"}) || !start_streaming(t) || !run_changes(t, 1000, false) ||
	    !caught_up(t, CAUGHT_UP_TIMEOUT))
		return false;
	pid_t pid = t->wc.pid;
	FILE *f = fopen(t->wc.log, "a");
	if (f != NULL) /* the reconnect lines are read from here on */
		fputs("--- it: server stopped ---\n", f), fclose(f);
	if (!pg_local(t, "stop", &stop_s) || !wait_backoff_max(t, "--- it: server stopped ---"))
		return false;
	if (!pg_local(t, "start", &start_s))
		return false;
	if (!it_reconnect(&t->conn, t->db, 60, err, sizeof err))
		return fail_err(t, "reconnecting after the outage", err);
	if (!run_changes(t, 1000, false) || !caught_up(t, CAUGHT_UP_TIMEOUT) || !drift_zero(t))
		return false;
	if (!wc_alive(&t->wc) || t->wc.pid != pid)
		return fail(t, "walcount did not survive the outage (%s)", it_status_text(t->wc.status, st, sizeof st));
	char *text = read_log(t);
	int n = reconnect_delays(text, "--- it: server stopped ---", delays, 64);
	int unreachable = count_in(strstr(text, "--- it: server stopped ---"), "cannot connect to \"");
	free(text);
	if (n < 5)
		return fail(t, "only %d reconnect attempts logged during the outage", n);
	for (int i = 0; i < n; i++) {
		long want = i == 0 ? 100 : delays[i - 1] * 2 > 2000 ? 2000 : delays[i - 1] * 2;
		if (delays[i] != want)
			return fail(t, "reconnect delay %d is %ld ms, want %ld (doubling from 100 ms to 2000 ms)", i + 1, delays[i],
				    want);
	}
	if (delays[n - 1] != 2000)
		return fail(t, "the reconnect delay never reached reconnect_max (last %ld ms)", delays[n - 1]);
	if (unreachable == 0)
		return fail(t, "no \"cannot connect to\" reason logged during the outage");
	if (stop_s > 10)
		snprintf(bugs, sizeof bugs,
			 "a fast shutdown of the server took %.1f s with walcount attached (its walsender waited for walcount to "
			 "confirm the WAL end until walcount's next heartbeat failed), want < 10 s; ",
			 stop_s);

	/* Starting against a server that is down. */
	int port = closed_port();
	snprintf(cfg, sizeof cfg, "%s/bi-down.yaml", IT.tmp);
	snprintf(dsn, sizeof dsn, "host=127.0.0.1 port=%d dbname=%s user=postgres password=it-secret-pw", port, t->db);
	if (!write_config(t, cfg, dsn, "it_bi_down", NULL))
		return false;
	const char *argv[] = {IT.bin, "run", "--config", cfg, NULL};
	char *out = NULL, *errtext = NULL;
	int status;
	double t0 = it_now();
	if (!run_program(t, "bi-down-start", argv, &status, &out, &errtext))
		return false;
	double took = it_now() - t0;
	int attempts = count_in(errtext, "cannot connect to \"");
	bool masked = strstr(errtext, "password=***") != NULL && strstr(errtext, "it-secret-pw") == NULL &&
		      strstr(out, "it-secret-pw") == NULL;
	bool nonzero = WIFEXITED(status) && WEXITSTATUS(status) != 0;
	char first[300];
	snprintf(first, sizeof first, "%.*s", (int) strcspn(errtext, "\n"), errtext);
	free(out);
	free(errtext);
	if (!masked)
		return fail(t, "the password was not masked: %s", first);
	if (!nonzero)
		return fail(t, "run against a down server ended with %s, want a non-zero exit",
			    it_status_text(status, st, sizeof st));
	if (attempts < 3) {
		size_t used = strlen(bugs);
		snprintf(bugs + used, sizeof bugs - used,
			 "run against a server that is down made %d connection attempt(s) in %.1f s and exited, want bounded "
			 "retries with backoff in the log: %.200s",
			 attempts, took, first);
	}
	if (*bugs)
		return fail(t, "%s", bugs);
	snprintf(t->details, sizeof t->details,
		 "fast shutdown %.1f s; outage until the backoff peaked: %d reconnect attempts doubling 100 ms -> 2000 ms, caught up, drift 0; "
		 "start against a down server: %d attempts in %.1f s, then exit %d, password masked",
		 stop_s, n, attempts, took, WEXITSTATUS(status));
	return true;
}

/* ---- 11. config file missing / unreadable / not YAML / wrong types ---- */

struct config_case {
	const char *name;
	const char *text; /* NULL: no file */
	size_t len;       /* 0: strlen(text) */
	const char *want; /* after "walcount: PATH" */
};

static const struct config_case CONFIG_CASES[] = {
	{"missing", NULL, 0, ": cannot read: No such file or directory"},
	{"not-yaml-flow", "database: [unclosed\n", 0, ":2:1: did not find expected ',' or ']' (while parsing a flow sequence at 1:11)"},
	{"not-yaml-binary", "\x89PNG\r\n\x1a\n\0\0", 10, ":1:1: invalid leading UTF-8 octet"},
	{"not-yaml-scalar", "just a string\n", 0, ":1:1: the top level must be a mapping"},
	{"wrong-int", "batch:\n  max_changes: lots\n", 0, ":2:16: batch.max_changes: bad integer 'lots'"},
	{"wrong-bool", "slot:\n  temporary: maybe\n", 0, ":2:14: slot.temporary: bad boolean 'maybe' (use true or false)"},
	{"wrong-section", "database: 5\n", 0, ":1:11: database must be a mapping"},
	{"wrong-sequence", "batch:\n  max_delay: [1, 2]\n", 0, ":2:14: batch.max_delay must be a duration, not a sequence"},
	{"wrong-enum", "log:\n  level: loud\n", 0, ":2:10: log.level: bad value 'loud' (use error, warn, info or debug)"},
	{"wrong-duration", "batch:\n  max_delay: 5\n", 0, ":2:14: batch.max_delay: bad duration '5' (use ms, s, m or h)"},
	{"unknown-key", "batch:\n  max_change: 5\n", 0, ":2:3: unknown key 'batch.max_change'"},
};

/* Each case: exit 1, nothing on stdout, exactly "walcount: PATH<want>" on
 * stderr, nothing connected or written; meanwhile the running consumer
 * stays exact. Unreadable: mode 000, run as nobody when root (root reads
 * anything), and a directory. A wrong type from the environment too. */
bool test_bi_config_file(struct ctx *t)
{
	char dir[PATH_MAX], path[PATH_MAX + 64], want[PATH_MAX + 256];
	const char *argv[] = {IT.bin, "run", "--config", path, NULL};
	int cases = 0;

	snprintf(dir, sizeof dir, "%s/bi-config", IT.tmp);
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return fail(t, "mkdir %s: %s", dir, strerror(errno));
	if (!configure(t, &(struct wc_opts){0}) || !start_streaming(t))
		return false;
	for (size_t i = 0; i < sizeof CONFIG_CASES / sizeof CONFIG_CASES[0]; i++) {
		const struct config_case *c = &CONFIG_CASES[i];
		char label[64];
		snprintf(path, sizeof path, "%s/%s.yaml", dir, c->name);
		unlink(path);
		if (c->text && !write_bytes(t, path, c->text, c->len ? c->len : strlen(c->text)))
			return false;
		snprintf(want, sizeof want, "walcount: %s%s\n", path, c->want);
		snprintf(label, sizeof label, "bi-config-%s", c->name);
		if (!refused(t, label, argv, want, 1) || !run_changes(t, 200, false))
			return false;
		cases++;
	}
	/* A directory. */
	snprintf(path, sizeof path, "%s", dir);
	snprintf(want, sizeof want, "walcount: %s: cannot read: Is a directory\n", dir);
	if (!refused(t, "bi-config-directory", argv, want, 1))
		return false;
	cases++;
	/* Unreadable. */
	snprintf(path, sizeof path, "%s/unreadable.yaml", dir);
	if (!write_bytes(t, path, "log:\n  level: info\n", 19) || chmod(path, 0) != 0)
		return fail(t, "chmod %s: %s", path, strerror(errno));
	snprintf(want, sizeof want, "walcount: %s: cannot read: Permission denied\n", path);
	const char *as_nobody[] = {RUNUSER_PATH, "-u", "nobody", "--", IT.bin, "run", "--config", path, NULL};
	if (!refused(t, "bi-config-unreadable", geteuid() == 0 ? as_nobody : argv, want, 1))
		return false;
	cases++;
	/* A wrong type from the environment (it_spawn clears WALCOUNT_*; env
	 * sets it again for walcount alone). */
	char good[PATH_MAX];
	snprintf(good, sizeof good, "%s", t->wc.config);
	const char *with_env[] = {"/usr/bin/env", "WALCOUNT_BATCH_MAX_CHANGES=many", IT.bin, "run", "--config", good, NULL};
	if (!refused(t, "bi-config-env", with_env,
		     "walcount: WALCOUNT_BATCH_MAX_CHANGES: batch.max_changes: bad integer 'many'\n", 1))
		return false;
	cases++;
	bool exists = true;
	if (!slot_exists(t, "walcount", &exists) || (exists && !fail(t, "a refused config created slot \"walcount\"")))
		return false;
	if (!caught_up(t, CAUGHT_UP_TIMEOUT) || !drift_zero(t))
		return false;
	snprintf(t->details, sizeof t->details,
		 "%d cases (missing, directory, unreadable, 3 not YAML, 6 wrong types or keys, env): exit 1 with the exact "
		 "one-line message each; the running consumer stayed exact (drift 0)",
		 cases);
	return true;
}
