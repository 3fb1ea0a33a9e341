#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ledger.h"

static void assert_progress(const struct progress *p, lsn_t lsn, uint64_t xid, uint64_t changes)
{
	assert_int_equal(p->lsn, lsn);
	assert_int_equal(p->partial_xid, xid);
	assert_int_equal(p->partial_changes, changes);
}

/* One transaction xid, committing at end, of n changes all held. */
static void receive(struct ledger *l, uint64_t xid, lsn_t end, int n)
{
	assert_true(ledger_begin(l, xid, end));
	for (int i = 0; i < n; i++) {
		assert_true(ledger_change(l));
		ledger_hold(l);
	}
	assert_true(ledger_commit(l, xid));
}

static void fresh_ledger_is_at_zero(void **state)
{
	struct ledger l;

	(void) state;
	ledger_init(&l, 4, 1000);
	struct progress min = ledger_min_stored(&l);
	assert_progress(&min, 0, 0, 0);
	assert_false(ledger_needs_write(&l));
	assert_int_equal(ledger_idle_position(&l), 0);
}

static void transaction_protocol_errors_are_refused(void **state)
{
	struct ledger l;

	(void) state;
	ledger_init(&l, 1, 0);
	assert_false(ledger_change(&l));
	assert_false(ledger_commit(&l, 7));
	assert_true(ledger_begin(&l, 7, 100));
	assert_false(ledger_begin(&l, 8, 200));
	assert_false(ledger_commit(&l, 8));
	assert_true(ledger_commit(&l, 7));
}

static void batch_becomes_applied_when_every_share_is_durable(void **state)
{
	struct ledger l;

	(void) state;
	ledger_init(&l, 3, 1000);
	receive(&l, 7, 100, 2);
	assert_true(ledger_needs_write(&l));
	ledger_sent(&l, (1u << 0) | (1u << 2));
	assert_false(ledger_needs_write(&l));
	ledger_share_durable(&l, 2, 5);
	assert_true(l.inflight);
	assert_progress(&l.applied, 0, 0, 0);
	ledger_share_durable(&l, 0, 6);
	assert_false(l.inflight);
	assert_progress(&l.applied, 100, 0, 0);
	assert_progress(&l.stored[0], 100, 0, 0);
	assert_progress(&l.stored[1], 0, 0, 0);
	assert_progress(&l.stored[2], 100, 0, 0);
	struct progress min = ledger_min_stored(&l);
	assert_progress(&min, 0, 0, 0);
}

static void batch_without_shares_is_applied_at_once(void **state)
{
	struct ledger l;

	(void) state;
	ledger_init(&l, 2, 1000);
	receive(&l, 7, 100, 1);
	ledger_sent(&l, 0);
	assert_false(l.inflight);
	assert_progress(&l.applied, 100, 0, 0);
}

static void partial_batch_carries_the_marker(void **state)
{
	struct ledger l;

	(void) state;
	ledger_init(&l, 1, 0);
	ledger_resume(&l, (struct progress[]){{50, 0, 0}}, 0);
	assert_true(ledger_begin(&l, 9, 300));
	for (int i = 0; i < 3; i++) {
		assert_true(ledger_change(&l));
		ledger_hold(&l);
	}
	assert_progress(&l.pending, 50, 9, 3);
	ledger_sent(&l, 1);
	ledger_share_durable(&l, 0, 1);
	assert_progress(&l.stored[0], 50, 9, 3);
	/* Applied in parts: nothing past the row's LSN is idle or confirmed. */
	ledger_idle(&l, 400);
	assert_int_equal(ledger_idle_position(&l), 50);
	assert_true(ledger_commit(&l, 9));
	assert_true(ledger_needs_write(&l));
	assert_int_equal(ledger_idle_position(&l), 50);
}

