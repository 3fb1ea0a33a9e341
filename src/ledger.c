#include "ledger.h"

#include <string.h>

void ledger_init(struct ledger *l, int parts, int64_t lazy_ms)
{
	memset(l, 0, sizeof *l);
	l->parts = parts;
	l->lazy_ms = lazy_ms;
}

bool progress_before(const struct progress *a, const struct progress *b)
{
	if (a->lsn != b->lsn)
		return a->lsn < b->lsn;
	/* At one commit LSN, a transaction applied in parts is past it. */
	if (a->partial_xid != b->partial_xid)
		return a->partial_xid == 0;
	return a->partial_changes < b->partial_changes;
}

bool progress_equal(const struct progress *a, const struct progress *b)
{
	return a->lsn == b->lsn && a->partial_xid == b->partial_xid && a->partial_changes == b->partial_changes;
}

struct progress ledger_min_stored(const struct ledger *l)
{
	struct progress min = l->stored[0];

	for (int p = 1; p < l->parts; p++)
		if (progress_before(&l->stored[p], &min))
			min = l->stored[p];
	return min;
}

void ledger_resume(struct ledger *l, const struct progress *rows, int64_t now_ms)
{
	for (int p = 0; p < l->parts; p++) {
		l->stored[p] = rows[p];
		l->written_ms[p] = now_ms;
	}
	l->applied = ledger_min_stored(l);
	l->pending = l->applied;
	l->held = 0;
	l->inflight = false;
	l->inflight_parts = 0;
	l->idle_lsn = l->applied.lsn;
	l->txn.open = false;
}

bool ledger_begin(struct ledger *l, uint64_t xid, lsn_t end_lsn)
{
	if (l->txn.open)
		return false;
	l->txn = (struct ledger_txn){true, xid, end_lsn, 0};
	return true;
}

bool ledger_change(struct ledger *l)
{
	if (!l->txn.open)
		return false;
	l->txn.changes++;
	return true;
}

bool ledger_applied_in(const struct ledger *l, int part)
{
	const struct progress *row = &l->stored[part];

	if (l->txn.end_lsn <= row->lsn)
		return true;
	return l->txn.xid == row->partial_xid && l->txn.changes <= row->partial_changes;
}

bool ledger_applied_everywhere(const struct ledger *l)
{
	for (int p = 0; p < l->parts; p++)
		if (!ledger_applied_in(l, p))
			return false;
	return true;
}

void ledger_hold(struct ledger *l)
{
	l->held++;
	l->pending.partial_xid = l->txn.xid;
	l->pending.partial_changes = l->txn.changes;
}

bool ledger_commit(struct ledger *l, uint64_t xid)
{
	if (!l->txn.open || xid != l->txn.xid)
		return false;
	l->txn.open = false;
	l->pending = (struct progress){l->txn.end_lsn, 0, 0};
	/* A transaction that moved nothing needs no write of its own. */
	if (!ledger_needs_write(l) && l->txn.end_lsn > l->idle_lsn)
		l->idle_lsn = l->txn.end_lsn;
	return true;
}

bool ledger_needs_write(const struct ledger *l)
{
	const struct progress *written = l->inflight ? &l->inflight_to : &l->applied;

	return l->held > 0 || l->pending.partial_xid != written->partial_xid ||
	       l->pending.partial_changes != written->partial_changes;
}

bool ledger_share_needed(const struct ledger *l, int part, bool has_rows, bool force, int64_t now_ms)
{
	/* A row ahead of the batch (a restart resumed from an earlier one) must
	 * not move back; it has no deltas in the batch then. */
	if (!progress_before(&l->stored[part], &l->pending))
		return false;
	if (has_rows || force || l->lazy_ms == 0)
		return true;
	/* Only behind the other partitions: a row merely behind transactions
	 * that moved nothing waits for the heartbeat, as with one partition. */
	return progress_before(&l->stored[part], &l->applied) && now_ms - l->written_ms[part] >= l->lazy_ms;
}

bool ledger_behind(const struct ledger *l)
{
	for (int p = 0; p < l->parts; p++)
		if (progress_before(&l->stored[p], &l->pending))
			return true;
	return false;
}

bool ledger_lazy_due(const struct ledger *l, int64_t now_ms, int64_t *next_ms)
{
	if (l->lazy_ms == 0 || l->txn.open || l->inflight || ledger_needs_write(l))
		return false;
	for (int p = 0; p < l->parts; p++) {
		if (!progress_before(&l->stored[p], &l->applied))
			continue;
		int64_t due = l->written_ms[p] + l->lazy_ms;
		if (due <= now_ms)
			return true;
		if (due < *next_ms)
			*next_ms = due;
	}
	return false;
}

void ledger_sent(struct ledger *l, uint64_t parts)
{
	l->inflight = true;
	l->inflight_to = l->pending;
	l->inflight_parts = parts;
	l->held = 0;
	if (parts == 0)
		ledger_share_durable(l, -1, 0);
}

void ledger_share_durable(struct ledger *l, int part, int64_t now_ms)
{
	if (part >= 0) {
		l->stored[part] = l->inflight_to;
		l->written_ms[part] = now_ms;
		l->inflight_parts &= ~((uint64_t) 1 << part);
	}
	if (l->inflight_parts != 0)
		return;
	l->applied = l->inflight_to;
	l->inflight = false;
}

void ledger_discard(struct ledger *l)
{
	l->held = 0;
	l->inflight = false;
	l->inflight_parts = 0;
	l->applied = ledger_min_stored(l);
	l->pending = l->applied;
	/* What was idle may have been known only with the lost batch applied. */
	l->idle_lsn = l->applied.lsn;
	l->txn.open = false;
}

void ledger_idle(struct ledger *l, lsn_t lsn)
{
	if (l->txn.open || ledger_needs_write(l) || l->inflight)
		return;
	if (lsn > l->idle_lsn)
		l->idle_lsn = lsn;
}

lsn_t ledger_idle_position(const struct ledger *l)
{
	if (ledger_needs_write(l) || l->inflight || l->applied.partial_xid != 0 || l->idle_lsn < l->applied.lsn)
		return l->applied.lsn;
	return l->idle_lsn;
}

bool ledger_take_idle(struct ledger *l)
{
	if (l->txn.open || ledger_idle_position(l) <= l->applied.lsn)
		return false;
	l->pending = (struct progress){l->idle_lsn, 0, 0};
	return true;
}
