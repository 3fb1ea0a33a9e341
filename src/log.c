#include "log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "lsn.h"
#include "utf8.h"

/* Set by log_setup on a reload in the main thread while other threads log:
 * atomic, relaxed, as nothing else is ordered by them. */
static _Atomic(enum log_level) min_level = LOG_INFO;
static _Atomic(enum log_format) out_format = LOG_TEXT;
static char slot_name[64]; /* PostgreSQL's limit is 63 bytes */

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_setup(enum log_level level, enum log_format format)
{
	atomic_store_explicit(&min_level, level, memory_order_relaxed);
	atomic_store_explicit(&out_format, format, memory_order_relaxed);
}

void log_set_slot(const char *slot)
{
	snprintf(slot_name, sizeof slot_name, "%s", slot ? slot : "");
}

static void timestamp(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

#define MSG_MAX 2048
/* One line, built whole so that threads' lines do not interleave; room for
 * a message of control bytes only, each escaped to 6 bytes, and the rest. */
struct line {
	char buf[6 * MSG_MAX + 6 * sizeof slot_name + 1024];
	size_t n;
};

static void put(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct line *l, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (l->n >= sizeof l->buf)
		return;
	va_start(ap, fmt);
	k = vsnprintf(l->buf + l->n, sizeof l->buf - l->n, fmt, ap);
	va_end(ap);
	l->n = k < 0 ? l->n : l->n + (size_t) k < sizeof l->buf ? l->n + (size_t) k : sizeof l->buf - 1;
}

/* s as a JSON string: quotes, backslashes and control bytes escaped, each
 * ill-formed UTF-8 piece as U+FFFD (server texts in LATIN1 databases, a
 * character cut at MSG_MAX), so that strict parsers accept the line. */
static void put_json_string(struct line *l, const char *s)
{
	bool ok;
	size_t n;

	put(l, "\"");
	for (const char *p = s; *p; p += n) {
		unsigned char c = (unsigned char) *p;
		n = utf8_next(p, &ok);
		if (!ok)
			put(l, "\\ufffd");
		else if (c == '"' || c == '\\')
			put(l, "\\%c", c);
		else if (c < 0x20)
			put(l, "\\u%04x", c);
		else
			put(l, "%.*s", (int) n, p);
	}
	put(l, "\"");
}

static void json_line(struct line *l, enum log_level level, const char *event, uint64_t lsn, uint64_t xid, const char *ts,
		      const char *msg)
{
	char text[LSN_BUFLEN];

	put(l, "{\"ts\":\"%s\",\"level\":\"%s\"", ts, level_names[level]);
	if (*slot_name) {
		put(l, ",\"slot\":");
		put_json_string(l, slot_name);
	}
	if (event) {
		put(l, ",\"event\":");
		put_json_string(l, event);
	}
	if (lsn != 0)
		put(l, ",\"lsn\":\"%s\"", lsn_format(lsn, text));
	if (xid != 0)
		put(l, ",\"xid\":%" PRIu64, xid);
	put(l, ",\"msg\":");
	put_json_string(l, msg);
}

static void vlog(enum log_level level, const char *event, uint64_t lsn, uint64_t xid, const char *fmt, va_list ap)
	__attribute__((format(printf, 5, 0)));

static void vlog(enum log_level level, const char *event, uint64_t lsn, uint64_t xid, const char *fmt, va_list ap)
{
	char ts[40], msg[MSG_MAX];
	struct line l = {.n = 0};

	vsnprintf(msg, sizeof msg, fmt, ap);
	timestamp(ts, sizeof ts);
	if (atomic_load_explicit(&out_format, memory_order_relaxed) == LOG_JSON) {
		json_line(&l, level, event, lsn, xid, ts, msg);
		put(&l, "}\n");
	} else {
		put(&l, "%s %-5s %s\n", ts, level_names[level], msg);
	}
	fwrite(l.buf, 1, l.n, stderr);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	if (level > atomic_load_explicit(&min_level, memory_order_relaxed))
		return;
	va_start(ap, fmt);
	vlog(level, NULL, 0, 0, fmt, ap);
	va_end(ap);
}

void log_event(enum log_level level, const char *event, uint64_t lsn, uint64_t xid, const char *fmt, ...)
{
	va_list ap;

	if (level > atomic_load_explicit(&min_level, memory_order_relaxed))
		return;
	va_start(ap, fmt);
	vlog(level, event, lsn, xid, fmt, ap);
	va_end(ap);
}
