#include "reconcile.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "batch.h"
#include "clock.h"
#include "db.h"
#include "keyset.h"
#include "log.h"
#include "pgarray.h"
#include "sqlfiles.h"
#include "sqlscript.h"
#include "stepsize.h"
#include "strbuf.h"
#include "xalloc.h"

/* A table's parameters: its delta arrays (keys, then one per stream
 * column). */
#define DELTA_ARRAYS (1 + AGG_MAX_COLUMNS)

/* The snapshot as 32-bit xids, the width wal2json reports. */
struct snap {
	uint32_t xmin, xmax;
	uint32_t *xip;
	size_t nxip;
};

struct sweep {
	PGconn *conn;
	bool dry_run;
	int64_t chunk_time_ms;
	enum sweep_state state;
	struct snap snap;
	lsn_t taken_at;       /* WAL insert position right after S */
	struct batch *unseen; /* net deltas the stream applied that S did not see */
	/* RECOUNTING: the script in flight (recount_steps) and the rest of it
	 * (sqlscript.h); COMPARING: the table compared. */
	int phase;
	const char *script;
	struct strbuf d0[AGG__COUNT][DELTA_ARRAYS]; /* the noted deltas at the mark */
	struct keyset cand[AGG__COUNT];             /* sealed once the compare is in */
	enum agg_table table;                       /* CORRECTING: the next candidate */
	size_t next;
	struct stepsize size;
	bool prepared; /* the session's settings for the steps are made */
	int64_t started_ms;
	int64_t pause_us; /* the last call's wait, -1 when it did not make one */
	struct sweep_result result;
};

/* What runs on the sweep's connection before the compare, one after the
 * other, without the stream waiting for any of them: the recount in S, and
 * the stage after S's transaction ends. The stage needs no part of S, and
 * every second a snapshot stays open keeps the server from pruning the old
 * versions of the hot aggregate rows the stream updates meanwhile. */
static const struct {
	const char *what;
	const char *sql;
} recount_steps[] = {
	{"reconcile recount", sql_recount},
	{"ending reconcile recount", "COMMIT"},
	{"reconcile stage", sql_reconcile_stage},
};

/* Per table, the compare and correcting statement: its delta arrays and
 * its per-column counts follow the table's columns in counters.h's order. */
static const char *const correct_sql[AGG__COUNT] = {
	[AGG_USER] = sql_reconcile_user,
	[AGG_TRACK] = sql_reconcile_track,
	[AGG_PLAYLIST] = sql_reconcile_playlist,
};

/* TransactionIdPrecedes: xids compare modulo 2^32. */
static bool precedes(uint32_t a, uint32_t b)
{
	return (int32_t) (a - b) < 0;
}

bool sweep_saw(const struct sweep *s, uint64_t xid)
{
	uint32_t x = (uint32_t) xid;

	if (precedes(x, s->snap.xmin))
		return true;
	if (!precedes(x, s->snap.xmax))
		return false;
	for (size_t i = 0; i < s->snap.nxip; i++)
		if (s->snap.xip[i] == x)
			return false;
	return true;
}

/* Parses pg_current_snapshot()'s "xmin:xmax:xip,xip,..." (64-bit xids with
 * epoch) into 32-bit xids. */
static bool parse_snapshot(const char *text, struct snap *out)
{
	unsigned long long xmin, xmax;
	int n = 0;

	if (sscanf(text, "%llu:%llu:%n", &xmin, &xmax, &n) != 2)
		return false;
	out->xmin = (uint32_t) xmin;
	out->xmax = (uint32_t) xmax;
	const char *p = text + n;
	size_t cap = strlen(p) / 2 + 1;
	out->xip = xcalloc(cap, sizeof *out->xip);
	for (char *end; *p && out->nxip < cap; p = *end ? end + 1 : end)
		out->xip[out->nxip++] = (uint32_t) strtoull(p, &end, 10);
	return true;
}

/* BEGIN REPEATABLE READ and take S with the WAL position right after it:
 * every transaction S sees ends at or before that position. */
