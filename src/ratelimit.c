#include "ratelimit.h"

bool ratelimit_allow(struct ratelimit *rl, int64_t now_ms, uint64_t *report)
{
	*report = 0;
	if (!rl->started || now_ms - rl->window_start_ms >= rl->interval_ms) {
		rl->started = true;
		rl->window_start_ms = now_ms;
		rl->used = 0;
	}
	if (rl->used >= rl->burst) {
		rl->suppressed++;
		return false;
	}
	rl->used++;
	*report = ratelimit_flush(rl);
	return true;
}

uint64_t ratelimit_flush(struct ratelimit *rl)
{
	uint64_t n = rl->suppressed;

	rl->suppressed = 0;
	return n;
}
