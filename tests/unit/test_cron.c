/* cron: tasks run when due, are rescheduled from the time they ran, and a
 * task that asks the stream to stop stops the tick. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cron.h"

struct calls {
	int a, b;
	enum stream_result b_result;
};

static enum stream_result task_a(void *ctx, int64_t now)
{
	(void) now;
	((struct calls *) ctx)->a++;
	return STREAM_CONTINUE;
}

static enum stream_result task_b(void *ctx, int64_t now)
{
	(void) now;
	((struct calls *) ctx)->b++;
	return ((struct calls *) ctx)->b_result;
}

static const int64_t p10 = 10, p100 = 100, p250 = 250;

static void test_periods(void **state)
{
	struct cron_task tasks[] = {{"a", &p100, task_a, 0}, {"b", &p250, task_b, 0}};
	struct calls calls = {0, 0, STREAM_CONTINUE};
	int64_t next;

	(void) state;
	assert_int_equal(cron_tick(tasks, 2, &calls, 1000, &next), STREAM_CONTINUE);
	assert_int_equal(calls.a + calls.b, 0); /* first runs one period later */
	assert_int_equal(next, 1100);
	cron_tick(tasks, 2, &calls, 1100, &next);
	assert_int_equal(calls.a, 1);
	assert_int_equal(next, 1200);
	/* Late by 400 ms: one run each, rescheduled from now, no burst. */
	cron_tick(tasks, 2, &calls, 1600, &next);
	assert_int_equal(calls.a, 2);
	assert_int_equal(calls.b, 1);
	assert_int_equal(next, 1700);
	cron_tick(tasks, 2, &calls, 1650, &next);
	assert_int_equal(calls.a, 2);
}

static void test_stop_on_result(void **state)
{
	struct cron_task tasks[] = {{"b", &p10, task_b, 0}, {"a", &p10, task_a, 0}};
	struct calls calls = {0, 0, STREAM_LOST};
	int64_t next;

	(void) state;
	cron_tick(tasks, 2, &calls, 0, &next);
	assert_int_equal(cron_tick(tasks, 2, &calls, 10, &next), STREAM_LOST);
	assert_int_equal(calls.b, 1);
	assert_int_equal(calls.a, 0); /* later tasks wait for the next tick */
}

static void test_period_change(void **state)
{
	int64_t period = 100;
	struct cron_task tasks[] = {{"a", &period, task_a, 0}};
	struct calls calls = {0, 0, STREAM_CONTINUE};
	int64_t next;

	(void) state;
	cron_tick(tasks, 1, &calls, 0, &next);
	cron_tick(tasks, 1, &calls, 100, &next);
	period = 1000; /* a reload: applies from the next run */
	cron_tick(tasks, 1, &calls, 200, &next);
	assert_int_equal(calls.a, 2);
	assert_int_equal(next, 1200);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_periods),
		cmocka_unit_test(test_stop_on_result),
		cmocka_unit_test(test_period_change),
	};

	return cmocka_run_group_tests_name("cron", tests, NULL, NULL);
}
