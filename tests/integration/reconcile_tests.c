/* Reconcile tests (design.md §8, audius-schema-facts.md "Reconcile"):
 * drift injected while writers hammer hot keys is corrected cell for cell,
 * sweeps without drift correct nothing, the dominant genre edge cases
 * through `walcount reconcile [--dry-run]`, and the immediate sweep after a
 * TRUNCATE. Every end state is compared with full_recount.sql, a reference
 * written from the facts rather than from sql/reconcile_*.sql.
 *
 * How a sweep is observed: it inserts its walcount.checkpoints row when it
 * starts and fills reconcile_checked / reconcile_corrected ({"table.column":
 * cells}) / reconcile_duration_ms when it is done. The cells a sweep must
 * correct are put into the session's temporary table expected_cells (cell,
 * n) beforehand and compared with that jsonb column by column. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cases.h"

#define WRITERS 2
#define SWEEP_TIMEOUT 60
#define NO_DRIFT_SWEEPS 20   /* IT_QUICK: 5 */
#define INJECTED_CELLS 40
#define HOT_CELLS 12          /* of them on the writers' hot keys, stream columns */
/* How much WAL the writers write before and after each sweep of the drift
 * test, so every sweep recounts and corrects in the middle of their
 * traffic (a couple of bulk transactions and the workload around them). */
#define WARMUP_WAL (2L << 20)
/* Rows per transaction of the bulk writer (see bulk_step), and its pause
 * between them: unthrottled it writes several times faster than walcount
 * applies, and a sweep, which must wait for the stream, would never end. */
#define BULK_ROWS 5000
#define BULK_PAUSE_MS 400
#define PROCS (WRITERS + 1)   /* the workload writers, then the bulk writer */
#define WRITER_CHUNK 50       /* changes per workload_run call: how soon a writer stops */
#define FULL_RECOUNT "tests/integration/full_recount.sql"

/* The columns the stream maintains; a baseline sweep must leave them alone. */
#define STREAM_CELLS                                                                                         \
	"('aggregate_user.repost_count', 'aggregate_user.track_save_count', 'aggregate_user.follower_count', " \
	"'aggregate_user.following_count', 'aggregate_track.repost_count', 'aggregate_track.save_count', "    \
	"'aggregate_playlist.repost_count', 'aggregate_playlist.save_count')"

/* Source rows only a sweep counts (tracks, playlists, comments), owned by
 * and attached to keys the workload also writes, with every disqualifier
 * and genre kind mixed in, and latest-upload ties (hours modulo 37). And an
 * aggregate row for every key the workload can touch (workload.c: users
 * 1..2000, tracks 1..500, playlists 1..300): a row the stream created
 * later would start with stale track columns, which a sweep would rightly
 * correct, and these tests count corrections exactly. */
static const char WORLD_SQL[] =
	"INSERT INTO tracks (track_id, owner_id, is_current, is_delete, is_unlisted, is_available, stem_of, genre, "
	"created_at, txhash) "
	"SELECT g, 1 + g % 600, g % 23 <> 0, g % 19 = 0, g % 17 = 0, g % 29 <> 0, "
	"CASE WHEN g % 31 = 0 THEN '{\"parent_track_id\": 1}'::jsonb END, "
	"(ARRAY['rock', 'pop', NULL, '', 'Rock', 'jazz'])[1 + (g::bigint * 2654435761 % 1000003) % 6], "
	"timestamp '2024-01-01' + ((g::bigint * 40503) % 37) * interval '1 hour', 'w' || g "
	"FROM generate_series(1, 3000) g;"
	"INSERT INTO playlists (playlist_id, playlist_owner_id, is_album, is_private, is_current, is_delete, txhash) "
	"SELECT g, 1 + g % 700, g % 3 = 0, g % 7 = 0, g % 13 <> 0, g % 11 = 0, 'p' || g FROM generate_series(1, 1500) g;"
	"INSERT INTO comments (comment_id, entity_id, entity_type, is_delete, is_visible) "
	"SELECT g, 1 + g % 500, CASE WHEN g % 17 = 0 THEN 'Playlist' ELSE 'Track' END, g % 9 = 0, g % 13 <> 0 "
	"FROM generate_series(1, 4000) g;"
	"INSERT INTO aggregate_user (user_id) SELECT g FROM generate_series(1, 2000) g;"
	"INSERT INTO aggregate_track (track_id) SELECT g FROM generate_series(1, 500) g;"
	"INSERT INTO aggregate_playlist (playlist_id, is_album) SELECT g, g % 3 = 0 FROM generate_series(1, 300) g;";

/* ---- the reference ---- */

static char *recount_sql;

/* full_recount.sql, read once (the binary runs from the repository root). */
static const char *full_recount(struct ctx *t)
{
	char err[IT_ERRLEN];

	if (recount_sql == NULL && (recount_sql = it_read_file(FULL_RECOUNT, NULL, err, sizeof err)) == NULL)
		fail_err(t, "reading the reference", err);
	return recount_sql;
}

/* Every aggregate cell equals the full recount. */
static bool recount_zero(struct ctx *t)
{
	const char *sql = full_recount(t);
	char err[IT_ERRLEN], ex[1024] = "";
	size_t used = 0;

	if (sql == NULL)
		return false;
	PGresult *res = it_query(t->conn, sql, 0, NULL, err, sizeof err);
	if (res == NULL)
		return fail_err(t, "full recount", err);
	int n = PQntuples(res);
	for (int i = 0; i < n && i < 5 && used < sizeof ex; i++) {
		int w = snprintf(ex + used, sizeof ex - used, "%s%s[%s].%s expected %s actual %s", i ? "; " : "",
				 PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
				 PQgetvalue(res, i, 4));
		used += w > 0 ? (size_t) w : 0;
	}
	PQclear(res);
	return n == 0 || fail(t, "full recount: %d cells differ, e.g. %s", n, ex);
}

