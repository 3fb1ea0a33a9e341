/* Hostile-input tests: the metrics port flooded with idle connections and
 * garbage while the walsender is killed under a workload (issue 12 item 9).
 * walcount starts with every descriptor below FD_FLOOR taken, so all of its
 * own sockets, libpq's included, are >= FD_SETSIZE: any FD_SET left in the
 * code overflows its fd_set. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cases.h"

#define FLOOD_CONNS 2000
#define FLOOD_KILLS 3
#define FLOOD_CHANGES 400     /* workload changes before and after each kill */
#define FLOOD_LOG_MAX 200     /* lines in walcount's whole log */
#define FD_FLOOR 1100         /* walcount's own descriptors start here */
#define HEALTHZ_REQUEST_S 2.0 /* one /healthz request, connect to answer */
#define HEALTHZ_OK_S 20.0     /* until /healthz says 200 after a kill */
#define HEALTHZ_SAMPLES 20
#define OVERSIZED_HEADER (256 * 1024)
/* The flood test sets metrics.idle_timeout to IDLE_TIMEOUT_S, not the 10 s
 * default; the drain deadline leaves room for a loaded machine. */
#define IDLE_TIMEOUT_S 3
#define IDLE_TIMEOUT_STR "3s"
#define FLOOD_DRAIN_S 20.0

/* The flood comes from 127.0.0.1, the monitor and the garbage from other
 * addresses: the per-address limit would refuse them unread. */
#define MONITOR_ADDR "127.0.0.2"
#define GARBAGE_ADDR "127.0.0.3"

struct flood {
	int port;
	int floor; /* FD_FLOOR, or 0 when the limit allows no fd >= 1024 */
	int *fds;
	int n;                /* connections opened */
	int refused;          /* closed by the server (census) */
	int open;             /* still open: held by the server or queued */
	double healthz_max_s; /* slowest /healthz answer */
	int healthz_count;
	int wc_sockets;    /* walcount's sockets at the last census */
	int wc_min_socket; /* the lowest-numbered of them */
	int garbage[3];    /* garbage_answer of each garbage connection */
	double drained_s;  /* flood start to the last idle one closed */
};

/* Soft RLIMIT_NOFILE raised to the hard limit; returns the new soft limit. */
static long raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 1024;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0 && getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 1024;
	return rl.rlim_cur == RLIM_INFINITY ? 1L << 20 : (long) rl.rlim_cur;
}

/* Makes every descriptor in [3, FD_FLOOR) busy and inheritable for the
 * walcount started next: free ones become /dev/null, the test's own lose
 * FD_CLOEXEC for the fork (a closed one would leave walcount a free low
 * descriptor). state[] remembers which, for fd_reserve_end. */
static bool fd_reserve_begin(unsigned char state[FD_FLOOR])
{
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

	memset(state, 0, FD_FLOOR);
	if (null < 0)
		return false;
	for (int fd = 3; fd < FD_FLOOR; fd++) {
		int fl = fcntl(fd, F_GETFD);
		if (fd == null)
			state[fd] = 1;
		else if (fl < 0 && dup2(null, fd) == fd)
			state[fd] = 1;
		else if (fl >= 0 && (fl & FD_CLOEXEC) && fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC) == 0)
			state[fd] = 2;
	}
	return fcntl(null, F_SETFD, 0) == 0;
}

