/* pgarray: the array literals the apply and reconcile statements take. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "pgarray.h"

static const struct batch_row rows[] = {
	{.key = 7, .d = {1, -2}},
	{.key = -9223372036854775807 - 1, .d = {0, 9223372036854775807}},
	{.key = 42, .d = {-1, 0}},
};

static void test_keys_and_fields(void **state)
{
	struct strbuf a = {0};

	(void) state;
	assert_true(pgarray_rows(&a, rows, 3, -1));
	assert_string_equal(strbuf_str(&a), "{7,-9223372036854775808,42}");
	/* Each call replaces what the builder held. */
	assert_true(pgarray_rows(&a, rows, 3, 1));
	assert_string_equal(strbuf_str(&a), "{-2,9223372036854775807,0}");
	assert_true(pgarray_rows(&a, rows, 1, 0));
	assert_string_equal(strbuf_str(&a), "{1}");
	strbuf_free(&a);
}

static void test_empty(void **state)
{
	struct strbuf a = {0};

	(void) state;
	assert_true(pgarray_rows(&a, NULL, 0, -1));
	assert_string_equal(strbuf_str(&a), "{}");
	strbuf_free(&a);
}

/* A batch's worth of keys: the literal grows past the first allocation. */
static void test_many(void **state)
{
	struct strbuf a = {0};
	static struct batch_row many[10000];

	(void) state;
	for (int i = 0; i < 10000; i++)
		many[i].key = i;
	assert_true(pgarray_rows(&a, many, 10000, -1));
	/* "{", 10 + 90*2 + 900*3 + 9000*4 digits, 9999 commas, "}" */
	assert_int_equal(a.len, 1 + 10 + 180 + 2700 + 36000 + 9999 + 1);
	assert_memory_equal(strbuf_str(&a), "{0,1,2,", 7);
	assert_string_equal(strbuf_str(&a) + a.len - 6, ",9999}");
	strbuf_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys_and_fields),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
