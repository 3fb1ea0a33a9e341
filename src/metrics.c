#include "metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "clock.h"
#include "log.h"
#include "ratelimit.h"

#define N_TABLES (SRC_FOLLOWS - SRC_REPOSTS + 1)
#define N_ACTIONS (ACT_TRUNCATE - ACT_INSERT + 1)
#define N_BUCKETS 13

/* Reconcile series are keyed by a caller's string; the schema has a dozen
 * aggregate columns, so this only bounds memory against a caller bug. */
#define RECONCILE_SERIES_MAX 64

/* Bounds on the HTTP server (issue 12: 1,100 idle connections pushed
 * walcount's descriptors past FD_SETSIZE). A scraper or client that stops
 * reading or sending is dropped after the timeout; at most CONNECTION_LIMIT
 * connections are served at once, PER_IP_LIMIT of them from one address,
 * so one flooding host cannot lock out the scraper on another. Prometheus
 * needs one connection per scraper. */
#define CONNECTION_TIMEOUT_S 10u
#define CONNECTION_LIMIT 64u
#define PER_IP_LIMIT 16u

/* MHD logs one line per refused connection: a flood would flood the log. */
#define MHD_LOG_BURST 5u
#define MHD_LOG_INTERVAL_MS 10000

#define EXPOSITION_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define TEXT_TYPE "text/plain; charset=utf-8"

/* Finite upper bounds; +Inf is the count. Lags are usually sub-second. */
static const double bucket_bounds[N_BUCKETS] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

struct histogram {
	uint64_t le[N_BUCKETS];  /* cumulative: observations <= bucket_bounds[i] */
	uint64_t count;
	double sum;
};

struct corrected_series {
	enum agg_table table;
	char *column;
	uint64_t n;
};

/* Written by the consumer thread, read by the HTTP thread: every field is
 * accessed under lock. batches_total is batch_duration.count. */
static struct {
	pthread_mutex_t lock;
	uint64_t changes[N_TABLES][N_ACTIONS];
	uint64_t skipped[SKIP__COUNT];
	struct histogram batch_duration;
	struct histogram commit_to_apply;
	lsn_t applied_lsn;
	int64_t lag_bytes;
	int64_t retained_wal_bytes;
	bool slot_active;
	uint64_t reconnects;
	uint64_t rebuilds[REBUILD__COUNT];
	struct corrected_series *corrected;
	size_t n_corrected, cap_corrected;
	bool corrected_overflow_logged;
	double reconcile_seconds;
	bool streaming;
	bool last_batch_ok;
	bool standby;
	uint64_t violations[CHECK__COUNT];
	bool counts_stale;
} m = {.lock = PTHREAD_MUTEX_INITIALIZER, .last_batch_ok = true};

/* Only metrics_start and metrics_stop touch it, from the main thread. */
static struct MHD_Daemon *httpd;

/* MHD's messages come from its thread and from the main thread. */
static struct {
	pthread_mutex_t lock;
	struct ratelimit limit;
} mhd_log_limit = {PTHREAD_MUTEX_INITIALIZER, RATELIMIT_INIT(MHD_LOG_INTERVAL_MS, MHD_LOG_BURST)};

/* ---- updates ---- */

/* Negative durations come from clock skew between the server, whose commit
 * timestamps we read, and this host; they count as 0. So does NaN, which
 * would otherwise poison the sum. */
static void observe(struct histogram *h, double seconds)
{
	if (isnan(seconds) || seconds < 0)
		seconds = 0;
	for (int i = 0; i < N_BUCKETS; i++)
		if (seconds <= bucket_bounds[i])
			h->le[i]++;
	h->count++;
	h->sum += seconds;
}

void metrics_change(enum src_table table, enum change_action action)
{
	if (table < SRC_REPOSTS || table > SRC_FOLLOWS || action < ACT_INSERT || action > ACT_TRUNCATE)
		return;
	pthread_mutex_lock(&m.lock);
	m.changes[table - SRC_REPOSTS][action - ACT_INSERT]++;
	pthread_mutex_unlock(&m.lock);
}

void metrics_skipped(enum skip_reason reason)
{
	if (reason <= SKIP_NONE || reason >= SKIP__COUNT)
		return;
	pthread_mutex_lock(&m.lock);
	m.skipped[reason]++;
	pthread_mutex_unlock(&m.lock);
}

