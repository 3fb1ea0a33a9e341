#include "stream.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <poll.h>

#include "clock.h"
#include "db.h"
#include "decodepool.h"
#include "log.h"

/* Microseconds between the Unix epoch and PostgreSQL's (2000-01-01). */
#define PG_EPOCH_OFFSET_US INT64_C(946684800000000)
/* 'w' + dataStart + walEnd + sendTime */
#define XLOGDATA_HEADER 25
/* 'k' + walEnd + sendTime + replyRequested */
#define KEEPALIVE_LEN 18
#define SHUTDOWN_DRAIN_MS 5000
/* Records read ahead of the one the sink takes next: enough to keep the
 * decode threads busy while it takes them, few enough for a flat RSS. */
#define DECODE_MAX_RECORDS 1024
#define DECODE_MAX_BYTES (4 * 1024 * 1024)

/* Per-connection state. */
struct conn_state {
	PGconn *conn;
	const struct stream_opts *opts;
	const struct stream_sink *sink;
	struct decodepool *pool; /* records read, not yet taken by the sink */
	lsn_t sent_flush;        /* last flush position reported */
	int64_t next_status_ms;  /* when the next standby status update is due */
};

static void put_u64(char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (char) (v & 0xff);
}

static uint64_t get_u64(const char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | (unsigned char) p[i];
	return v;
}

/* Sends a standby status update ('r'): written, flushed and applied are all
 * the sink's durable LSN, since nothing counts as received until applied.
 * Skipped when nothing moved, unless forced (reply requested, interval). */
static bool send_status(struct conn_state *cs, bool force)
{
	lsn_t flush = cs->sink->durable(cs->sink->ctx);
	char msg[34];

	if (!force && flush == cs->sent_flush)
		return true;
	msg[0] = 'r';
	put_u64(msg + 1, flush);
	put_u64(msg + 9, flush);
	put_u64(msg + 17, flush);
	put_u64(msg + 25, (uint64_t) (clock_wall_us() - PG_EPOCH_OFFSET_US));
	msg[33] = 0;
	if (PQputCopyData(cs->conn, msg, sizeof msg) <= 0 || PQflush(cs->conn) != 0) {
		char line[256];
		log_warn("stream: sending status update failed: %s", db_error_line(cs->conn, line, sizeof line));
		return false;
	}
	cs->sent_flush = flush;
	cs->next_status_ms = clock_now_ms() + cs->opts->status_interval_ms;
	return true;
}

static bool start_replication(struct conn_state *cs)
{
	const struct stream_opts *o = cs->opts;
	char sql[512], lsn[LSN_BUFLEN], err[512];
	PGresult *res;

	if (o->temporary) {
		snprintf(sql, sizeof sql, "CREATE_REPLICATION_SLOT \"%s\" TEMPORARY LOGICAL wal2json (SNAPSHOT 'nothing')",
			 o->slot);
		if ((res = db_exec(cs->conn, "creating temporary slot", sql, err, sizeof err)) == NULL) {
			log_error("stream: %s", err);
			return false;
		}
		PQclear(res);
	}
	snprintf(sql, sizeof sql,
		 "START_REPLICATION SLOT \"%s\" LOGICAL %s (\"format-version\" '2', \"include-xids\" '1', "
		 "\"include-lsn\" '1', \"include-transaction\" '1', \"include-timestamp\" '1', \"include-types\" '0', "
		 "\"add-tables\" 'public.reposts,public.saves,public.follows', \"add-msg-prefixes\" 'walcount')",
		 o->slot, lsn_format(o->start, lsn));
	res = PQexec(cs->conn, sql);
	if (PQresultStatus(res) != PGRES_COPY_BOTH) {
		log_error("stream: START_REPLICATION failed: %s", db_error_line(cs->conn, err, sizeof err));
		PQclear(res);
		return false;
	}
	PQclear(res);
	log_event(LOG_INFO, "stream_started", o->start, 0, "stream: started slot %s at %s", o->slot, lsn);
	return true;
}

/* poll, not select: libpq's socket may be any number, and FD_SET on one
 * >= FD_SETSIZE writes past the fd_set (issue 12: a flood of the metrics
 * port pushed it to 1024). */
