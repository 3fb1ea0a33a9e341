/* Unit tests for log.c: the JSON format's one object per line with its
 * structured fields (slot, event, lsn, xid) and escaping; the text format
 * unchanged by them. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* What the calls in fn wrote to stderr, malloc'd. */
static char *captured(void (*fn)(void))
{
	FILE *f = tmpfile();
	int saved = dup(STDERR_FILENO);
	char *text = calloc(1, 65536);

	assert_non_null(f);
	assert_non_null(text);
	assert_true(saved >= 0);
	fflush(stderr);
	assert_true(dup2(fileno(f), STDERR_FILENO) >= 0);
	fn();
	fflush(stderr);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	rewind(f);
	size_t n = fread(text, 1, 65535, f);
	text[n] = '\0';
	fclose(f);
	return text;
}

/* Line i (0-based) of text parsed as one JSON object. */
static json_t *json_line(const char *text, int i)
{
	const char *p = text;
	json_error_t e;

	for (; i > 0; i--) {
		p = strchr(p, '\n');
		assert_non_null(p);
		p++;
	}
	size_t n = strcspn(p, "\n");
	json_t *obj = json_loadb(p, n, 0, &e);
	if (obj == NULL)
		fail_msg("not JSON: %.*s (%s)", (int) n, p, e.text);
	assert_true(json_is_object(obj));
	return obj;
}

static int lines(const char *text)
{
	int n = 0;

	for (const char *p = text; (p = strchr(p, '\n')) != NULL; p++)
		n++;
	return n;
}

static void assert_member(const json_t *obj, const char *key, const char *want)
{
	const json_t *v = json_object_get(obj, key);

	if (want == NULL) {
		assert_null(v);
		return;
	}
	assert_true(json_is_string(v));
	assert_string_equal(json_string_value(v), want);
}

static void write_events(void)
{
	log_event(LOG_INFO, "progress", UINT64_C(0x16B374D848), 0, "progress: applied through %s", "16/B374D848");
	log_event(LOG_WARN, "change_skipped", UINT64_C(0x1000000FF), 4242, "skipped %s", "update");
	log_info("plain %d", 7);
	log_event(LOG_DEBUG, "hidden", 1, 1, "below the level");
}

static void test_json_fields(void **state)
{
	(void) state;
	log_setup(LOG_INFO, LOG_JSON);
	log_set_slot("walcount_b");
	char *text = captured(write_events);
	json_t *a = json_line(text, 0), *b = json_line(text, 1), *c = json_line(text, 2);

	/* Three lines: the debug one is filtered out. */
	assert_int_equal(lines(text), 3);
	assert_member(a, "level", "info");
	assert_member(a, "slot", "walcount_b");
	assert_member(a, "event", "progress");
	assert_member(a, "lsn", "16/B374D848");
	assert_null(json_object_get(a, "xid"));
	assert_member(a, "msg", "progress: applied through 16/B374D848");
	assert_true(json_is_string(json_object_get(a, "ts")));
	assert_member(b, "level", "warn");
	assert_member(b, "event", "change_skipped");
	assert_member(b, "lsn", "1/FF");
	assert_int_equal(json_integer_value(json_object_get(b, "xid")), 4242);
	/* log_msg: no event, no lsn, no xid; the slot still. */
	assert_member(c, "event", NULL);
	assert_member(c, "lsn", NULL);
	assert_null(json_object_get(c, "xid"));
	assert_member(c, "slot", "walcount_b");
	assert_member(c, "msg", "plain 7");
	json_decref(a);
	json_decref(b);
	json_decref(c);
	free(text);
}

static void write_awkward(void)
{
	log_event(LOG_ERROR, "decode_failed", 0, 0, "quote \" backslash \\ newline \n tab \t bell \a café");
}

/* Whatever the message holds, the line stays one valid JSON object. */
static void test_json_escaping(void **state)
{
	(void) state;
	log_setup(LOG_INFO, LOG_JSON);
	log_set_slot("s\"1");
	char *text = captured(write_awkward);
	json_t *a = json_line(text, 0);

	assert_int_equal(lines(text), 1);
	assert_member(a, "msg", "quote \" backslash \\ newline \n tab \t bell \a café");
	assert_member(a, "slot", "s\"1");
	assert_member(a, "lsn", NULL);
	json_decref(a);
	free(text);
}

