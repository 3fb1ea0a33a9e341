#include "consumer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "batch.h"
#include "checkpoint.h"
#include "clock.h"
#include "consumer_host.h"
#include "cron.h"
#include "db.h"
#include "decode.h"
#include "delta.h"
#include "fanout.h"
#include "identity.h"
#include "ledger.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "slot.h"
#include "sqlfiles.h"
#include "stream.h"
#include "watch.h"
#include "xalloc.h"

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

struct stats {
	uint64_t skipped;
	uint64_t applied;  /* changes in committed batches */
	uint64_t batches;  /* committed batches with at least one change */
	uint64_t reported; /* `applied` at the last progress line */
	int64_t line_ms;   /* when the last progress line was logged; 0: none yet */
	int64_t window_ms; /* start of the span the next line's rate is over */
};

/* The sweep driver and the prerequisite watch keep their own state, owned
 * here through opaque pointers (made and freed by consumer_run): they
 * reach the consumer only through consumer_host.h, and each other only
 * through the calls the consumer makes with both. */
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
	int64_t unapplied_us; /* what metrics_unapplied_since was told last */
	struct stats stats;
	const struct consumer_opts *opts;
	volatile sig_atomic_t *stop;
	struct sweeper *sweeper; /* checkpoints and sweeps (checkpoint.h) */
	struct watch *watch;     /* the prerequisites (watch.h) */
	uint64_t recent[RECENT_XIDS];
	size_t recent_next;
	bool started;               /* the first apply connection was made */
	bool apply_error;           /* a batch failed on this connection */
	bool locked;                /* c->db holds the start-up lock (slot_lock) */
	struct slot_opts slot_opts; /* the first slot_ensure's; cleared after */
	bool standby;               /* another process streams from the slot */
	int64_t standby_since_ms;
	int last_walsender;        /* backend PID of this process's last stream */
	struct server_id seen;     /* the server streamed from last (identity.h) */
	int64_t reconcile_poll_ms; /* the reconcile task's period (checkpoint_reconcile_period) */
	struct cron_task cron[7];
};

/* The report task looks every second, so the first progress line comes
 * within a second of the first applied change (someone trying walcount
 * sees it work at once); later lines come at most every 10 s. */
static const int64_t report_poll_ms = 1000;
static const int64_t report_interval_ms = 10000;
static const int64_t signal_poll_ms = 100;
/* How often a standby looks whether the slot was released. */
static const int64_t standby_poll_ms = 500;
/* After a reconnect: how long this process's previous walsender is given
 * to release the slot before the holder counts as someone else. */
static const int64_t own_walsender_poll_ms = 100;

/* An empty share is written once its partition's row is this old: how far
 * a partition without deltas lets confirmation lag behind the others. */
static const int64_t partition_lazy_ms = 1000;

static bool needs_write(const struct consumer *c)
{
	return ledger_needs_write(&c->ledger);
}

lsn_t consumer_idle_position(const struct consumer *c)
{
	return ledger_idle_position(&c->ledger);
}

PGconn *consumer_conn(const struct consumer *c)
{
	return c->db;
}

lsn_t consumer_applied_position(const struct consumer *c)
{
	return c->ledger.applied.lsn;
}

bool consumer_in_transaction(const struct consumer *c)
{
	return c->ledger.txn.open;
}

size_t consumer_recent_xids(const struct consumer *c, const uint64_t **xids)
{
	*xids = c->recent;
	return c->recent_next < RECENT_XIDS ? c->recent_next : RECENT_XIDS;
}

static void drop_connections(struct consumer *c)
{
	PQfinish(c->db);
	c->db = NULL;
	c->locked = false;
	fanout_close(&c->fanout);
}

/* walcount_lag_seconds: the commit time of the oldest transaction
 * received and not applied, in stream order: the batch in flight, then the
 * one held, then the open transaction. The metrics lock is taken only when
 * it changes, not once per transaction of a steady stream. */
static void note_unapplied(struct consumer *c)
{
	int64_t us = c->inflight.commits.n > 0 ? c->inflight.commits.us[0]
		     : c->commits.n > 0        ? c->commits.us[0]
		     : c->ledger.txn.open      ? c->txn_commit_us
					       : 0;

	if (us != c->unapplied_us)
		metrics_unapplied_since(c->unapplied_us = us);
}

/* Forgets everything not durable, after an apply failure whose outcome may
 * be unknown: the next connection re-reads the progress rows and the
 * server re-sends what follows the earliest. */
static void discard(struct consumer *c)
{
	drop_connections(c);
	batch_reset(c->batch);
	c->commits.n = 0;
	c->inflight.commits.n = 0;
	ledger_discard(&c->ledger);
	note_unapplied(c);
	if (checkpoint_abandon(c->sweeper))
		log_warn("reconcile: sweep abandoned, its noted deltas included a lost batch; it is retried");
}

