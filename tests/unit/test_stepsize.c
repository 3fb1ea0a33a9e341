/* stepsize: correcting steps sized by time, growth and cancellation. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "stepsize.h"

static void test_first_step(void **state)
{
	struct stepsize z;

	(void) state;
	stepsize_init(&z, 40, 50000);
	assert_int_equal(z.n, STEPSIZE_FIRST);
	stepsize_init(&z, 40, 100);
	assert_int_equal(z.n, 100);
	assert_false(stepsize_exhausted(&z));
}

/* A step at the target rate keeps its size; a slow one shrinks it in
 * proportion; a fast one grows it, at most 2x per step and never past the
 * cap. */
static void test_sized_by_time(void **state)
{
	struct stepsize z;

	(void) state;
	stepsize_init(&z, 40, 50000);
	stepsize_done(&z, 512, 40000);
	assert_int_equal(z.n, 512);
	stepsize_done(&z, 512, 80000);
	assert_int_equal(z.n, 256);
	stepsize_done(&z, 256, 1000);
	assert_int_equal(z.n, 512);
	for (int i = 0; i < 20; i++)
		stepsize_done(&z, z.n, 100);
	assert_int_equal(z.n, 50000);
	stepsize_done(&z, 50000, 4000000);
	assert_int_equal(z.n, 500);
}

/* A step faster than the clock says anything about counts as 0.1 ms: no
 * division by zero, and the 2x limit holds. */
static void test_instant_step(void **state)
{
	struct stepsize z;

	(void) state;
	stepsize_init(&z, 40, 1000000);
	stepsize_done(&z, 3, 0);
	assert_int_equal(z.n, 1024);
}

/* A very slow step does not go below the floor: a few keys that take that
 * long wait for a lock, not for work. */
static void test_floor(void **state)
{
	struct stepsize z;

	(void) state;
	stepsize_init(&z, 40, 50000);
	stepsize_done(&z, 512, 60000000);
	assert_int_equal(z.n, STEPSIZE_FLOOR);
	stepsize_init(&z, 40, 10);
	stepsize_done(&z, 10, 60000000);
	assert_int_equal(z.n, 10);
}

/* Cancelled steps halve the size down to the floor without a wait; at the
 * floor each cancellation waits, twice as long as the one before, and
 * STEPSIZE_ATTEMPTS of them in a row exhaust the sweep; a finished step
 * ends all that. */
static void test_cancelled(void **state)
{
	struct stepsize z;
	int64_t now = 1000, wait = STEPSIZE_BACKOFF_MS;

	(void) state;
	stepsize_init(&z, 40, 50000);
	stepsize_timed_out(&z, now);
	assert_int_equal(z.n, 256);
	assert_true(stepsize_ready(&z, now));
	stepsize_timed_out(&z, now);
	stepsize_timed_out(&z, now);
	assert_int_equal(z.n, STEPSIZE_FLOOR);
	assert_true(stepsize_ready(&z, now));
	for (int i = 0; i < STEPSIZE_ATTEMPTS; i++, wait *= 2) {
		assert_false(stepsize_exhausted(&z));
		stepsize_timed_out(&z, now);
		assert_int_equal(z.n, STEPSIZE_FLOOR);
		assert_false(stepsize_ready(&z, now + wait - 1));
		assert_true(stepsize_ready(&z, now + wait));
		now += wait;
	}
	assert_true(stepsize_exhausted(&z));
	stepsize_done(&z, STEPSIZE_FLOOR, 500000);
	assert_false(stepsize_exhausted(&z));
	assert_true(stepsize_ready(&z, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_step), cmocka_unit_test(test_sized_by_time), cmocka_unit_test(test_instant_step),
		cmocka_unit_test(test_floor),      cmocka_unit_test(test_cancelled),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