static bool take_snapshot(struct sweep *s, char *err, size_t errlen)
{
	if (!db_command(s->conn, "starting reconcile", "BEGIN ISOLATION LEVEL REPEATABLE READ", err, errlen))
		return false;
	PGresult *res = db_exec(s->conn, "reconcile snapshot",
				"SELECT pg_current_snapshot()::text, pg_current_wal_insert_lsn()::text", err, errlen);
	bool ok = res != NULL && parse_snapshot(PQgetvalue(res, 0, 0), &s->snap) &&
		  lsn_parse(PQgetvalue(res, 0, 1), &s->taken_at);
	if (res != NULL && !ok)
		snprintf(err, errlen, "reconcile: unreadable snapshot %s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return ok;
}

static bool recent_unseen(const struct sweep *s, const uint64_t *recent, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < s->snap.nxip; j++)
			if ((uint32_t) recent[i] == s->snap.xip[j])
				return true;
	return false;
}

static enum sweep_state failed(struct sweep *s)
{
	s->state = SWEEP_FAILED;
	return s->state;
}

/* Sends the next statement of the recount's scripts, one at a time
 * (sqlscript.h); after the last one's result the sweep waits for the
 * stream. False, with the sweep failed, when it cannot be sent. */
static bool send_recount(struct sweep *s, char *err, size_t errlen)
{
	for (char *stmt;;) {
		if ((stmt = sqlscript_next(&s->script)) != NULL) {
			int sent = PQsendQuery(s->conn, stmt);
			free(stmt);
			if (sent)
				return true;
			snprintf(err, errlen, "%s: sending: %s", recount_steps[s->phase].what, PQerrorMessage(s->conn));
			failed(s);
			return false;
		}
		if (++s->phase == (int) (sizeof recount_steps / sizeof recount_steps[0])) {
			s->state = SWEEP_WAITING;
			return true;
		}
		s->script = recount_steps[s->phase].sql;
	}
}

/* Adds the wait from t0 until now to the sweep's pauses. */
static void paused_since(struct sweep *s, int64_t t0)
{
	s->pause_us = clock_now_us() - t0;
	if (s->pause_us > s->result.longest_pause_us)
		s->result.longest_pause_us = s->pause_us;
}

struct sweep *sweep_begin(const struct config *cfg, bool dry_run, const uint64_t *recent, size_t n, bool *retry, char *err,
			  size_t errlen)
{
	int64_t t0 = clock_now_us();
	struct sweep *s = xcalloc(1, sizeof *s);

	*retry = false;
	s->pause_us = -1;
	s->unseen = batch_new();
	s->dry_run = dry_run;
	s->chunk_time_ms = cfg->reconcile_chunk_time_ms;
	stepsize_init(&s->size, cfg->reconcile_chunk_time_ms, cfg->reconcile_chunk_rows);
	s->started_ms = clock_now_ms();
	s->conn = db_connect(cfg, DB_NORMAL, err, errlen);
	bool ok = s->conn != NULL && take_snapshot(s, err, errlen);
	if (ok && recent_unseen(s, recent, n)) {
		*retry = true;
		ok = false;
	}
	s->state = SWEEP_RECOUNTING;
	s->script = recount_steps[0].sql;
	if (ok && !send_recount(s, err, errlen))
		ok = false;
	if (!ok) {
		sweep_free(s);
		return NULL;
	}
	paused_since(s, t0);
	return s;
}

bool sweep_note(struct sweep *s, const struct delta *d, size_t n)
{
	if (batch_add(s->unseen, d, n))
		return true;
	failed(s);
	return false;
}

/* Once a statement's result is in, sends the next one. */
static void poll_recount(struct sweep *s, char *err, size_t errlen)
{
	enum db_async st = db_collect(s->conn, recount_steps[s->phase].what, false, NULL, err, errlen);

	if (st == DB_FAILED)
		failed(s);
	else if (st == DB_DONE)
		send_recount(s, err, errlen);
}

/* The compare of table t: every key, nothing written, D0 as the deltas. */
static bool send_compare(struct sweep *s, enum agg_table t, char *err, size_t errlen)
{
	const char *params[2 + DELTA_ARRAYS] = {"true", NULL};
	int arrays = 1 + agg_stream_columns(t);

	for (int i = 0; i < arrays; i++)
		params[2 + i] = strbuf_str(&s->d0[t][i]);
	return db_send_params(s->conn, "reconcile compare", correct_sql[t], 2 + arrays, params, err, errlen);
}

