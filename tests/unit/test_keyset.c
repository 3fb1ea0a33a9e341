/* keyset: candidate keys appended, parsed and sealed. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>

#include "keyset.h"

static void assert_keys(const struct keyset *s, const int64_t *want, size_t n)
{
	assert_int_equal(s->n, n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(s->key[i], want[i]);
}

/* The compare's keys and the keys noted meanwhile, in any order and with
 * repeats, become one sorted set. */
static void test_merge(void **state)
{
	struct keyset s = {0};
	const char *bad = "x";
	static const int64_t want[] = {-2147483648LL, -1, 3, 7, 12, 2147483647LL};

	(void) state;
	assert_true(keyset_add(&s, 7));
	assert_true(keyset_add(&s, 3));
	assert_true(keyset_add_list(&s, "-2147483648,3,12,2147483647", &bad));
	assert_true(keyset_add_list(&s, "", &bad));
	assert_true(keyset_add(&s, 7));
	assert_true(keyset_add(&s, -1));
	keyset_seal(&s);
	assert_keys(&s, want, 6);
	keyset_free(&s);
	keyset_seal(&s);
	assert_int_equal(s.n, 0);
}

/* Many keys: the set grows past its first allocation. */
static void test_grows(void **state)
{
	struct keyset s = {0};

	(void) state;
	for (int64_t k = 100000; k > 0; k--)
		assert_true(keyset_add(&s, k % 5000));
	keyset_seal(&s);
	assert_int_equal(s.n, 5000);
	for (size_t i = 0; i < s.n; i++)
		assert_int_equal(s.key[i], (int64_t) i);
	keyset_free(&s);
}

static void test_bad_list(void **state)
{
	static const char *const lists[] = {"1,,2", "1;2", "a", "1 2", "99999999999999999999"};

	(void) state;
	for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
		struct keyset s = {0};
		const char *bad = NULL;
		assert_false(keyset_add_list(&s, lists[i], &bad));
		assert_non_null(bad);
		keyset_free(&s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_grows),
		cmocka_unit_test(test_bad_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
