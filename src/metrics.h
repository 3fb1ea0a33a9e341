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
/* The commit time (wall clock, microseconds since the epoch) of the oldest
 * transaction received and not yet applied, or 0 when everything received
 * is applied: walcount_lag_seconds is now minus it, or 0. */
void metrics_unapplied_since(int64_t commit_us);
void metrics_reconnect(void);
/* The slot as the periodic slot refresh read it. */
struct slot_gauges {
	int64_t lag_bytes;          /* current WAL LSN - applied LSN */
	int64_t retained_wal_bytes; /* current WAL LSN - restart_lsn */
	bool active;
	const char *wal_status; /* pg_replication_slots.wal_status; NULL or "" when unknown */
	int64_t standbys;       /* walcount standbys waiting for the slot */
};
void metrics_slot(const struct slot_gauges *g);
/* The stream ended: the slot gauges are unknown until the next refresh
 * after a new connection, and are not exported meanwhile. */
void metrics_slot_released(void);

/* Why a slot was (re)created and the counts loaded again: a missing slot
 * that walcount.progress still has a position for (a promoted server or a
 * dropped slot), no progress row, WAL the server removed, or a
 * confirmed_flush_lsn ahead of the progress. */
enum rebuild_reason { REBUILD_SLOT_MISSING, REBUILD_NO_PROGRESS, REBUILD_WAL_LOST, REBUILD_SLOT_AHEAD, REBUILD__COUNT };
void metrics_rebuild(enum rebuild_reason reason);
/* A reconcile sweep: corrected cells of one column (every swept column
 * is exported from the start, at 0). */
void metrics_reconcile_corrected(enum agg_column column, uint64_t n);
void metrics_reconcile_duration(double seconds);
/* The stream waited this long for a sweep (walcount_reconcile_pause_seconds). */
void metrics_reconcile_pause(double seconds);
/* A sweep finished (ok: its time becomes the last success) or failed. */
void metrics_reconcile_done(bool ok);
/* reconcile.enabled and checkpoint.interval, for the alert on sweeps that
 * stopped happening. */
void metrics_reconcile_config(bool enabled, double checkpoint_interval_seconds);
/* walcount_connected is streaming. /healthz answers 200 "ok" while
 * streaming and the last batch succeeded, 200 "standby" while standing by
 * (metrics_standby), else 503. */
void metrics_health(bool streaming, bool last_batch_ok);
void metrics_standby(bool standby);
/* walcount_starting: true from the slot creation wait through the initial
 * load (a rebuild included), so an alert on walcount_connected can tell a
 * long load from a lost stream. */
void metrics_starting(bool starting);
/* What /healthz answers: true (200) with "ok\n" or "standby\n", false
 * (503) with the reason; *body is a static string. */
bool metrics_healthy(const char **body);

/* Renders the whole exposition into a malloc'd NUL-terminated string the
 * caller frees; NULL when out of memory. */
char *metrics_render(void);

#endif
