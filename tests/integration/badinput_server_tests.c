/* badinput_server: design.md §9 row 10, a DSN to a server that is down. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "badinput.h"

/* Row 10: a DSN to a server that is down. */

/* scripts/pg-local.sh CMD, 90 s at most; how long it took into *secs. */
static bool pg_local(struct ctx *t, const char *cmd, double *secs)
{
	const char *argv[] = {"/bin/sh", "scripts/pg-local.sh", cmd, IT.pgdir, IT.port, NULL};
	char log[PATH_MAX], err[IT_ERRLEN], st[32];
	int status;

	snprintf(log, sizeof log, "%s/bi-pg-%s.log", IT.tmp, cmd);
	int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return fail(t, "%s: %s", log, strerror(errno));
	double t0 = it_now();
	pid_t pid = it_spawn(argv, fd, fd, err, sizeof err);
	close(fd);
	if (pid < 0)
		return fail_err(t, "pg-local.sh", err);
	if (!it_reap(pid, 90, &status, NULL)) {
		kill(pid, SIGKILL);
		it_reap(pid, 10, &status, NULL);
		return fail(t, "pg-local.sh %s took over 90 s (see %s)", cmd, log);
	}
	*secs = it_now() - t0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return fail(t, "pg-local.sh %s: %s (see %s)", cmd, it_status_text(status, st, sizeof st), log);
	return true;
}

/* The delays of the "stream: reconnect attempt N in D ms" lines after the
 * first line holding `from`; how many into *n. */
static int reconnect_delays(const char *text, const char *from, long *delays, int max)
{
	const char *p = strstr(text, from);
	int n = 0;

	for (; p && n < max && (p = strstr(p, "stream: reconnect attempt ")) != NULL; p++) {
		long attempt, ms;
		if (sscanf(p, "stream: reconnect attempt %ld in %ld ms", &attempt, &ms) == 2)
			delays[n++] = ms;
	}
	return n;
}

/* Polls the log until, after the line holding `from`, a reconnect delay
 * has reached reconnect_max (2 s) after at least 5 attempts: the outage
 * has shown the whole backoff. */
static bool wait_backoff_max(struct ctx *t, const char *from)
{
	long delays[64];
	int n = 0;

	for (double end = it_now() + 60;; it_sleep_ms(50)) {
		char *text = read_log(t);
		n = reconnect_delays(text, from, delays, 64);
		free(text);
		if (n >= 5 && delays[n - 1] == 2000)
			return true;
		if (it_now() >= end)
			return fail(t,
				    "within 60 s of the server stopping: %d reconnect attempts logged, the last delay %ld ms, "
				    "want at least 5 and one of 2000 ms",
				    n, n > 0 ? delays[n - 1] : 0);
	}
}

/* The server goes down under a running walcount until its reconnect
 * delay has reached reconnect_max: it keeps trying
 * with delays doubling from reconnect_min (100 ms) to reconnect_max (2 s),
 * then catches up exactly. The fast shutdown must not wait on walcount:
 * the server ends the idle apply connection first, and walcount then drops
 * its stream, which its walsender was waiting on. `run` against a server
 * that is down retries stream.connect_attempts times with the backoff in
 * the log, then exits 1. */
