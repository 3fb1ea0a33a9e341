/* decode: one wal2json format-version 2 record into a struct change.
 * Reads only the fields the counting rules need; everything it does not
 * understand is an error, because skipping a record silently would lose a
 * count forever. */
#include "decode.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* jansson allocates every value of a record on its own, and a record's
 * tree lives only inside decode_record: there, allocations come from a
 * bump arena reset per record (malloc and free were a fifth of walcount's
 * CPU applying a backlog; bench/results.md). Other jansson users (logs,
 * status, other threads) and what does not fit use malloc. */
#define ARENA_BYTES (256 * 1024)
#define ARENA_ALIGN 16

static _Thread_local struct {
	char *base;
	size_t used;
	bool active;
} arena;

static void *arena_alloc(size_t n)
{
	size_t rounded = (n + ARENA_ALIGN - 1) & ~(size_t) (ARENA_ALIGN - 1);

	if (arena.active && arena.base != NULL && n <= ARENA_BYTES && rounded <= ARENA_BYTES - arena.used) {
		void *p = arena.base + arena.used;
		arena.used += rounded;
		return p;
	}
	/* A record is as big as its transaction made it: NULL fails its
	 * parse, which stops with the LSN, instead of aborting (xalloc.h). */
	return malloc(n);
}

static void arena_free(void *p)
{
	uintptr_t at = (uintptr_t) p, base = (uintptr_t) arena.base;

	if (arena.base == NULL || at < base || at >= base + ARENA_BYTES)
		free(p);
}

static bool installed;

void decode_init(void)
{
	if (installed)
		return;
	json_object_seed(0);
	json_set_alloc_funcs(arena_alloc, arena_free);
	installed = true;
}

void decode_thread_exit(void)
{
	free(arena.base);
	arena.base = NULL;
}

/* Routes jansson through the arena (once) and opens it for one record. */
static void arena_open(void)
{
	decode_init();
	if (arena.base == NULL)
		arena.base = malloc(ARENA_BYTES);
	arena.used = 0;
	arena.active = true;
}

/* What a record must carry besides "action". */
enum needs {
	NEED_TXN = 1 << 0,   /* "xid" and "lsn" */
	NEED_END = 1 << 1,   /* "nextlsn" */
	NEED_TABLE = 1 << 2, /* "schema" and "table" */
};

/* Indexed by enum change_action. */
static const struct {
	char code;
	const char *name;
	unsigned needs;
} actions[] = {
	[ACT_BEGIN] = {'B', "begin", NEED_TXN | NEED_END},
	[ACT_COMMIT] = {'C', "commit", NEED_TXN | NEED_END},
	[ACT_INSERT] = {'I', "insert", NEED_TXN | NEED_TABLE},
	[ACT_UPDATE] = {'U', "update", NEED_TXN | NEED_TABLE},
	[ACT_DELETE] = {'D', "delete", NEED_TXN | NEED_TABLE},
	[ACT_TRUNCATE] = {'T', "truncate", NEED_TXN | NEED_TABLE},
	/* A non-transactional message may come without xid; M has no
	 * required field. */
	[ACT_MESSAGE] = {'M', "message", 0},
};

/* Error context: where the reason goes and, once read, the record's LSN
 * and the image being read, so every message can name them. */
struct ctx {
	char *err;
	size_t errlen;
	bool have_lsn;
	lsn_t lsn;
	const char *table; /* image context, set by read_image */
	const char *image;
};

/* Reads one needed column's value into an image; the column name is passed
 * for error messages. */
typedef bool column_reader(struct ctx *c, const char *col, json_t *v, struct image *img);

struct column_spec {
	const char *name;
	column_reader *read;
};

static column_reader read_user, read_item, read_type, read_current, read_delete;

/* The columns each source table's images must carry; NULL-terminated.
 * Other columns (txhash, blockhash, ...) are ignored. */
static const struct table_spec {
	enum src_table table;
	struct column_spec cols[6];
} specs[] = {
	{SRC_REPOSTS,
	 {{"user_id", read_user},
	  {"repost_item_id", read_item},
	  {"repost_type", read_type},
	  {"is_current", read_current},
	  {"is_delete", read_delete},
	  {NULL, NULL}}},
	{SRC_SAVES,
	 {{"user_id", read_user},
	  {"save_item_id", read_item},
	  {"save_type", read_type},
	  {"is_current", read_current},
	  {"is_delete", read_delete},
	  {NULL, NULL}}},
	{SRC_FOLLOWS,
	 {{"follower_user_id", read_user},
	  {"followee_user_id", read_item},
	  {"is_current", read_current},
	  {"is_delete", read_delete},
	  {NULL, NULL}}},
};