/* ---- expected cells and the sweeps' results ---- */

/* Replaces the session's expected_cells (cell, n) by the result of query. */
static bool expect_cells(struct ctx *t, const char *query)
{
	size_t len = strlen(query) + 128;
	char *sql = malloc(len), err[IT_ERRLEN];

	if (sql == NULL)
		return fail(t, "out of memory");
	snprintf(sql, len, "DROP TABLE IF EXISTS expected_cells; CREATE TEMP TABLE expected_cells AS %s", query);
	bool ok = it_exec(t->conn, sql, 0, NULL, err, sizeof err);
	free(sql);
	return ok || fail_err(t, "recording the expected corrections", err);
}

/* expected_cells := the full recount's mismatches per "table.column",
 * except the columns in `except` (an SQL list, or NULL for none). */
static bool expect_recount(struct ctx *t, const char *except)
{
	const char *recount = full_recount(t);
	char head[128], tail[1024];

	if (recount == NULL)
		return false;
	snprintf(head, sizeof head, "SELECT tbl || '.' || col AS cell, count(*) AS n FROM (\n");
	snprintf(tail, sizeof tail, "\n) AS r WHERE tbl || '.' || col NOT IN %s GROUP BY 1", except ? except : "('')");
	size_t len = strlen(head) + strlen(recount) + strlen(tail) + 1;
	char *q = malloc(len);
	if (q == NULL)
		return fail(t, "out of memory");
	snprintf(q, len, "%s%s%s", head, recount, tail);
	bool ok = expect_cells(t, q);
	free(q);
	return ok;
}

/* How many cells expected_cells holds in all. */
static bool expected_total(struct ctx *t, long *cells)
{
	char err[IT_ERRLEN], v[32];

	if (!it_value(t->conn, "SELECT coalesce(sum(n), 0) FROM expected_cells", 0, NULL, v, sizeof v, err, sizeof err))
		return fail_err(t, "reading expected_cells", err);
	*cells = atol(v);
	return true;
}

/* The sweep of checkpoint `id` corrected exactly expected_cells, column by
 * column (every other column 0). */
static bool sweep_matches(struct ctx *t, long id, const char *which)
{
	char sid[24], err[IT_ERRLEN], v[2048];
	const char *params[1] = {sid};

	snprintf(sid, sizeof sid, "%ld", id);
	if (!it_value(t->conn,
		      "SELECT coalesce(string_agg(format('%s: want %s, corrected %s', cell, coalesce(e.n, 0), "
		      "coalesce(c.n, 0)), '; ' ORDER BY cell), '') "
		      "FROM expected_cells e FULL JOIN ("
		      "  SELECT key AS cell, value::bigint AS n FROM walcount.checkpoints, jsonb_each_text(reconcile_corrected)"
		      "  WHERE id = $1 AND value::bigint <> 0) AS c USING (cell) "
		      "WHERE coalesce(e.n, 0) <> coalesce(c.n, 0)",
		      1, params, v, sizeof v, err, sizeof err))
		return fail_err(t, "comparing the sweep's corrections", err);
	return *v == '\0' || fail(t, "%s sweep (checkpoint %ld) corrected other cells than expected: %s", which, id, v);
}

struct sweep_row {
	long checked, corrected; /* rows checked, cells corrected (sum over columns) */
	long ms;
};

static bool read_sweep(struct ctx *t, long id, struct sweep_row *r)
{
	char sid[24], err[IT_ERRLEN], v[128];
	const char *params[1] = {sid};

	snprintf(sid, sizeof sid, "%ld", id);
	if (!it_value(t->conn,
		      "SELECT reconcile_checked || ' ' || (SELECT coalesce(sum(value::bigint), 0) "
		      "FROM jsonb_each_text(reconcile_corrected)) || ' ' || reconcile_duration_ms "
		      "FROM walcount.checkpoints WHERE id = $1",
		      1, params, v, sizeof v, err, sizeof err))
		return fail_err(t, "reading the sweep's result", err);
	return sscanf(v, "%ld %ld %ld", &r->checked, &r->corrected, &r->ms) == 3 ||
	       fail(t, "checkpoint %ld has no complete reconcile result: '%s'", id, v);
}

static bool last_checkpoint(struct ctx *t, long *id)
{
	char err[IT_ERRLEN], v[24];

	if (!it_value(t->conn, "SELECT coalesce(max(id), 0) FROM walcount.checkpoints", 0, NULL, v, sizeof v, err, sizeof err))
		return fail_err(t, "reading walcount.checkpoints", err);
	*id = atol(v);
	return true;
}

/* Waits for the first sweep that started after checkpoint `after` to finish
 * (a sweep retried because of a just-committed transaction leaves a row
 * without a result; the next one counts). */
static bool wait_sweep(struct ctx *t, long after, long *id)
{
	char sa[24], err[IT_ERRLEN], v[24];
	const char *params[1] = {sa};

	snprintf(sa, sizeof sa, "%ld", after);
	int rc = it_poll(t->conn,
			 "SELECT EXISTS (SELECT 1 FROM walcount.checkpoints WHERE id > $1 AND reconcile_checked IS NOT NULL)", 1,
			 params, SWEEP_TIMEOUT, &t->wc, err, sizeof err);
	if (rc < 0)
		return fail_err(t, "waiting for a sweep", err);
	if (rc == 0)
		return fail(t, "no sweep finished within %d s after checkpoint %ld", SWEEP_TIMEOUT, after);
	if (!it_value(t->conn, "SELECT min(id) FROM walcount.checkpoints WHERE id > $1 AND reconcile_checked IS NOT NULL", 1,
		      params, v, sizeof v, err, sizeof err))
		return fail_err(t, "reading walcount.checkpoints", err);
	*id = atol(v);
	return true;
}

