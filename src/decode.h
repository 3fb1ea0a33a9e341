/* decode: one wal2json format-version 2 record (a JSON text) into a change.
 * Pure: no I/O; the only process-wide state is jansson's, set once
 * (decode_init), and each thread parses in an arena of its own. */
#ifndef WALCOUNT_DECODE_H
#define WALCOUNT_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "counters.h"
#include "lsn.h"

enum change_action {
	ACT_BEGIN,    /* "B" */
	ACT_COMMIT,   /* "C" */
	ACT_INSERT,   /* "I" */
	ACT_UPDATE,   /* "U" */
	ACT_DELETE,   /* "D" */
	ACT_TRUNCATE, /* "T" */
	ACT_MESSAGE,  /* "M" (pg_logical_emit_message) */
};

/* Values the counting rules read; NULL-able as in a real row. */
enum tri { TRI_NULL, TRI_FALSE, TRI_TRUE };

enum item_type {
	ITEM_NONE, /* follows have no item type */
	ITEM_TRACK,
	ITEM_PLAYLIST,
	ITEM_ALBUM,
	ITEM_UNKNOWN, /* a value this version does not know, or NULL */
};

/* One row image. For reposts/saves: user = user_id, item = repost_item_id /
 * save_item_id, type = repost_type / save_type. For follows: user =
 * follower_user_id, item = followee_user_id, type = ITEM_NONE. */
struct image {
	bool present;
	bool key_null;   /* user or item was JSON null */
	bool incomplete; /* an "identity" image without a column the rules
				* read: the replica identity does not carry it */
	int64_t user;
	int64_t item;
	enum item_type type;
	enum tri is_current;
	enum tri is_delete;
};

struct change {
	enum change_action action;
	uint64_t xid;           /* 0 when the record has none */
	lsn_t lsn;              /* the record's "lsn" */
	lsn_t end_lsn;          /* B and C: "nextlsn", the commit's end LSN */
	int64_t commit_time_us; /* B and C: "timestamp" as Unix microseconds;
				 * 0 when absent or not in ISO style */
	enum src_table table;
	struct image old; /* U (from "identity"), D */
	struct image new; /* I, U */
};

/* Parses one wal2json v2 record of len bytes (not NUL-terminated) into *out.
 * An UPDATE without "identity" (identity index untouched) gets old = new;
 * an "identity" lacking a column the rules read gives old.incomplete (the
 * replica identity is not FULL), not an error. Returns true on success. On failure returns false and writes a one-line
 * reason naming the record's LSN (when it has one) into err. Never skips:
 * a table other than public.reposts/saves/follows, an unknown action, a
 * missing required field or a wrong JSON type is an error. */
bool decode_record(const char *json, size_t len, struct change *out, char *err, size_t errlen);

/* Sets what jansson keeps process-wide (its hash seed, the allocator behind
 * the per-thread arena). decode_record calls it itself; a program that
 * parses on several threads calls it first, before they start. */
void decode_init(void);

/* Frees the calling thread's arena: a thread that called decode_record
 * calls it before it ends. */
void decode_thread_exit(void);

const char *change_action_name(enum change_action a);

#endif
