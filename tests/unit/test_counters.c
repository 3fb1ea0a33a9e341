/* counters: the invariants the statements and arrays built from the
 * descriptor rely on. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "counters.h"

/* A plain identifier: it is a label value and an SQL column name, so it
 * needs no escaping in either. */
static void assert_identifier(const char *s)
{
	assert_true(s[0] != '\0' && strspn(s, "abcdefghijklmnopqrstuvwxyz_") == strlen(s));
}

static void test_names(void **state)
{
	(void) state;
	for (int c = 0; c < COL__ALL; c++) {
		assert_identifier(agg_column_name((enum agg_column) c));
		for (int d = 0; d < c; d++)
			assert_false(agg_column_table((enum agg_column) c) == agg_column_table((enum agg_column) d) &&
				     strcmp(agg_column_name((enum agg_column) c), agg_column_name((enum agg_column) d)) == 0);
	}
	for (int t = 0; t < AGG__COUNT; t++) {
		assert_identifier(agg_table_name((enum agg_table) t));
		assert_identifier(agg_table_key((enum agg_table) t));
		for (int u = 0; u < t; u++)
			assert_string_not_equal(agg_table_name((enum agg_table) t), agg_table_name((enum agg_table) u));
	}
	for (int s = SRC_REPOSTS; s < SRC__COUNT; s++)
		assert_identifier(src_table_name((enum src_table) s));
	assert_string_equal(agg_table_name(AGG__COUNT), "unknown");
	assert_string_equal(agg_column_name(COL__ALL), "unknown");
}

/* Per table the indices are 0..n-1, stream columns first: the SQL reads
 * its delta arrays and writes its counts by position. */
static void test_indices(void **state)
{
	(void) state;
	for (int t = 0; t < AGG__COUNT; t++) {
		int streamed = agg_stream_columns((enum agg_table) t), swept = agg_swept_columns((enum agg_table) t);

		assert_in_range(streamed, 1, AGG_MAX_COLUMNS);
		assert_in_range(swept, streamed, AGG_MAX_SWEPT);
		for (int i = 0; i < swept; i++) {
			enum agg_column c = agg_column_at((enum agg_table) t, i);
			assert_true(c < COL__ALL);
			assert_int_equal(agg_column_table(c), t);
			assert_int_equal(agg_column_index(c), i);
			assert_int_equal(c < COL__COUNT, i < streamed);
		}
		assert_int_equal(agg_column_at((enum agg_table) t, swept), COL__ALL);
	}
}

/* The batch statement's arrays: each table's keys then its stream columns,
 * contiguous, in table order; 11 today, as sql/apply_batch.sql numbers them
 * ($5..$15). */
static void test_apply_arrays(void **state)
{
	int next = 0;

	(void) state;
	for (int t = 0; t < AGG__COUNT; t++) {
		assert_int_equal(agg_stream_array((enum agg_table) t), next);
		next += 1 + agg_stream_columns((enum agg_table) t);
	}
	assert_int_equal(agg_stream_arrays(), next);
	assert_true(agg_stream_arrays() <= AGG__COUNT * (1 + AGG_MAX_COLUMNS));
	assert_int_equal(agg_stream_arrays(), 11);
	assert_int_equal(agg_stream_array(AGG_TRACK), 5);
	assert_int_equal(agg_stream_array(AGG_PLAYLIST), 8);
}

/* Spot checks against the schema facts. */
static void test_facts(void **state)
{
	(void) state;
	assert_string_equal(agg_column_name(COL_USER_FOLLOWER), "follower_count");
	assert_int_equal(agg_column_table(COL_PLAYLIST_REPOST), AGG_PLAYLIST);
	assert_string_equal(agg_column_name(COL_TRACK_COMMENT), "comment_count");
	assert_int_equal(agg_swept_columns(AGG_USER), 9);
	assert_int_equal(agg_swept_columns(AGG_TRACK), 3);
	assert_int_equal(agg_swept_columns(AGG_PLAYLIST), 2);
	assert_string_equal(agg_table_key(AGG_TRACK), "track_id");
	assert_string_equal(src_table_name(SRC_FOLLOWS), "follows");
}

static void partitions_are_stable_and_spread(void **state)
{
	int seen[4] = {0};

	(void) state;
	for (int64_t key = 1; key <= 4000; key++) {
		int p = agg_partition(AGG_TRACK, key, 4);
		assert_in_range(p, 0, 3);
		assert_int_equal(p, agg_partition(AGG_TRACK, key, 4));
		assert_int_equal(agg_partition(AGG_TRACK, key, 1), 0);
		seen[p]++;
	}
	for (int p = 0; p < 4; p++)
		assert_in_range(seen[p], 800, 1200);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_indices),
		cmocka_unit_test(test_apply_arrays),
		cmocka_unit_test(test_facts),
		cmocka_unit_test(partitions_are_stable_and_spread),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
