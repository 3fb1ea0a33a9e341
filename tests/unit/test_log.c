/* Unit tests for log.c: the JSON format's one object per line with its
 * structured fields (slot, event, lsn, xid) and escaping; the text format
 * unchanged by them. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
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
		cmocka_unit_test(test_json_fields),
		cmocka_unit_test(test_json_escaping),
		cmocka_unit_test(test_json_long_message),
		cmocka_unit_test(test_text_unchanged),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
