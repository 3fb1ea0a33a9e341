/* cases: the shared steps of the integration tests (see cases.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "workload.h"

#include "cases.h"

uint64_t seed;

/* Records why the test failed; the first reason wins, since later ones
 * (cleanup) are usually consequences. Returns false. */
bool fail(struct ctx *t, const char *fmt, ...)
{
	va_list ap;

	if (t->reason[0] != '\0')
		return false;
	va_start(ap, fmt);
	vsnprintf(t->reason, sizeof t->reason, fmt, ap);
	va_end(ap);
	return false;
}

bool fail_err(struct ctx *t, const char *what, const char *err)
{
	return fail(t, "%s: %s", what, err);
}

/* Writes the test's config file. Reconnects are fast and the status
 * interval short so the tests do not wait on walcount's timers. */
bool configure(struct ctx *t, const struct wc_opts *o)
{
	FILE *f = fopen(t->wc.config, "w");

	if (f == NULL)
		return fail(t, "%s: %s", t->wc.config, strerror(errno));
	fprintf(f, "database:\n  dsn: \"host=%s port=%s dbname=%s user=%s%s\"\n", IT.host, IT.port, t->db,
		o->user ? o->user : "postgres", o->dsn_extra ? o->dsn_extra : "");
	if (o->password_file)
		fprintf(f, "  password_file: \"%s\"\n", o->password_file);
	fprintf(f, "slot:\n  name: %s\n", t->db);
	if (o->heartbeat)
		fprintf(f, "  heartbeat_interval: %s\n", o->heartbeat);
	if (o->refresh)
		fprintf(f, "  refresh_interval: %s\n", o->refresh);
	if (o->release_wait)
		fprintf(f, "  release_wait: %s\n", o->release_wait);
	if (o->create_report_after)
		fprintf(f, "  create_report_after: %s\n", o->create_report_after);
	fprintf(f, "batch:\n  max_delay: %s\n", o->max_delay ? o->max_delay : "100ms");
	if (o->max_changes)
		fprintf(f, "  max_changes: %ld\n", o->max_changes);
	if (o->max_keys)
		fprintf(f, "  max_keys: %ld\n", o->max_keys);
	if (o->workers || getenv("IT_WORKERS"))
		fprintf(f, "apply:\n  workers: %ld\n", o->workers ? o->workers : strtol(getenv("IT_WORKERS"), NULL, 10));
	if (o->checkpoint_interval)
		fprintf(f, "checkpoint:\n  interval: %s\n", o->checkpoint_interval);
	/* The stream alone must be exact: a reconcile sweep would hide drift.
	 * Only the reconcile tests turn it on. */
	fprintf(f, "reconcile:\n  enabled: %s\n", o->reconcile ? "true" : "false");
	if (o->chunk_time)
		fprintf(f, "  chunk_time: %s\n", o->chunk_time);
	/* Off unless asked for: other walcount instances may run on this host. */
	fprintf(f, "metrics:\n  listen: \"%s\"\n", o->metrics_listen ? o->metrics_listen : "");
	if (o->metrics_idle_timeout)
		fprintf(f, "  idle_timeout: %s\n", o->metrics_idle_timeout);
	fprintf(f, "log:\n  level: %s\n  format: %s\n", o->log_level ? o->log_level : "info",
		o->log_format ? o->log_format : "text");
	fprintf(f, "stream:\n  status_interval: 1s\n  reconnect_min: 100ms\n  reconnect_max: 2s\n");
	/* IT_DECODE_WORKERS runs every test with that many decode threads. */
	const char *workers = o->decode_workers ? o->decode_workers : getenv("IT_DECODE_WORKERS");
	if (workers != NULL && *workers)
		fprintf(f, "decode:\n  workers: %s\n", workers);
	if (fclose(f) != 0)
		return fail(t, "%s: %s", t->wc.config, strerror(errno));
	return true;
}

bool wait_slot(struct ctx *t, bool active, double timeout_s)
{
	const char *params[1] = {t->db};
	char err[IT_ERRLEN];
	int rc = it_poll(t->conn, active ? ACTIVE_SQL : INACTIVE_SQL, 1, params, timeout_s, active ? &t->wc : NULL, err,
			 sizeof err);

	if (rc < 0)
		return fail_err(t, active ? "waiting for the slot to become active" : "waiting for the slot to be released", err);
	if (rc == 0)
		return fail(t, "slot %s not %s within %.0f s", t->db, active ? "active" : "released", timeout_s);
	return true;
}

bool start(struct ctx *t)
{
	char err[IT_ERRLEN];

	return wc_start(&t->wc, err, sizeof err) || fail_err(t, "starting walcount", err);
}

