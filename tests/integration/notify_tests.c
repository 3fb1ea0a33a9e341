/* notify: `walcount run` under the service manager's notify protocol
 * (sd_notify(3)), the manager played by the test: a datagram socket at an
 * abstract address in NOTIFY_SOCKET, drained by a thread that notes each
 * message with its arrival time. READY=1 must come once the slot streams,
 * and from a second instance once it stands by; STATUS= lines say what
 * walcount does; WATCHDOG=1 comes every half of WATCHDOG_USEC with no gap
 * as long as the timeout, and only when WATCHDOG_USEC is set; STOPPING=1
 * comes at SIGTERM, and nothing says READY=1 after it. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cases.h"
#include "expect.h"
#include "harness.h"

#define MAX_MSGS 2048
/* A period walcount's loop meets on a loaded machine; systemd would end
 * the service after a gap this long. */
#define WATCHDOG_USEC "2000000"
#define WATCHDOG_S 2.0

struct manager {
	int fd;
	char addr[64]; /* NOTIFY_SOCKET */
	pthread_t reader;
	bool reading;
	pthread_mutex_t lock;
	bool done; /* under lock: the reader ends */
	int n;     /* under lock */
	double at[MAX_MSGS];
	char *text[MAX_MSGS];
};

static bool done(struct manager *m)
{
	pthread_mutex_lock(&m->lock);
	bool d = m->done;
	pthread_mutex_unlock(&m->lock);
	return d;
}

static void *read_messages(void *arg)
{
	struct manager *m = arg;
	char buf[1024];

	while (!done(m)) {
		struct pollfd p = {.fd = m->fd, .events = POLLIN};
		if (poll(&p, 1, 50) <= 0)
			continue;
		ssize_t len = recv(m->fd, buf, sizeof buf - 1, MSG_DONTWAIT);
		if (len < 0)
			continue;
		buf[len] = '\0';
		pthread_mutex_lock(&m->lock);
		if (m->n < MAX_MSGS) {
			m->at[m->n] = it_now();
			m->text[m->n++] = strdup(buf);
		}
		pthread_mutex_unlock(&m->lock);
	}
	return NULL;
}

/* Binds an abstract address, "@walcount-it-PID-TAG", and starts reading. */
static bool manager_open(struct ctx *t, struct manager *m, const char *tag)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	snprintf(m->addr, sizeof m->addr, "@walcount-it-%ld-%s", (long) getpid(), tag);
	memcpy(sa.sun_path + 1, m->addr + 1, strlen(m->addr) - 1);
	if ((m->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(m->fd, (struct sockaddr *) &sa, (socklen_t) (offsetof(struct sockaddr_un, sun_path) + strlen(m->addr))) != 0)
		return fail(t, "notify socket %s: %s", m->addr, strerror(errno));
	pthread_mutex_init(&m->lock, NULL);
	if (pthread_create(&m->reader, NULL, read_messages, m) != 0)
		return fail(t, "notify reader thread: %s", strerror(errno));
	m->reading = true;
	return true;
}

static void manager_close(struct manager *m)
{
	if (m->reading) {
		pthread_mutex_lock(&m->lock);
		m->done = true;
		pthread_mutex_unlock(&m->lock);
		pthread_join(m->reader, NULL);
		pthread_mutex_destroy(&m->lock);
		m->reading = false;
	}
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
	for (int i = 0; i < m->n; i++)
		free(m->text[i]);
	m->n = 0;
}

static int count(struct manager *m)
{
	pthread_mutex_lock(&m->lock);
	int n = m->n;
	pthread_mutex_unlock(&m->lock);
	return n;
}

/* The index of the first message at or after `from` that starts with
 * prefix, waiting up to timeout_s; -1 after failing the test. */
static int wait_message(struct ctx *t, struct manager *m, const char *prefix, int from, double timeout_s)
{
	double end = it_now() + timeout_s;

	for (int i = from;;) {
		for (int n = count(m); i < n; i++)
			if (strncmp(m->text[i], prefix, strlen(prefix)) == 0)
				return i;
		if (it_now() > end)
			break;
		it_sleep_ms(20);
	}
	fail(t, "no \"%s\" on %s within %.0f s (%d messages, the last: \"%s\")", prefix, m->addr, timeout_s, count(m),
	     count(m) > 0 ? m->text[count(m) - 1] : "");
	return -1;
}

static int find(struct manager *m, const char *prefix, int from, int to)
{
	for (int i = from; i < to; i++)
		if (strncmp(m->text[i], prefix, strlen(prefix)) == 0)
			return i;
	return -1;
}

