#include "pgarray.h"

#include <inttypes.h>
#include <stdint.h>

bool pgarray_rows(struct strbuf *a, const struct batch_row *rows, size_t n, int field)
{
	strbuf_reset(a);
	strbuf_putc(a, '{');
	for (size_t i = 0; i < n; i++)
		strbuf_appendf(a, "%s%" PRId64, i ? "," : "", field < 0 ? rows[i].key : rows[i].d[field]);
	strbuf_putc(a, '}');
	return !strbuf_failed(a);
}

bool pgarray_keys(struct strbuf *a, const int64_t *keys, size_t n)
{
	strbuf_reset(a);
	strbuf_putc(a, '{');
	for (size_t i = 0; i < n; i++)
		strbuf_appendf(a, "%s%" PRId64, i ? "," : "", keys[i]);
	strbuf_putc(a, '}');
	return !strbuf_failed(a);
}

/* int8's type oid (pg_type.dat), named in the binary array's header. */
#define INT8_OID 20

/* Appends x as a big-endian integer of `bytes` bytes. */
static void put_be(struct strbuf *a, uint64_t x, int bytes)
{
	char be[8];

	for (int i = 0; i < bytes; i++)
		be[i] = (char) (x >> (8 * (bytes - 1 - i)));
	strbuf_appendn(a, be, (size_t) bytes);
}

bool pgarray_rows_bin(struct strbuf *a, const struct batch_row *rows, size_t n, int field)
{
	strbuf_reset(a);
	/* ndim (an empty array has none), flags (no NULLs), element type, then
	 * per dimension its length and lower bound. */
	put_be(a, n ? 1 : 0, 4);
	put_be(a, 0, 4);
	put_be(a, INT8_OID, 4);
	if (n) {
		put_be(a, n, 4);
		put_be(a, 1, 4);
	}
	for (size_t i = 0; i < n; i++) {
		put_be(a, 8, 4);
		put_be(a, (uint64_t) (field < 0 ? rows[i].key : rows[i].d[field]), 8);
	}
	return !strbuf_failed(a);
}

bool pgarray_table(struct strbuf *arrays, enum agg_table t, const struct batch_row *rows, size_t n, bool binary)
{
	bool (*one)(struct strbuf *, const struct batch_row *, size_t, int) = binary ? pgarray_rows_bin : pgarray_rows;
	bool ok = one(&arrays[0], rows, n, -1);

	for (int c = 0; ok && c < agg_stream_columns(t); c++)
		ok = one(&arrays[1 + c], rows, n, c);
	return ok;
}
