/* decodepool: results come back in submit order whatever the worker count,
 * errors in their place, the bounds hold, and freeing mid-flight is clean
 * (ASan and Valgrind run these too). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "decodepool.h"

#define RECORD_MAX 1024

/* Record i: an INSERT into reposts by user i, or every bad_every-th one (0:
 * none) a text that does not parse. */
static size_t make_record(char *buf, size_t cap, uint64_t i, unsigned bad_every)
{
	int n;

	if (bad_every > 0 && i % bad_every == bad_every - 1)
		n = snprintf(buf, cap, "{\"action\":\"I\",\"xid\":%" PRIu64 ",", i);
	else
		n = snprintf(buf, cap,
			     "{\"action\":\"I\",\"xid\":7,\"lsn\":\"0/%" PRIX64 "\",\"schema\":\"public\",\"table\":\"reposts\","
			     "\"columns\":[{\"name\":\"user_id\",\"value\":%" PRIu64
			     "},{\"name\":\"repost_item_id\",\"value\":11},"
			     "{\"name\":\"repost_type\",\"value\":\"track\"},{\"name\":\"is_current\",\"value\":true},"
			     "{\"name\":\"is_delete\",\"value\":false}]}",
			     i + 1, i);
	assert_true(n > 0 && (size_t) n < cap);
	return (size_t) n;
}

static void check_result(const struct decoded *d, uint64_t i, unsigned bad_every)
{
	assert_non_null(d);
	assert_int_equal(d->wal_start, i + 1);
	if (bad_every > 0 && i % bad_every == bad_every - 1) {
		assert_false(d->ok);
		assert_non_null(strstr(d->err, "does not parse"));
		return;
	}
	if (!d->ok)
		fail_msg("record %" PRIu64 ": %s", i, d->err);
	assert_int_equal(d->change.action, ACT_INSERT);
	assert_int_equal(d->change.new.user, (int64_t) i);
	assert_int_equal(d->change.lsn, i + 1);
}

/* Takes every parsed result, checking it is record next, next + 1, ...;
 * returns the next one expected. */
static uint64_t take_ready(struct decodepool *p, uint64_t next, unsigned bad_every)
{
	const struct decoded *d;

	while ((d = decodepool_peek(p)) != NULL) {
		check_result(d, next++, bad_every);
		decodepool_pop(p);
	}
	return next;
}

/* Streams n records through a pool as stream.c does: wait for the oldest
 * only when full, take what is ready after each submit, drain at the end.
 * Checks every result's order and the bound on records in flight. */
static void stream_through(unsigned workers, size_t max_records, size_t max_bytes, uint64_t n, unsigned bad_every)
{
	char err[256], rec[RECORD_MAX];
	struct decodepool *p = decodepool_new(workers, max_records, max_bytes, err, sizeof err);
	uint64_t next = 0;

	assert_non_null(p);
	for (uint64_t i = 0; i < n; i++) {
		while (decodepool_full(p)) {
			decodepool_wait(p, decodepool_pending(p) / 2 + 1);
			next = take_ready(p, next, bad_every);
		}
		decodepool_submit(p, rec, make_record(rec, sizeof rec, i, bad_every), i + 1);
		assert_true(decodepool_pending(p) <= max_records);
		next = take_ready(p, next, bad_every);
	}
	while (decodepool_pending(p) > 0) {
		decodepool_wait(p, decodepool_pending(p));
		next = take_ready(p, next, bad_every);
	}
	assert_int_equal(next, n);
	assert_int_equal(decodepool_pending(p), 0);
	decodepool_free(p);
}

static void test_order_inline(void **state)
{
	(void) state;
	stream_through(0, 16, 1 << 20, 2000, 0);
}

static void test_order_one_worker(void **state)
{
	(void) state;
	stream_through(1, 64, 1 << 20, 5000, 0);
}

static void test_order_many_workers(void **state)
{
	(void) state;
	stream_through(4, 64, 1 << 20, 20000, 0);
	stream_through(8, 3, 1 << 20, 5000, 0);
}

static void test_errors_in_order(void **state)
{
	(void) state;
	stream_through(0, 8, 1 << 20, 500, 7);
	stream_through(3, 32, 1 << 20, 5000, 7);
}

/* Inline, a submitted record is ready at once. */
static void test_inline_ready_at_once(void **state)
{
	char err[256], rec[RECORD_MAX];
	struct decodepool *p = decodepool_new(0, 4, 1 << 20, err, sizeof err);

	(void) state;
	assert_null(decodepool_peek(p));
	decodepool_wait(p, 1);
	decodepool_submit(p, rec, make_record(rec, sizeof rec, 5, 0), 6);
	check_result(decodepool_peek(p), 5, 0);
	decodepool_pop(p);
	assert_null(decodepool_peek(p));
	decodepool_free(p);
}

