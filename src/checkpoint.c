/* checkpoint: the consumer's periodic checkpoint and the reconcile sweeps
 * it drives between batches (design.md §8): when a sweep starts, how the
 * stream is nudged past its snapshot, and where its result is recorded. */
#include "consumer_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "delta.h"
#include "log.h"
#include "metrics.h"
#include "reconcile.h"
#include "request.h"
#include "sqlfiles.h"

bool checkpoint_record(struct consumer *c, int64_t *id)
{
	char err[512], lsn[LSN_BUFLEN];
	const char *params[2] = {c->cfg->slot_name, lsn_format(c->ledger.applied.lsn, lsn)};
	PGresult *res = db_exec_params(c->db, "recording checkpoint", sql_checkpoint_record, 2, params, err, sizeof err);

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
void checkpoint_resume_unfinished(struct consumer *c)
{
	char err[512], v[8] = "";
	const char *params[1] = {c->cfg->slot_name};
	PGresult *res = db_exec_params(c->db, "reading the last checkpoint", sql_checkpoint_unswept, 1, params, err, sizeof err);

	if (res == NULL)
		log_warn("%s", err);
	else if (PQntuples(res) == 1)
		snprintf(v, sizeof v, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	if (strcmp(v, "t") == 0 && c->cfg->reconcile_enabled && !c->sweep_requested) {
		log_info("reconcile: the last checkpoint's sweep did not finish; sweeping now");
		c->sweep_requested = true;
		watch_mark_stale(c);
	}
}

/* Every checkpoint.interval: apply what is held, record the LSN (the next
 * status update confirms it to the slot), then sweep. */
enum stream_result checkpoint_cron(void *ctx, int64_t now)
{
	struct consumer *c = ctx;
	int64_t id;
	enum stream_result rc = consumer_flush_durable(c);

	(void) now;
	if (rc != STREAM_CONTINUE)
		return rc;
	if (c->cfg->reconcile_enabled)
		c->sweep_requested = true;
	else if (checkpoint_record(c, &id))
		log_debug("checkpoint %" PRId64 " at durable progress", id);
	return STREAM_CONTINUE;
}

static void store_sweep_result(struct consumer *c, const struct sweep_result *r)
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
	if (c->checkpoint_id == 0)
		return;
	snprintf(id, sizeof id, "%" PRId64, c->checkpoint_id);
	snprintf(checked, sizeof checked, "%" PRIu64, r->checked);
	snprintf(ms, sizeof ms, "%" PRId64, r->duration_ms);
	PGresult *res = db_exec_params(c->db, "recording reconcile result", sql_checkpoint_result, 4, params, err, sizeof err);
	if (res == NULL)
		log_warn("%s", err);
	PQclear(res);
}

/* Tells whoever asked for the sweep (`walcount reconcile` here or, through
 * walcount.sweep_requests, on another host) how it went. */
static void answer(struct consumer *c, bool ok, const char *text)
{
	char err[512];

	if (c->opts->sweep_once && ok)
		printf("%s\n", text);
	if (c->request_id != 0 && !request_finish(c->db, c->request_id, ok, text, err, sizeof err))
		log_warn("%s", err);
	c->request_id = 0;
	c->sweep_dry_run = c->opts->dry_run;
}

void checkpoint_abandon_request(struct consumer *c)
{
	if (c->db != NULL)
		answer(c, false, "the consumer stopped before the sweep finished");
}

/* The seed's job is quiet unless it corrected something; so is this, except
 * for `walcount reconcile`, whose caller asked. */
static void report_sweep(struct consumer *c)
{
	const struct sweep_result *r = sweep_result(c->sweep);
	char cols[1024], line[1400];

	reconcile_describe(r, cols, sizeof cols);
	if (!c->sweep_dry_run)
		store_sweep_result(c, r);
	if (r->corrected > 0)
		log_info("reconcile: %s %" PRIu64 " of %" PRIu64 " rows (%s) in %" PRId64 " ms",
			 c->sweep_dry_run ? "would correct" : "corrected", r->corrected, r->checked, cols, r->duration_ms);
	snprintf(line, sizeof line, "reconcile: checked %" PRIu64 " rows, %s %" PRIu64 "%s%s%s in %" PRId64 " ms", r->checked,
		 c->sweep_dry_run ? "would correct" : "corrected", r->corrected, *cols ? " (" : "", cols, *cols ? ")" : "",
		 r->duration_ms);
	answer(c, true, line);
}

static void end_sweep(struct consumer *c, bool ok)
{
	if (ok) {
		report_sweep(c);
		watch_sweep_done(c);
	} else {
		answer(c, false, "the sweep failed; the consumer's log says why");
	}
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
	enum stream_result rc = consumer_flush_durable(c);

	if (rc != STREAM_CONTINUE || c->ledger.txn.open)
		return rc;
	size_t n = c->recent_next < RECENT_XIDS ? c->recent_next : RECENT_XIDS;
	c->sweep = sweep_begin(c->cfg, c->sweep_dry_run, c->recent, n, &retry, err, sizeof err);
	c->sweep_nudged = false;
	c->checkpoint_id = 0;
	/* A dry run writes nothing, not even its checkpoint row. */
	if (c->sweep != NULL && !c->sweep_dry_run)
		checkpoint_record(c, &c->checkpoint_id);
	if (c->sweep != NULL)
		watch_sweep_began(c);
	if (c->sweep != NULL || retry) {
		c->sweep_requested = c->sweep == NULL;
		return STREAM_CONTINUE;
	}
	log_warn("%s; the sweep is skipped until the next checkpoint", err);
	c->sweep_requested = false;
	answer(c, false, err);
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
	lsn_t applied = consumer_idle_position(c);
	enum sweep_state st = sweep_poll(c->sweep, applied, err, sizeof err);
	enum stream_result rc = STREAM_CONTINUE;

	if (st == SWEEP_WAITING && !c->sweep_nudged) {
		c->sweep_nudged = true;
		return consumer_heartbeat(c, 0);
	}
	if (st == SWEEP_CORRECTING && (rc = consumer_flush_durable(c)) == STREAM_CONTINUE)
		st = sweep_step(c->sweep, err, sizeof err);
	if (st == SWEEP_FAILED)
		log_warn("%s; the sweep is skipped until the next checkpoint", err);
	if (st == SWEEP_DONE || st == SWEEP_FAILED)
		end_sweep(c, st == SWEEP_DONE);
	return rc;
}

/* A sweep request queued by `walcount reconcile` (walcount.sweep_requests)
 * becomes the next sweep, with its dry-run flag. */
static enum stream_result claim_request(struct consumer *c)
{
	char err[512];
	bool dry_run = false;
	enum stream_result rc = consumer_settle(c);

	if (rc != STREAM_CONTINUE)
		return rc;
	c->request_check = false;
	if (!request_claim(c->db, c->cfg->slot_name, &c->request_id, &dry_run, err, sizeof err))
		log_warn("%s", err);
	if (c->request_id != 0) {
		log_info("reconcile: %ssweep requested by `walcount reconcile` (request %" PRId64 ")", dry_run ? "dry-run " : "",
			 c->request_id);
		c->sweep_dry_run = dry_run;
		c->sweep_requested = true;
	}
	return STREAM_CONTINUE;
}

/* Notifications arrive on the apply connection between its statements. */
static void read_notifications(struct consumer *c)
{
	if (c->db == NULL || PQconsumeInput(c->db) != 1)
		return;
	for (PGnotify *n; (n = PQnotifies(c->db)) != NULL; PQfreemem(n))
		if (strcmp(n->extra, c->cfg->slot_name) == 0)
			c->request_check = true;
}

enum stream_result checkpoint_reconcile_cron(void *ctx, int64_t now)
{
	struct consumer *c = ctx;
	enum stream_result rc = STREAM_CONTINUE;

	(void) now;
	if (c->sweep != NULL)
		return drive_sweep(c);
	read_notifications(c);
	if (c->request_check && c->request_id == 0 && !c->opts->sweep_once)
		rc = claim_request(c);
	return rc == STREAM_CONTINUE && c->sweep_requested && watch_sweep_may_begin(c) ? begin_sweep(c) : rc;
}
