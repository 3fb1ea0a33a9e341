/* http: the metrics listener, a libmicrohttpd poll thread serving
 * metrics_render() on /metrics and metrics_healthy() on /healthz. */
#include "http.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "ratelimit.h"

/* Bounds on the HTTP server (issue 12: 1,100 idle connections pushed
 * walcount's descriptors past FD_SETSIZE). A scraper or client that stops
 * reading or sending is dropped after metrics.idle_timeout; at most CONNECTION_LIMIT
 * connections are served at once, PER_IP_LIMIT of them from one address,
 * so one flooding host cannot lock out the scraper on another. Prometheus
 * needs one connection per scraper. */
#define CONNECTION_LIMIT 64u
#define PER_IP_LIMIT 16u

/* MHD logs one line per refused connection: a flood would flood the log. */
#define MHD_LOG_BURST 5u
#define MHD_LOG_INTERVAL_MS 10000

#define EXPOSITION_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define TEXT_TYPE "text/plain; charset=utf-8"

/* Only http_start and http_stop touch it, from the main thread. */
static struct MHD_Daemon *httpd;

/* MHD's messages come from its thread and from the main thread. */
static struct {
	pthread_mutex_t lock;
	struct ratelimit limit;
} mhd_log_limit = {PTHREAD_MUTEX_INITIALIZER, RATELIMIT_INIT(MHD_LOG_INTERVAL_MS, MHD_LOG_BURST)};

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
	const char *body;
	bool healthy = metrics_healthy(&body);

	return reply_text(conn, healthy ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, body);
}

/* Every request is answered on its first call, when only the headers are
 * in: no route takes a body. */
static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method, const char *version,
			      const char *upload_data, size_t *upload_data_size, void **req_cls)
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

/* Set while http_start runs: its failure is reported as one line of its
 * own, so MHD's message about the same bind is dropped. */
static atomic_bool starting;

/* MHD's own messages (refused connections, accept errors) go to walcount's
 * log, rate-limited. errno is kept: http_start reads the failed bind's
 * errno after MHD_start_daemon has logged it. */
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
	char service[6]; /* the port in decimal, for getaddrinfo */
	int family;      /* AF_INET, or AF_INET6 when bracketed */
};

static bool listen_fail(char *err, size_t errlen, const char *listen, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

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
static bool resolve(const char *listen, const struct listen_addr *a, struct addrinfo **out, char *err, size_t errlen)
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

bool http_start(const char *listen, int64_t idle_timeout_ms, char *err, size_t errlen)
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
	httpd = MHD_start_daemon(flags, a.port, NULL, NULL, handle, NULL, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				 MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_CONNECTION_TIMEOUT,
				 (unsigned int) ((idle_timeout_ms + 999) / 1000), MHD_OPTION_CONNECTION_LIMIT, CONNECTION_LIMIT,
				 MHD_OPTION_PER_IP_CONNECTION_LIMIT, PER_IP_LIMIT, MHD_OPTION_END);
	bind_errno = errno;
	atomic_store(&starting, false);
	freeaddrinfo(ai);
	if (httpd == NULL)
		return listen_fail(err, errlen, listen, "cannot listen: %s",
				   bind_errno != 0 ? strerror(bind_errno) : "the HTTP server did not start");
	return true;
}

void http_stop(void)
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