static void test_record_bound(void **state)
{
	char err[256], rec[RECORD_MAX];
	size_t len = make_record(rec, sizeof rec, 0, 0);
	struct decodepool *p = decodepool_new(2, 5, 1 << 20, err, sizeof err);

	(void) state;
	for (int i = 0; i < 5; i++) {
		assert_false(decodepool_full(p));
		decodepool_submit(p, rec, len, 1);
	}
	assert_true(decodepool_full(p));
	decodepool_wait(p, 1);
	assert_non_null(decodepool_peek(p));
	decodepool_pop(p);
	assert_false(decodepool_full(p));
	decodepool_free(p);
}

/* The byte bound admits one record whatever its size, then holds. */
static void test_byte_bound(void **state)
{
	char err[256], rec[RECORD_MAX];
	size_t len = make_record(rec, sizeof rec, 0, 0);
	struct decodepool *p = decodepool_new(2, 100, 2 * len + 1, err, sizeof err);

	(void) state;
	decodepool_submit(p, rec, len, 1);
	decodepool_submit(p, rec, len, 1);
	assert_false(decodepool_full(p));
	decodepool_submit(p, rec, len, 1);
	assert_true(decodepool_full(p));
	decodepool_wait(p, 3);
	for (int i = 0; i < 3; i++) {
		decodepool_wait(p, 1);
		assert_non_null(decodepool_peek(p));
		decodepool_pop(p);
	}
	decodepool_free(p);

	p = decodepool_new(1, 100, 10, err, sizeof err);
	assert_false(decodepool_full(p));
	decodepool_submit(p, rec, len, 1);
	assert_true(decodepool_full(p));
	decodepool_free(p);
}

/* A record far bigger than a slot keeps: parsed, then its buffer freed. */
static void test_huge_record(void **state)
{
	enum { CONTENT = 300 * 1024 };
	static const char head[] = "{\"action\":\"M\",\"transactional\":false,\"prefix\":\"walcount\",\"content\":\"";
	char err[256];
	char *rec = malloc(sizeof head + CONTENT + 2);
	struct decodepool *p = decodepool_new(2, 4, 1 << 20, err, sizeof err);

	(void) state;
	assert_non_null(rec);
	memcpy(rec, head, sizeof head - 1);
	memset(rec + sizeof head - 1, 'x', CONTENT);
	memcpy(rec + sizeof head - 1 + CONTENT, "\"}", 2);
	for (int i = 0; i < 3; i++) {
		decodepool_submit(p, rec, sizeof head - 1 + CONTENT + 2, 9);
		decodepool_wait(p, 1);
		const struct decoded *d = decodepool_peek(p);
		assert_non_null(d);
		if (!d->ok)
			fail_msg("%s", d->err);
		assert_int_equal(d->change.action, ACT_MESSAGE);
		decodepool_pop(p);
	}
	free(rec);
	decodepool_free(p);
}

/* A few records, below the batch that wakes a worker by itself, are
 * parsed after a kick without the reader waiting. */
static void test_kick(void **state)
{
	char err[256], rec[RECORD_MAX];
	struct decodepool *p = decodepool_new(2, 64, 1 << 20, err, sizeof err);
	struct timespec pause = {0, 1000000};

	(void) state;
	/* Let the workers go idle first. */
	for (int i = 0; i < 50; i++)
		nanosleep(&pause, NULL);
	for (uint64_t i = 0; i < 3; i++)
		decodepool_submit(p, rec, make_record(rec, sizeof rec, i, 0), i + 1);
	decodepool_kick(p);
	uint64_t next = 0;
	for (int i = 0; i < 10000 && next < 3; i++) {
		next = take_ready(p, next, 0);
		nanosleep(&pause, NULL);
	}
	assert_int_equal(next, 3);
	decodepool_free(p);
}

/* A reconnect frees the pool with records queued and being parsed. */
static void test_free_mid_flight(void **state)
{
	char err[256], rec[RECORD_MAX];

	(void) state;
	for (unsigned workers = 0; workers <= 4; workers++) {
		struct decodepool *p = decodepool_new(workers, 512, 1 << 20, err, sizeof err);
		for (uint64_t i = 0; i < 512; i++)
			decodepool_submit(p, rec, make_record(rec, sizeof rec, i, 5), i + 1);
		decodepool_wait(p, 1);
		check_result(decodepool_peek(p), 0, 5);
		decodepool_free(p);
	}
	decodepool_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_inline),
		cmocka_unit_test(test_order_one_worker),
		cmocka_unit_test(test_order_many_workers),
		cmocka_unit_test(test_errors_in_order),
		cmocka_unit_test(test_inline_ready_at_once),
		cmocka_unit_test(test_record_bound),
		cmocka_unit_test(test_byte_bound),
		cmocka_unit_test(test_huge_record),
		cmocka_unit_test(test_kick),
		cmocka_unit_test(test_free_mid_flight),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