static void observe_applied(struct consumer *c)
{
	struct inflight *f = &c->inflight;
	double now_us = (double) clock_wall_us();

	for (size_t i = 0; i < f->commits.n; i++)
		metrics_commit_to_apply((now_us - (double) f->commits.us[i]) / 1e6);
	f->commits.n = 0;
	note_unapplied(c);
	/* A write without changes (a heartbeat, an idle position, the stop)
	 * only moves the progress rows: not a batch. */
	if (f->changes == 0) {
		metrics_applied_lsn(c->ledger.applied.lsn);
		return;
	}
	metrics_batch((double) (clock_now_ms() - f->sent_ms) / 1e3, c->ledger.applied.lsn);
	c->stats.applied += f->changes;
	c->stats.batches++;
}

static enum stream_result apply_failed(struct consumer *c, const char *why)
{
	log_event(LOG_WARN, "batch_failed", c->ledger.applied.lsn, 0,
		  "apply: %s; discarding the unapplied batch, it will be received again", why);
	c->apply_error = true;
	metrics_health(true, false);
	discard(c);
	return STREAM_LOST;
}

/* Takes the in-flight batch's outcome: waits for it, or only looks. */
static enum stream_result collect(struct consumer *c, bool wait)
{
	char err[512], lsn[LSN_BUFLEN];

	if (!c->ledger.inflight)
		return STREAM_CONTINUE;
	switch (fanout_collect(&c->fanout, c->db, c->cfg->slot_name, &c->ledger, wait, clock_now_ms(), err, sizeof err)) {
	case DB_BUSY:
		return STREAM_CONTINUE;
	case DB_FAILED:
		return apply_failed(c, err);
	case DB_DONE:
		break;
	}
	metrics_health(true, true);
	observe_applied(c);
	log_event(LOG_DEBUG, "batch_applied", c->ledger.applied.lsn, 0, "apply: %zu changes through %s in %" PRId64 " ms",
		  c->inflight.changes, lsn_format(c->ledger.applied.lsn, lsn), clock_now_ms() - c->inflight.sent_ms);
	return STREAM_CONTINUE;
}

/* Makes the apply connection idle and everything sent durable: before any
 * other statement on it, and wherever the aggregates must hold all that
 * was applied. */
enum stream_result consumer_settle(struct consumer *c)
{
	return collect(c, true);
}

/* Sends the batch, cut at the ledger's pending position, once the batch
 * before it is durable (progress rows are written in stream order): each
 * partition's share that ledger_share_needed picks, every partition behind
 * the cut with force. */
static enum stream_result apply_now(struct consumer *c, bool force)
{
	char err[512];
	enum stream_result rc = consumer_settle(c);

	if (rc != STREAM_CONTINUE)
		return rc;
	if (c->db == NULL)
		return apply_failed(c, "no database connection");
	if (!fanout_send(&c->fanout, c->db, c->cfg->slot_name, c->batch, &c->ledger, force, clock_now_ms(), err, sizeof err))
		return apply_failed(c, err);
	struct commit_times sent = c->commits;
	c->commits = c->inflight.commits;
	c->inflight = (struct inflight){batch_changes(c->batch), clock_now_ms(), sent};
	batch_reset(c->batch);
	/* No partition had anything to write: applied as it stands. */
	if (!c->ledger.inflight)
		observe_applied(c);
	return STREAM_CONTINUE;
}

static enum stream_result flush(struct consumer *c)
{
	return needs_write(c) ? apply_now(c, false) : STREAM_CONTINUE;
}

/* Writes every partition's row that is behind what is held, so that all
 * meet at one position (heartbeat, stop): confirmation is not held back by
 * a partition without deltas, and a change of apply.workers can
 * re-partition the rows. */
static enum stream_result flush_all(struct consumer *c)
{
	enum stream_result rc = consumer_settle(c);

	if (rc != STREAM_CONTINUE || (!needs_write(c) && !ledger_behind(&c->ledger)))
		return rc;
	return apply_now(c, true);
}

/* Applies everything held and waits until it is durable. */
enum stream_result consumer_flush_durable(struct consumer *c)
{
	enum stream_result rc = flush(c);

	return rc == STREAM_CONTINUE ? consumer_settle(c) : rc;
}

/* An idle apply connection that the server ended (a shutdown ends it
 * before the walsender) ends the stream as well: the walsender waits for
 * confirmations only that connection can make durable, and would hold up
 * the server's shutdown. */
static enum stream_result check_idle(struct consumer *c)
{
	char line[512], why[600];

	if (c->db == NULL)
		return STREAM_CONTINUE;
	if (PQconsumeInput(c->db) != 1) {
		snprintf(why, sizeof why, "apply connection lost: %s", db_error_line(c->db, line, sizeof line));
		return apply_failed(c, why);
	}
	return fanout_alive(&c->fanout, why, sizeof why) ? STREAM_CONTINUE : apply_failed(c, why);
}

