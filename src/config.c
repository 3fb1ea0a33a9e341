/* config: the table `keys` below is the whole configuration. Defaults, the
 * YAML walk, the WALCOUNT_* overrides and config_free all read it, so a new
 * key is a new row and nothing else. */
#include "config.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

#include "counters.h"
#include "decodepool.h"
#include "xalloc.h"

enum key_type { T_STRING, T_BOOL, T_INT, T_DURATION, T_SIZE, T_ENUM };

#define K_NULLABLE 0x1 /* YAML null, or an empty string, stores NULL */
#define K_RESTART 0x2  /* used only at start: a reload could not apply it */
#define K_CONNINFO 0x4 /* a libpq connection string, which may hold a password */

struct key {
	const char *path; /* dotted YAML path; the env name derives from it */
	enum key_type type;
	size_t offset;   /* of the field in struct config */
	const char *def; /* default, parsed like a file value; NULL is null */
	int64_t min;     /* T_INT, T_DURATION (ms), T_SIZE (bytes): smallest value */
	int64_t max;     /* T_INT: largest value; 0: no bound */
	unsigned flags;
	const char *const *names;                /* T_ENUM: accepted names, in enum order */
	const char *(*check)(const char *value); /* T_STRING: extra rule; returns a hint when broken */
};

/* T_ENUM fields are written through an int pointer. */
_Static_assert(sizeof(enum log_level) == sizeof(int) && sizeof(enum log_format) == sizeof(int), "enum fields must be int-sized");

static const char *const level_names[] = {"error", "warn", "info", "debug", NULL};
static const char *const format_names[] = {"text", "json", NULL};

static const char *check_slot_name(const char *value);

/* One row's common columns, as designated fields so a row can append
 * .names or .check and leave the rest zero. */
#define KEY(path_, type_, field, def_, min_, flags_) \
	.path = path_, .type = type_, .offset = offsetof(struct config, field), .def = def_, .min = min_, .flags = flags_
#define DEFAULT_DSN "host=localhost port=5432 dbname=audius user=walcount"

/* Grouped by section in config.yaml's order, which is also the order the
 * environment is read in. stream.reconnect_max >= stream.reconnect_min is
 * checked in check_reconnect, since no single row can say it. */
/* clang-format off */
static const struct key keys[] = {
	/*   path                      type        field                      default           min flags */
	{KEY("database.dsn",           T_STRING,   database_dsn,              DEFAULT_DSN,      0, K_RESTART | K_CONNINFO)},
	{KEY("database.password_file", T_STRING,   database_password_file,    NULL,             0, K_RESTART | K_NULLABLE)},
	{KEY("slot.name",              T_STRING,   slot_name,                 "walcount",       0, K_RESTART), .check = check_slot_name},
	{KEY("slot.temporary",         T_BOOL,     slot_temporary,            "false",          0, K_RESTART)},
	{KEY("slot.heartbeat_interval", T_DURATION, slot_heartbeat_interval_ms, "30s",          1, 0)},
	{KEY("slot.refresh_interval",  T_DURATION, slot_refresh_interval_ms,  "5s",             1, 0)},
	{KEY("slot.release_wait",      T_DURATION, slot_release_wait_ms,      "15s",            0, 0)},
	{KEY("slot.create_report_after", T_DURATION, slot_create_report_after_ms, "5s",         1, 0)},
	{KEY("batch.max_changes",      T_INT,      batch_max_changes,         "10000",          1, 0)},
	{KEY("batch.max_delay",        T_DURATION, batch_max_delay_ms,        "200ms",          1, 0)},
	{KEY("batch.max_keys",         T_INT,      batch_max_keys,            "100000",         8, 0)},
	{KEY("apply.workers",          T_INT,      apply_workers,             "1",              1, K_RESTART), .max = AGG_MAX_PARTITIONS},
	{KEY("checkpoint.interval",    T_DURATION, checkpoint_interval_ms,    "10m",            1, 0)},
	{KEY("reconcile.enabled",      T_BOOL,     reconcile_enabled,         "true",           0, 0)},
	{KEY("reconcile.chunk_rows",   T_INT,      reconcile_chunk_rows,      "50000",          1, 0)},
	{KEY("reconcile.chunk_time",   T_DURATION, reconcile_chunk_time_ms,   "40ms",           1, 0), .max = 60000},
	{KEY("metrics.listen",         T_STRING,   metrics_listen,            "127.0.0.1:9187", 0, K_RESTART)},
	{KEY("metrics.idle_timeout",   T_DURATION, metrics_idle_timeout_ms,   "10s",         1000, K_RESTART)},
	{KEY("status.lag_warning",     T_SIZE,     status_lag_warning,        "64MB",           0, 0)},
	{KEY("status.lag_critical",    T_SIZE,     status_lag_critical,       "1GB",            0, 0)},
	{KEY("status.retained_wal_warning", T_SIZE, status_retained_wal_warning, "1GB",         0, 0)},
	{KEY("status.retained_wal_critical", T_SIZE, status_retained_wal_critical, "8GB",       0, 0)},
	{KEY("status.inactive_warning", T_DURATION, status_inactive_warning_ms, "1m",           0, 0)},
	{KEY("status.inactive_critical", T_DURATION, status_inactive_critical_ms, "15m",        0, 0)},
	{KEY("status.batch_age_warning", T_DURATION, status_batch_age_warning_ms, "5m",         0, 0)},
	{KEY("status.batch_age_critical", T_DURATION, status_batch_age_critical_ms, "30m",      0, 0)},
	{KEY("log.level",              T_ENUM,     log_level,                 "info",           0, 0), .names = level_names},
	{KEY("log.format",             T_ENUM,     log_format,                "text",           0, 0), .names = format_names},
	/* Must stay below the server's wal_sender_timeout, which only the server knows. */
	{KEY("stream.status_interval", T_DURATION, stream_status_interval_ms, "10s",            1, 0)},
	{KEY("stream.reconnect_min",   T_DURATION, stream_reconnect_min_ms,   "200ms",          1, 0)},
	{KEY("stream.reconnect_max",   T_DURATION, stream_reconnect_max_ms,   "30s",            1, 0)},
	{KEY("stream.connect_attempts", T_INT,     stream_connect_attempts,   "10",             1, 0)},
	{KEY("decode.workers",         T_INT,      decode_workers,            "2",              0, 0), .max = DECODEPOOL_MAX_WORKERS},
};
/* clang-format on */

