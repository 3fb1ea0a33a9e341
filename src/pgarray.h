/* pgarray: PostgreSQL arrays of batch rows, the form set-based statements
 * take their per-key values in: as text literals ("{1,2,3}"), or in the
 * binary form of an int8[] (the apply statement's, cheaper to write here and
 * to read on the server: bench/apply.sh). */
#ifndef WALCOUNT_PGARRAY_H
#define WALCOUNT_PGARRAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "counters.h"
#include "strbuf.h"

/* Writes "{a,b,c}" of rows[0..n) into a, replacing what it held: the keys
 * when field < 0, else d[field]. Returns false when out of memory (the
 * text grows with the batch, so it fails soft, as strbuf.h says). */
bool pgarray_rows(struct strbuf *a, const struct batch_row *rows, size_t n, int field);

/* Writes "{a,b,c}" of keys[0..n) into a, as pgarray_rows. */
bool pgarray_keys(struct strbuf *a, const int64_t *keys, size_t n);

/* The arrays a statement takes for rows[0..n) of aggregate table t: the
 * keys into arrays[0], then one array per stream column of t (counters.h)
 * into arrays[1..], each as pgarray_rows, or pgarray_rows_bin when binary.
 * False when out of memory, as pgarray_rows. */
bool pgarray_table(struct strbuf *arrays, enum agg_table t, const struct batch_row *rows, size_t n, bool binary);

/* The binary (send/receive) form of a one-dimensional int8[] without NULLs
 * of rows[0..n), the keys when field < 0, else d[field], for a parameter
 * sent with format 1: a header, then each element as its length (8) and
 * its value, all big-endian. Replaces what a held; a->len is its length
 * (it holds NUL bytes). False when out of memory, as pgarray_rows. */
bool pgarray_rows_bin(struct strbuf *a, const struct batch_row *rows, size_t n, int field);

#endif