/* Group commit: what is held between transactions goes out as soon as the
 * stream has nothing more to read and the batch before it is durable, so
 * light load gets small fast batches, heavy load large coalesced ones, and
 * reading the stream overlaps applying. */
static enum stream_result ship(struct consumer *c)
{
	enum stream_result rc = c->ledger.inflight ? collect(c, false) : check_idle(c);

	if (rc != STREAM_CONTINUE || c->ledger.txn.open || c->ledger.inflight)
		return rc;
	return flush(c);
}

static enum stream_result on_begin(struct consumer *c, const struct change *ch)
{
	char lsn[LSN_BUFLEN];

	if (!ledger_begin(&c->ledger, ch->xid, ch->end_lsn)) {
		log_event(LOG_ERROR, "stream_out_of_order", ch->lsn, ch->xid,
			  "stream: BEGIN of xid %" PRIu64 " at %s inside xid %" PRIu64, ch->xid, lsn_format(ch->lsn, lsn),
			  c->ledger.txn.xid);
		return STREAM_FATAL;
	}
	c->txn_commit_us = ch->commit_time_us;
	c->recent[c->recent_next++ % RECENT_XIDS] = ch->xid;
	note_unapplied(c);
	return STREAM_CONTINUE;
}

/* One entry per transaction of the batch, so at most batch.max_changes:
 * little next to what every change costs on its way here, so it aborts on
 * out of memory (xalloc.h) where the batch's own table fails soft. */
static void note_commit_time(struct consumer *c)
{
	struct commit_times *t = &c->commits;

	if (c->txn_commit_us == 0)
		return;
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->us = xrealloc(t->us, t->cap * sizeof *t->us);
	}
	t->us[t->n++] = c->txn_commit_us;
}

static enum stream_result on_commit(struct consumer *c, const struct change *ch)
{
	if (!ledger_commit(&c->ledger, ch->xid)) {
		char lsn[LSN_BUFLEN];
		log_event(LOG_ERROR, "stream_out_of_order", ch->lsn, ch->xid,
			  "stream: COMMIT of xid %" PRIu64 " at %s without its BEGIN", ch->xid, lsn_format(ch->lsn, lsn));
		return STREAM_FATAL;
	}
	if (needs_write(c))
		note_commit_time(c);
	note_unapplied(c);
	return STREAM_CONTINUE;
}

static void note_skip(struct consumer *c, const struct change *ch, enum skip_reason why)
{
	char lsn[LSN_BUFLEN];

	c->stats.skipped++;
	metrics_skipped(skip_reason_name(why));
	lsn_format(ch->lsn, lsn);
	if (why == SKIP_IDENTITY)
		return; /* watch_skipped says it */
	if (why == SKIP_NULL_FLAG)
		log_event(LOG_WARN, "change_skipped", ch->lsn, ch->xid,
			  "%s change of %s at %s has a NULL is_current or is_delete: counted as not active (null_flag in "
			  "walcount_skipped_changes_total)",
			  change_action_name(ch->action), src_table_name(ch->table), lsn);
	else
		log_event(LOG_WARN, "change_skipped", ch->lsn, ch->xid,
			  "skipped %s change of %s at %s: %s (counted in walcount_skipped_changes_total)",
			  change_action_name(ch->action), src_table_name(ch->table), lsn, skip_reason_name(why));
}

/* Adds one change to the batch. A batch about to exceed batch.max_keys is
 * applied first, mid-transaction if need be, with the transaction's applied
 * change count as its progress. */
static enum stream_result add_change(struct consumer *c, const struct delta *d, size_t n)
{
	enum stream_result rc = STREAM_CONTINUE;

	if (batch_keys(c->batch) + DELTA_MAX > (size_t) c->cfg->batch_max_keys)
		rc = flush(c);
	if (rc != STREAM_CONTINUE)
		return rc;
	/* Its table grows with batch.max_keys: refused, not aborted (batch.c). */
	if (!batch_add(c->batch, d, n)) {
		log_error("batch: out of memory");
		return STREAM_FATAL;
	}
	if (batch_changes(c->batch) == 1)
		c->batch_since_ms = clock_now_ms();
	ledger_hold(&c->ledger);
	if (batch_changes(c->batch) >= (size_t) c->cfg->batch_max_changes)
		return flush(c);
	return STREAM_CONTINUE;
}

/* Keeps those of d[0..n) whose partition has not applied the current change
 * (a restart resumes from the earliest partition's row); returns how many. */
static size_t unapplied(const struct consumer *c, struct delta *d, size_t n)
{
	size_t kept = 0;

	for (size_t i = 0; i < n; i++)
		if (!ledger_applied_in(&c->ledger, agg_partition(agg_column_table(d[i].column), d[i].key, c->ledger.parts)))
			d[kept++] = d[i];
	return kept;
}

static enum stream_result on_change(struct consumer *c, const struct change *ch)
{
	struct delta d[DELTA_MAX];
	enum skip_reason why;
	char lsn[LSN_BUFLEN];

