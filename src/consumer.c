#include "consumer.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "apply.h"
#include "batch.h"
#include "db.h"
#include "decode.h"
#include "delta.h"
#include "log.h"
#include "stream.h"

#define REPORT_INTERVAL_MS 10000

/* The source transaction being received. */
struct txn {
	bool open;
	uint64_t xid;
	lsn_t end_lsn;
	uint64_t changes;       /* I/U/D/T records received so far */
	uint64_t skip;          /* the first `skip` of them are already applied */
};

struct stats {
	uint64_t received[4][4]; /* [src_table][I, U, D, T] */
	uint64_t skipped[SKIP__COUNT];
	uint64_t applied;        /* changes in committed batches */
	uint64_t batches;
	uint64_t reported;       /* `applied` at the last progress line */
	int64_t next_report_ms;
};

struct consumer {
	const struct config *cfg;
	PGconn *db;              /* apply connection; NULL while broken */
	struct batch *batch;
	struct progress durable; /* what walcount.progress holds */
	struct progress pending; /* what it will hold once the batch is applied */
	lsn_t confirmable;       /* reported as flushed; never goes back */
	int64_t batch_since_ms;  /* when the batch got its first change */
	struct txn txn;
	struct stats stats;
};

static void confirm(struct consumer *c, lsn_t lsn)
{
	if (lsn > c->confirmable)
		c->confirmable = lsn;
}

/* True when the progress row must be written: the batch holds changes, or
 * the stored partial-transaction marker is out of date. */
static bool needs_write(const struct consumer *c)
{
	return batch_changes(c->batch) > 0 || c->pending.partial_xid != c->durable.partial_xid ||
	       c->pending.partial_changes != c->durable.partial_changes;
}

/* Forgets everything not durable, after an apply failure whose outcome may
 * be unknown: the next connection re-reads the progress row and the server
 * re-sends what follows it. */
static void discard(struct consumer *c)
{
	PQfinish(c->db);
	c->db = NULL;
	batch_reset(c->batch);
	c->pending = c->durable;
	c->txn.open = false;
}

static enum stream_result flush(struct consumer *c)
{
	char err[512], lsn[LSN_BUFLEN];
	int64_t started = stream_now_ms();
	size_t changes = batch_changes(c->batch);

	if (!needs_write(c))
		return STREAM_CONTINUE;
	if (c->db == NULL || !apply_batch(c->db, c->cfg->slot_name, c->batch, &c->pending, err, sizeof err)) {
		log_warn("apply: %s; discarding the unapplied batch, it will be received again",
			 c->db ? err : "no database connection");
		discard(c);
		return STREAM_LOST;
	}
	c->durable = c->pending;
	confirm(c, c->durable.lsn);
	c->stats.applied += changes;
	c->stats.batches++;
	batch_reset(c->batch);
	log_debug("apply: %zu changes through %s in %" PRId64 " ms", changes, lsn_format(c->durable.lsn, lsn),
		  stream_now_ms() - started);
	return STREAM_CONTINUE;
}

static enum stream_result on_begin(struct consumer *c, const struct change *ch)
{
	char lsn[LSN_BUFLEN];

	if (c->txn.open) {
		log_error("stream: BEGIN of xid %" PRIu64 " at %s inside xid %" PRIu64, ch->xid,
			  lsn_format(ch->lsn, lsn), c->txn.xid);
		return STREAM_FATAL;
	}
	c->txn = (struct txn){true, ch->xid, ch->end_lsn, 0, 0};
	if (ch->end_lsn <= c->durable.lsn)
		c->txn.skip = UINT64_MAX;
	else if (ch->xid == c->durable.partial_xid)
		c->txn.skip = c->durable.partial_changes;
	return STREAM_CONTINUE;
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
	/* A transaction that moved nothing needs no write to be confirmed. */
	if (!needs_write(c))
		confirm(c, c->txn.end_lsn);
	return STREAM_CONTINUE;
}

