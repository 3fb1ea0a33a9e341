/* strbuf: a growable NUL-terminated string, appended to piece by piece.
 *
 * Ownership: zero-initialise one (struct strbuf b = {0}); the builder owns
 * its text until strbuf_take hands it to the caller, who free()s it.
 * strbuf_free releases what the builder holds; both leave it empty and
 * ready for reuse.
 *
 * Out of memory: what is built here grows with the input (an array literal
 * of a whole batch, a metrics exposition), so a failed growth does not
 * abort as xalloc does. The builder turns failed instead: every later
 * append is a no-op, the text stays what it was before the failing append,
 * strbuf_failed says so and strbuf_take returns NULL. Callers check once,
 * when done. */
#ifndef WALCOUNT_STRBUF_H
#define WALCOUNT_STRBUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct strbuf {
	char *data; /* NULL until the first append */
	size_t len; /* bytes before the NUL */
	size_t cap; /* bytes allocated */
	bool failed;
};

void strbuf_append(struct strbuf *b, const char *s);
/* n bytes of s, which need not be NUL-terminated. */
void strbuf_appendn(struct strbuf *b, const char *s, size_t n);
void strbuf_putc(struct strbuf *b, char c);
void strbuf_appendf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A vsnprintf that fails (an encoding error) fails the builder too. */
void strbuf_vappendf(struct strbuf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Empties the text and clears a failure; keeps the memory for reuse. */
void strbuf_reset(struct strbuf *b);
/* The text so far, "" before anything was appended; valid until the next
 * call on b. */
const char *strbuf_str(const struct strbuf *b);
bool strbuf_failed(const struct strbuf *b);

/* The text, malloc'd, for the caller to free(); NULL when the builder
 * failed (its memory is released then). The builder is left empty. */
char *strbuf_take(struct strbuf *b);
void strbuf_free(struct strbuf *b);

#endif
