/* metrics: the exposition text (exact lines, histogram invariants, label
 * sets, promtool's verdict) and the HTTP listener (http.c) over a real
 * socket.
 * The state is process-wide and cannot be reset, so the tests run in the
 * order listed and each asserts on what the earlier ones left. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "delta.h"
#include "http.h"
#include "metrics.h"
#include "version.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define PROMTOOL "/usr/bin/promtool"

/* Asserts that text holds line as a whole line. */
static void assert_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return;
	print_error("missing line: %s\n", line);
	fail();
}

static char *render(void)
{
	char *text = metrics_render();

	assert_non_null(text);
	return text;
}

/* ---- exposition ---- */

static const char *const zero_lines[] = {
	"walcount_up 1",
	"walcount_changes_total{table=\"reposts\",action=\"insert\"} 0",
	"walcount_changes_total{table=\"reposts\",action=\"truncate\"} 0",
	"walcount_changes_total{table=\"saves\",action=\"update\"} 0",
	"walcount_changes_total{table=\"follows\",action=\"delete\"} 0",
	"walcount_skipped_changes_total{reason=\"null_flag\"} 0",
	"walcount_skipped_changes_total{reason=\"unknown_type\"} 0",
	"walcount_skipped_changes_total{reason=\"null_key\"} 0",
	"walcount_skipped_changes_total{reason=\"identity\"} 0",
	"walcount_prerequisite_violations_total{check=\"source_tables\"} 0",
	"walcount_prerequisite_violations_total{check=\"replica_identity\"} 0",
	"walcount_prerequisite_violations_total{check=\"slot_plugin\"} 0",
	"walcount_counts_stale 0",
	"walcount_batches_total 0",
	"walcount_batch_duration_seconds_bucket{le=\"0.001\"} 0",
	"walcount_batch_duration_seconds_bucket{le=\"+Inf\"} 0",
	"walcount_batch_duration_seconds_sum 0",
	"walcount_batch_duration_seconds_count 0",
	"walcount_applied_lsn 0",
	"walcount_connected 0",
	"walcount_standby 0",
	"walcount_starting 0",
	"walcount_reconnects_total 0",
	"walcount_rebuilds_total{reason=\"slot_missing\"} 0",
	"walcount_rebuilds_total{reason=\"no_progress\"} 0",
	"walcount_rebuilds_total{reason=\"wal_lost\"} 0",
	"walcount_rebuilds_total{reason=\"slot_ahead\"} 0",
	"walcount_reconcile_duration_seconds 0",
	"walcount_reconcile_corrected_total{table=\"aggregate_user\",column=\"repost_count\"} 0",
	"walcount_reconcile_corrected_total{table=\"aggregate_track\",column=\"comment_count\"} 0",
	"walcount_reconcile_corrected_total{table=\"aggregate_playlist\",column=\"save_count\"} 0",
	"walcount_reconcile_failures_total 0",
	"walcount_reconcile_last_success_timestamp_seconds 0",
	"walcount_reconcile_enabled 0",
	"walcount_checkpoint_interval_seconds 0",
};

/* The families exported only while the stream is connected. */
static const char *const slot_families[] = {
	"walcount_lag_seconds", "walcount_lag_bytes",       "walcount_slot_retained_wal_bytes",
	"walcount_slot_active", "walcount_slot_wal_status", "walcount_standbys",
};

/* Whether text has a sample of family name (a line "name " or "name{"). */
static bool has_sample(const char *text, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = text; (p = strstr(p, name)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && (p[n] == ' ' || p[n] == '{'))
			return true;
	return false;
}

/* Counts lines that start with prefix. */
static int count_lines(const char *text, const char *prefix)
{
	int n = 0;

	for (const char *p = text; (p = strstr(p, prefix)) != NULL; p++)
		n += p == text || p[-1] == '\n';
	return n;
}

