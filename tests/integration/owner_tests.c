/* Ownership and the slot's life across processes (issue 12, items 1, 2,
 * 3, 7 and 8): two instances started together on a fresh database, a
 * second slot name on the same counts, a hot standby that takes over from
 * a killed or stalled instance, `walcount reconcile` next to a running
 * consumer, and `drop` while a consumer starts. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cases.h"

#define ROUNDS 20 /* 10 SIGKILLs and 10 SIGSTOPs; IT_QUICK: 3 and 3 */
#define TAKEOVER_TIMEOUT 30
#define STALL_TIMEOUT "2s" /* wal_sender_timeout while an instance is stopped */

/* Runs a walcount command and wants exit code `want`; its stderr in *errtext
 * and stdout in *out (either may be NULL: freed here). */
static bool expect_exit(struct ctx *t, const char *label, const char *const *args, int want, char **out, char **errtext)
{
	char *o = NULL, *e = NULL, st[32];
	int status;
	bool ok = run_walcount(t, label, args, &status, &o, &e);

	if (ok && (!WIFEXITED(status) || WEXITSTATUS(status) != want))
		ok = fail(t, "walcount %s ended with %s, want exit %d: %s%s", label, it_status_text(status, st, sizeof st), want,
			  e ? e : "", o ? o : "");
	if (out != NULL)
		*out = o;
	else
		free(o);
	if (errtext != NULL)
		*errtext = e;
	else
		free(e);
	return ok;
}

/* A second instance of the test's walcount: config path `config`, its own
 * log. */
static void second_instance(struct ctx *t, struct walcount *w, const char *config, const char *name)
{
	*w = (struct walcount){0};
	snprintf(w->config, sizeof w->config, "%s", config);
	snprintf(w->log, sizeof w->log, "%s/%s-%s.log", IT.tmp, t->db, name);
	unlink(w->log);
}

/* Copies the test's config to path with `from` replaced by `to` (once). */
static bool derive_config(struct ctx *t, const char *path, const char *from, const char *to)
{
	char err[IT_ERRLEN];
	char *text = it_read_file(t->wc.config, NULL, err, sizeof err);
	char *at = text ? strstr(text, from) : NULL;
	FILE *f = at ? fopen(path, "w") : NULL;

	if (f == NULL) {
		free(text);
		return fail(t, "deriving %s from %s", path, t->wc.config);
	}
	fprintf(f, "%.*s%s%s", (int) (at - text), text, to, at + strlen(from));
	free(text);
	return fclose(f) == 0 || fail(t, "%s: %s", path, strerror(errno));
}

/* Polls path until needle occurs at least n times. */
static bool wait_log(struct ctx *t, const char *path, const char *needle, int n, double timeout_s)
{
	for (double end = it_now() + timeout_s; it_now() < end; it_sleep_ms(20))
		if (count_in_file(path, needle) >= n)
			return true;
	return fail(t, "%s: \"%s\" seen %d times within %.0f s, want %d", path, needle, count_in_file(path, needle), timeout_s, n);
}

static int standbys(const char *log_a, const char *log_b)
{
	return count_in_file(log_a, "standing by") + count_in_file(log_b, "standing by");
}

/* Polls until the two logs hold n "standing by" lines together: each round
 * one instance stands by. */
static bool wait_standbys(struct ctx *t, const char *log_a, const char *log_b, int n)
{
	for (double end = it_now() + 20; it_now() < end; it_sleep_ms(20))
		if (standbys(log_a, log_b) >= n)
			return true;
	return fail(t, "%d \"standing by\" lines in the two logs within 20 s, want %d (one per round)", standbys(log_a, log_b), n);
}

static bool stop_instance(struct ctx *t, struct walcount *w)
{
	char err[IT_ERRLEN], st[32];

	if (w->pid == 0)
		return true;
	if (!wc_signal(w, SIGTERM, STOP_TIMEOUT, err, sizeof err))
		return fail_err(t, "stopping a walcount", err);
	return (WIFEXITED(w->status) && WEXITSTATUS(w->status) == 0) ||
	       fail(t, "a walcount stopped by SIGTERM ended with %s", it_status_text(w->status, st, sizeof st));
}