#define NKEYS (sizeof keys / sizeof keys[0])
_Static_assert(NKEYS == CONFIG_NKEYS, "set CONFIG_NKEYS in config.h to the number of keys");

/* PostgreSQL's rule for slot names (ReplicationSlotValidateName). */
static const char *check_slot_name(const char *value)
{
	size_t n = strspn(value, "abcdefghijklmnopqrstuvwxyz0123456789_");

	if (n == 0 || n > 63 || value[n] != '\0')
		return "use 1 to 63 characters of a-z, 0-9 and _";
	return NULL;
}

/* ---- values: text to field, one setter per type ---- */

static bool reject(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Writes a reason into why and returns false, so setters can `return reject(...)`. */
static bool reject(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
	return false;
}

/* Index of s in the NULL-terminated names, ignoring case as YAML 1.1 booleans
 * do (True, TRUE); -1 when absent. */
static int find_name(const char *const *names, const char *s)
{
	for (int i = 0; names[i]; i++)
		if (strcasecmp(names[i], s) == 0)
			return i;
	return -1;
}

/* Writes "a, b or c" into buf and returns buf. */
static const char *join_names(const char *const *names, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; names[i] && n < len; i++) {
		const char *sep = i == 0 ? "" : names[i + 1] ? ", " : " or ";
		n += snprintf(buf + n, len - n, "%s%s", sep, names[i]);
	}
	return buf;
}

static bool set_string(const struct key *k, const char *text, void *field, char *why, size_t len)
{
	char **dst = field, *copy = NULL;
	/* An empty optional path means "none", as null does; env cannot say null. */
	bool none = text == NULL || (text[0] == '\0' && (k->flags & K_NULLABLE));
	const char *hint = none || k->check == NULL ? NULL : k->check(text);

	if (hint)
		return reject(why, len, "%s: bad value '%s' (%s)", k->path, text, hint);
	if (!none)
		copy = xstrdup(text);
	free(*dst);
	*dst = copy;
	return true;
}

static bool set_bool(const struct key *k, const char *text, void *field, char *why, size_t len)
{
	static const char *const yes[] = {"true", "yes", "on", NULL};
	static const char *const no[] = {"false", "no", "off", NULL};
	bool *dst = field;

	if (find_name(yes, text) >= 0)
		*dst = true;
	else if (find_name(no, text) >= 0)
		*dst = false;
	else
		return reject(why, len, "%s: bad boolean '%s' (use true or false)", k->path, text);
	return true;
}

static bool set_enum(const struct key *k, const char *text, void *field, char *why, size_t len)
{
	int i = find_name(k->names, text);
	char list[128];

	if (i < 0)
		return reject(why, len, "%s: bad value '%s' (use %s)", k->path, text, join_names(k->names, list, sizeof list));
	*(int *) field = i;
	return true;
}

enum num_status { NUM_OK, NUM_BAD, NUM_RANGE };

/* Reads a decimal at the start of s into *v and points *end past it.
 * strtoll alone would also accept leading blanks and '+'. */
static enum num_status read_int(const char *s, int64_t *v, char **end)
{
	const char *digits = s[0] == '-' ? s + 1 : s;

