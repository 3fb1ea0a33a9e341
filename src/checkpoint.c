#include "checkpoint.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "metrics.h"
#include "reconcile.h"
#include "request.h"
#include "sqlfiles.h"
#include "watch.h"
#include "xalloc.h"

/* Owned by the consumer (checkpoint_new, checkpoint_free); only this file
 * reads or writes its fields. */
struct sweeper {
	struct consumer *c; /* the owner: apply connection, positions */
	const struct config *cfg;
	volatile sig_atomic_t *stop; /* set when a one-off sweep ends */
	bool once;                   /* `walcount reconcile`: one sweep, then stop */
	bool default_dry_run;        /* what a sweep not claimed from a request does */
	struct sweep *sweep;         /* the reconcile sweep in progress, or NULL */
	bool requested;
	bool nudged;           /* a heartbeat was sent to carry the stream past S */
	int64_t checkpoint_id; /* walcount.checkpoints row of the sweep */
	bool failed;           /* once: the sweep failed */
	bool dry_run;          /* the sweep in progress changes nothing */
	int64_t request_id;    /* its walcount.sweep_requests row, or 0 */
	bool request_check;    /* look for queued sweep requests */
};

struct sweeper *checkpoint_new(struct consumer *c, const struct config *cfg, bool once, bool dry_run, volatile sig_atomic_t *stop)
{
	struct sweeper *s = xcalloc(1, sizeof *s);

	*s = (struct sweeper){
		.c = c, .cfg = cfg, .stop = stop, .once = once, .default_dry_run = dry_run, .requested = once, .dry_run = dry_run};
	return s;
}

void checkpoint_free(struct sweeper *s)
{
	if (s == NULL)
		return;
	sweep_free(s->sweep);
	free(s);
}

void checkpoint_request(struct sweeper *s)
{
	s->requested = true;
}

bool checkpoint_requested(const struct sweeper *s)
{
	return s->requested;
}

const struct sweep *checkpoint_sweep(const struct sweeper *s)
{
	return s->sweep;
}

bool checkpoint_dry_run(const struct sweeper *s)
{
	return s->dry_run;
}

bool checkpoint_failed(const struct sweeper *s)
{
	return s->failed;
}

void checkpoint_note(struct sweeper *s, uint64_t xid, const struct delta *d, size_t n)
{
	if (n > 0 && s->sweep != NULL && !sweep_saw(s->sweep, xid) && !sweep_note(s->sweep, d, n))
		log_warn("reconcile: out of memory noting deltas; sweep abandoned");
}

bool checkpoint_abandon(struct sweeper *s)
{
	if (s->sweep == NULL)
		return false;
	sweep_free(s->sweep);
	s->sweep = NULL;
	s->requested = true;
	return true;
}

/* `walcount reconcile` next to this process notifies REQUEST_CHANNEL. */
bool checkpoint_connected(struct sweeper *s, char *err, size_t errlen)
{
	s->request_check = true;
	return db_command(consumer_conn(s->c), "listening for sweep requests", "LISTEN " REQUEST_CHANNEL, err, errlen);
}

bool checkpoint_record(struct sweeper *s, int64_t *id)
{
	char err[512], lsn[LSN_BUFLEN];
	const char *params[2] = {s->cfg->slot_name, lsn_format(consumer_applied_position(s->c), lsn)};
	PGresult *res = db_exec_params(consumer_conn(s->c), "recording checkpoint", sql_checkpoint_record, 2, params, err,
				       sizeof err);

	bool ok = res != NULL;

	if (!ok)
		log_warn("%s", err);
	else
		*id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return ok;
}

/* A checkpoint whose sweep never finished (a crash, a source table that
 * went missing, a replica identity that hid changes) is swept first at
 * start; the counts are stale until then. */
