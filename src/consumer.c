#include "consumer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apply.h"
#include "batch.h"
#include "cron.h"
#include "db.h"
#include "decode.h"
#include "delta.h"
#include "log.h"
#include "metrics.h"
#include "reconcile.h"
#include "slot.h"
#include "stream.h"

static const int64_t report_interval_ms = 10000;
static const int64_t slot_refresh_ms = 5000;
static const int64_t signal_poll_ms = 100;
/* Transactions remembered for the sweep's start (see sweep_begin). */
#define RECENT_XIDS 1024

/* The source transaction being received. */
struct txn {
	bool open;
	uint64_t xid;
	lsn_t end_lsn;
	int64_t commit_time_us;
	uint64_t changes;       /* I/U/D/T records received so far */
	uint64_t skip;          /* the first `skip` of them are already applied */
};

/* Commit times of the source transactions a batch completes, for the
 * commit-to-apply histogram. Grows as needed; emptied by every flush. */
struct commit_times {
	int64_t *us;
	size_t n, cap;
};

/* The batch sent to the server and not yet known to be durable. Its commit
 * times move here when it is sent. */
struct inflight {
	bool active;
	struct progress to;
	size_t changes;
	int64_t sent_ms;
	struct commit_times commits;
};

struct stats {
	uint64_t skipped;
	uint64_t applied;        /* changes in committed batches */
	uint64_t batches;
	uint64_t reported;       /* `applied` at the last progress line */
};

struct consumer {
	const struct config *cfg;
	PGconn *db;              /* apply connection; NULL while broken */
	struct batch *batch;
	struct progress durable; /* what walcount.progress holds: the only LSN
				  * ever reported to the server as flushed */
	struct progress pending; /* what it will hold once the batch is applied */
	struct inflight inflight;
	lsn_t idle_lsn;          /* everything up to here is applied or moved
				  * nothing; persisted by the heartbeat */
	int64_t batch_since_ms;  /* when the batch got its first change */
	struct txn txn;
	struct commit_times commits;
	struct stats stats;
	const struct consumer_opts *opts;
	volatile sig_atomic_t *stop;
	struct sweep *sweep;     /* the reconcile sweep in progress, or NULL */
	bool sweep_requested;
	bool sweep_nudged;       /* a heartbeat was sent to carry the stream past S */
	int64_t checkpoint_id;   /* walcount.checkpoints row of the sweep */
	uint64_t recent[RECENT_XIDS];
	size_t recent_next;
	bool fatal_sweep;        /* sweep_once: the sweep failed */
	bool sources_missing;    /* a source table was found missing */
	bool started;            /* the first apply connection was made */
	bool apply_error;        /* a batch failed on this connection */
	struct cron_task cron[7];
};

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
static lsn_t idle_position(const struct consumer *c)
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
	metrics_batch((double) (stream_now_ms() - f->sent_ms) / 1e3, c->durable.lsn);
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
	log_debug("apply: %zu changes through %s in %" PRId64 " ms", c->inflight.changes,
		  lsn_format(c->durable.lsn, lsn), stream_now_ms() - c->inflight.sent_ms);
	return STREAM_CONTINUE;
}

/* Makes the apply connection idle and everything sent durable: before any
 * other statement on it, and wherever the aggregates must hold all that
 * was applied. */
static enum stream_result settle(struct consumer *c)
{
	return collect(c, true);
}

/* Sends the batch and c->pending now, whatever needs_write says, once the
 * batch before it is durable (progress rows are written in stream order). */
static enum stream_result apply_now(struct consumer *c)
{
	char err[512];
	enum stream_result rc = settle(c);

	if (rc != STREAM_CONTINUE)
		return rc;
	if (c->db == NULL)
		return apply_failed(c, "no database connection");
	if (!apply_send(c->db, c->cfg->slot_name, c->batch, &c->durable, &c->pending, err, sizeof err))
		return apply_failed(c, err);
	struct commit_times sent = c->commits;
	c->commits = c->inflight.commits;
	c->inflight = (struct inflight){true, c->pending, batch_changes(c->batch), stream_now_ms(), sent};
	batch_reset(c->batch);
	return STREAM_CONTINUE;
}

static enum stream_result flush(struct consumer *c)
{
	return needs_write(c) ? apply_now(c) : STREAM_CONTINUE;
}

/* Applies everything held and waits until it is durable. */
static enum stream_result flush_durable(struct consumer *c)
{
	enum stream_result rc = flush(c);

