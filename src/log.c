#include "log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static enum log_level min_level = LOG_INFO;
static enum log_format out_format = LOG_TEXT;
static char slot_name[64]; /* PostgreSQL's limit is 63 bytes */

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_setup(enum log_level level, enum log_format format)
{
	min_level = level;
	out_format = format;
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

/* s as a JSON string: quotes, backslashes and control bytes escaped,
 * everything else passed through (messages are UTF-8 already). */
static void put_json_string(struct line *l, const char *s)
{
	put(l, "\"");
	for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
		if (*p == '"' || *p == '\\')
			put(l, "\\%c", *p);
		else if (*p < 0x20)
			put(l, "\\u%04x", *p);
		else
			put(l, "%c", *p);
	}
	put(l, "\"");
}

static void json_line(struct line *l, enum log_level level, const char *event, uint64_t lsn, uint64_t xid, const char *ts,
		      const char *msg)
{
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
		put(l, ",\"lsn\":\"%" PRIX32 "/%" PRIX32 "\"", (uint32_t) (lsn >> 32), (uint32_t) lsn);
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
	if (out_format == LOG_JSON) {
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

	if (level > min_level)
		return;
	va_start(ap, fmt);
	vlog(level, NULL, 0, 0, fmt, ap);
	va_end(ap);
}

void log_event(enum log_level level, const char *event, uint64_t lsn, uint64_t xid, const char *fmt, ...)
{
	va_list ap;

	if (level > min_level)
		return;
	va_start(ap, fmt);
	vlog(level, event, lsn, xid, fmt, ap);
	va_end(ap);
}
