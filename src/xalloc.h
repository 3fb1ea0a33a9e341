/* xalloc: the out-of-memory policy for small allocations, as PostgreSQL's
 * pg_malloc. A failure logs one line, "out of memory allocating N bytes",
 * and aborts: a process that cannot get a few hundred bytes cannot do
 * anything useful, and walcount loses nothing when it stops (design.md §5),
 * so callers need no error branch. The functions never return NULL.
 *
 * Not for allocations whose size the input controls (the batch's table and
 * rows grow with batch.max_keys, the array texts with them, a decoded
 * record with the transaction): those fail soft and are refused with an
 * error of their own, so that a size too big for memory is one clear line
 * and not an abort. */
#ifndef WALCOUNT_XALLOC_H
#define WALCOUNT_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
/* Zeroed; count * size is checked for overflow (an overflow aborts too). */
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

#endif