static void test_render_initial(void **state)
{
	char *text = render();
	int changes = 0;

	(void) state;
	for (size_t i = 0; i < ARRAY_LEN(zero_lines); i++)
		assert_line(text, zero_lines[i]);
	for (const char *p = text; (p = strstr(p, "\nwalcount_changes_total{")) != NULL; p++)
		changes++;
	assert_int_equal(changes, 12);
	assert_null(strstr(text, "reason=\"none\""));
	/* Every swept column, at 0 before any sweep: increase() sees the first. */
	assert_int_equal(count_lines(text, "walcount_reconcile_corrected_total{"), 14);
	/* Not connected yet: the slot families are declared, without a sample. */
	for (size_t i = 0; i < ARRAY_LEN(slot_families); i++) {
		char type[96];
		snprintf(type, sizeof type, "# TYPE %s gauge", slot_families[i]);
		assert_line(text, type);
		assert_false(has_sample(text, slot_families[i]));
	}
	free(text);
}

static void apply_updates(void)
{
	metrics_change(SRC_REPOSTS, change_action_name(ACT_INSERT));
	metrics_change(SRC_REPOSTS, change_action_name(ACT_INSERT));
	metrics_change(SRC_FOLLOWS, change_action_name(ACT_TRUNCATE));
	metrics_change(SRC_NONE, change_action_name(ACT_BEGIN)); /* not a row change: ignored */
	metrics_change(SRC_SAVES, change_action_name(ACT_BEGIN));
	metrics_skipped(skip_reason_name(SKIP_NULL_KEY));
	metrics_skipped(skip_reason_name(SKIP_NONE)); /* not a reason: ignored */
	/* Binary fractions, so the expected sums are exact. */
	metrics_batch(0.00390625, 100);
	metrics_batch(0.1875, 200);
	metrics_batch(3.0, 0x16B374D848);
	metrics_commit_to_apply(-2.0); /* clock skew: counts as 0 */
	metrics_commit_to_apply(0.5);  /* on a bound: le is <= */
	metrics_commit_to_apply(20.0); /* past the last bound */
	metrics_slot(&(struct slot_gauges){4096, -1, true, "reserved", 2});
	metrics_reconnect();
	metrics_reconnect();
	metrics_reconcile_corrected(COL_TRACK_SAVE, 5);
	metrics_reconcile_corrected(COL_USER_REPOST, 0);
	metrics_reconcile_corrected(COL_TRACK_SAVE, 2);
	metrics_reconcile_corrected(COL__ALL, 9); /* not a column: ignored */
	metrics_reconcile_duration(1.25);
}

static const char *const updated_lines[] = {
	"walcount_changes_total{table=\"reposts\",action=\"insert\"} 2",
	"walcount_changes_total{table=\"follows\",action=\"truncate\"} 1",
	"walcount_changes_total{table=\"saves\",action=\"insert\"} 0",
	"walcount_skipped_changes_total{reason=\"null_key\"} 1",
	"walcount_skipped_changes_total{reason=\"null_flag\"} 0",
	"walcount_batches_total 3",
	"walcount_batch_duration_seconds_bucket{le=\"0.001\"} 0",
	"walcount_batch_duration_seconds_bucket{le=\"0.0025\"} 0",
	"walcount_batch_duration_seconds_bucket{le=\"0.005\"} 1",
	"walcount_batch_duration_seconds_bucket{le=\"0.1\"} 1",
	"walcount_batch_duration_seconds_bucket{le=\"0.25\"} 2",
	"walcount_batch_duration_seconds_bucket{le=\"2.5\"} 2",
	"walcount_batch_duration_seconds_bucket{le=\"5\"} 3",
	"walcount_batch_duration_seconds_bucket{le=\"10\"} 3",
	"walcount_batch_duration_seconds_bucket{le=\"+Inf\"} 3",
	"walcount_batch_duration_seconds_sum 3.19140625",
	"walcount_batch_duration_seconds_count 3",
	"walcount_commit_to_apply_seconds_bucket{le=\"0.001\"} 1",
	"walcount_commit_to_apply_seconds_bucket{le=\"0.25\"} 1",
	"walcount_commit_to_apply_seconds_bucket{le=\"0.5\"} 2",
	"walcount_commit_to_apply_seconds_bucket{le=\"10\"} 2",
	"walcount_commit_to_apply_seconds_bucket{le=\"+Inf\"} 3",
	"walcount_commit_to_apply_seconds_sum 20.5",
	"walcount_commit_to_apply_seconds_count 3",
	"walcount_applied_lsn 97500059720",
	"walcount_lag_bytes 4096",
	"walcount_slot_retained_wal_bytes -1",
	"walcount_slot_active 1",
	"walcount_slot_wal_status{status=\"reserved\"} 1",
	"walcount_slot_wal_status{status=\"extended\"} 0",
	"walcount_slot_wal_status{status=\"unreserved\"} 0",
	"walcount_slot_wal_status{status=\"lost\"} 0",
	"walcount_standbys 2",
	"walcount_connected 1",
	"walcount_lag_seconds 0",
	"walcount_reconnects_total 2",
	"walcount_reconcile_corrected_total{table=\"aggregate_track\",column=\"save_count\"} 7",
	"walcount_reconcile_corrected_total{table=\"aggregate_user\",column=\"repost_count\"} 0",
	"walcount_reconcile_duration_seconds 1.25",
};

