#include "pgarray.h"

#include <inttypes.h>

bool pgarray_rows(struct strbuf *a, const struct batch_row *rows, size_t n, int field)
{
	strbuf_reset(a);
	strbuf_putc(a, '{');
	for (size_t i = 0; i < n; i++)
		strbuf_appendf(a, "%s%" PRId64, i ? "," : "", field < 0 ? rows[i].key : rows[i].d[field]);
	strbuf_putc(a, '}');
	return !strbuf_failed(a);
}

bool pgarray_table(struct strbuf *arrays, enum agg_table t, const struct batch_row *rows, size_t n)
{
	bool ok = pgarray_rows(&arrays[0], rows, n, -1);

	for (int c = 0; ok && c < agg_stream_columns(t); c++)
		ok = pgarray_rows(&arrays[1 + c], rows, n, c);
	return ok;
}