	if (!isdigit((unsigned char) *digits))
		return NUM_BAD;
	errno = 0;
	*v = strtoll(s, end, 10);
	return errno == ERANGE ? NUM_RANGE : NUM_OK;
}

static enum num_status read_integer(const char *s, int64_t *v)
{
	char *end;
	enum num_status st = read_int(s, v, &end);

	return st == NUM_OK && *end != '\0' ? NUM_BAD : st;
}

struct unit {
	const char *suffix;
	int64_t factor;
};

/* A unit is required: a bare "5" is ambiguous between ms and s (or bytes and
 * MB), and guessing wrong is a 1000x mistake. */
static const struct unit duration_units[] = {
	{"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 60 * 60 * 1000}, {NULL, 0},
};
/* PostgreSQL's spelling of memory units. */
static const struct unit size_units[] = {
	{"B", 1},  {"kB", INT64_C(1) << 10}, {"MB", INT64_C(1) << 20}, {"GB", INT64_C(1) << 30}, {"TB", INT64_C(1) << 40},
	{NULL, 0},
};

/* Reads "<integer><unit>" scaled by the unit's factor. */
static enum num_status read_scaled(const char *s, const struct unit *units, int64_t *out)
{
	char *end;
	int64_t v;
	enum num_status st = read_int(s, &v, &end);

	for (const struct unit *u = units; st == NUM_OK && u->suffix; u++) {
		if (strcmp(end, u->suffix) != 0)
			continue;
		if (v > INT64_MAX / u->factor || v < -(INT64_MAX / u->factor))
			return NUM_RANGE;
		*out = v * u->factor;
		return NUM_OK;
	}
	return st == NUM_OK ? NUM_BAD : st;
}

/* T_INT, T_DURATION and T_SIZE: read, then hold to the row's minimum. */
static bool set_number(const struct key *k, const char *text, void *field, char *why, size_t len)
{
	static const char *const unit[] = {[T_INT] = "", [T_DURATION] = "ms", [T_SIZE] = " bytes"};
	int64_t v;
	enum num_status st = k->type == T_DURATION ? read_scaled(text, duration_units, &v)
			     : k->type == T_SIZE   ? read_scaled(text, size_units, &v)
						   : read_integer(text, &v);

	if (st == NUM_RANGE)
		return reject(why, len, "%s: '%s' is out of range", k->path, text);
	if (st == NUM_BAD && k->type == T_DURATION)
		return reject(why, len, "%s: bad duration '%s' (use ms, s, m or h)", k->path, text);
	if (st == NUM_BAD && k->type == T_SIZE)
		return reject(why, len, "%s: bad size '%s' (use B, kB, MB, GB or TB)", k->path, text);
	if (st == NUM_BAD)
		return reject(why, len, "%s: bad integer '%s'", k->path, text);
	if (v < k->min && k->min == 1)
		return reject(why, len, "%s must be > 0", k->path);
	if (v < k->min)
		return reject(why, len, "%s must be >= %" PRId64 "%s", k->path, k->min, unit[k->type]);
	if (k->max != 0 && v > k->max)
		return reject(why, len, "%s must be <= %" PRId64 "%s", k->path, k->max, unit[k->type]);
	*(int64_t *) field = v;
	return true;
}

typedef bool (*set_fn)(const struct key *k, const char *text, void *field, char *why, size_t len);

static const struct {
	const char *what; /* for "must be ..., not a mapping" */
	set_fn set;
} types[] = {
	[T_STRING] = {"a string", set_string},     [T_BOOL] = {"a boolean", set_bool}, [T_INT] = {"an integer", set_number},
	[T_DURATION] = {"a duration", set_number}, [T_SIZE] = {"a size", set_number},  [T_ENUM] = {"a string", set_enum},
};

/* Parses text (NULL for YAML null) into k's field of cfg. On failure writes
 * the reason, which names the key, into why and leaves the field alone. */
static bool set_value(const struct key *k, const char *text, struct config *cfg, char *why, size_t len)
{
	if (text == NULL && !(k->flags & K_NULLABLE))
		return reject(why, len, "%s must be %s, not null", k->path, types[k->type].what);
	return types[k->type].set(k, text, (char *) cfg + k->offset, why, len);
}

static const struct key *find_key(const char *path)
{
	for (const struct key *k = keys; k < keys + NKEYS; k++)
		if (strcmp(k->path, path) == 0)
			return k;
	return NULL;
}

/* True when path is a mapping that holds keys, such as "batch". */
static bool is_section(const char *path)
{
	size_t n = strlen(path);

	for (const struct key *k = keys; k < keys + NKEYS; k++)
		if (strncmp(k->path, path, n) == 0 && k->path[n] == '.')
			return true;
	return false;
}

/* Writes "WALCOUNT_BATCH_MAX_DELAY" for "batch.max_delay" into buf, returns buf. */
static char *env_name(const char *path, char *buf, size_t len)
{
	snprintf(buf, len, "WALCOUNT_%s", path);
	for (char *c = buf; *c; c++)
		*c = *c == '.' ? '_' : (char) toupper((unsigned char) *c);
	return buf;
}

/* ---- "did you mean": the nearest known name to a misspelt one ---- */

/* Levenshtein distance of a and b, both shorter than 128 bytes (longer
 * ones count as far from everything). */
static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[128];

	if (la >= 128 || lb >= 128)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			if (up + 1 < best)
				best = up + 1;
			diag = up;
			row[j] = best;
		}
	}
	return row[lb];
}