/* The second instance of the tests that run two; a failed test leaves it
 * to its test_ wrapper to end. */
static struct walcount other;

/* A second instance a failed test leaves running is ended here. */
static void kill_instance(struct walcount *w)
{
	char err[IT_ERRLEN];

	if (w->pid != 0) {
		kill(w->pid, SIGCONT);
		wc_signal(w, SIGKILL, 10, err, sizeof err);
	}
}

static bool drop_slot_named(struct ctx *t, const char *slot)
{
	const char *params[1] = {slot};
	char err[IT_ERRLEN];

	return it_exec(t->conn, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", 1,
		       params, err, sizeof err) ||
	       fail_err(t, "dropping a slot", err);
}

/* Raw server errors that must never reach an operator from a start-up race. */
static bool no_raw_errors(struct ctx *t, const char *log)
{
	static const char *const raw[] = {"duplicate key", "already exists", "rebuild:", "ERROR:"};

	for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++)
		if (count_in_file(log, raw[i]) > 0)
			return fail(t, "%s has \"%s\"", log, raw[i]);
	return true;
}

/* Item 1: two instances on a database with no slot yet, under a writer,
 * three times: one streams, the other stands by, nobody drops anybody's
 * slot, and the counts are exact. */
static bool two_instances_fresh(struct ctx *t)
{
	const char *drop[] = {"drop", "--yes", "--config", t->wc.config, NULL};
	struct wc_opts o = {0};
	char err[IT_ERRLEN];
	long rows;

	second_instance(t, &other, t->wc.config, "b");
	if (!configure(t, &o) || !preload(t, &rows))
		return false;
	int n = rounds(3, 2);
	for (int round = 1; round <= n; round++) {
		if (!wc_start(&t->wc, err, sizeof err) || !wc_start(&other, err, sizeof err))
			return fail_err(t, "starting two walcounts", err);
		/* Written while the two start, create the slot and load. */
		bool ok = run_changes(t, 5000, false) && wait_slot(t, true, 60) && caught_up(t, CAUGHT_UP_TIMEOUT) &&
			  wait_standbys(t, t->wc.log, other.log, round) && drift_zero(t);
		ok = ok && no_raw_errors(t, t->wc.log) && no_raw_errors(t, other.log);
		if (!stop_instance(t, &other) || !stop_clean(t) || !ok)
			return false;
		/* Both stopped, the logs are final: the standby said so once. */
		if (!expect_eq_long(t, "\"standing by\" lines in the two logs (one per round)", round,
				    standbys(t->wc.log, other.log)))
			return false;
		if (!expect_exit(t, "drop", drop, 0, NULL, NULL))
			return false;
	}
	snprintf(t->details, sizeof t->details,
		 "%ld preloaded rows, %d rounds of two instances started together under writes: one streamed, one stood by, "
		 "no rebuilds, no raw errors, drift 0",
		 rows, n);
	return true;
}

/* Waits until walcount.progress of slot is past a new marker. */
static bool applied_by(struct ctx *t, const char *slot, struct walcount *w)
{
	char err[IT_ERRLEN];
	struct it_mark m;

	return marker(t, &m) && (it_wait_applied(t->conn, slot, &m, CAUGHT_UP_TIMEOUT, w, err, sizeof err) ||
				 fail_err(t, "waiting for the marker", err));
}

/* `status` names a wal2json slot of the database that does not own the
 * counts (an old walcount slot pins WAL, its consumer would count twice). */