static void test_render_updates(void **state)
{
	char *text;

	(void) state;
	apply_updates();
	metrics_health(true, true);
	text = render();
	for (size_t i = 0; i < ARRAY_LEN(updated_lines); i++)
		assert_line(text, updated_lines[i]);
	free(text);
	metrics_health(false, true);
}

/* Every histogram's buckets are non-decreasing in le order and its +Inf
 * bucket equals its _count. */
static void check_histogram(const char *text, const char *name)
{
	char prefix[128], count_line[160];
	unsigned long long prev = 0, v = 0;
	const char *p = text;
	int buckets = 0;

	snprintf(prefix, sizeof prefix, "\n%s_bucket{le=\"", name);
	while ((p = strstr(p, prefix)) != NULL) {
		p = strchr(p + strlen(prefix), '}');
		assert_int_equal(sscanf(p, "} %llu", &v), 1);
		assert_true(v >= prev);
		prev = v;
		buckets++;
	}
	assert_int_equal(buckets, 14);
	snprintf(count_line, sizeof count_line, "%s_count %llu", name, v);
	assert_line(text, count_line);
}

static void test_histograms_cumulative(void **state)
{
	char *text = render();

	(void) state;
	check_histogram(text, "walcount_batch_duration_seconds");
	check_histogram(text, "walcount_commit_to_apply_seconds");
	free(text);
}

static const struct {
	const char *name, *type;
} families[] = {
	{"walcount_up", "gauge"},
	{"walcount_build_info", "gauge"},
	{"process_cpu_seconds_total", "counter"},
	{"process_resident_memory_bytes", "gauge"},
	{"process_virtual_memory_bytes", "gauge"},
	{"process_start_time_seconds", "gauge"},
	{"process_open_fds", "gauge"},
	{"process_max_fds", "gauge"},
	{"walcount_changes_total", "counter"},
	{"walcount_skipped_changes_total", "counter"},
	{"walcount_batches_total", "counter"},
	{"walcount_batch_duration_seconds", "histogram"},
	{"walcount_commit_to_apply_seconds", "histogram"},
	{"walcount_applied_lsn", "gauge"},
	{"walcount_lag_bytes", "gauge"},
	{"walcount_slot_retained_wal_bytes", "gauge"},
	{"walcount_slot_active", "gauge"},
	{"walcount_slot_wal_status", "gauge"},
	{"walcount_standbys", "gauge"},
	{"walcount_lag_seconds", "gauge"},
	{"walcount_connected", "gauge"},
	{"walcount_standby", "gauge"},
	{"walcount_starting", "gauge"},
	{"walcount_reconnects_total", "counter"},
	{"walcount_rebuilds_total", "counter"},
	{"walcount_reconcile_corrected_total", "counter"},
	{"walcount_reconcile_duration_seconds", "gauge"},
	{"walcount_reconcile_failures_total", "counter"},
	{"walcount_reconcile_last_success_timestamp_seconds", "gauge"},
	{"walcount_reconcile_enabled", "gauge"},
	{"walcount_checkpoint_interval_seconds", "gauge"},
	{"walcount_prerequisite_violations_total", "counter"},
	{"walcount_counts_stale", "gauge"},
	{"walcount_reconcile_pause_seconds", "histogram"},
};