/* True when candidate is name under a section: "batch.max_changes" for
 * "max_changes", "DATABASE_PASSWORD_FILE" for "PASSWORD_FILE". */
static bool section_left_out(const char *name, const char *candidate)
{
	size_t n = strlen(name), c = strlen(candidate);

	return c > n && strcmp(candidate + c - n, name) == 0 && strchr("._", candidate[c - n - 1]) != NULL;
}

/* Keeps in best (len bytes) whichever of best and candidate is nearer to
 * name, within a third of name's length: a typo, not another word. A
 * section left out counts as one typo. */
static void keep_nearer(const char *name, const char *candidate, char *best, size_t len, size_t *best_d)
{
	size_t d = section_left_out(name, candidate) ? 1 : distance(name, candidate);

	if (d <= strlen(name) / 3 && d < *best_d) {
		*best_d = d;
		snprintf(best, len, "%s", candidate);
	}
}

/* Writes " (did you mean X?)" into buf for the known path or section
 * nearest to path, "" when none is near; returns buf. */
static char *suggest_path(const char *path, char *buf, size_t len)
{
	char near[128] = "", section[128];
	size_t best = SIZE_MAX;

	for (const struct key *k = keys; k < keys + NKEYS; k++) {
		keep_nearer(path, k->path, near, sizeof near, &best);
		snprintf(section, sizeof section, "%.*s", (int) strcspn(k->path, "."), k->path);
		keep_nearer(path, section, near, sizeof near, &best);
	}
	snprintf(buf, len, *near ? " (did you mean %s?)" : "", near);
	return buf;
}

/* ---- one parse: where each value came from, and errors naming it ---- */

/* Remembered so that a cross-key error can point at the value to change. */
struct origin {
	enum { FROM_EARLIER, FROM_FILE, FROM_ENV } from;
	yaml_mark_t mark;
};

struct loader {
	const char *name; /* the file, as messages name it */
	struct config *cfg;
	char *err;
	size_t errlen;
	struct origin origin[NKEYS];
};

static bool vfail(struct loader *L, const char *where, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));
static bool fail(struct loader *L, const char *where, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool fail_at(struct loader *L, yaml_mark_t mark, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Writes "where: message" into the caller's err and returns false. */
static bool vfail(struct loader *L, const char *where, const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof msg, fmt, ap);
	snprintf(L->err, L->errlen, "%s: %s", where, msg);
	return false;
}

static bool fail(struct loader *L, const char *where, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(L, where, fmt, ap);
	va_end(ap);
	return false;
}

/* Writes "name:line:column" with libyaml's 0-based mark made 1-based. */
static char *mark_where(const struct loader *L, yaml_mark_t mark, char *buf, size_t len)
{
	snprintf(buf, len, "%s:%zu:%zu", L->name, mark.line + 1, mark.column + 1);
	return buf;
}

static bool fail_at(struct loader *L, yaml_mark_t mark, const char *fmt, ...)
{
	char where[1024];
	va_list ap;

	va_start(ap, fmt);
	vfail(L, mark_where(L, mark, where, sizeof where), fmt, ap);
	va_end(ap);
	return false;
}

/* Names where k's current value was set: the file position, the env
 * variable, or just the file for a default. */
static char *origin_where(const struct loader *L, const struct key *k, char *buf, size_t len)
{
	const struct origin *o = &L->origin[k - keys];

	if (o->from == FROM_FILE)
		return mark_where(L, o->mark, buf, len);
	if (o->from == FROM_ENV)
		return env_name(k->path, buf, len);
	snprintf(buf, len, "%s", L->name);
	return buf;
}

/* ---- the YAML walk ---- */

/* Plain null as YAML 1.1 spells it; a quoted "null" is a string. */
static bool is_null(const yaml_node_t *node)
{
	static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};

	if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++)
		if (strcmp((const char *) node->data.scalar.value, nulls[i]) == 0)
			return true;
	return false;
}

