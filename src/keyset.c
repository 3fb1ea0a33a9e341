#include "keyset.h"

#include <errno.h>
#include <stdlib.h>

bool keyset_add(struct keyset *s, int64_t key)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		int64_t *k = cap > SIZE_MAX / sizeof *k ? NULL : realloc(s->key, cap * sizeof *k);
		if (k == NULL)
			return false;
		s->key = k;
		s->cap = cap;
	}
	s->key[s->n++] = key;
	return true;
}

bool keyset_add_list(struct keyset *s, const char *list, const char **bad)
{
	for (const char *p = list; *p != '\0'; p++) {
		char *end;
		errno = 0;
		long long v = strtoll(p, &end, 10);
		if (end == p || errno != 0 || (*end != ',' && *end != '\0')) {
			*bad = p;
			return false;
		}
		if (!keyset_add(s, v)) {
			*bad = NULL;
			return false;
		}
		p = end;
		if (*p == '\0')
			break;
	}
	return true;
}

static int by_key(const void *a, const void *b)
{
	int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;

	return (x > y) - (x < y);
}

void keyset_seal(struct keyset *s)
{
	size_t out = 0;

	if (s->n == 0)
		return;
	qsort(s->key, s->n, sizeof *s->key, by_key);
	for (size_t i = 1; i < s->n; i++)
		if (s->key[i] != s->key[out])
			s->key[++out] = s->key[i];
	s->n = out + 1;
}

void keyset_free(struct keyset *s)
{
	free(s->key);
	*s = (struct keyset){0};
}
