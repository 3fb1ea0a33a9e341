#include "apply.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "pgarray.h"
#include "sqlfiles.h"
#include "strbuf.h"

/* sql/apply_batch.sql's parameters: these four, then the delta arrays in
 * counters.h's order, then the three of the position the batch started
 * from and the partition. */
#define HEAD_PARAMS 4
#define TAIL_PARAMS 4
#define MAX_ARRAYS (AGG__COUNT * (1 + AGG_MAX_COLUMNS))
#define MAX_PARAMS (HEAD_PARAMS + MAX_ARRAYS + TAIL_PARAMS)
/* int8[]'s type oid (pg_type.dat): the arrays' type, which their binary
 * form (pgarray_rows_bin) must match. */
#define INT8_ARRAY_OID 1016

/* The statement is prepared once per connection (apply_prepare): parsing
 * and planning it again for every batch cost up to ~8 % of the backend's
 * CPU at a few hundred rows a batch and ~30 % at a handful
 * (bench/results.md, "Apply statement"). */
static const char stmt_name[] = "walcount_apply_batch";

static bool send_apply(PGconn *conn, const char *slot, int part, const struct progress *from, const struct progress *to,
		       struct strbuf *arrays, char *err, size_t errlen)
{
	char lsn[LSN_BUFLEN], xid[24], changes[24], from_lsn[LSN_BUFLEN], from_xid[24], from_changes[24], partition[16];
	const char *params[MAX_PARAMS] = {slot, lsn_format(to->lsn, lsn), NULL, changes};
	int lengths[MAX_PARAMS] = {0}, formats[MAX_PARAMS] = {0};
	int n = agg_stream_arrays(), tail = HEAD_PARAMS + n;

	if (to->partial_xid != 0)
		params[2] = xid;
	snprintf(xid, sizeof xid, "%" PRIu64, to->partial_xid);
	snprintf(changes, sizeof changes, "%" PRIu64, to->partial_changes);
	for (int i = 0; i < n; i++) {
		params[HEAD_PARAMS + i] = strbuf_str(&arrays[i]);
		lengths[HEAD_PARAMS + i] = (int) arrays[i].len;
		formats[HEAD_PARAMS + i] = 1;
	}
	snprintf(from_xid, sizeof from_xid, "%" PRIu64, from->partial_xid);
	snprintf(from_changes, sizeof from_changes, "%" PRIu64, from->partial_changes);
	params[tail] = lsn_format(from->lsn, from_lsn);
	params[tail + 1] = from_xid;
	params[tail + 2] = from_changes;
	snprintf(partition, sizeof partition, "%d", part);
	params[tail + 3] = partition;
	return db_send_prepared(conn, "applying batch", stmt_name, tail + TAIL_PARAMS, params, lengths, formats, err, errlen);
}

bool apply_send(PGconn *conn, const char *slot, const struct share *s, const struct progress *from, const struct progress *to,
		char *err, size_t errlen)
{
	struct strbuf arrays[MAX_ARRAYS] = {{0}};
	bool ok = true;

	/* The arrays grow with the batch (batch.max_keys): out of memory
	 * refuses the batch rather than aborting the process (xalloc.h). */
	for (int t = 0; ok && t < AGG__COUNT; t++)
		ok = pgarray_table(&arrays[agg_stream_array((enum agg_table) t)], (enum agg_table) t, s->rows[t], s->n[t], true);
	if (!ok)
		snprintf(err, errlen, "applying batch: out of memory");
	else
		ok = send_apply(conn, slot, s->part, from, to, arrays, err, errlen);
	for (size_t i = 0; i < MAX_ARRAYS; i++)
		strbuf_free(&arrays[i]);
	return ok;
}

