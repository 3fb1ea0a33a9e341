#include "workload.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USERS 2000
#define TRACKS 500
#define PLAYLISTS 300
#define SQL_MAX 1024

/* workload_run's internal result for a unique violation the caller allows. */
#define WL_OK 0
#define WL_UNIQUE 1

uint64_t rng_next(uint64_t *state)
{
	uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

long rng_between(uint64_t *state, long lo, long hi)
{
	return lo + (long) (rng_next(state) % (uint64_t) (hi - lo + 1));
}

bool rng_chance(uint64_t *state, int percent)
{
	return rng_next(state) % 100 < (uint64_t) percent;
}

/* A source table: owner column, item column, and type column (NULL for
 * follows, whose "item" is the followee). */
struct src {
	const char *table, *user_col, *item_col, *type_col;
};

static const struct src SOURCES[] = {
	{"reposts", "user_id", "repost_item_id", "repost_type"},
	{"saves", "user_id", "save_item_id", "save_type"},
	{"follows", "follower_user_id", "followee_user_id", NULL},
};

/* One identity: (user, item[, type]) of a source table. */
struct ident {
	const struct src *src;
	long user, item;
	const char *type;
};

/* One workload_run call: its connection, the current transaction's change
 * count and where errors go. */
struct run {
	PGconn *conn;
	long changes;
	char *err;
	size_t errlen;
};

void workload_init(struct workload *w, uint64_t seed)
{
	*w = (struct workload){.rng = seed};
	w->tag = rng_next(&w->rng);
	for (int i = 0; i < WL_HOT; i++) {
		w->hot_users[i] = rng_between(&w->rng, 1, USERS);
		w->hot_tracks[i] = rng_between(&w->rng, 1, TRACKS);
		w->hot_playlists[i] = rng_between(&w->rng, 1, PLAYLISTS);
	}
}

/* track 50%, playlist 30%, album 20%. */
static const char *pick_type(struct workload *w)
{
	long r = rng_between(&w->rng, 0, 9);

	return r < 5 ? "track" : r < 8 ? "playlist" : "album";
}

/* An item of the given type (NULL: a followee user). */
static long pick_item(struct workload *w, const char *type, bool hot)
{
	bool track = type != NULL && strcmp(type, "track") == 0;
	const long *set = type == NULL ? w->hot_users : track ? w->hot_tracks : w->hot_playlists;
	long range = type == NULL ? USERS : track ? TRACKS : PLAYLISTS;

	return hot ? set[rng_next(&w->rng) % WL_HOT] : rng_between(&w->rng, 1, range);
}

static struct ident pick_ident(struct workload *w)
{
	bool hot = rng_chance(&w->rng, 70);
	struct ident id = {&SOURCES[rng_next(&w->rng) % 3], 0, 0, NULL};

	if (id.src->type_col != NULL)
		id.type = pick_type(w);
	id.user = hot ? w->hot_users[rng_next(&w->rng) % WL_HOT] : rng_between(&w->rng, 1, USERS);
	id.item = pick_item(w, id.type, hot);
	return id;
}

/* "user_col, item_col[, type_col]" */
static void ident_cols(const struct ident *id, char *buf, size_t len)
{
	const struct src *s = id->src;

	snprintf(buf, len, "%s, %s%s%s", s->user_col, s->item_col, s->type_col ? ", " : "", s->type_col ? s->type_col : "");
}

/* "U, I[, 'T']" */
static void ident_vals(const struct ident *id, char *buf, size_t len)
{
	snprintf(buf, len, "%ld, %ld%s%s%s", id->user, id->item, id->type ? ", '" : "", id->type ? id->type : "",
		 id->type ? "'" : "");
}

/* "(cols) = (vals)": PostgreSQL expands it to per-column equalities. */
static void ident_where(const struct ident *id, char *buf, size_t len)
{
	char cols[128], vals[64];

	ident_cols(id, cols, sizeof cols);
	ident_vals(id, vals, sizeof vals);
	snprintf(buf, len, "(%s) = (%s)", cols, vals);
}

/* INSERT of a new row of id with a fresh txhash, plus an optional suffix. */
static void insert_sql(struct workload *w, const struct ident *id, bool current, bool deleted, const char *suffix, char *buf,
		       size_t len)
{
	char cols[128], vals[64];

	ident_cols(id, cols, sizeof cols);
	ident_vals(id, vals, sizeof vals);
	snprintf(buf, len,
		 "INSERT INTO %s (%s, is_current, is_delete, txhash) VALUES (%s, %s, %s, '%016" PRIx64 "-%" PRIu64 "')%s",
		 id->src->table, cols, vals, current ? "true" : "false", deleted ? "true" : "false", w->tag, ++w->seq, suffix);
}

/* Runs one statement and adds its row count to the transaction's changes.
 * A unique violation is WL_UNIQUE when unique_ok, else a failure. */
static int exec_sql(struct run *r, const char *sql, bool unique_ok)
{
	PGresult *res = PQexec(r->conn, sql);
	ExecStatusType st = PQresultStatus(res);
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	int rc = WL_OK;

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		r->changes += atol(PQcmdTuples(res));
	else if (PQstatus(r->conn) != CONNECTION_OK || (state && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0)))
		rc = WL_LOST; /* connection exception, or the server is shutting down */
	else if (unique_ok && state && strcmp(state, "23505") == 0)
		rc = WL_UNIQUE;
	else
		rc = WL_FAILED;
	if (rc == WL_FAILED || rc == WL_LOST) {
		const char *msg = PQerrorMessage(r->conn);
		snprintf(r->err, r->errlen, "workload: %.200s: %.*s", sql, (int) strcspn(msg, "\n"), msg);
	}
	PQclear(res);
	return rc;
}

