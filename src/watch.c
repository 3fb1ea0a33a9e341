/* watch: the prerequisites that can break while walcount runs, checked
 * every few seconds like at start: the source tables exist, their replica
 * identity carries what the counting rules read, and the slot decodes with
 * wal2json. A break that can hide changes from the stream, and a change
 * skipped because of its replica identity, mark the counts stale: only a
 * reconcile sweep begun once everything holds again (design.md §8)
 * restores them, and only its success clears the mark. A checkpoint row
 * without a sweep result makes a restart meanwhile sweep first. */
#include "watch.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "db.h"
#include "log.h"
#include "metrics.h"
#include "reconcile.h"
#include "sqlfiles.h"
#include "xalloc.h"

/* Rows of sql/replica_identity.sql, in enum src_table order. */
#define SOURCE_TABLES 3

/* Owned by the consumer (watch_new, watch_free); only this file reads or
 * writes its fields. */
struct watch {
	struct consumer *c; /* the owner: apply connection */
	const struct config *cfg;
	bool once;                    /* `walcount reconcile` */
	unsigned identity_bad;        /* bit i: source table i's identity lacks the
				* counted columns */
	char identity[SOURCE_TABLES]; /* its relreplident when last logged */
	bool plugin_bad;              /* the slot does not decode with wal2json */
	bool sources_missing;         /* a source table was found missing */
	bool stale;                   /* changes may be missing from the counts */
	bool sweep_clears;            /* the sweep in progress makes them exact */
};

struct watch *watch_new(struct consumer *c, const struct config *cfg, bool once)
{
	struct watch *w = xcalloc(1, sizeof *w);

	*w = (struct watch){.c = c, .cfg = cfg, .once = once};
	return w;
}

void watch_free(struct watch *w)
{
	free(w);
}

/* With the apply connection settled: the checkpoint row without a sweep
 * result goes in before any batch that moves the progress past a change
 * the counts miss, so no restart can lose the mark. */
static void go_stale(struct watch *w, struct sweeper *s)
{
	int64_t id;

	if (w->stale)
		return;
	w->stale = true;
	metrics_counts_stale(true);
	checkpoint_record(s, &id);
}

/* A sweep noting deltas while changes are lost would "correct" to a wrong
 * value; the next one, once everything holds, is exact. A one-off sweep
 * (`walcount reconcile`) is not restarted: it reports what it saw. */
static void abandon_sweep(struct watch *w, struct sweeper *s, const char *why)
{
	if (checkpoint_sweep(s) == NULL || w->once)
		return;
	log_warn("reconcile: sweep abandoned, %s; it is retried once the prerequisites hold", why);
	checkpoint_abandon(s);
}

void watch_mark_stale(struct watch *w)
{
	w->stale = true;
	metrics_counts_stale(true);
}

bool watch_sweep_may_begin(const struct watch *w)
{
	return w->once || (!w->sources_missing && w->identity_bad == 0 && !w->plugin_bad);
}

void watch_sweep_began(struct watch *w, bool dry_run)
{
	w->sweep_clears = !dry_run;
}

void watch_sweep_done(struct watch *w)
{
	if (w->sweep_clears && w->stale) {
		w->stale = false;
		metrics_counts_stale(false);
	}
	w->sweep_clears = false;
}

/* A change whose old image the replica identity does not carry: the
 * stream cannot count it, a sweep whose snapshot saw it can. */
enum stream_result watch_skipped(struct watch *w, struct sweeper *s, const struct change *ch)
{
	char lsn[LSN_BUFLEN];
	const char *table = src_table_name(ch->table);
	const struct sweep *sweep = checkpoint_sweep(s);

	log_event(LOG_WARN, "change_skipped", ch->lsn, ch->xid,
		  "skipped %s change of %s at %s: its old row image lacks is_current and is_delete, the replica identity "
		  "does not carry them (identity in walcount_skipped_changes_total); a reconcile sweep recounts once "
		  "public.%s is REPLICA IDENTITY FULL",
		  change_action_name(ch->action), table, lsn_format(ch->lsn, lsn), table);
	if (sweep != NULL && !sweep_saw(sweep, ch->xid))
		abandon_sweep(w, s, "a change it needed was skipped for its replica identity");
	else if (sweep != NULL)
		w->sweep_clears = !checkpoint_dry_run(s);
	enum stream_result rc = w->stale ? STREAM_CONTINUE : consumer_settle(w->c);
	if (rc == STREAM_CONTINUE)
		go_stale(w, s);
	return rc;
}

