/* counters: what walcount counts, as data. The source tables it reads, the
 * aggregate tables it writes and every aggregate column it maintains from
 * the stream or recounts in a reconcile sweep. The statements that write
 * the columns (sql/apply_batch.sql, sql/reconcile_*.sql), the metric labels
 * and the sweep's per-column results all follow this order. Pure, no I/O.
 *
 * Adding a counted column: one enum entry and one row in counters.c, plus
 * the SQL that writes it (and, for a stream column, the rule in delta.c
 * that moves it). */
#ifndef WALCOUNT_COUNTERS_H
#define WALCOUNT_COUNTERS_H

#include <stdbool.h>
#include <stdint.h>

enum src_table {
	SRC_NONE, /* B, C, M carry no table */
	SRC_REPOSTS,
	SRC_SAVES,
	SRC_FOLLOWS,
	SRC__COUNT,
};

enum agg_table { AGG_USER, AGG_TRACK, AGG_PLAYLIST, AGG__COUNT };

/* Every aggregate column walcount writes. The stream's columns come first,
 * grouped by table; the ones only a sweep recounts (from tracks, playlists
 * and comments) follow. */
enum agg_column {
	COL_USER_REPOST,              /* aggregate_user.repost_count */
	COL_USER_TRACK_SAVE,          /* aggregate_user.track_save_count */
	COL_USER_FOLLOWER,            /* aggregate_user.follower_count */
	COL_USER_FOLLOWING,           /* aggregate_user.following_count */
	COL_TRACK_REPOST,             /* aggregate_track.repost_count */
	COL_TRACK_SAVE,               /* aggregate_track.save_count */
	COL_PLAYLIST_REPOST,          /* aggregate_playlist.repost_count */
	COL_PLAYLIST_SAVE,            /* aggregate_playlist.save_count */
	COL__COUNT,                   /* the stream's columns end here */
	COL_USER_TRACKS = COL__COUNT, /* aggregate_user.track_count */
	COL_USER_PLAYLISTS,           /* aggregate_user.playlist_count */
	COL_USER_ALBUMS,              /* aggregate_user.album_count */
	COL_USER_GENRE,               /* aggregate_user.dominant_genre */
	COL_USER_GENRE_COUNT,         /* aggregate_user.dominant_genre_count */
	COL_TRACK_COMMENT,            /* aggregate_track.comment_count */
	COL__ALL,
};

/* Stream columns per aggregate table, the widest being aggregate_user. */
#define AGG_MAX_COLUMNS 4
/* Columns a sweep corrects per aggregate table (stream's and recounted). */
#define AGG_MAX_SWEPT 9

/* The position of a column among its table's columns: stream columns
 * first, so index < agg_stream_columns(table) means the stream maintains
 * it. A table's delta arrays (apply_batch.sql, reconcile_*.sql) and its
 * sweep's per-column counts (reconcile_*.sql) are in this order. */
enum agg_table agg_column_table(enum agg_column c);
int agg_column_index(enum agg_column c);
const char *agg_column_name(enum agg_column c); /* e.g. "repost_count" */
const char *agg_table_name(enum agg_table t);   /* e.g. "aggregate_user" */
const char *agg_table_key(enum agg_table t);    /* e.g. "user_id" */
const char *src_table_name(enum src_table t);   /* e.g. "reposts" */

int agg_stream_columns(enum agg_table t);
int agg_swept_columns(enum agg_table t);
/* The column at index i of table t (0 <= i < agg_swept_columns(t)). */
enum agg_column agg_column_at(enum agg_table t, int i);

/* The batch statement's arrays (apply_batch.sql): per table in enum order,
 * its keys then one delta array per stream column. Returns the position of
 * table t's key array among them (0-based); agg_stream_arrays() is how many
 * arrays there are in all. */
int agg_stream_array(enum agg_table t);
int agg_stream_arrays(void);

/* apply.workers' upper bound: a set of partitions fits a uint64_t mask. */
#define AGG_MAX_PARTITIONS 64

/* The partition (apply.workers) of aggregate row key of table t, for parts
 * partitions: the same in every process and across restarts. */
int agg_partition(enum agg_table t, int64_t key, int parts);

#endif