static int poll_ms(int64_t ms)
{
	return ms <= 0 ? 0 : ms > INT_MAX ? INT_MAX : (int) ms;
}

/* Waits until the stream's socket or the sink's (-1: none) is readable or
 * deadline_ms passes. */
static bool wait_socket(PGconn *conn, const struct stream_sink *sink, int64_t deadline_ms)
{
	struct pollfd pfd[1 + STREAM_SINK_FDS] = {{.fd = PQsocket(conn), .events = POLLIN}};
	int fds[STREAM_SINK_FDS], n = sink != NULL ? sink->wait_fds(sink->ctx, fds, STREAM_SINK_FDS) : 0;

	if (pfd[0].fd < 0)
		return false;
	for (int i = 0; i < n; i++)
		pfd[1 + i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
	if (poll(pfd, (nfds_t) (1 + n), poll_ms(deadline_ms - clock_now_ms())) < 0 && errno != EINTR) {
		log_warn("stream: poll: %s", strerror(errno));
		return false;
	}
	return PQconsumeInput(conn) == 1;
}

/* More bytes wait in the socket (a backlog), without blocking. */
static bool socket_has_data(PGconn *conn)
{
	struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};

	return pfd.fd >= 0 && poll(&pfd, 1, 0) > 0;
}

/* Hands the records parsed so far to the sink, in stream order, after
 * waiting for the oldest wait ones (0: none). */
static enum stream_result deliver(struct conn_state *cs, size_t wait)
{
	const struct decoded *d;

	decodepool_wait(cs->pool, wait);
	while ((d = decodepool_peek(cs->pool)) != NULL) {
		enum stream_result rc = cs->sink->change(cs->sink->ctx, d->ok ? &d->change : NULL, d->ok ? NULL : d->err,
							 d->wal_start);
		decodepool_pop(cs->pool);
		if (rc != STREAM_CONTINUE)
			return rc;
	}
	return STREAM_CONTINUE;
}

/* Every record read so far, to the sink. */
static enum stream_result deliver_all(struct conn_state *cs)
{
	enum stream_result rc = STREAM_CONTINUE;

	while (rc == STREAM_CONTINUE && decodepool_pending(cs->pool) > 0)
		rc = deliver(cs, decodepool_pending(cs->pool));
	return rc;
}

/* The reader waits on a parse only when the queue is full, and then for
 * half of it, to read on in a run rather than one record at a time. */
static enum stream_result submit(struct conn_state *cs, const char *data, size_t len, lsn_t wal_start)
{
	enum stream_result rc;

	while (decodepool_full(cs->pool))
		if ((rc = deliver(cs, decodepool_pending(cs->pool) / 2 + 1)) != STREAM_CONTINUE)
			return rc;
	decodepool_submit(cs->pool, data, len, wal_start);
	return deliver(cs, 0);
}

static enum stream_result handle_message(struct conn_state *cs, const char *buf, int len)
{
	if (buf[0] == 'w' && len >= XLOGDATA_HEADER)
		return submit(cs, buf + XLOGDATA_HEADER, (size_t) (len - XLOGDATA_HEADER), get_u64(buf + 1));
	if (buf[0] == 'k' && len >= KEEPALIVE_LEN) {
		/* The server's WAL end is past every record before it: the sink
		 * may confirm it as idle only once it has handled them all. */
		enum stream_result rc = deliver_all(cs);
		if (rc != STREAM_CONTINUE)
			return rc;
		cs->sink->keepalive(cs->sink->ctx, get_u64(buf + 1));
		if (buf[17] && !send_status(cs, true))
			return STREAM_LOST;
		return STREAM_CONTINUE;
	}
	log_error("stream: unexpected replication message '%c' of %d bytes", buf[0], len);
	return STREAM_FATAL;
}

/* The server ended the copy or the connection broke: say why. */
static enum stream_result copy_ended(struct conn_state *cs, int rc)
{
	char line[512];

