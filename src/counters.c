/* counters: the columns and tables of counters.h as one table each. */
#include "counters.h"

#include <stddef.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Indexed by enum agg_column; index as agg_column_index() describes. */
static const struct {
	enum agg_table table;
	int index;
	const char *name;
} columns[] = {
	[COL_USER_REPOST] = {AGG_USER, 0, "repost_count"},
	[COL_USER_TRACK_SAVE] = {AGG_USER, 1, "track_save_count"},
	[COL_USER_FOLLOWER] = {AGG_USER, 2, "follower_count"},
	[COL_USER_FOLLOWING] = {AGG_USER, 3, "following_count"},
	[COL_TRACK_REPOST] = {AGG_TRACK, 0, "repost_count"},
	[COL_TRACK_SAVE] = {AGG_TRACK, 1, "save_count"},
	[COL_PLAYLIST_REPOST] = {AGG_PLAYLIST, 0, "repost_count"},
	[COL_PLAYLIST_SAVE] = {AGG_PLAYLIST, 1, "save_count"},
	[COL_USER_TRACKS] = {AGG_USER, 4, "track_count"},
	[COL_USER_PLAYLISTS] = {AGG_USER, 5, "playlist_count"},
	[COL_USER_ALBUMS] = {AGG_USER, 6, "album_count"},
	[COL_USER_GENRE] = {AGG_USER, 7, "dominant_genre"},
	[COL_USER_GENRE_COUNT] = {AGG_USER, 8, "dominant_genre_count"},
	[COL_TRACK_COMMENT] = {AGG_TRACK, 2, "comment_count"},
};

_Static_assert(ARRAY_LEN(columns) == COL__ALL, "one row per aggregate column");

static const struct {
	const char *name, *key;
} tables[] = {
	[AGG_USER] = {"aggregate_user", "user_id"},
	[AGG_TRACK] = {"aggregate_track", "track_id"},
	[AGG_PLAYLIST] = {"aggregate_playlist", "playlist_id"},
};

static const char *const sources[] = {
	[SRC_NONE] = "none",
	[SRC_REPOSTS] = "reposts",
	[SRC_SAVES] = "saves",
	[SRC_FOLLOWS] = "follows",
};

enum agg_table agg_column_table(enum agg_column c)
{
	return columns[c].table;
}

int agg_column_index(enum agg_column c)
{
	return columns[c].index;
}

const char *agg_column_name(enum agg_column c)
{
	return (size_t) c < ARRAY_LEN(columns) ? columns[c].name : "unknown";
}

const char *agg_table_name(enum agg_table t)
{
	return (size_t) t < ARRAY_LEN(tables) ? tables[t].name : "unknown";
}

const char *agg_table_key(enum agg_table t)
{
	return (size_t) t < ARRAY_LEN(tables) ? tables[t].key : "unknown";
}

const char *src_table_name(enum src_table t)
{
	return (size_t) t < ARRAY_LEN(sources) ? sources[t] : "unknown";
}

/* Columns of table t among columns[first..last). */
static int count_columns(enum agg_table t, int first, int last)
{
	int n = 0;

	for (int c = first; c < last; c++)
		n += columns[c].table == t;
	return n;
}

int agg_stream_columns(enum agg_table t)
{
	return count_columns(t, 0, COL__COUNT);
}

int agg_swept_columns(enum agg_table t)
{
	return count_columns(t, 0, COL__ALL);
}

enum agg_column agg_column_at(enum agg_table t, int i)
{
	for (int c = 0; c < COL__ALL; c++)
		if (columns[c].table == t && columns[c].index == i)
			return (enum agg_column) c;
	return COL__ALL;
}

int agg_stream_array(enum agg_table t)
{
	int n = 0;

	for (int u = 0; u < (int) t; u++)
		n += 1 + agg_stream_columns((enum agg_table) u);
	return n;
}

int agg_stream_arrays(void)
{
	return agg_stream_array(AGG__COUNT);
}

int agg_partition(enum agg_table t, int64_t key, int parts)
{
	/* splitmix64's finaliser: neighbouring ids (a user's new follows, a
	 * viral track's neighbours) spread over all partitions. */
	uint64_t x = (uint64_t) key ^ ((uint64_t) t << 56);

	if (parts <= 1)
		return 0;
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return (int) (x % (uint64_t) parts);
}
