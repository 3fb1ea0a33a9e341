/* decodepool: wal2json records parsed on K threads, the results handed back
 * in the order the records were submitted, so the transaction state machine
 * sees the stream's order while the stream reader goes on reading.
 *
 * Bounded: at most max_records records and about max_bytes of record text
 * are in flight, whatever the backlog. The pool copies each record's bytes
 * into a slot of its own (the caller keeps and frees its buffer); a result
 * lives in its slot until decodepool_pop. A record that does not parse is a
 * result like any other, in its place: the caller stops at it.
 *
 * Single-producer: one thread calls everything below; the K workers are the
 * pool's own. With 0 workers decodepool_submit parses inline, as if
 * there were no pool. */
#ifndef WALCOUNT_DECODEPOOL_H
#define WALCOUNT_DECODEPOOL_H

#include <stdbool.h>
#include <stddef.h>

#include "decode.h"
#include "lsn.h"

#define DECODEPOOL_MAX_WORKERS 64
#define DECODEPOOL_ERRLEN 512

struct decoded {
	bool ok;
	lsn_t wal_start;
	struct change change;        /* when ok */
	char err[DECODEPOOL_ERRLEN]; /* when not ok: one line */
};

struct decodepool;

/* Starts workers threads (0..DECODEPOOL_MAX_WORKERS). max_records >= 1.
 * Returns NULL with a one-line reason in err when a thread cannot start. */
struct decodepool *decodepool_new(unsigned workers, size_t max_records, size_t max_bytes, char *err, size_t errlen);

/* Stops the workers and discards whatever is in flight (a reconnect
 * streams it again). NULL is a no-op. */
void decodepool_free(struct decodepool *p);

/* No room for another record until the oldest result is popped. */
bool decodepool_full(const struct decodepool *p);

/* Records submitted and not popped yet. */
size_t decodepool_pending(const struct decodepool *p);

/* Queues a copy of one record of len bytes that starts at WAL wal_start.
 * Only when !decodepool_full. Never blocks. */
void decodepool_submit(struct decodepool *p, const char *data, size_t len, lsn_t wal_start);

/* The oldest result when it is parsed, without waiting; NULL when nothing
 * is pending or it is still being parsed. Valid until decodepool_pop. */
const struct decoded *decodepool_peek(struct decodepool *p);

/* Blocks until the oldest and the n-th oldest pending records (at most the
 * pending ones) are parsed: most of those between are then parsed too, so
 * the reader wakes once for a run of results rather than once per record.
 * Meanwhile the caller parses queued records itself, alongside the
 * workers. */
void decodepool_wait(struct decodepool *p, size_t n);

/* Wakes idle workers for the records queued, without waiting: those below
 * the batch that wakes one by itself would otherwise wait for more. */
void decodepool_kick(struct decodepool *p);

/* Frees the oldest result's slot. Only after a non-NULL peek. */
void decodepool_pop(struct decodepool *p);

#endif