static void fd_reserve_end(const unsigned char state[FD_FLOOR])
{
	for (int fd = 3; fd < FD_FLOOR; fd++) {
		if (state[fd] == 1)
			close(fd);
		else if (state[fd] == 2)
			fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
}

static bool start_high_fds(struct ctx *t)
{
	static unsigned char state[FD_FLOOR];
	bool ok;

	if (!fd_reserve_begin(state)) {
		fd_reserve_end(state);
		return fail(t, "reserving descriptors below %d: %s", FD_FLOOR, strerror(errno));
	}
	ok = start(t);
	fd_reserve_end(state);
	return ok && wait_slot(t, true, 60);
}

/* The test's own socket at fd, as "socket:[inode]" ("" when none). */
static void own_socket(int fd, char *buf, size_t len)
{
	char link[64];
	ssize_t n;

	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	n = readlink(link, buf, len - 1);
	buf[n > 0 ? n : 0] = '\0';
}

/* Counts walcount's sockets and finds the lowest-numbered one; the test's
 * own, inherited by fd_reserve_begin, do not count. */
static void wc_socket_census(struct ctx *t, struct flood *f)
{
	char path[64], link[96], target[64], own[64];
	DIR *d;

	snprintf(path, sizeof path, "/proc/%d/fd", (int) t->wc.pid);
	f->wc_sockets = 0;
	f->wc_min_socket = -1;
	if ((d = opendir(path)) == NULL)
		return;
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		int fd = atoi(e->d_name);
		snprintf(link, sizeof link, "%s/%d", path, fd);
		ssize_t n = readlink(link, target, sizeof target - 1);
		if (e->d_name[0] == '.' || n <= 0)
			continue;
		target[n] = '\0';
		own_socket(fd, own, sizeof own);
		if (strncmp(target, "socket:", 7) != 0 || strcmp(target, own) == 0)
			continue;
		f->wc_sockets++;
		if (f->wc_min_socket < 0 || fd < f->wc_min_socket)
			f->wc_min_socket = fd;
	}
	closedir(d);
}

/* A TCP socket to 127.0.0.1:port from src (NULL: any), connected with a
 * deadline of timeout_s (0: non-blocking, the connect left in progress). */
static int dial(int port, const char *src, double timeout_s)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t) port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (timeout_s > 0 ? 0 : SOCK_NONBLOCK), 0);
	struct timeval tv = {(time_t) timeout_s, (suseconds_t) ((timeout_s - (long) timeout_s) * 1e6)};

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	if (src != NULL) {
		struct sockaddr_in from = {.sin_family = AF_INET};
		if (inet_pton(AF_INET, src, &from.sin_addr) != 1 || bind(fd, (struct sockaddr *) &from, sizeof from) != 0) {
			close(fd);
			return -1;
		}
	}
	if (timeout_s > 0 && (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
			      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0)) {
		close(fd);
		return -1;
	}
	if (connect(fd, (struct sockaddr *) &sa, sizeof sa) != 0 && !(timeout_s <= 0 && errno == EINPROGRESS)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* GET /healthz from MONITOR_ADDR; returns the HTTP status, -1 when none
 * came within HEALTHZ_REQUEST_S (refused, closed unanswered, timed out). */
static int healthz(struct flood *f)
{
	static const char req[] = "GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
	double t0 = it_now();
	int fd = dial(f->port, MONITOR_ADDR, HEALTHZ_REQUEST_S), status = -1;
	char buf[512];
	size_t len = 0;

	if (fd >= 0 && write(fd, req, sizeof req - 1) == (ssize_t) sizeof req - 1) {
		for (ssize_t n; len < sizeof buf - 1 && (n = read(fd, buf + len, sizeof buf - 1 - len)) > 0;)
			len += (size_t) n;
		buf[len] = '\0';
		if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
			status = -1;
	}
	if (fd >= 0)
		close(fd);
	double dt = it_now() - t0;
	if (dt > f->healthz_max_s)
		f->healthz_max_s = dt;
	f->healthz_count++;
	return status;
}

/* "running" or how walcount ended. */
static const char *wc_state(struct ctx *t, char *buf, size_t len)
{
	return wc_alive(&t->wc) ? "running" : it_status_text(t->wc.status, buf, len);
}

/* Polls /healthz until it answers 200; every request must be answered. */
static bool healthz_ok(struct ctx *t, struct flood *f, const char *when)
{
	char st_text[32];
	int st = -1;

	for (double end = it_now() + HEALTHZ_OK_S; it_now() < end; it_sleep_ms(100)) {
		if ((st = healthz(f)) == 200)
			return true;
		if (st < 0)
			return fail(t, "/healthz %s: no answer within %.0f s (walcount: %s)", when, HEALTHZ_REQUEST_S,
				    wc_state(t, st_text, sizeof st_text));
	}
	return fail(t, "/healthz %s: still %d after %.0f s", when, st, HEALTHZ_OK_S);
}

/* HEALTHZ_SAMPLES more requests while the flood holds its connections:
 * each one answered, and 200 (walcount streams). */
static bool healthz_samples(struct ctx *t, struct flood *f)
{
	for (int i = 0; i < HEALTHZ_SAMPLES; i++, it_sleep_ms(50)) {
		int st = healthz(f);
		if (st != 200)
			return fail(t, "/healthz during the flood, request %d of %d: %d", i + 1, HEALTHZ_SAMPLES, st);
	}
	return true;
}

/* Opens up to want idle connections (connects left in progress). */
static bool flood_open(struct ctx *t, struct flood *f, int want)
{
	if ((f->fds = malloc(sizeof *f->fds * (size_t) want)) == NULL)
		return fail(t, "out of memory");
	for (f->n = 0; f->n < want; f->n++)
		if ((f->fds[f->n] = dial(f->port, NULL, 0)) < 0)
			return fail(t, "idle connection %d of %d: %s", f->n + 1, want, strerror(errno));
	return true;
}

static void flood_close(struct flood *f)
{
	for (int i = 0; i < f->n; i++)
		close(f->fds[i]);
	free(f->fds);
	f->fds = NULL;
}

/* Client side: which idle connections the server has closed. */
static void flood_census(struct flood *f)
{
	char c;

	f->refused = f->open = 0;
	for (int i = 0; i < f->n; i++) {
		ssize_t n = recv(f->fds[i], &c, 1, MSG_PEEK | MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOTCONN))
			f->refused++;
		else
			f->open++;
	}
}

