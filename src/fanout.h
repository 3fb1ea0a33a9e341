/* fanout: the key-partitioned apply (apply.workers). A batch cut at one
 * position is split by partition (agg_partition); each partition's share
 * goes, with that position as its progress, on the partition's own
 * connection, so the server applies the shares in parallel. Partition 0
 * uses the consumer's connection (which also holds the start-up lock,
 * LISTENs and runs the heartbeat); the others' connections are opened and
 * owned here. The ledger (ledger.h) records what each share makes
 * durable. */
#ifndef WALCOUNT_FANOUT_H
#define WALCOUNT_FANOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "batch.h"
#include "config.h"
#include "db.h"
#include "ledger.h"

struct fanout {
	int parts;
	PGconn *conn[AGG_MAX_PARTITIONS]; /* [0] unused: the caller's `main` */
};

void fanout_init(struct fanout *f, int parts);

/* Opens the connections of partitions 1.. that are not open, and sets each
 * up for apply_send. Returns false with err set when one fails. */
bool fanout_connect(struct fanout *f, const struct config *cfg, char *err, size_t errlen);

/* Closes the connections of partitions 1.. (a statement in flight on one
 * is abandoned: its outcome is unknown then). */
void fanout_close(struct fanout *f);

/* Sends the batch being filled, cut at l->pending: the share of every
 * partition ledger_share_needed picks (force: every partition behind the
 * cut), and records what was sent in l. The previous batch must be
 * collected. Returns false with err set when one could not be sent or
 * memory ran out (nothing may be assumed about the shares sent then). */
bool fanout_send(struct fanout *f, PGconn *main, const char *slot, const struct batch *b, struct ledger *l, bool force,
		 int64_t now_ms, char *err, size_t errlen);

/* Collects the outcomes of the in-flight shares into l: DB_DONE once all
 * are durable, DB_BUSY while some run (only when !wait), DB_FAILED with
 * err set at the first that failed. */
enum db_async fanout_collect(struct fanout *f, PGconn *main, const char *slot, struct ledger *l, bool wait, int64_t now_ms,
			     char *err, size_t errlen);

/* Between batches: false with err set when the server ended the idle
 * connection of a partition 1.. (a kill, a shutdown). */
bool fanout_alive(struct fanout *f, char *err, size_t errlen);

/* The sockets of partitions 1.. into fds[0..max); returns how many. */
int fanout_sockets(const struct fanout *f, int *fds, int max);

#endif