/* Lines of walcount's log containing needle. */
static int log_lines(struct ctx *t, const char *needle)
{
	char err[IT_ERRLEN];
	char *text = it_read_file(t->wc.log, NULL, err, sizeof err);
	int n = 0;

	for (const char *p = text; p && (p = strstr(p, needle)) != NULL; p++)
		n++;
	free(text);
	return n;
}

/* Waits until walcount streams. The slot is already active while `run`
 * creates it and does the initial load, before walcount handles SIGUSR1,
 * whose default action would end it. */
static bool wait_streaming(struct ctx *t)
{
	for (double end = it_now() + 60; log_lines(t, "stream: started slot") == 0; it_sleep_ms(20))
		if (it_now() >= end || !wc_alive(&t->wc))
			return fail(t, "walcount did not start streaming within 60 s");
	return true;
}

/* SIGUSR1 to the running walcount: one sweep now. Waits for its result. */
static bool sweep_now(struct ctx *t, long *id)
{
	long after;

	if (!last_checkpoint(t, &after))
		return false;
	if (!wc_alive(&t->wc) || kill(t->wc.pid, SIGUSR1) != 0)
		return fail(t, "cannot signal walcount (pid %d): %s", (int) t->wc.pid, strerror(errno));
	return wait_sweep(t, after, id);
}

/* ---- writers: the workload at full speed in child processes ---- */

struct writers {
	struct workload wl[WRITERS]; /* as each started: its hot keys */
	pid_t pid[PROCS];
	int fd[PROCS];       /* read end: "committed conflicts" at the writer's exit */
	long committed, conflicts, bulk;  /* changes, rolled back conflicts, bulk changes */
	double started, secs;  /* when they started, how long they ran */
};

static volatile sig_atomic_t writer_stop;

static void on_writer_term(int sig)
{
	(void) sig;
	writer_stop = 1;
}

/* Errors two writers on the same identities cause each other
 * (demote-then-insert racing an insert, lock order; the workload's bulk
 * demotions touch the bulk writer's rows): the transaction is rolled back,
 * and the writer goes on. */
static bool conflict(const char *err)
{
	return strstr(err, "duplicate key") != NULL || strstr(err, "deadlock detected") != NULL;
}

/* Step i of the bulk writer: one transaction of BULK_ROWS follows from its
 * own followers to the hot users of wl, inserted (even i) or deleted (odd
 * i). Decoding and applying one takes long enough that a sweep's recount
 * often ends before the stream has applied all its snapshot saw: the sweep
 * must wait for the stream before it compares (design.md §8). */
static long bulk_step(PGconn *conn, const struct workload *wl, long i, char *err, size_t errlen)
{
	const long *h = wl->hot_users;
	char sql[512];

	if (i > 0)
		it_sleep_ms(BULK_PAUSE_MS);
	if (i % 2 == 0)
		snprintf(sql, sizeof sql,
			 "INSERT INTO follows (follower_user_id, followee_user_id, is_current, is_delete, txhash) "
			 "SELECT 100000 + g, (ARRAY[%ld, %ld, %ld, %ld, %ld])[1 + g %% 5], true, false, 'bulk' "
			 "FROM generate_series(1, %d) g",
			 h[0], h[1], h[2], h[3], h[4], BULK_ROWS);
	else
		snprintf(sql, sizeof sql, "DELETE FROM follows WHERE txhash = 'bulk'");
	PGresult *res = it_query(conn, sql, 0, NULL, err, errlen);
	long rows = res != NULL ? atol(PQcmdTuples(res)) : WL_FAILED;
	PQclear(res);
	return rows;
}

/* A writer child: the workload (or, with bulk, bulk_step) at full speed
 * until SIGTERM. It never touches the parent's connection (the socket is
 * shared after fork) and leaves with _exit so no atexit or stdio of the
 * parent runs twice. */
static void writer_main(struct workload wl, bool bulk, const char *db, int fd)
{
	struct sigaction sa = {.sa_handler = on_writer_term};
	char err[IT_ERRLEN] = "";
	long conflicts = 0, committed = 0, step = 0;
	bool broke = false;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	PGconn *conn = it_connect(db, err, sizeof err);
	while (conn != NULL && !writer_stop) {
		long n = bulk ? bulk_step(conn, &wl, step++, err, sizeof err)
			      : workload_run(&wl, conn, WRITER_CHUNK, err, sizeof err);
		if (n >= 0)
			committed += n;
		else if (n == WL_FAILED && conflict(err))
			conflicts++;
		else {
			broke = true;
			break;
		}
	}
	if (conn == NULL || broke)
		fprintf(stderr, "writer: %s\n", err);
	dprintf(fd, "%ld %ld\n", committed, conflicts);
	_exit(conn == NULL || broke ? 1 : 0);
}

/* Starts WRITERS workload writers, each on its own hot keys (the first on
 * t->wl's) with its own txhash tag, and the bulk writer on the first one's
 * hot users. Writers sharing hot identities would mostly wait for each
 * other's row locks and deadlock (a tenth of the throughput of one); apart,
 * each runs at full speed. */
static bool start_writers(struct ctx *t, struct writers *w)
{
	*w = (struct writers){.started = it_now()};
	for (int i = 0; i < PROCS; i++) {
		struct workload wl = i < WRITERS ? t->wl : w->wl[0];
		int p[2];
		if (i > 0 && i < WRITERS)
			workload_init(&wl, rng_next(&t->rng));
		wl.tag = rng_next(&t->rng);
		if (i < WRITERS)
			w->wl[i] = wl;
		if (pipe(p) != 0)
			return fail(t, "pipe: %s", strerror(errno));
		fflush(stdout);
		if ((w->pid[i] = fork()) == 0) {
			close(p[0]);
			writer_main(wl, i == WRITERS, t->db, p[1]);
		}
		close(p[1]);
		w->fd[i] = p[0];
		if (w->pid[i] < 0)
			return fail(t, "fork: %s", strerror(errno));
	}
	return true;
}

