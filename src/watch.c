/* watch: the prerequisites that can break while walcount runs, checked
 * every few seconds like at start: the source tables exist, their replica
 * identity carries what the counting rules read, and the slot decodes with
 * wal2json. A break that can hide changes from the stream, and a change
 * skipped because of its replica identity, mark the counts stale: only a
 * reconcile sweep begun once everything holds again (design.md §8)
 * restores them, and only its success clears the mark. A checkpoint row
 * without a sweep result makes a restart meanwhile sweep first. */
#include "consumer_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "metrics.h"
#include "reconcile.h"
#include "sqlfiles.h"

/* Rows of sql/replica_identity.sql, in enum src_table order. */
#define SOURCE_TABLES 3

/* With the apply connection settled: the checkpoint row without a sweep
 * result goes in before any batch that moves the progress past a change
 * the counts miss, so no restart can lose the mark. */
static void go_stale(struct consumer *c)
{
	int64_t id;

	if (c->watch.stale)
		return;
	c->watch.stale = true;
	metrics_counts_stale(true);
	checkpoint_record(c, &id);
}

/* A sweep noting deltas while changes are lost would "correct" to a wrong
 * value; the next one, once everything holds, is exact. A one-off sweep
 * (`walcount reconcile`) is not restarted: it reports what it saw. */
static void abandon_sweep(struct consumer *c, const char *why)
{
	if (c->sweep == NULL || c->opts->sweep_once)
		return;
	log_warn("reconcile: sweep abandoned, %s; it is retried once the prerequisites hold", why);
	sweep_free(c->sweep);
	c->sweep = NULL;
	c->sweep_requested = true;
}

void watch_mark_stale(struct consumer *c)
{
	c->watch.stale = true;
	metrics_counts_stale(true);
}

bool watch_sweep_may_begin(const struct consumer *c)
{
	return c->opts->sweep_once || (!c->sources_missing && c->watch.identity_bad == 0 && !c->watch.plugin_bad);
}

void watch_sweep_began(struct consumer *c)
{
	c->watch.sweep_clears = !c->sweep_dry_run;
}

void watch_sweep_done(struct consumer *c)
{
	if (c->watch.sweep_clears && c->watch.stale) {
		c->watch.stale = false;
		metrics_counts_stale(false);
	}
	c->watch.sweep_clears = false;
}

/* A change whose old image the replica identity does not carry: the
 * stream cannot count it, a sweep whose snapshot saw it can. */
enum stream_result watch_skipped(struct consumer *c, const struct change *ch)
{
	char lsn[LSN_BUFLEN];
	const char *table = src_table_name(ch->table);

	log_warn("skipped %s change of %s at %s: its old row image lacks is_current and is_delete, the replica identity "
		 "does not carry them (identity in walcount_skipped_changes_total); a reconcile sweep recounts once "
		 "public.%s is REPLICA IDENTITY FULL",
		 change_action_name(ch->action), table, lsn_format(ch->lsn, lsn), table);
	if (c->sweep != NULL && !sweep_saw(c->sweep, ch->xid))
		abandon_sweep(c, "a change it needed was skipped for its replica identity");
	else if (c->sweep != NULL)
		c->watch.sweep_clears = !c->sweep_dry_run;
	enum stream_result rc = c->watch.stale ? STREAM_CONTINUE : consumer_settle(c);
	if (rc == STREAM_CONTINUE)
		go_stale(c);
	return rc;
}

static void check_sources(struct consumer *c, PGresult *res)
{
	char missing[128] = "";

	for (int i = 0; i < PQntuples(res) && i < SOURCE_TABLES; i++)
		if (strcmp(PQgetvalue(res, i, 1), "t") != 0)
			snprintf(missing + strlen(missing), sizeof missing - strlen(missing), "%spublic.%s", *missing ? ", " : "",
				 PQgetvalue(res, i, 0));
	if (*missing != '\0' && !c->sources_missing) {
		log_error("source table %s does not exist (renamed or dropped?): the slot streams source tables by name, "
			  "so its changes are not counted until it is back; a reconcile sweep then recounts them",
			  missing);
		c->sources_missing = true;
		metrics_prerequisite_violation(CHECK_SOURCE_TABLES);
		abandon_sweep(c, "a source table is missing");
		go_stale(c);
	} else if (*missing == '\0' && c->sources_missing) {
		log_info("source tables are back; reconcile sweep requested");
		c->sources_missing = false;
		c->sweep_requested = true;
	}
}