/* The current indexer: one current row per identity, updated in place. A
 * random is_delete makes toggles on/off and no-op redeliveries. */
static int op_upsert(struct workload *w, struct run *r, const struct ident *id)
{
	char sql[SQL_MAX], cols[128], suffix[256];

	ident_cols(id, cols, sizeof cols);
	snprintf(suffix, sizeof suffix,
		 " ON CONFLICT (%s) WHERE is_current DO UPDATE SET is_delete = EXCLUDED.is_delete, txhash = EXCLUDED.txhash",
		 cols);
	insert_sql(w, id, true, rng_chance(&w->rng, 35), suffix, sql, sizeof sql);
	return exec_sql(r, sql, false);
}

/* An older indexer: demote the current row, insert a new current one. */
static int op_demote_insert(struct workload *w, struct run *r, const struct ident *id)
{
	char sql[SQL_MAX], where[256];

	ident_where(id, where, sizeof where);
	snprintf(sql, sizeof sql, "UPDATE %s SET is_current = false WHERE %s AND is_current", id->src->table, where);
	int rc = exec_sql(r, sql, false);
	if (rc != WL_OK)
		return rc;
	insert_sql(w, id, true, rng_chance(&w->rng, 20), "", sql, sizeof sql);
	return exec_sql(r, sql, false);
}

/* The oldest indexer deleted rows: the current one, or the whole history. */
static int op_delete(struct workload *w, struct run *r, const struct ident *id)
{
	char sql[SQL_MAX], where[256];

	ident_where(id, where, sizeof where);
	snprintf(sql, sizeof sql, "DELETE FROM %s WHERE %s%s", id->src->table, where,
		 rng_chance(&w->rng, 50) ? " AND is_current" : "");
	return exec_sql(r, sql, false);
}

/* Moves one current row of the user to another item (sometimes another
 * type): the count moves between keys. The target identity may already have
 * a current row; the savepoint lets the transaction go on after that unique
 * violation. */