static bool apply_node(struct loader *L, const struct key *k, yaml_node_t *value)
{
	const char *text;
	char why[1024];

	if (value->type != YAML_SCALAR_NODE)
		return fail_at(L, value->start_mark, "%s must be %s, not a %s", k->path, types[k->type].what,
			       value->type == YAML_MAPPING_NODE ? "mapping" : "sequence");
	text = (const char *) value->data.scalar.value;
	/* C strings would silently cut the value at an escaped "\0". */
	if (strlen(text) != value->data.scalar.length)
		return fail_at(L, value->start_mark, "%s must not contain a NUL byte", k->path);
	if (!set_value(k, is_null(value) ? NULL : text, L->cfg, why, sizeof why))
		return fail_at(L, value->start_mark, "%s", why);
	L->origin[k - keys] = (struct origin){FROM_FILE, value->start_mark};
	return true;
}

static bool same_scalar(const yaml_node_t *a, const yaml_node_t *b)
{
	return a->type == YAML_SCALAR_NODE && b->type == YAML_SCALAR_NODE && a->data.scalar.length == b->data.scalar.length &&
	       memcmp(a->data.scalar.value, b->data.scalar.value, a->data.scalar.length) == 0;
}

/* Checks the key of pair p in map and writes its dotted path under prefix
 * into path. libyaml keeps duplicate keys, so they are caught here. */
static bool key_path(struct loader *L, yaml_document_t *doc, yaml_node_t *map, yaml_node_pair_t *p, const char *prefix,
		     char *path, size_t len)
{
	yaml_node_t *key = yaml_document_get_node(doc, p->key);
	const char *name;

	if (key->type != YAML_SCALAR_NODE)
		return fail_at(L, key->start_mark, "a key must be a scalar");
	name = (const char *) key->data.scalar.value;
	snprintf(path, len, "%s%s%s", prefix, *prefix ? "." : "", name);
	/* A dotted key would bypass the duplicate check against its nested form. */
	if (strchr(name, '.'))
		return fail_at(L, key->start_mark, "key '%s' must be nested, not dotted", path);
	for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++)
		if (same_scalar(yaml_document_get_node(doc, q->key), key))
			return fail_at(L, key->start_mark, "duplicate key '%s'", path);
	return true;
}

static bool walk_mapping(struct loader *L, yaml_document_t *doc, yaml_node_t *map, const char *prefix);

/* Applies the value of path: a key's value, or a section to walk. */
static bool walk_pair(struct loader *L, yaml_document_t *doc, const char *path, yaml_node_t *key, yaml_node_t *value)
{
	const struct key *k = find_key(path);

	if (k)
		return apply_node(L, k, value);
	if (!is_section(path)) {
		char hint[160];
		return fail_at(L, key->start_mark, "unknown key '%s'%s", path, suggest_path(path, hint, sizeof hint));
	}
	/* A section whose keys are all commented out. */
	if (is_null(value))
		return true;
	if (value->type != YAML_MAPPING_NODE)
		return fail_at(L, value->start_mark, "%s must be a mapping", path);
	return walk_mapping(L, doc, value, path);
}

/* Applies every pair of map under the dotted prefix ("" at the top). Depth
 * is bounded by the table's sections, so aliases cannot make it loop. */
static bool walk_mapping(struct loader *L, yaml_document_t *doc, yaml_node_t *map, const char *prefix)
{
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		char path[128];

		if (!key_path(L, doc, map, p, prefix, path, sizeof path) ||
		    !walk_pair(L, doc, path, yaml_document_get_node(doc, p->key), yaml_document_get_node(doc, p->value)))
			return false;
	}
	return true;
}

static bool walk_document(struct loader *L, yaml_document_t *doc)
{
	yaml_node_t *root = yaml_document_get_root_node(doc);

	/* An empty file, or one of comments only, means all defaults. */
	if (root == NULL || is_null(root))
		return true;
	if (root->type != YAML_MAPPING_NODE)
		return fail_at(L, root->start_mark, "the top level must be a mapping");
	return walk_mapping(L, doc, root, "");
}

/* The mark of byte offset in text, so encoding errors, which libyaml gives
 * as an offset, read like the rest. Columns count bytes here. */
static yaml_mark_t mark_of_offset(const char *text, size_t offset)
{
	yaml_mark_t mark = {.index = offset};

	for (size_t i = 0; i < offset; i++) {
		mark.column = text[i] == '\n' ? 0 : mark.column + 1;
		mark.line += text[i] == '\n';
	}
	return mark;
}

/* Turns libyaml's error state into one line. */
static bool fail_syntax(struct loader *L, const yaml_parser_t *parser, const char *text)
{
	const char *problem = parser->problem ? parser->problem : "YAML error";

	if (parser->error == YAML_MEMORY_ERROR)
		return fail(L, L->name, "out of memory");
	if (parser->error == YAML_READER_ERROR)
		return fail_at(L, mark_of_offset(text, parser->problem_offset), "%s", problem);
	if (parser->context)
		return fail_at(L, parser->problem_mark, "%s (%s at %zu:%zu)", problem, parser->context,
			       parser->context_mark.line + 1, parser->context_mark.column + 1);
	return fail_at(L, parser->problem_mark, "%s", problem);
}

