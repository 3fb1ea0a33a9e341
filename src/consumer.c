#include "consumer.h"
#include "consumer_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apply.h"
#include "batch.h"
#include "clock.h"
#include "cron.h"
#include "db.h"
#include "decode.h"
#include "delta.h"
#include "log.h"
#include "metrics.h"
#include "reconcile.h"
#include "request.h"
#include "slot.h"
#include "sqlfiles.h"
#include "stream.h"
#include "xalloc.h"

static const int64_t report_interval_ms = 10000;
static const int64_t signal_poll_ms = 100;
/* How often a standby looks whether the slot was released. */
static const int64_t standby_poll_ms = 500;
/* After a reconnect: how long this process's previous walsender is given
 * to release the slot before the holder counts as someone else. */
static const int64_t own_walsender_poll_ms = 100;

static void advance_idle(struct consumer *c, lsn_t lsn)
{
	if (lsn > c->idle_lsn)
		c->idle_lsn = lsn;
}

/* True when the progress row must be written: the batch holds changes, or
 * the stored partial-transaction marker is out of date. */
static bool needs_write(const struct consumer *c)
{
	const struct progress *written = c->inflight.active ? &c->inflight.to : &c->durable;

	return batch_changes(c->batch) > 0 || c->pending.partial_xid != written->partial_xid ||
	       c->pending.partial_changes != written->partial_changes;
}

/* How far everything is applied or moved nothing. Only the durable LSN
 * while something is held or a transaction is applied in parts: that
 * transaction comes again after a reconnect and must find its partial
 * marker, so nothing may be confirmed or persisted past it. */
lsn_t consumer_idle_position(const struct consumer *c)
{
	if (needs_write(c) || c->inflight.active || c->durable.partial_xid != 0 || c->idle_lsn < c->durable.lsn)
		return c->durable.lsn;
	return c->idle_lsn;
}

/* Forgets everything not durable, after an apply failure whose outcome may
 * be unknown: the next connection re-reads the progress row and the server
 * re-sends what follows it. */
static void discard(struct consumer *c)
{
	PQfinish(c->db);
	c->db = NULL;
	c->locked = false;
	batch_reset(c->batch);
	c->commits.n = 0;
	c->inflight.active = false;
	c->inflight.commits.n = 0;
	c->pending = c->durable;
	/* What was idle may have been known only with the lost batch applied. */
	c->idle_lsn = c->durable.lsn;
	c->txn.open = false;
	if (c->sweep != NULL) {
		log_warn("reconcile: sweep abandoned, its noted deltas included a lost batch; it is retried");
		sweep_free(c->sweep);
		c->sweep = NULL;
		c->sweep_requested = true;
	}
}

static double real_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double) ts.tv_sec * 1e6 + (double) ts.tv_nsec / 1e3;
}

static void observe_applied(struct consumer *c)
{
	struct inflight *f = &c->inflight;
	double now_us = real_now_us();

	for (size_t i = 0; i < f->commits.n; i++)
		metrics_commit_to_apply((now_us - (double) f->commits.us[i]) / 1e6);
	f->commits.n = 0;
	metrics_batch((double) (clock_now_ms() - f->sent_ms) / 1e3, c->durable.lsn);
	c->stats.applied += f->changes;
	c->stats.batches++;
}

static enum stream_result apply_failed(struct consumer *c, const char *why)
{
	log_warn("apply: %s; discarding the unapplied batch, it will be received again", why);
	c->apply_error = true;
	metrics_health(true, false);
	discard(c);
	return STREAM_LOST;
}

/* Takes the in-flight batch's outcome: waits for it, or only looks. */
static enum stream_result collect(struct consumer *c, bool wait)
{
	char err[512], lsn[LSN_BUFLEN];

	if (!c->inflight.active)
		return STREAM_CONTINUE;
	switch (apply_collect(c->db, c->cfg->slot_name, &c->durable, wait, err, sizeof err)) {
	case DB_BUSY:
		return STREAM_CONTINUE;
	case DB_FAILED:
		return apply_failed(c, err);
	case DB_DONE:
		break;
	}
	c->durable = c->inflight.to;
	c->inflight.active = false;
	metrics_health(true, true);
	observe_applied(c);
	log_debug("apply: %zu changes through %s in %" PRId64 " ms", c->inflight.changes, lsn_format(c->durable.lsn, lsn),
		  clock_now_ms() - c->inflight.sent_ms);
	return STREAM_CONTINUE;
}

/* Makes the apply connection idle and everything sent durable: before any
 * other statement on it, and wherever the aggregates must hold all that
 * was applied. */
enum stream_result consumer_settle(struct consumer *c)
{
	return collect(c, true);
}

/* Sends the batch and c->pending now, whatever needs_write says, once the
 * batch before it is durable (progress rows are written in stream order). */
