/* reconcile_drift: drift injected while writers hammer hot keys is
 * corrected cell for cell by sweeps run in the middle of their traffic. */
#include <string.h>

#include "reconcile.h"

#define INJECTED_CELLS 40
#define HOT_CELLS 12    /* of them on the writers' hot keys, stream columns */
#define DRIFT_WORKERS 3 /* apply.workers of reconcile_drift_workers */

/* An aggregate column a test may damage. */
struct column {
	const char *name;
	bool stream; /* maintained by the stream (additive deltas) */
	bool nullable;
	bool text; /* dominant_genre */
};

static const struct table {
	const char *name, *key;
	long keys; /* ids 1..keys have rows (WORLD_SQL) */
	int ncols;
	struct column cols[9];
} TABLES[] = {
	{"aggregate_user",
	 "user_id",
	 2000,
	 9,
	 {{"repost_count", true, true, false},
	  {"track_save_count", true, true, false},
	  {"follower_count", true, true, false},
	  {"following_count", true, true, false},
	  {"track_count", false, true, false},
	  {"playlist_count", false, true, false},
	  {"album_count", false, true, false},
	  {"dominant_genre", false, true, true},
	  {"dominant_genre_count", false, true, false}}},
	{"aggregate_track",
	 "track_id",
	 500,
	 3,
	 {{"repost_count", true, false, false}, {"save_count", true, false, false}, {"comment_count", false, true, false}}},
	{"aggregate_playlist", "playlist_id", 300, 2, {{"repost_count", true, true, false}, {"save_count", true, true, false}}},
};

struct cell {
	int table, col;
	long id;
};

/* A hot key of table tb of one of the writers (workload.h: 70% of their
 * operations hit them). */
static long hot_key(struct ctx *t, const struct writers *w, int tb)
{
	const struct workload *wl = &w->wl[rng_next(&t->rng) % WRITERS];
	const long *set = tb == 0 ? wl->hot_users : tb == 1 ? wl->hot_tracks : wl->hot_playlists;

	return set[rng_next(&t->rng) % WL_HOT];
}

/* Cell i: the first HOT_CELLS are stream columns of hot keys, being written
 * concurrently; the rest any column of any key. Distinct from cells[0..i). */
static struct cell pick_cell(struct ctx *t, const struct writers *w, const struct cell *cells, int i)
{
	for (;;) {
		bool hot = i < HOT_CELLS;
		int tb = hot ? i % 3 : rng_chance(&t->rng, 60) ? 0 : rng_chance(&t->rng, 60) ? 1 : 2;
		const struct table *T = &TABLES[tb];
		struct cell c = {tb, 0, hot ? hot_key(t, w, tb) : rng_between(&t->rng, 1, T->keys)};
		do
			c.col = (int) rng_between(&t->rng, 0, T->ncols - 1);
		while (hot && !T->cols[c.col].stream);
		bool seen = false;
		for (int j = 0; j < i; j++)
			seen |= cells[j].table == c.table && cells[j].col == c.col && cells[j].id == c.id;
		if (!seen)
			return c;
	}
}

/* The SET expression that damages column c whatever its value: +k or -k
 * (NULL counts as 0), NULL where the column is nullable, and the genre
 * flipped to or from NULL. A stream column is set to NULL only when
 * non-zero: the stream adds to coalesce(NULL, 0), so a NULL where the count
 * is 0 would heal at the next delta, while any other damage persists. */
static void damage_expr(struct ctx *t, const struct column *c, char *buf, size_t len)
{
	long k = rng_between(&t->rng, 1, 5);
	int mode = (int) rng_between(&t->rng, 0, c->nullable ? 2 : 1);
	const char *n = c->name;

	if (c->text)
		snprintf(buf, len, "CASE WHEN %s IS NULL THEN 'drift' ELSE NULL END", n);
	else if (mode < 2)
		snprintf(buf, len, "coalesce(%s, 0) %c %ld", n, mode == 0 ? '+' : '-', k);
	else if (c->stream)
		snprintf(buf, len, "CASE WHEN %s <> 0 THEN NULL ELSE coalesce(%s, 0) + %ld END", n, n, k);
	else
		snprintf(buf, len, "CASE WHEN %s IS NULL THEN %ld ELSE NULL END", n, k);
}