/* yaml_parser_load reads one document per call; a second one would be
 * ignored silently, so it is an error. */
static bool expect_end(struct loader *L, yaml_parser_t *parser, const char *text)
{
	yaml_document_t doc;
	yaml_node_t *root;
	bool ok;

	if (!yaml_parser_load(parser, &doc))
		return fail_syntax(L, parser, text);
	root = yaml_document_get_root_node(&doc);
	ok = root == NULL || fail_at(L, root->start_mark, "only one YAML document is allowed");
	yaml_document_delete(&doc);
	return ok;
}

static const yaml_char_t *event_anchor(const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		return ev->data.scalar.anchor;
	case YAML_SEQUENCE_START_EVENT:
		return ev->data.sequence_start.anchor;
	case YAML_MAPPING_START_EVENT:
		return ev->data.mapping_start.anchor;
	default:
		return NULL;
	}
}

/* libyaml's scanner is quadratic in the nesting depth of flow collections
 * (each token rechecks every level's possible simple key), so a few hundred
 * KB of '[' take minutes, and its loader in the number of anchors and aliases
 * (each is looked up in a list), 10 s for 1 MiB of them. This event pass,
 * which keeps no anchors, stops at the first level too deep or anchor too
 * many, after at most a bounded look-ahead, before the loader builds
 * anything. A syntax error ends it quietly: the loader then reports it, no
 * deeper. */
static bool check_limits(struct loader *L, const char *text, size_t len)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	int depth = 0, anchors = 0;
	bool ok = true, more = true;

	if (!yaml_parser_initialize(&parser))
		return fail(L, L->name, "out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *) text, len);
	while (ok && more && yaml_parser_parse(&parser, &ev)) {
		if (ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT)
			depth++;
		else if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT)
			depth--;
		anchors += ev.type == YAML_ALIAS_EVENT || event_anchor(&ev) != NULL;
		if (depth > CONFIG_MAX_DEPTH)
			ok = fail_at(L, ev.start_mark, "nesting deeper than %d levels", CONFIG_MAX_DEPTH);
		else if (anchors > CONFIG_MAX_ANCHORS)
			ok = fail_at(L, ev.start_mark, "more than %d anchors and aliases", CONFIG_MAX_ANCHORS);
		more = ev.type != YAML_STREAM_END_EVENT;
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	return ok;
}

static bool parse_yaml(struct loader *L, const char *text, size_t len)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	bool ok;

	if (!yaml_parser_initialize(&parser))
		return fail(L, L->name, "out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *) text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		ok = fail_syntax(L, &parser, text);
	} else {
		ok = walk_document(L, &doc) && expect_end(L, &parser, text);
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&parser);
	return ok;
}

/* Runs after the file, which is what makes the environment win. */
static bool apply_env(struct loader *L, config_getenv_fn env)
{
	char name[128], why[1024];
	const char *text;

	for (const struct key *k = keys; env && k < keys + NKEYS; k++) {
		if ((text = env(env_name(k->path, name, sizeof name))) == NULL)
			continue;
		if (!set_value(k, text, L->cfg, why, sizeof why))
			return fail(L, name, "%s", why);
		L->origin[k - keys].from = FROM_ENV;
	}
	return true;
}

/* The one rule between two keys; blames reconnect_max where it was set,
 * else reconnect_min. */
static bool check_reconnect(struct loader *L)
{
	const struct key *max = find_key("stream.reconnect_max"), *min = find_key("stream.reconnect_min");
	const struct config *c = L->cfg;
	char where[1024];

	if (c->stream_reconnect_max_ms >= c->stream_reconnect_min_ms)
		return true;
	origin_where(L, L->origin[max - keys].from != FROM_EARLIER ? max : min, where, sizeof where);
	return fail(L, where, "stream.reconnect_max (%" PRId64 "ms) must be >= stream.reconnect_min (%" PRId64 "ms)",
		    c->stream_reconnect_max_ms, c->stream_reconnect_min_ms);
}

/* Records in the config where this parse set each value, for `walcount
 * config`; values it left keep their earlier origin. */
static void keep_origins(const struct loader *L)
{
	for (size_t i = 0; i < NKEYS; i++) {
		const struct origin *o = &L->origin[i];
		if (o->from == FROM_FILE)
			L->cfg->origin[i] = (struct config_origin){CONFIG_FILE, o->mark.line + 1, o->mark.column + 1};
		else if (o->from == FROM_ENV)
			L->cfg->origin[i] = (struct config_origin){CONFIG_ENV, 0, 0};
	}
}

/* ---- public API ---- */

void config_defaults(struct config *cfg)
{
	char why[256];

	memset(cfg, 0, sizeof *cfg);
	for (const struct key *k = keys; k < keys + NKEYS; k++) {
		bool ok = set_value(k, k->def, cfg, why, sizeof why);
		assert(ok && "a default in keys[] does not parse");
		(void) ok;
	}
}

