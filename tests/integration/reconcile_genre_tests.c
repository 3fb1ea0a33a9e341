/* reconcile_genre: the dominant genre's edge cases through `walcount
 * reconcile [--dry-run]`. */
#include <stdlib.h>
#include <string.h>

#include "reconcile.h"

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
static const char GENRE_FLIP_SQL[] = "UPDATE tracks SET genre = NULL WHERE owner_id = 18 AND genre = 'rock';"
				     "UPDATE tracks SET genre = 'edm' WHERE owner_id = 19 AND created_at = timestamp '2024-01-02';";

struct genre_want {
	int user;
	long tracks, playlists, albums;
	const char *genre; /* NULL: SQL NULL */
	int count;         /* -1: SQL NULL */
};

static const struct genre_want GENRE_WANT[] = {
	{1, 5, 2, 1, "rock", 3},                                                   /* count beats a newer genre */
	{2, 4, 0, 0, "pop", 2},                                                    /* count tie: newest latest track */
	{3, 2, 0, 0, "a", 1},                                                      /* full tie: genre ascending */
	{4, 2, 0, 0, "z", 1},                                                      /* full tie: NULL last */
	{5, 4, 0, 0, NULL, 3},                                                     /* NULL is a group: NULL with a count */
	{6, 3, 0, 0, "", 2},                                                       /* '' is an ordinary genre */
	{7, 2, 0, 0, "", 1},                                                       /* ... and sorts first on a full tie */
	{8, 5, 0, 0, "jazz", 2},                                                   /* Rock, rock, ROCK are three genres */
	{9, 3, 0, 0, "Rock", 2},                                                   /* exact comparison */
	{10, 1, 0, 0, "folk", 1},                                                  /* one track suffices; already right */
	{11, 0, 0, 0, NULL, -1},                                                   /* unlisted */
	{12, 0, 0, 0, NULL, -1},                                                   /* deleted */
	{13, 0, 0, 0, NULL, -1},                                                   /* stem */
	{14, 0, 0, 0, NULL, -1},                                                   /* unavailable */
	{15, 0, 0, 0, NULL, -1},                                                   /* not current */
	{16, 1, 0, 0, "pop", 1},                                                   /* disqualified tracks do not count */
	{17, 4, 0, 0, "pop", 2},                                                   /* ... nor decide the latest upload */
	{18, 3, 0, 0, "rock", 2}, {19, 3, 0, 0, NULL, 2}, {20, 0, 0, 0, NULL, -1}, /* no tracks at all */
	{21, 2, 0, 0, NULL, 1},                                                    /* count tie: the NULL group is newer */
	{22, 0, 0, 0, NULL, -1},                                                   /* default 0 count becomes NULL */
	{23, 4, 0, 0, "a", 2}, /* tie on count and latest: earliest does not matter */
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
	return fail(t, "user %d: tracks %s playlists %s albums %s genre %s count %s; want %ld %ld %ld %s %d (-1: NULL)", w.user,
		    PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), PQgetvalue(res, i, 3), show(g, b1, sizeof b1),
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

	if (!expect_recount(t, NULL) || !rows_to_fix(t, rows) || !cli_sweep(t, label, false, *rows) || !last_checkpoint(t, &id))
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
	if (!configure(t, &o) || !dry_run(t, &dry) || !reconcile_once(t, "dominant_genre-1", &first) || !genres_ok(t, false))
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
