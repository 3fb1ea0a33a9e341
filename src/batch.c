#include "batch.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

/* A small start keeps idle consumers cheap; growth doubles, so a burst of
 * keys costs only a few rehashes. Must be a power of two. */
#define INITIAL_CAPACITY 256

struct slot {
	struct batch_row row;
	enum agg_table table;
	bool used;
};

struct batch {
	struct slot *slots; /* owned; cap entries, zeroed when not used */
	size_t cap;         /* power of two, so probing can mask */
	size_t keys;
	size_t changes;
};

/* splitmix64's finalizer: user, track and playlist ids are dense small
 * integers, which would cluster badly under a plain mask. */
static uint64_t mix(uint64_t x)
{
	x ^= x >> 30;
	x *= UINT64_C(0xbf58476d1ce4e5b9);
	x ^= x >> 27;
	x *= UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

static uint64_t hash(enum agg_table t, int64_t key)
{
	/* Offsetting by the golden-ratio step keeps the same key in different
	 * tables apart; equal hashes are still told apart by the compare. */
	return mix((uint64_t) key + (uint64_t) t * UINT64_C(0x9e3779b97f4a7c15));
}

/* Linear probing: the matching slot, or the empty one where it belongs.
 * Never loops forever because the load factor keeps an empty slot. */
static struct slot *probe(struct slot *slots, size_t cap, enum agg_table t, int64_t key)
{
	size_t i = (size_t) hash(t, key) & (cap - 1);

	while (slots[i].used && (slots[i].table != t || slots[i].row.key != key))
		i = (i + 1) & (cap - 1);
	return &slots[i];
}

/* ~70% load: linear probing's expected probe length climbs steeply past it.
 * cap * 7 cannot overflow: cap slots of 48 bytes were allocated. */
static bool fits(size_t keys, size_t cap)
{
	return keys * 10 <= cap * 7;
}

/* Makes room for extra more keys up front, so that batch_add either fails
 * before touching anything or cannot fail at all. The table grows with
 * batch.max_keys and the transactions, not with walcount, so a failure is
 * refused (the caller stops with one line naming the batch) instead of
 * aborting as xalloc.h does for small allocations. */
static bool reserve(struct batch *b, size_t extra)
{
	size_t need = b->keys + extra; /* bounded by memory already held */
	size_t cap = b->cap;

	if (fits(need, cap))
		return true;
	while (!fits(need, cap))
		cap *= 2;
	struct slot *slots = calloc(cap, sizeof *slots);
	if (slots == NULL)
		return false;
	for (size_t i = 0; i < b->cap; i++)
		if (b->slots[i].used)
			*probe(slots, cap, b->slots[i].table, b->slots[i].row.key) = b->slots[i];
	free(b->slots);
	b->slots = slots;
	b->cap = cap;
	return true;
}

struct batch *batch_new(void)
{
	struct batch *b = xcalloc(1, sizeof *b);

	b->slots = xcalloc(INITIAL_CAPACITY, sizeof *b->slots);
	b->cap = INITIAL_CAPACITY;
	return b;
}

void batch_free(struct batch *b)
{
	if (b == NULL)
		return;
	free(b->slots);
	free(b);
}

/* Returns the slot of (t, key), claiming an empty one if it is new. Relies
 * on reserve() having left room, and on free slots being zeroed. */
static struct slot *claim(struct batch *b, enum agg_table t, int64_t key)
{
	struct slot *s = probe(b->slots, b->cap, t, key);

	if (!s->used) {
		s->used = true;
		s->table = t;
		s->row.key = key;
		b->keys++;
	}
	return s;
}

bool batch_add(struct batch *b, const struct delta *d, size_t n)
{
	/* Reserving for n new keys may grow a little early when some exist
	 * already; in exchange the adds below cannot fail halfway. */
	if (!reserve(b, n))
		return false;
	for (size_t i = 0; i < n; i++) {
		int col = agg_column_index(d[i].column);

		assert(col >= 0 && col < AGG_MAX_COLUMNS);
		claim(b, agg_column_table(d[i].column), d[i].key)->row.d[col] += d[i].amount;
	}
	b->changes++;
	return true;
}

size_t batch_keys(const struct batch *b)
{
	return b->keys;
}

size_t batch_changes(const struct batch *b)
{
	return b->changes;
}

/* Rows that sum to zero are kept in the map (they still count towards
 * batch_keys) but there is nothing to write for them. */
static bool wanted(const struct slot *s, enum agg_table t)
{
	if (!s->used || s->table != t)
		return false;
	for (int i = 0; i < AGG_MAX_COLUMNS; i++)
		if (s->row.d[i] != 0)
			return true;
	return false;
}

/* Compares instead of subtracting: key differences can overflow int64. */
static int cmp_key(const void *a, const void *b)
{
	int64_t x = ((const struct batch_row *) a)->key;
	int64_t y = ((const struct batch_row *) b)->key;

	return (x > y) - (x < y);
}

struct batch_row *batch_rows(const struct batch *b, enum agg_table t, size_t *n)
{
	size_t count = 0;

	for (size_t i = 0; i < b->cap; i++)
		count += wanted(&b->slots[i], t);
	*n = 0;
	if (count == 0)
		return NULL;
	/* caller frees; as big as the table, so it fails soft like reserve() */
	struct batch_row *rows = malloc(count * sizeof *rows);
	if (rows == NULL) {
		*n = SIZE_MAX;
		return NULL;
	}
	for (size_t i = 0; i < b->cap; i++)
		if (wanted(&b->slots[i], t))
			rows[(*n)++] = b->slots[i].row;
	qsort(rows, count, sizeof *rows, cmp_key);
	return rows;
}

bool batch_find(const struct batch *b, enum agg_table t, int64_t key, struct batch_row *out)
{
	const struct slot *s = probe(b->slots, b->cap, t, key);

	if (!wanted(s, t))
		return false;
	*out = s->row;
	return true;
}

bool batch_group(struct batch_row *rows, size_t n, enum agg_table t, int parts, size_t *start)
{
	size_t next[AGG_MAX_PARTITIONS];

	memset(start, 0, (size_t) (parts + 1) * sizeof *start);
	start[parts] = n;
	if (parts == 1 || n == 0)
		return true;
	/* A stable counting sort; as big as the batch, so it fails soft. */
	struct batch_row *sorted = malloc(n * sizeof *sorted);
	int *part = malloc(n * sizeof *part);
	bool ok = sorted != NULL && part != NULL;

	if (ok) {
		start[parts] = 0;
		for (size_t i = 0; i < n; i++) {
			part[i] = agg_partition(t, rows[i].key, parts);
			start[part[i] + 1]++;
		}
		for (int p = 0; p < parts; p++)
			start[p + 1] += start[p];
		memcpy(next, start, (size_t) parts * sizeof *next);
		for (size_t i = 0; i < n; i++)
			sorted[next[part[i]]++] = rows[i];
		memcpy(rows, sorted, n * sizeof *rows);
	}
	free(sorted);
	free(part);
	return ok;
}

/* One memset rather than a generation counter: batch_rows scans every slot
 * on each flush anyway, so a counter would save only a constant factor while
 * adding a stale-slot state to every probe and a wraparound case. Zeroing
 * whole slots also lets claim() rely on d[] starting at zero. */
void batch_reset(struct batch *b)
{
	memset(b->slots, 0, b->cap * sizeof *b->slots);
	b->keys = 0;
	b->changes = 0;
}