	if (!ledger_change(&c->ledger)) {
		log_event(LOG_ERROR, "stream_out_of_order", ch->lsn, ch->xid, "stream: change at %s outside a transaction",
			  lsn_format(ch->lsn, lsn));
		return STREAM_FATAL;
	}
	if (ledger_applied_everywhere(&c->ledger))
		return STREAM_CONTINUE;
	metrics_change(ch->table, change_action_name(ch->action));
	if (ch->action == ACT_TRUNCATE) {
		log_event(LOG_WARN, "truncate", ch->lsn, ch->xid,
			  "TRUNCATE of public.%s at %s: its counts are stale; reconcile sweep requested",
			  src_table_name(ch->table), lsn_format(ch->lsn, lsn));
		checkpoint_request(c->sweeper);
	}
	size_t n = unapplied(c, d, delta_derive(ch, d, &why));
	if (why != SKIP_NONE)
		note_skip(c, ch, why);
	enum stream_result rc = why == SKIP_IDENTITY ? watch_skipped(c->watch, c->sweeper, ch) : STREAM_CONTINUE;
	if (rc != STREAM_CONTINUE)
		return rc;
	checkpoint_note(c->sweeper, ch->xid, d, n);
	/* Even a change that moves nothing is added: its position must be
	 * recorded so a restart does not count it a second time. */
	return add_change(c, d, n);
}

static enum stream_result sink_change(void *ctx, const struct change *ch, const char *err, lsn_t wal_start)
{
	struct consumer *c = ctx;
	char lsn[LSN_BUFLEN];

	/* Never skip what cannot be read: stop, and say where it is. */
	if (ch == NULL) {
		log_event(LOG_ERROR, "decode_failed", wal_start, 0, "decode: %s (message at WAL %s); stopping", err,
			  lsn_format(wal_start, lsn));
		return STREAM_FATAL;
	}
	switch (ch->action) {
	case ACT_BEGIN:
		return on_begin(c, ch);
	case ACT_COMMIT:
		return on_commit(c, ch);
	case ACT_MESSAGE:
		return STREAM_CONTINUE;
	default:
		return on_change(c, ch);
	}
}

/* With no transaction open and nothing held, everything the server has sent
 * is applied or moved nothing, so its WAL end may be confirmed once the
 * heartbeat has persisted it: a quiet slot then does not pin WAL written to
 * other tables or databases. */
static void sink_keepalive(void *ctx, lsn_t wal_end)
{
	struct consumer *c = ctx;

	ledger_idle(&c->ledger, wal_end);
}

static enum stream_result cron_report(void *ctx, int64_t now)
{
	struct consumer *c = ctx;
	struct stats *s = &c->stats;
	char lsn[LSN_BUFLEN], part[64] = "";
	const struct progress *at = &c->ledger.applied;

	/* An idle look restarts the span of the rate: it then covers the
	 * changes since the stream got busy, not an idle hour before them. */
	if (s->applied == s->reported) {
		s->window_ms = now;
		return STREAM_CONTINUE;
	}
	if (s->line_ms != 0 && now - s->line_ms < report_interval_ms)
		return STREAM_CONTINUE;
	if (at->partial_xid != 0)
		snprintf(part, sizeof part, " and %" PRIu64 " changes of xid %" PRIu64, at->partial_changes, at->partial_xid);
	int64_t span = now - s->window_ms > 0 ? now - s->window_ms : 1;
	log_event(LOG_INFO, "progress", at->lsn, at->partial_xid,
		  "progress: applied through %s%s, %" PRIu64 " changes in %" PRIu64 " batches (%.0f/s), %" PRIu64 " skipped",
		  lsn_format(at->lsn, lsn), part, s->applied, s->batches,
		  (double) (s->applied - s->reported) * 1000.0 / (double) span, s->skipped);
	notify_status("streaming slot %s, applied through %s, %" PRIu64 " changes", c->cfg->slot_name, lsn, s->applied);
	s->reported = s->applied;
	s->line_ms = s->window_ms = now;
	return STREAM_CONTINUE;
}

/* Persists how far the stream is known to be idle, then emits a logical
 * message: on a quiet database it comes back as an empty transaction whose
 * end the next heartbeat persists, so the slot keeps moving. */
enum stream_result consumer_heartbeat(void *ctx, int64_t now)
{
	struct consumer *c = ctx;
	char err[512];

	(void) now;
	if (!c->ledger.txn.open) {
		ledger_take_idle(&c->ledger);
		enum stream_result rc = flush_all(c);
		if (rc != STREAM_CONTINUE)
			return rc;
	}
	enum stream_result rc = consumer_settle(c);
	if (rc != STREAM_CONTINUE)
		return rc;
	PGresult *res = db_exec(c->db, "heartbeat", "SELECT pg_logical_emit_message(true, 'walcount', 'heartbeat')", err,
				sizeof err);
	if (res == NULL)
		log_warn("%s", err);
	PQclear(res);
	return STREAM_CONTINUE;
}

