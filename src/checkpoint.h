/* checkpoint: the consumer's periodic checkpoint and the reconcile sweeps
 * it drives between batches (design.md §8): when a sweep starts, how the
 * stream is nudged past its snapshot, and where its result is recorded.
 * Its state (the sweep in progress, requests, the walcount.sweep_requests
 * row being answered) is a struct sweeper of its own; of the consumer it
 * uses only consumer_host.h, and of the prerequisite watch only watch.h. */
#ifndef WALCOUNT_CHECKPOINT_H
#define WALCOUNT_CHECKPOINT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "consumer_host.h"
#include "delta.h"
#include "result.h"

struct sweep;
struct sweeper;
struct watch;

/* A sweep driver for consumer c, which owns it and outlives it (cfg and
 * stop likewise). once: `walcount reconcile`, one sweep at once, then
 * *stop is set; dry_run: its sweeps change nothing (a request claimed from
 * walcount.sweep_requests brings its own flag). Free with checkpoint_free. */
struct sweeper *checkpoint_new(struct consumer *c, const struct config *cfg, bool once, bool dry_run, volatile sig_atomic_t *stop);
/* Frees s and the sweep in progress. NULL does nothing. */
void checkpoint_free(struct sweeper *s);

/* Cron tasks, on the consumer's apply connection between batches. */

/* Every checkpoint.interval: flush, record a checkpoint row, request a
 * sweep (reconcile.enabled). */
enum stream_result checkpoint_cron(struct sweeper *s);
/* Starts a requested sweep once w says the prerequisites hold, or drives
 * the one in progress. */
enum stream_result checkpoint_reconcile_cron(struct sweeper *s, struct watch *w);
/* When checkpoint_reconcile_cron is to run again: every
 * CHECKPOINT_SWEEP_POLL_MS while a sweep waits for its own statements or
 * for the stream, so it moves on as soon as they are done (a sweep passes
 * about ten such points; a poll every 100 ms added half a second to it),
 * else every period_ms. */
#define CHECKPOINT_SWEEP_POLL_MS 10
int64_t checkpoint_reconcile_period(const struct sweeper *s, int64_t period_ms);

/* What the consumer tells it. */

/* A new apply connection: LISTENs for sweep requests and looks for those
 * queued meanwhile. False with err set when the LISTEN fails. */
bool checkpoint_connected(struct sweeper *s, char *err, size_t errlen);
/* At the first connection: requests a sweep when the last checkpoint's
 * sweep did not finish (the counts are stale until then: w). */
void checkpoint_resume_unfinished(struct sweeper *s, struct watch *w);
/* A sweep is wanted (TRUNCATE, SIGUSR1, the watch): it starts at the next
 * clean point. */
void checkpoint_request(struct sweeper *s);
/* The deltas d[0..n) of a change of transaction xid go into the batch:
 * the sweep in progress notes them unless its snapshot saw xid. */
void checkpoint_note(struct sweeper *s, uint64_t xid, const struct delta *d, size_t n);
/* Ends the sweep in progress without a result and requests another (its
 * noted deltas no longer match what is applied). False when none ran. */
bool checkpoint_abandon(struct sweeper *s);
/* At stop: a sweep request claimed and not answered is answered as failed. */
void checkpoint_abandon_request(struct sweeper *s);
/* `walcount reconcile` (once): its sweep failed. */
bool checkpoint_failed(const struct sweeper *s);

/* What the watch asks of it. */

/* A walcount.checkpoints row at the durable LSN, without a sweep result
 * until a sweep fills it; *id gets its id. */
bool checkpoint_record(struct sweeper *s, int64_t *id);
bool checkpoint_requested(const struct sweeper *s);
/* The sweep in progress, or NULL. */
const struct sweep *checkpoint_sweep(const struct sweeper *s);
/* The sweep in progress (or the next one) changes nothing. */
bool checkpoint_dry_run(const struct sweeper *s);

#endif