static void resume_skips_per_partition(void **state)
{
	struct ledger l;
	struct progress rows[3] = {{100, 0, 0}, {200, 0, 0}, {100, 9, 2}};

	(void) state;
	ledger_init(&l, 3, 1000);
	ledger_resume(&l, rows, 0);
	assert_progress(&l.applied, 100, 0, 0);
	assert_progress(&l.pending, 100, 0, 0);
	assert_int_equal(ledger_min_stored(&l).lsn, 100);
	/* Transaction 9 commits at 150: partition 1 has it all, partition 2
	 * its first two changes, partition 0 nothing. */
	assert_true(ledger_begin(&l, 9, 150));
	for (uint64_t i = 1; i <= 3; i++) {
		assert_true(ledger_change(&l));
		assert_false(ledger_applied_in(&l, 0));
		assert_true(ledger_applied_in(&l, 1));
		assert_int_equal(ledger_applied_in(&l, 2), i <= 2);
	}
	assert_true(ledger_commit(&l, 9));
	assert_true(ledger_begin(&l, 10, 100));
	assert_true(ledger_change(&l));
	assert_true(ledger_applied_in(&l, 0));
}

static void share_needed_rules(void **state)
{
	struct ledger l;
	struct progress rows[3] = {{100, 0, 0}, {100, 0, 0}, {300, 0, 0}};

	(void) state;
	ledger_init(&l, 3, 1000);
	ledger_resume(&l, rows, 0);
	receive(&l, 8, 150, 1);
	ledger_sent(&l, 2);
	ledger_share_durable(&l, 1, 10);
	receive(&l, 9, 200, 1);
	assert_true(ledger_share_needed(&l, 0, true, false, 1));
	/* Partition 0 is behind the others (at 150): written once its row is
	 * lazy_ms old. */
	assert_false(ledger_share_needed(&l, 0, false, false, 999));
	assert_true(ledger_share_needed(&l, 0, false, false, 1000));
	assert_true(ledger_share_needed(&l, 0, false, true, 1));
	/* Partition 1 is behind only the batch: it waits for a batch of its
	 * own or the heartbeat's force. */
	assert_false(ledger_share_needed(&l, 1, false, false, 5000));
	assert_true(ledger_share_needed(&l, 1, false, true, 5000));
	/* Partition 2's row is past the batch: never moved back. */
	assert_false(ledger_share_needed(&l, 2, true, true, 5000));
}

static void single_partition_writes_every_batch(void **state)
{
	struct ledger l;

	(void) state;
	ledger_init(&l, 1, 0);
	receive(&l, 9, 200, 1);
	assert_true(ledger_share_needed(&l, 0, false, false, 0));
}

static void discard_returns_to_the_rows(void **state)
{
	struct ledger l;
	struct progress rows[2] = {{100, 0, 0}, {120, 0, 0}};

	(void) state;
	ledger_init(&l, 2, 1000);
	ledger_resume(&l, rows, 0);
	receive(&l, 9, 200, 2);
	ledger_sent(&l, 3);
	ledger_share_durable(&l, 1, 1);
	assert_true(ledger_begin(&l, 10, 300));
	ledger_discard(&l);
	assert_false(l.inflight);
	assert_false(l.txn.open);
	assert_int_equal(l.held, 0);
	assert_progress(&l.applied, 100, 0, 0);
	assert_progress(&l.pending, 100, 0, 0);
	assert_int_equal(ledger_idle_position(&l), 100);
	assert_progress(&l.stored[1], 200, 0, 0);
}

static void idle_moves_only_when_nothing_is_held(void **state)
{
	struct ledger l;

	(void) state;
	ledger_init(&l, 1, 0);
	ledger_resume(&l, (struct progress[]){{100, 0, 0}}, 0);
	/* A transaction that moved nothing. */
	assert_true(ledger_begin(&l, 5, 150));
	assert_true(ledger_change(&l));
	assert_true(ledger_commit(&l, 5));
	assert_int_equal(ledger_idle_position(&l), 150);
	ledger_idle(&l, 180);
	assert_int_equal(ledger_idle_position(&l), 180);
	receive(&l, 6, 250, 1);
	ledger_idle(&l, 400);
	assert_int_equal(ledger_idle_position(&l), 100);
	ledger_sent(&l, 1);
	ledger_idle(&l, 400);
	assert_int_equal(ledger_idle_position(&l), 100);
	ledger_share_durable(&l, 0, 1);
	assert_int_equal(ledger_idle_position(&l), 250);
	ledger_idle(&l, 400);
	assert_int_equal(ledger_idle_position(&l), 400);
}

