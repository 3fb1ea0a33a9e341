#include "pgarray.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

static bool reserve(struct pgarray *a, size_t more)
{
	if (a->len + more < a->cap)
		return true;
	size_t cap = a->cap ? a->cap : 256;
	while (cap <= a->len + more)
		cap *= 2;
	char *s = realloc(a->s, cap);
	if (s == NULL)
		return false;
	a->s = s;
	a->cap = cap;
	return true;
}

bool pgarray_rows(struct pgarray *a, const struct batch_row *rows, size_t n, int field)
{
	a->len = 0;
	if (!reserve(a, 2))
		return false;
	a->s[a->len++] = '{';
	for (size_t i = 0; i < n; i++) {
		int64_t v = field < 0 ? rows[i].key : rows[i].d[field];
		/* sign, 19 digits, comma and the closing "}\0" */
		if (!reserve(a, 24))
			return false;
		a->len += (size_t) sprintf(a->s + a->len, "%s%" PRId64, i ? "," : "", v);
	}
	a->s[a->len++] = '}';
	a->s[a->len] = '\0';
	return true;
}

void pgarray_free(struct pgarray *a)
{
	free(a->s);
	*a = (struct pgarray){0};
}