void checkpoint_resume_unfinished(struct sweeper *s, struct watch *w)
{
	char err[512], v[8] = "";
	const char *params[1] = {s->cfg->slot_name};
	PGresult *res = db_exec_params(consumer_conn(s->c), "reading the last checkpoint", sql_checkpoint_unswept, 1, params, err,
				       sizeof err);

	if (res == NULL)
		log_warn("%s", err);
	else if (PQntuples(res) == 1)
		snprintf(v, sizeof v, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	if (strcmp(v, "t") == 0 && s->cfg->reconcile_enabled && !s->requested) {
		log_info("reconcile: the last checkpoint's sweep did not finish; sweeping now");
		s->requested = true;
		watch_mark_stale(w);
	}
}

/* Every checkpoint.interval: apply what is held, record the LSN (the next
 * status update confirms it to the slot), then sweep. */
enum stream_result checkpoint_cron(struct sweeper *s)
{
	int64_t id;
	enum stream_result rc = consumer_flush_durable(s->c);

	if (rc != STREAM_CONTINUE)
		return rc;
	/* Both keys can change with a reload (SIGHUP). */
	metrics_reconcile_config(s->cfg->reconcile_enabled, (double) s->cfg->checkpoint_interval_ms / 1e3);
	if (s->cfg->reconcile_enabled)
		s->requested = true;
	else if (checkpoint_record(s, &id))
		log_debug("checkpoint %" PRId64 " at durable progress", id);
	return STREAM_CONTINUE;
}

static void store_sweep_result(struct sweeper *s, const struct sweep_result *r)
{
	char err[512], checked[24], ms[24], id[24], json[2048] = "{", *p = json + 1;
	const char *params[4] = {id, checked, json, ms};

	/* Only the columns it corrected, like the log line. */
	for (int t = 0; t < AGG__COUNT; t++)
		for (int i = 0; i < agg_swept_columns((enum agg_table) t); i++) {
			enum agg_column col = agg_column_at((enum agg_table) t, i);
			metrics_reconcile_corrected(col, r->cells[col]);
			if (r->cells[col] > 0)
				p += snprintf(p, sizeof json - (size_t) (p - json) - 2, "%s\"%s.%s\": %" PRIu64,
					      p > json + 1 ? ", " : "", agg_table_name((enum agg_table) t), agg_column_name(col),
					      r->cells[col]);
		}
	strcat(json, "}");
	metrics_reconcile_duration((double) r->duration_ms / 1e3);
	if (s->checkpoint_id == 0)
		return;
	snprintf(id, sizeof id, "%" PRId64, s->checkpoint_id);
	snprintf(checked, sizeof checked, "%" PRIu64, r->checked);
	snprintf(ms, sizeof ms, "%" PRId64, r->duration_ms);
	PGresult *res = db_exec_params(consumer_conn(s->c), "recording reconcile result", sql_checkpoint_result, 4, params, err,
				       sizeof err);
	if (res == NULL)
		log_warn("%s", err);
	PQclear(res);
}

/* Tells whoever asked for the sweep (`walcount reconcile` here or, through
 * walcount.sweep_requests, on another host) how it went. */
static void answer(struct sweeper *s, bool ok, const char *text)
{
	char err[512];

	if (s->once && ok)
		printf("%s\n", text);
	if (s->request_id != 0 && !request_finish(consumer_conn(s->c), s->request_id, ok, text, err, sizeof err))
		log_warn("%s", err);
	s->request_id = 0;
	s->dry_run = s->default_dry_run;
}

void checkpoint_abandon_request(struct sweeper *s)
{
	if (consumer_conn(s->c) != NULL)
		answer(s, false, "the consumer stopped before the sweep finished");
}

/* The seed's job is quiet unless it corrected something; so is this, except
 * for `walcount reconcile`, whose caller asked. */
static void report_sweep(struct sweeper *s)
{
	const struct sweep_result *r = sweep_result(s->sweep);
	char cols[1024], line[1400];

	reconcile_describe(r, cols, sizeof cols);
	if (!s->dry_run)
		store_sweep_result(s, r);
	if (r->corrected > 0)
		log_event(LOG_INFO, "sweep_corrected", 0, 0,
			  "reconcile: %s %" PRIu64 " of %" PRIu64 " rows (%s) in %" PRId64 " ms",
			  s->dry_run ? "would correct" : "corrected", r->corrected, r->checked, cols, r->duration_ms);
	snprintf(line, sizeof line,
		 "reconcile: checked %" PRIu64 " rows, %s %" PRIu64 "%s%s%s, longest stream pause %" PRId64 " ms, in %" PRId64
		 " ms",
		 r->checked, s->dry_run ? "would correct" : "corrected", r->corrected, *cols ? " (" : "", cols, *cols ? ")" : "",
		 (r->longest_pause_us + 999) / 1000, r->duration_ms);
	answer(s, true, line);
}

static void end_sweep(struct sweeper *s, struct watch *w, bool ok)
{
	/* A dry run corrects nothing: it must not hold off the alert on sweeps
	 * not run (walcount_reconcile_last_success_timestamp_seconds). */
	if (!ok || !s->dry_run)
		metrics_reconcile_done(ok);
	if (ok) {
		report_sweep(s);
		watch_sweep_done(w);
	} else {
		answer(s, false, "the sweep failed; the consumer's log says why");
	}
	sweep_free(s->sweep);
	s->sweep = NULL;
	if (s->once) {
		s->failed = !ok;
		*s->stop = 1;
	}
}

/* Every wait of the stream for the sweep goes into
 * walcount_reconcile_pause_seconds. */
static void note_pause(struct sweeper *s)
{
	int64_t us;

	if (s->sweep != NULL && sweep_take_pause(s->sweep, &us))
		metrics_reconcile_pause((double) us / 1e6);
}

/* Starts a sweep at a clean point: nothing held, no transaction open, so
 * every change applied from here on is noted against the snapshot. */
static enum stream_result begin_sweep(struct sweeper *s, struct watch *w)
{
	char err[512];
	bool retry;
	const uint64_t *recent;
	enum stream_result rc = consumer_flush_durable(s->c);

	if (rc != STREAM_CONTINUE || consumer_in_transaction(s->c))
		return rc;
	size_t n = consumer_recent_xids(s->c, &recent);
	s->sweep = sweep_begin(s->cfg, s->dry_run, recent, n, &retry, err, sizeof err);
	note_pause(s);
	s->nudged = false;
	s->checkpoint_id = 0;
	/* A dry run writes nothing, not even its checkpoint row. */
	if (s->sweep != NULL && !s->dry_run)
		checkpoint_record(s, &s->checkpoint_id);
	if (s->sweep != NULL)
		watch_sweep_began(w, s->dry_run);
	if (s->sweep != NULL || retry) {
		s->requested = s->sweep == NULL;
		return STREAM_CONTINUE;
	}
	log_warn("%s; the sweep is skipped until the next checkpoint", err);
	metrics_reconcile_done(false);
	s->requested = false;
	answer(s, false, err);
	if (s->once)
		s->failed = true, *s->stop = 1;
	return STREAM_CONTINUE;
}

/* Drives a sweep: recount and stage in the background; once the stream
 * has applied all the snapshot saw, the mark and the compare in the
 * background; then one correcting step per call, between batches. A quiet
 * stream is nudged with a heartbeat so it gets there. */
static enum stream_result drive_sweep(struct sweeper *s, struct watch *w)
{
	char err[512];
	lsn_t applied = consumer_idle_position(s->c);
	enum sweep_state st = sweep_poll(s->sweep, applied, err, sizeof err);
	enum stream_result rc = STREAM_CONTINUE;

	note_pause(s);
	if (st == SWEEP_WAITING && !s->nudged) {
		s->nudged = true;
		return consumer_heartbeat(s->c, 0);
	}
	if (st == SWEEP_CAUGHT_UP && (rc = consumer_flush_durable(s->c)) == STREAM_CONTINUE)
		st = sweep_compare(s->sweep, err, sizeof err);
	if (st == SWEEP_CORRECTING && sweep_step_ready(s->sweep) && (rc = consumer_flush_durable(s->c)) == STREAM_CONTINUE)
		st = sweep_step(s->sweep, err, sizeof err);
	note_pause(s);
	/* The request's answer goes over the apply connection, where a batch
	 * may be in flight when the sweep failed on its own connection. */
	if (st == SWEEP_FAILED && rc == STREAM_CONTINUE)
		rc = consumer_settle(s->c);
	if (st == SWEEP_FAILED)
		log_warn("%s; the sweep is skipped until the next checkpoint", err);
	if (st == SWEEP_DONE || st == SWEEP_FAILED)
		end_sweep(s, w, st == SWEEP_DONE);
	return rc;
}

/* A sweep request queued by `walcount reconcile` (walcount.sweep_requests)
 * becomes the next sweep, with its dry-run flag. */
static enum stream_result claim_request(struct sweeper *s)
{
	char err[512];
	bool dry_run = false;
	enum stream_result rc = consumer_settle(s->c);

	if (rc != STREAM_CONTINUE)
		return rc;
	s->request_check = false;
	if (!request_claim(consumer_conn(s->c), s->cfg->slot_name, &s->request_id, &dry_run, err, sizeof err))
		log_warn("%s", err);
	if (s->request_id != 0) {
		log_event(LOG_INFO, "sweep_requested", 0, 0,
			  "reconcile: %ssweep requested by `walcount reconcile` (request %" PRId64 ")", dry_run ? "dry-run " : "",
			  s->request_id);
		s->dry_run = dry_run;
		s->requested = true;
	}
	return STREAM_CONTINUE;
}

/* Notifications arrive on the apply connection between its statements. */
static void read_notifications(struct sweeper *s)
{
	PGconn *conn = consumer_conn(s->c);

	if (conn == NULL || PQconsumeInput(conn) != 1)
		return;
	for (PGnotify *n; (n = PQnotifies(conn)) != NULL; PQfreemem(n))
		if (strcmp(n->extra, s->cfg->slot_name) == 0)
			s->request_check = true;
}

int64_t checkpoint_reconcile_period(const struct sweeper *s, int64_t period_ms)
{
	return s->sweep != NULL && sweep_waiting(s->sweep) ? CHECKPOINT_SWEEP_POLL_MS : period_ms;
}

enum stream_result checkpoint_reconcile_cron(struct sweeper *s, struct watch *w)
{
	enum stream_result rc = STREAM_CONTINUE;

	if (s->sweep != NULL)
		return drive_sweep(s, w);
	read_notifications(s);
	if (s->request_check && s->request_id == 0 && !s->once)
		rc = claim_request(s);
	return rc == STREAM_CONTINUE && s->requested && watch_sweep_may_begin(w) ? begin_sweep(s, w) : rc;
}
