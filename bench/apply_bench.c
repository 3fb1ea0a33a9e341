/* apply_bench: the apply statement measured on its own (bench/apply.sh).
 * Drives batches of a realistic shape through several ways of sending the
 * batch statement, one connection each, interleaved round by round on the
 * same batches, against a database holding the aggregate tables
 * (bench/apply.sh loads them); prints per variant the backend's CPU (from
 * /proc: the server must run on this machine), the client's CPU and the
 * wall time per 1M source changes, and each as a ratio to the first
 * variant.
 *
 *   apply_bench CONNINFO SQLFILE SHAPE CHANGES ROUNDS BATCHES VARIANTS
 *     SQLFILE   sql/apply_batch.sql (its arrays are int8[])
 *     SHAPE     mixed (bench/suite_gen.sql's mix: 6 reposts, 2 saves and
 *               2 follows in 10, one repost in 30 of a playlist) or repost
 *     CHANGES   source changes per batch; 1 track or playlist key in 500
 *               is missing from its table (inserted)
 *     VARIANTS  letters, the first the baseline:
 *       t SQLFILE, text arrays, unprepared (walcount before 9af8c53)
 *       p SQLFILE, text arrays, prepared once per connection
 *       w SQLFILE, binary arrays, prepared (what walcount sends)
 *       u prepared, binary; the existing rows by UPDATE ... FROM unnest(),
 *         INSERT ... ON CONFLICT only for the keys the UPDATE did not find
 *       m u with only the tables and columns the batch changes (one
 *         prepared statement per set)
 * Bench code: exits on the first error. */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#define NT 3
#define NC 4
/* The population (bench/apply.sh's BENCH_USERS, BENCH_TRACKS,
 * BENCH_PLAYLISTS): keys 1..n of each table exist. */
static long USERS = 100000, TRACKS = 1000000, PLAYLISTS = 10000;
#define MAXV 8
#define MAXP 32

static const int ncols[NT] = {4, 2, 2};
static const char *const tname[NT] = {"aggregate_user", "aggregate_track", "aggregate_playlist"};
static const char *const tkey[NT] = {"user_id", "track_id", "playlist_id"};
static const char *const cname[NT][NC] = {
	{"repost_count", "track_save_count", "follower_count", "following_count"},
	{"repost_count", "save_count"},
	{"repost_count", "save_count"},
};
static const bool nullable[NT] = {true, false, true};

struct tab {
	size_t n, cap;
	int64_t *key;
	int64_t *d[NC];
};

struct batch {
	struct tab t[NT];
	size_t changes;
};

struct entry {
	int64_t key;
	int col;
	int64_t d;
};

static void die(const char *what, PGconn *c)
{
	fprintf(stderr, "apply_bench: %s: %s\n", what, c ? PQerrorMessage(c) : "");
	exit(1);
}

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	return x->key < y->key ? -1 : x->key > y->key;
}

/* New keys (rows missing from the table) are numbered above every key the
 * tables hold (new_base, read at the start) and spread per variant (+ v) so
 * every variant inserts its own. */
static int64_t new_base = 100000000;
#define NEW_BASE new_base
static int64_t next_new = 0;

static void coalesce(struct tab *t, int nc, struct entry *e, size_t ne)
{
	qsort(e, ne, sizeof *e, cmp_entry);
	t->key = calloc(ne + 1, sizeof(int64_t));
	for (int c = 0; c < nc; c++)
		t->d[c] = calloc(ne + 1, sizeof(int64_t));
	t->n = 0;
	for (size_t i = 0; i < ne;) {
		int64_t sum[NC] = {0};
		size_t j = i;
		for (; j < ne && e[j].key == e[i].key; j++)
			sum[e[j].col] += e[j].d;
		bool any = false;
		for (int c = 0; c < nc; c++)
			any |= sum[c] != 0;
		if (any) {
			t->key[t->n] = e[i].key;
			for (int c = 0; c < nc; c++)
				t->d[c][t->n] = sum[c];
			t->n++;
		}
		i = j;
	}
}

