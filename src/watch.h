/* watch: the prerequisites that can break while walcount runs (source
 * tables, their replica identity, the slot's plugin) and whether the
 * counts are stale meanwhile. Its state is a struct watch of its own; of
 * the consumer it uses only consumer_host.h, and of the sweep driver only
 * checkpoint.h: a break abandons the sweep in progress, and a repair
 * requests one. */
#ifndef WALCOUNT_WATCH_H
#define WALCOUNT_WATCH_H

#include <stdbool.h>

#include "config.h"
#include "consumer_host.h"
#include "decode.h"
#include "result.h"

struct sweeper;
struct watch;

/* A watch for consumer c, which owns it and outlives it (cfg likewise).
 * once: `walcount reconcile`, whose one sweep the watch neither holds
 * back nor abandons. Free with watch_free. */
struct watch *watch_new(struct consumer *c, const struct config *cfg, bool once);
/* Frees w. NULL does nothing. */
void watch_free(struct watch *w);

/* Every few seconds (a cron task, on the apply connection): the source
 * tables, their replica identity and the slot's plugin; marks the counts
 * stale on a break, requests a sweep of s once everything holds again. */
enum stream_result watch_cron(struct watch *w, struct sweeper *s);
/* A change skipped because its replica identity does not carry its old
 * image: one line with its LSN; the counts are stale (a checkpoint row
 * without a sweep result is written first). */
enum stream_result watch_skipped(struct watch *w, struct sweeper *s, const struct change *ch);

/* What the sweep driver tells it and asks of it. */

/* The counts are stale (a restart found a sweep unfinished). */
void watch_mark_stale(struct watch *w);
/* False while a prerequisite is broken: a sweep then would be wrong. */
bool watch_sweep_may_begin(const struct watch *w);
/* A sweep began; unless dry_run, its success makes the counts exact. */
void watch_sweep_began(struct watch *w, bool dry_run);
/* A sweep succeeded: the counts are no longer stale if it began so. */
void watch_sweep_done(struct watch *w);

#endif