bool config_parse(const char *name, const char *text, size_t len, config_getenv_fn env, struct config *cfg, char *err,
		  size_t errlen)
{
	struct loader L = {.name = name, .cfg = cfg, .err = err, .errlen = errlen};

	if (len > CONFIG_MAX_BYTES)
		fail(&L, name, "file is %zu bytes, more than the %d KiB limit", len, CONFIG_MAX_BYTES / 1024);
	else if (check_limits(&L, text, len) && parse_yaml(&L, text, len) && apply_env(&L, env) && check_reconnect(&L)) {
		keep_origins(&L);
		return true;
	}
	/* Keys and values are quoted into the message; one with a line break
	 * would break the one-line error contract. */
	for (char *p = err; errlen > 0 && *p; p++)
		if ((unsigned char) *p < 0x20)
			*p = ' ';
	return false;
}

/* Reads f into a malloc'd *text, at most max bytes: a longer stream stops
 * at max + 1, enough to tell it is too long. On failure returns false with
 * errno saying why. */
static bool read_stream(FILE *f, size_t max, char **text, size_t *len)
{
	char *buf = NULL;
	size_t cap = 0, n = 0;
	int saved;

	while (n <= max && !feof(f) && !ferror(f)) {
		if (n == cap) {
			cap = cap ? 2 * cap : 4096;
			buf = xrealloc(buf, cap); /* at most 2 * max: small */
		}
		n += fread(buf + n, 1, cap - n, f);
	}
	saved = errno;
	if (ferror(f)) {
		free(buf);
		errno = saved;
		return false;
	}
	*text = buf;
	*len = n;
	return true;
}

/* As read_stream on the file at path; *size is the file's size when it is
 * a regular file (so a huge one is named by its size, not read), else the
 * bytes read. */
static bool read_file(const char *path, char **text, size_t *len, size_t *size)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	bool ok;
	int saved;

	if (f == NULL)
		return false;
	*text = NULL;
	*len = *size = 0;
	if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && (uintmax_t) st.st_size > CONFIG_MAX_BYTES) {
		*size = (size_t) st.st_size;
		ok = true;
	} else {
		ok = read_stream(f, CONFIG_MAX_BYTES, text, len);
		*size = *len;
	}
	saved = errno;
	fclose(f); /* read-only: nothing to lose if it fails */
	errno = saved;
	return ok;
}

bool config_load(const char *path, config_getenv_fn env, struct config *cfg, char *err, size_t errlen)
{
	char *text;
	size_t len, size;
	bool ok;

	config_defaults(cfg);
	if (!read_file(path, &text, &len, &size)) {
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		return false;
	}
	if (size > CONFIG_MAX_BYTES && size != len) {
		snprintf(err, errlen, "%s: file is %zu bytes, more than the %d KiB limit", path, size, CONFIG_MAX_BYTES / 1024);
		ok = false;
	} else {
		ok = config_parse(path, text, len, env, cfg, err, errlen);
	}
	free(text);
	return ok;
}

void config_free(struct config *cfg)
{
	for (const struct key *k = keys; k < keys + NKEYS; k++) {
		if (k->type == T_STRING) {
			char **s = (char **) ((char *) cfg + k->offset);

			free(*s);
			*s = NULL;
		}
	}
}

/* Size in bytes of the struct config field behind a key of this type. */
static size_t field_size(enum key_type type)
{
	switch (type) {
	case T_BOOL:
		return sizeof(bool);
	case T_ENUM:
		return sizeof(int);
	case T_STRING:
		return sizeof(char *);
	default:
		return sizeof(int64_t);
	}
}

static bool field_equal(const struct key *k, const struct config *a, const struct config *b)
{
	const void *fa = (const char *) a + k->offset, *fb = (const char *) b + k->offset;

	if (k->type != T_STRING)
		return memcmp(fa, fb, field_size(k->type)) == 0;
	const char *sa = *(char *const *) fa, *sb = *(char *const *) fb;
	return sa == sb || (sa && sb && strcmp(sa, sb) == 0);
}

static void append_name(char *buf, size_t len, const char *name)
{
	size_t n = strlen(buf);

	if (n < len)
		snprintf(buf + n, len - n, "%s%s", n ? ", " : "", name);
}

void config_reload(struct config *live, const struct config *fresh, char *applied, size_t alen, char *ignored, size_t ilen)
{
	applied[0] = ignored[0] = '\0';
	for (const struct key *k = keys; k < keys + NKEYS; k++) {
		if (field_equal(k, live, fresh))
			continue;
		if (k->flags & K_RESTART) {
			append_name(ignored, ilen, k->path);
			continue;
		}
		void *dst = (char *) live + k->offset;
		const void *src = (const char *) fresh + k->offset;
		if (k->type == T_STRING) {
			const char *s = *(char *const *) src;
			free(*(char **) dst);
			*(char **) dst = s ? xstrdup(s) : NULL;
		} else {
			memcpy(dst, src, field_size(k->type));
		}
		live->origin[k - keys] = fresh->origin[k - keys];
		append_name(applied, alen, k->path);
	}
}

