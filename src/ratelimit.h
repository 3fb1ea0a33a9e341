/* ratelimit: at most `burst` log lines per `interval_ms` window; the lines
 * dropped are counted and reported once, ahead of the next line allowed
 * (or by ratelimit_flush). Pure: the caller passes the time and does the
 * writing, and serializes calls on one limiter. */
#ifndef WALCOUNT_RATELIMIT_H
#define WALCOUNT_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct ratelimit {
	int64_t interval_ms;
	unsigned burst;
	bool started;
	int64_t window_start_ms;
	unsigned used;       /* lines allowed in the current window */
	uint64_t suppressed; /* lines dropped and not yet reported */
};

/* clang-format off */
#define RATELIMIT_INIT(interval_ms, burst) {(interval_ms), (burst), false, 0, 0, 0}
/* clang-format on */

/* Whether one more line may be written at now_ms. When it may, *report is
 * how many lines were dropped before it and not yet reported (0: none),
 * for the caller to say first; when not, *report is 0. */
bool ratelimit_allow(struct ratelimit *rl, int64_t now_ms, uint64_t *report);

/* The dropped lines not yet reported, now counted as reported (a last
 * summary, at shutdown). */
uint64_t ratelimit_flush(struct ratelimit *rl);

#endif
