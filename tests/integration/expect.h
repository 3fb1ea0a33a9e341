/* expect: assertions of the integration tests that record, on a mismatch,
 * what was compared, the value wanted and the value seen (the test's
 * failure reason, see fail()). Each returns whether the check held. */
#ifndef IT_EXPECT_H
#define IT_EXPECT_H

#include <stdbool.h>

struct ctx;

bool expect_eq_long(struct ctx *t, const char *what, long want, long got);
/* got >= min. */
bool expect_ge_long(struct ctx *t, const char *what, long min, long got);
bool expect_str_eq(struct ctx *t, const char *what, const char *want, const char *got);
/* needle occurs in haystack (NULL: it does not). */
bool expect_str_contains(struct ctx *t, const char *what, const char *haystack, const char *needle);
bool expect_str_lacks(struct ctx *t, const char *what, const char *haystack, const char *needle);
/* A wait status that is a normal exit with code want; output (NULL: none)
 * is quoted in the failure. */
bool expect_exit_code(struct ctx *t, const char *what, int want, int status, const char *output);

#endif
