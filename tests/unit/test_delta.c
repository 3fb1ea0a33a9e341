/* delta: the counting rules, one table row per change shape. Deltas are
 * compared as a set (derive's order is not part of its contract). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "delta.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* clang-format off */
#define IMG(u, i, ty, cur, del)                                                               \
	{                                                                                     \
		.present = true, .user = (u), .item = (i), .type = (ty), .is_current = (cur), \
		.is_delete = (del)                                                            \
	}
#define ACTIVE(u, i, ty) IMG(u, i, ty, TRI_TRUE, TRI_FALSE)
#define DELETED(u, i, ty) IMG(u, i, ty, TRI_TRUE, TRI_TRUE)
#define DEMOTED(u, i, ty) IMG(u, i, ty, TRI_FALSE, TRI_FALSE)
#define NULL_KEY(i, ty) {.present = true, .key_null = true, .item = (i), .type = (ty), \
			 .is_current = TRI_TRUE, .is_delete = TRI_FALSE}

#define INCOMPLETE(u, i) {.present = true, .incomplete = true, .user = (u), .item = (i)}

#define INS(t, img) {.action = ACT_INSERT, .table = (t), .new = img}
#define UPD(t, o, n) {.action = ACT_UPDATE, .table = (t), .old = o, .new = n}
#define DEL(t, img) {.action = ACT_DELETE, .table = (t), .old = img}
/* clang-format on */

struct delta_case {
	const char *name;
	struct change change;
	enum skip_reason skip;
	size_t n;
	struct delta expect[DELTA_MAX];
};