/* Starts w with NOTIFY_SOCKET (and WATCHDOG_USEC) in its environment only. */
static bool start_notified(struct ctx *t, struct walcount *w, struct manager *m, bool watchdog)
{
	char err[IT_ERRLEN];
	bool ok = setenv("NOTIFY_SOCKET", m->addr, 1) == 0 && (!watchdog || setenv("WATCHDOG_USEC", WATCHDOG_USEC, 1) == 0) &&
		  wc_start(w, err, sizeof err);

	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	return ok || fail_err(t, "starting walcount with NOTIFY_SOCKET", err);
}

/* READY=1 once streaming, with its STATUS=, after the start-up's; the slot
 * is streamed when it comes. */
static int streaming_ready(struct ctx *t, struct manager *m)
{
	char want[128], err[IT_ERRLEN], active[8];
	const char *params[1] = {t->db};
	int ready = wait_message(t, m, "READY=1", 0, 60);

	if (ready < 0)
		return -1;
	snprintf(want, sizeof want, "READY=1\nSTATUS=streaming slot %s from ", t->db);
	if (!expect_str_contains(t, "READY=1 message", m->text[ready], want) ||
	    (find(m, "STATUS=starting", 0, ready) < 0 && !fail(t, "no STATUS=starting... before READY=1")))
		return -1;
	if (!it_value(t->conn, ACTIVE_SQL, 1, params, active, sizeof active, err, sizeof err)) {
		fail_err(t, "reading the slot", err);
		return -1;
	}
	return expect_str_eq(t, "slot active at READY=1", "t", active) ? ready : -1;
}

/* A second instance stands by, and says READY=1 and why; without
 * WATCHDOG_USEC it sends no WATCHDOG=1. SIGTERM: STOPPING=1, exit 0. */
static bool standby_ready(struct ctx *t, struct walcount *w, struct manager *m)
{
	char err[IT_ERRLEN];
	int ready;

	*w = t->wc;
	w->pid = 0;
	w->runs = 0;
	snprintf(w->log, sizeof w->log, "%s/%s-standby.log", IT.tmp, t->db);
	if (!start_notified(t, w, m, false) || (ready = wait_message(t, m, "READY=1", 0, 30)) < 0 ||
	    !expect_str_contains(t, "standby's READY=1", m->text[ready], "\nSTATUS=standing by: "))
		return false;
	if (!wc_signal(w, SIGTERM, STOP_TIMEOUT, err, sizeof err))
		return fail_err(t, "stopping the standby", err);
	return expect_exit_code(t, "standby stopped by SIGTERM", 0, w->status, NULL) &&
	       wait_message(t, m, "STOPPING=1", ready, 5) >= 0 &&
	       (find(m, "WATCHDOG=1", 0, count(m)) < 0 || fail(t, "WATCHDOG=1 without WATCHDOG_USEC"));
}

/* WATCHDOG=1 from READY=1 to STOPPING=1: at the pace asked, never a gap
 * as long as the timeout. */
static bool watchdog_regular(struct ctx *t, struct manager *m, int ready, int stopping)
{
	double last = m->at[ready], gap = 0;
	int pings = 0;

	for (int i = ready; i <= stopping; i++) {
		if (strcmp(m->text[i], "WATCHDOG=1") != 0 && i != stopping)
			continue;
		if (m->at[i] - last > gap)
			gap = m->at[i] - last;
		last = m->at[i];
		pings += i != stopping;
	}
	double span = m->at[stopping] - m->at[ready];
	snprintf(t->details, sizeof t->details, "%d WATCHDOG=1 in %.1f s (asked every %.1f s), longest gap %.2f s", pings, span,
		 WATCHDOG_S / 2, gap);
	return expect_ge_long(t, "WATCHDOG=1 pings", (long) (span / (WATCHDOG_S / 2)) - 2, pings) &&
	       (gap < WATCHDOG_S || fail(t, "a %.2f s gap between WATCHDOG=1 pings, the timeout is %.1f s", gap, WATCHDOG_S));
}