/* Damages one cell (one row updated, or the test fails) and records it in
 * the temporary table injected. */
static bool inject_cell(struct ctx *t, const struct cell *c)
{
	const struct table *T = &TABLES[c->table];
	const struct column *col = &T->cols[c->col];
	char expr[256], sql[512], id[24], err[IT_ERRLEN];
	const char *params[3] = {id, T->name, col->name};

	snprintf(id, sizeof id, "%ld", c->id);
	damage_expr(t, col, expr, sizeof expr);
	snprintf(sql, sizeof sql, "UPDATE %s SET %s = %s WHERE %s = $1", T->name, col->name, expr, T->key);
	PGresult *res = it_query(t->conn, sql, 1, params, err, sizeof err);
	if (res == NULL)
		return fail_err(t, "injecting drift", err);
	bool one = strcmp(PQcmdTuples(res), "1") == 0;
	PQclear(res);
	if (!one)
		return fail(t, "injecting drift: no %s row %ld", T->name, c->id);
	return it_exec(t->conn, "INSERT INTO injected VALUES ($1, $2, $3)", 3, params, err, sizeof err) ||
	       fail_err(t, "recording injected drift", err);
}

/* Damages INJECTED_CELLS distinct cells; expected_cells := them. */
static bool inject_drift(struct ctx *t, const struct writers *w)
{
	struct cell cells[INJECTED_CELLS];
	char err[IT_ERRLEN];

	if (!it_exec(t->conn, "CREATE TEMP TABLE injected (id bigint, tbl text, col text)", 0, NULL, err, sizeof err))
		return fail_err(t, "creating injected", err);
	for (int i = 0; i < INJECTED_CELLS; i++) {
		cells[i] = pick_cell(t, w, cells, i);
		if (!inject_cell(t, &cells[i]))
			return false;
	}
	return expect_cells(t, "SELECT tbl || '.' || col AS cell, count(*) AS n FROM injected GROUP BY 1");
}

/* The drift test with apply.workers = workers (0: the default). */
static bool drift(struct ctx *t, long workers)
{
	struct wc_opts o = {.checkpoint_interval = "1h", .reconcile = true, .workers = workers};
	struct sweep_row base, fix;
	struct writers w = {0};
	char err[IT_ERRLEN];
	long id;

	if (!it_exec(t->conn, WORLD_SQL, 0, NULL, err, sizeof err))
		return fail_err(t, "creating the world", err);
	if (!expect_baseline(t) || !configure(t, &o) || !start_streaming(t) || !wait_stream_started(t) ||
	    !start_writers(t, &w, true)) {
		stop_writers(t, &w); /* those that did start */
		return false;
	}
	bool ok = traffic(t, WARMUP_WAL) && sweep_now(t, &id) && check_sweep(t, id, "baseline", &base) && inject_drift(t, &w) &&
		  traffic(t, WARMUP_WAL);
	ok = ok && sweep_now(t, &id) && check_sweep(t, id, "drift", &fix) && traffic(t, WARMUP_WAL);
	if (!settle(t, &w, ok) || (workers > 0 && !progress_rows(t, workers)))
		return false;
	char apply[40] = "";
	if (workers > 0)
		snprintf(apply, sizeof apply, "apply.workers %ld; ", workers);
	snprintf(t->details, sizeof t->details,
		 "%sbaseline sweep: %ld rows checked, %ld cells corrected (track/playlist/genre/comment columns only), "
		 "%ld ms; injected %d cells (%d on hot stream keys) under %d writers: sweep corrected %ld in %ld ms; "
		 "writers committed %ld changes and %ld in %d-row transactions in %.1f s (%ld conflicts); "
		 "full recount and drift 0",
		 apply, base.checked, base.corrected, base.ms, INJECTED_CELLS, HOT_CELLS, WRITERS, fix.corrected, fix.ms,
		 w.committed, w.bulk, BULK_ROWS, w.secs, w.conflicts);
	return true;
}

bool test_reconcile_drift(struct ctx *t)
{
	return drift(t, 0);
}

/* The same drift and writers with the partitioned apply: a sweep's chunks
 * run with every partition settled, and the deltas it notes come from all
 * partitions' shares. */
bool test_reconcile_drift_workers(struct ctx *t)
{
	return drift(t, DRIFT_WORKERS);
}
