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

/* The binary int8[]: ndim 1, no NULLs, element type 20, length 3 from
 * lower bound 1, then each element as length 8 and big-endian value. */
static void test_binary(void **state)
{
	static const unsigned char want[] = {
		0, 0, 0, 1, 0,    0, 0, 0, 0, 0, 0, 20, 0, 0, 0, 3, 0, 0, 0, 1, /* header */
		0, 0, 0, 8, 0,    0, 0, 0, 0, 0, 0, 7,                          /* 7 */
		0, 0, 0, 8, 0x80, 0, 0, 0, 0, 0, 0, 0,                          /* INT64_MIN */
		0, 0, 0, 8, 0,    0, 0, 0, 0, 0, 0, 42,                         /* 42 */
	};
	static const unsigned char deltas[] = {0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}; /* -2 */
	struct strbuf a = {0};

	(void) state;
	assert_true(pgarray_rows_bin(&a, rows, 3, -1));
	assert_int_equal(a.len, sizeof want);
	assert_memory_equal(strbuf_str(&a), want, sizeof want);
	assert_true(pgarray_rows_bin(&a, rows, 3, 1));
	assert_int_equal(a.len, 20 + 3 * 12);
	assert_memory_equal(strbuf_str(&a) + 20, deltas, sizeof deltas);
	strbuf_free(&a);
}

/* An empty array has no dimensions: ndim 0, no NULLs, element type 20. */
static void test_binary_empty(void **state)
{
	static const unsigned char want[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 20};
	struct strbuf a = {0};

	(void) state;
	assert_true(pgarray_rows_bin(&a, NULL, 0, -1));
	assert_int_equal(a.len, sizeof want);
	assert_memory_equal(strbuf_str(&a), want, sizeof want);
	strbuf_free(&a);
}

/* pgarray_table, binary: the keys then one array per stream column of the
 * table (aggregate_track: repost_count, save_count). */
static void test_binary_table(void **state)
{
	struct strbuf arrays[3] = {{0}};

	(void) state;
	assert_true(pgarray_table(arrays, AGG_TRACK, rows, 3, true));
	for (int i = 0; i < 3; i++) {
		assert_int_equal(arrays[i].len, 20 + 3 * 12);
		strbuf_free(&arrays[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys_and_fields), cmocka_unit_test(test_empty),        cmocka_unit_test(test_many),
		cmocka_unit_test(test_binary),          cmocka_unit_test(test_binary_empty), cmocka_unit_test(test_binary_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
