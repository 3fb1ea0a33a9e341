#include "config_show.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "dsn.h"
#include "strbuf.h"
#include "utf8.h"

/* Values longer than this are cut; a DSN is the longest. */
#define VALUE_MAX 4096
/* Source comments start in this column, or one past a longer line. */
#define COMMENT_COLUMN 40

static const char *const source_names[] = {[CONFIG_DEFAULT] = "default", [CONFIG_FILE] = "file", [CONFIG_ENV] = "env"};

/* The value key i shows. A connection string is always shown as libpq
 * parses it, passwords masked at every depth: never as written, since any
 * way to tell that one holds no password (a nested or cut-off one, a URI's
 * user:secret@) is one more way to print one. */
static void shown_value(const struct config *cfg, size_t i, struct config_item *it, char *value, size_t len)
{
	char raw[VALUE_MAX];

	config_item(cfg, i, it, raw, sizeof raw);
	if (it->conninfo && !it->null)
		dsn_redact(raw, value, len);
	else
		snprintf(value, len, "%s", raw);
}

/* Where the value came from, for the comment and "where"; NULL for a default. */
static const char *where(const struct config_item *it, const char *path, char *buf, size_t len)
{
	if (it->origin.source == CONFIG_FILE)
		snprintf(buf, len, "%s:%u:%u", path, it->origin.line, it->origin.column);
	else if (it->origin.source == CONFIG_ENV)
		snprintf(buf, len, "%s", it->env);
	else
		return NULL;
	return buf;
}

/* s as a JSON string, or "(not UTF-8)" for text that is not (a DSN or a
 * path in another encoding), which jansson refuses. NULL when out of memory. */
static json_t *json_text(const char *s)
{
	return json_string(utf8_valid(s) ? s : "(not UTF-8)");
}

/* A YAML double-quoted scalar: JSON's escapes are valid there. */
static void append_quoted(struct strbuf *b, const char *s)
{
	json_t *j = json_text(s);
	char *q = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;

	if (q != NULL)
		strbuf_append(b, q);
	else /* out of memory: the text fails, as when b cannot grow */
		b->failed = true;
	free(q);
	json_decref(j);
}

static void append_text_line(struct strbuf *b, const struct config_item *it, const char *value, const char *from)
{
	size_t start = b->len;
	const char *name = strchr(it->path, '.') + 1;

	strbuf_appendf(b, "  %s: ", name);
	if (it->null)
		strbuf_append(b, "null");
	else if (it->string)
		append_quoted(b, value);
	else
		strbuf_append(b, value);
	for (size_t n = b->len - start; n < COMMENT_COLUMN; n++)
		strbuf_putc(b, ' ');
	strbuf_appendf(b, " # %s\n", from ? from : "default");
}

static char *show_text(const struct config *cfg, const char *path)
{
	struct strbuf b = {0};
	char value[VALUE_MAX], at[VALUE_MAX];
	const char *section = "";
	size_t section_len = 0;

	strbuf_appendf(&b, "# walcount configuration: %s, WALCOUNT_* variables over it, defaults for the rest\n", path);
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		struct config_item it;
		shown_value(cfg, i, &it, value, sizeof value);
		size_t n = strcspn(it.path, ".");
		if (n != section_len || strncmp(it.path, section, n) != 0)
			strbuf_appendf(&b, "%.*s:\n", (int) n, it.path);
		section = it.path;
		section_len = n;
		append_text_line(&b, &it, value, where(&it, path, at, sizeof at));
	}
	return strbuf_take(&b);
}

static json_t *json_item(const struct config *cfg, size_t i, const char *path, const char **key)
{
	struct config_item it;
	char value[VALUE_MAX], at[VALUE_MAX];
	const char *from;

	shown_value(cfg, i, &it, value, sizeof value);
	from = where(&it, path, at, sizeof at);
	*key = it.path;
	return json_pack("{s:o, s:s, s:o}", "value", it.null ? json_null() : json_text(value), "source",
			 source_names[it.origin.source], "where", from ? json_text(from) : json_null());
}

static char *show_json(const struct config *cfg, const char *path)
{
	json_t *keys = json_object(), *root = json_pack("{s:o, s:o}", "file", json_text(path), "keys", keys);
	char *text = NULL;
	bool ok = root != NULL;

	for (size_t i = 0; ok && i < CONFIG_NKEYS; i++) {
		const char *key;
		json_t *item = json_item(cfg, i, path, &key);
		ok = item != NULL && json_object_set_new(keys, key, item) == 0;
	}
	if (ok)
		text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	return text;
}

char *config_show(const struct config *cfg, const char *path, bool json)
{
	return json ? show_json(cfg, path) : show_text(cfg, path);
}