static bool stray_slot_warned(struct ctx *t)
{
	const char *status_json[] = {"status", "--json", "--config", t->wc.config, NULL};
	char stray[80], want[160], err[IT_ERRLEN];
	const char *params[1] = {stray};
	char *out = NULL;

	snprintf(stray, sizeof stray, "%s_stray", t->db);
	snprintf(want, sizeof want, "slot %s (wal2json, inactive, retaining ", stray);
	if (!it_exec(t->conn, "SELECT pg_create_logical_replication_slot($1, 'wal2json')", 1, params, err, sizeof err))
		return fail_err(t, "creating a stray slot", err);
	bool ok = expect_exit(t, "status-stray", status_json, 1, &out, NULL) &&
		  ((strstr(out, want) != NULL && strstr(out, "does not own the counts") != NULL) ||
		   fail(t, "status does not warn about the stray slot: %s", out));
	free(out);
	return drop_slot_named(t, stray) && ok;
}

/* Item 2: a second slot name on counts another slot owns is refused with
 * one line naming the owner; --take-ownership moves them, exactly; the
 * old name is then refused in turn. */
static bool second_slot_name(struct ctx *t)
{
	struct wc_opts o = {0};
	char cfg_b[PATH_MAX], slot_b[80], from[96], to[96], err[IT_ERRLEN], v[8];
	char *errtext = NULL;

	snprintf(cfg_b, sizeof cfg_b, "%s/%s-b.yaml", IT.tmp, t->db);
	snprintf(slot_b, sizeof slot_b, "%s_b", t->db);
	snprintf(from, sizeof from, "name: %s\n", t->db);
	snprintf(to, sizeof to, "name: %s\n", slot_b);
	second_instance(t, &other, cfg_b, "b");
	const char *run_b[] = {"run", "--config", cfg_b, NULL};
	const char *run_a[] = {"run", "--config", t->wc.config, NULL};
	const char *params[1] = {slot_b};
	if (!configure(t, &o) || !derive_config(t, cfg_b, from, to) || !start_streaming(t) || !run_changes(t, 1000, false) ||
	    !caught_up(t, CAUGHT_UP_TIMEOUT))
		return false;
	bool ok = expect_exit(t, "run-second-slot", run_b, 1, NULL, &errtext);
	ok = ok && expect_eq_long(t, "lines of the refusal", 1, count_in(errtext, "\n"));
	ok = ok && ((strstr(errtext, "owned by slot") && strstr(errtext, t->db) && strstr(errtext, "active") &&
		     strstr(errtext, "--take-ownership")) ||
		    fail(t, "refusal does not name the owner, its state and the command: %s", errtext));
	free(errtext);
	ok = ok && (it_value(t->conn, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", 1, params, v, sizeof v,
			     err, sizeof err) ||
		    fail_err(t, "looking for the second slot", err));
	if (!ok || (strcmp(v, "0") != 0 && !fail(t, "the refused start left slot %s behind", slot_b)))
		return false;
	if (!stray_slot_warned(t))
		return false;
	if (!stop_clean(t) || !run_changes(t, 1000, false) || !wc_start_args(&other, "--take-ownership", err, sizeof err))
		return fail_err(t, "starting walcount --take-ownership", err);
	ok = applied_by(t, slot_b, &other) && run_changes(t, 1000, false) && applied_by(t, slot_b, &other) && drift_zero(t) &&
	     wait_log(t, other.log, "ownership: slot", 1, 1) && expect_exit(t, "run-old-slot", run_a, 1, NULL, &errtext);
	ok = ok && expect_str_contains(t, "the refusal of the old slot name", errtext, slot_b) &&
	     expect_str_contains(t, "the refusal of the old slot name", errtext, "owned by slot");
	free(errtext);
	ok = ok && (it_value(t->conn, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", 1,
			     (const char *const[]){t->db}, v, sizeof v, err, sizeof err) ||
		    fail_err(t, "looking for the old slot", err));
	ok = ok && expect_str_eq(t, "slots of the old name left by --take-ownership", "0", v);
	ok = stop_instance(t, &other) && ok;
	ok = drop_slot_named(t, slot_b) && ok;
	if (!ok)
		return false;
	snprintf(t->details, sizeof t->details,
		 "second slot name refused in one line naming the owner; status warned about a stray wal2json slot; "
		 "--take-ownership moved the counts exactly (drift 0); "
		 "the old name refused after");
	return true;
}

