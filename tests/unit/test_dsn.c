/* Unit tests for dsn.c: every DSN form libpq accepts is shown with its
 * passwords masked, and one it rejects shows no fragment of itself. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "dsn.h"

struct dsn_case {
	const char *dsn, *want;
	bool parses;
};

/* Every secret in the table contains "SEKRET", which must never show. */
static const struct dsn_case cases[] = {
	{"host=h dbname=d user=u password=SEKRET1", "user=u password=*** dbname=d host=h", true},
	{"host=h sslpassword=SEKRET2 password=SEKRET3", "password=*** host=h sslpassword=***", true},
	{"password=SEKRET4 host=h sslpassword=SEKRET5", "password=*** host=h sslpassword=***", true},
	{"user=password_rotator password=SEKRET6", "user=password_rotator password=***", true},
	{"password = 'SEK RET\\'7' host=h", "password=*** host=h", true},
	{"postgresql://u@h:5432/db?password=SEKRET8", "user=u password=*** dbname=db host=h port=5432", true},
	{"postgresql://u:SEKRET9@h/db", "user=u password=*** dbname=db host=h", true},
	{"postgres://u:SEKRET10@h1:1,h2:2/db?sslpassword=SEKRET11&application_name=a%20b",
	 "user=u password=*** dbname=db host=h1,h2 port=1,2 application_name='a b' sslpassword=***", true},
	{"host=h dbname='host=x password=SEKRET12'", "dbname='password=*** host=x' host=h", true},
	{"host=h application_name='it\\'s'", "host=h application_name='it\\'s'", true},
	{"", "", true},
	{"host=h password=SEKRET13 oops", "(unparseable DSN: missing \"=\" after \"...\")", false},
	{"host=h password=SEK\"RET14 x", "(unparseable DSN: missing \"=\" after \"...\")", false},
	{"host=h password='SEKRET15", "(unparseable DSN: unterminated quoted string in connection info string)", false},
	{"password=SEKRET16 SEKRET17=x", "(unparseable DSN: invalid connection option \"...\")", false},
	{"postgresql://u:SEKRET18@h/db?password=SEKRET19&x",
	 "(unparseable DSN: missing key/value separator \"=\" in URI query parameter: \"...\")", false},
	{"postgresql://u:SEKRET20@[::1/db",
	 "(unparseable DSN: end of string reached when looking for matching \"]\" in IPv6 host address in URI: \"...\")", false},
	{"postgresql://u:SEKRET%zz21@h/db", "(unparseable DSN: invalid percent-encoded token: \"...\")", false},
	{"postgresql://u:SEKRET%0022@h/db", "(unparseable DSN: forbidden value %00 in percent-encoded value: \"...\")", false},
	/* A fragment that starts like libpq's literal "=" is still cut. */
	{"postgresql://u:=\"SEKRET23%zz@h/db", "(unparseable DSN: invalid percent-encoded token: \"...\")", false},
	{"postgresql://u:]\"SEKRET24%zz@h/db", "(unparseable DSN: invalid percent-encoded token: \"...\")", false},
};

static void test_redact_table(void **state)
{
	(void) state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char buf[512];
		bool parses = dsn_redact(cases[i].dsn, buf, sizeof buf);
		if (parses != cases[i].parses || strcmp(buf, cases[i].want) != 0 || strstr(buf, "SEKRET") != NULL)
			fail_msg("dsn_redact(%s) = %d \"%s\", want %d \"%s\"", cases[i].dsn, parses, buf, cases[i].parses,
				 cases[i].want);
	}
}

/* A short buffer cuts the text; it never shows more of a secret. */
static void test_redact_truncates(void **state)
{
	(void) state;
	for (size_t len = 1; len < 40; len++) {
		char buf[40];
		dsn_redact("password=SEKRET host=h", buf, len);
		assert_true(strlen(buf) < len);
		assert_null(strstr(buf, "SEK"));
	}
}

static void test_scrub(void **state)
{
	char msg[128];

	(void) state;
	strcpy(msg, "invalid integer value \"SEKRET1\" for connection option \"port\"; SEKRET2");
	dsn_scrub("password=SEKRET1 sslpassword=SEKRET2", msg, sizeof msg);
	assert_string_equal(msg, "invalid integer value \"***\" for connection option \"port\"; ***");
	strcpy(msg, "a x b x");
	dsn_scrub("postgresql://u:x@h/db", msg, sizeof msg);
	assert_string_equal(msg, "a *** b ***");
	/* A short secret's mask grows the text: it is cut to fit. */
	strcpy(msg, "x x x");
	dsn_scrub("password=x", msg, 8);
	assert_string_equal(msg, "*** ***");
	strcpy(msg, "unparseable x");
	dsn_scrub("password=x oops", msg, sizeof msg);
	assert_string_equal(msg, "unparseable x");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_redact_table),
		cmocka_unit_test(test_redact_truncates),
		cmocka_unit_test(test_scrub),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