	return rc == STREAM_CONTINUE ? settle(c) : rc;
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
		log_error("stream: BEGIN of xid %" PRIu64 " at %s inside xid %" PRIu64, ch->xid,
			  lsn_format(ch->lsn, lsn), c->txn.xid);
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

static bool note_commit_time(struct consumer *c)
{
	struct commit_times *t = &c->commits;

	if (c->txn.commit_time_us == 0)
		return true;
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		int64_t *us = realloc(t->us, cap * sizeof *us);
		if (us == NULL)
			return false;
		t->us = us;
		t->cap = cap;
	}
	t->us[t->n++] = c->txn.commit_time_us;
	return true;
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
	else if (!note_commit_time(c)) {
		log_error("consumer: out of memory");
		return STREAM_FATAL;
	}
	return STREAM_CONTINUE;
}

static void note_skip(struct consumer *c, const struct change *ch, enum skip_reason why)
{
	char lsn[LSN_BUFLEN];

	c->stats.skipped++;
	metrics_skipped(why);
	lsn_format(ch->lsn, lsn);
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
	if (!batch_add(c->batch, d, n)) {
		log_error("batch: out of memory");
		return STREAM_FATAL;
	}
	if (batch_changes(c->batch) == 1)
		c->batch_since_ms = stream_now_ms();
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
	metrics_change(ch->table, ch->action);
	if (ch->action == ACT_TRUNCATE) {
		log_warn("TRUNCATE of public.%s at %s: its counts are stale; reconcile sweep requested",
			 src_table_name(ch->table), lsn_format(ch->lsn, lsn));
		c->sweep_requested = true;
	}
	size_t n = delta_derive(ch, d, &why);
	if (why != SKIP_NONE)
		note_skip(c, ch, why);
	if (n > 0 && c->sweep != NULL && !sweep_saw(c->sweep, ch->xid) && !sweep_note(c->sweep, d, n))
		log_warn("reconcile: out of memory noting deltas; sweep abandoned");
	/* Even a change that moves nothing is added: its position must be
	 * recorded so a restart does not count it a second time. */
	return add_change(c, d, n);
}

static enum stream_result sink_record(void *ctx, const char *data, size_t len, lsn_t wal_start)
{
	struct consumer *c = ctx;
	struct change ch;
	char err[512], lsn[LSN_BUFLEN];