static void gen(struct batch *b, const char *shape, size_t changes)
{
	struct entry *e[NT];
	size_t ne[NT] = {0};
	bool reposts = strcmp(shape, "repost") == 0;

	for (int t = 0; t < NT; t++)
		e[t] = malloc(sizeof(struct entry) * (2 * changes + 1));
	for (size_t i = 0; i < changes; i++) {
		int64_t d = (rnd() % 3 == 0) ? -1 : 1;
		int64_t u = 1 + (int64_t) (rnd() % USERS);
		unsigned kind = reposts ? 0 : (unsigned) (i % 10);
		/* 1 in 500 track or playlist keys is missing from its table. */
		bool fresh = rnd() % 500 == 0;
		if (kind < 6) {
			e[0][ne[0]++] = (struct entry){u, 0, d};
			if (rnd() % 30 == 0) {
				int64_t p = fresh ? NEW_BASE + MAXV * next_new++ : 1 + (int64_t) (rnd() % PLAYLISTS);
				e[2][ne[2]++] = (struct entry){p, 0, d};
			} else {
				int64_t tr = fresh ? NEW_BASE + MAXV * next_new++ : 1 + (int64_t) (rnd() % TRACKS);
				e[1][ne[1]++] = (struct entry){tr, 0, d};
			}
		} else if (kind < 8) {
			int64_t tr = fresh ? NEW_BASE + MAXV * next_new++ : 1 + (int64_t) (rnd() % TRACKS);
			e[0][ne[0]++] = (struct entry){u, 1, d};
			e[1][ne[1]++] = (struct entry){tr, 1, d};
		} else {
			int64_t g = 1 + (int64_t) (rnd() % USERS);
			e[0][ne[0]++] = (struct entry){u, 3, d};
			e[0][ne[0]++] = (struct entry){g, 2, d};
		}
	}
	for (int t = 0; t < NT; t++) {
		coalesce(&b->t[t], ncols[t], e[t], ne[t]);
		free(e[t]);
	}
	b->changes = changes;
}

static void batch_free(struct batch *b)
{
	for (int t = 0; t < NT; t++) {
		free(b->t[t].key);
		for (int c = 0; c < NC; c++)
			free(b->t[t].d[c]);
	}
}

/* A growable byte buffer. */
struct buf {
	char *p;
	size_t len, cap;
};

static void put(struct buf *b, const void *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void putf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#include <stdarg.h>
static void putf(struct buf *b, const char *fmt, ...)
{
	char tmp[8192];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n >= (int) sizeof tmp)
		die("putf: too long", NULL);
	put(b, tmp, (size_t) n);
}

static void text_array(struct buf *b, const int64_t *v, size_t n, int64_t add_new)
{
	b->len = 0;
	put(b, "{", 1);
	for (size_t i = 0; i < n; i++) {
		int64_t x = v[i] >= NEW_BASE ? v[i] + add_new : v[i];
		putf(b, "%s%" PRId64, i ? "," : "", x);
	}
	put(b, "}", 1);
}

static void put32(struct buf *b, uint32_t x)
{
	x = htonl(x);
	put(b, &x, 4);
}

static void bin_array(struct buf *b, const int64_t *v, size_t n, int64_t add_new)
{
	b->len = 0;
	put32(b, n ? 1 : 0);
	put32(b, 0);
	put32(b, 20);
	if (n) {
		put32(b, (uint32_t) n);
		put32(b, 1);
	}
	for (size_t i = 0; i < n; i++) {
		int64_t x = v[i] >= NEW_BASE ? v[i] + add_new : v[i];
		put32(b, 8);
		put32(b, (uint32_t) ((uint64_t) x >> 32));
		put32(b, (uint32_t) x);
	}
}

/* The study statement for the tables/columns in mask[t] (bit c = column c;
 * 0 = table left out). Parameters: $1..$4 as sql/apply_batch.sql's, then
 * per present table its keys and one array per present column, then the
 * three of `from` and the partition. */