void metrics_prerequisite_violation(enum prereq_check check)
{
	if (check >= CHECK__COUNT)
		return;
	pthread_mutex_lock(&m.lock);
	m.violations[check]++;
	pthread_mutex_unlock(&m.lock);
}

void metrics_counts_stale(bool stale)
{
	pthread_mutex_lock(&m.lock);
	m.counts_stale = stale;
	pthread_mutex_unlock(&m.lock);
}

void metrics_batch(double seconds, lsn_t applied)
{
	pthread_mutex_lock(&m.lock);
	observe(&m.batch_duration, seconds);
	m.applied_lsn = applied;
	pthread_mutex_unlock(&m.lock);
}

void metrics_commit_to_apply(double seconds)
{
	pthread_mutex_lock(&m.lock);
	observe(&m.commit_to_apply, seconds);
	pthread_mutex_unlock(&m.lock);
}

void metrics_reconnect(void)
{
	pthread_mutex_lock(&m.lock);
	m.reconnects++;
	pthread_mutex_unlock(&m.lock);
}

void metrics_slot(int64_t lag_bytes, int64_t retained_wal_bytes, bool active)
{
	pthread_mutex_lock(&m.lock);
	m.lag_bytes = lag_bytes;
	m.retained_wal_bytes = retained_wal_bytes;
	m.slot_active = active;
	pthread_mutex_unlock(&m.lock);
}

void metrics_slot_released(void)
{
	pthread_mutex_lock(&m.lock);
	m.slot_active = false;
	pthread_mutex_unlock(&m.lock);
}

void metrics_rebuild(enum rebuild_reason reason)
{
	if ((unsigned) reason >= REBUILD__COUNT)
		return;
	pthread_mutex_lock(&m.lock);
	m.rebuilds[reason]++;
	pthread_mutex_unlock(&m.lock);
}

/* Appends a zero series for (table, column) and returns it; NULL when the
 * list is full or memory is short (the caller drops the update: metrics
 * must not fail the consumer). Called with the lock held. */
static struct corrected_series *add_corrected(enum agg_table table, const char *column)
{
	if (m.n_corrected == m.cap_corrected) {
		size_t cap = m.cap_corrected ? m.cap_corrected * 2 : 8;
		struct corrected_series *v;

		if (cap > RECONCILE_SERIES_MAX)
			return NULL;
		if ((v = realloc(m.corrected, cap * sizeof *v)) == NULL)
			return NULL;
		m.corrected = v;
		m.cap_corrected = cap;
	}
	char *copy = strdup(column);
	if (copy == NULL)
		return NULL;
	m.corrected[m.n_corrected] = (struct corrected_series){table, copy, 0};
	return &m.corrected[m.n_corrected++];
}

/* The series for (table, column), created on first use. Lock held. */
static struct corrected_series *corrected_series(enum agg_table table, const char *column)
{
	for (size_t i = 0; i < m.n_corrected; i++)
		if (m.corrected[i].table == table && strcmp(m.corrected[i].column, column) == 0)
			return &m.corrected[i];
	return add_corrected(table, column);
}

void metrics_reconcile_corrected(enum agg_table table, const char *column, uint64_t n)
{
	struct corrected_series *s;

	if (table >= AGG__COUNT || column == NULL)
		return;
	pthread_mutex_lock(&m.lock);
	if ((s = corrected_series(table, column)) != NULL)
		s->n += n;
	else if (!m.corrected_overflow_logged) {
		m.corrected_overflow_logged = true;
		log_warn("metrics: no room for reconcile series %s.%s; dropping its corrections",
			 agg_table_name(table), column);
	}
	pthread_mutex_unlock(&m.lock);
}

void metrics_reconcile_duration(double seconds)
{
	pthread_mutex_lock(&m.lock);
	m.reconcile_seconds = seconds;
	pthread_mutex_unlock(&m.lock);
}

void metrics_health(bool streaming, bool last_batch_ok)
{
	pthread_mutex_lock(&m.lock);
	m.streaming = streaming;
	m.last_batch_ok = last_batch_ok;
	pthread_mutex_unlock(&m.lock);
}

