/* reconcile_common: the world, the reference recount and the sweeps'
 * results of the reconcile tests (see reconcile.h). */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "reconcile.h"

const char WORLD_SQL[] =
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
const char *full_recount(struct ctx *t)
{
	char err[IT_ERRLEN];

	if (recount_sql == NULL && (recount_sql = it_read_file(FULL_RECOUNT, NULL, err, sizeof err)) == NULL)
		fail_err(t, "reading the reference", err);
	return recount_sql;
}

/* Every aggregate cell equals the full recount. */
bool recount_zero(struct ctx *t)
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
bool expect_cells(struct ctx *t, const char *query)
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
bool expect_recount(struct ctx *t, const char *except)
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
bool sweep_matches(struct ctx *t, long id, const char *which)
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

bool last_checkpoint(struct ctx *t, long *id)
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
bool wait_sweep(struct ctx *t, long after, long *id)
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

/* Waits until the writers have written `bytes` of WAL from now on. */
bool traffic(struct ctx *t, long bytes)
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

/* Lines of walcount's log containing needle. */
int log_lines(struct ctx *t, const char *needle)
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
bool wait_stream_started(struct ctx *t)
{
	for (double end = it_now() + 60; log_lines(t, "stream: started slot") == 0; it_sleep_ms(20))
		if (it_now() >= end || !wc_alive(&t->wc))
			return fail(t, "walcount did not start streaming within 60 s");
	return true;
}

/* SIGUSR1 to the running walcount: one sweep now. Waits for its result. */
bool sweep_now(struct ctx *t, long *id)
{
	long after;

	if (!last_checkpoint(t, &after))
		return false;
	if (!wc_alive(&t->wc) || kill(t->wc.pid, SIGUSR1) != 0)
		return fail(t, "cannot signal walcount (pid %d): %s", (int) t->wc.pid, strerror(errno));
	return wait_sweep(t, after, id);
}

/* The sweep of checkpoint id corrected exactly expected_cells. */
bool check_sweep(struct ctx *t, long id, const char *which, struct sweep_row *r)
{
	long cells;

	if (!read_sweep(t, id, r) || !expected_total(t, &cells) || !sweep_matches(t, id, which))
		return false;
	char what[96];

	snprintf(what, sizeof what, "cells the %s sweep corrected", which);
	return expect_eq_long(t, what, cells, r->corrected);
}

/* Baseline: the first sweep fixes exactly the track, playlist, genre and
 * comment columns the sweep alone maintains (recorded before walcount
 * started, nothing writes them), and never a stream column. */
bool expect_baseline(struct ctx *t)
{
	return expect_recount(t, STREAM_CELLS);
}

/* Stops the writers, then: the stream applied everything, and every
 * aggregate equals the full recount and the harness's own drift check. */
bool settle(struct ctx *t, struct writers *w, bool ok)
{
	ok = stop_writers(t, w) && ok;
	return ok && caught_up(t, CAUGHT_UP_TIMEOUT) && recount_zero(t) && drift_zero(t);
}