/* Slot gauges for /metrics: lag and retained WAL as the server sees them. */
static enum stream_result cron_slot_refresh(void *ctx, int64_t now)
{
	struct consumer *c = ctx;
	char err[512], lsn[LSN_BUFLEN];
	enum stream_result rc = consumer_settle(c);

	(void) now;
	if (rc != STREAM_CONTINUE)
		return rc;
	const char *params[2] = {c->cfg->slot_name, lsn_format(c->ledger.applied.lsn, lsn)};
	PGresult *res = db_exec_params(c->db, "reading slot", sql_slot_lag, 2, params, err, sizeof err);

	if (res == NULL)
		log_warn("%s", err);
	else if (PQntuples(res) == 1) {
		struct slot_gauges g = {strtoll(PQgetvalue(res, 0, 0), NULL, 10), strtoll(PQgetvalue(res, 0, 1), NULL, 10),
					strcmp(PQgetvalue(res, 0, 2), "t") == 0, PQgetvalue(res, 0, 3),
					strtoll(PQgetvalue(res, 0, 4), NULL, 10)};
		metrics_slot(&g);
	}
	PQclear(res);
	return STREAM_CONTINUE;
}

/* The cron tasks of the sweep driver and the watch, on their own state. */
static enum stream_result cron_checkpoint(void *ctx, int64_t now)
{
	struct consumer *c = ctx;

	(void) now;
	return checkpoint_cron(c->sweeper);
}

static enum stream_result cron_reconcile(void *ctx, int64_t now)
{
	struct consumer *c = ctx;
	enum stream_result rc = checkpoint_reconcile_cron(c->sweeper, c->watch);

	(void) now;
	c->reconcile_poll_ms = checkpoint_reconcile_period(c->sweeper, signal_poll_ms);
	return rc;
}

static enum stream_result cron_watch(void *ctx, int64_t now)
{
	struct consumer *c = ctx;

	(void) now;
	return watch_cron(c->watch, c->sweeper);
}

/* Signals only set flags; their work is done here, in the loop. */
static enum stream_result cron_signals(void *ctx, int64_t now)
{
	struct consumer *c = ctx;

	(void) now;
	if (c->opts->sweep_now != NULL && *c->opts->sweep_now) {
		*c->opts->sweep_now = 0;
		checkpoint_request(c->sweeper);
	}
	if (c->opts->reload_now != NULL && *c->opts->reload_now) {
		*c->opts->reload_now = 0;
		c->opts->reload();
	}
	return STREAM_CONTINUE;
}

static enum stream_result sink_tick(void *ctx, int64_t now, int64_t *next)
{
	struct consumer *c = ctx;
	int64_t due = c->batch_since_ms + c->cfg->batch_max_delay_ms;
	enum stream_result rc = cron_tick(c->cron, sizeof c->cron / sizeof c->cron[0], c, now, next);

	/* Every turn of the stream's loop ticks, at least every signal_poll_ms. */
	notify_watchdog(now);
	if (rc != STREAM_CONTINUE)
		return rc;
	/* A quiet stream still brings the rows of partitions without deltas up
	 * to the others, so confirmation follows within partition_lazy_ms. */
	if (ledger_lazy_due(&c->ledger, now, next))
		return apply_now(c, false);
	if (!needs_write(c))
		return rc;
	if (batch_changes(c->batch) == 0 || now >= due)
		return flush(c);
	if (due < *next)
		*next = due;
	return STREAM_CONTINUE;
}

/* Between transactions only (ship): a large transaction still arriving is
 * applied by the batch.max_* bounds, not in a part per network read. In a
 * backlog the batch grows to those bounds instead: every batch costs a
 * commit and a statement, and nobody waits for the next changes yet. */
static enum stream_result sink_drained(void *ctx, bool backlog)
{
	struct consumer *c = ctx;

	return backlog ? collect(c, false) : ship(c);
}

/* At stop: every partition's row at one position (flush_all). */
static enum stream_result sink_flush(void *ctx)
{
	enum stream_result rc = flush_all(ctx);

	return rc == STREAM_CONTINUE ? consumer_settle(ctx) : rc;
}

/* The apply connections: a share's result, or the server ending an idle
 * connection, wakes the stream's wait. */
_Static_assert(STREAM_SINK_FDS >= 1 + AGG_MAX_PARTITIONS, "the stream must wait on every apply socket");

static int sink_wait_fds(void *ctx, int *fds, int max)
{
	const struct consumer *c = ctx;
	int n = 0;

	if (c->db != NULL && PQsocket(c->db) >= 0 && max > 0)
		fds[n++] = PQsocket(c->db);
	return n + fanout_sockets(&c->fanout, fds + n, max - n);
}

/* The earliest partition's row: a restart streams from there, so nothing
 * past it may be confirmed. */