/* One line per table and identity it changes to, with the fix. */
static void check_identity(struct consumer *c, PGresult *res)
{
	unsigned bad = 0;

	for (int i = 0; i < PQntuples(res) && i < SOURCE_TABLES; i++) {
		const char *table = PQgetvalue(res, i, 0), *code = PQgetvalue(res, i, 2);
		if (strcmp(PQgetvalue(res, i, 1), "t") != 0 || strcmp(PQgetvalue(res, i, 3), "t") == 0)
			continue;
		bad |= 1u << i;
		if ((c->watch.identity_bad & (1u << i)) && c->watch.identity[i] == *code)
			continue;
		log_error("replica identity of public.%s is %s: the old row images of its UPDATEs and DELETEs lack "
			  "is_current and is_delete, so those changes are not counted and the counts are stale until a "
			  "reconcile sweep after the fix; fix: ALTER TABLE public.%s REPLICA IDENTITY FULL;",
			  table, PQgetvalue(res, i, 4), table);
		c->watch.identity[i] = *code;
		metrics_prerequisite_violation(CHECK_REPLICA_IDENTITY);
		abandon_sweep(c, "a replica identity hides changes");
		go_stale(c);
	}
	if (bad == 0 && c->watch.identity_bad != 0) {
		log_info("replica identity of the source tables covers is_current and is_delete again; reconcile sweep "
			 "requested");
		c->sweep_requested = true;
	}
	c->watch.identity_bad = bad;
}

/* The slot is only replaced while walcount is disconnected; a slot that no
 * longer decodes with wal2json cannot feed the counts at all. */
static void check_plugin(struct consumer *c)
{
	char err[512];
	const char *params[1] = {c->cfg->slot_name};
	PGresult *res = db_exec_params(c->db, "checking the slot's plugin",
				       "SELECT plugin FROM pg_replication_slots WHERE slot_name = $1", 1, params, err,
				       sizeof err);

	if (res == NULL) {
		log_warn("%s", err);
		return;
	}
	bool bad = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "wal2json") != 0;
	if (bad && !c->watch.plugin_bad) {
		log_error("slot %s uses plugin %s, not wal2json (replaced while walcount was disconnected?): its changes "
			  "are not counted; fix: SELECT pg_drop_replication_slot('%s'); then restart walcount, which rebuilds "
			  "exactly",
			  c->cfg->slot_name, PQgetvalue(res, 0, 0), c->cfg->slot_name);
		metrics_prerequisite_violation(CHECK_SLOT_PLUGIN);
		go_stale(c);
	}
	c->watch.plugin_bad = bad;
	PQclear(res);
}

/* Stale counts get a sweep once everything holds, unless one that will
 * clear them runs or is already asked for. */
static void sweep_if_stale(struct consumer *c)
{
	if (!c->watch.stale || !watch_sweep_may_begin(c) || c->sweep_requested || (c->sweep != NULL && c->watch.sweep_clears))
		return;
	log_debug("reconcile: sweep requested, the counts are stale");
	c->sweep_requested = true;
}

enum stream_result watch_cron(void *ctx, int64_t now)
{
	struct consumer *c = ctx;
	char err[512];
	enum stream_result rc = consumer_settle(c);

	(void) now;
	if (rc != STREAM_CONTINUE)
		return rc;
	PGresult *res = db_exec(c->db, "checking the source tables", sql_replica_identity, err, sizeof err);
	if (res == NULL) {
		log_warn("%s", err);
		return STREAM_CONTINUE;
	}
	check_sources(c, res);
	check_identity(c, res);
	PQclear(res);
	check_plugin(c);
	sweep_if_stale(c);
	return STREAM_CONTINUE;
}
