/* batch: coalesces deltas per aggregate row in a hash map. Pure, no I/O.
 * The caller decides when to flush (see batch_keys / batch_changes) and owns
 * the progress position that goes with a batch. */
#ifndef WALCOUNT_BATCH_H
#define WALCOUNT_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "delta.h"

struct batch;

/* One aggregate row's summed deltas; d[] is indexed by agg_column_index(). */
struct batch_row {
	int64_t key;
	int64_t d[AGG_MAX_COLUMNS];
};

/* Returns a new empty batch (never NULL: xalloc.h). Caller frees with
 * batch_free. */
struct batch *batch_new(void);
void batch_free(struct batch *b);

/* Adds n deltas of one change. Counts one change even when n == 0.
 * Returns false only when out of memory (batch unchanged then). */
bool batch_add(struct batch *b, const struct delta *d, size_t n);

/* Distinct aggregate rows held (including rows whose sums are now zero). */
size_t batch_keys(const struct batch *b);
/* Changes added since the last reset. */
size_t batch_changes(const struct batch *b);

/* Returns the rows of table t whose deltas are not all zero, sorted by key
 * ascending (a stable lock order for the writer), in a new array the caller
 * frees with free(); *n gets the count. Returns NULL with *n = 0 when there
 * are none; NULL with *n = SIZE_MAX when out of memory. */
struct batch_row *batch_rows(const struct batch *b, enum agg_table t, size_t *n);

/* The row of key in table t, into *out, when its deltas are not all zero
 * (as batch_rows would list it); false otherwise. */
bool batch_find(const struct batch *b, enum agg_table t, int64_t key, struct batch_row *out);

/* Reorders rows[0..n) of table t, sorted by key as batch_rows returns
 * them, so that each partition's rows (agg_partition) are contiguous and
 * still sorted: partition p's are rows[start[p]..start[p + 1]), start has
 * parts + 1 entries. Returns false when out of memory (rows unchanged). */
bool batch_group(struct batch_row *rows, size_t n, enum agg_table t, int parts, size_t *start);

/* Empties the batch, keeping its allocation for reuse. */
void batch_reset(struct batch *b);

#endif