static lsn_t sink_durable(void *ctx)
{
	return ledger_min_stored(&((struct consumer *) ctx)->ledger).lsn;
}

enum ready { READY, NOT_READY, STANDING_BY, REFUSED };

static enum ready not_ready(struct consumer *c, const char *err)
{
	log_warn("apply: %s", err);
	drop_connections(c);
	return NOT_READY;
}

/* For statements whose failure only costs a name: said, not fatal. */
static void exec_or_warn(PGconn *conn, const char *what, const char *sql)
{
	char err[512];

	if (!db_command(conn, what, sql, err, sizeof err))
		log_warn("%s", err);
}

/* The slot is held by another process: this instance stands by, and says
 * so once. */
static enum ready stand_by(struct consumer *c, const char *err)
{
	char line[512];

	slot_unlock(c->db);
	c->locked = false;
	/* `status` and `drop` find standbys by this name. */
	snprintf(line, sizeof line, "SET application_name = 'walcount standby %s'", c->cfg->slot_name);
	exec_or_warn(c->db, "naming the standby's connection", line);
	if (c->standby)
		return STANDING_BY;
	if (c->opts->sweep_once) {
		log_error("reconcile: %s, which started meanwhile; run `walcount reconcile` again to ask it", err);
		return REFUSED;
	}
	log_event(LOG_INFO, "standby", 0, 0, "standby: %s; standing by until it is released (checked every %" PRId64 " ms)", err,
		  standby_poll_ms);
	c->standby = true;
	c->standby_since_ms = clock_now_ms();
	metrics_standby(true);
	/* Up and doing its job, which is to wait: `systemctl start` returns. */
	notify_ready("standing by: %s", err);
	return STANDING_BY;
}

static void end_standby(struct consumer *c)
{
	if (!c->standby)
		return;
	log_event(LOG_INFO, "standby_ended", 0, 0, "standby: slot %s was released; taking over after %.1f s on standby",
		  c->cfg->slot_name, (double) (clock_now_ms() - c->standby_since_ms) / 1e3);
	c->standby = false;
	metrics_standby(false);
	exec_or_warn(c->db, "naming the connection", "RESET application_name");
}

/* Reads the progress rows and starts again from them. They must be one per
 * partition of apply.workers. After a change of apply.workers, rows that
 * all stand at one position (a stop leaves them so: flush_all) are
 * re-partitioned, since every partition has applied the same deltas;
 * rows at different positions need their old split to continue. */
static enum ready load_progress(struct consumer *c, char *err, size_t errlen)
{
	struct progress_rows rows;
	int parts = c->ledger.parts;
	bool done = false;
	char lsn[LSN_BUFLEN];

	if (!apply_load_progress(c->db, c->cfg->slot_name, &rows, err, errlen))
		return not_ready(c, err);
	if (rows.count != 0 && (rows.count != parts || rows.max_part != parts - 1)) {
		if (!rows.uniform) {
			log_error(
				"apply: walcount.progress of slot %s has %d partitions at different positions and apply.workers is "
				"%d: start once with apply.workers: %d and stop walcount with SIGTERM (that brings them to one "
				"position), then change apply.workers",
				c->cfg->slot_name, rows.count, parts, rows.max_part + 1);
			return REFUSED;
		}
		const struct progress *at = &rows.row[rows.max_part];
		if (!apply_repartition(c->db, c->cfg->slot_name, at, parts, &done, err, errlen))
			return not_ready(c, err);
		if (!done)
			return not_ready(c, "walcount.progress moved while it was being re-partitioned");
		log_info("apply: walcount.progress of slot %s re-partitioned from %d to %d partitions at %s", c->cfg->slot_name,
			 rows.count, parts, lsn_format(at->lsn, lsn));
		if (!apply_load_progress(c->db, c->cfg->slot_name, &rows, err, errlen))
			return not_ready(c, err);
	}
	ledger_resume(&c->ledger, rows.row, clock_now_ms());
	return READY;
}

/* Opens the apply connection to the server repl streams from, checks that
 * server against the one the progress row was written on and the one
 * streamed from before (identity.h) and, under the start-up lock, makes
 * sure the slot can continue (a replaced or lost slot is rebuilt exactly)
 * and re-reads the progress rows, the only truth about what is applied. An
 * idle or confirmed position is valid only on the connection that saw it:
 * everything starts again from those rows. The lock is kept until the
 * stream has started (sink_started). */
static enum ready db_ready(struct consumer *c, PGconn *repl)
{
	char err[1024];
	struct server_id server;
	int holder = 0;