void metrics_standby(bool standby)
{
	pthread_mutex_lock(&m.lock);
	m.standby = standby;
	pthread_mutex_unlock(&m.lock);
}

/* ---- rendering ---- */

/* A growable string. After a failed allocation every append is a no-op and
 * buf_finish returns NULL, so render code needs no error checks. */
struct buf {
	char *data;
	size_t len, cap;
	bool failed;
};

/* Makes room for extra more bytes plus the NUL. */
static bool buf_reserve(struct buf *b, size_t extra)
{
	size_t cap = b->cap ? b->cap : 4096;
	char *p;

	if (b->failed)
		return false;
	if (b->len + extra < b->cap)
		return true;
	while (cap <= b->len + extra)
		cap *= 2;
	if ((p = realloc(b->data, cap)) == NULL) {
		b->failed = true;
		return false;
	}
	b->data = p;
	b->cap = cap;
	return true;
}

static void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		b->failed = true;
	if (n < 0 || !buf_reserve(b, (size_t) n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t) n;
}

static void buf_putc(struct buf *b, char c)
{
	if (!buf_reserve(b, 1))
		return;
	b->data[b->len++] = c;
	b->data[b->len] = '\0';
}

/* A label value as the exposition format escapes it: \\, \" and \n. */
static void buf_label_value(struct buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"' || *s == '\n')
			buf_putc(b, '\\');
		buf_putc(b, *s == '\n' ? 'n' : *s);
	}
}

/* The shortest of %.15g and %.17g that reads back as v, so 0.1 prints as
 * "0.1" yet no value loses precision; non-finite values as Prometheus
 * spells them. */
