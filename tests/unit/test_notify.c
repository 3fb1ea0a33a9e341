/* notify: $NOTIFY_SOCKET's two address forms, the watchdog period from
 * $WATCHDOG_USEC/$WATCHDOG_PID, and the datagrams a real socket receives. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "notify.h"

static void test_path_address(void **state)
{
	struct sockaddr_un sa;
	socklen_t len = 0;

	(void) state;
	assert_true(notify_address("/run/systemd/notify", &sa, &len));
	assert_int_equal(sa.sun_family, AF_UNIX);
	assert_string_equal(sa.sun_path, "/run/systemd/notify");
	/* The path's NUL counts, as in sd_notify. */
	assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + strlen("/run/systemd/notify") + 1);
}

static void test_abstract_address(void **state)
{
	struct sockaddr_un sa;
	socklen_t len = 0;

	(void) state;
	assert_true(notify_address("@walcount/notify", &sa, &len));
	assert_int_equal(sa.sun_path[0], '\0');
	assert_memory_equal(sa.sun_path + 1, "walcount/notify", 15);
	/* An abstract name has no NUL: its length is what tells it apart. */
	assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + 16);
}

static void test_bad_addresses(void **state)
{
	struct sockaddr_un sa;
	socklen_t len = 0;
	char longest[sizeof sa.sun_path + 1];

	(void) state;
	assert_false(notify_address(NULL, &sa, &len));
	assert_false(notify_address("", &sa, &len));
	assert_false(notify_address("@", &sa, &len));
	assert_false(notify_address("relative/notify", &sa, &len));
	assert_false(notify_address("vsock:2:1234", &sa, &len));
	memset(longest, 'a', sizeof longest - 1);
	longest[0] = '/';
	longest[sizeof longest - 1] = '\0';
	assert_false(notify_address(longest, &sa, &len)); /* no room for the NUL */
	longest[sizeof longest - 2] = '\0';
	assert_true(notify_address(longest, &sa, &len));
}

static void test_watchdog_period(void **state)
{
	(void) state;
	assert_int_equal(notify_watchdog_period_ms("30000000", NULL, 42), 15000);
	assert_int_equal(notify_watchdog_period_ms("30000000", "42", 42), 15000);
	assert_int_equal(notify_watchdog_period_ms("30000000", "43", 42), 0);
	assert_int_equal(notify_watchdog_period_ms("1000", NULL, 42), 1);
	assert_int_equal(notify_watchdog_period_ms(NULL, NULL, 42), 0);
	assert_int_equal(notify_watchdog_period_ms("0", NULL, 42), 0);
	assert_int_equal(notify_watchdog_period_ms("-5", NULL, 42), 0);
	assert_int_equal(notify_watchdog_period_ms("10s", NULL, 42), 0);
	assert_int_equal(notify_watchdog_period_ms("", NULL, 42), 0);
}

/* The next datagram on fd, or "" when none is waiting. */
static const char *next_message(int fd)
{
	static char buf[600];
	ssize_t n = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);

	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void test_messages(void **state)
{
	char path[64], env[64];
	struct sockaddr_un sa;
	socklen_t len;
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);

	(void) state;
	snprintf(path, sizeof path, "/tmp/walcount-test-notify.%ld", (long) getpid());
	unlink(path);
	assert_true(notify_address(path, &sa, &len));
	assert_int_equal(bind(fd, (struct sockaddr *) &sa, len), 0);
	/* Before init, and with the watchdog off, nothing is sent. */
	notify_status("nothing");
	notify_extend_timeout(1000000);
	notify_start_progress(0);
	assert_string_equal(next_message(fd), "");
	assert_int_equal(setenv("NOTIFY_SOCKET", path, 1), 0);
	snprintf(env, sizeof env, "%ld", (long) getpid());
	assert_int_equal(setenv("WATCHDOG_PID", env, 1), 0);
	assert_int_equal(setenv("WATCHDOG_USEC", "200000", 1), 0);
	notify_init();
	notify_ready("streaming slot %s", "walcount");
	assert_string_equal(next_message(fd), "READY=1\nSTATUS=streaming slot walcount");
	notify_status("two\nlines");
	assert_string_equal(next_message(fd), "STATUS=two lines");
	notify_watchdog(1000);
	assert_string_equal(next_message(fd), "WATCHDOG=1");
	notify_watchdog(1099); /* half of 200 ms not yet passed */
	assert_string_equal(next_message(fd), "");
	notify_watchdog(1100);
	assert_string_equal(next_message(fd), "WATCHDOG=1");
	notify_extend_timeout(90000000);
	assert_string_equal(next_message(fd), "EXTEND_TIMEOUT_USEC=90000000");
	/* Start-up progress: at once, then once per period, each asking for
	 * more than the period (a late tick must not let the timeout pass). */
	assert_true(NOTIFY_START_EXTEND_MS > 2 * NOTIFY_START_EXTEND_EVERY_MS);
	notify_start_progress(5000);
	assert_string_equal(next_message(fd), "EXTEND_TIMEOUT_USEC=60000000");
	notify_start_progress(5000 + NOTIFY_START_EXTEND_EVERY_MS - 1);
	assert_string_equal(next_message(fd), "");
	notify_start_progress(5000 + NOTIFY_START_EXTEND_EVERY_MS);
	assert_string_equal(next_message(fd), "EXTEND_TIMEOUT_USEC=60000000");
	notify_stopping();
	assert_string_equal(next_message(fd), "STOPPING=1");
	/* A manager that does not read fills its queue (max_dgram_qlen): the
	 * sender goes on, dropping messages, and never blocks. */
	for (int i = 0; i < 64; i++)
		notify_status("unread %d", i);
	assert_string_equal(next_message(fd), "STATUS=unread 0");
	while (*next_message(fd) != '\0')
		;
	notify_close();
	notify_stopping();
	assert_string_equal(next_message(fd), "");
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	close(fd);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_address),  cmocka_unit_test(test_abstract_address),
		cmocka_unit_test(test_bad_addresses), cmocka_unit_test(test_watchdog_period),
		cmocka_unit_test(test_messages),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
