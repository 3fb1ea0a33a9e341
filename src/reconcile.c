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
#include "log.h"
#include "pgarray.h"
#include "sqlfiles.h"
#include "strbuf.h"
#include "xalloc.h"

/* One correcting transaction: table t, keys lo..hi. */
struct chunk {
	enum agg_table t;
	int64_t lo, hi;
};

/* The snapshot as 32-bit xids, the width wal2json reports. */
struct snap {
	uint32_t xmin, xmax;
	uint32_t *xip;
	size_t nxip;
};

struct sweep {
	PGconn *conn;
	bool dry_run;
	int64_t chunk_rows;
	enum sweep_state state;
	struct snap snap;
	lsn_t taken_at;       /* WAL insert position right after S */
	struct batch *unseen; /* net deltas the stream applied that S did not see */
	struct chunk *chunks;
	size_t nchunks, next;
	int64_t started_ms;
	struct sweep_result result;
};

/* Per table, the correcting statement: its delta arrays and its per-column
 * counts follow the table's columns in counters.h's order. */
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

struct sweep *sweep_begin(const struct config *cfg, bool dry_run, const uint64_t *recent, size_t n, bool *retry, char *err,
			  size_t errlen)
{
	struct sweep *s = xcalloc(1, sizeof *s);

	*retry = false;
	s->unseen = batch_new();
	s->dry_run = dry_run;
	s->chunk_rows = cfg->reconcile_chunk_rows;
	s->started_ms = clock_now_ms();
	s->conn = db_connect(cfg, DB_NORMAL, err, errlen);
	bool ok = s->conn != NULL && take_snapshot(s, err, errlen);
	if (ok && recent_unseen(s, recent, n)) {
		*retry = true;
		ok = false;
	}
	if (ok && !PQsendQuery(s->conn, sql_recount)) {
		snprintf(err, errlen, "reconcile: sending the recount: %s", PQerrorMessage(s->conn));
		ok = false;
	}
	if (!ok) {
		sweep_free(s);
		return NULL;
	}
	s->state = SWEEP_RECOUNTING;
	return s;
}

bool sweep_note(struct sweep *s, const struct delta *d, size_t n)
{
	if (batch_add(s->unseen, d, n))
		return true;
	s->state = SWEEP_FAILED;
	return false;
}

static enum sweep_state failed(struct sweep *s)
{
	s->state = SWEEP_FAILED;
	return s->state;
}

/* Reads the chunk key ranges, chunk_rows recounted keys each; together
 * they cover every key of a table, also those the recount lacks (see
 * sql/reconcile_chunks.sql). */
static bool plan_chunks(struct sweep *s, char *err, size_t errlen)
{
	char rows[24];
	const char *params[1] = {rows};

	snprintf(rows, sizeof rows, "%" PRId64, s->chunk_rows);
	PGresult *res = db_exec_params(s->conn, "planning reconcile chunks", sql_reconcile_chunks, 1, params, err, errlen);
	if (res == NULL)
		return false;
	s->nchunks = (size_t) PQntuples(res);
	s->chunks = xcalloc(s->nchunks, sizeof *s->chunks);
	for (size_t i = 0; i < s->nchunks; i++)
		s->chunks[i] = (struct chunk){(enum agg_table) atoi(PQgetvalue(res, (int) i, 0)),
					      strtoll(PQgetvalue(res, (int) i, 1), NULL, 10),
					      strtoll(PQgetvalue(res, (int) i, 2), NULL, 10)};
	PQclear(res);
	return true;
}

/* Once the recount's results are all in: ends its transaction and plans
 * the chunks. */
static enum sweep_state poll_recount(struct sweep *s, char *err, size_t errlen)
{
	enum db_async st = db_collect(s->conn, "reconcile recount", false, NULL, err, errlen);

	if (st == DB_BUSY)
		return s->state;
	if (st == DB_FAILED || !db_command(s->conn, "ending reconcile recount", "COMMIT", err, errlen) ||
	    !plan_chunks(s, err, errlen))
		return failed(s);
	s->state = SWEEP_WAITING;
	return s->state;
}

enum sweep_state sweep_poll(struct sweep *s, lsn_t applied, char *err, size_t errlen)
{
	if (s->state == SWEEP_RECOUNTING)
		poll_recount(s, err, errlen);
	if (s->state == SWEEP_WAITING && applied >= s->taken_at)
		s->state = SWEEP_CORRECTING;
	return s->state;
}

/* The noted deltas of keys lo..hi of table t, as array literals: ids,
 * then one array per stream column. False when out of memory: they grow
 * with what is written during the sweep, so that fails the sweep, not the
 * process. */
static bool chunk_deltas(const struct sweep *s, const struct chunk *c, struct strbuf *arrays)
{
	size_t n, first = 0, end;
	struct batch_row *rows = batch_rows(s->unseen, c->t, &n);

	if (rows == NULL && n != 0)
		return false;
	while (first < n && rows[first].key < c->lo)
		first++;
	for (end = first; end < n && rows[end].key <= c->hi; end++)
		;
	bool ok = pgarray_table(arrays, c->t, rows + first, end - first, false);
	free(rows);
	return ok;
}

static void add_counts(struct sweep *s, enum agg_table t, PGresult *res)
{
	s->result.checked += strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	s->result.corrected += strtoull(PQgetvalue(res, 0, 1), NULL, 10);
	for (int i = 0; i < agg_swept_columns(t); i++)
		s->result.cells[agg_column_at(t, i)] += strtoull(PQgetvalue(res, 0, 2 + i), NULL, 10);
}

enum sweep_state sweep_step(struct sweep *s, char *err, size_t errlen)
{
	struct strbuf arrays[1 + AGG_MAX_COLUMNS] = {{0}};
	const struct chunk *c = &s->chunks[s->next];
	char lo[24], hi[24];
	const char *params[4 + AGG_MAX_COLUMNS] = {lo, hi, s->dry_run ? "true" : "false"};

	if (s->state != SWEEP_CORRECTING)
		return s->state;
	if (s->next == s->nchunks) {
		s->result.duration_ms = clock_now_ms() - s->started_ms;
		s->state = SWEEP_DONE;
		return s->state;
	}
	snprintf(lo, sizeof lo, "%" PRId64, c->lo);
	snprintf(hi, sizeof hi, "%" PRId64, c->hi);
	int deltas = agg_stream_columns(c->t);
	bool ok = chunk_deltas(s, c, arrays);
	for (int i = 0; ok && i <= deltas; i++)
		params[3 + i] = strbuf_str(&arrays[i]);
	PGresult *res = ok ? db_exec_params(s->conn, "reconcile", correct_sql[c->t], 4 + deltas, params, err, errlen) : NULL;
	if (!ok)
		snprintf(err, errlen, "reconcile: out of memory");
	if (res != NULL)
		add_counts(s, c->t, res), s->next++;
	PQclear(res);
	for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++)
		strbuf_free(&arrays[i]);
	return res != NULL ? s->state : failed(s);
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
	free(s->chunks);
	free(s);
}