static void note_skip(struct consumer *c, const struct change *ch, enum skip_reason why)
{
	char lsn[LSN_BUFLEN];

	c->stats.skipped[why]++;
	log_warn("skipped %s change of %s at %s: %s (counted in walcount_skipped_changes_total)",
		 change_action_name(ch->action), src_table_name(ch->table), lsn_format(ch->lsn, lsn),
		 skip_reason_name(why));
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
	c->stats.received[ch->table][ch->action - ACT_INSERT]++;
	if (ch->action == ACT_TRUNCATE)
		log_warn("TRUNCATE of public.%s at %s: its counts are now stale until `walcount reconcile` runs",
			 src_table_name(ch->table), lsn_format(ch->lsn, lsn));
	size_t n = delta_derive(ch, d, &why);
	if (why != SKIP_NONE)
		note_skip(c, ch, why);
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
 * is applied or moved nothing, so its WAL end may be confirmed: a quiet
 * slot then does not pin WAL written to other tables. */
static void sink_keepalive(void *ctx, lsn_t wal_end)
{
	struct consumer *c = ctx;

	if (!c->txn.open && !needs_write(c))
		confirm(c, wal_end);
}

static void report(struct consumer *c, int64_t now)
{
	struct stats *s = &c->stats;
	char lsn[LSN_BUFLEN];
	uint64_t skipped = 0;

	if (now < s->next_report_ms)
		return;
	if (s->applied != s->reported) {
		for (int i = 0; i < SKIP__COUNT; i++)
			skipped += s->skipped[i];
		char part[64] = "";
		if (c->durable.partial_xid != 0)
			snprintf(part, sizeof part, " and %" PRIu64 " changes of xid %" PRIu64, c->durable.partial_changes,
				 c->durable.partial_xid);
		log_info("progress: applied through %s%s, %" PRIu64 " changes in %" PRIu64 " batches (%.0f/s), %" PRIu64 " skipped",
			 lsn_format(c->durable.lsn, lsn), part, s->applied, s->batches,
			 (double) (s->applied - s->reported) * 1000.0 / REPORT_INTERVAL_MS, skipped);
		s->reported = s->applied;
	}
	s->next_report_ms = now + REPORT_INTERVAL_MS;
}

static enum stream_result sink_tick(void *ctx, int64_t now, int64_t *next)
{
	struct consumer *c = ctx;
	int64_t due = c->batch_since_ms + c->cfg->batch_max_delay_ms;

	report(c, now);
	*next = c->stats.next_report_ms;
	if (!needs_write(c))
		return STREAM_CONTINUE;
	if (batch_changes(c->batch) == 0 || now >= due)
		return flush(c);
	if (due < *next)
		*next = due;
	return STREAM_CONTINUE;
}

static enum stream_result sink_flush(void *ctx)
{
	return flush(ctx);
}

static lsn_t sink_durable(void *ctx)
{
	return ((struct consumer *) ctx)->confirmable;
}

/* (Re)opens the apply connection and re-reads the progress row, the only
 * truth about what is applied. */
static bool db_ready(struct consumer *c)
{
	char err[512];

	if (c->db != NULL)
		return true;
	c->db = db_connect(c->cfg, DB_NORMAL, err, sizeof err);
	if (c->db == NULL || !apply_prepare(c->db, err, sizeof err) ||
	    !apply_load_progress(c->db, c->cfg->slot_name, &c->durable, err, sizeof err)) {
		log_warn("apply: %s", err);
		PQfinish(c->db);
		c->db = NULL;
		return false;
	}
	c->pending = c->durable;
	confirm(c, c->durable.lsn);
	return true;
}

/* Sleeps ms milliseconds unless a stop is requested first. */
static void backoff_sleep(int64_t ms, volatile sig_atomic_t *stop)
{
	for (int64_t end = stream_now_ms() + ms; !*stop && stream_now_ms() < end;)
		nanosleep(&(struct timespec){0, 20 * 1000000}, NULL);
}

/* One replication connection, from connect to loss or stop. */
static enum stream_result stream_once(struct consumer *c, const struct stream_sink *sink, volatile sig_atomic_t *stop,
				      bool *received)
{
	char err[512];
	enum stream_result rc;

	*received = false;
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
	rc = stream_run(repl, &opts, sink, stop, received);
	PQfinish(repl);
	c->txn.open = false;
	if (rc != STREAM_STOPPED && flush(c) != STREAM_CONTINUE && rc != STREAM_FATAL)
		rc = STREAM_LOST;
	return rc;
}

static int run_loop(struct consumer *c, volatile sig_atomic_t *stop)
{
	const struct stream_sink sink = {c, sink_record, sink_keepalive, sink_tick, sink_flush, sink_durable};
	int64_t delay = c->cfg->stream_reconnect_min_ms;
	int attempt = 0;
	bool received;

	while (!*stop) {
		enum stream_result rc = stream_once(c, &sink, stop, &received);
		if (rc == STREAM_STOPPED)
			break;
		if (rc == STREAM_FATAL)
			return 1;
		if (received)
			delay = c->cfg->stream_reconnect_min_ms, attempt = 0;
		if (*stop)
			break;
		log_warn("stream: reconnect attempt %d in %" PRId64 " ms", ++attempt, delay);
		backoff_sleep(delay, stop);
		delay = delay * 2 > c->cfg->stream_reconnect_max_ms ? c->cfg->stream_reconnect_max_ms : delay * 2;
	}
	return 0;
}

int consumer_run(const struct config *cfg, volatile sig_atomic_t *stop)
{
	struct consumer c = {.cfg = cfg};
	char lsn[LSN_BUFLEN];

	if ((c.batch = batch_new()) == NULL) {
		log_error("batch: out of memory");
		return 1;
	}
	int rc = run_loop(&c, stop);
	if (rc == 0)
		log_info("stopped: applied through %s, %" PRIu64 " changes in %" PRIu64 " batches",
			 lsn_format(c.durable.lsn, lsn), c.stats.applied, c.stats.batches);
	batch_free(c.batch);
	PQfinish(c.db);
	return rc;
}
