/* clock: the one monotonic clock every module times itself with, and the
 * wall clock for timestamps. */
#ifndef WALCOUNT_CLOCK_H
#define WALCOUNT_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in milliseconds: for intervals and deadlines, never for
 * wall-clock times. */
int64_t clock_now_ms(void);
/* The same clock in microseconds, for intervals shorter than a few ms. */
int64_t clock_now_us(void);

/* CLOCK_REALTIME in microseconds since the Unix epoch: for wall-clock
 * times (commit timestamps, metrics' timestamps), never for intervals. */
int64_t clock_wall_us(void);

#endif