static void check_sources(struct watch *w, struct sweeper *s, PGresult *res)
{
	char missing[128] = "";

	for (int i = 0; i < PQntuples(res) && i < SOURCE_TABLES; i++)
		if (strcmp(PQgetvalue(res, i, 1), "t") != 0)
			snprintf(missing + strlen(missing), sizeof missing - strlen(missing), "%spublic.%s", *missing ? ", " : "",
				 PQgetvalue(res, i, 0));
	if (*missing != '\0' && !w->sources_missing) {
		log_event(LOG_ERROR, "source_table_missing", 0, 0,
			  "source table %s does not exist (renamed or dropped?): the slot streams source tables by name, "
			  "so its changes are not counted until it is back; a reconcile sweep then recounts them",
			  missing);
		w->sources_missing = true;
		metrics_prerequisite_violation(CHECK_SOURCE_TABLES);
		abandon_sweep(w, s, "a source table is missing");
		go_stale(w, s);
	} else if (*missing == '\0' && w->sources_missing) {
		log_event(LOG_INFO, "source_tables_back", 0, 0, "source tables are back; reconcile sweep requested");
		w->sources_missing = false;
		checkpoint_request(s);
	}
}

/* One line per table and identity it changes to, with the fix. */
static void check_identity(struct watch *w, struct sweeper *s, PGresult *res)
{
	unsigned bad = 0;

	for (int i = 0; i < PQntuples(res) && i < SOURCE_TABLES; i++) {
		const char *table = PQgetvalue(res, i, 0), *code = PQgetvalue(res, i, 2);
		if (strcmp(PQgetvalue(res, i, 1), "t") != 0 || strcmp(PQgetvalue(res, i, 3), "t") == 0)
			continue;
		bad |= 1u << i;
		if ((w->identity_bad & (1u << i)) && w->identity[i] == *code)
			continue;
		log_event(LOG_ERROR, "replica_identity_lacking", 0, 0,
			  "replica identity of public.%s is %s: the old row images of its UPDATEs and DELETEs lack "
			  "is_current and is_delete, so those changes are not counted and the counts are stale until a "
			  "reconcile sweep after the fix; fix: ALTER TABLE public.%s REPLICA IDENTITY FULL;",
			  table, PQgetvalue(res, i, 4), table);
		w->identity[i] = *code;
		metrics_prerequisite_violation(CHECK_REPLICA_IDENTITY);
		abandon_sweep(w, s, "a replica identity hides changes");
		go_stale(w, s);
	}
	if (bad == 0 && w->identity_bad != 0) {
		log_event(LOG_INFO, "replica_identity_restored", 0, 0,
			  "replica identity of the source tables covers is_current and is_delete again; reconcile sweep "
			  "requested");
		checkpoint_request(s);
	}
	w->identity_bad = bad;
}

/* The slot is only replaced while walcount is disconnected; a slot that no
 * longer decodes with wal2json cannot feed the counts at all. */
static void check_plugin(struct watch *w, struct sweeper *s)
{
	char err[512];
	const char *params[1] = {w->cfg->slot_name};
	PGresult *res = db_exec_params(consumer_conn(w->c), "checking the slot's plugin",
				       "SELECT plugin FROM pg_replication_slots WHERE slot_name = $1", 1, params, err,
				       sizeof err);

	if (res == NULL) {
		log_warn("%s", err);
		return;
	}
	bool bad = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "wal2json") != 0;
	if (bad && !w->plugin_bad) {
		log_event(LOG_ERROR, "slot_plugin_wrong", 0, 0,
			  "slot %s uses plugin %s, not wal2json (replaced while walcount was disconnected?): its changes "
			  "are not counted; fix: SELECT pg_drop_replication_slot('%s'); then restart walcount, which rebuilds "
			  "exactly",
			  w->cfg->slot_name, PQgetvalue(res, 0, 0), w->cfg->slot_name);
		metrics_prerequisite_violation(CHECK_SLOT_PLUGIN);
		go_stale(w, s);
	}
	w->plugin_bad = bad;
	PQclear(res);
}

/* Stale counts get a sweep once everything holds, unless one that will
 * clear them runs or is already asked for. */
static void sweep_if_stale(struct watch *w, struct sweeper *s)
{
	if (!w->stale || !watch_sweep_may_begin(w) || checkpoint_requested(s) || (checkpoint_sweep(s) != NULL && w->sweep_clears))
		return;
	log_debug("reconcile: sweep requested, the counts are stale");
	checkpoint_request(s);
}

enum stream_result watch_cron(struct watch *w, struct sweeper *s)
{
	char err[512];
	enum stream_result rc = consumer_settle(w->c);

	if (rc != STREAM_CONTINUE)
		return rc;
	PGresult *res = db_exec(consumer_conn(w->c), "checking the source tables", sql_replica_identity, err, sizeof err);
	if (res == NULL) {
		log_warn("%s", err);
		return STREAM_CONTINUE;
	}
	check_sources(w, s, res);
	check_identity(w, s, res);
	PQclear(res);
	check_plugin(w, s);
	sweep_if_stale(w, s);
	return STREAM_CONTINUE;
}