/* Stops the writers (SIGTERM: each ends after its current chunk) and adds
 * up what they committed. Every writer must have run until told to stop. */
static bool stop_writers(struct ctx *t, struct writers *w)
{
	bool ok = true;

	w->secs = it_now() - w->started;
	for (int i = 0; i < PROCS; i++)
		if (w->pid[i] > 0)
			kill(w->pid[i], SIGTERM);
	for (int i = 0; i < PROCS; i++) {
		char buf[64] = "";
		long c = 0, k = 0;
		int status = 0;
		if (w->pid[i] <= 0)
			continue;
		if (!it_reap(w->pid[i], 60, &status, NULL)) {
			kill(w->pid[i], SIGKILL);
			it_reap(w->pid[i], 10, &status, NULL);
		}
		ssize_t n = read(w->fd[i], buf, sizeof buf - 1);
		close(w->fd[i]);
		if (n > 0 && sscanf(buf, "%ld %ld", &c, &k) == 2)
			*(i < WRITERS ? &w->committed : &w->bulk) += c, w->conflicts += k;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			ok = fail(t, "writer %d failed (see the test's stderr)", i + 1);
		w->pid[i] = 0;
	}
	return ok;
}

/* ---- 1. reconcile_drift ---- */

/* An aggregate column a test may damage. */
struct column {
	const char *name;
	bool stream;   /* maintained by the stream (additive deltas) */
	bool nullable;
	bool text;     /* dominant_genre */
};