static enum stream_result apply_now(struct consumer *c)
{
	char err[512];
	enum stream_result rc = consumer_settle(c);

	if (rc != STREAM_CONTINUE)
		return rc;
	if (c->db == NULL)
		return apply_failed(c, "no database connection");
	if (!apply_send(c->db, c->cfg->slot_name, c->batch, &c->durable, &c->pending, err, sizeof err))
		return apply_failed(c, err);
	struct commit_times sent = c->commits;
	c->commits = c->inflight.commits;
	c->inflight = (struct inflight){true, c->pending, batch_changes(c->batch), clock_now_ms(), sent};
	batch_reset(c->batch);
	return STREAM_CONTINUE;
}

static enum stream_result flush(struct consumer *c)
{
	return needs_write(c) ? apply_now(c) : STREAM_CONTINUE;
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

	if (c->db == NULL || PQconsumeInput(c->db) == 1)
		return STREAM_CONTINUE;
	snprintf(why, sizeof why, "apply connection lost: %s", db_error_line(c->db, line, sizeof line));
	return apply_failed(c, why);
}

/* Group commit: what is held between transactions goes out as soon as the
 * stream has nothing more to read and the batch before it is durable, so
 * light load gets small fast batches, heavy load large coalesced ones, and
 * reading the stream overlaps applying. */
static enum stream_result ship(struct consumer *c)
{
	enum stream_result rc = c->inflight.active ? collect(c, false) : check_idle(c);

	if (rc != STREAM_CONTINUE || c->txn.open || c->inflight.active)
		return rc;
	return flush(c);
}

static enum stream_result on_begin(struct consumer *c, const struct change *ch)
{
	char lsn[LSN_BUFLEN];

	if (c->txn.open) {
		log_error("stream: BEGIN of xid %" PRIu64 " at %s inside xid %" PRIu64, ch->xid, lsn_format(ch->lsn, lsn),
			  c->txn.xid);
		return STREAM_FATAL;
	}
	c->txn = (struct txn){true, ch->xid, ch->end_lsn, ch->commit_time_us, 0, 0};
	c->recent[c->recent_next++ % RECENT_XIDS] = ch->xid;
	if (ch->end_lsn <= c->durable.lsn)
		c->txn.skip = UINT64_MAX;
	else if (ch->xid == c->durable.partial_xid)
		c->txn.skip = c->durable.partial_changes;
	return STREAM_CONTINUE;
}

/* One entry per transaction of the batch, so at most batch.max_changes:
 * little next to what every change costs on its way here, so it aborts on
 * out of memory (xalloc.h) where the batch's own table fails soft. */
static void note_commit_time(struct consumer *c)
{
	struct commit_times *t = &c->commits;

	if (c->txn.commit_time_us == 0)
		return;
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->us = xrealloc(t->us, t->cap * sizeof *t->us);
	}
	t->us[t->n++] = c->txn.commit_time_us;
}

static enum stream_result on_commit(struct consumer *c, const struct change *ch)
{
	if (!c->txn.open || ch->xid != c->txn.xid) {
		char lsn[LSN_BUFLEN];
		log_error("stream: COMMIT of xid %" PRIu64 " at %s without its BEGIN", ch->xid, lsn_format(ch->lsn, lsn));
		return STREAM_FATAL;
	}
	c->txn.open = false;
	c->pending = (struct progress){c->txn.end_lsn, 0, 0};
	/* A transaction that moved nothing needs no write of its own. */
	if (!needs_write(c))
		advance_idle(c, c->txn.end_lsn);
	else
		note_commit_time(c);
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
		log_warn("%s change of %s at %s has a NULL is_current or is_delete: counted as not active (null_flag in "
			 "walcount_skipped_changes_total)",
			 change_action_name(ch->action), src_table_name(ch->table), lsn);
	else
		log_warn("skipped %s change of %s at %s: %s (counted in walcount_skipped_changes_total)",
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
	c->pending.partial_xid = c->txn.xid;
	c->pending.partial_changes = c->txn.changes;
	if (batch_changes(c->batch) >= (size_t) c->cfg->batch_max_changes)
		return flush(c);
	return STREAM_CONTINUE;
}

static enum stream_result on_change(struct consumer *c, const struct change *ch)
{
	struct delta d[DELTA_MAX];
	enum skip_reason why;
	char lsn[LSN_BUFLEN];