static char *new_sql(const unsigned mask[NT], int *nparams)
{
	struct buf s = {0};
	int p = 5;
	int pk[NT], pc[NT][NC];

	for (int t = 0; t < NT; t++) {
		if (!mask[t])
			continue;
		pk[t] = p++;
		for (int c = 0; c < ncols[t]; c++)
			if (mask[t] & (1u << c))
				pc[t][c] = p++;
	}
	int tail = p;
	putf(&s, "WITH bound AS (SELECT $2::pg_lsn <= pg_current_wal_lsn() AS ok), progress AS ("
		 "INSERT INTO walcount.progress AS p (slot_name, part, lsn, partial_xid, partial_changes, updated_at) "
		 "SELECT $1, $%d::int, $2::pg_lsn, $3::bigint, $4::bigint, now() FROM bound WHERE bound.ok "
		 "ON CONFLICT (slot_name, part) DO UPDATE SET lsn = excluded.lsn, partial_xid = excluded.partial_xid, "
		 "partial_changes = excluded.partial_changes, updated_at = excluded.updated_at "
		 "WHERE p.lsn = $%d::pg_lsn AND coalesce(p.partial_xid, 0) = $%d::bigint AND p.partial_changes = "
		 "$%d::bigint RETURNING 1)",
	     tail + 3, tail, tail + 1, tail + 2);
	for (int t = 0; t < NT; t++) {
		if (!mask[t])
			continue;
		struct buf un = {0}, al = {0}, sets = {0}, isets = {0}, icols = {0}, ivals = {0};
		putf(&un, "unnest($%d::bigint[]", pk[t]);
		putf(&al, "d(id");
		for (int c = 0; c < ncols[t]; c++) {
			if (!(mask[t] & (1u << c)))
				continue;
			putf(&un, ", $%d::bigint[]", pc[t][c]);
			putf(&al, ", c%d", c);
			const char *col = cname[t][c];
			if (nullable[t]) {
				putf(&sets, "%s%s = coalesce(a.%s, 0) + d.c%d", sets.len ? ", " : "", col, col, c);
				putf(&isets, "%s%s = coalesce(a.%s, 0) + excluded.%s", isets.len ? ", " : "", col, col, col);
			} else {
				putf(&sets, "%s%s = a.%s + d.c%d", sets.len ? ", " : "", col, col, c);
				putf(&isets, "%s%s = a.%s + excluded.%s", isets.len ? ", " : "", col, col, col);
			}
			putf(&icols, ", %s", col);
			putf(&ivals, ", d.c%d", c);
		}
		put(&un, ")", 1);
		put(&al, ")", 1);
		putf(&s,
		     ", u%d AS (UPDATE %s AS a SET %s FROM %s AS %s WHERE a.%s = d.id AND EXISTS (SELECT FROM progress) "
		     "RETURNING a.%s AS id)",
		     t, tname[t], sets.p, un.p, al.p, tkey[t], tkey[t]);
		const char *extra_col = t == 0 ? ", dominant_genre_count" : t == 2 ? ", is_album" : "";
		const char *extra_val = t == 0 ? ", NULL::int"
				      : t == 2 ? ", (SELECT pl.is_album FROM playlists pl WHERE pl.playlist_id = d.id AND "
						 "pl.is_current LIMIT 1)"
					       : "";
		putf(&s,
		     ", i%d AS (INSERT INTO %s AS a (%s%s%s) SELECT d.id%s%s FROM %s AS %s WHERE EXISTS (SELECT FROM "
		     "progress) AND NOT EXISTS (SELECT FROM u%d WHERE u%d.id = d.id) ON CONFLICT (%s) DO UPDATE SET %s)",
		     t, tname[t], tkey[t], icols.p, extra_col, ivals.p, extra_val, un.p, al.p, t, t, tkey[t], isets.p);
		free(un.p), free(al.p), free(sets.p), free(isets.p), free(icols.p), free(ivals.p);
	}
	putf(&s, " SELECT (SELECT count(*) FROM progress), ok FROM bound");
	*nparams = tail + 4;
	return s.p;
}

struct prog {
	uint64_t lsn;
};

struct variant {
	char letter;
	PGconn *conn;
	int pid;
	bool prepared, binary, newsql, masked;
	char prepared_mask[1 << 9]; /* statements prepared, by mask id */
	struct prog from;
	double client_s, wall_s;
	long ticks0;
	size_t changes, batches, rows;
};

static long proc_ticks(int pid)
{
	char path[64], line[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f || !fgets(line, sizeof line, f))
		die("reading /proc stat", NULL);
	fclose(f);
	char *p = strrchr(line, ')') + 2;
	long ut = 0, st = 0;
	/* fields 3.. after ')': state(3) ... utime(14) stime(15) */
	int field = 3;
	for (char *tok = strtok(p, " "); tok; tok = strtok(NULL, " "), field++) {
		if (field == 14)
			ut = atol(tok);
		if (field == 15) {
			st = atol(tok);
			break;
		}
	}
	return ut + st;
}