static bool notify_protocol(struct ctx *t, struct manager *a, struct manager *b, struct walcount *standby)
{
	char want[128];
	int ready, report, stopping;

	if (!manager_open(t, a, "a") || !manager_open(t, b, "b") || !configure(t, &(struct wc_opts){0}) ||
	    !start_notified(t, &t->wc, a, true) || (ready = streaming_ready(t, a)) < 0)
		return false;
	/* The progress line comes within a second of the first change applied. */
	snprintf(want, sizeof want, "STATUS=streaming slot %s, applied through ", t->db);
	if (!run_changes(t, 300, false) || !caught_up(t, CAUGHT_UP_TIMEOUT) ||
	    (report = wait_message(t, a, want, ready, 15)) < 0 || !standby_ready(t, standby, b))
		return false;
	/* Long enough that missing pings show against the pace asked. */
	it_sleep_ms((int) (WATCHDOG_S * 4 * 1000));
	if (!stop_clean(t) || (stopping = wait_message(t, a, "STOPPING=1", report, 5)) < 0)
		return false;
	it_sleep_ms(200);
	return (find(a, "READY=1", stopping, count(a)) < 0 || fail(t, "READY=1 after STOPPING=1")) &&
	       watchdog_regular(t, a, ready, stopping) && drift_zero(t);
}

bool test_notify(struct ctx *t)
{
	struct manager a = {.fd = -1}, b = {.fd = -1};
	struct walcount standby = {.pid = 0};
	char err[IT_ERRLEN];
	bool ok = notify_protocol(t, &a, &b, &standby);

	if (wc_alive(&standby))
		wc_signal(&standby, SIGKILL, 10, err, sizeof err);
	manager_close(&a);
	manager_close(&b);
	return ok;
}

/* A write step that takes as long as the test wants: a statement trigger
 * that sleeps after the load's INSERT has written its rows, so that the
 * SIGTERM comes with rows written in the load's transaction. */
static const char SLOW_WRITE_SQL[] = "CREATE FUNCTION public.it_slow_write() RETURNS trigger LANGUAGE plpgsql AS "
				     "$$ BEGIN PERFORM pg_sleep(120); RETURN NULL; END $$;"
				     "CREATE TRIGGER it_slow_write AFTER INSERT OR UPDATE ON aggregate_user "
				     "FOR EACH STATEMENT EXECUTE FUNCTION public.it_slow_write()";
/* Ends a sleep walcount left behind (it did not cancel), then the trigger. */
static const char FAST_WRITE_SQL[] = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
				     "WHERE datname = current_database() AND wait_event = 'PgSleep';"
				     "DROP TRIGGER it_slow_write ON aggregate_user; DROP FUNCTION public.it_slow_write()";

/* The slot creation waits for a transaction holding an xid: this one, on
 * a connection of its own (NULL on failure). */
static PGconn *hold_xid(struct ctx *t)
{
	char err[IT_ERRLEN];
	PGconn *c = it_connect(t->db, err, sizeof err);

	if (c == NULL || !it_exec(c,
				  "BEGIN; INSERT INTO follows (follower_user_id, followee_user_id, is_current, is_delete, txhash) "
				  "VALUES (424244, 1, true, false, 'open')",
				  0, NULL, err, sizeof err)) {
		PQfinish(c);
		fail_err(t, "opening a transaction", err);
		return NULL;
	}
	return c;
}

/* What a load stopped by SIGTERM leaves: no progress row, no slot (the
 * failed load dropped it), and the aggregates as they were. */
static bool nothing_written(struct ctx *t, const char *sum_before)
{
	const char *params[1] = {t->db};
	char err[IT_ERRLEN], rows[16], sum[64];

	if (!it_value(t->conn, "SELECT count(*) FROM walcount.progress WHERE slot_name = $1", 1, params, rows, sizeof rows, err,
		      sizeof err) ||
	    !it_value(t->conn, "SELECT md5(string_agg(a::text, ',' ORDER BY user_id)) FROM aggregate_user a", 0, NULL, sum,
		      sizeof sum, err, sizeof err))
		return fail_err(t, "reading what the cancelled load left", err);
	int rc = it_poll(t->conn, "SELECT NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)", 1, params, 10,
			 NULL, err, sizeof err);
	return expect_str_eq(t, "progress rows after the cancelled load", "0", rows) &&
	       expect_str_eq(t, "aggregate_user after the cancelled load", sum_before, sum) &&
	       (rc > 0 ||
		fail(t, "slot %s still there 10 s after the cancelled load%s%s", t->db, rc < 0 ? ": " : "", rc < 0 ? err : ""));
}

/* walcount_starting on port's /metrics, read once: it holds still while
 * the test holds walcount in a creation wait, a load, or streaming. */
static bool starting_is(struct ctx *t, int port, double want, const char *when)
{
	double v = metric(port, "walcount_starting");

	return v == want || fail(t, "walcount_starting %s is %g, want %g", when, v, want);
}

/* EXTEND_TIMEOUT_USEC= while the slot creation waits, then twice (10 s
 * apart) while the load writes; the SIGTERM then ends walcount within 2 s. */
