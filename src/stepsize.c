#include "stepsize.h"

static int64_t floor_of(const struct stepsize *z)
{
	return z->cap < STEPSIZE_FLOOR ? z->cap : STEPSIZE_FLOOR;
}

static int64_t clamp(int64_t v, int64_t lo, int64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

void stepsize_init(struct stepsize *z, int64_t target_ms, int64_t cap)
{
	z->cap = cap > 0 ? cap : 1;
	z->target_us = target_ms * 1000;
	z->n = clamp(STEPSIZE_FIRST, 1, z->cap);
	z->timeouts = 0;
	z->not_before_ms = 0;
}

void stepsize_done(struct stepsize *z, int64_t keys, int64_t us)
{
	/* Under a tenth of a millisecond the clock says little about the rate:
	 * count such a step as that long. */
	int64_t took = us < 100 ? 100 : us;
	double want = (double) (keys > 0 ? keys : 1) * (double) z->target_us / (double) took;
	int64_t grow = z->n > z->cap / 2 ? z->cap : 2 * z->n;

	z->timeouts = 0;
	z->not_before_ms = 0;
	z->n = clamp(want >= (double) INT64_MAX ? INT64_MAX : (int64_t) want, floor_of(z), grow);
}

void stepsize_timed_out(struct stepsize *z, int64_t now_ms)
{
	int64_t lo = floor_of(z);

	if (z->n <= lo) {
		z->not_before_ms = now_ms + ((int64_t) STEPSIZE_BACKOFF_MS << (z->timeouts < 20 ? z->timeouts : 20));
		z->timeouts++;
	}
	z->n = z->n / 2 < lo ? lo : z->n / 2;
}

bool stepsize_ready(const struct stepsize *z, int64_t now_ms)
{
	return now_ms >= z->not_before_ms;
}

bool stepsize_exhausted(const struct stepsize *z)
{
	return z->timeouts >= STEPSIZE_ATTEMPTS;
}