static const struct {
	const char *name;
	enum item_type type;
} item_types[] = {
	{"track", ITEM_TRACK},
	{"playlist", ITEM_PLAYLIST},
	{"album", ITEM_ALBUM},
};

static const char *const json_type_names[] = {
	[JSON_OBJECT] = "an object",
	[JSON_ARRAY] = "an array",
	[JSON_STRING] = "a string",
	[JSON_INTEGER] = "an integer",
};

static bool fail(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes "wal2json record[ at LSN]: <reason>" into c->err. Always returns
 * false so callers can write `return fail(...)`. */
static bool fail(struct ctx *c, const char *fmt, ...)
{
	char at[LSN_BUFLEN + 4] = "";
	char buf[LSN_BUFLEN];
	va_list ap;
	int n;

	if (c->have_lsn)
		snprintf(at, sizeof(at), " at %s", lsn_format(c->lsn, buf));
	n = snprintf(c->err, c->errlen, "wal2json record%s: ", at);
	if (n < 0 || (size_t) n >= c->errlen)
		return false;
	va_start(ap, fmt);
	vsnprintf(c->err + n, c->errlen - (size_t) n, fmt, ap);
	va_end(ap);
	return false;
}

/* Record text (table names, bad values, jansson's "near" token) is quoted
 * into messages; control bytes would break the one-line log contract. */
static void one_line(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char) *s < 0x20)
			*s = ' ';
}

/* Looks up key in obj and checks its JSON type (object, array, string or
 * integer). A missing key or another type is an error. */
static bool member(struct ctx *c, json_t *obj, const char *key, json_type type, json_t **out)
{
	*out = json_object_get(obj, key);
	if (*out == NULL)
		return fail(c, "missing \"%s\"", key);
	if (json_typeof(*out) != type)
		return fail(c, "\"%s\" is not %s", key, json_type_names[type]);
	return true;
}

/* Reads an "X/X" string member into *out. Returns true without touching
 * *out when the member is absent and not required. */
static bool read_lsn(struct ctx *c, json_t *root, const char *key, bool required, lsn_t *out)
{
	json_t *v;

	if (!required && json_object_get(root, key) == NULL)
		return true;
	if (!member(c, root, key, JSON_STRING, &v))
		return false;
	if (!lsn_parse(json_string_value(v), out))
		return fail(c, "\"%s\" is not an LSN: \"%s\"", key, json_string_value(v));
	return true;
}

/* Reads "xid" (a non-negative JSON integer); absent or null leaves *out at
 * 0 when not required: wal2json writes "xid":null for a message emitted
 * outside a transaction. */
static bool read_xid(struct ctx *c, json_t *root, bool required, uint64_t *out)
{
	json_t *v = json_object_get(root, "xid");

	if (!required && (v == NULL || json_is_null(v)))
		return true;
	if (!member(c, root, "xid", JSON_INTEGER, &v))
		return false;
	if (json_integer_value(v) < 0)
		return fail(c, "\"xid\" is negative: %" JSON_INTEGER_FORMAT, json_integer_value(v));
	*out = (uint64_t) json_integer_value(v);
	return true;
}

/* Maps the one-letter "action" to its enum. */
static bool read_action(struct ctx *c, json_t *root, enum change_action *out)
{
	json_t *v;
	const char *s;

	if (!member(c, root, "action", JSON_STRING, &v))
		return false;
	s = json_string_value(v);
	for (size_t i = 0; i < ARRAY_LEN(actions); i++) {
		if (s[0] == actions[i].code && s[1] == '\0') {
			*out = (enum change_action) i;
			return true;
		}
	}
	return fail(c, "unknown action \"%s\"", s);
}

/* Finds the spec of "schema"."table"; only public.reposts/saves/follows
 * are streamed, so any other table means the slot's filter is wrong. */