static double now_s(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *old_sql;

static void run_batch(struct variant *v, const struct batch *b, size_t vi)
{
	double c0 = now_s(CLOCK_PROCESS_CPUTIME_ID), w0 = now_s(CLOCK_MONOTONIC);
	unsigned mask[NT];
	struct buf arr[MAXP] = {{0}};
	const char *vals[MAXP] = {0};
	int lens[MAXP] = {0}, fmts[MAXP] = {0};
	char lsn[32], from_lsn[32];
	int np = 4;

	for (int t = 0; t < NT; t++) {
		mask[t] = 0;
		if (!v->masked)
			mask[t] = (1u << ncols[t]) - 1;
		else
			for (int c = 0; c < ncols[t]; c++)
				for (size_t i = 0; i < b->t[t].n; i++)
					if (b->t[t].d[c][i] != 0) {
						mask[t] |= 1u << c;
						break;
					}
	}
	uint64_t to = v->from.lsn + 1;
	snprintf(lsn, sizeof lsn, "%X/%X", (unsigned) (to >> 32), (unsigned) to);
	snprintf(from_lsn, sizeof from_lsn, "%X/%X", (unsigned) (v->from.lsn >> 32), (unsigned) v->from.lsn);
	vals[0] = "bench";
	vals[1] = lsn;
	vals[2] = NULL;
	vals[3] = "0";
	for (int t = 0; t < NT; t++) {
		if (!mask[t])
			continue;
		const struct tab *tb = &b->t[t];
		for (int c = -1; c < ncols[t]; c++) {
			if (c >= 0 && !(mask[t] & (1u << c)))
				continue;
			const int64_t *src = c < 0 ? tb->key : tb->d[c];
			int64_t add = c < 0 ? (int64_t) vi : 0;
			if (v->binary) {
				bin_array(&arr[np], src, tb->n, add);
				fmts[np] = 1;
			} else {
				text_array(&arr[np], src, tb->n, add);
			}
			vals[np] = arr[np].p;
			lens[np] = (int) arr[np].len;
			np++;
		}
	}
	vals[np++] = v->from.lsn == 0 ? "0/0" : from_lsn;
	vals[np++] = "0";
	vals[np++] = "0";
	vals[np++] = "0"; /* partition */

	unsigned id = mask[0] | mask[1] << 4 | mask[2] << 6;
	char name[16];
	snprintf(name, sizeof name, "s%u", id);
	int ok;
	if (!v->prepared) {
		ok = PQsendQueryParams(v->conn, old_sql, np, NULL, vals, lens, fmts, 0);
	} else {
		if (!v->prepared_mask[id]) {
			int nparams;
			char *sql = v->newsql ? new_sql(mask, &nparams) : strdup(old_sql);
			PGresult *r = PQprepare(v->conn, name, sql, 0, NULL);
			if (PQresultStatus(r) != PGRES_COMMAND_OK) {
				fprintf(stderr, "%s\n", sql);
				die("prepare", v->conn);
			}
			PQclear(r);
			free(sql);
			v->prepared_mask[id] = 1;
		}
		ok = PQsendQueryPrepared(v->conn, name, np, vals, lens, fmts, 0);
	}
	if (!ok)
		die("send", v->conn);
	PGresult *r, *last = NULL;
	while ((r = PQgetResult(v->conn)) != NULL) {
		if (PQresultStatus(r) != PGRES_TUPLES_OK)
			die("apply", v->conn);
		PQclear(last);
		last = r;
	}
	if (!last || strcmp(PQgetvalue(last, 0, 0), "1") != 0)
		die("CAS failed", v->conn);
	PQclear(last);
	v->from.lsn = to;
	for (int i = 0; i < MAXP; i++)
		free(arr[i].p);
	v->client_s += now_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
	v->wall_s += now_s(CLOCK_MONOTONIC) - w0;
	v->changes += b->changes;
	v->batches++;
	v->rows += b->t[0].n + b->t[1].n + b->t[2].n;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		die(path, NULL);
	struct buf b = {0};
	char tmp[4096];
	size_t n;
	while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
		put(&b, tmp, n);
	fclose(f);
	return b.p;
}

int main(int argc, char **argv)
{
	if (argc != 8) {
		fprintf(stderr, "usage: apply_bench CONNINFO SQLFILE SHAPE CHANGES ROUNDS BATCHES VARIANTS\n");
		return 2;
	}
	old_sql = slurp(argv[2]);
	if (getenv("BENCH_USERS"))
		USERS = atol(getenv("BENCH_USERS"));
	if (getenv("BENCH_TRACKS"))
		TRACKS = atol(getenv("BENCH_TRACKS"));
	if (getenv("BENCH_PLAYLISTS"))
		PLAYLISTS = atol(getenv("BENCH_PLAYLISTS"));

	const char *shape = argv[3];
	size_t changes = (size_t) atol(argv[4]);
	int rounds = atoi(argv[5]), batches = atoi(argv[6]);
	const char *letters = argv[7];
	int nv = (int) strlen(letters);
	struct variant vs[MAXV] = {{0}};

	for (int i = 0; i < nv; i++) {
		struct variant *v = &vs[i];
		v->letter = letters[i];
		v->conn = PQconnectdb(argv[1]);
		if (PQstatus(v->conn) != CONNECTION_OK)
			die("connect", v->conn);
		PGresult *r = PQexec(v->conn, "SET synchronous_commit = on");
		PQclear(r);
		v->pid = PQbackendPID(v->conn);
		switch (v->letter) {
		case 't': break;
		case 'p': v->prepared = true; break;
		case 'w': v->prepared = v->binary = true; break;
		case 'u': v->prepared = v->newsql = v->binary = true; break;
		case 'm': v->prepared = v->newsql = v->masked = v->binary = true; break;
		default: fprintf(stderr, "unknown variant %c\n", v->letter); return 2;
		}
	}
	/* The variants take turns on one progress row, each batch's
	 * compare-and-set starting where the previous one left it. */
	PGresult *r = PQexec(vs[0].conn, "DELETE FROM walcount.progress WHERE slot_name = 'bench'");
	PQclear(r);
	r = PQexec(vs[0].conn, "SELECT greatest((SELECT max(track_id) FROM aggregate_track), "
			       "(SELECT max(playlist_id) FROM aggregate_playlist), 100000000) + 1");
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		die("reading the largest key", vs[0].conn);
	new_base = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	uint64_t shared_lsn = 0;
	for (int i = 0; i < nv; i++)
		vs[i].ticks0 = proc_ticks(vs[i].pid);
	for (int round = 0; round < rounds; round++) {
		struct batch *bs = calloc((size_t) batches, sizeof *bs);
		for (int i = 0; i < batches; i++)
			gen(&bs[i], shape, changes);
		for (int k = 0; k < nv; k++) {
			int i = (k + round) % nv;
			for (int j = 0; j < batches; j++) {
				vs[i].from.lsn = shared_lsn;
				run_batch(&vs[i], &bs[j], (size_t) i + 1);
				shared_lsn = vs[i].from.lsn;
			}
		}
		for (int i = 0; i < batches; i++)
			batch_free(&bs[i]);
		free(bs);
	}
	long hz = sysconf(_SC_CLK_TCK);
	double base_srv = 0, base_cli = 0, base_wall = 0;
	printf("shape %s, %zu changes/batch, %.0f rows/batch, %d rounds x %d batches per variant\n", shape, changes,
	       (double) vs[0].rows / (double) vs[0].batches, rounds, batches);
	printf("%-3s %12s %12s %12s %8s %8s %8s\n", "var", "backend s/1M", "client s/1M", "wall s/1M", "backend", "client",
	       "wall");
	for (int i = 0; i < nv; i++) {
		struct variant *v = &vs[i];
		double m = 1e6 / (double) v->changes;
		double srv = (double) (proc_ticks(v->pid) - v->ticks0) / (double) hz * m;
		double cli = v->client_s * m, wall = v->wall_s * m;
		if (i == 0)
			base_srv = srv, base_cli = cli, base_wall = wall;
		printf("%-3c %12.2f %12.2f %12.2f %7.2fx %7.2fx %7.2fx\n", v->letter, srv, cli, wall, srv / base_srv,
		       cli / base_cli, wall / base_wall);
		PQfinish(v->conn);
	}
	return 0;
}