	if (!c->txn.open) {
		log_error("stream: change at %s outside a transaction", lsn_format(ch->lsn, lsn));
		return STREAM_FATAL;
	}
	if (++c->txn.changes <= c->txn.skip)
		return STREAM_CONTINUE;
	metrics_change(ch->table, change_action_name(ch->action));
	if (ch->action == ACT_TRUNCATE) {
		log_warn("TRUNCATE of public.%s at %s: its counts are stale; reconcile sweep requested",
			 src_table_name(ch->table), lsn_format(ch->lsn, lsn));
		c->sweep_requested = true;
	}
	size_t n = delta_derive(ch, d, &why);
	if (why != SKIP_NONE)
		note_skip(c, ch, why);
	enum stream_result rc = why == SKIP_IDENTITY ? watch_skipped(c, ch) : STREAM_CONTINUE;
	if (rc != STREAM_CONTINUE)
		return rc;
	if (n > 0 && c->sweep != NULL && !sweep_saw(c->sweep, ch->xid) && !sweep_note(c->sweep, d, n))
		log_warn("reconcile: out of memory noting deltas; sweep abandoned");
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
		log_error("decode: %s (message at WAL %s); stopping", err, lsn_format(wal_start, lsn));
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

	if (!c->txn.open && !needs_write(c) && !c->inflight.active)
		advance_idle(c, wal_end);
}

static enum stream_result cron_report(void *ctx, int64_t now)
{
	struct consumer *c = ctx;
	struct stats *s = &c->stats;
	char lsn[LSN_BUFLEN], part[64] = "";

	(void) now;
	if (s->applied == s->reported)
		return STREAM_CONTINUE;
	if (c->durable.partial_xid != 0)
		snprintf(part, sizeof part, " and %" PRIu64 " changes of xid %" PRIu64, c->durable.partial_changes,
			 c->durable.partial_xid);
	log_info("progress: applied through %s%s, %" PRIu64 " changes in %" PRIu64 " batches (%.0f/s), %" PRIu64 " skipped",
		 lsn_format(c->durable.lsn, lsn), part, s->applied, s->batches,
		 (double) (s->applied - s->reported) * 1000.0 / (double) report_interval_ms, s->skipped);
	s->reported = s->applied;
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
	if (!c->txn.open && consumer_idle_position(c) > c->durable.lsn) {
		c->pending = (struct progress){c->idle_lsn, 0, 0};
		enum stream_result rc = apply_now(c);
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
	const char *params[2] = {c->cfg->slot_name, lsn_format(c->durable.lsn, lsn)};
	PGresult *res = db_exec_params(c->db, "reading slot", sql_slot_lag, 2, params, err, sizeof err);

	if (res == NULL)
		log_warn("%s", err);
	else if (PQntuples(res) == 1)
		metrics_slot(strtoll(PQgetvalue(res, 0, 0), NULL, 10), strtoll(PQgetvalue(res, 0, 1), NULL, 10),
			     strcmp(PQgetvalue(res, 0, 2), "t") == 0);
	PQclear(res);
	return STREAM_CONTINUE;
}

/* Signals only set flags; their work is done here, in the loop. */
static enum stream_result cron_signals(void *ctx, int64_t now)
{
	struct consumer *c = ctx;

