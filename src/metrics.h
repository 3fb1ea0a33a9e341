/* metrics: process-wide counters, gauges and histograms of a running
 * consumer, rendered as Prometheus text (http.c serves it on /metrics,
 * with /healthz). Every update function is thread-safe and cannot fail. */
#ifndef WALCOUNT_METRICS_H
#define WALCOUNT_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "counters.h"
#include "lsn.h"

/* The prerequisites watched while running. */
enum prereq_check {
	CHECK_SOURCE_TABLES,    /* a source table is missing */
	CHECK_REPLICA_IDENTITY, /* an identity does not carry the counted columns */
	CHECK_SLOT_PLUGIN,      /* the slot's plugin is not wal2json */
	CHECK__COUNT,
};

/* A change received from the stream: action is change_action_name()'s
 * "insert", "update", "delete" or "truncate"; other values are ignored. */
void metrics_change(enum src_table table, const char *action);
/* A change left uncounted, by skip_reason_name() (not "none"). */
void metrics_skipped(const char *reason);
/* A prerequisite found broken while running (once per breakage). */
void metrics_prerequisite_violation(enum prereq_check check);
/* Whether the counts wait for a reconcile sweep to be exact again. */
void metrics_counts_stale(bool stale);
/* A committed batch: its apply duration, and the applied LSN it reached. */
void metrics_batch(double seconds, lsn_t applied);
/* Progress written without changes (a heartbeat): the LSN only, no batch. */
void metrics_applied_lsn(lsn_t applied);
/* Commit timestamp of a source transaction to the commit of its batch. */
void metrics_commit_to_apply(double seconds);
void metrics_reconnect(void);
/* From the periodic slot refresh. */
void metrics_slot(int64_t lag_bytes, int64_t retained_wal_bytes, bool active);
/* The stream ended: the slot is not in use by this process any more. */
void metrics_slot_released(void);

/* Why a slot was (re)created and the counts loaded again: a missing slot
 * that walcount.progress still has a position for (a promoted server or a
 * dropped slot), no progress row, WAL the server removed, or a
 * confirmed_flush_lsn ahead of the progress. */
enum rebuild_reason { REBUILD_SLOT_MISSING, REBUILD_NO_PROGRESS, REBUILD_WAL_LOST, REBUILD_SLOT_AHEAD, REBUILD__COUNT };
void metrics_rebuild(enum rebuild_reason reason);
/* A reconcile sweep: corrected cells of one column. A column is exported
 * from its first report on. */
void metrics_reconcile_corrected(enum agg_column column, uint64_t n);
void metrics_reconcile_duration(double seconds);
/* /healthz answers 200 "ok" while streaming and the last batch succeeded,
 * 200 "standby" while standing by (metrics_standby), else 503. */
void metrics_health(bool streaming, bool last_batch_ok);
void metrics_standby(bool standby);
/* What /healthz answers: true (200) with "ok\n" or "standby\n", false
 * (503) with the reason; *body is a static string. */
bool metrics_healthy(const char **body);

/* Renders the whole exposition into a malloc'd NUL-terminated string the
 * caller frees; NULL when out of memory. */
char *metrics_render(void);

#endif
