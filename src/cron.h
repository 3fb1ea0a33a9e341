/* cron: the consumer's periodic work in one place, as Redis's serverCron:
 * each task has a period and runs from cron_tick when due. */
#ifndef WALCOUNT_CRON_H
#define WALCOUNT_CRON_H

#include <stddef.h>
#include <stdint.h>

#include "result.h"

struct cron_task {
	const char *name;
	/* Read after every run, so a reloaded configuration, or the task
	 * itself, sets when it runs next. */
	const int64_t *period_ms;
	/* Does the task's work; returns STREAM_CONTINUE, or what the stream
	 * should do instead. */
	enum stream_result (*run)(void *ctx, int64_t now_ms);
	int64_t next_ms; /* 0: first run one period after the first tick */
};

/* Runs every due task of tasks[0..n), in order, and sets *next_ms to the
 * earliest time one is due again. Stops at the first task that does not
 * return STREAM_CONTINUE and returns its result. */
enum stream_result cron_tick(struct cron_task *tasks, size_t n, void *ctx, int64_t now_ms, int64_t *next_ms);

#endif
