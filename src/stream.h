/* stream: the logical replication protocol. Starts wal2json on a slot, hands
 * each record, decoded (decodepool), to a sink in stream order, answers
 * keepalives and reports the sink's durable LSN as flushed. One connection
 * per call; reconnecting is the caller's. */
#ifndef WALCOUNT_STREAM_H
#define WALCOUNT_STREAM_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "decode.h"
#include "lsn.h"
#include "result.h"

/* The most sockets a sink can ask the stream to wait on; a sink that needs
 * more fails to compile (consumer.c asserts it), rather than being cut off. */
#define STREAM_SINK_FDS 65

/* The consumer side. Each callback returns STREAM_CONTINUE, STREAM_LOST or
 * STREAM_FATAL. */
struct stream_sink {
	void *ctx;
	/* One wal2json record, decoded, in stream order, that starts at WAL
	 * position wal_start (from the XLogData header). ch is NULL when the
	 * record does not parse, and err (one line) says why. */
	enum stream_result (*change)(void *ctx, const struct change *ch, const char *err, lsn_t wal_start);
	/* The server's WAL end from a keepalive, after every record before it. */
	void (*keepalive)(void *ctx, lsn_t wal_end);
	/* Called every loop turn: do what is due. Sets *next_ms to the
	 * monotonic millisecond time it next needs a call (INT64_MAX: none). */
	enum stream_result (*tick)(void *ctx, int64_t now_ms, int64_t *next_ms);
	/* Every message read so far is handled: the moment to apply what is
	 * held (group commit). backlog: the socket already holds more, so
	 * waiting for it makes a larger batch at no cost in latency; then
	 * records still being parsed may be pending (decode.workers > 0):
	 * they come before the next call without backlog. */
	enum stream_result (*drained)(void *ctx, bool backlog);
	/* Apply everything held, at shutdown. */
	enum stream_result (*flush)(void *ctx);
	/* The LSN that is durably applied and may be reported as flushed. */
	lsn_t (*durable)(void *ctx);
	/* Sockets of the sink's own to wake up for as well, into fds[0..max)
	 * with max = STREAM_SINK_FDS; returns how many: the results of work it
	 * has in flight. */
	int (*wait_fds)(void *ctx, int *fds, int max);
	/* START_REPLICATION succeeded: the slot is this connection's now. */
	enum stream_result (*started)(void *ctx);
};

struct stream_opts {
	const char *slot;
	bool temporary; /* create a temporary slot on this connection */
	lsn_t start;    /* where to resume; the server takes the later
				  * of this and the slot's confirmed_flush_lsn */
	int64_t status_interval_ms;
	unsigned decode_workers; /* threads parsing records; 0: the stream's own */
};

/* Streams on conn (a replication connection) until *stop becomes non-zero,
 * the connection fails or the sink says otherwise. Sets *received when at
 * least one record arrived (the caller resets its backoff then). Does not
 * close conn. */
enum stream_result stream_run(PGconn *conn, const struct stream_opts *opts, const struct stream_sink *sink,
			      volatile sig_atomic_t *stop, bool *received);

#endif