/* Not const: cmocka's test state is a plain pointer. */
/* clang-format off */
static struct delta_case cases[] = {
	/* reposts */
	{"repost insert active track", INS(SRC_REPOSTS, ACTIVE(3, 11, ITEM_TRACK)), SKIP_NONE, 2,
	 {{COL_USER_REPOST, 3, 1}, {COL_TRACK_REPOST, 11, 1}}},
	{"repost insert active playlist", INS(SRC_REPOSTS, ACTIVE(4, 12, ITEM_PLAYLIST)), SKIP_NONE, 2,
	 {{COL_USER_REPOST, 4, 1}, {COL_PLAYLIST_REPOST, 12, 1}}},
	{"repost insert active album", INS(SRC_REPOSTS, ACTIVE(4, 12, ITEM_ALBUM)), SKIP_NONE, 2,
	 {{COL_USER_REPOST, 4, 1}, {COL_PLAYLIST_REPOST, 12, 1}}},
	{"repost insert deleted", INS(SRC_REPOSTS, DELETED(3, 11, ITEM_TRACK)), SKIP_NONE, 0, {{0}}},
	{"repost insert not current", INS(SRC_REPOSTS, DEMOTED(3, 11, ITEM_TRACK)), SKIP_NONE, 0, {{0}}},
	{"repost insert not current and deleted",
	 INS(SRC_REPOSTS, IMG(3, 11, ITEM_TRACK, TRI_FALSE, TRI_TRUE)), SKIP_NONE, 0, {{0}}},
	{"repost toggle off",
	 UPD(SRC_REPOSTS, ACTIVE(3, 11, ITEM_TRACK), DELETED(3, 11, ITEM_TRACK)), SKIP_NONE, 2,
	 {{COL_USER_REPOST, 3, -1}, {COL_TRACK_REPOST, 11, -1}}},
	{"repost toggle on",
	 UPD(SRC_REPOSTS, DELETED(3, 11, ITEM_TRACK), ACTIVE(3, 11, ITEM_TRACK)), SKIP_NONE, 2,
	 {{COL_USER_REPOST, 3, 1}, {COL_TRACK_REPOST, 11, 1}}},
	{"repost redelivery active",
	 UPD(SRC_REPOSTS, ACTIVE(3, 11, ITEM_TRACK), ACTIVE(3, 11, ITEM_TRACK)), SKIP_NONE, 0, {{0}}},
	{"repost redelivery deleted",
	 UPD(SRC_REPOSTS, DELETED(3, 11, ITEM_TRACK), DELETED(3, 11, ITEM_TRACK)), SKIP_NONE, 0, {{0}}},
	{"repost demotion",
	 UPD(SRC_REPOSTS, ACTIVE(4, 12, ITEM_PLAYLIST), DEMOTED(4, 12, ITEM_PLAYLIST)), SKIP_NONE, 2,
	 {{COL_USER_REPOST, 4, -1}, {COL_PLAYLIST_REPOST, 12, -1}}},
	{"repost delete active", DEL(SRC_REPOSTS, ACTIVE(3, 11, ITEM_TRACK)), SKIP_NONE, 2,
	 {{COL_USER_REPOST, 3, -1}, {COL_TRACK_REPOST, 11, -1}}},
	{"repost delete deleted", DEL(SRC_REPOSTS, DELETED(3, 11, ITEM_TRACK)), SKIP_NONE, 0, {{0}}},
	{"repost delete not current", DEL(SRC_REPOSTS, DEMOTED(3, 11, ITEM_TRACK)), SKIP_NONE, 0, {{0}}},
	{"repost item change moves the count",
	 UPD(SRC_REPOSTS, ACTIVE(3, 11, ITEM_TRACK), ACTIVE(3, 12, ITEM_TRACK)), SKIP_NONE, 2,
	 {{COL_TRACK_REPOST, 11, -1}, {COL_TRACK_REPOST, 12, 1}}},
	{"repost type track to playlist",
	 UPD(SRC_REPOSTS, ACTIVE(3, 11, ITEM_TRACK), ACTIVE(3, 11, ITEM_PLAYLIST)), SKIP_NONE, 2,
	 {{COL_TRACK_REPOST, 11, -1}, {COL_PLAYLIST_REPOST, 11, 1}}},
	{"repost user and item change",
	 UPD(SRC_REPOSTS, ACTIVE(3, 11, ITEM_TRACK), ACTIVE(5, 12, ITEM_ALBUM)), SKIP_NONE, 4,
	 {{COL_USER_REPOST, 3, -1}, {COL_TRACK_REPOST, 11, -1}, {COL_USER_REPOST, 5, 1},
	  {COL_PLAYLIST_REPOST, 12, 1}}},
	/* saves */
	{"save insert track", INS(SRC_SAVES, ACTIVE(3, 11, ITEM_TRACK)), SKIP_NONE, 2,
	 {{COL_USER_TRACK_SAVE, 3, 1}, {COL_TRACK_SAVE, 11, 1}}},
	{"save insert playlist", INS(SRC_SAVES, ACTIVE(3, 12, ITEM_PLAYLIST)), SKIP_NONE, 1,
	 {{COL_PLAYLIST_SAVE, 12, 1}}},
	{"save insert album", INS(SRC_SAVES, ACTIVE(3, 12, ITEM_ALBUM)), SKIP_NONE, 1,
	 {{COL_PLAYLIST_SAVE, 12, 1}}},
	{"save album toggle off",
	 UPD(SRC_SAVES, ACTIVE(3, 12, ITEM_ALBUM), DELETED(3, 12, ITEM_ALBUM)), SKIP_NONE, 1,
	 {{COL_PLAYLIST_SAVE, 12, -1}}},
	{"save type track to album",
	 UPD(SRC_SAVES, ACTIVE(3, 11, ITEM_TRACK), ACTIVE(3, 11, ITEM_ALBUM)), SKIP_NONE, 3,
	 {{COL_USER_TRACK_SAVE, 3, -1}, {COL_TRACK_SAVE, 11, -1}, {COL_PLAYLIST_SAVE, 11, 1}}},
	{"save delete track", DEL(SRC_SAVES, ACTIVE(3, 11, ITEM_TRACK)), SKIP_NONE, 2,
	 {{COL_USER_TRACK_SAVE, 3, -1}, {COL_TRACK_SAVE, 11, -1}}},
	/* follows: user = follower, item = followee */
	{"follow insert", INS(SRC_FOLLOWS, ACTIVE(7, 8, ITEM_NONE)), SKIP_NONE, 2,
	 {{COL_USER_FOLLOWING, 7, 1}, {COL_USER_FOLLOWER, 8, 1}}},
	{"follow insert of self", INS(SRC_FOLLOWS, ACTIVE(7, 7, ITEM_NONE)), SKIP_NONE, 2,
	 {{COL_USER_FOLLOWING, 7, 1}, {COL_USER_FOLLOWER, 7, 1}}},
	{"follow unfollow",
	 UPD(SRC_FOLLOWS, ACTIVE(7, 8, ITEM_NONE), DELETED(7, 8, ITEM_NONE)), SKIP_NONE, 2,
	 {{COL_USER_FOLLOWING, 7, -1}, {COL_USER_FOLLOWER, 8, -1}}},
	{"follow redelivery",
	 UPD(SRC_FOLLOWS, ACTIVE(7, 8, ITEM_NONE), ACTIVE(7, 8, ITEM_NONE)), SKIP_NONE, 0, {{0}}},
	{"follow delete active", DEL(SRC_FOLLOWS, ACTIVE(7, 8, ITEM_NONE)), SKIP_NONE, 2,
	 {{COL_USER_FOLLOWING, 7, -1}, {COL_USER_FOLLOWER, 8, -1}}},
	{"follow delete deleted", DEL(SRC_FOLLOWS, DELETED(7, 8, ITEM_NONE)), SKIP_NONE, 0, {{0}}},
	/* skipped changes */
	{"null is_delete on insert",
	 INS(SRC_REPOSTS, IMG(3, 11, ITEM_TRACK, TRI_TRUE, TRI_NULL)), SKIP_NULL_FLAG, 0, {{0}}},
	{"null is_current on delete",
	 DEL(SRC_SAVES, IMG(3, 11, ITEM_TRACK, TRI_NULL, TRI_FALSE)), SKIP_NULL_FLAG, 0, {{0}}},
	{"null is_delete in old image counts it as not active",
	 UPD(SRC_FOLLOWS, IMG(7, 8, ITEM_NONE, TRI_TRUE, TRI_NULL), ACTIVE(7, 8, ITEM_NONE)),
	 SKIP_NULL_FLAG, 2, {{COL_USER_FOLLOWING, 7, 1}, {COL_USER_FOLLOWER, 8, 1}}},
	{"null is_delete in new image takes the old image's count away",
	 UPD(SRC_REPOSTS, ACTIVE(3, 11, ITEM_TRACK), IMG(3, 11, ITEM_TRACK, TRI_TRUE, TRI_NULL)),
	 SKIP_NULL_FLAG, 2, {{COL_USER_REPOST, 3, -1}, {COL_TRACK_REPOST, 11, -1}}},
	{"unknown repost_type on insert", INS(SRC_REPOSTS, ACTIVE(3, 11, ITEM_UNKNOWN)),
	 SKIP_UNKNOWN_TYPE, 0, {{0}}},
	{"unknown save_type in new image",
	 UPD(SRC_SAVES, ACTIVE(3, 11, ITEM_TRACK), ACTIVE(3, 11, ITEM_UNKNOWN)), SKIP_UNKNOWN_TYPE,
	 0, {{0}}},
	{"unknown type on a deleted row", DEL(SRC_REPOSTS, DELETED(3, 11, ITEM_UNKNOWN)),
	 SKIP_UNKNOWN_TYPE, 0, {{0}}},
	{"null key on insert", INS(SRC_REPOSTS, NULL_KEY(11, ITEM_TRACK)), SKIP_NULL_KEY, 0, {{0}}},
	/* An old image the replica identity does not carry: nothing derived,
	 * and identity wins over any other reason (only it asks for a sweep). */
	{"incomplete old image on delete", DEL(SRC_FOLLOWS, INCOMPLETE(7, 8)), SKIP_IDENTITY, 0, {{0}}},
	{"incomplete old image on update", UPD(SRC_FOLLOWS, INCOMPLETE(7, 8), ACTIVE(7, 8, ITEM_NONE)), SKIP_IDENTITY, 0,
	 {{0}}},
	{"incomplete old image, new with a null key",
	 UPD(SRC_REPOSTS, INCOMPLETE(3, 11), NULL_KEY(11, ITEM_TRACK)), SKIP_IDENTITY, 0, {{0}}},
	{"null key in follows old image",
	 UPD(SRC_FOLLOWS, NULL_KEY(8, ITEM_NONE), ACTIVE(7, 8, ITEM_NONE)), SKIP_NULL_KEY, 0, {{0}}},
	{"unknown type in old image skips despite a null flag in new",
	 UPD(SRC_REPOSTS, ACTIVE(3, 11, ITEM_UNKNOWN), IMG(3, 11, ITEM_TRACK, TRI_NULL, TRI_FALSE)),
	 SKIP_UNKNOWN_TYPE, 0, {{0}}},
	{"unknown type in new image skips despite a null flag in old",
	 UPD(SRC_REPOSTS, IMG(3, 11, ITEM_TRACK, TRI_TRUE, TRI_NULL), ACTIVE(3, 11, ITEM_UNKNOWN)),
	 SKIP_UNKNOWN_TYPE, 0, {{0}}},
	/* actions that carry no row */
	{"begin", {.action = ACT_BEGIN, .xid = 9, .lsn = 0xA0, .end_lsn = 0xB0}, SKIP_NONE, 0, {{0}}},
	{"commit", {.action = ACT_COMMIT, .xid = 9, .lsn = 0xA0, .end_lsn = 0xB0}, SKIP_NONE, 0, {{0}}},
	{"truncate", {.action = ACT_TRUNCATE, .table = SRC_FOLLOWS}, SKIP_NONE, 0, {{0}}},
	{"message", {.action = ACT_MESSAGE}, SKIP_NONE, 0, {{0}}},
};
/* clang-format on */

