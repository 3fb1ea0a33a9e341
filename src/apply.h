/* apply: writes a coalesced batch and its progress in one transaction, and
 * reads the stored progress back. */
#ifndef WALCOUNT_APPLY_H
#define WALCOUNT_APPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "batch.h"
#include "counters.h"
#include "db.h"
#include "ledger.h"
#include "lsn.h"

/* One partition's part of a batch: per aggregate table, its rows sorted by
 * key (batch_rows, batch_group). The rows belong to the caller. */
struct share {
	int part;
	const struct batch_row *rows[AGG__COUNT];
	size_t n[AGG__COUNT];
};

/* The progress rows of a slot as stored. */
struct progress_rows {
	int count;                               /* rows found */
	int max_part;                            /* their highest partition number, -1 when none */
	bool uniform;                            /* all at one position */
	struct progress row[AGG_MAX_PARTITIONS]; /* by partition; missing ones zero */
};

/* Reads the progress rows of slot into *out; missing rows read as all zeros
 * (nothing applied). Returns false with err set on a query error or a
 * partition number beyond AGG_MAX_PARTITIONS. */
bool apply_load_progress(PGconn *conn, const char *slot, struct progress_rows *out, char *err, size_t errlen);

/* apply.workers changed: the rows, all at `at`, become parts rows there.
 * *done is false when they were not all at `at` any more (nothing
 * written). Returns false with err set on a query error. */
bool apply_repartition(PGconn *conn, const char *slot, const struct progress *at, int parts, bool *done, char *err, size_t errlen);

/* Sends the rows of share s and the progress row `to` of its partition as
 * one statement (one transaction, synchronous_commit on) without waiting
 * for it: the caller keeps reading the stream while the server applies.
 * The progress row must still hold `from` (what this consumer last wrote
 * or read); otherwise nothing is written. conn must have been set up by
 * apply_prepare. Returns false with err set when nothing could be sent. */
bool apply_send(PGconn *conn, const char *slot, const struct share *s, const struct progress *from, const struct progress *to,
		char *err, size_t errlen);

/* The outcome of the statement apply_send sent for partition part with
 * `from`: DB_BUSY (only when !wait), DB_DONE (durable) or DB_FAILED with
 * err set, when nothing was written (also when the progress row no longer
 * held `from`) or the outcome is unknown (connection lost during commit):
 * the caller must then re-read the progress rows. */
enum db_async apply_collect(PGconn *conn, const char *slot, int part, const struct progress *from, bool wait, char *err,
			    size_t errlen);

/* Sets up a connection for apply_send: its session settings and the
 * prepared batch statement (kept when the session has it already). */
bool apply_prepare(PGconn *conn, char *err, size_t errlen);

#endif