static void buf_double(struct buf *b, double v)
{
	char s[32];

	if (isnan(v) || isinf(v)) {
		buf_printf(b, "%s", isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf");
		return;
	}
	snprintf(s, sizeof s, "%.15g", v);
	if (strtod(s, NULL) != v)
		snprintf(s, sizeof s, "%.17g", v);
	buf_printf(b, "%s", s);
}

static void family(struct buf *b, const char *name, const char *type, const char *help)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void render_changes(struct buf *b)
{
	family(b, "walcount_changes_total", "counter",
	       "Row changes received from the stream, by source table and action.");
	for (int t = 0; t < N_TABLES; t++)
		for (int a = 0; a < N_ACTIONS; a++)
			buf_printf(b, "walcount_changes_total{table=\"%s\",action=\"%s\"} %" PRIu64 "\n",
				   src_table_name((enum src_table) (SRC_REPOSTS + t)),
				   change_action_name((enum change_action) (ACT_INSERT + a)), m.changes[t][a]);
}

static void render_skipped(struct buf *b)
{
	family(b, "walcount_skipped_changes_total", "counter",
	       "Row changes left uncounted because an image cannot be counted, by reason.");
	for (int r = SKIP_NONE + 1; r < SKIP__COUNT; r++)
		buf_printf(b, "walcount_skipped_changes_total{reason=\"%s\"} %" PRIu64 "\n",
			   skip_reason_name((enum skip_reason) r), m.skipped[r]);
}

static void render_prerequisites(struct buf *b)
{
	static const char *const checks[CHECK__COUNT] = {
		[CHECK_SOURCE_TABLES] = "source_tables",
		[CHECK_REPLICA_IDENTITY] = "replica_identity",
		[CHECK_SLOT_PLUGIN] = "slot_plugin",
	};

	family(b, "walcount_prerequisite_violations_total", "counter",
	       "Prerequisites found broken while running (each time one breaks), by check.");
	for (int i = 0; i < CHECK__COUNT; i++)
		buf_printf(b, "walcount_prerequisite_violations_total{check=\"%s\"} %" PRIu64 "\n", checks[i],
			   m.violations[i]);
	family(b, "walcount_counts_stale", "gauge",
	       "1 while changes may be missing from the counts (a prerequisite broke or a change was skipped for its "
	       "replica identity) until a reconcile sweep recounts them, else 0.");
	buf_printf(b, "walcount_counts_stale %d\n", m.counts_stale ? 1 : 0);
}

static void render_histogram(struct buf *b, const char *name, const char *help, const struct histogram *h)
{
	family(b, name, "histogram", help);
	for (int i = 0; i < N_BUCKETS; i++)
		buf_printf(b, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, bucket_bounds[i], h->le[i]);
	buf_printf(b, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n%s_sum ", name, h->count, name);
	buf_double(b, h->sum);
	buf_printf(b, "\n%s_count %" PRIu64 "\n", name, h->count);
}

static void render_batches(struct buf *b)
{
	family(b, "walcount_batches_total", "counter", "Batches applied and committed.");
	buf_printf(b, "walcount_batches_total %" PRIu64 "\n", m.batch_duration.count);
	render_histogram(b, "walcount_batch_duration_seconds",
			 "Time to apply and commit one batch.", &m.batch_duration);
	render_histogram(b, "walcount_commit_to_apply_seconds",
			 "Time from a source transaction's commit to the commit of the batch that applied it.",
			 &m.commit_to_apply);
}

/* Where the stream stands: applied LSN, lag, the slot, reconnects. */
static void render_stream(struct buf *b)
{
	family(b, "walcount_applied_lsn", "gauge", "Commit end LSN of the last applied batch, as a number.");
	buf_printf(b, "walcount_applied_lsn %" PRIu64 "\n", m.applied_lsn);
	family(b, "walcount_lag_bytes", "gauge", "Current WAL LSN minus the applied LSN, in bytes.");
	buf_printf(b, "walcount_lag_bytes %" PRId64 "\n", m.lag_bytes);
	family(b, "walcount_slot_retained_wal_bytes", "gauge", "WAL the replication slot retains, in bytes.");
	buf_printf(b, "walcount_slot_retained_wal_bytes %" PRId64 "\n", m.retained_wal_bytes);
	family(b, "walcount_slot_active", "gauge", "1 when the replication slot is in use, else 0.");
	buf_printf(b, "walcount_slot_active %d\n", m.slot_active ? 1 : 0);
	family(b, "walcount_standby", "gauge", "1 while this instance stands by for a slot another process streams from.");
	buf_printf(b, "walcount_standby %d\n", m.standby ? 1 : 0);
	family(b, "walcount_reconnects_total", "counter", "Reconnections to the server after a lost connection.");
	buf_printf(b, "walcount_reconnects_total %" PRIu64 "\n", m.reconnects);
	static const char *const rebuild_names[REBUILD__COUNT] = {"slot_missing", "no_progress", "wal_lost", "slot_ahead"};
	family(b, "walcount_rebuilds_total", "counter",
	       "Slots created again with an exact recount, by reason (slot_missing: a promoted server or a dropped slot).");
	for (int r = 0; r < REBUILD__COUNT; r++)
		buf_printf(b, "walcount_rebuilds_total{reason=\"%s\"} %" PRIu64 "\n", rebuild_names[r], m.rebuilds[r]);
}

static void render_reconcile(struct buf *b)
{
	family(b, "walcount_reconcile_corrected_total", "counter",
	       "Aggregate cells a reconcile sweep corrected, by table and column.");
	for (size_t i = 0; i < m.n_corrected; i++) {
		buf_printf(b, "walcount_reconcile_corrected_total{table=\"%s\",column=\"",
			   agg_table_name(m.corrected[i].table));
		buf_label_value(b, m.corrected[i].column);
		buf_printf(b, "\"} %" PRIu64 "\n", m.corrected[i].n);
	}
	family(b, "walcount_reconcile_duration_seconds", "gauge", "Duration of the last reconcile sweep.");
	buf_printf(b, "walcount_reconcile_duration_seconds ");
	buf_double(b, m.reconcile_seconds);
	buf_putc(b, '\n');
}

/* The lock is held for the whole rendering so a scrape sees one instant:
 * batches_total never disagrees with the applied LSN. Rendering takes
 * microseconds; the consumer waits at most that long. */
char *metrics_render(void)
{
	struct buf b = {0};

	family(&b, "walcount_up", "gauge", "1 while walcount runs.");
	buf_printf(&b, "walcount_up 1\n");
	pthread_mutex_lock(&m.lock);
	render_changes(&b);
	render_skipped(&b);
	render_prerequisites(&b);
	render_batches(&b);
	render_stream(&b);
	render_reconcile(&b);
	pthread_mutex_unlock(&m.lock);
	if (b.failed) {
		free(b.data);
		return NULL;
	}
	return b.data;
}

/* ---- HTTP ---- */

/* Queues body with status. MHD frees body when mode says MUST_FREE, and so
 * does this function when no response could be made. */
static enum MHD_Result reply(struct MHD_Connection *conn, unsigned int status, const char *type, char *body,
			     enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, mode);
	enum MHD_Result ret;

	if (r == NULL) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type) == MHD_NO ||
	    (status == MHD_HTTP_METHOD_NOT_ALLOWED &&
	     MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, MHD_HTTP_METHOD_GET) == MHD_NO)) {
		MHD_destroy_response(r);
		return MHD_NO;
	}
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* MHD's buffer parameter is not const, but PERSISTENT memory is only read
 * (the cast through uintptr_t says so to -Wcast-qual). */
