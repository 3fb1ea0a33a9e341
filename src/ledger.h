/* ledger: the exactly-once position bookkeeping of one consumer (design.md
 * §5), with no I/O. The aggregate rows are split into partitions by key
 * (apply.workers); each partition has a progress row written in the same
 * transaction as its deltas. The ledger knows what every row holds, which
 * batch is in flight, where the batch being filled ends, how far the
 * stream is known to be idle, and from these which change of which
 * partition is already applied and which position may be confirmed.
 *
 * Invariant: every delta of partition p at or before stored[p] is durably
 * applied, and none after it. A batch cut at position P is split by
 * partition; a partition without deltas in it skips the write, which is
 * safe because it has nothing between its row and P. */
#ifndef WALCOUNT_LEDGER_H
#define WALCOUNT_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "counters.h"
#include "lsn.h"

/* How far a progress row says the aggregates reflect the stream: every
 * transaction with commit end LSN <= lsn, plus the first partial_changes
 * changes of transaction partial_xid when partial_xid != 0. */
struct progress {
	lsn_t lsn;
	uint64_t partial_xid;
	uint64_t partial_changes;
};

/* The source transaction being received. */
struct ledger_txn {
	bool open;
	uint64_t xid;
	lsn_t end_lsn;
	uint64_t changes; /* I/U/D/T records received so far */
};

struct ledger {
	int parts;
	/* An empty share is written once its row is this much older than the
	 * last write: the bound on how far a partition without deltas lags. */
	int64_t lazy_ms;
	struct progress stored[AGG_MAX_PARTITIONS]; /* what each row holds */
	int64_t written_ms[AGG_MAX_PARTITIONS];     /* when it was written last */
	struct progress applied;                    /* every delta up to here is durable in every
				  * partition */
	struct progress pending;                    /* where the batch being filled ends */
	size_t held;                                /* changes in the batch being filled */
	bool inflight;
	struct progress inflight_to;
	uint64_t inflight_parts; /* shares of the in-flight batch not yet durable */
	lsn_t idle_lsn;          /* everything up to here is applied or moved
				  * nothing; persisted by the heartbeat */
	struct ledger_txn txn;
};

/* An empty ledger of parts partitions (1..AGG_MAX_PARTITIONS), all rows at
 * zero (nothing applied). */
void ledger_init(struct ledger *l, int parts, int64_t lazy_ms);

/* Starts again from the rows just read (rows[0..parts)): whatever was held,
 * in flight, idle or open was the last connection's. */
void ledger_resume(struct ledger *l, const struct progress *rows, int64_t now_ms);

/* The earliest row: where streaming resumes, and what may be reported to
 * the server as flushed (its LSN). */
struct progress ledger_min_stored(const struct ledger *l);

/* True when a precedes b in the stream. */
bool progress_before(const struct progress *a, const struct progress *b);
bool progress_equal(const struct progress *a, const struct progress *b);

/* BEGIN of xid, committing at end_lsn. False when a transaction is open. */
bool ledger_begin(struct ledger *l, uint64_t xid, lsn_t end_lsn);
/* A change of the open transaction arrived. False when none is open. */
bool ledger_change(struct ledger *l);
/* Whether the current change's delta for partition part is already
 * applied (a restart re-sends from the earliest row). */
bool ledger_applied_in(const struct ledger *l, int part);
/* ledger_applied_in for every partition: the change is past nothing. */
bool ledger_applied_everywhere(const struct ledger *l);
/* The current change went into the batch being filled. */
void ledger_hold(struct ledger *l);
/* COMMIT of xid. False when it does not match the open transaction. A
 * transaction that left nothing to write moves the idle position. */
bool ledger_commit(struct ledger *l, uint64_t xid);

/* True when the batch being filled must be written: it holds changes, or
 * the partial-transaction marker it ends at is not written yet. */
bool ledger_needs_write(const struct ledger *l);
/* Whether partition part's share of the batch about to be sent must be
 * written: it has rows, the caller forces every row to the batch's end
 * (heartbeat, stop), lazy_ms is 0 (every row follows every batch), or its
 * row is behind the other partitions' and older than lazy_ms. */
bool ledger_share_needed(const struct ledger *l, int part, bool has_rows, bool force, int64_t now_ms);
/* Some partition's row is behind the end of the batch being filled. */
bool ledger_behind(const struct ledger *l);
/* With nothing held, in flight or open: true when a partition's row is
 * behind the others' and due for its lazy write (ledger_share_needed) at
 * now_ms; otherwise lowers *next_ms to when the first one will be. */
bool ledger_lazy_due(const struct ledger *l, int64_t now_ms, int64_t *next_ms);
/* The batch being filled was sent; parts has a bit per share sent. */
void ledger_sent(struct ledger *l, uint64_t parts);
/* Partition part's share of the in-flight batch is durable. */
void ledger_share_durable(struct ledger *l, int part, int64_t now_ms);
/* Nothing but the rows is known any more (an apply failure whose outcome
 * may be unknown): held and in-flight work is forgotten. */
void ledger_discard(struct ledger *l);

/* The server's WAL end: idle up to lsn when nothing is held, in flight or
 * open. */
void ledger_idle(struct ledger *l, lsn_t lsn);
/* How far everything is applied or moved nothing (what a sweep waits for).
 * Only the applied LSN while something is held or a transaction is applied
 * in parts: that transaction comes again after a reconnect and must find
 * its partial marker, so nothing may be confirmed or persisted past it. */
lsn_t ledger_idle_position(const struct ledger *l);

/* Between transactions, with the idle position past the applied one: the
 * batch being filled (empty then) ends at the idle position, so writing it
 * persists how far the stream is idle. False otherwise. */
bool ledger_take_idle(struct ledger *l);

#endif