static bool reload_conf(struct ctx *t, const char *alter)
{
	char err[IT_ERRLEN];

	return (it_exec(t->conn, alter, 0, NULL, err, sizeof err) &&
		it_exec(t->conn, "SELECT pg_reload_conf()", 0, NULL, err, sizeof err)) ||
	       fail_err(t, alter, err);
}

static double median(double *v, int n)
{
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
			double x = v[j];
			v[j] = v[j - 1], v[j - 1] = x;
		}
	return n ? v[n / 2] : 0;
}

static double max_of(const double *v, int n)
{
	double m = 0;

	for (int i = 0; i < n; i++)
		m = v[i] > m ? v[i] : m;
	return m;
}

/* What /healthz of the instance on port says: "ok", "standby", or "" when
 * it does not answer 200 (within the request's timeout). */
static const char *health(int port)
{
	static char text[16];
	char *body = NULL;
	int status = http_get(port, "/healthz", &body);

	snprintf(text, sizeof text, "%s", status == 200 && body != NULL ? body : "");
	text[strcspn(text, "\n")] = '\0';
	free(body);
	return text;
}

/* What the alerts read (docker/prometheus/alerts.yml): the streaming
 * instance counts the standby (walcount_standbys, from its next slot
 * refresh), the standby says it is one and is not connected. */
static bool standby_metrics(struct ctx *t, const int *ports)
{
	char *body = NULL;
	bool seen = false;

	for (double end = it_now() + 20; !seen && it_now() < end; it_sleep_ms(100)) {
		free(body);
		body = NULL;
		seen = http_get(ports[0], "/metrics", &body) == 200 && strstr(body, "\nwalcount_standbys 1\n") != NULL;
	}
	free(body);
	body = NULL;
	if (!seen)
		return fail(t, "the streaming instance's /metrics did not show walcount_standbys 1 within 20 s");
	bool ok = http_get(ports[1], "/metrics", &body) == 200 && strstr(body, "\nwalcount_standby 1\n") != NULL &&
		  strstr(body, "\nwalcount_connected 0\n") != NULL && strstr(body, "\nwalcount_standbys ") == NULL;
	free(body);
	return ok ||
	       fail(t, "the standby's /metrics lacks walcount_standby 1 and walcount_connected 0, or has walcount_standbys");
}

/* Polls until instance i of the two (by metrics port) streams: its
 * /healthz says ok and the slot is active. */
static bool wait_streaming(struct ctx *t, const int *ports, int i, double timeout_s)
{
	const char *params[1] = {t->db};
	char v[8] = "", err[IT_ERRLEN];

	for (double end = it_now() + timeout_s; it_now() < end; it_sleep_ms(20))
		if (strcmp(health(ports[i]), "ok") == 0 &&
		    it_value(t->conn, ACTIVE_SQL, 1, params, v, sizeof v, err, sizeof err) && strcmp(v, "t") == 0)
			return true;
	return fail(t, "instance %d did not take over within %.0f s (/healthz \"%s\")", i, timeout_s, health(ports[i]));
}

/* The index of the instance that streams now (/healthz ok), waiting for
 * one; -1 after recording a failure. */
static int streaming_instance(struct ctx *t, const int *ports)
{
	for (double end = it_now() + TAKEOVER_TIMEOUT; it_now() < end; it_sleep_ms(20))
		for (int i = 0; i < 2; i++)
			if (strcmp(health(ports[i]), "ok") == 0)
				return i;
	fail(t, "neither instance streams (/healthz \"%s\", \"%s\")", health(ports[0]), health(ports[1]));
	return -1;
}

/* One round: the streaming instance is killed (SIGKILL) or stalled past
 * wal_sender_timeout (SIGSTOP) under writers; the other must take over,
 * exactly. The killed one is started again, the stalled one continued:
 * either comes back as a standby (or, having found the slot free first,
 * streams again while the other stands by). */
