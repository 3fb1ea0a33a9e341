/* keyset: the aggregate keys of one table that a reconcile sweep's
 * correcting steps check, built by appending (from the compare's result),
 * then sorted and deduplicated once. Pure, no I/O. */
#ifndef WALCOUNT_KEYSET_H
#define WALCOUNT_KEYSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct keyset {
	int64_t *key;
	size_t n, cap;
};

/* Appends key. False when out of memory (the set is unchanged): it grows
 * with the changes written during a sweep, so that fails the sweep, not the
 * process. */
bool keyset_add(struct keyset *s, int64_t key);

/* Appends the keys of "1,2,3" (empty: none). False when out of memory or
 * when the text is not such a list; *bad then points at the offending
 * text, or is NULL for out of memory. */
bool keyset_add_list(struct keyset *s, const char *list, const char **bad);

/* Sorts the keys and drops duplicates. */
void keyset_seal(struct keyset *s);

void keyset_free(struct keyset *s);

#endif
