#include "sqlscript.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

#include "xalloc.h"

/* True when text[0..n) holds something besides blanks and "--" comments. */
static bool has_statement(const char *text, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (text[i] == '-' && i + 1 < n && text[i + 1] == '-') {
			while (i < n && text[i] != '\n')
				i++;
		} else if (!isspace((unsigned char) text[i])) {
			return true;
		}
	}
	return false;
}

char *sqlscript_next(const char **p)
{
	while (**p != '\0') {
		const char *start = *p, *end = strstr(start, ";\n");
		size_t n = end != NULL ? (size_t) (end - start) + 1 : strlen(start);
		*p = start + (end != NULL ? n + 1 : n);
		if (has_statement(start, n)) {
			char *stmt = xmalloc(n + 1);
			memcpy(stmt, start, n);
			stmt[n] = '\0';
			return stmt;
		}
	}
	return NULL;
}