/* Starts walcount and waits for its slot to stream: changes made before the
 * slot exists would not be counted. */
bool start_streaming(struct ctx *t)
{
	return start(t) && wait_slot(t, true, 60);
}

/* SIGTERM: walcount must flush and exit 0. */
bool stop_clean(struct ctx *t)
{
	char err[IT_ERRLEN];

	if (!wc_signal(&t->wc, SIGTERM, STOP_TIMEOUT, err, sizeof err))
		return fail_err(t, "stopping walcount", err);
	return expect_exit_code(t, "walcount stopped by SIGTERM", 0, t->wc.status, NULL);
}

/* SIGKILL, reap, and wait for the server to release the slot, since a new
 * walcount refuses a slot that is still held. */
bool kill_hard(struct ctx *t)
{
	char err[IT_ERRLEN], st[32];

	if (!wc_signal(&t->wc, SIGKILL, 10, err, sizeof err))
		return fail_err(t, "killing walcount", err);
	if (!WIFSIGNALED(t->wc.status) || WTERMSIG(t->wc.status) != SIGKILL)
		return fail(t, "walcount had already ended (%s) before SIGKILL", it_status_text(t->wc.status, st, sizeof st));
	return wait_slot(t, false, 30);
}

/* Runs the workload until `target` more changes are committed. With
 * reconnect, a broken connection (server restart) is replaced and the
 * workload goes on. */
bool run_changes(struct ctx *t, long target, bool reconnect)
{
	char err[IT_ERRLEN];
	long goal = t->wl.committed + target;

	while (t->wl.committed < goal) {
		long rc = workload_run(&t->wl, t->conn, goal - t->wl.committed, err, sizeof err);
		if (rc == WL_FAILED || (rc == WL_LOST && !reconnect))
			return fail_err(t, "workload", err);
		if (rc == WL_LOST && !it_reconnect(&t->conn, t->db, 60, err, sizeof err))
			return fail_err(t, "reconnecting the workload", err);
	}
	return true;
}

bool marker(struct ctx *t, struct it_mark *m)
{
	char err[IT_ERRLEN];

	return it_marker(t->conn, ++t->markers, m, err, sizeof err) || fail_err(t, "marker transaction", err);
}

bool wait_applied(struct ctx *t, const struct it_mark *m, double timeout_s)
{
	char err[IT_ERRLEN];

	return it_wait_applied(t->conn, t->db, m, timeout_s, &t->wc, err, sizeof err) || fail_err(t, "caught-up wait", err);
}

bool caught_up(struct ctx *t, double timeout_s)
{
	struct it_mark m;

	return marker(t, &m) && wait_applied(t, &m, timeout_s);
}

bool drift_zero(struct ctx *t)
{
	char err[IT_ERRLEN], examples[1024];
	long n = it_drift(t->conn, examples, sizeof examples, err, sizeof err);

	if (n < 0)
		return fail_err(t, "drift check", err);
	if (n > 0)
		return fail(t, "drift: %ld count cells differ from the source tables, e.g. %s", n, examples);
	return true;
}

/* 1. A random workload is counted exactly, live and from a backlog. */

/* Runs argv (argv[0] a path) to completion (30 s at most), stdout and
 * stderr in IT_TMP/LABEL.out and .err; fills *status and the texts. */