/* Checks that got[0..n) equals want[0..n) as a set: every wanted delta
 * matched by exactly one distinct derived delta. */
static void assert_same_deltas(const struct delta *want, const struct delta *got, size_t n)
{
	bool used[DELTA_MAX] = {false};

	for (size_t i = 0; i < n; i++) {
		size_t j = 0;

		while (j < n && (used[j] || got[j].column != want[i].column || got[j].key != want[i].key ||
				 got[j].amount != want[i].amount))
			j++;
		if (j == n)
			fail_msg("missing delta %s key %lld amount %lld", agg_column_name(want[i].column),
				 (long long) want[i].key, (long long) want[i].amount);
		used[j] = true;
	}
}

static void test_delta_case(void **state)
{
	const struct delta_case *dc = *state;
	struct delta out[DELTA_MAX];
	enum skip_reason skip = SKIP__COUNT;
	size_t n;

	memset(out, 0x5a, sizeof(out));
	n = delta_derive(&dc->change, out, &skip);
	assert_string_equal(skip_reason_name(skip), skip_reason_name(dc->skip));
	assert_int_equal(n, dc->n);
	for (size_t i = 0; i < n; i++)
		assert_int_not_equal(out[i].amount, 0);
	assert_same_deltas(dc->expect, out, n);
}