	/* Never skip what cannot be read: stop, and say where it is. */
	if (!decode_record(data, len, &ch, err, sizeof err)) {
		log_error("decode: %s (message at WAL %s); stopping", err, lsn_format(wal_start, lsn));
		return STREAM_FATAL;
	}
	switch (ch.action) {
	case ACT_BEGIN:
		return on_begin(c, &ch);
	case ACT_COMMIT:
		return on_commit(c, &ch);
	case ACT_MESSAGE:
		return STREAM_CONTINUE;
	default:
		return on_change(c, &ch);
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
static enum stream_result cron_heartbeat(void *ctx, int64_t now)
{
	struct consumer *c = ctx;
	char err[512];

	(void) now;
	if (!c->txn.open && idle_position(c) > c->durable.lsn) {
		c->pending = (struct progress){c->idle_lsn, 0, 0};
		enum stream_result rc = apply_now(c);
		if (rc != STREAM_CONTINUE)
			return rc;
	}
	enum stream_result rc = settle(c);
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
	enum stream_result rc = settle(c);

	(void) now;
	if (rc != STREAM_CONTINUE)
		return rc;
	const char *params[2] = {c->cfg->slot_name, lsn_format(c->durable.lsn, lsn)};
	PGresult *res = db_exec_params(c->db, "reading slot",
				       "SELECT pg_current_wal_lsn() - $2::pg_lsn, pg_current_wal_lsn() - restart_lsn, active "
				       "FROM pg_replication_slots WHERE slot_name = $1",
				       2, params, err, sizeof err);

	if (res == NULL)
		log_warn("%s", err);
	else if (PQntuples(res) == 1)
		metrics_slot(strtoll(PQgetvalue(res, 0, 0), NULL, 10), strtoll(PQgetvalue(res, 0, 1), NULL, 10),
			     strcmp(PQgetvalue(res, 0, 2), "t") == 0);
	PQclear(res);
	return STREAM_CONTINUE;
}

/* A walcount.checkpoints row at the durable LSN; *id gets its id. */
static bool record_checkpoint(struct consumer *c, int64_t *id)
{
	char err[512], lsn[LSN_BUFLEN];
	const char *params[2] = {c->cfg->slot_name, lsn_format(c->durable.lsn, lsn)};
	PGresult *res = db_exec_params(c->db, "recording checkpoint",
				       "INSERT INTO walcount.checkpoints (slot_name, lsn) VALUES ($1, $2::pg_lsn) RETURNING id",
				       2, params, err, sizeof err);

	if (res == NULL)
		log_warn("%s", err);
	else
		*id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return res != NULL;
}

/* wal2json streams the source tables by name: while one is renamed (or
 * dropped) the server filters its changes out. Say so, leave a checkpoint
 * without a sweep result (a restart then sweeps first), and sweep once the
 * table is back: only a recount can restore what was filtered out. */
static enum stream_result cron_sources(void *ctx, int64_t now)
{
	struct consumer *c = ctx;
	char err[512];
	int64_t id;
	enum stream_result rc = settle(c);

	(void) now;
	if (rc != STREAM_CONTINUE)
		return rc;
	PGresult *res = db_exec(c->db, "checking source tables",
				"SELECT coalesce(string_agg('public.' || t, ', '), '') FROM unnest(ARRAY['reposts', "
				"'saves', 'follows']) t WHERE to_regclass('public.' || t) IS NULL",
				err, sizeof err);
	if (res == NULL) {
		log_warn("%s", err);
		return STREAM_CONTINUE;
	}
	const char *missing = PQgetvalue(res, 0, 0);
	if (*missing != '\0' && !c->sources_missing) {
		log_error("source table %s does not exist (renamed or dropped?): the slot streams source tables by name, "
			  "so its changes are not counted until it is back; a reconcile sweep then recounts them",
			  missing);
		c->sources_missing = true;
		record_checkpoint(c, &id);
	} else if (*missing == '\0' && c->sources_missing) {
		log_info("source tables are back; reconcile sweep requested");
		c->sources_missing = false;
		c->sweep_requested = true;
	}
	PQclear(res);
	return STREAM_CONTINUE;
}

/* A checkpoint whose sweep never finished (a crash, a source table that
 * went missing) is swept first at start. */
static void resume_unfinished_sweep(struct consumer *c)
{
	char err[512], v[8] = "";
	const char *params[1] = {c->cfg->slot_name};
	PGresult *res = db_exec_params(c->db, "reading the last checkpoint",
				       "SELECT reconcile_checked IS NULL FROM walcount.checkpoints WHERE slot_name = $1 "
				       "ORDER BY id DESC LIMIT 1",
				       1, params, err, sizeof err);

	if (res == NULL)
		log_warn("%s", err);
	else if (PQntuples(res) == 1)
		snprintf(v, sizeof v, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	if (strcmp(v, "t") == 0 && c->cfg->reconcile_enabled && !c->sweep_requested) {
		log_info("reconcile: the last checkpoint's sweep did not finish; sweeping now");
		c->sweep_requested = true;
	}
}

/* Every checkpoint.interval: apply what is held, record the LSN (the next
 * status update confirms it to the slot), then sweep. */
static enum stream_result cron_checkpoint(void *ctx, int64_t now)
{
	struct consumer *c = ctx;
	int64_t id;
	enum stream_result rc = flush_durable(c);

	(void) now;
	if (rc != STREAM_CONTINUE)
		return rc;
	if (c->cfg->reconcile_enabled)
		c->sweep_requested = true;
	else if (record_checkpoint(c, &id))
		log_debug("checkpoint %" PRId64 " at durable progress", id);
	return STREAM_CONTINUE;
}

static void store_sweep_result(struct consumer *c, const struct sweep_result *r)
{
	char err[512], checked[24], ms[24], id[24], json[2048] = "{", *p = json + 1;
	const char *params[4] = {id, checked, json, ms};

	/* Only the columns it corrected, like the log line. */
	for (int t = 0; t < AGG__COUNT; t++)
		for (int i = 0; i < reconcile_column_count((enum agg_table) t); i++) {
			metrics_reconcile_corrected((enum agg_table) t, reconcile_column_name((enum agg_table) t, i),
						    r->cells[t][i]);
			if (r->cells[t][i] > 0)
				p += snprintf(p, sizeof json - (size_t) (p - json) - 2, "%s\"%s.%s\": %" PRIu64,
					      p > json + 1 ? ", " : "", agg_table_name((enum agg_table) t),
					      reconcile_column_name((enum agg_table) t, i), r->cells[t][i]);
		}
	strcat(json, "}");
	metrics_reconcile_duration((double) r->duration_ms / 1e3);
	if (c->checkpoint_id == 0)
		return;
	snprintf(id, sizeof id, "%" PRId64, c->checkpoint_id);
	snprintf(checked, sizeof checked, "%" PRIu64, r->checked);
	snprintf(ms, sizeof ms, "%" PRId64, r->duration_ms);
	PGresult *res = db_exec_params(c->db, "recording reconcile result",
				       "UPDATE walcount.checkpoints SET reconcile_checked = $2, reconcile_corrected = $3::jsonb, "
				       "reconcile_duration_ms = $4 WHERE id = $1",
				       4, params, err, sizeof err);
	if (res == NULL)
		log_warn("%s", err);
	PQclear(res);
}

/* The seed's job is quiet unless it corrected something; so is this, except
 * for `walcount reconcile`, whose caller asked. */
static void report_sweep(struct consumer *c)
{
	const struct sweep_result *r = sweep_result(c->sweep);
	char cols[1024];

	reconcile_describe(r, cols, sizeof cols);
	if (!c->opts->dry_run)
		store_sweep_result(c, r);
	if (r->corrected > 0)
		log_info("reconcile: %s %" PRIu64 " of %" PRIu64 " rows (%s) in %" PRId64 " ms",
			 c->opts->dry_run ? "would correct" : "corrected", r->corrected, r->checked, cols, r->duration_ms);
	if (c->opts->sweep_once)
		printf("reconcile: checked %" PRIu64 " rows, %s %" PRIu64 "%s%s%s in %" PRId64 " ms\n", r->checked,
		       c->opts->dry_run ? "would correct" : "corrected", r->corrected, *cols ? " (" : "", cols, *cols ? ")" : "",
		       r->duration_ms);
}

static void end_sweep(struct consumer *c, bool ok)
{
	if (ok)
		report_sweep(c);
	sweep_free(c->sweep);
	c->sweep = NULL;
	if (c->opts->sweep_once) {
		c->fatal_sweep = !ok;
		*c->stop = 1;
	}
}

/* Starts a sweep at a clean point: nothing held, no transaction open, so
 * every change applied from here on is noted against the snapshot. */
static enum stream_result begin_sweep(struct consumer *c)
{
	char err[512];
	bool retry;
	enum stream_result rc = flush_durable(c);

	if (rc != STREAM_CONTINUE || c->txn.open)
		return rc;
	size_t n = c->recent_next < RECENT_XIDS ? c->recent_next : RECENT_XIDS;
	c->sweep = sweep_begin(c->cfg, c->opts->dry_run, c->recent, n, &retry, err, sizeof err);
	c->sweep_nudged = false;
	c->checkpoint_id = 0;
	/* A dry run writes nothing, not even its checkpoint row. */
	if (c->sweep != NULL && !c->opts->dry_run)
		record_checkpoint(c, &c->checkpoint_id);
	if (c->sweep != NULL || retry) {
		c->sweep_requested = c->sweep == NULL;
		return STREAM_CONTINUE;
	}
	log_warn("%s; the sweep is skipped until the next checkpoint", err);
	c->sweep_requested = false;
	if (c->opts->sweep_once)
		c->fatal_sweep = true, *c->stop = 1;
	return STREAM_CONTINUE;
}

/* Drives a sweep: recount in the background; once the stream has applied
 * all the snapshot saw, one correcting chunk per call, between batches. A
 * quiet stream is nudged with a heartbeat so it gets there. */
static enum stream_result drive_sweep(struct consumer *c)
{
	char err[512];
	lsn_t applied = idle_position(c);
	enum sweep_state st = sweep_poll(c->sweep, applied, err, sizeof err);
	enum stream_result rc = STREAM_CONTINUE;

	if (st == SWEEP_WAITING && !c->sweep_nudged) {
		c->sweep_nudged = true;
		return cron_heartbeat(c, 0);
	}
	if (st == SWEEP_CORRECTING && (rc = flush_durable(c)) == STREAM_CONTINUE)
		st = sweep_step(c->sweep, err, sizeof err);
	if (st == SWEEP_FAILED)
		log_warn("%s; the sweep is skipped until the next checkpoint", err);
	if (st == SWEEP_DONE || st == SWEEP_FAILED)
		end_sweep(c, st == SWEEP_DONE);
	return rc;
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

static enum stream_result cron_reconcile(void *ctx, int64_t now)
{
	struct consumer *c = ctx;

	(void) now;
	if (c->sweep != NULL)
		return drive_sweep(c);
	return c->sweep_requested ? begin_sweep(c) : STREAM_CONTINUE;
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
	return flush_durable(ctx);
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

/* (Re)opens the apply connection, makes sure the slot can continue (a
 * replaced or lost slot is rebuilt exactly) and re-reads the progress row,
 * the only truth about what is applied. */
static bool db_ready(struct consumer *c)
{
	char err[1024];

	if (c->db == NULL && (c->db = db_connect(c->cfg, DB_NORMAL, err, sizeof err)) == NULL) {
		log_warn("apply: %s", err);
		return false;
	}
	if (!apply_prepare(c->db, err, sizeof err) || !slot_ensure(c->db, c->cfg, false, err, sizeof err) ||
	    !apply_load_progress(c->db, c->cfg->slot_name, &c->durable, err, sizeof err)) {
		log_warn("apply: %s", err);
		PQfinish(c->db);
		c->db = NULL;
		return false;
	}
	c->pending = c->durable;
	advance_idle(c, c->durable.lsn);
	if (!c->started)
		resume_unfinished_sweep(c);
	c->started = true;
	return true;
}

/* One replication connection, from connect to loss or stop. */
static enum stream_result stream_once(struct consumer *c, const struct stream_sink *sink, volatile sig_atomic_t *stop,
				      bool *received)
{
	char err[512];
	enum stream_result rc;

	*received = false;
	c->apply_error = false;
	if (!db_ready(c))
		return STREAM_LOST;
	struct stream_opts opts = {c->cfg->slot_name, c->cfg->slot_temporary, c->durable.lsn,
				   c->cfg->stream_status_interval_ms};
	PGconn *repl = db_connect(c->cfg, DB_REPLICATION, err, sizeof err);
	if (repl == NULL) {
		log_warn("stream: %s", err);
		return STREAM_LOST;
	}
	log_info("stream: connected");
	metrics_health(true, true);
	rc = stream_run(repl, &opts, sink, stop, received);
	metrics_health(false, true);
	PQfinish(repl);
	c->txn.open = false;
	if (rc != STREAM_STOPPED && flush_durable(c) != STREAM_CONTINUE && rc != STREAM_FATAL)
		rc = STREAM_LOST;
	return rc;
}

static int run_loop(struct consumer *c, volatile sig_atomic_t *stop)
{
	const struct stream_sink sink = {c, sink_record, sink_keepalive, sink_tick, sink_drained, sink_flush, sink_durable,
					 sink_wait_fd};
	int64_t delay = c->cfg->stream_reconnect_min_ms;
	int attempt = 0;
	bool received;

	while (!*stop) {
		enum stream_result rc = stream_once(c, &sink, stop, &received);
		if (rc == STREAM_STOPPED)
			break;
		if (rc == STREAM_FATAL)
			return 1;
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
		.cron = {
			{"report", &report_interval_ms, cron_report, 0},
			{"heartbeat", &cfg->slot_heartbeat_interval_ms, cron_heartbeat, 0},
			{"slot refresh", &slot_refresh_ms, cron_slot_refresh, 0},
			{"checkpoint", &cfg->checkpoint_interval_ms, cron_checkpoint, 0},
			{"signals", &signal_poll_ms, cron_signals, 0},
			{"reconcile", &signal_poll_ms, cron_reconcile, 0},
			{"sources", &slot_refresh_ms, cron_sources, 0},
		},
	};
	char lsn[LSN_BUFLEN];

	if ((c.batch = batch_new()) == NULL) {
		log_error("batch: out of memory");
		return 1;
	}
	int rc = run_loop(&c, stop);
	if (c.db != NULL)
		cron_sources(&c, 0);
	if (c.fatal_sweep)
		rc = 1;
	if (rc == 0)
		log_info("stopped: applied through %s, %" PRIu64 " changes in %" PRIu64 " batches",
			 lsn_format(c.durable.lsn, lsn), c.stats.applied, c.stats.batches);
	batch_free(c.batch);
	sweep_free(c.sweep);
	free(c.commits.us);
	free(c.inflight.commits.us);
	PQfinish(c.db);
	return rc;
}
