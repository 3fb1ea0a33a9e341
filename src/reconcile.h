/* reconcile: the drift backstop (design.md §8). A sweep recounts in a
 * snapshot S on its own connection while the stream keeps applying: the
 * stream's columns (recount.sql) and then the others (reconcile_stage.sql).
 * The consumer notes the deltas of every change it applies that S did not
 * see. Once the stream has applied everything S saw, each aggregate row must
 * equal recount + noted delta (a key the recount lacks counts 0 there: a
 * row the stream created after S is checked too).
 * The stream only waits for short steps. At a settled point (the mark),
 * with nothing held or in flight, the sweep takes the noted deltas D0 and
 * the compare's snapshot T; the compare then runs off the stream, one
 * statement per table, and returns the keys that differ at the mark (the
 * candidates). A key that was right at the mark stays right: the stream
 * applies and notes the same deltas from then on. Correcting steps between
 * batches check the candidates again with the deltas as they are then, and
 * write only cells that differ, in steps sized by time (stepsize.h) and
 * cancelled at twice reconcile.chunk_time. */
#ifndef WALCOUNT_RECONCILE_H
#define WALCOUNT_RECONCILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "delta.h"
#include "lsn.h"

struct sweep_result {
	uint64_t checked;         /* rows compared */
	uint64_t corrected;       /* rows written (or that would be) */
	uint64_t cells[COL__ALL]; /* per column */
	int64_t duration_ms;
	int64_t longest_pause_us; /* longest time the stream waited for the sweep */
};

enum sweep_state {
	SWEEP_RECOUNTING, /* the recount and the stage run on the sweep's connection */
	SWEEP_WAITING,    /* recounted; the stream has not applied all S saw */
	SWEEP_CAUGHT_UP,  /* it has: sweep_compare at a settled point */
	SWEEP_COMPARING,  /* the compare runs on the sweep's connection */
	SWEEP_CORRECTING, /* sweep_step checks the next candidates per call */
	SWEEP_DONE,
	SWEEP_FAILED,
};

struct sweep;

/* Opens the sweep's connection, takes S and starts the recount. The caller
 * must hold no unapplied change. recent[0..n) are the xids of the
 * transactions applied lately: one that S still shows as running (its commit
 * was in the WAL before it became visible) would be in neither the recount
 * nor the noted deltas, so then the sweep is not started and *retry is set.
 * Returns NULL with err set (or *retry) on failure; sweep_free releases. */
struct sweep *sweep_begin(const struct config *cfg, bool dry_run, const uint64_t *recent, size_t n, bool *retry, char *err,
			  size_t errlen);

/* True when the sweep's snapshot saw transaction xid (so the recount counts
 * it and its deltas must not be noted). */
bool sweep_saw(const struct sweep *s, uint64_t xid);

/* Notes the deltas of one change the stream applies that S did not see.
 * Returns false when out of memory (the sweep is then failed). */
bool sweep_note(struct sweep *s, const struct delta *d, size_t n);

/* Advances the recount and the compare without blocking, and moves to
 * SWEEP_CAUGHT_UP once `applied` (everything up to it is durably applied)
 * reaches the WAL position the snapshot was taken at. */
enum sweep_state sweep_poll(struct sweep *s, lsn_t applied, char *err, size_t errlen);

/* In SWEEP_CAUGHT_UP, with nothing held or in flight (the mark): takes the
 * noted deltas and the compare's snapshot, and starts the compare. */
enum sweep_state sweep_compare(struct sweep *s, char *err, size_t errlen);

/* In SWEEP_CORRECTING: checks and corrects the next candidates (one short
 * transaction) and returns the new state. Call only between batches, with
 * nothing held or in flight. */
enum sweep_state sweep_step(struct sweep *s, char *err, size_t errlen);

/* In SWEEP_CORRECTING: false while a retry after cancelled steps waits
 * (stepsize.h), so the caller need not settle the stream for nothing. */
bool sweep_step_ready(const struct sweep *s);

/* True, with *us, when the last call of sweep_begin, sweep_poll,
 * sweep_compare or sweep_step made the stream wait (ran a statement or read
 * a result); each wait is reported once. */
bool sweep_take_pause(struct sweep *s, int64_t *us);

/* True while the sweep waits for its own statements or for the stream,
 * rather than for a turn between batches: it is to be polled often then,
 * so it moves on as soon as they are done. */
bool sweep_waiting(const struct sweep *s);

const struct sweep_result *sweep_result(const struct sweep *s);

/* Writes "aggregate_user.repost_count: 3, ..." (columns with corrections)
 * into buf. */
void reconcile_describe(const struct sweep_result *r, char *buf, size_t len);

void sweep_free(struct sweep *s);

#endif
