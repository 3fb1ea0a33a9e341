#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>

#include "batch.h"

/* Expected sums are read through agg_column_index(), the contract batch.h
 * states for d[], so these tests check the batch and not the column map. */
static int64_t col_sum(const struct batch_row *r, enum agg_column c)
{
	return r->d[agg_column_index(c)];
}

static void add1(struct batch *b, enum agg_column c, int64_t key, int64_t amount)
{
	struct delta d = {.column = c, .key = key, .amount = amount};

	assert_true(batch_add(b, &d, 1));
}

static struct batch *new_batch(void **state)
{
	(void) state;
	struct batch *b = batch_new();

	assert_non_null(b);
	return b;
}

static void assert_no_rows(const struct batch *b, enum agg_table t)
{
	size_t n = 123;

	assert_null(batch_rows(b, t, &n));
	assert_int_equal(n, 0);
}

static void test_empty_batch_has_no_rows(void **state)
{
	struct batch *b = new_batch(state);

	for (int t = 0; t < AGG__COUNT; t++)
		assert_no_rows(b, (enum agg_table) t);
	assert_int_equal(batch_keys(b), 0);
	assert_int_equal(batch_changes(b), 0);
	batch_free(b);
}

static void test_cancelling_deltas_drop_row_but_keep_key(void **state)
{
	struct batch *b = new_batch(state);

	add1(b, COL_TRACK_SAVE, 7, +1);
	add1(b, COL_TRACK_SAVE, 7, -1);
	assert_no_rows(b, AGG_TRACK);
	assert_int_equal(batch_keys(b), 1);
	assert_int_equal(batch_changes(b), 2);
	batch_free(b);
}

static void test_same_key_in_different_tables_stays_apart(void **state)
{
	struct batch *b = new_batch(state);
	const enum agg_column cols[] = {COL_USER_REPOST, COL_TRACK_REPOST, COL_PLAYLIST_REPOST};
	const enum agg_table tables[] = {AGG_USER, AGG_TRACK, AGG_PLAYLIST};

	for (int i = 0; i < 3; i++)
		add1(b, cols[i], 42, i + 1);
	assert_int_equal(batch_keys(b), 3);
	for (int i = 0; i < 3; i++) {
		size_t n;
		struct batch_row *rows = batch_rows(b, tables[i], &n);

		assert_int_equal(n, 1);
		assert_int_equal(rows[0].key, 42);
		assert_int_equal(col_sum(&rows[0], cols[i]), i + 1);
		free(rows);
	}
	batch_free(b);
}

/* batch_find sees what batch_rows lists: a key's row in its own table,
 * nothing for a row whose deltas cancel, another table or an absent key. */
static void test_find_one_key(void **state)
{
	struct batch *b = new_batch(state);
	struct batch_row row;

	add1(b, COL_TRACK_SAVE, 7, +2);
	add1(b, COL_USER_REPOST, 7, +1);
	add1(b, COL_USER_REPOST, 7, -1);
	assert_true(batch_find(b, AGG_TRACK, 7, &row));
	assert_int_equal(row.key, 7);
	assert_int_equal(col_sum(&row, COL_TRACK_SAVE), 2);
	assert_false(batch_find(b, AGG_USER, 7, &row));
	assert_false(batch_find(b, AGG_PLAYLIST, 7, &row));
	assert_false(batch_find(b, AGG_TRACK, 8, &row));
	batch_free(b);
}

static void test_user_columns_sum_on_one_key(void **state)
{
	struct batch *b = new_batch(state);
	const struct delta d[] = {
		{COL_USER_REPOST, 5, 1},
		{COL_USER_TRACK_SAVE, 5, 2},
		{COL_USER_FOLLOWER, 5, 3},
		{COL_USER_FOLLOWING, 5, -4},
	};
	size_t n;

	assert_true(batch_add(b, d, 4));
	assert_true(batch_add(b, d, 4));
	add1(b, COL_USER_FOLLOWER, 5, -1);
	struct batch_row *rows = batch_rows(b, AGG_USER, &n);
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].key, 5);
	assert_int_equal(col_sum(&rows[0], COL_USER_REPOST), 2);
	assert_int_equal(col_sum(&rows[0], COL_USER_TRACK_SAVE), 4);
	assert_int_equal(col_sum(&rows[0], COL_USER_FOLLOWER), 5);
	assert_int_equal(col_sum(&rows[0], COL_USER_FOLLOWING), -8);
	assert_int_equal(batch_keys(b), 1);
	free(rows);
	batch_free(b);
}