static const struct table {
	const char *name, *key;
	long keys;     /* ids 1..keys have rows (WORLD_SQL) */
	int ncols;
	struct column cols[9];
} TABLES[] = {
	{"aggregate_user", "user_id", 2000, 9,
	 {{"repost_count", true, true, false}, {"track_save_count", true, true, false},
	  {"follower_count", true, true, false}, {"following_count", true, true, false},
	  {"track_count", false, true, false}, {"playlist_count", false, true, false},
	  {"album_count", false, true, false}, {"dominant_genre", false, true, true},
	  {"dominant_genre_count", false, true, false}}},
	{"aggregate_track", "track_id", 500, 3,
	 {{"repost_count", true, false, false}, {"save_count", true, false, false}, {"comment_count", false, true, false}}},
	{"aggregate_playlist", "playlist_id", 300, 2,
	 {{"repost_count", true, true, false}, {"save_count", true, true, false}}},
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

/* The sweep of checkpoint id corrected exactly expected_cells. */
static bool check_sweep(struct ctx *t, long id, const char *which, struct sweep_row *r)
{
	long cells;

	if (!read_sweep(t, id, r) || !expected_total(t, &cells) || !sweep_matches(t, id, which))
		return false;
	return r->corrected == cells ||
	       fail(t, "%s sweep corrected %ld cells, want %ld", which, r->corrected, cells);
}

/* Baseline: the first sweep fixes exactly the track, playlist, genre and
 * comment columns the sweep alone maintains (recorded before walcount
 * started, nothing writes them), and never a stream column. */
static bool expect_baseline(struct ctx *t)
{
	return expect_recount(t, STREAM_CELLS);
}

/* Stops the writers, then: the stream applied everything, and every
 * aggregate equals the full recount and the harness's own drift check. */
static bool settle(struct ctx *t, struct writers *w, bool ok)
{
	ok = stop_writers(t, w) && ok;
	return ok && caught_up(t, CAUGHT_UP_TIMEOUT) && recount_zero(t) && drift_zero(t);
}

/* Waits until the writers have written `bytes` of WAL from now on. */
static bool traffic(struct ctx *t, long bytes)
{
	char from[LSN_BUFLEN], n[24], err[IT_ERRLEN];
	const char *params[2] = {from, n};

	snprintf(n, sizeof n, "%ld", bytes);
	if (!it_value(t->conn, "SELECT pg_current_wal_lsn()::text", 0, NULL, from, sizeof from, err, sizeof err))
		return fail_err(t, "reading the WAL position", err);
	int rc = it_poll(t->conn, "SELECT pg_current_wal_lsn() - $1::pg_lsn >= $2::bigint", 2, params, 60, &t->wc, err,
			 sizeof err);
	if (rc < 0)
		return fail_err(t, "waiting for the writers' traffic", err);
	return rc > 0 || fail(t, "the writers wrote less than %ld bytes of WAL in 60 s", bytes);
}

bool test_reconcile_drift(struct ctx *t)
{
	struct wc_opts o = {.checkpoint_interval = "1h", .reconcile = true};
	struct sweep_row base, fix;
	struct writers w = {0};
	char err[IT_ERRLEN];
	long id;

	if (!it_exec(t->conn, WORLD_SQL, 0, NULL, err, sizeof err))
		return fail_err(t, "creating the world", err);
	if (!expect_baseline(t) || !configure(t, &o) || !start_streaming(t) || !wait_streaming(t) ||
	    !start_writers(t, &w)) {
		stop_writers(t, &w); /* those that did start */
		return false;
	}
	bool ok = traffic(t, WARMUP_WAL) && sweep_now(t, &id) && check_sweep(t, id, "baseline", &base) &&
		  inject_drift(t, &w) && traffic(t, WARMUP_WAL);
	ok = ok && sweep_now(t, &id) && check_sweep(t, id, "drift", &fix) && traffic(t, WARMUP_WAL);
	if (!settle(t, &w, ok))
		return false;
	snprintf(t->details, sizeof t->details,
		 "baseline sweep: %ld rows checked, %ld cells corrected (track/playlist/genre/comment columns only), "
		 "%ld ms; injected %d cells (%d on hot stream keys) under %d writers: sweep corrected %ld in %ld ms; "
		 "writers committed %ld changes and %ld in %d-row transactions in %.1f s (%ld conflicts); "
		 "full recount and drift 0",
		 base.checked, base.corrected, base.ms, INJECTED_CELLS, HOT_CELLS, WRITERS, fix.corrected, fix.ms,
		 w.committed, w.bulk, BULK_ROWS, w.secs, w.conflicts);
	return true;
}

/* ---- 2. reconcile_no_drift ---- */

/* Waits until `want` sweeps have finished. */
static bool wait_sweeps(struct ctx *t, long want)
{
	char sw[24], err[IT_ERRLEN];
	const char *params[1] = {sw};

	snprintf(sw, sizeof sw, "%ld", want);
	int rc = it_poll(t->conn, "SELECT count(*) >= $1 FROM walcount.checkpoints WHERE reconcile_checked IS NOT NULL", 1,
			 params, 300, &t->wc, err, sizeof err);
	if (rc < 0)
		return fail_err(t, "waiting for sweeps", err);
	return rc == 1 || fail(t, "fewer than %ld sweeps finished within 300 s", want);
}

struct sweep_stats {
	long first;                  /* checkpoint id of the baseline sweep */
	long sweeps, dirty, unfinished, min_ms, max_ms, avg_ms;
	char dirty_ids[256];
};

/* Every sweep after the baseline: how many, how many corrected anything. */
static bool sweep_stats(struct ctx *t, struct sweep_stats *s)
{
	char err[IT_ERRLEN];
	PGresult *res = it_query(
		t->conn,
		"WITH s AS (SELECT id, reconcile_checked IS NOT NULL AS done, reconcile_duration_ms AS ms, "
		"  (SELECT coalesce(sum(value::bigint), 0) FROM jsonb_each_text(reconcile_corrected)) AS cells "
		"  FROM walcount.checkpoints), b AS (SELECT min(id) AS first FROM s WHERE done) "
		"SELECT b.first, count(*) FILTER (WHERE done), count(*) FILTER (WHERE cells <> 0), "
		"  count(*) FILTER (WHERE NOT done), coalesce(min(ms), 0), coalesce(max(ms), 0), coalesce(avg(ms)::bigint, 0), "
		"  coalesce(string_agg(id || ':' || cells, ',') FILTER (WHERE cells <> 0), '') "
		"FROM s, b WHERE s.id > b.first GROUP BY b.first",
		0, NULL, err, sizeof err);

	if (res == NULL)
		return fail_err(t, "summing up the sweeps", err);
	bool ok = PQntuples(res) == 1;
	if (ok) {
		s->first = atol(PQgetvalue(res, 0, 0));
		s->sweeps = atol(PQgetvalue(res, 0, 1));
		s->dirty = atol(PQgetvalue(res, 0, 2));
		s->unfinished = atol(PQgetvalue(res, 0, 3));
		s->min_ms = atol(PQgetvalue(res, 0, 4));
		s->max_ms = atol(PQgetvalue(res, 0, 5));
		s->avg_ms = atol(PQgetvalue(res, 0, 6));
		snprintf(s->dirty_ids, sizeof s->dirty_ids, "%s", PQgetvalue(res, 0, 7));
	}
	PQclear(res);
	return ok || fail(t, "no sweep after the baseline");
}

/* The sweeps after the baseline corrected nothing, and the log says so: one
 * "corrected" line, the baseline's, and no failed sweep. */
static bool no_corrections(struct ctx *t, const struct sweep_stats *s)
{
	struct sweep_row base;

	if (!check_sweep(t, s->first, "baseline", &base))
		return false;
	if (s->dirty > 0)
		return fail(t, "%ld of %ld sweeps without drift corrected cells (checkpoint:cells %s)", s->dirty, s->sweeps,
			    s->dirty_ids);
	int logged = log_lines(t, "reconcile: corrected");
	int failed = log_lines(t, "the sweep is skipped") + log_lines(t, "sweep abandoned");
	if (logged != (base.corrected > 0) || failed > 0)
		return fail(t, "log: %d \"reconcile: corrected\" lines (want %d, the baseline's), %d failed sweeps", logged,
			    base.corrected > 0, failed);
	return true;
}

bool test_reconcile_no_drift(struct ctx *t)
{
	/* Batches of up to a second: the recount then regularly finishes before
	 * the stream has applied everything its snapshot saw, so a sweep must
	 * wait for the stream before it may compare (design.md §8). */
	struct wc_opts o = {.checkpoint_interval = "300ms", .reconcile = true, .max_delay = "1s", .max_changes = 100000};
	struct sweep_stats s = {0};
	struct writers w = {0};
	char err[IT_ERRLEN];

	if (!it_exec(t->conn, WORLD_SQL, 0, NULL, err, sizeof err))
		return fail_err(t, "creating the world", err);
	if (!expect_baseline(t) || !configure(t, &o) || !start_streaming(t) || !start_writers(t, &w)) {
		stop_writers(t, &w); /* those that did start */
		return false;
	}
	/* The baseline, then NO_DRIFT_SWEEPS more while the writers run. The
	 * sweeps are judged first: a wrong correction is the finding, the drift
	 * it leaves behind only its consequence. */
	bool ok = wait_sweeps(t, 1 + rounds(NO_DRIFT_SWEEPS, 5));
	ok = stop_writers(t, &w) && ok;
	if (!ok || !sweep_stats(t, &s) || !no_corrections(t, &s) || !caught_up(t, CAUGHT_UP_TIMEOUT) ||
	    !recount_zero(t) || !drift_zero(t))
		return false;
	snprintf(t->details, sizeof t->details,
		 "%ld sweeps after the baseline with %d writers on hot keys (%ld changes and %ld in %d-row transactions "
		 "in %.1f s, %ld conflicts): 0 corrections; "
		 "%ld sweep rows retried or unfinished; duration min/avg/max %ld/%ld/%ld ms; full recount and drift 0",
		 s.sweeps, WRITERS, w.committed, w.bulk, BULK_ROWS, w.secs, w.conflicts, s.unfinished, s.min_ms, s.avg_ms, s.max_ms);
	return true;
}

/* ---- 3. dominant_genre ---- */

/* Tracks (owner, genre, day, kind): kind 'ok' counts, any other is the
 * disqualifier it names. Days are 2024-01-DD; same day, same timestamp. */
static const char GENRE_SQL[] =
	"INSERT INTO tracks (track_id, owner_id, genre, created_at, is_current, is_delete, is_unlisted, is_available, "
	"stem_of, txhash) "
	"SELECT n, owner, genre, timestamp '2024-01-01' + day * interval '1 day', kind <> 'noncurrent', kind = 'deleted', "
	"kind = 'unlisted', kind <> 'unavailable', CASE WHEN kind = 'stem' THEN '{\"parent_track_id\": 1}'::jsonb END, 'g' || n "
	"FROM (SELECT row_number() OVER () AS n, * FROM (VALUES "
	"(1, 'rock', 1, 'ok'), (1, 'rock', 2, 'ok'), (1, 'rock', 3, 'ok'), (1, 'pop', 8, 'ok'), (1, 'pop', 9, 'ok'),"
	"(2, 'rock', 1, 'ok'), (2, 'rock', 5, 'ok'), (2, 'pop', 2, 'ok'), (2, 'pop', 6, 'ok'),"
	"(3, 'b', 4, 'ok'), (3, 'a', 4, 'ok'),"
	"(4, NULL, 4, 'ok'), (4, 'z', 4, 'ok'),"
	"(5, NULL, 1, 'ok'), (5, NULL, 2, 'ok'), (5, NULL, 3, 'ok'), (5, 'rock', 9, 'ok'),"
	"(6, '', 1, 'ok'), (6, '', 2, 'ok'), (6, 'x', 9, 'ok'),"
	"(7, '', 4, 'ok'), (7, 'a', 4, 'ok'),"
	"(8, 'Rock', 1, 'ok'), (8, 'rock', 2, 'ok'), (8, 'ROCK', 3, 'ok'), (8, 'jazz', 1, 'ok'), (8, 'jazz', 2, 'ok'),"
	"(9, 'Rock', 1, 'ok'), (9, 'Rock', 2, 'ok'), (9, 'rock', 9, 'ok'),"
	"(10, 'folk', 1, 'ok'),"
	"(11, 'rock', 1, 'unlisted'), (12, 'rock', 1, 'deleted'), (13, 'rock', 1, 'stem'),"
	"(14, 'rock', 1, 'unavailable'), (15, 'rock', 1, 'noncurrent'),"
	"(16, 'pop', 1, 'ok'), (16, 'rock', 2, 'unlisted'), (16, 'rock', 3, 'deleted'), (16, 'rock', 4, 'stem'),"
	"(16, 'rock', 5, 'noncurrent'), (16, 'rock', 6, 'unavailable'),"
	"(17, 'rock', 1, 'ok'), (17, 'rock', 2, 'ok'), (17, 'pop', 3, 'ok'), (17, 'pop', 4, 'ok'), (17, 'rock', 9, 'unlisted'),"
	"(18, 'rock', 1, 'ok'), (18, 'rock', 2, 'ok'), (18, 'pop', 3, 'ok'),"
	"(19, NULL, 1, 'ok'), (19, NULL, 2, 'ok'), (19, 'edm', 3, 'ok'),"
	"(21, NULL, 5, 'ok'), (21, 'pop', 3, 'ok'),"
	"(23, 'b', 1, 'ok'), (23, 'b', 7, 'ok'), (23, 'a', 6, 'ok'), (23, 'a', 7, 'ok')"
	") AS v (owner, genre, day, kind)) AS tr;"
	/* User 1: 2 playlists and 1 album count; private, deleted, old do not. */
	"INSERT INTO playlists (playlist_id, playlist_owner_id, is_album, is_private, is_current, is_delete, txhash) VALUES "
	"(1, 1, false, false, true, false, 'a'), (2, 1, false, false, true, false, 'b'), (3, 1, true, false, true, false, 'c'),"
	"(4, 1, false, true, true, false, 'd'), (5, 1, true, false, true, true, 'e'), (6, 1, false, false, false, false, 'f');"
	/* Stale rows, except user 10 (already right) and 22 (the schema's
	 * defaults: a dominant_genre_count of 0 for a user without tracks is
	 * wrong, it must be NULL). */
	"INSERT INTO aggregate_user (user_id, track_count, dominant_genre, dominant_genre_count) "
	"SELECT u, 99, 'stale', 99 FROM generate_series(1, 23) u WHERE u NOT IN (10, 22);"
	"INSERT INTO aggregate_user (user_id, track_count, dominant_genre, dominant_genre_count) VALUES (10, 1, 'folk', 1);"
	"INSERT INTO aggregate_user (user_id) VALUES (22);";

/* Flips: user 18's rock tracks lose their genre (NULL group wins, count 2);
 * one of user 19's NULL tracks becomes edm (edm 2 beats NULL 1). */
static const char GENRE_FLIP_SQL[] =
	"UPDATE tracks SET genre = NULL WHERE owner_id = 18 AND genre = 'rock';"
	"UPDATE tracks SET genre = 'edm' WHERE owner_id = 19 AND created_at = timestamp '2024-01-02';";

struct genre_want {
	int user;
	long tracks, playlists, albums;
	const char *genre; /* NULL: SQL NULL */
	int count;         /* -1: SQL NULL */
};

static const struct genre_want GENRE_WANT[] = {
	{1, 5, 2, 1, "rock", 3},   /* count beats a newer genre */
	{2, 4, 0, 0, "pop", 2},    /* count tie: newest latest track */
	{3, 2, 0, 0, "a", 1},      /* full tie: genre ascending */
	{4, 2, 0, 0, "z", 1},      /* full tie: NULL last */
	{5, 4, 0, 0, NULL, 3},     /* NULL is a group: NULL with a count */
	{6, 3, 0, 0, "", 2},       /* '' is an ordinary genre */
	{7, 2, 0, 0, "", 1},       /* ... and sorts first on a full tie */
	{8, 5, 0, 0, "jazz", 2},   /* Rock, rock, ROCK are three genres */
	{9, 3, 0, 0, "Rock", 2},   /* exact comparison */
	{10, 1, 0, 0, "folk", 1},  /* one track suffices; already right */
	{11, 0, 0, 0, NULL, -1},   /* unlisted */
	{12, 0, 0, 0, NULL, -1},   /* deleted */
	{13, 0, 0, 0, NULL, -1},   /* stem */
	{14, 0, 0, 0, NULL, -1},   /* unavailable */
	{15, 0, 0, 0, NULL, -1},   /* not current */
	{16, 1, 0, 0, "pop", 1},   /* disqualified tracks do not count */
	{17, 4, 0, 0, "pop", 2},   /* ... nor decide the latest upload */
	{18, 3, 0, 0, "rock", 2},
	{19, 3, 0, 0, NULL, 2},
	{20, 0, 0, 0, NULL, -1},   /* no tracks at all */
	{21, 2, 0, 0, NULL, 1},    /* count tie: the NULL group is newer */
	{22, 0, 0, 0, NULL, -1},   /* default 0 count becomes NULL */
	{23, 4, 0, 0, "a", 2},     /* tie on count and latest: earliest does not matter */
};

#define GENRE_USERS ((int) (sizeof GENRE_WANT / sizeof GENRE_WANT[0]))

/* The wanted row of index i, after GENRE_FLIP_SQL when flipped. */
static struct genre_want genre_want(int i, bool flipped)
{
	struct genre_want w = GENRE_WANT[i];

	if (flipped && w.user == 18)
		w.genre = NULL;
	if (flipped && w.user == 19)
		w.genre = "edm";
	return w;
}

/* "rock" or NULL, for messages. */
static const char *show(const char *genre, char *buf, size_t len)
{
	if (genre == NULL)
		return "NULL";
	snprintf(buf, len, "'%s'", genre);
	return buf;
}

static bool genre_row_ok(struct ctx *t, PGresult *res, int i, bool flipped)
{
	struct genre_want w = genre_want(i, flipped);
	const char *g = PQgetisnull(res, i, 4) ? NULL : PQgetvalue(res, i, 4);
	int n = PQgetisnull(res, i, 5) ? -1 : atoi(PQgetvalue(res, i, 5));
	char b1[64], b2[64];

	if (atoi(PQgetvalue(res, i, 0)) == w.user && atol(PQgetvalue(res, i, 1)) == w.tracks &&
	    atol(PQgetvalue(res, i, 2)) == w.playlists && atol(PQgetvalue(res, i, 3)) == w.albums &&
	    (g == NULL) == (w.genre == NULL) && (g == NULL || strcmp(g, w.genre) == 0) && n == w.count)
		return true;
	return fail(t, "user %d: tracks %s playlists %s albums %s genre %s count %s; want %ld %ld %ld %s %d (-1: NULL)",
		    w.user, PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), PQgetvalue(res, i, 3), show(g, b1, sizeof b1),
		    PQgetisnull(res, i, 5) ? "NULL" : PQgetvalue(res, i, 5), w.tracks, w.playlists, w.albums,
		    show(w.genre, b2, sizeof b2), w.count);
}

