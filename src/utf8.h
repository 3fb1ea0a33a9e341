/* utf8: well-formed UTF-8 as RFC 3629 defines it: no overlong forms, no
 * surrogates, nothing past U+10FFFF. Pure. */
#ifndef WALCOUNT_UTF8_H
#define WALCOUNT_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* The length of what starts at s, a non-NUL byte of a NUL-terminated
 * string: a well-formed character's (1-4, *ok true), or else the longest
 * start of one that is ill-formed or cut short, at least 1 (*ok false), so
 * that each such piece becomes one U+FFFD as Unicode recommends. Never
 * reads past the NUL. */
size_t utf8_next(const char *s, bool *ok);

/* Whether the NUL-terminated s is well-formed UTF-8. */
bool utf8_valid(const char *s);

#endif