static bool takeover_round(struct ctx *t, struct walcount **w, const int *ports, bool stall, double *secs)
{
	char err[IT_ERRLEN];
	int status, a;

	if (!run_changes(t, 500, false) || (a = streaming_instance(t, ports)) < 0)
		return false;
	double t0 = it_now();
	kill(w[a]->pid, stall ? SIGSTOP : SIGKILL);
	if (!run_changes(t, 300, false) || !wait_streaming(t, ports, 1 - a, TAKEOVER_TIMEOUT))
		return false;
	*secs = it_now() - t0;
	if (stall) {
		kill(w[a]->pid, SIGCONT);
	} else {
		it_reap(w[a]->pid, 10, &status, NULL);
		w[a]->pid = 0;
		if (!wc_start(w[a], err, sizeof err))
			return fail_err(t, "restarting the killed walcount", err);
	}
	for (double end = it_now() + TAKEOVER_TIMEOUT; *health(ports[a]) == '\0'; it_sleep_ms(20))
		if (it_now() > end)
			return fail(t, "the %s instance did not come back", stall ? "stalled" : "killed");
	return caught_up(t, CAUGHT_UP_TIMEOUT) && drift_zero(t);
}

/* The test's walcount streaming with /metrics on ports[0], then, after
 * `changes` changes, a second instance (`other`, its own config with
 * /metrics on ports[1]) standing by. */
static bool streaming_with_standby(struct ctx *t, int ports[2], long changes)
{
	struct wc_opts o = {0};
	char cfg_b[PATH_MAX], listen_a[32], listen_b[32], from[64], to[64], err[IT_ERRLEN];

	if (!free_ports(ports, 2))
		return fail(t, "no two free loopback ports: %s", strerror(errno));
	snprintf(listen_a, sizeof listen_a, "127.0.0.1:%d", ports[0]);
	snprintf(listen_b, sizeof listen_b, "127.0.0.1:%d", ports[1]);
	snprintf(cfg_b, sizeof cfg_b, "%s/%s-b.yaml", IT.tmp, t->db);
	snprintf(from, sizeof from, "listen: \"%s\"", listen_a);
	snprintf(to, sizeof to, "listen: \"%s\"", listen_b);
	second_instance(t, &other, cfg_b, "b");
	o.metrics_listen = listen_a;
	return configure(t, &o) && derive_config(t, cfg_b, from, to) && start_streaming(t) &&
	       (changes == 0 || run_changes(t, changes, false)) &&
	       (wc_start(&other, err, sizeof err) || fail_err(t, "starting the second instance", err)) &&
	       wait_log(t, other.log, "standing by", 1, 20);
}

/* Item 3: a hot standby. The second instance stands by (said once,
 * /healthz "standby", listed by status), and in ROUNDS rounds of SIGKILL
 * and SIGSTOP of the streaming one under writers the other takes over
 * within seconds, exactly. */
static bool standby_takeover(struct ctx *t)
{
	char *out = NULL;
	double kill_s[ROUNDS], stall_s[ROUNDS];
	int nk = 0, ns = 0, ports[2], n = rounds(ROUNDS, 6);
	struct walcount *w[2] = {&t->wc, &other};

	const char *status_json[] = {"status", "--json", "--config", t->wc.config, NULL};
	if (!streaming_with_standby(t, ports, 500))
		return false;
	bool ok = expect_str_eq(t, "/healthz of the standby", "standby", health(ports[1]));
	ok = ok && expect_exit(t, "status-standby", status_json, 0, &out, NULL);
	ok = ok && ((out != NULL && strstr(out, "\"standbys\"") && strstr(out, "walcount standby")) ||
		    fail(t, "status --json names no standby: %s", out));
	free(out);
	ok = ok && standby_metrics(t, ports);
	ok = ok && reload_conf(t, "ALTER SYSTEM SET wal_sender_timeout = '" STALL_TIMEOUT "'");
	for (int round = 0; ok && round < n; round++) {
		bool stall = round % 2 == 1;
		double s = 0;
		ok = takeover_round(t, w, ports, stall, &s);
		if (stall)
			stall_s[ns++] = s;
		else
			kill_s[nk++] = s;
	}
	ok = ok && (count_in_file(t->wc.log, "rebuild:") + count_in_file(other.log, "rebuild:") == 0 ||
		    fail(t, "a takeover rebuilt the slot"));
	ok = reload_conf(t, "ALTER SYSTEM RESET wal_sender_timeout") && ok;
	ok = stop_instance(t, &other) && ok;
	if (!ok)
		return false;
	snprintf(
		t->details, sizeof t->details,
		"standby said once, /healthz 200 standby, listed by status, counted in walcount_standbys; %d SIGKILLs and %d SIGSTOPs under writers, "
		"drift 0 after each: takeover after SIGKILL median %.2f s max %.2f s, after SIGSTOP (wal_sender_timeout " STALL_TIMEOUT
		") median %.2f s max %.2f s",
		nk, ns, median(kill_s, nk), max_of(kill_s, nk), median(stall_s, ns), max_of(stall_s, ns));
	return true;
}