static void test_help_and_type(void **state)
{
	char *text = render(), line[160];
	int types = 0;

	(void) state;
	for (size_t i = 0; i < ARRAY_LEN(families); i++) {
		snprintf(line, sizeof line, "# HELP %s ", families[i].name);
		assert_non_null(strstr(text, line));
		snprintf(line, sizeof line, "# TYPE %s %s", families[i].name, families[i].type);
		assert_line(text, line);
	}
	for (const char *p = text; (p = strstr(p, "# TYPE ")) != NULL; p++)
		types++;
	assert_int_equal(types, (int) ARRAY_LEN(families));
	free(text);
}

/* Every row action and skip reason decode.c and delta.c name has its own
 * series, so none is dropped for a spelling of its own. */
static void test_labels_match_names(void **state)
{
	char *text, line[160];

	(void) state;
	for (int a = ACT_INSERT; a <= ACT_TRUNCATE; a++)
		metrics_change(SRC_SAVES, change_action_name((enum change_action) a));
	for (int r = SKIP_NONE + 1; r < SKIP__COUNT; r++)
		metrics_skipped(skip_reason_name((enum skip_reason) r));
	text = render();
	for (int a = ACT_INSERT; a <= ACT_TRUNCATE; a++) {
		snprintf(line, sizeof line, "walcount_changes_total{table=\"saves\",action=\"%s\"} 1",
			 change_action_name((enum change_action) a));
		assert_line(text, line);
	}
	for (int r = SKIP_NONE + 1; r < SKIP__COUNT; r++) {
		/* null_key was counted once before. */
		snprintf(line, sizeof line, "walcount_skipped_changes_total{reason=\"%s\"} %d",
			 skip_reason_name((enum skip_reason) r), r == SKIP_NULL_KEY ? 2 : 1);
		assert_line(text, line);
	}
	free(text);
}

/* A sweep's series appear in counters.h's table and column order, every
 * swept column from the start. */
static void test_corrected_series(void **state)
{
	char *text;

	(void) state;
	metrics_reconcile_corrected(COL_PLAYLIST_SAVE, 3);
	metrics_reconcile_corrected(COL_USER_GENRE, 1);
	text = render();
	assert_line(text, "walcount_reconcile_corrected_total{table=\"aggregate_playlist\",column=\"save_count\"} 3");
	assert_line(text, "walcount_reconcile_corrected_total{table=\"aggregate_user\",column=\"dominant_genre\"} 1");
	const char *user = strstr(text, "column=\"repost_count\"} 0"), *genre = strstr(text, "column=\"dominant_genre\"}"),
		   *track = strstr(text, "table=\"aggregate_track\",column=\"save_count\"} 7");
	assert_true(user != NULL && genre != NULL && track != NULL && user < genre && genre < track);
	assert_line(text, "walcount_reconcile_corrected_total{table=\"aggregate_track\",column=\"comment_count\"} 0");
	free(text);
}

/* Runs promtool on the current exposition when it is installed. */
static void test_promtool(void **state)
{
	char path[] = "/tmp/walcount-metrics-XXXXXX", cmd[128];
	char *text = render();
	int fd = mkstemp(path), rc;

	(void) state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
	close(fd);
	free(text);
	if (access(PROMTOOL, X_OK) != 0) {
		printf("note: %s not found, exposition not checked by promtool\n", PROMTOOL);
		unlink(path);
		return;
	}
	snprintf(cmd, sizeof cmd, "%s check metrics < %s", PROMTOOL, path);
	rc = system(cmd);
	unlink(path);
	assert_true(WIFEXITED(rc));
	assert_int_equal(WEXITSTATUS(rc), 0);
}

/* ---- listen strings ---- */

static void assert_rejected(const char *listen, const char *expect)
{
	char err[256];

	if (http_start(listen, 10000, err, sizeof err)) {
		http_stop();
		print_error("accepted: %s\n", listen);
		fail();
	}
	assert_string_equal(err, expect);
}