static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned int status, const char *text)
{
	return reply(conn, status, TEXT_TYPE, (char *) (uintptr_t) text, MHD_RESPMEM_PERSISTENT);
}

static enum MHD_Result reply_metrics(struct MHD_Connection *conn)
{
	char *text = metrics_render();

	if (text == NULL)
		return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	return reply(conn, MHD_HTTP_OK, EXPOSITION_TYPE, text, MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result reply_health(struct MHD_Connection *conn)
{
	const char *reason = NULL;

	bool standby;

	pthread_mutex_lock(&m.lock);
	standby = m.standby;
	if (!m.streaming)
		reason = "not streaming\n";
	else if (!m.last_batch_ok)
		reason = "last batch failed\n";
	pthread_mutex_unlock(&m.lock);
	/* A standby is healthy: it waits by design, and an orchestrator that
	 * restarted it for that would only lose the spare. */
	if (standby)
		return reply_text(conn, MHD_HTTP_OK, "standby\n");
	if (reason != NULL)
		return reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, reason);
	return reply_text(conn, MHD_HTTP_OK, "ok\n");
}

/* Every request is answered on its first call, when only the headers are
 * in: no route takes a body. */
static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
			      const char *version, const char *upload_data, size_t *upload_data_size,
			      void **req_cls)
{
	(void) cls;
	(void) version;
	(void) upload_data;
	(void) upload_data_size;
	(void) req_cls;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
		return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
	if (strcmp(url, "/metrics") == 0)
		return reply_metrics(conn);
	if (strcmp(url, "/healthz") == 0)
		return reply_health(conn);
	return reply_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
}

static void log_suppressed(uint64_t n)
{
	if (n > 0)
		log_warn("metrics: suppressed %" PRIu64 " more HTTP server messages (at most %u per %d s are logged)", n,
			 MHD_LOG_BURST, MHD_LOG_INTERVAL_MS / 1000);
}

/* Set while metrics_start runs: its failure is reported as one line of its
 * own, so MHD's message about the same bind is dropped. */
static atomic_bool starting;

/* MHD's own messages (refused connections, accept errors) go to walcount's
 * log, rate-limited. errno is kept: metrics_start reads the failed bind's
 * errno after MHD_start_daemon has logged it. */
static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	int saved = errno;
	char msg[512];
	uint64_t dropped;
	bool allowed;

	(void) cls;
	if (atomic_load(&starting))
		return;
	vsnprintf(msg, sizeof msg, fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	pthread_mutex_lock(&mhd_log_limit.lock);
	allowed = ratelimit_allow(&mhd_log_limit.limit, clock_now_ms(), &dropped);
	pthread_mutex_unlock(&mhd_log_limit.lock);
	log_suppressed(dropped);
	if (allowed)
		log_warn("metrics: %s", msg);
	errno = saved;
}

/* ---- listen address ---- */

struct listen_addr {
	char host[NI_MAXHOST];
	uint16_t port;
	char service[6];        /* the port in decimal, for getaddrinfo */
	int family;             /* AF_INET, or AF_INET6 when bracketed */
};

static bool listen_fail(char *err, size_t errlen, const char *listen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Writes "metrics.listen '<listen>': <reason>" into err; returns false. */
static bool listen_fail(char *err, size_t errlen, const char *listen, const char *fmt, ...)
{
	char reason[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "metrics.listen '%s': %s", listen, reason);
	return false;
}

/* Decimal 1..65535, digits only (no sign, no spaces). */
static bool parse_port(const char *s, struct listen_addr *a)
{
	unsigned long v = 0;

	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9' || (v = v * 10 + (unsigned long) (*s - '0')) > 65535)
			return false;
	}
	a->port = (uint16_t) v;
	snprintf(a->service, sizeof a->service, "%lu", v);
	return v != 0;
}