static int op_move(struct workload *w, struct run *r, const struct ident *id)
{
	const struct src *s = id->src;
	const char *type = id->type && rng_chance(&w->rng, 25) ? pick_type(w) : id->type;
	long item = pick_item(w, type, rng_chance(&w->rng, 50));
	char sql[SQL_MAX], set[128];

	if (type != NULL)
		snprintf(set, sizeof set, "%s = %ld, %s = '%s'", s->item_col, item, s->type_col, type);
	else
		snprintf(set, sizeof set, "%s = %ld", s->item_col, item);
	snprintf(sql, sizeof sql, "UPDATE %s SET %s WHERE ctid = (SELECT ctid FROM %s WHERE %s = %ld AND is_current LIMIT 1)",
		 s->table, set, s->table, s->user_col, id->user);
	int rc = exec_sql(r, "SAVEPOINT move", false);
	if (rc == WL_OK)
		rc = exec_sql(r, sql, true);
	if (rc == WL_UNIQUE)
		return exec_sql(r, "ROLLBACK TO SAVEPOINT move", false);
	return rc == WL_OK ? exec_sql(r, "RELEASE SAVEPOINT move", false) : rc;
}

/* A migration demoting every current row of one item at once. */
static int op_bulk_demote(struct workload *w, struct run *r, const struct ident *id)
{
	const struct src *s = id->src;
	char sql[SQL_MAX], type[64] = "";

	(void) w;
	if (id->type != NULL)
		snprintf(type, sizeof type, " AND %s = '%s'", s->type_col, id->type);
	snprintf(sql, sizeof sql, "UPDATE %s SET is_current = false WHERE %s = %ld%s AND is_current", s->table, s->item_col,
		 id->item, type);
	return exec_sql(r, sql, false);
}

/* History rows (is_current = false) must never count. */
static int op_noncurrent(struct workload *w, struct run *r, const struct ident *id)
{
	char sql[SQL_MAX];

	insert_sql(w, id, false, rng_chance(&w->rng, 50), "", sql, sizeof sql);
	return exec_sql(r, sql, false);
}

static const struct {
	int weight; /* percent */
	int (*fn)(struct workload *w, struct run *r, const struct ident *id);
} OPS[] = {
	{55, op_upsert}, {15, op_demote_insert}, {10, op_delete}, {12, op_move}, {2, op_bulk_demote}, {6, op_noncurrent},
};

static int run_op(struct workload *w, struct run *r)
{
	struct ident id = pick_ident(w);
	long pick = rng_between(&w->rng, 0, 99);
	size_t i = 0;

	while (pick >= OPS[i].weight) {
		pick -= OPS[i].weight;
		i++;
	}
	return OPS[i].fn(w, r, &id);
}

/* One transaction. Its changes count only when COMMIT succeeds. */
static int run_txn(struct workload *w, struct run *r, long *committed)
{
	bool big = rng_chance(&w->rng, 3);
	long ops = big ? rng_between(&w->rng, 50, 300) : rng_between(&w->rng, 1, 8);
	bool commit = !rng_chance(&w->rng, 10);
	int rc = exec_sql(r, "BEGIN", false);

	r->changes = 0;
	for (long i = 0; i < ops && rc == WL_OK; i++)
		rc = run_op(w, r);
	long changes = r->changes;
	if (rc == WL_OK)
		rc = exec_sql(r, commit ? "COMMIT" : "ROLLBACK", false);
	else if (rc == WL_FAILED)
		PQclear(PQexec(r->conn, "ROLLBACK")); /* best effort: the caller still uses the connection */
	if (rc != WL_OK)
		return rc;
	*committed = commit ? changes : 0;
	w->transactions += commit;
	w->rollbacks += !commit;
	w->big += commit && big;
	return WL_OK;
}

long workload_run(struct workload *w, PGconn *conn, long target, char *err, size_t errlen)
{
	struct run r = {conn, 0, err, errlen};
	long done = 0;

	while (done < target) {
		long n;
		int rc = run_txn(w, &r, &n);
		if (rc != WL_OK)
			return rc;
		done += n;
		w->committed += n;
	}
	return done;
}
