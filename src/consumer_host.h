/* consumer_host: the consumer as the modules it drives between batches see
 * it: checkpoint.c (checkpoints and sweeps) and watch.c (prerequisites).
 * They keep a struct consumer * they do not own and cannot look into, and
 * ask it only this; their own state is theirs (checkpoint.h, watch.h). Not
 * for other modules. */
#ifndef WALCOUNT_CONSUMER_HOST_H
#define WALCOUNT_CONSUMER_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "lsn.h"
#include "result.h"

struct consumer;

/* The apply connection (partition 0's; it LISTENs for sweep requests), or
 * NULL while it is broken. A statement on it goes after consumer_settle. */
PGconn *consumer_conn(const struct consumer *c);
/* Makes the apply connection idle and everything sent durable. */
enum stream_result consumer_settle(struct consumer *c);
/* Applies everything held and waits until it is durable. */
enum stream_result consumer_flush_durable(struct consumer *c);
/* Persists the idle position and emits a heartbeat message (a cron task;
 * ctx is the consumer). */
enum stream_result consumer_heartbeat(void *ctx, int64_t now);
/* How far every delta is durable in every partition (a checkpoint's LSN). */
lsn_t consumer_applied_position(const struct consumer *c);
/* How far everything is applied or moved nothing (what a sweep waits for). */
lsn_t consumer_idle_position(const struct consumer *c);
/* A source transaction is open: part of it is received, the rest not. */
bool consumer_in_transaction(const struct consumer *c);
/* The xids of the transactions begun lately, in no particular order: sets
 * *xids to them (owned by the consumer, valid until the next change) and
 * returns how many. */
size_t consumer_recent_xids(const struct consumer *c, const uint64_t **xids);

#endif