/* Splits "host:port" or "[v6]:port". A bare IPv6 address is refused: its
 * last colon would be read as the port separator. */
static bool parse_listen(const char *listen, struct listen_addr *a, char *err, size_t errlen)
{
	const char *host = listen, *end, *port; /* the host is [host, end) */

	if (listen[0] == '[') {
		host = listen + 1;
		if ((end = strchr(host, ']')) == NULL || end[1] != ':')
			return listen_fail(err, errlen, listen, "expected [address]:port");
		port = end + 2;
		a->family = AF_INET6;
	} else {
		if ((end = strrchr(listen, ':')) == NULL)
			return listen_fail(err, errlen, listen, "expected host:port");
		if (memchr(listen, ':', (size_t) (end - listen)) != NULL)
			return listen_fail(err, errlen, listen, "an IPv6 address needs brackets, as in [::1]:9187");
		port = end + 1;
		a->family = AF_INET;
	}
	if (end == host)
		return listen_fail(err, errlen, listen, "missing host");
	if ((size_t) (end - host) >= sizeof a->host)
		return listen_fail(err, errlen, listen, "host too long");
	memcpy(a->host, host, (size_t) (end - host));
	a->host[end - host] = '\0';
	if (!parse_port(port, a))
		return listen_fail(err, errlen, listen, "bad port");
	return true;
}

/* "localhost" and other names resolve to IPv4 only (AF_INET), as the
 * bracket-free form promises; a bracketed host must be a numeric IPv6
 * address. */
static bool resolve(const char *listen, const struct listen_addr *a, struct addrinfo **out, char *err,
		    size_t errlen)
{
	struct addrinfo hints = {
		.ai_family = a->family,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICSERV | (a->family == AF_INET6 ? AI_NUMERICHOST : 0),
	};
	int rc = getaddrinfo(a->host, a->service, &hints, out);

	if (rc != 0)
		return listen_fail(err, errlen, listen, "cannot resolve '%s': %s", a->host,
				   rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
	return true;
}

bool metrics_start(const char *listen, char *err, size_t errlen)
{
	/* poll, not select: MHD's select refuses descriptors >= FD_SETSIZE. */
	unsigned int flags = MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
	struct listen_addr a;
	struct addrinfo *ai;
	int bind_errno;

	if (listen == NULL || listen[0] == '\0')
		return true;
	if (httpd != NULL)
		return listen_fail(err, errlen, listen, "the metrics listener is already running");
	if (!parse_listen(listen, &a, err, errlen) || !resolve(listen, &a, &ai, err, errlen))
		return false;
	if (a.family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* MHD reports a failed bind only by returning NULL; its errno is the
	 * one reason we can give. The port argument only labels MHD's log. */
	errno = 0;
	atomic_store(&starting, true);
	httpd = MHD_start_daemon(flags, a.port, NULL, NULL, handle, NULL,
				 MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				 MHD_OPTION_SOCK_ADDR, ai->ai_addr,
				 MHD_OPTION_CONNECTION_TIMEOUT, CONNECTION_TIMEOUT_S,
				 MHD_OPTION_CONNECTION_LIMIT, CONNECTION_LIMIT,
				 MHD_OPTION_PER_IP_CONNECTION_LIMIT, PER_IP_LIMIT,
				 MHD_OPTION_END);
	bind_errno = errno;
	atomic_store(&starting, false);
	freeaddrinfo(ai);
	if (httpd == NULL)
		return listen_fail(err, errlen, listen, "cannot listen: %s",
				   bind_errno != 0 ? strerror(bind_errno) : "the HTTP server did not start");
	return true;
}

void metrics_stop(void)
{
	if (httpd == NULL)
		return;
	MHD_stop_daemon(httpd);
	httpd = NULL;
	pthread_mutex_lock(&mhd_log_limit.lock);
	uint64_t dropped = ratelimit_flush(&mhd_log_limit.limit);
	pthread_mutex_unlock(&mhd_log_limit.lock);
	log_suppressed(dropped);
}
