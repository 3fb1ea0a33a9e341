/* notify: the service manager's notification protocol (sd_notify(3)),
 * spoken directly, as its documentation describes: one datagram per
 * message to the AF_UNIX socket named by $NOTIFY_SOCKET ("@" for an
 * abstract name), so walcount needs no libsystemd. Without NOTIFY_SOCKET
 * every call is a no-op. Only `walcount run` calls notify_init. */
#ifndef WALCOUNT_NOTIFY_H
#define WALCOUNT_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

/* The address $NOTIFY_SOCKET names: a path ("/run/systemd/notify") or an
 * abstract name ("@name"). False for anything else (empty, relative,
 * too long, the newer "vsock:" form). */
bool notify_address(const char *spec, struct sockaddr_un *sa, socklen_t *len);

/* The watchdog ping period in ms: half of $WATCHDOG_USEC, at least 1; 0
 * when usec is NULL or not a positive integer, or when pid (the value of
 * $WATCHDOG_PID, may be NULL) names another process than self. */
int64_t notify_watchdog_period_ms(const char *usec, const char *pid, long self);

/* Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID and opens the socket;
 * logs one line when NOTIFY_SOCKET is set but unusable. */
void notify_init(void);

/* Sends READY=1 and STATUS=<text> in one message. */
void notify_ready(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Sends STATUS=<text>, a single line (newlines become spaces). */
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Sends WATCHDOG=1 when the watchdog is on and half its period has passed
 * since the last ping; cheap otherwise, so loops call it at every turn. */
void notify_watchdog(int64_t now_ms);

/* Start-up is making progress (a slot creation waiting for a transaction,
 * an initial load): EXTEND_TIMEOUT_USEC asks the service manager (systemd
 * >= 236) for this much more start-up time, NOTIFY_START_EXTEND_MS, every
 * NOTIFY_START_EXTEND_EVERY_MS. The unit's finite TimeoutStartSec then ends
 * only a start that makes none (a replication connection refused forever);
 * a load of an hour keeps extending. */
#define NOTIFY_START_EXTEND_MS 60000
#define NOTIFY_START_EXTEND_EVERY_MS 10000

/* Sends EXTEND_TIMEOUT_USEC=usec. */
void notify_extend_timeout(uint64_t usec);

/* Sends notify_extend_timeout(NOTIFY_START_EXTEND_MS) when
 * NOTIFY_START_EXTEND_EVERY_MS has passed since the last one (the first at
 * once); cheap otherwise, so waiting loops call it at every turn. */
void notify_start_progress(int64_t now_ms);

/* Sends STOPPING=1. Async-signal-safe: called from the SIGINT/SIGTERM
 * handler, so the service manager knows at once that the stop began. */
void notify_stopping(void);

/* Closes the socket; later calls are no-ops. */
void notify_close(void);

#endif