static bool read_compare(struct sweep *s, enum agg_table t, PGresult *res, char *err, size_t errlen)
{
	const char *bad = NULL;

	if (PQntuples(res) != 1) {
		snprintf(err, errlen, "reconcile compare of %s: %d rows", agg_table_name(t), PQntuples(res));
		return false;
	}
	s->result.checked += strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	if (keyset_add_list(&s->cand[t], PQgetvalue(res, 0, 3 + agg_swept_columns(t)), &bad))
		return true;
	if (bad != NULL)
		snprintf(err, errlen, "reconcile compare of %s: unreadable key at '%.40s'", agg_table_name(t), bad);
	else
		snprintf(err, errlen, "reconcile: out of memory");
	return false;
}

static void start_correcting(struct sweep *s)
{
	for (int t = 0; t < AGG__COUNT; t++)
		keyset_seal(&s->cand[t]);
	s->table = 0;
	s->next = 0;
	s->state = SWEEP_CORRECTING;
}

/* Once a table's compare is in: its differing keys are candidates, and the
 * next table's compare is sent; after the last one, the end of the
 * compare's transaction. */
static bool next_compare(struct sweep *s, char *err, size_t errlen)
{
	PGresult *res = NULL;
	enum db_async st = db_collect(s->conn, "reconcile compare", false, &res, err, errlen);

	if (st == DB_BUSY)
		return true;
	int64_t t0 = clock_now_us();
	enum agg_table t = (enum agg_table) s->phase;
	bool ok = st == DB_DONE && read_compare(s, t, res, err, errlen);
	PQclear(res);
	for (int i = 0; i < DELTA_ARRAYS; i++)
		strbuf_free(&s->d0[t][i]);
	if (ok && ++s->phase < AGG__COUNT)
		ok = send_compare(s, (enum agg_table) s->phase, err, errlen);
	else if (ok && !PQsendQuery(s->conn, "COMMIT")) {
		snprintf(err, errlen, "ending reconcile compare: sending: %s", PQerrorMessage(s->conn));
		ok = false;
	}
	paused_since(s, t0);
	return ok;
}

static void poll_compare(struct sweep *s, char *err, size_t errlen)
{
	if (s->phase < AGG__COUNT) {
		if (!next_compare(s, err, errlen))
			failed(s);
		return;
	}
	enum db_async st = db_collect(s->conn, "ending reconcile compare", false, NULL, err, errlen);
	if (st == DB_DONE)
		start_correcting(s);
	else if (st == DB_FAILED)
		failed(s);
}

enum sweep_state sweep_poll(struct sweep *s, lsn_t applied, char *err, size_t errlen)
{
	if (s->state == SWEEP_RECOUNTING)
		poll_recount(s, err, errlen);
	if (s->state == SWEEP_WAITING && applied >= s->taken_at)
		s->state = SWEEP_CAUGHT_UP;
	if (s->state == SWEEP_COMPARING)
		poll_compare(s, err, errlen);
	return s->state;
}

/* The noted deltas as the statement's arrays: of every row of table t
 * (keys NULL), or of keys[0..nkeys) (sorted), each looked up, so a step
 * costs its own keys and not the whole noted set. False when out of
 * memory: they grow with what is written during the sweep, so that fails
 * the sweep, not the process. */
static bool delta_arrays(const struct sweep *s, enum agg_table t, const int64_t *keys, size_t nkeys, struct strbuf *arrays)
{
	size_t n = 0;
	struct batch_row *rows = keys == NULL ? batch_rows(s->unseen, t, &n) : malloc((nkeys ? nkeys : 1) * sizeof *rows);

	if (rows == NULL && (keys != NULL || n != 0))
		return false;
	for (size_t i = 0; keys != NULL && i < nkeys; i++)
		n += batch_find(s->unseen, t, keys[i], &rows[n]);
	bool ok = pgarray_table(arrays, t, rows, n, false);
	free(rows);
	return ok;
}