static void write_long(void)
{
	char big[3000];

	memset(big, '\x01', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	log_event(LOG_INFO, "long", 1, 1, "%s", big);
}

/* A message cut at its limit, every byte escaped, is still whole JSON. */
static void test_json_long_message(void **state)
{
	(void) state;
	log_setup(LOG_INFO, LOG_JSON);
	log_set_slot(NULL);
	char *text = captured(write_long);
	json_t *a = json_line(text, 0);

	assert_member(a, "slot", NULL);
	assert_int_equal(strlen(json_string_value(json_object_get(a, "msg"))), 2047);
	json_decref(a);
	free(text);
}

static void write_not_utf8(void)
{
	char cut[2048];

	/* 2046 bytes, then the first byte of "é": vsnprintf keeps 2047. */
	memset(cut, 'a', 2046);
	memcpy(cut + 2046, "\xc3\xa9", 2);
	log_event(LOG_ERROR, "server_error", 0, 0, "%.*s", 2048, cut);
	log_error("latin1 caf\xe9, stray \xff\xfe, lone \x80");
	log_error("overlong \xc0\xaf \xe0\x80\xaf, surrogate \xed\xa0\x80, too big \xf4\x90\x80\x80");
	log_error("cut \xe2\x82 then text; valid \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbf");
}

/* Text that is not UTF-8, or a character cut at the message limit, becomes
 * U+FFFD per ill-formed sequence: the line stays JSON for strict parsers
 * (jansson refuses invalid UTF-8), valid characters pass through. */
static void test_json_not_utf8(void **state)
{
	(void) state;
	log_setup(LOG_INFO, LOG_JSON);
	log_set_slot(NULL);
	char *text = captured(write_not_utf8);
	char want[2050];

	assert_int_equal(lines(text), 4);
	memset(want, 'a', 2046);
	strcpy(want + 2046, "\xef\xbf\xbd");
	json_t *cut = json_line(text, 0), *latin1 = json_line(text, 1), *bad = json_line(text, 2), *mixed = json_line(text, 3);
	assert_member(cut, "msg", want);
	assert_member(latin1, "msg", "latin1 caf\ufffd, stray \ufffd\ufffd, lone \ufffd");
	/* Overlong forms, surrogates and code points past U+10FFFF: one per byte
	 * that cannot start or continue a well-formed character. */
	assert_member(bad, "msg",
		      "overlong \ufffd\ufffd \ufffd\ufffd\ufffd, surrogate \ufffd\ufffd\ufffd, too big "
		      "\ufffd\ufffd\ufffd\ufffd");
	assert_member(mixed, "msg", "cut \ufffd then text; valid é € \U0001F600 \uffff");
	json_decref(cut);
	json_decref(latin1);
	json_decref(bad);
	json_decref(mixed);
	free(text);
}

enum { RACE_LINES = 150 };

static void *log_lines(void *arg)
{
	(void) arg;
	for (int i = 0; i < RACE_LINES; i++)
		log_info("line %d", i);
	return NULL;
}

/* A reload (log_setup in the main thread) while two threads log: every line
 * whole, in one format or the other. Under ThreadSanitizer this is the
 * check that the settings are read and written without a data race. */
static void write_during_reload(void)
{
	pthread_t t[2];

	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, log_lines, NULL), 0);
	for (int i = 0; i < RACE_LINES; i++)
		log_setup(LOG_INFO, i % 2 ? LOG_JSON : LOG_TEXT);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
}

static void test_reload_while_logging(void **state)
{
	(void) state;
	log_set_slot(NULL);
	char *text = captured(write_during_reload);

	assert_int_equal(lines(text), 2 * RACE_LINES);
	for (const char *p = text; *p; p = strchr(p, '\n') + 1) {
		size_t n = strcspn(p, "\n");
		json_t *obj = json_loadb(p, n, 0, NULL);
		if (obj == NULL && (n < 30 || strncmp(p + 24, " info  line ", 12) != 0))
			fail_msg("neither JSON nor text: %.*s", (int) n, p);
		json_decref(obj);
	}
	free(text);
}

static void write_text(void)
{
	log_event(LOG_WARN, "change_skipped", 5, 6, "skipped %s", "it");
	log_info("plain");
}

/* The text format: "TS LEVEL message", the fields only in JSON. */
static void test_text_unchanged(void **state)
{
	(void) state;
	log_setup(LOG_INFO, LOG_TEXT);
	log_set_slot("walcount");
	char *text = captured(write_text);
	char *second = strchr(text, '\n') + 1;

	assert_int_equal(strncmp(strchr(text, ' '), " warn  skipped it\n", 18), 0);
	assert_string_equal(strchr(second, ' '), " info  plain\n");
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_fields),       cmocka_unit_test(test_json_escaping),
		cmocka_unit_test(test_json_long_message), cmocka_unit_test(test_json_not_utf8),
		cmocka_unit_test(test_text_unchanged),    cmocka_unit_test(test_reload_while_logging),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
