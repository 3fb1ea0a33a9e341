#include "cron.h"

enum stream_result cron_tick(struct cron_task *tasks, size_t n, void *ctx, int64_t now_ms, int64_t *next_ms)
{
	*next_ms = INT64_MAX;
	for (size_t i = 0; i < n; i++) {
		struct cron_task *t = &tasks[i];
		if (t->next_ms == 0)
			t->next_ms = now_ms + *t->period_ms;
		if (now_ms >= t->next_ms) {
			enum stream_result rc = t->run(ctx, now_ms);
			/* Scheduled from now, not from the missed time: a slow run
			 * must not cause a burst of catch-up runs. After the run,
			 * whose work may have changed the period. */
			t->next_ms = now_ms + *t->period_ms;
			if (rc != STREAM_CONTINUE)
				return rc;
		}
		if (t->next_ms < *next_ms)
			*next_ms = t->next_ms;
	}
	return STREAM_CONTINUE;
}