static bool read_table(struct ctx *c, json_t *root, const struct table_spec **out)
{
	json_t *schema, *table;

	if (!member(c, root, "schema", JSON_STRING, &schema) || !member(c, root, "table", JSON_STRING, &table))
		return false;
	for (size_t i = 0; i < ARRAY_LEN(specs); i++) {
		if (strcmp(json_string_value(schema), "public") == 0 &&
		    strcmp(json_string_value(table), src_table_name(specs[i].table)) == 0) {
			*out = &specs[i];
			return true;
		}
	}
	return fail(c, "table %s.%s is not public.reposts, public.saves or public.follows", json_string_value(schema),
		    json_string_value(table));
}

/* Integer column; JSON null marks the image's key as NULL. */
static bool read_int(struct ctx *c, const char *col, json_t *v, int64_t *out, bool *is_null)
{
	if (json_is_null(v)) {
		*is_null = true;
		return true;
	}
	if (!json_is_integer(v))
		return fail(c, "%s \"%s\" image: %s is not an integer", c->table, c->image, col);
	*out = json_integer_value(v);
	return true;
}

/* Boolean column; JSON null stays visible as TRI_NULL so delta can skip and
 * count it instead of guessing. */
static bool read_tri(struct ctx *c, const char *col, json_t *v, enum tri *out)
{
	if (json_is_null(v))
		*out = TRI_NULL;
	else if (json_is_boolean(v))
		*out = json_is_true(v) ? TRI_TRUE : TRI_FALSE;
	else
		return fail(c, "%s \"%s\" image: %s is not a boolean", c->table, c->image, col);
	return true;
}

static bool read_user(struct ctx *c, const char *col, json_t *v, struct image *img)
{
	return read_int(c, col, v, &img->user, &img->key_null);
}

static bool read_item(struct ctx *c, const char *col, json_t *v, struct image *img)
{
	return read_int(c, col, v, &img->item, &img->key_null);
}

static bool read_current(struct ctx *c, const char *col, json_t *v, struct image *img)
{
	return read_tri(c, col, v, &img->is_current);
}

static bool read_delete(struct ctx *c, const char *col, json_t *v, struct image *img)
{
	return read_tri(c, col, v, &img->is_delete);
}

/* Enum column: a value this version does not know (a newer enum label) or
 * NULL is ITEM_UNKNOWN, which delta skips and counts; only a non-string is
 * an error. */
static bool read_type(struct ctx *c, const char *col, json_t *v, struct image *img)
{
	img->type = ITEM_UNKNOWN;
	if (json_is_null(v))
		return true;
	if (!json_is_string(v))
		return fail(c, "%s \"%s\" image: %s is not a string", c->table, c->image, col);
	for (size_t i = 0; i < ARRAY_LEN(item_types); i++)
		if (strcmp(json_string_value(v), item_types[i].name) == 0)
			img->type = item_types[i].type;
	return true;
}

/* Finds column name in a wal2json array of {name, type, value} and returns
 * its value in *v, or NULL in *v when the array has no such column. */
static bool column_value(struct ctx *c, json_t *arr, const char *name, json_t **v)
{
	size_t i;
	json_t *col;

	*v = NULL;
	json_array_foreach (arr, i, col) {
		json_t *n = json_object_get(col, "name");

		if (!json_is_string(n))
			return fail(c, "%s \"%s\" image: element %zu has no string \"name\"", c->table, c->image, i);
		if (strcmp(json_string_value(n), name) != 0)
			continue;
		*v = json_object_get(col, "value");
		if (*v == NULL)
			return fail(c, "%s \"%s\" image: column %s has no \"value\"", c->table, c->image, name);
		return true;
	}
	return true;
}

/* Reads the image under key ("columns" or "identity") into *img. A column
 * missing from "identity" is the replica identity not carrying it (DEFAULT,
 * or an index without it): the image is marked incomplete for delta to
 * skip. Missing from "columns", the record is not what walcount reads. */
static bool read_image(struct ctx *c, const struct table_spec *t, json_t *root, const char *key, struct image *img)
{
	json_t *arr;

	if (!member(c, root, key, JSON_ARRAY, &arr))
		return false;
	c->table = src_table_name(t->table);
	c->image = key;
	*img = (struct image){.present = true, .type = ITEM_NONE};
	for (const struct column_spec *s = t->cols; s->name != NULL; s++) {
		json_t *v;

		if (!column_value(c, arr, s->name, &v))
			return false;
		if (v == NULL && strcmp(key, "identity") == 0) {
			img->incomplete = true;
			return true;
		}
		if (v == NULL)
			return fail(c, "%s \"%s\" image lacks column %s", c->table, c->image, s->name);
		if (!s->read(c, s->name, v, img))
			return false;
	}
	return true;
}