/* Item 7: `walcount reconcile [--dry-run]` next to a running consumer asks
 * it through the database and prints its result; the consumer keeps
 * running. */
bool test_reconcile_request(struct ctx *t)
{
	static const char last_ok[] = "walcount_reconcile_last_success_timestamp_seconds";
	const char *dry[] = {"reconcile", "--dry-run", "--config", t->wc.config, NULL};
	const char *real[] = {"reconcile", "--config", t->wc.config, NULL};
	char err[IT_ERRLEN], examples[512], listen[32];
	char *out = NULL;
	int port = free_port(t);

	snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
	if (port == 0 || !configure(t, &(struct wc_opts){.reconcile = true, .metrics_listen = listen}) || !start_streaming(t) ||
	    !run_changes(t, 2000, false) || !caught_up(t, CAUGHT_UP_TIMEOUT))
		return false;
	pid_t pid = t->wc.pid;
	double before = metric(port, last_ok);
	if (!it_exec(t->conn,
		     "UPDATE aggregate_user SET follower_count = follower_count + 5 WHERE user_id IN "
		     "(SELECT user_id FROM aggregate_user WHERE follower_count IS NOT NULL ORDER BY user_id LIMIT 3)",
		     0, NULL, err, sizeof err))
		return fail_err(t, "injecting drift", err);
	bool ok = expect_exit(t, "reconcile-dry", dry, 0, &out, NULL) &&
		  expect_str_contains(t, "the dry run's output", out, "would correct 3 (");
	free(out);
	out = NULL;
	long cells = ok ? it_drift(t->conn, examples, sizeof examples, err, sizeof err) : -1;
	ok = ok && expect_eq_long(t, "cells differing after the dry run (the injected ones)", 3, cells);
	double after_dry = metric(port, last_ok);
	ok = ok && (after_dry == before || fail(t, "%s moved from %.3f to %.3f by a dry run", last_ok, before, after_dry));
	ok = ok && expect_exit(t, "reconcile", real, 0, &out, NULL) &&
	     expect_str_contains(t, "reconcile's output", out, "corrected 3 (") &&
	     expect_str_contains(t, "reconcile's output", out, "follower_count");
	free(out);
	double after_real = metric(port, last_ok);
	ok = ok && (after_real > before || fail(t, "%s not moved by a sweep: %.3f, %.3f before", last_ok, after_real, before));
	ok = ok && drift_zero(t) && ((wc_alive(&t->wc) && t->wc.pid == pid) || fail(t, "the running walcount did not survive"));
	if (!ok)
		return false;
	snprintf(t->details, sizeof t->details,
		 "dry run and real sweep run by the running consumer through the database; 3 injected cells reported, "
		 "then corrected, the last successful sweep's time moved by the sweep only; drift 0");
	return true;
}

/* Item 8: `drop --yes` while a consumer starts (initial load over
 * preloaded rows) is refused every time; the consumer streams on,
 * exactly. */