static void take_idle_moves_the_batch_end(void **state)
{
	struct ledger l;

	(void) state;
	ledger_init(&l, 2, 1000);
	ledger_resume(&l, (struct progress[]){{100, 0, 0}, {100, 0, 0}}, 0);
	assert_false(ledger_take_idle(&l));
	ledger_idle(&l, 500);
	assert_true(ledger_begin(&l, 3, 600));
	assert_false(ledger_take_idle(&l));
	assert_true(ledger_commit(&l, 3));
	assert_true(ledger_take_idle(&l));
	assert_progress(&l.pending, 600, 0, 0);
	assert_true(ledger_share_needed(&l, 1, false, true, 0));
}

static void progress_order(void **state)
{
	struct progress a = {100, 0, 0}, b = {100, 7, 1}, c = {100, 7, 2}, d = {101, 0, 0};

	(void) state;
	assert_true(progress_before(&a, &b));
	assert_true(progress_before(&b, &c));
	assert_true(progress_before(&c, &d));
	assert_false(progress_before(&b, &a));
	assert_false(progress_before(&a, &a));
	assert_true(progress_equal(&c, &c));
	assert_false(progress_equal(&b, &c));
}

static void lazy_rows_come_due(void **state)
{
	struct ledger l;
	int64_t next = INT64_MAX;

	(void) state;
	ledger_init(&l, 2, 1000);
	ledger_resume(&l, (struct progress[]){{100, 0, 0}, {100, 0, 0}}, 0);
	receive(&l, 9, 200, 1);
	assert_false(ledger_lazy_due(&l, 2000, &next));
	ledger_sent(&l, 1);
	ledger_share_durable(&l, 0, 500);
	assert_true(ledger_behind(&l));
	assert_false(ledger_lazy_due(&l, 999, &next));
	assert_int_equal(next, 1000);
	assert_true(ledger_lazy_due(&l, 1000, &next));
	assert_false(ledger_share_needed(&l, 0, false, false, 1000));
	assert_true(ledger_share_needed(&l, 1, false, false, 1000));
	ledger_sent(&l, 2);
	ledger_share_durable(&l, 1, 1000);
	assert_false(ledger_behind(&l));
	next = INT64_MAX;
	assert_false(ledger_lazy_due(&l, 5000, &next));
	assert_int_equal(next, INT64_MAX);
}

static void applied_everywhere_needs_every_partition(void **state)
{
	struct ledger l;

	(void) state;
	ledger_init(&l, 2, 1000);
	ledger_resume(&l, (struct progress[]){{100, 0, 0}, {300, 0, 0}}, 0);
	assert_true(ledger_begin(&l, 9, 200));
	assert_true(ledger_change(&l));
	assert_false(ledger_applied_everywhere(&l));
	assert_true(ledger_commit(&l, 9));
	assert_true(ledger_begin(&l, 10, 100));
	assert_true(ledger_change(&l));
	assert_true(ledger_applied_everywhere(&l));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fresh_ledger_is_at_zero),
		cmocka_unit_test(transaction_protocol_errors_are_refused),
		cmocka_unit_test(batch_becomes_applied_when_every_share_is_durable),
		cmocka_unit_test(batch_without_shares_is_applied_at_once),
		cmocka_unit_test(partial_batch_carries_the_marker),
		cmocka_unit_test(resume_skips_per_partition),
		cmocka_unit_test(share_needed_rules),
		cmocka_unit_test(single_partition_writes_every_batch),
		cmocka_unit_test(discard_returns_to_the_rows),
		cmocka_unit_test(idle_moves_only_when_nothing_is_held),
		cmocka_unit_test(take_idle_moves_the_batch_end),
		cmocka_unit_test(progress_order),
		cmocka_unit_test(lazy_rows_come_due),
		cmocka_unit_test(applied_everywhere_needs_every_partition),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
