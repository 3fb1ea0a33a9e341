/* sqlscript: a script's statements one at a time, comment-only pieces
 * skipped. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <setjmp.h>
#include <cmocka.h>

#include "sqlscript.h"

static void expect_next(const char **p, const char *want)
{
	char *got = sqlscript_next(p);

	if (want == NULL) {
		assert_null(got);
		return;
	}
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void test_statements(void **state)
{
	const char *p = "-- header\n-- more;\nCREATE TABLE a (x int);\n\nINSERT INTO a\n-- a comment, no semicolon\n"
			"SELECT 1;\n  \n-- trailing comment\n";

	(void) state;
	expect_next(&p, "CREATE TABLE a (x int);");
	expect_next(&p, "\nINSERT INTO a\n-- a comment, no semicolon\nSELECT 1;");
	expect_next(&p, NULL);
	expect_next(&p, NULL);
}

/* A comment-only piece is skipped only when it holds nothing else; the
 * last statement may lack its ';' and newline. */
static void test_edges(void **state)
{
	const char *p = "-- only a comment;\nCOMMIT", *q = "", *r = "SELECT 1;\n-- x;\n";

	(void) state;
	expect_next(&p, "COMMIT");
	expect_next(&p, NULL);
	expect_next(&q, NULL);
	expect_next(&r, "SELECT 1;");
	expect_next(&r, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_statements),
		cmocka_unit_test(test_edges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
