#include "strbuf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Makes room for extra more bytes plus the NUL; false (and failed) when
 * that cannot be had. Doubling keeps a long build linear. */
static bool reserve(struct strbuf *b, size_t extra)
{
	size_t cap = b->cap ? b->cap : 256;

	if (b->failed)
		return false;
	if (extra < b->cap - b->len)
		return true;
	if (extra >= SIZE_MAX / 2 - b->len) {
		b->failed = true;
		return false;
	}
	while (cap <= b->len + extra)
		cap *= 2;
	char *p = realloc(b->data, cap);
	if (p == NULL) {
		b->failed = true;
		return false;
	}
	b->data = p;
	b->cap = cap;
	return true;
}

void strbuf_appendn(struct strbuf *b, const char *s, size_t n)
{
	if (!reserve(b, n))
		return;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void strbuf_append(struct strbuf *b, const char *s)
{
	strbuf_appendn(b, s, strlen(s));
}

void strbuf_putc(struct strbuf *b, char c)
{
	strbuf_appendn(b, &c, 1);
}

/* Formats straight into the spare room; only a text that does not fit is
 * formatted a second time, after growing. */
void strbuf_vappendf(struct strbuf *b, const char *fmt, va_list ap)
{
	size_t room = b->cap - b->len;
	va_list again;

	if (b->failed)
		return;
	va_copy(again, ap);
	int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap);
	if (n < 0)
		b->failed = true;
	else if ((size_t) n >= room && reserve(b, (size_t) n))
		vsnprintf(b->data + b->len, b->cap - b->len, fmt, again);
	va_end(again);
	if (b->failed) {
		if (b->data != NULL)
			b->data[b->len] = '\0'; /* drop what a short first try left */
		return;
	}
	b->len += (size_t) n;
}

void strbuf_appendf(struct strbuf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	strbuf_vappendf(b, fmt, ap);
	va_end(ap);
}

void strbuf_reset(struct strbuf *b)
{
	b->len = 0;
	b->failed = false;
	if (b->data != NULL)
		b->data[0] = '\0';
}

const char *strbuf_str(const struct strbuf *b)
{
	return b->data != NULL ? b->data : "";
}

bool strbuf_failed(const struct strbuf *b)
{
	return b->failed;
}

char *strbuf_take(struct strbuf *b)
{
	char *text = NULL;

	if (reserve(b, 0)) {
		b->data[b->len] = '\0';
		text = b->data;
		b->data = NULL;
	}
	strbuf_free(b);
	return text;
}

void strbuf_free(struct strbuf *b)
{
	free(b->data);
	*b = (struct strbuf){0};
}
