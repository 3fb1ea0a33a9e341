#include "notify.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* One service manager per process: its address and the socket we send on,
 * which the SIGINT/SIGTERM handler reads (notify_stopping). */
static volatile sig_atomic_t sock = -1;
static struct sockaddr_un addr;
static socklen_t addr_len;
static int64_t watchdog_period_ms, watchdog_next_ms, extend_next_ms;
static bool send_failed;

bool notify_address(const char *spec, struct sockaddr_un *sa, socklen_t *len)
{
	size_t n = spec != NULL ? strlen(spec) : 0;

	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	/* A path needs its terminating NUL inside sun_path; an abstract name
	 * replaces "@" with a leading NUL and is exactly as long as given. */
	if (n < 2 || n >= sizeof sa->sun_path || (spec[0] != '/' && spec[0] != '@'))
		return false;
	memcpy(sa->sun_path, spec, n);
	if (spec[0] == '@')
		sa->sun_path[0] = '\0';
	*len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n + (spec[0] == '/'));
	return true;
}

int64_t notify_watchdog_period_ms(const char *usec, const char *pid, long self)
{
	char *end;

	if (usec == NULL || *usec < '0' || *usec > '9')
		return 0;
	errno = 0;
	unsigned long long us = strtoull(usec, &end, 10);
	if (errno != 0 || *end != '\0' || us == 0 || us > (unsigned long long) INT64_MAX)
		return 0;
	if (pid != NULL && (strtol(pid, &end, 10) != self || *end != '\0'))
		return 0;
	return us / 2000 > 0 ? (int64_t) (us / 2000) : 1;
}

void notify_init(void)
{
	const char *spec = getenv("NOTIFY_SOCKET");

	if (spec == NULL || sock >= 0)
		return;
	if (!notify_address(spec, &addr, &addr_len)) {
		log_warn("notify: NOTIFY_SOCKET=%s is not an AF_UNIX path or @name; not notifying the service manager", spec);
		return;
	}
	/* Non-blocking: a manager that does not read (its queue holds only
	 * net.unix.max_dgram_qlen datagrams) must never stall the stream. */
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		log_warn("notify: socket: %s; not notifying the service manager", strerror(errno));
		return;
	}
	watchdog_period_ms = notify_watchdog_period_ms(getenv("WATCHDOG_USEC"), getenv("WATCHDOG_PID"), (long) getpid());
	watchdog_next_ms = 0;
	extend_next_ms = 0;
	send_failed = false;
	sock = fd;
	if (watchdog_period_ms > 0)
		log_info("notify: watchdog on, pinging every %" PRId64 " ms", watchdog_period_ms);
}

/* Sends msg; the first failure is logged (a full queue or a manager gone
 * must not stop the service), later ones are not. */
static void send_message(const char *msg)
{
	if (sock < 0)
		return;
	if (sendto(sock, msg, strlen(msg), MSG_NOSIGNAL, (const struct sockaddr *) &addr, addr_len) >= 0 || send_failed)
		return;
	send_failed = true;
	log_warn("notify: sending to NOTIFY_SOCKET: %s; later failures are not logged", strerror(errno));
}

/* prefix and the formatted text into buf; the text as one line, since a
 * newline would start another assignment. */
__attribute__((format(printf, 4, 0))) static void format_line(char *buf, size_t len, const char *prefix, const char *fmt,
							      va_list ap)
{
	int at = snprintf(buf, len, "%s", prefix);

	if (at < 0 || (size_t) at >= len)
		return;
	vsnprintf(buf + at, len - (size_t) at, fmt, ap);
	for (char *p = buf + at; *p != '\0'; p++)
		if (*p == '\n')
			*p = ' ';
}

__attribute__((format(printf, 2, 0))) static void send_line(const char *prefix, const char *fmt, va_list ap)
{
	char buf[512];

	format_line(buf, sizeof buf, prefix, fmt, ap);
	send_message(buf);
}

void notify_ready(const char *fmt, ...)
{
	va_list ap;

	if (sock < 0)
		return;
	va_start(ap, fmt);
	send_line("READY=1\nSTATUS=", fmt, ap);
	va_end(ap);
}

void notify_status(const char *fmt, ...)
{
	va_list ap;

	if (sock < 0)
		return;
	va_start(ap, fmt);
	send_line("STATUS=", fmt, ap);
	va_end(ap);
}

void notify_watchdog(int64_t now_ms)
{
	if (sock < 0 || watchdog_period_ms == 0 || now_ms < watchdog_next_ms)
		return;
	watchdog_next_ms = now_ms + watchdog_period_ms;
	send_message("WATCHDOG=1");
}

void notify_extend_timeout(uint64_t usec)
{
	char buf[64];

	if (sock < 0)
		return;
	snprintf(buf, sizeof buf, "EXTEND_TIMEOUT_USEC=%" PRIu64, usec);
	send_message(buf);
}

void notify_start_progress(int64_t now_ms)
{
	if (sock < 0 || now_ms < extend_next_ms)
		return;
	extend_next_ms = now_ms + NOTIFY_START_EXTEND_EVERY_MS;
	notify_extend_timeout((uint64_t) NOTIFY_START_EXTEND_MS * 1000);
}

void notify_stopping(void)
{
	static const char msg[] = "STOPPING=1";
	int saved = errno;

	if (sock >= 0)
		(void) sendto(sock, msg, sizeof msg - 1, MSG_NOSIGNAL, (const struct sockaddr *) &addr, addr_len);
	errno = saved;
}

/* sock is cleared before the close: a SIGTERM in between would send
 * STOPPING=1 to whatever reused the descriptor. */
void notify_close(void)
{
	int fd = sock;

	sock = -1;
	if (fd >= 0)
		close(fd);
}
