/* Failover tests (issue 12, item 13): a primary and a physical standby made
 * by pg_basebackup, both clusters of their own on IT_PORT+1 and IT_PORT+2,
 * and walcount on the multi-host DSN "host=..,.. port=P1,P2
 * target_session_attrs=read-write". A planned switchover, a failover to a
 * lagging standby that walcount follows by itself, and the old primary
 * coming back diverged, first in the host list. */
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cases.h"

/* WAL written on the old primary after the standby stopped receiving it,
 * in a table walcount does not stream: the standby is this far behind. */
#define PAD_SQL "CREATE TABLE pad AS SELECT g, repeat('x', 200) AS x FROM generate_series(1, 100000) g"

struct server {
	char dir[PATH_MAX];
	char port[16];
	PGconn *conn;
};

struct failover {
	struct server old, next; /* the primary, and the standby promoted */
	PGconn *main_conn;       /* t->conn of the test cluster, restored at the end */
	double killed_at, promoted_at;
	double reconnect_s; /* promotion to the slot streaming on the new primary */
	long lag_bytes;     /* how far the standby was behind */
	bool inactive_seen; /* walcount_connected 0 and no slot sample while disconnected */
	int metrics_port;   /* walcount's, found free at set-up */
};

/* sh SCRIPT ARGS...: a cluster operation. */
static bool cluster(struct ctx *t, const char *script, const char *cmd, const char *dir, const char *a, const char *b)
{
	const char *argv[] = {"/bin/sh", script, cmd, dir, a, b, NULL};
	char label[128], st[32], *out = NULL, *errtext = NULL;
	int status;

	snprintf(label, sizeof label, "%s-%s", t->db, cmd);
	bool ok = run_program(t, label, argv, &status, &out, &errtext);
	if (ok && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
		ok = fail(t, "%s %s %s: %s: %s", script, cmd, dir, it_status_text(status, st, sizeof st), errtext);
	free(out);
	free(errtext);
	return ok;
}

static bool connect_to(struct ctx *t, struct server *s)
{
	char err[IT_ERRLEN];

	PQfinish(s->conn);
	for (double end = it_now() + 60;; it_sleep_ms(200)) {
		if ((s->conn = it_connect_port(s->port, t->db, err, sizeof err)) != NULL)
			return true;
		if (it_now() > end)
			return fail_err(t, "connecting", err);
	}
}

/* The primary with the test's database, and a standby of it. */
static bool set_up(struct ctx *t, struct failover *f)
{
	char err[IT_ERRLEN], sql[128];
	int port = atoi(IT.port);

	f->main_conn = t->conn;
	if ((f->metrics_port = free_port(t)) == 0)
		return false;
	snprintf(f->old.dir, sizeof f->old.dir, "%s/%s-primary", IT.tmp, t->db);
	snprintf(f->next.dir, sizeof f->next.dir, "%s/%s-standby", IT.tmp, t->db);
	snprintf(f->old.port, sizeof f->old.port, "%d", port + 1);
	snprintf(f->next.port, sizeof f->next.port, "%d", port + 2);
	/* A fresh primary each time: make test runs the tests twice (-O2,
	 * then ASan) in one tests/tmp. */
	const char *rm[] = {"/bin/rm", "-rf", f->old.dir, NULL};
	int status;
	char *out = NULL, *errtext = NULL;
	bool removed = run_program(t, "failover-rm", rm, &status, &out, &errtext) && WIFEXITED(status) &&
		       WEXITSTATUS(status) == 0;
	free(out);
	free(errtext);
	if (!removed)
		return t->reason[0] ? false : fail(t, "could not remove %s", f->old.dir);
	if (!cluster(t, "scripts/pg-local.sh", "start", f->old.dir, f->old.port, "fsync=off"))
		return false;
	PGconn *admin = it_connect_port(f->old.port, "postgres", err, sizeof err);
	snprintf(sql, sizeof sql, "CREATE DATABASE %s", t->db);
	bool ok = admin != NULL && it_exec(admin, sql, 0, NULL, err, sizeof err);
	PQfinish(admin);
	if (!ok || !connect_to(t, &f->old) || !it_exec(f->old.conn, IT.schema_sql, 0, NULL, err, sizeof err))
		return t->reason[0] ? false : fail_err(t, "creating the database on the primary", err);
	t->conn = f->old.conn;
	return cluster(t, "tests/pg-standby.sh", "create", f->next.dir, f->next.port, f->old.port) && connect_to(t, &f->next);
}

/* Stops what the test started, whatever happened, and gives the test
 * cluster's connection back to the harness. */
static bool tear_down(struct ctx *t, struct failover *f, bool ok)
{
	if (t->wc.pid != 0)
		ok = stop_clean(t) && ok;
	t->conn = f->main_conn;
	PQfinish(f->old.conn);
	PQfinish(f->next.conn);
	const struct server *all[] = {&f->next, &f->old};
	for (size_t i = 0; i < 2; i++) {
		char pid[PATH_MAX + 32];
		snprintf(pid, sizeof pid, "%s/data/postmaster.pid", all[i]->dir);
		if (access(pid, F_OK) == 0)
			ok = cluster(t, "tests/pg-standby.sh", "stop", all[i]->dir, NULL, NULL) && ok;
	}
	return ok;
}

/* walcount on both hosts, the primary first. */
static bool configure_failover(struct ctx *t, const struct failover *f)
{
	char dsn[256], listen[32];

	snprintf(dsn, sizeof dsn, " host=%s,%s port=%s,%s target_session_attrs=read-write", IT.host, IT.host, f->old.port,
		 f->next.port);
	snprintf(listen, sizeof listen, "127.0.0.1:%d", f->metrics_port);
	struct wc_opts o = {.heartbeat = "1s", .dsn_extra = dsn, .metrics_listen = listen};
	return configure(t, &o);
}

static bool value(struct ctx *t, PGconn *conn, const char *sql, char *out, size_t outlen)
{
	char err[IT_ERRLEN];

	return it_value(conn, sql, 0, NULL, out, outlen, err, sizeof err) || fail_err(t, sql, err);
}

/* Everything the primary has written is replayed on the standby. */
static bool standby_caught_up(struct ctx *t, struct failover *f)
{
	char lsn[32], err[IT_ERRLEN];
	const char *params[1] = {lsn};

	if (!value(t, f->old.conn, "SELECT pg_current_wal_lsn()", lsn, sizeof lsn))
		return false;
	int rc = it_poll(f->next.conn, "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", 1, params, 60, NULL, err, sizeof err);
	return rc == 1 ||
	       fail(t, "the standby did not replay through %s within 60 s%s%s", lsn, rc < 0 ? ": " : "", rc < 0 ? err : "");
}

/* walcount streams from the primary; the standby has all of it. */
static bool stream_and_replicate(struct ctx *t, struct failover *f)
{
	return configure_failover(t, f) && start_streaming(t) && run_changes(t, 3000, false) && caught_up(t, CAUGHT_UP_TIMEOUT) &&
	       standby_caught_up(t, f);
}

static bool metric_shows(const struct failover *f, const char *line)
{
	char *body = NULL;
	bool found = http_get(f->metrics_port, "/metrics", &body) == 200 && strstr(body, line) != NULL;

	free(body);
	return found;
}

/* Disconnected: walcount_connected 0, and the slot gauges have no sample
 * rather than a stale one. */
static bool disconnected_shown(const struct failover *f)
{
	char *body = NULL;
	bool shown = http_get(f->metrics_port, "/metrics", &body) == 200 && strstr(body, "\nwalcount_connected 0\n") != NULL &&
		     strstr(body, "\nwalcount_slot_active ") == NULL && strstr(body, "\nwalcount_lag_bytes ") == NULL;

	free(body);
	return shown;
}

/* Promotes the standby; from here on t->conn is the new primary. */
static bool promote(struct ctx *t, struct failover *f)
{
	if (!cluster(t, "tests/pg-standby.sh", "promote", f->next.dir, NULL, NULL) || !connect_to(t, &f->next))
		return false;
	f->promoted_at = it_now();
	t->conn = f->next.conn;
	return true;
}

/* The counts on the new primary are exact, and walcount said why it loaded
 * them again. */
static bool exact_on_new_primary(struct ctx *t, struct failover *f)
{
	char v[8];

	if (!wait_slot(t, true, 90))
		return false;
	f->reconnect_s = it_now() - f->promoted_at;
	if (!run_changes(t, 3000, false) || !caught_up(t, CAUGHT_UP_TIMEOUT) || !drift_zero(t) ||
	    !value(t, t->conn, "SELECT bool_and(lsn <= pg_current_wal_lsn()) FROM walcount.progress", v, sizeof v))
		return false;
	if (strcmp(v, "t") != 0)
		return fail(t, "walcount.progress is past the new primary's WAL end");
	if (count_in_file(t->wc.log, "(promoted server or dropped slot)") != 1)
		return fail(t, "walcount did not log one rebuild \"(promoted server or dropped slot)\"");
	return true;
}

static bool refused_at_start(struct ctx *t, const char *tamper, const char *want);

/* A progress row on the old timeline past the point where the new one
 * branched (the trigger that stamps the server's identity is off for it). */
#define BRANCHED_ROW                                                              \
	"ALTER TABLE walcount.progress DISABLE TRIGGER progress_identity; "       \
	"UPDATE walcount.progress SET timeline = 1, lsn = pg_current_wal_lsn(); " \
	"ALTER TABLE walcount.progress ENABLE TRIGGER progress_identity"

/* (a) Planned: walcount stopped, the primary stopped cleanly (the standby
 * receives all of its WAL), the standby promoted, walcount started. */
static bool switchover(struct ctx *t, struct failover *f)
{
	if (!stream_and_replicate(t, f) || !stop_clean(t) || !cluster(t, "tests/pg-standby.sh", "stop", f->old.dir, NULL, NULL) ||
	    !promote(t, f) || !start(t) || !exact_on_new_primary(t, f))
		return false;
	if (!metric_shows(f, "walcount_rebuilds_total{reason=\"slot_missing\"} 1\n"))
		return fail(t, "/metrics does not show walcount_rebuilds_total{reason=\"slot_missing\"} 1");
	if (!stop_clean(t) || !refused_at_start(t, BRANCHED_ROW, "leaves before that point (diverged)"))
		return false;
	snprintf(t->details, sizeof t->details,
		 "switchover: rebuilt on the promoted standby, streaming %.1f s after "
		 "the promotion; drift 0; a progress row past the branch point refused at start",
		 f->reconnect_s);
	return true;
}

bool test_failover_switchover(struct ctx *t)
{
	struct failover f = {0};

	return tear_down(t, &f, set_up(t, &f) && switchover(t, &f));
}

/* The standby stops receiving; the primary goes on (writers, then padding
 * WAL that walcount confirms as idle) and is killed; the standby is
 * promoted tens of MB behind while walcount keeps reconnecting by itself. */
static bool fail_over(struct ctx *t, struct failover *f)
{
	char end[32], lag[32], err[IT_ERRLEN];
	const char *params[2] = {end, t->db};

	if (!stream_and_replicate(t, f) || !cluster(t, "tests/pg-standby.sh", "detach", f->next.dir, f->next.port, NULL))
		return false;
	if (it_poll(f->next.conn, "SELECT NOT EXISTS (SELECT FROM pg_stat_wal_receiver)", 0, NULL, 30, NULL, err, sizeof err) != 1)
		return fail(t, "the standby still receives WAL 30 s after detach");
	if (!run_changes(t, 4000, false) || !caught_up(t, CAUGHT_UP_TIMEOUT) ||
	    !it_exec(t->conn, PAD_SQL, 0, NULL, err, sizeof err) ||
	    !value(t, t->conn, "SELECT pg_current_wal_lsn()", end, sizeof end))
		return t->reason[0] ? false : fail_err(t, "padding", err);
	/* The heartbeat persists the idle position: walcount is as far ahead
	 * as it gets. */
	if (it_poll(t->conn, "SELECT min(lsn) >= $1::pg_lsn FROM walcount.progress WHERE slot_name = $2", 2, params, 60, &t->wc,
		    err, sizeof err) != 1)
		return fail(t, "walcount's progress did not reach the primary's WAL end %s within 60 s", end);
	const char *lp[1] = {end};
	if (!it_value(f->next.conn, "SELECT $1::pg_lsn - pg_last_wal_replay_lsn()", 1, lp, lag, sizeof lag, err, sizeof err))
		return fail_err(t, "measuring the standby's lag", err);
	f->lag_bytes = atol(lag);
	if (!cluster(t, "tests/pg-standby.sh", "kill", f->old.dir, NULL, NULL))
		return false;
	f->killed_at = it_now();
	/* Disconnected: the standby is not read-write yet. */
	for (double until = it_now() + 15; !f->inactive_seen && it_now() < until; it_sleep_ms(200))
		f->inactive_seen = disconnected_shown(f);
	return promote(t, f) && exact_on_new_primary(t, f);
}

static bool report_failover(struct ctx *t, struct failover *f, const char *more)
{
	if (!f->inactive_seen)
		return fail(t, "/metrics kept walcount_connected 1 or a slot sample while walcount was disconnected");
	if (!metric_shows(f, "walcount_rebuilds_total{reason=\"slot_missing\"} 1\n"))
		return fail(t, "/metrics does not show walcount_rebuilds_total{reason=\"slot_missing\"} 1");
	snprintf(t->details, sizeof t->details,
		 "standby %.1f MB behind, promoted; walcount reconnected by itself and rebuilt, streaming %.1f s after "
		 "the promotion (%.1f s after the kill); drift 0%s",
		 (double) f->lag_bytes / 1048576.0, f->reconnect_s, f->reconnect_s + f->promoted_at - f->killed_at, more);
	return true;
}

bool test_failover_lagging(struct ctx *t)
{
	struct failover f = {0};

	return tear_down(t, &f, set_up(t, &f) && fail_over(t, &f) && report_failover(t, &f, ""));
}

/* What walcount may have written on a server: its progress row, its slot
 * and its counts. */
static bool fingerprint(struct ctx *t, PGconn *conn, char *out, size_t outlen)
{
	return value(
		t, conn,
		"SELECT (SELECT string_agg(lsn || '/' || coalesce(partial_xid, 0) || '/' || partial_changes, ',' ORDER BY part) "
		"FROM walcount.progress) "
		"|| ' ' || (SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE database = current_database()) || ' ' || "
		"(SELECT md5(string_agg(a::text, ',' ORDER BY user_id)) FROM aggregate_user a) || "
		"(SELECT md5(string_agg(a::text, ',' ORDER BY track_id)) FROM aggregate_track a) || "
		"(SELECT md5(string_agg(a::text, ',' ORDER BY playlist_id)) FROM aggregate_playlist a)",
		out, outlen);
}

/* (c) After (b): the old primary is started again as a primary on its old
 * timeline and written to; walcount's next reconnect reaches it first. It
 * must refuse, in one line, and write nothing there. */
static bool diverged(struct ctx *t, struct failover *f)
{
	char before[256], after[256], err[IT_ERRLEN];
	long done;

	if (!cluster(t, "tests/pg-standby.sh", "start", f->old.dir, NULL, NULL) || !connect_to(t, &f->old))
		return false;
	for (long n = 0; n < 1000; n += done)
		if ((done = workload_run(&t->wl, f->old.conn, 1000 - n, err, sizeof err)) < 0)
			return fail_err(t, "writing on the old primary", err);
	if (!fingerprint(t, f->old.conn, before, sizeof before) || !terminate_walsender(t, true))
		return false;
	for (double until = it_now() + 30; wc_alive(&t->wc) && it_now() < until;)
		it_sleep_ms(100);
	if (wc_alive(&t->wc))
		return fingerprint(t, f->old.conn, after, sizeof after) &&
		       fail(t, "walcount went on after reconnecting to the diverged old primary (%s)",
			    strcmp(before, after) == 0 ? "nothing written there yet" : "and wrote there");
	if (!expect_exit_code(t, "walcount on the diverged old primary", 1, t->wc.status, NULL))
		return false;
	if (!expect_eq_long(t, "\"refusing\" lines in walcount's log", 1, count_in_file(t->wc.log, "refusing ")))
		return false;
	if (!fingerprint(t, f->old.conn, after, sizeof after))
		return false;
	if (strcmp(before, after) != 0)
		return fail(t, "walcount wrote on the old primary: %s became %s", before, after);
	return drift_zero(t);
}

bool test_failover_diverged(struct ctx *t)
{
	struct failover f = {0};

	return tear_down(t, &f,
			 set_up(t, &f) && fail_over(t, &f) &&
				 report_failover(t, &f,
						 "; the old primary back, diverged, first in the list: refused, "
						 "nothing written") &&
				 diverged(t, &f));
}

/* Starts walcount on a progress row that does not belong to the server; it
 * must refuse with one line naming why, and change nothing. */
static bool refused_at_start(struct ctx *t, const char *tamper, const char *want)
{
	const char *run[] = {"run", "--config", t->wc.config, NULL};
	char err[IT_ERRLEN], before[256], after[256], label[96], *out = NULL, *errtext = NULL;
	int status;

	snprintf(label, sizeof label, "%s-refused", t->db);
	if (!it_exec(t->conn, tamper, 0, NULL, err, sizeof err))
		return fail_err(t, tamper, err);
	bool ok = fingerprint(t, t->conn, before, sizeof before) && run_walcount(t, label, run, &status, &out, &errtext) &&
		  fingerprint(t, t->conn, after, sizeof after);
	if (ok && !expect_exit_code(t, label, 1, status, errtext))
		ok = false;
	else if (ok && (count_in(errtext, "\n") != 1 || strstr(errtext, "refusing ") == NULL || strstr(errtext, want) == NULL))
		ok = fail(t, "want one \"refusing ... %s\" line, got: %s", want, errtext);
	else if (ok && strcmp(before, after) != 0)
		ok = fail(t, "walcount wrote: %s became %s", before, after);
	free(out);
	free(errtext);
	return ok;
}

/* The progress row says where it was written: a copy of the database on
 * another cluster, or a row past the server's WAL end (what walcount wrote
 * after a failover before this check), is refused at start. */
bool test_failover_identity(struct ctx *t)
{
	struct wc_opts o = {0};
	char err[IT_ERRLEN];

	if (!configure(t, &o) || !start_streaming(t) || !run_changes(t, 1000, false) || !caught_up(t, CAUGHT_UP_TIMEOUT) ||
	    !stop_clean(t) ||
	    !refused_at_start(t, "UPDATE walcount.progress SET system_id = 12345", "was written on system 12345") ||
	    !refused_at_start(t,
			      "UPDATE walcount.progress SET system_id = walcount.server_system_id(), "
			      "lsn = pg_current_wal_lsn() + 1e9",
			      "past this server's WAL end") ||
	    !refused_at_start(t,
			      "ALTER TABLE walcount.progress DISABLE TRIGGER progress_identity; "
			      "UPDATE walcount.progress SET timeline = 99, lsn = '0/0'; "
			      "ALTER TABLE walcount.progress ENABLE TRIGGER progress_identity",
			      "this server is on older timeline 1"))
		return false;
	if (!it_exec(t->conn,
		     "UPDATE walcount.progress p SET lsn = s.confirmed_flush_lsn FROM pg_replication_slots s "
		     "WHERE s.slot_name = p.slot_name",
		     0, NULL, err, sizeof err))
		return fail_err(t, "restoring the progress row", err);
	if (!start_streaming(t) || !run_changes(t, 1000, false) || !caught_up(t, CAUGHT_UP_TIMEOUT) || !drift_zero(t))
		return false;
	snprintf(t->details, sizeof t->details,
		 "progress rows of another system, past the WAL end and of a newer timeline refused at start in one "
		 "line each, nothing written; restored: drift 0");
	return true;
}
