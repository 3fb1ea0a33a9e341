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
/* Steps at the floor cancelled in a row before the sweep gives up: the
 * stream must never wait for a sweep longer than the bound, so a row lock
 * held elsewhere for long fails the sweep rather than the stream. */
#define STEPSIZE_ATTEMPTS 6
/* The wait before retrying after the first cancellation at the floor,
 * doubled after each next one: 6 attempts span about 3 s. */
#define STEPSIZE_BACKOFF_MS 100

struct stepsize {
	int64_t n;             /* keys of the next step */
	int64_t cap;           /* reconcile.chunk_rows */
	int64_t target_us;     /* reconcile.chunk_time */
	int timeouts;          /* steps at the floor cancelled in a row */
	int64_t not_before_ms; /* after such a cancellation: when to retry */
};

void stepsize_init(struct stepsize *z, int64_t target_ms, int64_t cap);

/* A step of `keys` keys took `us` microseconds. */
void stepsize_done(struct stepsize *z, int64_t keys, int64_t us);

/* The step was cancelled at the hard bound, at now_ms: the next one is
 * half as big, and at the floor it waits first (STEPSIZE_BACKOFF_MS). */
void stepsize_timed_out(struct stepsize *z, int64_t now_ms);

/* False while a retry after a cancellation at the floor must wait. */
bool stepsize_ready(const struct stepsize *z, int64_t now_ms);

/* True after STEPSIZE_ATTEMPTS cancellations at the floor in a row. */
bool stepsize_exhausted(const struct stepsize *z);

#endif
