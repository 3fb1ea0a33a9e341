/* expect: the assertions of the integration tests (see expect.h). */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "cases.h"

/* How much of a long text a failure reason quotes. */
#define QUOTE 400

bool expect_eq_long(struct ctx *t, const char *what, long want, long got)
{
	return got == want || fail(t, "%s: got %ld, want %ld", what, got, want);
}

bool expect_ge_long(struct ctx *t, const char *what, long min, long got)
{
	return got >= min || fail(t, "%s: got %ld, want at least %ld", what, got, min);
}

bool expect_str_eq(struct ctx *t, const char *what, const char *want, const char *got)
{
	if (got != NULL && strcmp(got, want) == 0)
		return true;
	return fail(t, "%s: got \"%.*s\", want \"%s\"", what, QUOTE, got ? got : "(null)", want);
}

bool expect_str_contains(struct ctx *t, const char *what, const char *haystack, const char *needle)
{
	if (haystack != NULL && strstr(haystack, needle) != NULL)
		return true;
	return fail(t, "%s: want \"%s\" in \"%.*s\"", what, needle, QUOTE, haystack ? haystack : "(null)");
}

bool expect_str_lacks(struct ctx *t, const char *what, const char *haystack, const char *needle)
{
	const char *at = haystack ? strstr(haystack, needle) : NULL;

	return at == NULL || fail(t, "%s: \"%s\" must not occur, found at \"%.*s\"", what, needle, QUOTE, at);
}

bool expect_exit_code(struct ctx *t, const char *what, int want, int status, const char *output)
{
	char st[32];

	if (WIFEXITED(status) && WEXITSTATUS(status) == want)
		return true;
	return fail(t, "%s: ended with %s, want exit %d%s%.*s", what, it_status_text(status, st, sizeof st), want,
		    output ? ": " : "", QUOTE, output ? output : "");
}
