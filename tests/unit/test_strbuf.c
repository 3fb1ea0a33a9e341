/* strbuf: appends, growth past the first allocation, the sticky failure
 * and the ownership hand-over of strbuf_take. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

static void test_empty(void **state)
{
	struct strbuf b = {0};

	(void) state;
	assert_string_equal(strbuf_str(&b), "");
	assert_false(strbuf_failed(&b));
	char *text = strbuf_take(&b);
	assert_non_null(text);
	assert_string_equal(text, "");
	free(text);
	strbuf_free(&b);
}

static void test_appends(void **state)
{
	struct strbuf b = {0};

	(void) state;
	strbuf_append(&b, "walcount_up");
	strbuf_putc(&b, ' ');
	strbuf_appendf(&b, "%d", 1);
	strbuf_appendn(&b, "\nrest", 1);
	strbuf_appendf(&b, "%s", "");
	strbuf_append(&b, "");
	assert_string_equal(strbuf_str(&b), "walcount_up 1\n");
	assert_int_equal(b.len, 14);
	strbuf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
}

/* Many small appends and one longer than the first allocation: the text
 * must come out whole, whatever the growth steps were. */
static void test_growth(void **state)
{
	struct strbuf b = {0};
	char want[20000], big[5000];
	size_t n = 0;

	(void) state;
	for (int i = 0; i < 2000; i++) {
		strbuf_appendf(&b, "%d,", i);
		n += (size_t) snprintf(want + n, sizeof want - n, "%d,", i);
	}
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	strbuf_appendf(&b, "[%s]", big);
	n += (size_t) snprintf(want + n, sizeof want - n, "[%s]", big);
	assert_int_equal(b.len, n);
	assert_int_equal(strlen(strbuf_str(&b)), n);
	assert_string_equal(strbuf_str(&b), want);
	assert_true(b.cap > b.len);
	strbuf_free(&b);
}

/* An appendf that fills the spare room exactly, one byte short of it and
 * one byte over: the NUL must always fit. */
static void test_boundary(void **state)
{
	struct strbuf b = {0};

	(void) state;
	strbuf_putc(&b, 'a');
	size_t room = b.cap - b.len;
	char fill[1024];
	for (size_t extra = room - 2; extra <= room; extra++) {
		strbuf_reset(&b);
		strbuf_putc(&b, 'a');
		memset(fill, 'y', extra);
		fill[extra] = '\0';
		strbuf_appendf(&b, "%s", fill);
		assert_int_equal(b.len, 1 + extra);
		assert_int_equal(strlen(strbuf_str(&b)), 1 + extra);
		assert_false(strbuf_failed(&b));
	}
	strbuf_free(&b);
}

static void test_reset_keeps_memory(void **state)
{
	struct strbuf b = {0};

	(void) state;
	strbuf_append(&b, "first");
	char *data = b.data;
	size_t cap = b.cap;
	strbuf_reset(&b);
	assert_string_equal(strbuf_str(&b), "");
	strbuf_append(&b, "second");
	assert_ptr_equal(b.data, data);
	assert_int_equal(b.cap, cap);
	assert_string_equal(strbuf_str(&b), "second");
	strbuf_free(&b);
}

/* take hands the text over and leaves the builder empty and reusable. */
static void test_take(void **state)
{
	struct strbuf b = {0};

	(void) state;
	strbuf_appendf(&b, "%s=%d", "x", 42);
	char *text = strbuf_take(&b);
	assert_string_equal(text, "x=42");
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	strbuf_append(&b, "again");
	assert_string_equal(strbuf_str(&b), "again");
	free(text);
	strbuf_free(&b);
}

/* A growth that cannot be had fails the builder: later appends change
 * nothing, the text stays what it was, take returns NULL and frees. */
static void test_failure_is_sticky(void **state)
{
	struct strbuf b = {0};

	(void) state;
	strbuf_append(&b, "kept");
	strbuf_appendn(&b, "", SIZE_MAX - 8);
	assert_true(strbuf_failed(&b));
	assert_string_equal(strbuf_str(&b), "kept");
	strbuf_append(&b, "lost");
	strbuf_appendf(&b, "%d", 7);
	strbuf_putc(&b, '!');
	assert_string_equal(strbuf_str(&b), "kept");
	assert_null(strbuf_take(&b));
	assert_null(b.data);
	assert_false(strbuf_failed(&b));
	strbuf_free(&b);
}

/* After a failure, reset makes the builder usable again. */
static void test_reset_clears_failure(void **state)
{
	struct strbuf b = {0};

	(void) state;
	strbuf_appendn(&b, "", SIZE_MAX / 2);
	assert_true(strbuf_failed(&b));
	strbuf_reset(&b);
	assert_false(strbuf_failed(&b));
	strbuf_append(&b, "ok");
	assert_string_equal(strbuf_str(&b), "ok");
	strbuf_free(&b);
}

/* A wrapper passing its own arguments on, as a renderer would. */
static void wrapped(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void wrapped(struct strbuf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	strbuf_vappendf(b, fmt, ap);
	va_end(ap);
}

static void test_vappendf(void **state)
{
	struct strbuf b = {0};
	char big[600];

	(void) state;
	memset(big, 'z', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	wrapped(&b, "%s_bucket{le=\"%g\"} %d\n", "h", 0.5, 3);
	assert_string_equal(strbuf_str(&b), "h_bucket{le=\"0.5\"} 3\n");
	/* Longer than the room left: formatted a second time from a copy of
	 * the arguments. */
	wrapped(&b, "%s|%s", big, "end");
	assert_int_equal(b.len, 21 + 599 + 4);
	assert_string_equal(strbuf_str(&b) + 21 + 599, "|end");
	strbuf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_appends),
		cmocka_unit_test(test_growth),
		cmocka_unit_test(test_boundary),
		cmocka_unit_test(test_reset_keeps_memory),
		cmocka_unit_test(test_take),
		cmocka_unit_test(test_failure_is_sticky),
		cmocka_unit_test(test_reset_clears_failure),
		cmocka_unit_test(test_vappendf),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
