/* reconcile: the drift backstop (design.md §8). A sweep recounts in a
 * snapshot S on its own connection while the stream keeps applying; the
 * consumer notes the deltas of every change it applies that S did not see;
 * once the stream has applied everything S saw, each aggregate row must
 * equal recount + noted delta (a key the recount lacks counts 0 there: a
 * row the stream created after S is checked too), and only rows that
 * differ are corrected, in chunks of reconcile.chunk_rows keys, between
 * batches. */
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
};

enum sweep_state {
	SWEEP_RECOUNTING, /* the recount runs on the sweep's connection */
	SWEEP_WAITING,    /* recounted; the stream has not applied all S saw */
	SWEEP_CORRECTING, /* sweep_step corrects one chunk per call */
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

/* Advances the recount without blocking, and moves to SWEEP_CORRECTING once
 * `applied` (everything up to it is durably applied) reaches the WAL
 * position the snapshot was taken at. */
enum sweep_state sweep_poll(struct sweep *s, lsn_t applied, char *err, size_t errlen);

/* In SWEEP_CORRECTING: corrects the next chunk (one short transaction) and
 * returns the new state. Call only between batches. */
enum sweep_state sweep_step(struct sweep *s, char *err, size_t errlen);

const struct sweep_result *sweep_result(const struct sweep *s);

/* Writes "aggregate_user.repost_count: 3, ..." (columns with corrections)
 * into buf. */
void reconcile_describe(const struct sweep_result *r, char *buf, size_t len);

void sweep_free(struct sweep *s);

#endif