enum db_async apply_collect(PGconn *conn, const char *slot, int part, const struct progress *from, bool wait, char *err,
			    size_t errlen)
{
	PGresult *res = NULL;
	enum db_async st = db_collect(conn, "applying batch", wait, &res, err, errlen);
	char lsn[LSN_BUFLEN];

	if (st != DB_DONE)
		return st;
	bool moved = PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "1") != 0;
	bool past_end = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 1), "f") == 0;
	PQclear(res);
	if (!moved)
		return DB_DONE;
	if (past_end)
		snprintf(err, errlen,
			 "walcount.progress of slot %s: the batch's position is past this server's WAL end (a position "
			 "from another server, after a failover?); nothing written",
			 slot);
	else
		snprintf(err, errlen,
			 "walcount.progress of slot %s, partition %d, is no longer at %s (xid %" PRIu64 ", %" PRIu64
			 " changes), where this batch started: another consumer applied past it; nothing written",
			 slot, part, lsn_format(from->lsn, lsn), from->partial_xid, from->partial_changes);
	return DB_FAILED;
}

bool apply_prepare(PGconn *conn, char *err, size_t errlen)
{
	Oid types[MAX_PARAMS] = {0};
	int n = agg_stream_arrays();

	for (int i = 0; i < n; i++)
		types[HEAD_PARAMS + i] = INT8_ARRAY_OID;
	/* A durable commit is what makes reporting the LSN as flushed honest;
	 * a server default of synchronous_commit = off must not leak in. */
	return db_command(conn, "preparing apply session", "SET synchronous_commit = on", err, errlen) &&
	       db_prepare(conn, "preparing apply statement", stmt_name, sql_apply_batch, HEAD_PARAMS + n + TAIL_PARAMS, types,
			  err, errlen);
}

static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;

	*out = strtoull(s, &end, 10);
	return *s != '\0' && *end == '\0';
}

static bool read_row(PGresult *res, int i, struct progress_rows *out)
{
	uint64_t part;
	struct progress p;

	if (!parse_u64(PQgetvalue(res, i, 0), &part) || part >= AGG_MAX_PARTITIONS || !lsn_parse(PQgetvalue(res, i, 1), &p.lsn) ||
	    !parse_u64(PQgetvalue(res, i, 2), &p.partial_xid) || !parse_u64(PQgetvalue(res, i, 3), &p.partial_changes))
		return false;
	out->row[part] = p;
	out->uniform = out->uniform && (i == 0 || progress_equal(&p, &out->row[out->max_part]));
	out->max_part = (int) part;
	out->count++;
	return true;
}

bool apply_load_progress(PGconn *conn, const char *slot, struct progress_rows *out, char *err, size_t errlen)
{
	const char *params[1] = {slot};
	PGresult *res = db_exec_params(conn, "reading walcount.progress", sql_progress_read, 1, params, err, errlen);
	bool ok = res != NULL;

	memset(out, 0, sizeof *out);
	out->max_part = -1;
	out->uniform = true;
	for (int i = 0; ok && i < PQntuples(res); i++)
		ok = read_row(res, i, out);
	if (res != NULL && !ok)
		snprintf(err, errlen, "reading walcount.progress: malformed row for slot %s (partitions 0 to %d)", slot,
			 AGG_MAX_PARTITIONS - 1);
	PQclear(res);
	return ok;
}

bool apply_repartition(PGconn *conn, const char *slot, const struct progress *at, int parts, bool *done, char *err, size_t errlen)
{
	char lsn[LSN_BUFLEN], xid[24], changes[24], n[16];
	const char *params[5] = {slot, lsn_format(at->lsn, lsn), xid, changes, n};

	snprintf(xid, sizeof xid, "%" PRIu64, at->partial_xid);
	snprintf(changes, sizeof changes, "%" PRIu64, at->partial_changes);
	snprintf(n, sizeof n, "%d", parts);
	PGresult *res = db_exec_params(conn, "re-partitioning walcount.progress", sql_progress_repartition, 5, params, err,
				       errlen);

	if (res == NULL)
		return false;
	*done = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return true;
}