	/* A reconnect may reach another server (a failover): the apply
	 * connection is made again with the stream's. Only the one prepare()
	 * handed over, still holding the start-up lock, is kept. */
	if (!c->locked)
		drop_connections(c);
	if (!identity_read(repl, &server, err, sizeof err) ||
	    (c->db == NULL && (c->db = db_connect(c->cfg, DB_NORMAL, err, sizeof err)) == NULL))
		return not_ready(c, err);
	c->seen.lsn = c->ledger.applied.lsn;
	enum identity_verdict v = identity_check(c->db, repl, c->cfg->slot_name, &server, &c->seen, err, sizeof err);
	if (v == IDENTITY_REFUSED) {
		log_error("%s", err);
		return REFUSED;
	}
	if (v != IDENTITY_OK)
		return not_ready(c, err);
	if (!c->locked && !(c->locked = slot_lock(c->db, c->stop, err, sizeof err)))
		return not_ready(c, err);
	enum slot_outcome out = apply_prepare(c->db, err, sizeof err)
					? slot_ensure(c->db, c->cfg, &c->slot_opts, c->stop, &holder, err, sizeof err)
					: SLOT_RETRY;
	/* The walsender of the stream just lost lets go once it notices. */
	for (int64_t waited = 0;
	     out == SLOT_HELD && holder == c->last_walsender && waited < c->cfg->slot_release_wait_ms && !*c->stop;
	     waited += own_walsender_poll_ms) {
		db_backoff_sleep(own_walsender_poll_ms, c->stop);
		out = slot_ensure(c->db, c->cfg, &c->slot_opts, c->stop, &holder, err, sizeof err);
	}
	if (out == SLOT_HELD)
		return stand_by(c, err);
	if (out == SLOT_REFUSED) {
		log_error("%s", err);
		return REFUSED;
	}
	if (out != SLOT_OK)
		return not_ready(c, err);
	enum ready r = load_progress(c, err, sizeof err);
	if (r != READY)
		return r;
	if (!fanout_connect(&c->fanout, c->cfg, err, sizeof err))
		return not_ready(c, err);
	c->slot_opts = (struct slot_opts){0};
	c->seen = server;
	end_standby(c);
	if (!checkpoint_connected(c->sweeper, err, sizeof err))
		return not_ready(c, err);
	if (!c->started)
		checkpoint_resume_unfinished(c->sweeper, c->watch);
	c->started = true;
	return READY;
}

/* Tells the service manager that walcount is up (sd_notify READY=1). */
static enum stream_result streaming(const struct consumer *c)
{
	char lsn[LSN_BUFLEN];

	notify_ready("streaming slot %s from %s", c->cfg->slot_name, lsn_format(ledger_min_stored(&c->ledger).lsn, lsn));
	return STREAM_CONTINUE;
}

/* The slot is this process's now. Another consumer may have applied and
 * confirmed between the progress read in db_ready and START_REPLICATION
 * (the server then starts at its confirmed position): read the progress
 * again, and make sure nothing moved the slot past it. Only then is the
 * start-up lock released. */
static enum stream_result sink_started(void *ctx)
{
	struct consumer *c = ctx;
	char err[512], why[512];
	bool failed;

	if (!c->locked)
		return streaming(c);
	if (load_progress(c, err, sizeof err) != READY)
		return STREAM_LOST;
	if (slot_moved_by_others(c->db, c->cfg->slot_name, why, sizeof why, &failed, err, sizeof err)) {
		log_warn("rebuild: slot %s changed while it was being started: %s; restarting to rebuild it", c->cfg->slot_name,
			 why);
		return STREAM_LOST;
	}
	if (failed) {
		log_warn("apply: %s", err);
		return STREAM_LOST;
	}
	slot_unlock(c->db);
	c->locked = false;
	return streaming(c);
}

/* A standby looks on the connection it keeps first: only a released slot
 * is worth the connections and checks of a full start. */
static bool still_held(struct consumer *c)
{
	char err[512];
	const char *params[1] = {c->cfg->slot_name};

	if (!c->standby || c->db == NULL)
		return false;
	PGresult *res = db_exec_params(c->db, "watching the slot",
				       "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND active", 1, params, err,
				       sizeof err);
	bool held = res != NULL && PQntuples(res) == 1;

	PQclear(res);
	return held;
}

/* One replication connection, from connect to loss or stop. */
static enum stream_result stream_once(struct consumer *c, const struct stream_sink *sink, volatile sig_atomic_t *stop,
				      bool *received)
{
	char err[512];
	enum stream_result rc;

	*received = false;
	c->apply_error = false;
	if (still_held(c))
		return STREAM_LOST;
	PGconn *repl = db_connect(c->cfg, DB_REPLICATION, err, sizeof err);
	if (repl == NULL) {
		log_event(LOG_WARN, "connect_failed", 0, 0, "stream: %s", err);
		return STREAM_LOST;
	}
	switch (db_ready(c, repl)) {
	case READY:
		break;
	case REFUSED:
		PQfinish(repl);
		return STREAM_FATAL;
	case NOT_READY:
	case STANDING_BY:
		PQfinish(repl);
		return STREAM_LOST;
	}
	struct stream_opts opts = {c->cfg->slot_name, c->cfg->slot_temporary, ledger_min_stored(&c->ledger).lsn,
				   c->cfg->stream_status_interval_ms, (unsigned) c->cfg->decode_workers};
	log_event(LOG_INFO, "connected", 0, 0, "stream: connected");
	c->last_walsender = PQbackendPID(repl);
	metrics_health(true, true);
	rc = stream_run(repl, &opts, sink, stop, received);
	PQfinish(repl);
	c->ledger.txn.open = false;
	if (rc != STREAM_STOPPED && consumer_flush_durable(c) != STREAM_CONTINUE && rc != STREAM_FATAL)
		rc = STREAM_LOST;
	/* After the flush, whose collect says the stream is up. */
	metrics_health(false, true);
	metrics_slot_released();
	note_unapplied(c);
	return rc;
}