static void test_column_layout(void **state)
{
	static const struct {
		enum agg_column col;
		enum agg_table table;
		int index;
		const char *name;
	} want[] = {
		{COL_USER_REPOST, AGG_USER, 0, "repost_count"},         {COL_USER_TRACK_SAVE, AGG_USER, 1, "track_save_count"},
		{COL_USER_FOLLOWER, AGG_USER, 2, "follower_count"},     {COL_USER_FOLLOWING, AGG_USER, 3, "following_count"},
		{COL_TRACK_REPOST, AGG_TRACK, 0, "repost_count"},       {COL_TRACK_SAVE, AGG_TRACK, 1, "save_count"},
		{COL_PLAYLIST_REPOST, AGG_PLAYLIST, 0, "repost_count"}, {COL_PLAYLIST_SAVE, AGG_PLAYLIST, 1, "save_count"},
	};

	(void) state;
	assert_int_equal(ARRAY_LEN(want), COL__COUNT);
	for (size_t i = 0; i < ARRAY_LEN(want); i++) {
		assert_int_equal(agg_column_table(want[i].col), want[i].table);
		assert_int_equal(agg_column_index(want[i].col), want[i].index);
		assert_in_range(agg_column_index(want[i].col), 0, AGG_MAX_COLUMNS - 1);
		assert_string_equal(agg_column_name(want[i].col), want[i].name);
	}
}

static void test_names(void **state)
{
	(void) state;
	assert_string_equal(agg_table_name(AGG_USER), "aggregate_user");
	assert_string_equal(agg_table_name(AGG_TRACK), "aggregate_track");
	assert_string_equal(agg_table_name(AGG_PLAYLIST), "aggregate_playlist");
	assert_string_equal(skip_reason_name(SKIP_NONE), "none");
	assert_string_equal(skip_reason_name(SKIP_NULL_FLAG), "null_flag");
	assert_string_equal(skip_reason_name(SKIP_UNKNOWN_TYPE), "unknown_type");
	assert_string_equal(skip_reason_name(SKIP_NULL_KEY), "null_key");
	assert_string_equal(skip_reason_name(SKIP_IDENTITY), "identity");
}

int main(void)
{
	const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_column_layout),
		cmocka_unit_test(test_names),
	};
	struct CMUnitTest tests[ARRAY_LEN(fixed) + ARRAY_LEN(cases)];

	memcpy(tests, fixed, sizeof(fixed));
	for (size_t i = 0; i < ARRAY_LEN(cases); i++)
		tests[ARRAY_LEN(fixed) + i] = (struct CMUnitTest){
			.name = cases[i].name,
			.test_func = test_delta_case,
			.initial_state = &cases[i],
		};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