/* Every case user's row is exactly as wanted. */
static bool genres_ok(struct ctx *t, bool flipped)
{
	char err[IT_ERRLEN];
	PGresult *res = it_query(t->conn,
				 "SELECT user_id, track_count, playlist_count, album_count, dominant_genre, dominant_genre_count "
				 "FROM aggregate_user WHERE user_id <= 23 ORDER BY user_id",
				 0, NULL, err, sizeof err);
	bool ok = res != NULL || fail_err(t, "reading aggregate_user", err);

	if (ok && PQntuples(res) != GENRE_USERS)
		ok = fail(t, "aggregate_user has %d case rows, want %d", PQntuples(res), GENRE_USERS);
	for (int i = 0; ok && i < GENRE_USERS; i++)
		ok = genre_row_ok(t, res, i, flipped);
	PQclear(res);
	return ok;
}

/* md5 of every aggregate row: a dry run must leave it as it was. */
static bool aggregates_md5(struct ctx *t, char md5[64])
{
	char err[IT_ERRLEN];

	return it_value(t->conn,
			"SELECT md5((SELECT coalesce(string_agg(a::text, ',' ORDER BY user_id), '') FROM aggregate_user a) || "
			"(SELECT coalesce(string_agg(a::text, ',' ORDER BY track_id), '') FROM aggregate_track a) || "
			"(SELECT coalesce(string_agg(a::text, ',' ORDER BY playlist_id), '') FROM aggregate_playlist a))",
			0, NULL, md5, 64, err, sizeof err) ||
	       fail_err(t, "hashing the aggregates", err);
}