static bool send_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n <= 0)
			return false;
		buf += n, len -= (size_t) n;
	}
	return true;
}

/* Random bytes, an oversized header and an unfinished request, each on its
 * own connection; the connections stay open (fds
 * gets them, -1 where the server cut the write short). */
static void send_garbage(struct ctx *t, int port, int fds[3])
{
	size_t big = OVERSIZED_HEADER + 64;
	char *buf = malloc(big);
	static const char unfinished[] = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1";

	for (int i = 0; i < 3; i++)
		fds[i] = dial(port, GARBAGE_ADDR, HEALTHZ_REQUEST_S);
	if (buf == NULL)
		return;
	for (size_t i = 0; i < 4096; i++)
		buf[i] = (char) (rng_next(&t->rng) & 0xff);
	if (fds[0] >= 0 && !send_all(fds[0], buf, 4096))
		close(fds[0]), fds[0] = -1;
	int n = snprintf(buf, big, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ");
	memset(buf + n, 'a', OVERSIZED_HEADER);
	memcpy(buf + n + OVERSIZED_HEADER, "\r\n\r\n", 4);
	if (fds[1] >= 0 && !send_all(fds[1], buf, (size_t) n + OVERSIZED_HEADER + 4))
		close(fds[1]), fds[1] = -1;
	if (fds[2] >= 0 && !send_all(fds[2], unfinished, sizeof unfinished - 1))
		close(fds[2]), fds[2] = -1;
	free(buf);
}

/* What the server made of a garbage connection: its HTTP status, 0 when
 * it closed without one, -1 when it is still open without an answer. */
static int garbage_answer(int fd)
{
	char buf[256];
	ssize_t n;
	int status;

	if (fd < 0)
		return 0;
	n = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? -1 : 0;
	buf[n] = '\0';
	return n > 0 && sscanf(buf, "HTTP/1.%*d %d", &status) == 1 ? status : 0;
}

/* Waits until the server has closed every idle connection (its timeout). */
static bool flood_drained(struct ctx *t, struct flood *f, double t0)
{
	for (double end = it_now() + FLOOD_DRAIN_S; it_now() < end; it_sleep_ms(200)) {
		flood_census(f);
		if (f->open == 0) {
			f->drained_s = it_now() - t0;
			return true;
		}
	}
	return fail(t, "%d idle connections still open %.0f s after the flood: no connection timeout", f->open, it_now() - t0);
}

static int count_lines(const char *path)
{
	return count_in_file(path, "\n");
}

/* The flood's figures, then the checks that need it still open. */
static bool flood_checks(struct ctx *t, struct flood *f)
{
	int lines = count_lines(t->wc.log);
	char st_text[32];

	flood_census(f);
	wc_socket_census(t, f);
	snprintf(t->details, sizeof t->details,
		 "%d idle connections + 3 garbage: %d closed by walcount, %d open; walcount held %d sockets, lowest fd %d; "
		 "%d /healthz requests, slowest %.3f s; %ld changes, %d walsender kills, drift 0, %d log lines",
		 f->n, f->refused, f->open, f->wc_sockets, f->wc_min_socket, f->healthz_count, f->healthz_max_s, t->wl.committed,
		 FLOOD_KILLS, lines);
	if (!wc_alive(&t->wc))
		return fail(t, "walcount ended during the flood: %s", wc_state(t, st_text, sizeof st_text));
	if (f->floor > 0 && f->wc_min_socket < 1024)
		return fail(t, "walcount's socket %d is below FD_SETSIZE: the test did not exercise high fds", f->wc_min_socket);
	return lines < FLOOD_LOG_MAX || fail(t, "walcount's log has %d lines (bound %d): %s", lines, FLOOD_LOG_MAX, t->details);
}

static bool flood_run(struct ctx *t, struct flood *f, long nofile)
{
	long room = nofile - f->floor - 200;
	int want = room < FLOOD_CONNS ? (int) room : FLOOD_CONNS;
	int garbage[3] = {-1, -1, -1};
	double t0 = it_now();
	bool ok;

	if (want < 100)
		return fail(t, "RLIMIT_NOFILE %ld leaves room for %d connections only", nofile, want);
	ok = flood_open(t, f, want);
	send_garbage(t, f->port, garbage);
	ok = ok && healthz_ok(t, f, "during the flood") && healthz_samples(t, f);
	for (int k = 0; ok && k < FLOOD_KILLS; k++)
		ok = run_changes(t, FLOOD_CHANGES, false) && terminate_walsender(t, true) &&
		     run_changes(t, FLOOD_CHANGES, false) && wait_slot(t, true, 60) && healthz_ok(t, f, "after a walsender kill");
	ok = ok && caught_up(t, CAUGHT_UP_TIMEOUT) && drift_zero(t) && flood_checks(t, f);
	for (int i = 0; i < 3; i++)
		f->garbage[i] = garbage_answer(garbage[i]);
	ok = ok && flood_drained(t, f, t0);
	for (int i = 0; i < 3; i++)
		if (garbage[i] >= 0)
			close(garbage[i]);
	flood_close(f);
	return ok;
}

/* With a hard RLIMIT_NOFILE too low for descriptors >= 1024 (where
 * FD_SET breaks), the flood runs without the high-fd part. */
bool test_hostile_metrics_flood(struct ctx *t)
{
	char listen[32];
	long nofile = raise_nofile();
	struct flood f = {.port = free_port(t), .floor = nofile >= FD_FLOOR + 400 ? FD_FLOOR : 0};

	snprintf(listen, sizeof listen, "127.0.0.1:%d", f.port);
	if (f.port == 0 || !configure(t, &(struct wc_opts){.metrics_listen = listen, .metrics_idle_timeout = IDLE_TIMEOUT_STR}) ||
	    !(f.floor ? start_high_fds(t) : start_streaming(t)) || !run_changes(t, FLOOD_CHANGES, false) ||
	    !flood_run(t, &f, nofile))
		return false;
	snprintf(t->details + strlen(t->details), sizeof t->details - strlen(t->details),
		 "; garbage got %d (random bytes), %d (oversized header), %d (unfinished request); "
		 "all idle ones closed after %.1f s",
		 f.garbage[0], f.garbage[1], f.garbage[2], f.drained_s);
	if (f.n < FLOOD_CONNS || f.floor == 0)
		snprintf(t->details + strlen(t->details), sizeof t->details - strlen(t->details),
			 " (RLIMIT_NOFILE %ld allowed only %d connections%s)", nofile, f.n,
			 f.floor ? "" : ", and no descriptor >= 1024");
	return stop_clean(t);
}
