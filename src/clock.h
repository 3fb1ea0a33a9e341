/* clock: the one monotonic clock every module times itself with. */
#ifndef WALCOUNT_CLOCK_H
#define WALCOUNT_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in milliseconds: for intervals and deadlines, never for
 * wall-clock times. */
int64_t clock_now_ms(void);

#endif