bool test_drop_while_starting(struct ctx *t)
{
	const char *drop[] = {"drop", "--yes", "--config", t->wc.config, NULL};
	struct wc_opts o = {0};
	int refused = 0, dropped = 0, status;
	char err[IT_ERRLEN], *e = NULL, *out = NULL;
	long rows;

	if (!configure(t, &o) || !preload(t, &rows) || !wc_start(&t->wc, err, sizeof err))
		return false;
	/* From the moment the slot exists until it streams. */
	if (!wait_log(t, t->wc.log, "slot created", 1, 60))
		return false;
	while (count_in_file(t->wc.log, "stream: started") == 0 && wc_alive(&t->wc)) {
		if (!run_walcount(t, "drop-starting", drop, &status, &out, &e))
			return false;
		free(out);
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && count_in_file(t->wc.log, "stream: started") == 0)
			dropped++;
		else
			refused++;
		free(e);
		e = NULL;
	}
	if (dropped > 0)
		return fail(t, "drop --yes went through %d times while walcount was starting", dropped);
	if (!wait_slot(t, true, 60) || !run_changes(t, 2000, false) || !caught_up(t, CAUGHT_UP_TIMEOUT) || !drift_zero(t))
		return false;
	if (count_in_file(t->wc.log, "slot created") != 1)
		return fail(t, "the slot was created %d times", count_in_file(t->wc.log, "slot created"));
	snprintf(t->details, sizeof t->details, "%d drops while starting, all refused; streamed on exactly", refused);
	return true;
}

bool test_two_instances_fresh(struct ctx *t)
{
	bool ok = two_instances_fresh(t);

	kill_instance(&other);
	return ok;
}

bool test_second_slot_name(struct ctx *t)
{
	bool ok = second_slot_name(t);

	kill_instance(&other);
	return ok;
}

bool test_standby_takeover(struct ctx *t)
{
	bool ok = standby_takeover(t);

	kill_instance(&other);
	return ok;
}

/* drop --yes while a connection named as a standby of t's slot waits (the
 * name cut by the server): refused, naming it (slot_consumers.sql). */
static bool drop_refuses_standby(struct ctx *t)
{
	const char *drop[] = {"drop", "--yes", "--config", t->wc.config, NULL};
	char err[IT_ERRLEN], sql[160];
	char *errtext = NULL;
	PGconn *c = it_connect(t->db, err, sizeof err);

	snprintf(sql, sizeof sql, "SET application_name = 'walcount standby %s'", t->db);
	if (c == NULL || !it_exec(c, sql, 0, NULL, err, sizeof err)) {
		PQfinish(c);
		return fail_err(t, "naming a connection as a standby", err);
	}
	bool ok = expect_exit(t, "drop-standby-long", drop, 1, NULL, &errtext) &&
		  expect_str_contains(t, "drop's refusal", errtext, "walcount standbys of slot");
	free(errtext);
	PQfinish(c);
	return ok;
}

/* A slot name of 63 bytes (this test's database name): the server cuts
 * the standby's application_name, "walcount standby " and the name, to 63
 * bytes, and the streaming instance must still count the standby
 * (slot_lag.sql) and status list it (status.sql). */
static bool standby_long_name(struct ctx *t)
{
	char *out = NULL;
	int ports[2];
	const char *status_json[] = {"status", "--json", "--config", t->wc.config, NULL};

	if (strlen(t->db) != 63)
		return fail(t, "the slot name %s has %zu bytes, not 63", t->db, strlen(t->db));
	if (!streaming_with_standby(t, ports, 0))
		return false;
	bool ok = standby_metrics(t, ports) && expect_exit(t, "status-standby-long", status_json, 0, &out, NULL);
	ok = ok && ((out != NULL && strstr(out, "walcount standby it_standby_long_name_x")) ||
		    fail(t, "status --json names no standby: %s", out));
	free(out);
	ok = stop_instance(t, &other) && ok;
	ok = ok && stop_clean(t) && drop_refuses_standby(t);
	if (ok)
		snprintf(t->details, sizeof t->details,
			 "slot name of 63 bytes: its standby counted in walcount_standbys, listed by status, and named by "
			 "drop's refusal");
	return ok;
}

bool test_standby_long_name(struct ctx *t)
{
	bool ok = standby_long_name(t);

	kill_instance(&other);
	return ok;
}