/* The mark: nothing is held or in flight, so the aggregates hold exactly
 * what the stream applied, and D0 is its noted deltas. The compare's
 * snapshot T is taken here, before the stream goes on: every key is
 * compared as it was at the mark, where recount + D0 is its right value. A
 * key right there stays right, since the stream applies and notes the same
 * deltas from then on, so only the keys that differ need a step. */
enum sweep_state sweep_compare(struct sweep *s, char *err, size_t errlen)
{
	int64_t t0 = clock_now_us();
	bool ok = true;

	if (s->state != SWEEP_CAUGHT_UP)
		return s->state;
	for (int t = 0; ok && t < AGG__COUNT; t++)
		ok = delta_arrays(s, (enum agg_table) t, NULL, 0, s->d0[t]);
	if (!ok)
		snprintf(err, errlen, "reconcile: out of memory");
	s->phase = 0;
	ok = ok &&
	     db_command(s->conn, "reconcile compare snapshot", "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1", err, errlen) &&
	     send_compare(s, AGG_USER, err, errlen);
	s->state = ok ? SWEEP_COMPARING : SWEEP_FAILED;
	paused_since(s, t0);
	return s->state;
}

/* Before the first correcting step, on the sweep's own connection, where
 * the recount and the compare are done:
 *  - the server cancels a step at twice reconcile.chunk_time, as it does a
 *    wait for a row lock another writer holds;
 *  - joins are nested loops over the primary keys. A step checks a few
 *    hundred or thousand keys, and the planner's choice at that size, a hash
 *    over each whole recount, stage and aggregate table, made the stream
 *    wait 8x longer: 30 ms against 4 ms for 512 keys on
 *    bench/reconcile.sh's data. */
static bool prepare_steps(struct sweep *s, char *err, size_t errlen)
{
	char ms[24];
	const char *params[1] = {ms};

	if (s->prepared)
		return true;
	snprintf(ms, sizeof ms, "%" PRId64, 2 * s->chunk_time_ms);
	s->prepared = true;
	return db_command_params(s->conn, "preparing reconcile steps",
				 "SELECT set_config('statement_timeout', $1, false), set_config('lock_timeout', $1, false), "
				 "set_config('enable_hashjoin', 'off', false), set_config('enable_mergejoin', 'off', false)",
				 1, params, err, errlen);
}

static void add_counts(struct sweep *s, enum agg_table t, PGresult *res)
{
	s->result.corrected += strtoull(PQgetvalue(res, 0, 1), NULL, 10);
	for (int i = 0; i < agg_swept_columns(t); i++)
		s->result.cells[agg_column_at(t, i)] += strtoull(PQgetvalue(res, 0, 2 + i), NULL, 10);
}

/* Checks and corrects keys[0..n) of table t. *cancelled: the server
 * cancelled it at the bound (nothing was written). */
static bool run_step(struct sweep *s, enum agg_table t, const int64_t *keys, size_t n, bool *cancelled, char *err, size_t errlen)
{
	struct strbuf arrays[DELTA_ARRAYS] = {{0}}, ids = {0};
	const char *params[2 + DELTA_ARRAYS] = {s->dry_run ? "true" : "false"};
	int nparams = 2 + 1 + agg_stream_columns(t);
	char code[6] = "";
	bool ok = pgarray_keys(&ids, keys, n) && delta_arrays(s, t, keys, n, arrays);

	params[1] = strbuf_str(&ids);
	for (int i = 0; ok && i < nparams - 2; i++)
		params[2 + i] = strbuf_str(&arrays[i]);
	PGresult *res = ok ? db_exec_params_code(s->conn, "reconcile", correct_sql[t], nparams, params, code, err, errlen) : NULL;
	if (!ok)
		snprintf(err, errlen, "reconcile: out of memory");
	/* Cancelled at the bound, given up on a row lock, or chosen as a
	 * deadlock's victim: each rolls the step back, a smaller one may pass. */
	*cancelled = strcmp(code, "57014") == 0 || strcmp(code, "55P03") == 0 || strcmp(code, "40P01") == 0;
	if (res != NULL)
		add_counts(s, t, res);
	PQclear(res);
	strbuf_free(&ids);
	for (int i = 0; i < DELTA_ARRAYS; i++)
		strbuf_free(&arrays[i]);
	return res != NULL;
}