	(void) now;
	if (c->opts->sweep_now != NULL && *c->opts->sweep_now) {
		*c->opts->sweep_now = 0;
		c->sweep_requested = true;
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

	if (rc != STREAM_CONTINUE || !needs_write(c))
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

static enum stream_result sink_flush(void *ctx)
{
	return consumer_flush_durable(ctx);
}

/* The apply connection: a batch's result, or the server ending the idle
 * connection, wakes the stream's wait. */
static int sink_wait_fd(void *ctx)
{
	const struct consumer *c = ctx;

	return c->db != NULL ? PQsocket(c->db) : -1;
}

static lsn_t sink_durable(void *ctx)
{
	return ((struct consumer *) ctx)->durable.lsn;
}

enum ready { READY, NOT_READY, STANDING_BY, REFUSED };

/* Everything goes on from the progress row just read: idle and confirmed
 * positions were the last connection's, valid only there. */
static void resume_from_durable(struct consumer *c)
{
	c->pending = c->durable;
	c->idle_lsn = c->durable.lsn;
}

static enum ready not_ready(struct consumer *c, const char *err)
{
	log_warn("apply: %s", err);
	PQfinish(c->db);
	c->db = NULL;
	c->locked = false;
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
	log_info("standby: %s; standing by until it is released (checked every %" PRId64 " ms)", err, standby_poll_ms);
	c->standby = true;
	c->standby_since_ms = clock_now_ms();
	metrics_standby(true);
	return STANDING_BY;
}

static void end_standby(struct consumer *c)
{
	if (!c->standby)
		return;
	log_info("standby: slot %s was released; taking over after %.1f s on standby", c->cfg->slot_name,
		 (double) (clock_now_ms() - c->standby_since_ms) / 1e3);
	c->standby = false;
	metrics_standby(false);
	exec_or_warn(c->db, "naming the connection", "RESET application_name");
}

/* `walcount reconcile` next to this process notifies REQUEST_CHANNEL. */
static bool listen_for_requests(struct consumer *c, char *err, size_t errlen)
{
	return db_command(c->db, "listening for sweep requests", "LISTEN " REQUEST_CHANNEL, err, errlen);
}

/* Opens the apply connection to the server repl streams from, checks that
 * server against the one the progress row was written on and the one
 * streamed from before (identity.h) and, under the start-up lock, makes
 * sure the slot can continue (a replaced or lost slot is rebuilt exactly)
 * and re-reads the progress row, the only truth about what is applied. An
 * idle or confirmed position is valid only on the connection that saw it:
 * everything starts again from that row. The lock is kept until the
 * stream has started (sink_started). */
static enum ready db_ready(struct consumer *c, PGconn *repl)
{
	char err[1024];
	struct server_id server;
	int holder = 0;

	/* A reconnect may reach another server (a failover): the apply
	 * connection is made again with the stream's. Only the one prepare()
	 * handed over, still holding the start-up lock, is kept. */
	if (!c->locked) {
		PQfinish(c->db);
		c->db = NULL;
	}
	if (!identity_read(repl, &server, err, sizeof err) ||
	    (c->db == NULL && (c->db = db_connect(c->cfg, DB_NORMAL, err, sizeof err)) == NULL))
		return not_ready(c, err);
	c->seen.lsn = c->durable.lsn;
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
	if (out != SLOT_OK || !apply_load_progress(c->db, c->cfg->slot_name, &c->durable, err, sizeof err))
		return not_ready(c, err);
	c->slot_opts = (struct slot_opts){0};
	c->seen = server;
	end_standby(c);
	resume_from_durable(c);
	c->request_check = true;
	if (!listen_for_requests(c, err, sizeof err))
		return not_ready(c, err);
	if (!c->started)
		checkpoint_resume_unfinished(c);
	c->started = true;
	return READY;
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
		return STREAM_CONTINUE;
	if (!apply_load_progress(c->db, c->cfg->slot_name, &c->durable, err, sizeof err)) {
		log_warn("apply: %s", err);
		return STREAM_LOST;
	}
	resume_from_durable(c);
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
	return STREAM_CONTINUE;
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
		log_warn("stream: %s", err);
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
	struct stream_opts opts = {c->cfg->slot_name, c->cfg->slot_temporary, c->durable.lsn, c->cfg->stream_status_interval_ms,
				   (unsigned) c->cfg->decode_workers};
	log_info("stream: connected");
	c->last_walsender = PQbackendPID(repl);
	metrics_health(true, true);
	rc = stream_run(repl, &opts, sink, stop, received);
	metrics_health(false, true);
	metrics_slot_released();
	PQfinish(repl);
	c->txn.open = false;
	if (rc != STREAM_STOPPED && consumer_flush_durable(c) != STREAM_CONTINUE && rc != STREAM_FATAL)
		rc = STREAM_LOST;
	return rc;
}

static int run_loop(struct consumer *c, volatile sig_atomic_t *stop)
{
	const struct stream_sink sink = {c,          sink_change,  sink_keepalive, sink_tick,   sink_drained,
					 sink_flush, sink_durable, sink_wait_fd,   sink_started};
	int64_t delay = c->cfg->stream_reconnect_min_ms;
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
		log_warn("stream: reconnect attempt %d in %" PRId64 " ms", ++attempt, delay);
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
		.sweep_requested = opts->sweep_once,
		.sweep_dry_run = opts->dry_run,
		.db = opts->conn,
		.locked = opts->conn != NULL,
		.slot_opts = opts->slot,
		.cron =
			{
				{"report", &report_interval_ms, cron_report, 0},
				{"heartbeat", &cfg->slot_heartbeat_interval_ms, consumer_heartbeat, 0},
				{"slot refresh", &cfg->slot_refresh_interval_ms, cron_slot_refresh, 0},
				{"checkpoint", &cfg->checkpoint_interval_ms, checkpoint_cron, 0},
				{"signals", &signal_poll_ms, cron_signals, 0},
				{"reconcile", &signal_poll_ms, checkpoint_reconcile_cron, 0},
				{"prerequisites", &cfg->slot_refresh_interval_ms, watch_cron, 0},
			},
	};
	char lsn[LSN_BUFLEN];

	c.batch = batch_new();
	int rc = run_loop(&c, stop);
	if (c.db != NULL)
		watch_cron(&c, 0);
	if (c.fatal_sweep)
		rc = 1;
	if (rc == 0)
		log_info("stopped: applied through %s, %" PRIu64 " changes in %" PRIu64 " batches",
			 lsn_format(c.durable.lsn, lsn), c.stats.applied, c.stats.batches);
	checkpoint_abandon_request(&c);
	batch_free(c.batch);
	sweep_free(c.sweep);
	free(c.commits.us);
	free(c.inflight.commits.us);
	PQfinish(c.db);
	return rc;
}
