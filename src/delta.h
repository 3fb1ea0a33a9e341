/* delta: the pure counting rules. Turns one row change into signed deltas on
 * aggregate columns. No I/O. */
#ifndef WALCOUNT_DELTA_H
#define WALCOUNT_DELTA_H

#include <stddef.h>
#include <stdint.h>

#include "counters.h"
#include "decode.h"

enum skip_reason {
	SKIP_NONE,
	SKIP_NULL_FLAG,    /* is_current or is_delete is NULL in an image:
			       * reported, the image counted as not active */
	SKIP_UNKNOWN_TYPE, /* repost_type / save_type not track|playlist|album */
	SKIP_NULL_KEY,     /* a key column is NULL */
	SKIP_IDENTITY,     /* the old image lacks columns the rules read (the
			       * replica identity is not FULL); reported before
			       * any other reason: only a sweep can count it */
	SKIP__COUNT,
};

struct delta {
	enum agg_column column;
	int64_t key;
	int64_t amount; /* never 0 in derive's output */
};

/* An image moves at most two columns, a change has two images. */
#define DELTA_MAX 4

/* Derives the deltas of one I/U/D change into out and returns how many
 * (0..DELTA_MAX). The old image gives -1 on its keys when active, the new
 * image +1 when active (active = is_current AND NOT is_delete); entries on
 * the same (column, key) are summed and zero sums dropped, so a no-op
 * redelivery yields 0. When an image cannot be counted (incomplete,
 * unknown type, NULL key), returns 0 and sets *skip to the reason. An image with a NULL flag
 * counts as not active and the change is derived, with *skip =
 * SKIP_NULL_FLAG to report it; otherwise *skip = SKIP_NONE. Other actions
 * yield 0. */
size_t delta_derive(const struct change *c, struct delta out[DELTA_MAX], enum skip_reason *skip);

const char *skip_reason_name(enum skip_reason r); /* e.g. "null_flag" */

#endif
