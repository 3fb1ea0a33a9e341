/* delta: the counting rules of audius-schema-facts.md as data. An image
 * that is active (is_current AND NOT is_delete) counts once on each column
 * its table and item type move; a change is new image minus old image. */
#include "delta.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Marks "this image moves no column on that key". */
#define COL_NONE COL__ALL

/* The columns one active image moves: one keyed by image.user, one keyed
 * by image.item. counted = false means no rule exists for that item type,
 * which delta_derive reports as SKIP_UNKNOWN_TYPE. */
struct rule {
	bool counted;
	enum agg_column user_col;
	enum agg_column item_col;
};

/* Indexed by [src_table][item_type]; entries left out are not counted. */
static const struct rule rules[][ITEM_UNKNOWN + 1] =
	{
		[SRC_REPOSTS] =
			{
				[ITEM_TRACK] = {true, COL_USER_REPOST, COL_TRACK_REPOST},
				[ITEM_PLAYLIST] = {true, COL_USER_REPOST, COL_PLAYLIST_REPOST},
				[ITEM_ALBUM] = {true, COL_USER_REPOST, COL_PLAYLIST_REPOST},
			},
		/* Saving a playlist or album moves no user counter. */
		[SRC_SAVES] =
			{
				[ITEM_TRACK] = {true, COL_USER_TRACK_SAVE, COL_TRACK_SAVE},
				[ITEM_PLAYLIST] = {true, COL_NONE, COL_PLAYLIST_SAVE},
				[ITEM_ALBUM] = {true, COL_NONE, COL_PLAYLIST_SAVE},
			},
		/* user = follower, item = followee. */
		[SRC_FOLLOWS] =
			{
				[ITEM_NONE] = {true, COL_USER_FOLLOWING, COL_USER_FOLLOWER},
			},
};

static const char *const skip_names[] = {
	[SKIP_NONE] = "none",         [SKIP_NULL_FLAG] = "null_flag", [SKIP_UNKNOWN_TYPE] = "unknown_type",
	[SKIP_NULL_KEY] = "null_key", [SKIP_IDENTITY] = "identity",
};

static const struct rule *rule_of(enum src_table t, enum item_type type)
{
	static const struct rule none = {false, COL_NONE, COL_NONE};

	if ((size_t) t >= ARRAY_LEN(rules) || (size_t) type >= ARRAY_LEN(rules[0]))
		return &none;
	return &rules[t][type];
}

/* The first reason, in enum order, why an image cannot be counted.
 * Absent images (old of I, new of D) are never a reason. */
static enum skip_reason image_skip(enum src_table t, const struct image *img)
{
	if (!img->present)
		return SKIP_NONE;
	if (img->incomplete)
		return SKIP_IDENTITY;
	if (img->is_current == TRI_NULL || img->is_delete == TRI_NULL)
		return SKIP_NULL_FLAG;
	if (!rule_of(t, img->type)->counted)
		return SKIP_UNKNOWN_TYPE;
	if (img->key_null)
		return SKIP_NULL_KEY;
	return SKIP_NONE;
}

/* The lower of two reasons, SKIP_NONE only when both are, so the reason
 * reported does not depend on which image has the problem; SKIP_IDENTITY
 * first, since it alone asks for a sweep. */
static enum skip_reason first_reason(enum skip_reason a, enum skip_reason b)
{
	if (a == SKIP_IDENTITY || b == SKIP_IDENTITY)
		return SKIP_IDENTITY;
	if (a == SKIP_NONE)
		return b;
	if (b == SKIP_NONE)
		return a;
	return a < b ? a : b;
}

/* A reason that makes the whole change uncountable. A NULL flag does not:
 * that image counts as not active, as in the recount (NULL is not true). */
static enum skip_reason whole_reason(enum skip_reason r)
{
	return r == SKIP_NULL_FLAG ? SKIP_NONE : r;
}

/* Adds amount to (column, key) in out[0..n), appending when new. Returns
 * the new count. out has room: each image adds at most two entries. */
static size_t add(struct delta *out, size_t n, enum agg_column column, int64_t key, int64_t amount)
{
	if (column == COL_NONE)
		return n;
	for (size_t i = 0; i < n; i++) {
		if (out[i].column == column && out[i].key == key) {
			out[i].amount += amount;
			return n;
		}
	}
	out[n] = (struct delta){column, key, amount};
	return n + 1;
}

/* Adds sign on every column an image moves, when it is active. */
static size_t add_image(enum src_table t, const struct image *img, int64_t sign, struct delta *out, size_t n)
{
	const struct rule *r;

	if (!img->present || img->is_current != TRI_TRUE || img->is_delete != TRI_FALSE)
		return n;
	r = rule_of(t, img->type);
	n = add(out, n, r->user_col, img->user, sign);
	return add(out, n, r->item_col, img->item, sign);
}

/* Removes entries whose sum is zero, keeping the others' order. */
static size_t drop_zeros(struct delta *out, size_t n)
{
	size_t kept = 0;

	for (size_t i = 0; i < n; i++)
		if (out[i].amount != 0)
			out[kept++] = out[i];
	return kept;
}

size_t delta_derive(const struct change *c, struct delta out[DELTA_MAX], enum skip_reason *skip)
{
	size_t n;

	*skip = SKIP_NONE;
	if (c->action != ACT_INSERT && c->action != ACT_UPDATE && c->action != ACT_DELETE)
		return 0;
	enum skip_reason old = image_skip(c->table, &c->old), new = image_skip(c->table, &c->new);
	*skip = first_reason(whole_reason(old), whole_reason(new));
	if (*skip != SKIP_NONE)
		return 0;
	*skip = first_reason(old, new);
	n = add_image(c->table, &c->old, -1, out, 0);
	n = add_image(c->table, &c->new, +1, out, n);
	return drop_zeros(out, n);
}

const char *skip_reason_name(enum skip_reason r)
{
	return (size_t) r < ARRAY_LEN(skip_names) ? skip_names[r] : "unknown";
}