static int run_loop(struct consumer *c, volatile sig_atomic_t *stop)
{
	const struct stream_sink sink = {c,          sink_change,  sink_keepalive, sink_tick,   sink_drained,
					 sink_flush, sink_durable, sink_wait_fds,  sink_started};
	int64_t delay = c->cfg->stream_reconnect_min_ms, lost_ms = 0;
	int attempt = 0;
	bool received;

	while (!*stop) {
		enum stream_result rc = stream_once(c, &sink, stop, &received);
		/* Whatever ended the attempt, the next one decides afresh. */
		if (c->locked && c->db != NULL)
			slot_unlock(c->db);
		c->locked = false;
		if (rc == STREAM_STOPPED)
			break;
		if (rc == STREAM_FATAL)
			return 1;
		if (c->standby) {
			db_backoff_sleep(standby_poll_ms, stop);
			delay = c->cfg->stream_reconnect_min_ms, attempt = 0;
			continue;
		}
		/* A batch that keeps failing (a count out of range, a full disk)
		 * backs off like a server that is down. */
		if (received && !c->apply_error)
			delay = c->cfg->stream_reconnect_min_ms, attempt = 0;
		if (*stop)
			break;
		metrics_reconnect();
		if (attempt == 0)
			lost_ms = clock_now_ms();
		log_event(LOG_WARN, "reconnect", c->ledger.applied.lsn, 0,
			  "stream: reconnect attempt %d in %" PRId64
			  " ms (not streaming for %.1f s; retried for as long as walcount runs)",
			  ++attempt, delay, (double) (clock_now_ms() - lost_ms) / 1e3);
		notify_status("reconnecting: attempt %d in %" PRId64 " ms", attempt, delay);
		db_backoff_sleep(delay, stop);
		delay = db_next_backoff(c->cfg, delay);
	}
	return 0;
}

int consumer_run(const struct config *cfg, const struct consumer_opts *opts, volatile sig_atomic_t *stop)
{
	struct consumer c = {
		.cfg = cfg,
		.opts = opts,
		.stop = stop,
		.db = opts->conn,
		.locked = opts->conn != NULL,
		.reconcile_poll_ms = signal_poll_ms,
		.slot_opts = opts->slot,
		.cron =
			{
				{"report", &report_poll_ms, cron_report, 0},
				{"heartbeat", &cfg->slot_heartbeat_interval_ms, consumer_heartbeat, 0},
				{"slot refresh", &cfg->slot_refresh_interval_ms, cron_slot_refresh, 0},
				{"checkpoint", &cfg->checkpoint_interval_ms, cron_checkpoint, 0},
				{"signals", &signal_poll_ms, cron_signals, 0},
				{"reconcile", &c.reconcile_poll_ms, cron_reconcile, 0},
				{"prerequisites", &cfg->slot_refresh_interval_ms, cron_watch, 0},
			},
	};
	char lsn[LSN_BUFLEN];

	c.stats.window_ms = clock_now_ms();
	c.batch = batch_new();
	c.sweeper = checkpoint_new(&c, cfg, opts->sweep_once, opts->dry_run, stop);
	c.watch = watch_new(&c, cfg, opts->sweep_once);
	ledger_init(&c.ledger, (int) cfg->apply_workers, cfg->apply_workers == 1 ? 0 : partition_lazy_ms);
	fanout_init(&c.fanout, (int) cfg->apply_workers);
	int rc = run_loop(&c, stop);
	if (c.db != NULL)
		watch_cron(c.watch, c.sweeper);
	if (checkpoint_failed(c.sweeper))
		rc = 1;
	if (rc == 0)
		log_event(LOG_INFO, "stopped", c.ledger.applied.lsn, 0,
			  "stopped: applied through %s, %" PRIu64 " changes in %" PRIu64 " batches",
			  lsn_format(c.ledger.applied.lsn, lsn), c.stats.applied, c.stats.batches);
	checkpoint_abandon_request(c.sweeper);
	batch_free(c.batch);
	checkpoint_free(c.sweeper);
	watch_free(c.watch);
	free(c.commits.us);
	free(c.inflight.commits.us);
	drop_connections(&c);
	return rc;
}
