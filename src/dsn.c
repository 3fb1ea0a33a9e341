#include "dsn.h"

#include <stdio.h>
#include <string.h>

#include <libpq-fe.h>

/* How deep a dbname holding a connection string is looked into: libpq
 * expands the DSN given as dbname once, so an inner one is literal, but its
 * text is still shown. */
#define MAX_NESTING 2

static bool is_secret(const char *keyword)
{
	return strcmp(keyword, "password") == 0 || strcmp(keyword, "sslpassword") == 0;
}

/* libpq takes a dbname with '=' or a URI prefix as a connection string. */
static bool is_conninfo(const char *value)
{
	return strchr(value, '=') != NULL || strncmp(value, "postgresql://", 13) == 0 || strncmp(value, "postgres://", 11) == 0;
}

/* Appends s at *n in buf, cutting at len - 1 bytes. */
static void append(char *buf, size_t len, size_t *n, const char *s)
{
	for (; *s != '\0' && *n + 1 < len; s++)
		buf[(*n)++] = *s;
	buf[*n] = '\0';
}

/* Appends value quoted as libpq's keyword=value form needs it. */
static void append_value(char *buf, size_t len, size_t *n, const char *value)
{
	char c[3] = {0};

	if (*value != '\0' && strpbrk(value, " \t\n\r\f\v'\\") == NULL) {
		append(buf, len, n, value);
		return;
	}
	append(buf, len, n, "'");
	for (; *value != '\0'; value++) {
		bool escape = *value == '\'' || *value == '\\';
		c[0] = escape ? '\\' : *value;
		c[1] = escape ? *value : '\0';
		append(buf, len, n, c);
	}
	append(buf, len, n, "'");
}

/* Whether p starts libpq's own one-character literal, "=" or "]", which its
 * messages follow with a space; a fragment that starts so ("="secret...")
 * is followed by more of itself. */
static bool is_literal(const char *p)
{
	return (p[1] == '=' || p[1] == ']') && p[2] == '"' && p[3] == ' ';
}

/* libpq's parse error with the DSN's fragments cut: the text from the first
 * quote that does not start a literal is replaced by "...", since a
 * fragment may itself hold a quote. */
static void append_reason(char *buf, size_t len, size_t *n, const char *msg)
{
	char c[2] = {0};

	for (const char *p = msg; *p != '\0' && *p != '\n'; p++) {
		if (*p == '"' && !is_literal(p)) {
			append(buf, len, n, "\"...\"");
			return;
		}
		if (*p == '"') {
			c[0] = p[1];
			append(buf, len, n, "\"");
			append(buf, len, n, c);
			append(buf, len, n, "\"");
			p += 2;
			continue;
		}
		c[0] = *p;
		append(buf, len, n, c);
	}
}

static bool redact(const char *dsn, char *buf, size_t len, size_t *n, int depth)
{
	char *errmsg = NULL;
	PQconninfoOption *opts = PQconninfoParse(dsn, &errmsg);
	bool first = true;

	if (opts == NULL) {
		append(buf, len, n, "(unparseable DSN: ");
		append_reason(buf, len, n, errmsg != NULL ? errmsg : "out of memory");
		append(buf, len, n, ")");
		PQfreemem(errmsg);
		return false;
	}
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL)
			continue;
		append(buf, len, n, first ? "" : " ");
		append(buf, len, n, o->keyword);
		append(buf, len, n, "=");
		first = false;
		if (is_secret(o->keyword)) {
			append(buf, len, n, "***");
		} else if (strcmp(o->keyword, "dbname") == 0 && depth < MAX_NESTING && is_conninfo(o->val)) {
			char inner[1024];
			size_t m = 0;
			inner[0] = '\0';
			redact(o->val, inner, sizeof inner, &m, depth + 1);
			append_value(buf, len, n, inner);
		} else {
			append_value(buf, len, n, o->val);
		}
	}
	PQconninfoFree(opts);
	return true;
}

bool dsn_redact(const char *dsn, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	return redact(dsn, buf, len, &n, 0);
}

/* Replaces every occurrence of secret in msg with ***, cutting the tail
 * when a short secret's mask would not fit in len bytes. */
static void mask(char *msg, size_t len, const char *secret)
{
	size_t s = strlen(secret);

	for (char *p = s ? strstr(msg, secret) : NULL; p != NULL; p = strstr(p + 3, secret)) {
		size_t at = (size_t) (p - msg), rest = strlen(p + s);
		if (at + 4 > len) {
			*p = '\0';
			return;
		}
		if (at + 4 + rest > len)
			rest = len - at - 4;
		memmove(p + 3, p + s, rest);
		memcpy(p, "***", 3);
		p[3 + rest] = '\0';
	}
}

static void scrub(const char *dsn, char *msg, size_t len, int depth)
{
	PQconninfoOption *opts = PQconninfoParse(dsn, NULL);

	for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++) {
		if (o->val == NULL)
			continue;
		if (is_secret(o->keyword))
			mask(msg, len, o->val);
		else if (strcmp(o->keyword, "dbname") == 0 && depth < MAX_NESTING && is_conninfo(o->val))
			scrub(o->val, msg, len, depth + 1);
	}
	PQconninfoFree(opts);
}

void dsn_scrub(const char *dsn, char *msg, size_t len)
{
	scrub(dsn, msg, len, 0);
}