static void test_listen_rejected(void **state)
{
	char err[256] = "";

	(void) state;
	assert_rejected("127.0.0.1:x", "metrics.listen '127.0.0.1:x': bad port");
	assert_rejected("127.0.0.1:0", "metrics.listen '127.0.0.1:0': bad port");
	assert_rejected("127.0.0.1:65536", "metrics.listen '127.0.0.1:65536': bad port");
	assert_rejected("127.0.0.1:+80", "metrics.listen '127.0.0.1:+80': bad port");
	assert_rejected("127.0.0.1:", "metrics.listen '127.0.0.1:': bad port");
	assert_rejected("127.0.0.1", "metrics.listen '127.0.0.1': expected host:port");
	assert_rejected(":9187", "metrics.listen ':9187': missing host");
	assert_rejected("[]:9187", "metrics.listen '[]:9187': missing host");
	assert_rejected("::1:9187", "metrics.listen '::1:9187': an IPv6 address needs brackets, as in [::1]:9187");
	assert_rejected("[::1]9187", "metrics.listen '[::1]9187': expected [address]:port");
	assert_rejected("[::1", "metrics.listen '[::1': expected [address]:port");
	/* gai_strerror's wording is libc's; only the prefix is ours. */
	assert_false(http_start("[127.0.0.1]:9187", 10000, err, sizeof err));
	assert_non_null(strstr(err, "metrics.listen '[127.0.0.1]:9187': cannot resolve '127.0.0.1': "));
	err[0] = '\0';
	/* Empty means disabled: success, nothing started. */
	assert_true(http_start("", 10000, err, sizeof err));
	assert_string_equal(err, "");
	http_stop();
}

/* ---- HTTP ---- */

struct reply {
	int status;
	char raw[65536];
	const char *body;
};