bool run_program(struct ctx *t, const char *label, const char *const *argv, int *status, char **out, char **errtext)
{
	char outp[PATH_MAX], errp[PATH_MAX], err[IT_ERRLEN];

	snprintf(outp, sizeof outp, "%s/%s.out", IT.tmp, label);
	snprintf(errp, sizeof errp, "%s/%s.err", IT.tmp, label);
	int ofd = open(outp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int efd = open(errp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	pid_t pid = ofd < 0 || efd < 0 ? -1 : it_spawn(argv, ofd, efd, err, sizeof err);
	if (ofd >= 0)
		close(ofd);
	if (efd >= 0)
		close(efd);
	if (pid < 0)
		return fail(t, "%s: cannot start %s: %s", label, argv[0], ofd < 0 || efd < 0 ? strerror(errno) : err);
	if (!it_reap(pid, 30, status, NULL)) {
		kill(pid, SIGKILL);
		it_reap(pid, 10, status, NULL);
		return fail(t, "%s: still running after 30 s", label);
	}
	*out = it_read_file(outp, NULL, err, sizeof err);
	*errtext = it_read_file(errp, NULL, err, sizeof err);
	return (*out && *errtext) || fail_err(t, "reading the output", err);
}

bool run_walcount(struct ctx *t, const char *label, const char *const *args, int *status, char **out, char **errtext)
{
	const char *argv[16] = {IT.bin};

	for (size_t n = 1; n < 15 && args[n - 1] != NULL; n++)
		argv[n] = args[n - 1];
	return run_program(t, label, argv, status, out, errtext);
}

bool terminate_walsender(struct ctx *t, bool must)
{
	const char *params[1] = {t->db};
	char err[IT_ERRLEN], v[8];

	if (!wait_slot(t, true, 60))
		return false;
	if (!it_value(t->conn,
		      "SELECT coalesce(bool_and(pg_terminate_backend(active_pid)), false) FROM pg_replication_slots "
		      "WHERE slot_name = $1 AND active",
		      1, params, v, sizeof v, err, sizeof err))
		return fail_err(t, "terminating the walsender", err);
	return !must || expect_str_eq(t, "pg_terminate_backend of the walsender", "t", v);
}

int count_in(const char *text, const char *needle)
{
	int n = 0;

	for (const char *p = text; p && (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

int count_in_file(const char *path, const char *needle)
{
	char err[IT_ERRLEN];
	char *text = it_read_file(path, NULL, err, sizeof err);
	int n = count_in(text, needle);

	free(text);
	return n;
}

int closed_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = 1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *) &sa, sizeof sa) == 0 && getsockname(fd, (struct sockaddr *) &sa, &len) == 0)
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

int http_get(int port, const char *path, char **body)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t) port)};
	char req[256];
	size_t len = 0, cap = 1 << 16;
	char *buf = malloc(cap);
	int fd = socket(AF_INET, SOCK_STREAM, 0), status = -1;

	struct timeval tv = {2, 0};

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* A stopped (SIGSTOP) walcount's kernel accepts, but it never answers. */
	if (fd >= 0 && (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
			setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0)) {
		close(fd);
		fd = -1;
	}
	snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
	if (buf && fd >= 0 && connect(fd, (struct sockaddr *) &sa, sizeof sa) == 0 &&
	    write(fd, req, strlen(req)) == (ssize_t) strlen(req)) {
		for (ssize_t n; (n = read(fd, buf + len, cap - len - 1)) > 0;) {
			len += (size_t) n;
			if (len + 1 == cap && (buf = realloc(buf, cap *= 2)) == NULL)
				break;
		}
	}
	if (fd >= 0)
		close(fd);
	if (buf == NULL)
		return -1;
	buf[len] = '\0';
	char *sep = strstr(buf, "\r\n\r\n");
	if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1 || sep == NULL)
		status = -1;
	*body = strdup(sep ? sep + 4 : "");
	free(buf);
	return status;
}

bool free_ports(int *ports, int n)
{
	int fds[8];
	bool ok = n <= 8;

	for (int i = 0; i < n && ok; i++) {
		struct sockaddr_in sa = {.sin_family = AF_INET};
		socklen_t len = sizeof sa;
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		ok = fds[i] >= 0 && bind(fds[i], (struct sockaddr *) &sa, sizeof sa) == 0 &&
		     getsockname(fds[i], (struct sockaddr *) &sa, &len) == 0;
		ports[i] = ntohs(sa.sin_port);
		if (!ok && fds[i] >= 0)
			close(fds[i]);
		if (!ok)
			n = i;
	}
	for (int i = 0; i < n; i++)
		close(fds[i]);
	return ok;
}

int free_port(struct ctx *t)
{
	int port = 0;

	if (!free_ports(&port, 1))
		fail(t, "no free loopback port: %s", strerror(errno));
	return port;
}

int rounds(int full, int quick)
{
	const char *q = getenv("IT_QUICK");

	return q != NULL && strcmp(q, "1") == 0 ? quick : full;
}

bool poll_until(struct ctx *t, const char *what, const char *sql, const char *show, double timeout_s)
{
	const char *params[1] = {t->db};
	char err[IT_ERRLEN], seen[256] = "";
	int rc = it_poll(t->conn, sql, strstr(sql, "$1") != NULL, params, timeout_s, NULL, err, sizeof err);

	if (rc < 0)
		return fail_err(t, what, err);
	if (rc > 0)
		return true;
	if (!it_value(t->conn, show, strstr(show, "$1") != NULL, params, seen, sizeof seen, err, sizeof err))
		snprintf(seen, sizeof seen, "(unreadable: %.200s)", err);
	return fail(t, "%s: not within %.0f s; last seen %s", what, timeout_s, seen);
}

bool progress_rows(struct ctx *t, long want)
{
	const char *params[1] = {t->db};
	char err[IT_ERRLEN], v[32];

	if (!it_value(t->conn, "SELECT count(*) FROM walcount.progress WHERE slot_name = $1", 1, params, v, sizeof v, err,
		      sizeof err))
		return fail_err(t, "counting progress rows", err);
	return expect_eq_long(t, "progress rows", want, atol(v));
}
