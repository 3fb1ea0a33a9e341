/* stepsize: how many keys the next correcting step of a reconcile sweep
 * takes. A step runs between batches and the stream applies nothing while
 * it runs, so steps are sized by time, not by a fixed key count: each next
 * size is the last step's rate times the target (reconcile.chunk_time),
 * grown at most 2x per step so one fast step cannot lead to a huge one, and
 * halved after a step cancelled at the hard bound. Pure, no I/O. */
#ifndef WALCOUNT_STEPSIZE_H
#define WALCOUNT_STEPSIZE_H

#include <stdbool.h>
#include <stdint.h>

/* The first step's keys: small enough for any table on any server. */
#define STEPSIZE_FIRST 512
/* Below this a step is not halved further: a step of a few keys that hits
 * the bound waits for a lock, not for work. */
#define STEPSIZE_FLOOR 64
/* Cancelled steps at the floor in a row before one runs unbounded, so a
 * sweep behind a long-held row lock still ends. */
#define STEPSIZE_TIMEOUTS 3

struct stepsize {
	int64_t n;         /* keys of the next step */
	int64_t cap;       /* reconcile.chunk_rows */
	int64_t target_us; /* reconcile.chunk_time */
	int timeouts;      /* cancelled steps in a row */
};

void stepsize_init(struct stepsize *z, int64_t target_ms, int64_t cap);

/* A step of `keys` keys took `us` microseconds. */
void stepsize_done(struct stepsize *z, int64_t keys, int64_t us);

/* The step was cancelled at the hard bound: the next one is half as big. */
void stepsize_timed_out(struct stepsize *z);

/* True when the next step is to run without the bound (see
 * STEPSIZE_TIMEOUTS). */
bool stepsize_unbounded(const struct stepsize *z);

#endif