/* After a cancelled step: retried smaller, after a wait at the floor; the
 * sweep fails once that has not helped (stepsize.h). */
static enum sweep_state cancelled_step(struct sweep *s, const int64_t *keys, size_t n, char *err, size_t errlen)
{
	char why[256];

	stepsize_timed_out(&s->size, clock_now_ms());
	if (!stepsize_exhausted(&s->size)) {
		log_debug("%s; retried with %" PRId64 " keys", err, s->size.n);
		return s->state;
	}
	snprintf(why, sizeof why, "%s", err);
	snprintf(err, errlen,
		 "reconcile: %d steps of %zu keys of %s (keys %" PRId64 "..%" PRId64 ") in a row were cancelled at %" PRId64
		 " ms, twice reconcile.chunk_time (%s): another session holds row locks on them, or the server needs a larger "
		 "reconcile.chunk_time",
		 STEPSIZE_ATTEMPTS, n, agg_table_name(s->table), keys[0], keys[n - 1], 2 * s->chunk_time_ms, why);
	return failed(s);
}

/* Moves to the next candidate; DONE when there is none. */
static enum sweep_state next_step(struct sweep *s)
{
	while (s->table < AGG__COUNT && s->next == s->cand[s->table].n) {
		s->table++;
		s->next = 0;
	}
	if (s->table == AGG__COUNT) {
		s->result.duration_ms = clock_now_ms() - s->started_ms;
		s->state = SWEEP_DONE;
	}
	return s->state;
}

bool sweep_step_ready(const struct sweep *s)
{
	return s->state == SWEEP_CORRECTING && stepsize_ready(&s->size, clock_now_ms());
}

enum sweep_state sweep_step(struct sweep *s, char *err, size_t errlen)
{
	bool cancelled = false;

	if (!sweep_step_ready(s) || next_step(s) == SWEEP_DONE)
		return s->state;
	const int64_t *keys = s->cand[s->table].key + s->next;
	size_t left = s->cand[s->table].n - s->next;
	size_t n = left < (size_t) s->size.n ? left : (size_t) s->size.n;
	int64_t t0 = clock_now_us();
	bool ok = prepare_steps(s, err, errlen) && run_step(s, s->table, keys, n, &cancelled, err, errlen);
	paused_since(s, t0);
	if (cancelled)
		return cancelled_step(s, keys, n, err, errlen);
	if (!ok)
		return failed(s);
	stepsize_done(&s->size, (int64_t) n, s->pause_us);
	s->next += n;
	return next_step(s);
}

bool sweep_take_pause(struct sweep *s, int64_t *us)
{
	if (s->pause_us < 0)
		return false;
	*us = s->pause_us;
	s->pause_us = -1;
	return true;
}

bool sweep_waiting(const struct sweep *s)
{
	return s->state == SWEEP_RECOUNTING || s->state == SWEEP_WAITING || s->state == SWEEP_CAUGHT_UP ||
	       s->state == SWEEP_COMPARING;
}

const struct sweep_result *sweep_result(const struct sweep *s)
{
	return &s->result;
}

void reconcile_describe(const struct sweep_result *r, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (int t = 0; t < AGG__COUNT; t++)
		for (int i = 0; i < agg_swept_columns((enum agg_table) t) && n < len; i++) {
			enum agg_column c = agg_column_at((enum agg_table) t, i);
			if (r->cells[c] > 0)
				n += (size_t) snprintf(buf + n, len - n, "%s%s.%s: %" PRIu64, n ? ", " : "",
						       agg_table_name((enum agg_table) t), agg_column_name(c), r->cells[c]);
		}
}

void sweep_free(struct sweep *s)
{
	if (s == NULL)
		return;
	PQfinish(s->conn);
	batch_free(s->unseen);
	free(s->snap.xip);
	for (int t = 0; t < AGG__COUNT; t++) {
		for (int i = 0; i < DELTA_ARRAYS; i++)
			strbuf_free(&s->d0[t][i]);
		keyset_free(&s->cand[t]);
	}
	free(s);
}
