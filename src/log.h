/* log: leveled lines on stderr, as text or one JSON object per line. */
#ifndef WALCOUNT_LOG_H
#define WALCOUNT_LOG_H

#include <stdint.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };
enum log_format { LOG_TEXT, LOG_JSON };

void log_setup(enum log_level level, enum log_format format);

/* The slot every JSON line names ("slot"); set once at start, before any
 * thread logs. NULL or never set: no slot field. The name is copied. */
void log_set_slot(const char *slot);

/* printf-style; the message should be one line without a trailing newline. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A line with structured fields, which the JSON format carries besides the
 * message: event, a stable snake_case name of what happened (operators
 * filter on it: "progress", "change_skipped", "reconnect", "sweep_done",
 * ...), lsn ("X/X") and xid, each left out when 0. The text format prints
 * the message alone, as log_msg. */
void log_event(enum log_level level, const char *event, uint64_t lsn, uint64_t xid, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