	if (rc == -1) {
		PGresult *res = PQgetResult(cs->conn);
		log_event(LOG_WARN, "disconnected", 0, 0, "stream: server ended replication: %s",
			  PQresultStatus(res) == PGRES_COMMAND_OK ? "no error" : db_error_line(cs->conn, line, sizeof line));
		PQclear(res);
	} else {
		log_event(LOG_WARN, "disconnected", 0, 0, "stream: connection lost: %s",
			  db_error_line(cs->conn, line, sizeof line));
	}
	return STREAM_LOST;
}

/* Clean stop, as pg_recvlogical: apply what is held, report it, send
 * CopyDone and read until the server's reply so a late error is seen. */
static enum stream_result finish(struct conn_state *cs)
{
	enum stream_result rc = deliver_all(cs);
	int64_t deadline = clock_now_ms() + SHUTDOWN_DRAIN_MS;
	char *buf;
	int n;

	if (rc == STREAM_CONTINUE)
		rc = cs->sink->flush(cs->sink->ctx);
	if (rc != STREAM_CONTINUE)
		return rc;
	if (!send_status(cs, true) || PQputCopyEnd(cs->conn, NULL) <= 0 || PQflush(cs->conn) != 0)
		return STREAM_STOPPED;
	while ((n = PQgetCopyData(cs->conn, &buf, 1)) >= 0 && clock_now_ms() < deadline) {
		if (n > 0)
			PQfreemem(buf);
		else if (!wait_socket(cs->conn, NULL, deadline))
			break;
	}
	for (PGresult *res; (res = PQgetResult(cs->conn)) != NULL;)
		PQclear(res);
	return STREAM_STOPPED;
}

/* One turn: due work and status, then one message or a wait. */
static enum stream_result turn(struct conn_state *cs, bool *received)
{
	int64_t next_tick = INT64_MAX;
	enum stream_result rc = cs->sink->tick(cs->sink->ctx, clock_now_ms(), &next_tick);
	char *buf = NULL;

	if (rc != STREAM_CONTINUE)
		return rc;
	if (!send_status(cs, clock_now_ms() >= cs->next_status_ms))
		return STREAM_LOST;
	int n = PQgetCopyData(cs->conn, &buf, 1);
	if (n == 0) {
		int64_t deadline = next_tick < cs->next_status_ms ? next_tick : cs->next_status_ms;
		bool backlog = socket_has_data(cs->conn);
		/* Group commit sees every record read so far, as without threads.
		 * In a backlog drained() only collects a batch's result, and a
		 * wait per network read would cost a thread switch per read. */
		if (backlog)
			decodepool_kick(cs->pool);
		if ((rc = backlog ? deliver(cs, 0) : deliver_all(cs)) != STREAM_CONTINUE)
			return rc;
		if ((rc = cs->sink->drained(cs->sink->ctx, backlog)) != STREAM_CONTINUE)
			return rc;
		/* Report what the drained batch made durable without waiting. */
		if (!send_status(cs, false))
			return STREAM_LOST;
		return wait_socket(cs->conn, cs->sink, deadline) ? STREAM_CONTINUE : copy_ended(cs, -2);
	}
	if (n < 0)
		return copy_ended(cs, n);
	*received = true;
	rc = handle_message(cs, buf, n);
	PQfreemem(buf);
	return rc;
}

enum stream_result stream_run(PGconn *conn, const struct stream_opts *opts, const struct stream_sink *sink,
			      volatile sig_atomic_t *stop, bool *received)
{
	struct conn_state cs = {conn, opts, sink, NULL, LSN_INVALID, 0};
	enum stream_result rc = STREAM_CONTINUE;
	char err[256];

	*received = false;
	/* A pool per connection: a lost one discards what was in flight, and
	 * the next streams it again from the durable position. */
	cs.pool = decodepool_new(opts->decode_workers, DECODE_MAX_RECORDS, DECODE_MAX_BYTES, err, sizeof err);
	if (cs.pool == NULL) {
		log_error("stream: %s", err);
		return STREAM_LOST;
	}
	if (!start_replication(&cs))
		rc = STREAM_LOST;
	else if ((rc = sink->started(sink->ctx)) == STREAM_CONTINUE)
		cs.next_status_ms = clock_now_ms() + opts->status_interval_ms;
	while (rc == STREAM_CONTINUE)
		rc = *stop ? finish(&cs) : turn(&cs, received);
	decodepool_free(cs.pool);
	return rc;
}