const char *const config_reserved_env[] = {
	"WALCOUNT_CONFIG",     /* the file, when --config is not given */
	"WALCOUNT_LOCAL_PORT", /* scripts/run-local.sh (make run): the local server's port, */
	"WALCOUNT_LOCAL_DIR",  /* and its directory */
	"WALCOUNT_BIN",        /* tests/run.sh: the binary the integration tests run */
	NULL,
};

static bool is_known_env(const char *name)
{
	char env[128];

	for (const char *const *r = config_reserved_env; *r; r++)
		if (strcmp(name, *r) == 0)
			return true;
	for (const struct key *k = keys; k < keys + NKEYS; k++)
		if (strcmp(name, env_name(k->path, env, sizeof env)) == 0)
			return true;
	return false;
}

/* Whether name starts with a section's prefix, as WALCOUNT_BATCH_. */
static bool in_known_section(const char *name)
{
	char env[128];

	for (const struct key *k = keys; k < keys + NKEYS; k++) {
		env_name(k->path, env, sizeof env);
		size_t n = 9 + strcspn(env + 9, "_") + 1;
		if (strncmp(name, env, n) == 0)
			return true;
	}
	return false;
}

/* What Kubernetes (service links) and Docker (--link) define for a service
 * named walcount: WALCOUNT_SERVICE_HOST, WALCOUNT_PORT,
 * WALCOUNT_PORT_9187_TCP_ADDR, ... */
static bool is_link_env(const char *name)
{
	return strncmp(name, "WALCOUNT_SERVICE_", 17) == 0 || strcmp(name, "WALCOUNT_PORT") == 0 ||
	       strncmp(name, "WALCOUNT_PORT_", 14) == 0;
}

bool config_check_env(char *const *env, char *err, size_t errlen)
{
	for (char *const *e = env; e && *e; e++) {
		char name[128], near[128] = "", candidate[128];
		size_t best = SIZE_MAX;

		if (strncmp(*e, "WALCOUNT_", 9) != 0)
			continue;
		snprintf(name, sizeof name, "%.*s", (int) strcspn(*e, "="), *e);
		if (is_known_env(name) || is_link_env(name))
			continue;
		/* Compared without the prefix they all share. */
		for (const struct key *k = keys; k < keys + NKEYS; k++)
			keep_nearer(name + 9, env_name(k->path, candidate, sizeof candidate) + 9, near, sizeof near, &best);
		for (const char *const *r = config_reserved_env; *r; r++)
			keep_nearer(name + 9, *r + 9, near, sizeof near, &best);
		/* Neither in a section nor near a name: another tool's. */
		if (!*near && !in_known_section(name))
			continue;
		snprintf(err, errlen, "%s: unknown variable%s%s%s", name, *near ? " (did you mean WALCOUNT_" : "", near,
			 *near ? "?)" : "");
		return false;
	}
	return true;
}

/* Writes v in the largest unit of units that divides it exactly (units
 * from the smallest up); "0" with the smallest unit for 0. */
static void format_scaled(int64_t v, const struct unit *units, char *buf, size_t len)
{
	const struct unit *best = units;

	for (const struct unit *u = units; u->suffix; u++)
		if (v != 0 && v % u->factor == 0)
			best = u;
	snprintf(buf, len, "%" PRId64 "%s", v / best->factor, best->suffix);
}

void config_item(const struct config *cfg, size_t i, struct config_item *it, char *value, size_t len)
{
	const struct key *k = &keys[i];
	const void *field = (const char *) cfg + k->offset;
	const char *text = NULL;

	*it = (struct config_item){.path = k->path, .string = k->type == T_STRING, .conninfo = k->flags & K_CONNINFO};
	env_name(k->path, it->env, sizeof it->env);
	it->origin = cfg->origin[i];
	switch (k->type) {
	case T_STRING:
		text = *(char *const *) field;
		it->null = text == NULL;
		snprintf(value, len, "%s", text ? text : "");
		break;
	case T_BOOL:
		snprintf(value, len, "%s", *(const bool *) field ? "true" : "false");
		break;
	case T_ENUM:
		snprintf(value, len, "%s", k->names[*(const int *) field]);
		break;
	case T_INT:
		snprintf(value, len, "%" PRId64, *(const int64_t *) field);
		break;
	case T_DURATION:
		format_scaled(*(const int64_t *) field, duration_units, value, len);
		break;
	case T_SIZE:
		format_scaled(*(const int64_t *) field, size_units, value, len);
		break;
	}
}
