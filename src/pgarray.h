/* pgarray: PostgreSQL array literals ("{1,2,3}") of batch rows, the text
 * form set-based statements take their per-key values in. */
#ifndef WALCOUNT_PGARRAY_H
#define WALCOUNT_PGARRAY_H

#include <stdbool.h>
#include <stddef.h>

#include "batch.h"

/* A growable text buffer; zero-initialise, free with pgarray_free. */
struct pgarray {
	char *s;
	size_t len, cap;
};

/* Writes "{a,b,c}" of rows[0..n) into a, replacing what it held: the keys
 * when field < 0, else d[field]. Returns false when out of memory. */
bool pgarray_rows(struct pgarray *a, const struct batch_row *rows, size_t n, int field);

void pgarray_free(struct pgarray *a);

#endif