/* The extremes catch a comparator that subtracts keys and overflows. */
static void test_rows_sorted_by_key(void **state)
{
	struct batch *b = new_batch(state);
	const int64_t in[] = {1000, INT64_MIN, 1, INT64_MAX, -1, 0, -1000};
	const int64_t want[] = {INT64_MIN, -1000, -1, 0, 1, 1000, INT64_MAX};
	size_t n;

	for (size_t i = 0; i < 7; i++)
		add1(b, COL_PLAYLIST_SAVE, in[i], 1);
	struct batch_row *rows = batch_rows(b, AGG_PLAYLIST, &n);
	assert_int_equal(n, 7);
	for (size_t i = 0; i < 7; i++)
		assert_int_equal(rows[i].key, want[i]);
	free(rows);
	batch_free(b);
}

static void test_changes_count_calls_not_deltas(void **state)
{
	struct batch *b = new_batch(state);
	const struct delta d[] = {{COL_USER_FOLLOWER, 1, 1}, {COL_USER_FOLLOWING, 2, 1}};

	assert_true(batch_add(b, NULL, 0));
	assert_int_equal(batch_changes(b), 1);
	assert_int_equal(batch_keys(b), 0);
	assert_true(batch_add(b, d, 2));
	assert_int_equal(batch_changes(b), 2);
	assert_int_equal(batch_keys(b), 2);
	assert_true(batch_add(b, d, 0));
	assert_int_equal(batch_changes(b), 3);
	assert_int_equal(batch_keys(b), 2);
	batch_free(b);
}

/* Enough keys to force several rehashes before the reset, so reuse is
 * checked on a grown table, not only the initial one. */
static void test_reset_then_reuse(void **state)
{
	struct batch *b = new_batch(state);
	size_t n;

	for (int64_t k = 0; k < 5000; k++)
		add1(b, COL_TRACK_REPOST, k, 3);
	assert_int_equal(batch_keys(b), 5000);
	batch_reset(b);
	assert_int_equal(batch_keys(b), 0);
	assert_int_equal(batch_changes(b), 0);
	assert_no_rows(b, AGG_TRACK);

	add1(b, COL_TRACK_REPOST, 17, 1);
	struct batch_row *rows = batch_rows(b, AGG_TRACK, &n);
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].key, 17);
	assert_int_equal(col_sum(&rows[0], COL_TRACK_REPOST), 1); /* not 3 + 1 */
	assert_int_equal(batch_keys(b), 1);
	assert_int_equal(batch_changes(b), 1);
	free(rows);
	batch_free(b);
}

/* --- growth against a reference ------------------------------------------ */

#define POOL 200000
#define CHANGES 400000

/* splitmix64: a seeded, reproducible stream; its finalizer is a bijection,
 * so pool keys built from distinct counters are distinct. */