/* I: new image. U: new image, old from "identity", or old = new when there
 * is none (an identity index the update did not touch). D: old image. */
static bool read_images(struct ctx *c, const struct table_spec *t, json_t *root, struct change *ch)
{
	bool has_new = ch->action == ACT_INSERT || ch->action == ACT_UPDATE;

	if (has_new && !read_image(c, t, root, "columns", &ch->new))
		return false;
	if (ch->action == ACT_DELETE || (ch->action == ACT_UPDATE && json_object_get(root, "identity") != NULL))
		return read_image(c, t, root, "identity", &ch->old);
	if (ch->action == ACT_UPDATE)
		ch->old = ch->new;
	return true;
}

/* Decodes a parsed record. The LSN is read first so that every later error
 * can name it. */
/* Parses wal2json's commit "timestamp" ("2026-11-24 22:27:16.654103+00",
 * PostgreSQL's ISO style) into Unix microseconds; 0 for anything else. It
 * only feeds the commit-to-apply metric, so an unexpected DateStyle must not
 * stop the stream. */
static int64_t read_timestamp(json_t *root)
{
	const char *s = json_string_value(json_object_get(root, "timestamp"));
	struct tm tm = {0};
	int tzh = 0, tzm = 0, n = 0;
	int64_t frac = 0, scale = 100000;

	if (s == NULL ||
	    sscanf(s, "%d-%d-%d %d:%d:%d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
		return 0;
	if (tm.tm_year < 1 || tm.tm_year > 9999 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
	    tm.tm_hour < 0 || tm.tm_hour > 24 || tm.tm_min < 0 || tm.tm_min > 59 || tm.tm_sec < 0 || tm.tm_sec > 60)
		return 0;
	s += n;
	/* Microseconds from at most six digits; digits beyond are ignored, so
	 * no length of fraction can overflow. */
	if (*s == '.')
		for (s++; *s >= '0' && *s <= '9'; s++, scale /= 10)
			frac += scale > 0 ? (*s - '0') * scale : 0;
	if (sscanf(s, "%3d:%2d", &tzh, &tzm) < 1)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	int64_t secs = (int64_t) timegm(&tm) - (int64_t) tzh * 3600 - (tzh < 0 ? -tzm : tzm) * 60;
	return secs * 1000000 + frac;
}

static bool decode_root(struct ctx *c, json_t *root, struct change *ch)
{
	const struct table_spec *t = NULL;
	unsigned needs;

	if (!json_is_object(root))
		return fail(c, "not a JSON object");
	if (!read_lsn(c, root, "lsn", false, &ch->lsn))
		return false;
	c->have_lsn = json_object_get(root, "lsn") != NULL;
	c->lsn = ch->lsn;
	if (!read_action(c, root, &ch->action))
		return false;
	needs = actions[ch->action].needs;
	if ((needs & NEED_TXN) && !c->have_lsn)
		return fail(c, "missing \"lsn\"");
	if (!read_xid(c, root, needs & NEED_TXN, &ch->xid) || !read_lsn(c, root, "nextlsn", needs & NEED_END, &ch->end_lsn))
		return false;
	if (needs & NEED_END)
		ch->commit_time_us = read_timestamp(root);
	if (!(needs & NEED_TABLE))
		return true;
	if (!read_table(c, root, &t))
		return false;
	ch->table = t->table;
	return read_images(c, t, root, ch);
}

bool decode_record(const char *json, size_t len, struct change *out, char *err, size_t errlen)
{
	struct ctx c = {.err = err, .errlen = errlen};
	struct change ch = {0};
	json_error_t jerr;
	json_t *root;
	bool ok = false;

	arena_open();
	/* A duplicate key (two "lsn", two "columns") makes a record ambiguous. */
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		snprintf(err, errlen, "wal2json record does not parse: %s (line %d col %d)", jerr.text, jerr.line, jerr.column);
	} else {
		ok = decode_root(&c, root, &ch);
		json_decref(root);
	}
	arena.active = false;
	if (ok)
		*out = ch;
	else if (errlen > 0)
		one_line(err);
	return ok;
}

const char *change_action_name(enum change_action a)
{
	return (size_t) a < ARRAY_LEN(actions) ? actions[a].name : "unknown";
}
