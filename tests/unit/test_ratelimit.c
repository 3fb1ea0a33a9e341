/* ratelimit: a burst per window, the rest counted and reported once. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ratelimit.h"

/* How many of n lines at now_ms are allowed; *reported sums the reports. */
static unsigned allow_n(struct ratelimit *rl, int64_t now_ms, unsigned n, uint64_t *reported)
{
	unsigned allowed = 0;
	uint64_t r;

	for (unsigned i = 0; i < n; i++) {
		if (ratelimit_allow(rl, now_ms, &r))
			allowed++;
		*reported += r;
	}
	return allowed;
}

static void test_burst_then_summary(void **state)
{
	struct ratelimit rl = RATELIMIT_INIT(10000, 5);
	uint64_t reported = 0, r;

	(void) state;
	assert_int_equal(allow_n(&rl, 1000, 20000, &reported), 5);
	assert_int_equal(reported, 0);
	/* Still the same window: nothing more, nothing reported. */
	assert_false(ratelimit_allow(&rl, 10999, &r));
	assert_int_equal(r, 0);
	/* Next window: the first line carries the summary of all dropped. */
	assert_true(ratelimit_allow(&rl, 11000, &r));
	assert_int_equal(r, 19996);
	assert_true(ratelimit_allow(&rl, 11001, &r));
	assert_int_equal(r, 0);
}

static void test_flush(void **state)
{
	struct ratelimit rl = RATELIMIT_INIT(1000, 1);
	uint64_t reported = 0;

	(void) state;
	assert_int_equal(allow_n(&rl, 0, 4, &reported), 1);
	assert_int_equal(ratelimit_flush(&rl), 3);
	assert_int_equal(ratelimit_flush(&rl), 0);
	assert_int_equal(allow_n(&rl, 5000, 1, &reported), 1);
	assert_int_equal(reported, 0);
}

/* A steady trickle under the rate is never dropped. */
static void test_under_rate(void **state)
{
	struct ratelimit rl = RATELIMIT_INIT(10000, 5);
	uint64_t reported = 0;
	unsigned allowed = 0;

	(void) state;
	for (int64_t t = 0; t < 600000; t += 2000)
		allowed += allow_n(&rl, t, 1, &reported);
	assert_int_equal(allowed, 300);
	assert_int_equal(reported, 0);
}

/* The bound over a long flood: burst per window plus one summary each. */
static void test_long_flood_bounded(void **state)
{
	struct ratelimit rl = RATELIMIT_INIT(10000, 5);
	uint64_t reported = 0;
	unsigned allowed = 0;

	(void) state;
	for (int64_t t = 0; t < 60000; t++)
		allowed += allow_n(&rl, t, 3, &reported);
	assert_int_equal(allowed, 30);
	assert_int_equal(reported + ratelimit_flush(&rl), 180000 - 30);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_then_summary),
		cmocka_unit_test(test_flush),
		cmocka_unit_test(test_under_rate),
		cmocka_unit_test(test_long_flood_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
