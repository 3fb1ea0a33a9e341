#include "fanout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"

void fanout_init(struct fanout *f, int parts)
{
	memset(f, 0, sizeof *f);
	f->parts = parts;
}

bool fanout_connect(struct fanout *f, const struct config *cfg, char *err, size_t errlen)
{
	for (int p = 1; p < f->parts; p++) {
		if (f->conn[p] != NULL)
			continue;
		f->conn[p] = db_connect(cfg, DB_NORMAL, err, errlen);
		/* A connection without the prepared statement is no use to
		 * apply_send: the next call connects it again. */
		if (f->conn[p] != NULL && !apply_prepare(f->conn[p], err, errlen)) {
			PQfinish(f->conn[p]);
			f->conn[p] = NULL;
		}
		if (f->conn[p] == NULL)
			return false;
	}
	return true;
}

void fanout_close(struct fanout *f)
{
	for (int p = 1; p < f->parts; p++) {
		PQfinish(f->conn[p]);
		f->conn[p] = NULL;
	}
}

static PGconn *conn_of(struct fanout *f, PGconn *main, int part)
{
	return part == 0 ? main : f->conn[part];
}

/* The rows of every table, grouped by partition (batch_group): rows[t] and
 * start[t][0..parts]. False when out of memory. */
static bool split(const struct batch *b, int parts, struct batch_row **rows, size_t (*start)[AGG_MAX_PARTITIONS + 1])
{
	bool ok = true;

	for (int t = 0; t < AGG__COUNT; t++) {
		size_t n;
		rows[t] = batch_rows(b, (enum agg_table) t, &n);
		if (rows[t] == NULL && n != 0)
			n = 0, ok = false;
		ok = batch_group(rows[t], n, (enum agg_table) t, parts, start[t]) && ok;
	}
	return ok;
}

static bool send_share(struct fanout *f, PGconn *main, const char *slot, struct batch_row **rows,
		       size_t (*start)[AGG_MAX_PARTITIONS + 1], struct ledger *l, int p, char *err, size_t errlen)
{
	struct share s = {.part = p};
	PGconn *conn = conn_of(f, main, p);

	for (int t = 0; t < AGG__COUNT; t++) {
		s.rows[t] = rows[t] + start[t][p];
		s.n[t] = start[t][p + 1] - start[t][p];
	}
	if (conn == NULL) {
		snprintf(err, errlen, "applying batch: partition %d has no connection", p);
		return false;
	}
	return apply_send(conn, slot, &s, &l->stored[p], &l->pending, err, errlen);
}

static bool has_rows(size_t (*start)[AGG_MAX_PARTITIONS + 1], int p)
{
	for (int t = 0; t < AGG__COUNT; t++)
		if (start[t][p + 1] > start[t][p])
			return true;
	return false;
}

bool fanout_send(struct fanout *f, PGconn *main, const char *slot, const struct batch *b, struct ledger *l, bool force,
		 int64_t now_ms, char *err, size_t errlen)
{
	struct batch_row *rows[AGG__COUNT];
	size_t start[AGG__COUNT][AGG_MAX_PARTITIONS + 1];
	uint64_t mask = 0;
	bool ok = split(b, f->parts, rows, start);

	if (!ok)
		snprintf(err, errlen, "applying batch: out of memory");
	for (int p = 0; ok && p < f->parts; p++) {
		bool rows_here = has_rows(start, p);
		if (!ledger_share_needed(l, p, rows_here, force, now_ms)) {
			/* Deltas are held only for changes a partition lacks,
			 * which lie past its row. */
			if (rows_here)
				snprintf(err, errlen, "applying batch: partition %d has deltas behind its progress row", p),
					ok = false;
			continue;
		}
		ok = send_share(f, main, slot, rows, start, l, p, err, errlen);
		if (ok)
			mask |= (uint64_t) 1 << p;
	}
	for (int t = 0; t < AGG__COUNT; t++)
		free(rows[t]);
	if (ok)
		ledger_sent(l, mask);
	return ok;
}

enum db_async fanout_collect(struct fanout *f, PGconn *main, const char *slot, struct ledger *l, bool wait, int64_t now_ms,
			     char *err, size_t errlen)
{
	bool busy = false;

	for (int p = 0; l->inflight && p < f->parts; p++) {
		if (!(l->inflight_parts & ((uint64_t) 1 << p)))
			continue;
		enum db_async st = apply_collect(conn_of(f, main, p), slot, p, &l->stored[p], wait, err, errlen);
		if (st == DB_FAILED)
			return DB_FAILED;
		if (st == DB_BUSY)
			busy = true;
		else
			ledger_share_durable(l, p, now_ms);
	}
	return busy ? DB_BUSY : DB_DONE;
}

bool fanout_alive(struct fanout *f, char *err, size_t errlen)
{
	for (int p = 1; p < f->parts; p++)
		if (f->conn[p] != NULL && PQconsumeInput(f->conn[p]) != 1) {
			char line[512];
			snprintf(err, errlen, "apply connection of partition %d lost: %s", p,
				 db_error_line(f->conn[p], line, sizeof line));
			return false;
		}
	return true;
}

int fanout_sockets(const struct fanout *f, int *fds, int max)
{
	int n = 0;

	for (int p = 1; p < f->parts && n < max; p++)
		if (f->conn[p] != NULL && PQsocket(f->conn[p]) >= 0)
			fds[n++] = PQsocket(f->conn[p]);
	return n;
}