/* Every "table.column: n" of expected_cells appears in the CLI's line, and
 * nothing else does. */
static bool output_lists_cells(struct ctx *t, const char *out)
{
	char err[IT_ERRLEN], item[128];
	PGresult *res = it_query(t->conn, "SELECT cell, n FROM expected_cells ORDER BY cell", 0, NULL, err, sizeof err);
	int listed = 0;

	if (res == NULL)
		return fail_err(t, "reading expected_cells", err);
	bool ok = true;
	for (int i = 0; ok && i < PQntuples(res); i++) {
		snprintf(item, sizeof item, "%s: %s", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
		const char *p = strstr(out, item);
		ok = (p != NULL && (p[strlen(item)] == ',' || p[strlen(item)] == ')')) ||
		     fail(t, "reconcile output lacks \"%s\": %s", item, out);
	}
	for (const char *p = out; (p = strstr(p, "aggregate_")) != NULL; p++)
		listed++;
	if (ok && listed != PQntuples(res))
		ok = fail(t, "reconcile output lists %d columns, want %d: %s", listed, PQntuples(res), out);
	PQclear(res);
	return ok;
}

/* Rows a sweep must write: distinct keys in the full recount's mismatches. */
static bool rows_to_fix(struct ctx *t, long *rows)
{
	const char *recount = full_recount(t);
	char err[IT_ERRLEN], v[24] = "0";

	if (recount == NULL)
		return false;
	size_t len = strlen(recount) + 96;
	char *q = malloc(len);
	if (q == NULL)
		return fail(t, "out of memory");
	snprintf(q, len, "SELECT count(DISTINCT (tbl, id)) FROM (\n%s\n) AS r", recount);
	bool ok = it_value(t->conn, q, 0, NULL, v, sizeof v, err, sizeof err) || fail_err(t, "full recount", err);
	free(q);
	*rows = atol(v);
	return ok;
}

/* `walcount reconcile [--dry-run]`: exit 0 and one line "reconcile: checked
 * N rows, corrected|would correct M (table.column: n, ...) in X ms" that
 * names exactly expected_cells and `rows` rows. */
static bool cli_sweep(struct ctx *t, const char *label, bool dry, long rows)
{
	const char *args[] = {"reconcile", "--config", t->wc.config, dry ? "--dry-run" : NULL, NULL};
	const char *verb = dry ? "would correct " : "corrected ";
	char *out = NULL, *errtext = NULL, st[32];
	int status;

	if (!run_walcount(t, label, args, &status, &out, &errtext))
		return false;
	const char *p = strstr(out, verb);
	bool ok = (WIFEXITED(status) && WEXITSTATUS(status) == 0) ||
		  fail(t, "walcount reconcile%s: %s: %.300s", dry ? " --dry-run" : "", it_status_text(status, st, sizeof st),
		       errtext);
	ok = ok && ((strncmp(out, "reconcile: checked ", 19) == 0 && p != NULL) ||
		    fail(t, "%s: unexpected output: %.300s", label, out));
	ok = ok && (atol(p + strlen(verb)) == rows || fail(t, "%s: want %s%ld rows: %.300s", label, verb, rows, out));
	ok = ok && output_lists_cells(t, out);
	free(out);
	free(errtext);
	return ok;
}

/* One real `walcount reconcile`: it corrects what the reference says,
 * records exactly that in its checkpoint row, and leaves no mismatch. */
static bool reconcile_once(struct ctx *t, const char *label, long *rows)
{
	long id;

	if (!expect_recount(t, NULL) || !rows_to_fix(t, rows) || !cli_sweep(t, label, false, *rows) ||
	    !last_checkpoint(t, &id))
		return false;
	return sweep_matches(t, id, label) && recount_zero(t);
}

/* A dry run reports what the real run will correct and changes nothing:
 * same aggregates, no checkpoint row. */
static bool dry_run(struct ctx *t, long *rows)
{
	char before[64], after[64], err[IT_ERRLEN], v[24];

	if (!expect_recount(t, NULL) || !rows_to_fix(t, rows) || !aggregates_md5(t, before) ||
	    !cli_sweep(t, "dominant_genre-dry-run", true, *rows) || !aggregates_md5(t, after))
		return false;
	if (!expect_str_eq(t, "md5 of the aggregates after walcount reconcile --dry-run", before, after))
		return false;
	if (!it_value(t->conn, "SELECT count(*) FROM walcount.checkpoints", 0, NULL, v, sizeof v, err, sizeof err))
		return fail_err(t, "reading walcount.checkpoints", err);
	return expect_str_eq(t, "checkpoint rows written by walcount reconcile --dry-run", "0", v);
}

bool test_dominant_genre(struct ctx *t)
{
	struct wc_opts o = {0};
	char err[IT_ERRLEN];
	long dry, first, second;

	if (!it_exec(t->conn, GENRE_SQL, 0, NULL, err, sizeof err))
		return fail_err(t, "creating the genre cases", err);
	if (!configure(t, &o) || !dry_run(t, &dry) || !reconcile_once(t, "dominant_genre-1", &first) ||
	    !genres_ok(t, false))
		return false;
	if (first != dry)
		return fail(t, "the dry run would correct %ld rows, the real run %ld", dry, first);
	if (!it_exec(t->conn, GENRE_FLIP_SQL, 0, NULL, err, sizeof err))
		return fail_err(t, "flipping genres", err);
	if (!reconcile_once(t, "dominant_genre-2", &second) || !genres_ok(t, true))
		return false;
	if (!expect_eq_long(t, "rows the sweep corrected after flipping two users' genres", 2, second))
		return false;
	snprintf(t->details, sizeof t->details,
		 "%d users: dry run would correct %ld rows and changed nothing; reconcile corrected %ld, then %ld after "
		 "two genre flips; every value exact; full recount 0",
		 GENRE_USERS, dry, first, second);
	return true;
}

/* ---- 4. truncate_follows ---- */

/* expected_cells := the follower and following cells that are not 0 now:
 * after TRUNCATE follows each is wrong, and nothing else is. */
static bool expect_truncate(struct ctx *t)
{
	return expect_cells(t,
			    "SELECT 'aggregate_user.follower_count' AS cell, count(*) AS n FROM aggregate_user "
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
