/* apply: writes a coalesced batch and its progress in one transaction, and
 * reads the stored progress back. */
#ifndef WALCOUNT_APPLY_H
#define WALCOUNT_APPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "batch.h"
#include "lsn.h"

/* How far the aggregates reflect the stream (design.md §5): every
 * transaction with commit end LSN <= lsn, plus the first partial_changes
 * changes of transaction partial_xid when partial_xid != 0. */
struct progress {
	lsn_t lsn;
	uint64_t partial_xid;
	uint64_t partial_changes;
};

/* Reads the progress row of slot into *out; a missing row reads as all
 * zeros (nothing applied). Returns false with err set on a query error. */
bool apply_load_progress(PGconn *conn, const char *slot, struct progress *out, char *err, size_t errlen);

/* Writes the non-zero rows of b and the progress row `to` as one statement
 * (one transaction) with synchronous_commit on, so a true return means the
 * batch is durable and `to` may be reported to the server as flushed.
 * Returns false with err set when nothing was written or when the outcome is
 * unknown (connection lost during commit): the caller must then re-read the
 * progress row. Does not modify b. */
bool apply_batch(PGconn *conn, const char *slot, const struct batch *b, const struct progress *to,
		 char *err, size_t errlen);

/* Sets up a connection for apply_batch (session settings). */
bool apply_prepare(PGconn *conn, char *err, size_t errlen);

#endif