static uint64_t finalize(uint64_t x)
{
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

static uint64_t next_rand(uint64_t *s)
{
	return finalize(*s += UINT64_C(0x9e3779b97f4a7c15));
}

struct ref {
	int64_t keys[POOL];
	int64_t sum[POOL][COL__COUNT];
	unsigned touched[POOL]; /* bit per agg_table that saw the key */
};

struct keyed {
	int64_t key;
	size_t idx;
};

static int cmp_keyed(const void *a, const void *b)
{
	int64_t x = ((const struct keyed *) a)->key, y = ((const struct keyed *) b)->key;

	return (x > y) - (x < y);
}

/* Feeds CHANGES random changes of 0..DELTA_MAX deltas (repeats and
 * cancellations included) to both the batch and the reference. */
static void feed(struct batch *b, struct ref *r)
{
	uint64_t seed = 20240601;

	for (size_t i = 0; i < POOL; i++)
		r->keys[i] = (int64_t) finalize(i + 1);
	for (size_t i = 0; i < CHANGES; i++) {
		struct delta d[DELTA_MAX];
		size_t n = next_rand(&seed) % (DELTA_MAX + 1);

		for (size_t j = 0; j < n; j++) {
			size_t idx = next_rand(&seed) % POOL;
			enum agg_column c = (enum agg_column)(next_rand(&seed) % COL__COUNT);
			int64_t amount = next_rand(&seed) % 2 ? 1 : -1;

			d[j] = (struct delta){c, r->keys[idx], amount};
			r->sum[idx][c] += amount;
			r->touched[idx] |= 1u << agg_column_table(c);
		}
		assert_true(batch_add(b, d, n));
	}
}

static bool ref_nonzero(const struct ref *r, size_t idx, enum agg_table t)
{
	for (int c = 0; c < COL__COUNT; c++)
		if (agg_column_table((enum agg_column) c) == t && r->sum[idx][c] != 0)
			return true;
	return false;
}

static void check_row(const struct ref *r, const struct keyed *want, const struct batch_row *got, enum agg_table t)
{
	bool used[AGG_MAX_COLUMNS] = {false}; /* columns t lacks must stay 0 */

	assert_int_equal(got->key, want->key);
	for (int c = 0; c < COL__COUNT; c++) {
		if (agg_column_table((enum agg_column) c) != t)
			continue;
		assert_int_equal(col_sum(got, (enum agg_column) c), r->sum[want->idx][c]);
		used[agg_column_index((enum agg_column) c)] = true;
	}
	for (int i = 0; i < AGG_MAX_COLUMNS; i++)
		if (!used[i])
			assert_int_equal(got->d[i], 0);
}

static void check_table(const struct batch *b, const struct ref *r, enum agg_table t, struct keyed *scratch)
{
	size_t want = 0, n;

	for (size_t i = 0; i < POOL; i++)
		if (ref_nonzero(r, i, t))
			scratch[want++] = (struct keyed){r->keys[i], i};
	qsort(scratch, want, sizeof *scratch, cmp_keyed);
	struct batch_row *rows = batch_rows(b, t, &n);
	assert_int_equal(n, want);
	for (size_t i = 0; i < n; i++)
		check_row(r, &scratch[i], &rows[i], t);
	free(rows);
}

static void test_growth_matches_reference(void **state)
{
	struct batch *b = new_batch(state);
	struct ref *r = calloc(1, sizeof *r);
	struct keyed *scratch = malloc(POOL * sizeof *scratch);
	size_t keys = 0;

	assert_non_null(r);
	assert_non_null(scratch);
	feed(b, r);
	for (size_t i = 0; i < POOL; i++)
		for (int t = 0; t < AGG__COUNT; t++)
			keys += (r->touched[i] >> t) & 1;
	assert_int_equal(batch_keys(b), keys);
	assert_int_equal(batch_changes(b), CHANGES);
	for (int t = 0; t < AGG__COUNT; t++)
		check_table(b, r, (enum agg_table) t, scratch);
	free(scratch);
	free(r);
	batch_free(b);
}

static void group_by_partition_keeps_key_order(void **state)
{
	struct batch *b = new_batch(state);
	size_t n, start[5];

	for (int64_t key = 1; key <= 1000; key++)
		add1(b, COL_TRACK_SAVE, key, 1);
	struct batch_row *rows = batch_rows(b, AGG_TRACK, &n);
	assert_int_equal(n, 1000);
	assert_true(batch_group(rows, n, AGG_TRACK, 4, start));
	assert_int_equal(start[0], 0);
	assert_int_equal(start[4], 1000);
	for (int p = 0; p < 4; p++) {
		assert_true(start[p] < start[p + 1]);
		for (size_t i = start[p]; i < start[p + 1]; i++) {
			assert_int_equal(agg_partition(AGG_TRACK, rows[i].key, 4), p);
			if (i > start[p])
				assert_true(rows[i - 1].key < rows[i].key);
		}
	}
	assert_true(batch_group(rows, n, AGG_TRACK, 1, start));
	assert_int_equal(start[0], 0);
	assert_int_equal(start[1], 1000);
	free(rows);
	batch_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_batch_has_no_rows),
		cmocka_unit_test(test_cancelling_deltas_drop_row_but_keep_key),
		cmocka_unit_test(test_same_key_in_different_tables_stays_apart),
		cmocka_unit_test(test_find_one_key),
		cmocka_unit_test(test_user_columns_sum_on_one_key),
		cmocka_unit_test(test_rows_sorted_by_key),
		cmocka_unit_test(test_changes_count_calls_not_deltas),
		cmocka_unit_test(test_reset_then_reuse),
		cmocka_unit_test(test_growth_matches_reference),
		cmocka_unit_test(group_by_partition_keeps_key_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