static int connect_to(int family, const char *addr, int port)
{
	struct sockaddr_storage ss = {0};
	struct sockaddr_in *v4 = (struct sockaddr_in *) &ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *) &ss;
	struct timeval tv = {5, 0};
	int fd = socket(family, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
	ss.ss_family = (sa_family_t) family;
	if (family == AF_INET)
		v4->sin_port = htons((uint16_t) port);
	else
		v6->sin6_port = htons((uint16_t) port);
	assert_int_equal(inet_pton(family, addr, family == AF_INET ? (void *) &v4->sin_addr : (void *) &v6->sin6_addr), 1);
	if (connect(fd, (struct sockaddr *) &ss, family == AF_INET ? sizeof *v4 : sizeof *v6) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One HTTP/1.0 request (the server closes after the reply); returns the
 * status, or -1 when nothing listens. */
static int request(int family, const char *addr, int port, const char *method, const char *path, struct reply *r)
{
	char req[256];
	size_t len = 0;
	ssize_t n;
	int fd = connect_to(family, addr, port);

	if (fd < 0)
		return r->status = -1;
	snprintf(req, sizeof req, "%s %s HTTP/1.0\r\nHost: test\r\nContent-Length: 0\r\n\r\n", method, path);
	assert_int_equal(write(fd, req, strlen(req)), (ssize_t) strlen(req));
	while ((n = read(fd, r->raw + len, sizeof r->raw - 1 - len)) > 0)
		len += (size_t) n;
	assert_true(n == 0);
	close(fd);
	r->raw[len] = '\0';
	assert_int_equal(sscanf(r->raw, "HTTP/1.%*d %d", &r->status), 1);
	r->body = strstr(r->raw, "\r\n\r\n");
	assert_non_null(r->body);
	r->body += 4;
	return r->status;
}

static int get(int port, const char *path, struct reply *r)
{
	return request(AF_INET, "127.0.0.1", port, "GET", path, r);
}

/* Starts the listener on host at the first free port from a pid-derived
 * base, so parallel runs rarely collide. Returns the port. */
static int start_on(const char *host)
{
	char listen[64], err[256];
	int base = 20000 + (int) (getpid() % 20000);

	for (int port = base; port < base + 20; port++) {
		snprintf(listen, sizeof listen, "%s:%d", host, port);
		if (http_start(listen, 10000, err, sizeof err))
			return port;
		if (strstr(err, strerror(EADDRINUSE)) == NULL) {
			print_error("%s\n", err);
			return -1;
		}
	}
	return -1;
}

static void test_http(void **state)
{
	static struct reply r;
	char err[256];
	int port = start_on("127.0.0.1");

	(void) state;
	assert_true(port > 0);
	assert_int_equal(get(port, "/metrics", &r), 200);
	assert_non_null(strstr(r.raw, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
	assert_line(r.body, "walcount_batches_total 3");
	assert_int_equal(get(port, "/metrics?x=1", &r), 200);
	assert_int_equal(get(port, "/nope", &r), 404);
	assert_int_equal(request(AF_INET, "127.0.0.1", port, "POST", "/metrics", &r), 405);
	assert_non_null(strstr(r.raw, "Allow: GET\r\n"));
	assert_false(http_start("127.0.0.1:1", 10000, err, sizeof err));
	assert_string_equal(err, "metrics.listen '127.0.0.1:1': the metrics listener is already running");
	http_stop();
	http_stop();
	assert_int_equal(get(port, "/metrics", &r), -1);
}

static void test_healthz(void **state)
{
	static struct reply r;
	int port = start_on("127.0.0.1");

	(void) state;
	assert_true(port > 0);
	assert_int_equal(get(port, "/healthz", &r), 503);
	assert_string_equal(r.body, "not streaming\n");
	metrics_health(true, true);
	assert_int_equal(get(port, "/healthz", &r), 200);
	assert_string_equal(r.body, "ok\n");
	metrics_health(true, false);
	assert_int_equal(get(port, "/healthz", &r), 503);
	assert_string_equal(r.body, "last batch failed\n");
	metrics_health(false, false);
	assert_int_equal(get(port, "/healthz", &r), 503);
	assert_string_equal(r.body, "not streaming\n");
	http_stop();
}

/* walcount_starting follows metrics_starting, and is no health: /healthz
 * still answers 503 during a load, which is not streaming. */
static void test_starting(void **state)
{
	char *text;
	const char *body;

	(void) state;
	metrics_starting(true);
	text = render();
	assert_line(text, "walcount_starting 1");
	assert_line(text, "walcount_connected 0");
	free(text);
	assert_false(metrics_healthy(&body));
	metrics_starting(false);
	text = render();
	assert_line(text, "walcount_starting 0");
	free(text);
}

static void test_localhost_and_ipv6(void **state)
{
	static struct reply r;
	int port;

	(void) state;
	assert_true((port = start_on("localhost")) > 0);
	assert_int_equal(get(port, "/healthz", &r), 503);
	http_stop();
	if ((port = start_on("[::1]")) < 0) {
		printf("note: no IPv6 loopback here, [::1] not tested\n");
		return;
	}
	assert_int_equal(request(AF_INET6, "::1", port, "GET", "/metrics", &r), 200);
	http_stop();
}

/* A taken port fails with the address and the system's reason. */
static void test_bind_conflict(void **state)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	char addr[64], err[256], expect[160];
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	(void) state;
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0); /* any free port */
	assert_int_equal(listen(fd, 1), 0);
	socklen_t len = sizeof sa;
	assert_int_equal(getsockname(fd, (struct sockaddr *) &sa, &len), 0);
	snprintf(addr, sizeof addr, "127.0.0.1:%d", ntohs(sa.sin_port));
	assert_false(http_start(addr, 10000, err, sizeof err));
	snprintf(expect, sizeof expect, "metrics.listen '%s': cannot listen: %s", addr, strerror(EADDRINUSE));
	assert_string_equal(err, expect);
	close(fd);
}

/* A lost stream takes the slot samples away until a refresh after the
 * next connection; a rebuild is counted under its reason. */
static void test_released_and_rebuilds(void **state)
{
	char *text;

	(void) state;
	metrics_health(true, true);
	metrics_slot(&(struct slot_gauges){0, 0, true, "lost", 0});
	text = render();
	assert_line(text, "walcount_slot_wal_status{status=\"lost\"} 1");
	assert_line(text, "walcount_slot_wal_status{status=\"reserved\"} 0");
	free(text);
	metrics_health(false, true);
	metrics_slot_released();
	metrics_rebuild(REBUILD_SLOT_MISSING);
	text = render();
	for (size_t i = 0; i < ARRAY_LEN(slot_families); i++)
		assert_false(has_sample(text, slot_families[i]));
	assert_line(text, "walcount_connected 0");
	/* Connected again, but not refreshed yet: still no slot sample. */
	metrics_health(true, true);
	free(text);
	text = render();
	assert_false(has_sample(text, "walcount_slot_active"));
	assert_true(has_sample(text, "walcount_lag_seconds"));
	metrics_health(false, true);
	assert_line(text, "walcount_rebuilds_total{reason=\"slot_missing\"} 1");
	assert_line(text, "walcount_rebuilds_total{reason=\"slot_ahead\"} 0");
	free(text);
}

static double sample_value(const char *text, const char *series)
{
	char prefix[160];
	const char *p;

	snprintf(prefix, sizeof prefix, "\n%s ", series);
	p = strstr(text, prefix);
	assert_non_null(p);
	return strtod(p + strlen(prefix), NULL);
}

/* walcount_lag_seconds is the age of the oldest unapplied commit while
 * connected, 0 once everything received is applied. */
static void test_lag_seconds(void **state)
{
	struct timespec ts;
	char *text;

	(void) state;
	clock_gettime(CLOCK_REALTIME, &ts);
	metrics_health(true, true);
	metrics_unapplied_since((int64_t) ts.tv_sec * 1000000 - 5000000);
	text = render();
	double lag = sample_value(text, "walcount_lag_seconds");
	assert_true(lag >= 5 && lag < 65);
	free(text);
	/* A commit time ahead of this host's clock (skew) reads 0, not < 0. */
	metrics_unapplied_since((int64_t) ts.tv_sec * 1000000 + 3600000000);
	text = render();
	assert_line(text, "walcount_lag_seconds 0");
	free(text);
	metrics_unapplied_since(0);
	text = render();
	assert_line(text, "walcount_lag_seconds 0");
	free(text);
	metrics_health(false, true);
}

/* The build and the process, as the client libraries export them. */
static void test_build_and_process(void **state)
{
	char *text = render(), line[160];
	struct timespec ts;

	(void) state;
	snprintf(line, sizeof line, "walcount_build_info{version=\"%s\",revision=\"%s\"} 1", WALCOUNT_VERSION, walcount_revision);
	assert_line(text, line);
	clock_gettime(CLOCK_REALTIME, &ts);
	double start = sample_value(text, "process_start_time_seconds");
	assert_true(start > (double) ts.tv_sec - 3600 && start <= (double) ts.tv_sec + 1);
	assert_true(sample_value(text, "process_resident_memory_bytes") > 0);
	assert_true(sample_value(text, "process_cpu_seconds_total") >= 0);
	/* stdin, stdout, stderr at least; the limit is above them. */
	double fds = sample_value(text, "process_open_fds");
	assert_true(fds >= 3 && sample_value(text, "process_max_fds") > fds);
	free(text);
}

/* Sweep outcomes and the configuration the "sweep not run" alert reads. */
static void test_reconcile_done(void **state)
{
	struct timespec ts;
	char *text;

	(void) state;
	metrics_reconcile_config(true, 600);
	metrics_reconcile_done(false);
	metrics_reconcile_done(true);
	clock_gettime(CLOCK_REALTIME, &ts);
	text = render();
	assert_line(text, "walcount_reconcile_failures_total 1");
	assert_line(text, "walcount_reconcile_enabled 1");
	assert_line(text, "walcount_checkpoint_interval_seconds 600");
	double at = sample_value(text, "walcount_reconcile_last_success_timestamp_seconds");
	assert_true(at > (double) ts.tv_sec - 5 && at <= (double) ts.tv_sec + 1);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render_initial),
		cmocka_unit_test(test_render_updates),
		cmocka_unit_test(test_histograms_cumulative),
		cmocka_unit_test(test_help_and_type),
		cmocka_unit_test(test_labels_match_names),
		cmocka_unit_test(test_corrected_series),
		cmocka_unit_test(test_promtool),
		cmocka_unit_test(test_listen_rejected),
		cmocka_unit_test(test_http),
		cmocka_unit_test(test_healthz),
		cmocka_unit_test(test_starting),
		cmocka_unit_test(test_localhost_and_ipv6),
		cmocka_unit_test(test_bind_conflict),
		cmocka_unit_test(test_released_and_rebuilds),
		cmocka_unit_test(test_lag_seconds),
		cmocka_unit_test(test_build_and_process),
		cmocka_unit_test(test_reconcile_done),
		cmocka_unit_test(test_promtool),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