bool test_bi_server_down(struct ctx *t)
{
	char cfg[PATH_MAX], dsn[256], st[32], err[IT_ERRLEN], bugs[1536] = "";
	long delays[64];
	double stop_s, start_s;

	if (!configure(t, &(struct wc_opts){.heartbeat = "20s"}) || !start_streaming(t) || !run_changes(t, 1000, false) ||
	    !caught_up(t, CAUGHT_UP_TIMEOUT))
		return false;
	pid_t pid = t->wc.pid;
	FILE *f = fopen(t->wc.log, "a");
	if (f != NULL) /* the reconnect lines are read from here on */
		fputs("--- it: server stopped ---\n", f), fclose(f);
	if (!pg_local(t, "stop", &stop_s) || !wait_backoff_max(t, "--- it: server stopped ---"))
		return false;
	if (!pg_local(t, "start", &start_s))
		return false;
	if (!it_reconnect(&t->conn, t->db, 60, err, sizeof err))
		return fail_err(t, "reconnecting after the outage", err);
	if (!run_changes(t, 1000, false) || !caught_up(t, CAUGHT_UP_TIMEOUT) || !drift_zero(t))
		return false;
	if (!wc_alive(&t->wc) || t->wc.pid != pid)
		return fail(t, "walcount did not survive the outage (%s)", it_status_text(t->wc.status, st, sizeof st));
	char *text = read_log(t);
	int n = reconnect_delays(text, "--- it: server stopped ---", delays, 64);
	int unreachable = count_in(strstr(text, "--- it: server stopped ---"), "cannot connect to \"");
	free(text);
	if (!expect_ge_long(t, "reconnect attempts logged during the outage", 5, n))
		return false;
	for (int i = 0; i < n; i++) {
		long want = i == 0 ? 100 : delays[i - 1] * 2 > 2000 ? 2000 : delays[i - 1] * 2;
		if (delays[i] != want)
			return fail(t, "reconnect delay %d is %ld ms, want %ld (doubling from 100 ms to 2000 ms)", i + 1,
				    delays[i], want);
	}
	if (delays[n - 1] != 2000)
		return fail(t, "the reconnect delay never reached reconnect_max (last %ld ms)", delays[n - 1]);
	if (unreachable == 0)
		return fail(t, "no \"cannot connect to\" reason logged during the outage");
	if (stop_s > 10)
		snprintf(bugs, sizeof bugs,
			 "a fast shutdown of the server took %.1f s with walcount attached (its walsender waited for walcount to "
			 "confirm the WAL end until walcount's next heartbeat failed), want < 10 s; ",
			 stop_s);

	/* Starting against a server that is down. */
	int port = closed_port();
	snprintf(cfg, sizeof cfg, "%s/bi-down.yaml", IT.tmp);
	snprintf(dsn, sizeof dsn, "host=127.0.0.1 port=%d dbname=%s user=postgres password=it-secret-pw", port, t->db);
	/* Few attempts (the default is 10, 11 s of backoff): enough to show
	 * bounded retries with a growing delay. */
	if (!bi_write_config(t, cfg, dsn, "it_bi_down", "  connect_attempts: 4\n"))
		return false;
	const char *argv[] = {IT.bin, "run", "--config", cfg, NULL};
	char *out = NULL, *errtext = NULL;
	int status;
	double t0 = it_now();
	if (!run_program(t, "bi-down-start", argv, &status, &out, &errtext))
		return false;
	double took = it_now() - t0;
	int attempts = count_in(errtext, "cannot connect to \"");
	bool masked = strstr(errtext, "password=***") != NULL && strstr(errtext, "it-secret-pw") == NULL &&
		      strstr(out, "it-secret-pw") == NULL;
	bool nonzero = WIFEXITED(status) && WEXITSTATUS(status) != 0;
	char first[300];
	snprintf(first, sizeof first, "%.*s", (int) strcspn(errtext, "\n"), errtext);
	free(out);
	free(errtext);
	if (!masked)
		return fail(t, "the password was not masked: %s", first);
	if (!nonzero)
		return fail(t, "run against a down server ended with %s, want a non-zero exit",
			    it_status_text(status, st, sizeof st));
	if (attempts < 3) {
		size_t used = strlen(bugs);
		snprintf(bugs + used, sizeof bugs - used,
			 "run against a server that is down made %d connection attempt(s) in %.1f s and exited, want bounded "
			 "retries with backoff in the log: %.200s",
			 attempts, took, first);
	}
	if (*bugs)
		return fail(t, "%s", bugs);
	snprintf(t->details, sizeof t->details,
		 "fast shutdown %.1f s; outage until the backoff peaked: %d reconnect attempts doubling 100 ms -> 2000 ms, caught up, drift 0; "
		 "start against a down server: %d attempts in %.1f s, then exit %d, password masked",
		 stop_s, n, attempts, took, WEXITSTATUS(status));
	return true;
}