static bool start_extends(struct ctx *t, struct manager *m, int port, PGconn **xact, double *stopped_after)
{
	char err[IT_ERRLEN];
	int creating, loading, ext;

	if ((creating = wait_message(t, m, "STATUS=creating slot", 0, 60)) < 0 ||
	    (ext = wait_message(t, m, "EXTEND_TIMEOUT_USEC=", creating, 15)) < 0 ||
	    !expect_str_eq(t, "EXTEND_TIMEOUT_USEC while the slot is created", "EXTEND_TIMEOUT_USEC=60000000", m->text[ext]) ||
	    !starting_is(t, port, 1, "during the slot creation wait"))
		return false;
	PQfinish(*xact);
	*xact = NULL;
	if ((loading = wait_message(t, m, "STATUS=initial load", ext, 30)) < 0 ||
	    (ext = wait_message(t, m, "EXTEND_TIMEOUT_USEC=", loading, 15)) < 0 ||
	    wait_message(t, m, "EXTEND_TIMEOUT_USEC=", ext + 1, 15) < 0)
		return false;
	/* The write step: the load's rows are written, uncommitted. */
	if (!poll_until(t, "the load's write step",
			"SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND wait_event = 'PgSleep')",
			"SELECT count(*) FROM pg_stat_activity WHERE datname = $1", 30) ||
	    !starting_is(t, port, 1, "during the initial load"))
		return false;
	if (find(m, "READY=1", 0, count(m)) >= 0)
		return fail(t, "READY=1 before the initial load finished");
	double t0 = it_now();
	if (!wc_signal(&t->wc, SIGTERM, 30, err, sizeof err))
		return fail_err(t, "stopping walcount during its initial load", err);
	*stopped_after = it_now() - t0;
	if (*stopped_after > 2.0)
		return fail(t, "walcount took %.1f s to exit after SIGTERM during its initial load", *stopped_after);
	return expect_exit_code(t, "walcount run stopped during its initial load", 0, t->wc.status, NULL) &&
	       expect_ge_long(t, "\"initial load cancelled: stop requested\" lines", 1,
			      count_in_file(t->wc.log, "initial load cancelled: stop requested")) &&
	       wait_message(t, m, "STOPPING=1", loading, 5) >= 0;
}

/* A start that waits for a transaction, then loads (its write held up by
 * a trigger): EXTEND_TIMEOUT_USEC= keeps coming, so systemd's finite
 * TimeoutStartSec does not end it; SIGTERM during the load cancels it
 * promptly, with nothing written, and the next start loads exactly. */
bool test_notify_start(struct ctx *t)
{
	struct manager m = {.fd = -1};
	PGconn *xact = NULL;
	char sum[64], err[IT_ERRLEN], listen[32];
	double stopped_after = 0;
	long rows;
	int port = free_port(t);

	snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
	bool ok = port != 0 && configure(t, &(struct wc_opts){.metrics_listen = listen}) && preload(t, &rows) &&
		  ((it_value(t->conn, "SELECT md5(string_agg(a::text, ',' ORDER BY user_id)) FROM aggregate_user a", 0, NULL, sum,
			     sizeof sum, err, sizeof err) &&
		    it_exec(t->conn, SLOW_WRITE_SQL, 0, NULL, err, sizeof err)) ||
		   fail_err(t, "setting up a slow write", err)) &&
		  manager_open(t, &m, "s") && (xact = hold_xid(t)) != NULL && start_notified(t, &t->wc, &m, false) &&
		  start_extends(t, &m, port, &xact, &stopped_after);
	if (wc_alive(&t->wc))
		wc_signal(&t->wc, SIGKILL, 10, err, sizeof err);
	PQfinish(xact);
	manager_close(&m);
	ok = ok && nothing_written(t, sum);
	ok = (it_exec(t->conn, FAST_WRITE_SQL, 0, NULL, err, sizeof err) || fail_err(t, "dropping the slow write", err)) && ok;
	ok = ok && start_streaming(t) && starting_is(t, port, 0, "once streaming") && run_changes(t, 2000, false) &&
	     caught_up(t, CAUGHT_UP_TIMEOUT) && drift_zero(t);
	if (ok)
		snprintf(t->details, sizeof t->details,
			 "%ld preloaded rows; EXTEND_TIMEOUT_USEC and walcount_starting 1 during the slot creation wait, "
			 "twice and 1 during the load; "
			 "SIGTERM during the load's write: exit after %.2f s, nothing written, slot dropped; next start drift 0",
			 rows, stopped_after);
	return ok;
}
