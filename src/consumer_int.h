/* consumer_int: the consumer's state, shared by consumer.c (stream and
 * apply) and checkpoint.c (checkpoints and sweeps); not for other modules. */
#ifndef WALCOUNT_CONSUMER_INT_H
#define WALCOUNT_CONSUMER_INT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "apply.h"
#include "batch.h"
#include "config.h"
#include "consumer.h"
#include "cron.h"
#include "decode.h"
#include "fanout.h"
#include "identity.h"
#include "ledger.h"
#include "lsn.h"
#include "result.h"

struct sweep;

/* Transactions remembered for the sweep's start (see sweep_begin). */
#define RECENT_XIDS 1024

/* Commit times of the source transactions a batch completes, for the
 * commit-to-apply histogram. Grows as needed; emptied by every flush. */
struct commit_times {
	int64_t *us;
	size_t n, cap;
};

/* The batch sent to the server and not yet known to be durable (its
 * position is the ledger's). Its commit times move here when it is sent. */
struct inflight {
	size_t changes;
	int64_t sent_ms;
	struct commit_times commits;
};

/* What the prerequisite watch (watch.c) knows. */
struct watch_state {
	unsigned identity_bad; /* bit i: source table i's identity lacks the
				  * counted columns */
	char identity[3];      /* its relreplident when last logged */
	bool plugin_bad;       /* the slot does not decode with wal2json */
	bool stale;            /* changes may be missing from the counts */
	bool sweep_clears;     /* the sweep in progress makes them exact */
};

struct stats {
	uint64_t skipped;
	uint64_t applied; /* changes in committed batches */
	uint64_t batches;
	uint64_t reported; /* `applied` at the last progress line */
};

struct consumer {
	const struct config *cfg;
	PGconn *db;           /* apply connection (partition 0's); NULL while broken */
	struct fanout fanout; /* the other partitions' apply connections */
	struct batch *batch;
	struct ledger ledger; /* positions: applied, held, in flight, idle */
	struct inflight inflight;
	int64_t batch_since_ms; /* when the batch got its first change */
	int64_t txn_commit_us;  /* the open transaction's commit time, or 0 */
	struct commit_times commits;
	struct stats stats;
	const struct consumer_opts *opts;
	volatile sig_atomic_t *stop;
	struct sweep *sweep; /* the reconcile sweep in progress, or NULL */
	bool sweep_requested;
	bool sweep_nudged;     /* a heartbeat was sent to carry the stream past S */
	int64_t checkpoint_id; /* walcount.checkpoints row of the sweep */
	uint64_t recent[RECENT_XIDS];
	size_t recent_next;
	bool fatal_sweep;     /* sweep_once: the sweep failed */
	bool sources_missing; /* a source table was found missing */
	struct watch_state watch;
	bool started;               /* the first apply connection was made */
	bool apply_error;           /* a batch failed on this connection */
	bool locked;                /* c->db holds the start-up lock (slot_lock) */
	struct slot_opts slot_opts; /* the first slot_ensure's; cleared after */
	bool standby;               /* another process streams from the slot */
	int64_t standby_since_ms;
	int last_walsender;    /* backend PID of this process's last stream */
	bool sweep_dry_run;    /* the sweep in progress changes nothing */
	int64_t request_id;    /* its walcount.sweep_requests row, or 0 */
	bool request_check;    /* look for queued sweep requests */
	struct server_id seen; /* the server streamed from last (identity.h) */
	struct cron_task cron[7];
};

/* consumer.c */

/* How far everything is applied or moved nothing (what a sweep waits for). */
lsn_t consumer_idle_position(const struct consumer *c);
/* Makes the apply connection idle and everything sent durable. */
enum stream_result consumer_settle(struct consumer *c);
/* Applies everything held and waits until it is durable. */
enum stream_result consumer_flush_durable(struct consumer *c);
/* Persists the idle position and emits a heartbeat message (a cron task). */
enum stream_result consumer_heartbeat(void *ctx, int64_t now);

/* checkpoint.c: cron tasks */

/* Every checkpoint.interval: flush, record a checkpoint row, request a
 * sweep (reconcile.enabled). */
enum stream_result checkpoint_cron(void *ctx, int64_t now);
/* Starts a requested sweep, or drives the one in progress. */
enum stream_result checkpoint_reconcile_cron(void *ctx, int64_t now);
/* At the first connection: requests a sweep when the last checkpoint's
 * sweep did not finish. */
void checkpoint_resume_unfinished(struct consumer *c);
/* At stop: a sweep request claimed and not answered is answered as failed. */
void checkpoint_abandon_request(struct consumer *c);
/* A walcount.checkpoints row at the durable LSN, without a sweep result
 * until a sweep fills it; *id gets its id. */
bool checkpoint_record(struct consumer *c, int64_t *id);

/* watch.c */

/* Every few seconds: the source tables, their replica identity and the
 * slot's plugin; marks the counts stale on a break, requests a sweep once
 * everything holds again (a cron task). */
enum stream_result watch_cron(void *ctx, int64_t now);
/* A change skipped because its replica identity does not carry its old
 * image: one line with its LSN; the counts are stale (a checkpoint row
 * without a sweep result is written first). */
enum stream_result watch_skipped(struct consumer *c, const struct change *ch);
/* The counts are stale (a restart found a sweep unfinished). */
void watch_mark_stale(struct consumer *c);
/* False while a prerequisite is broken: a sweep then would be wrong. */
bool watch_sweep_may_begin(const struct consumer *c);
void watch_sweep_began(struct consumer *c);
/* A sweep succeeded: the counts are no longer stale if it began so. */
void watch_sweep_done(struct consumer *c);

#endif
