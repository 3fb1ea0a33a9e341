/* apply: writes a coalesced batch and its progress in one transaction, and
 * reads the stored progress back. */
#ifndef WALCOUNT_APPLY_H
#define WALCOUNT_APPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "batch.h"
#include "db.h"
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

/* Sends the non-zero rows of b and the progress row `to` as one statement
 * (one transaction, synchronous_commit on) without waiting for it: the
 * caller keeps reading the stream while the server applies. The progress
 * row must still hold `from` (what this consumer last wrote or read);
 * otherwise nothing is written. Does not modify b. conn must have been set
 * up by apply_prepare. Returns false with err set when nothing could be
 * sent. */
bool apply_send(PGconn *conn, const char *slot, const struct batch *b, const struct progress *from, const struct progress *to,
		char *err, size_t errlen);

/* The outcome of the statement apply_send sent with `from`: DB_BUSY (only
 * when !wait), DB_DONE (durable: its `to` may be reported to the server as
 * flushed) or DB_FAILED with err set, when nothing was written (also when
 * the progress row no longer held `from`) or the outcome is unknown
 * (connection lost during commit): the caller must then re-read the
 * progress row. */
enum db_async apply_collect(PGconn *conn, const char *slot, const struct progress *from, bool wait, char *err, size_t errlen);

/* Sets up a connection for apply_send: its session settings and the
 * prepared batch statement (kept when the session has it already). */
bool apply_prepare(PGconn *conn, char *err, size_t errlen);

#endif
