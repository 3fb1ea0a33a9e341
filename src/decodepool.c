/* decodepool: a ring of slots between one reader and K parsing threads.
 * Slots [head, claim) are claimed or parsed, [claim, tail) wait for a
 * worker, the rest are free. The reader alone writes head and the free
 * slots; a worker owns a slot from claiming it until it is done. One mutex
 * guards tail, claim and the waits; a slot's state is also atomic, so the
 * reader looks for a parsed result without the lock.
 *
 * Wake-ups are batched, since a futex round trip per record costs a third
 * of a parse: the reader wakes a worker once WAKE_BATCH records wait (or
 * before it waits itself), and a worker wakes the reader only for the
 * records it waits for. */
#include "decodepool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xalloc.h"

/* A slot's buffer that a huge record grew past this is freed on pop, so
 * one such record does not keep its size for the pool's life. */
#define SLOT_KEEP_BYTES (64 * 1024)
#define WAKE_BATCH 16

enum slot_state { SLOT_FREE, SLOT_QUEUED, SLOT_DONE };

struct slot {
	atomic_int state; /* enum slot_state; release and acquire order the result */
	bool copy_failed; /* the record did not fit in memory */
	char *buf;
	size_t len, cap;
	struct decoded out;
};

struct decodepool {
	pthread_mutex_t lock;
	pthread_cond_t work; /* a record was queued, or stop */
	pthread_cond_t done; /* a record was parsed while the reader waits */
	struct slot *slots;
	size_t nslots, max_bytes;
	size_t bytes;  /* reader's: record bytes in flight */
	uint64_t head; /* reader's: the oldest slot not popped */
	uint64_t tail; /* the next free slot */
	uint64_t claim;
	uint64_t wait_head, wait_last; /* what the waiting reader needs parsed */
	bool stop;
	bool reader_waiting;
	unsigned idle; /* workers waiting for work */
	unsigned nthreads;
	pthread_t threads[DECODEPOOL_MAX_WORKERS];
};

/* A mutex or condition variable error is a bug (EINVAL, EDEADLK), not a
 * state to go on from. */
static void must(int rc, const char *what)
{
	if (rc != 0) {
		log_error("decodepool: %s: %s", what, strerror(rc));
		abort();
	}
}

static void lock(struct decodepool *p)
{
	must(pthread_mutex_lock(&p->lock), "locking");
}

static void unlock(struct decodepool *p)
{
	must(pthread_mutex_unlock(&p->lock), "unlocking");
}

static struct slot *slot_at(const struct decodepool *p, uint64_t i)
{
	return &p->slots[i % p->nslots];
}

static void parse(struct slot *s)
{
	if (s->copy_failed) {
		s->out.ok = false;
		snprintf(s->out.err, sizeof s->out.err, "out of memory copying a record of %zu bytes", s->len);
		return;
	}
	s->out.ok = decode_record(s->buf, s->len, &s->out.change, s->out.err, sizeof s->out.err);
}

/* Under the lock: claims the oldest queued record and parses it, the lock
 * released meanwhile. */
static void parse_next(struct decodepool *p)
{
	uint64_t i = p->claim++;
	struct slot *s = slot_at(p, i);

	unlock(p);
	parse(s);
	lock(p);
	atomic_store_explicit(&s->state, SLOT_DONE, memory_order_release);
	if (p->reader_waiting && (i == p->wait_head || i == p->wait_last))
		must(pthread_cond_signal(&p->done), "signalling a result");
}

static void *worker(void *arg)
{
	struct decodepool *p = arg;

	lock(p);
	for (;;) {
		while (!p->stop && p->claim == p->tail) {
			p->idle++;
			must(pthread_cond_wait(&p->work, &p->lock), "waiting for work");
			p->idle--;
		}
		if (p->stop)
			break;
		parse_next(p);
	}
	unlock(p);
	decode_thread_exit();
	return NULL;
}

/* Stops and joins the first n workers. */
static void stop_workers(struct decodepool *p, unsigned n)
{
	lock(p);
	p->stop = true;
	must(pthread_cond_broadcast(&p->work), "waking the workers");
	unlock(p);
	for (unsigned i = 0; i < n; i++)
		must(pthread_join(p->threads[i], NULL), "joining a worker");
}

struct decodepool *decodepool_new(unsigned workers, size_t max_records, size_t max_bytes, char *err, size_t errlen)
{
	struct decodepool *p = xcalloc(1, sizeof *p);

	if (workers > DECODEPOOL_MAX_WORKERS)
		workers = DECODEPOOL_MAX_WORKERS;
	p->nslots = max_records > 0 ? max_records : 1;
	p->max_bytes = max_bytes;
	p->slots = xcalloc(p->nslots, sizeof *p->slots);
	must(pthread_mutex_init(&p->lock, NULL), "creating the lock");
	must(pthread_cond_init(&p->work, NULL), "creating a condition");
	must(pthread_cond_init(&p->done, NULL), "creating a condition");
	/* jansson's hash seed and walcount's allocator are process-wide: set
	 * them before any thread parses. */
	decode_init();
	for (; p->nthreads < workers; p->nthreads++) {
		int rc = pthread_create(&p->threads[p->nthreads], NULL, worker, p);
		if (rc != 0) {
			snprintf(err, errlen, "starting decode thread %u of %u: %s", p->nthreads + 1, workers, strerror(rc));
			decodepool_free(p);
			return NULL;
		}
	}
	return p;
}

void decodepool_free(struct decodepool *p)
{
	if (p == NULL)
		return;
	stop_workers(p, p->nthreads);
	for (size_t i = 0; i < p->nslots; i++)
		free(p->slots[i].buf);
	free(p->slots);
	must(pthread_cond_destroy(&p->done), "destroying a condition");
	must(pthread_cond_destroy(&p->work), "destroying a condition");
	must(pthread_mutex_destroy(&p->lock), "destroying the lock");
	free(p);
}

bool decodepool_full(const struct decodepool *p)
{
	size_t n = decodepool_pending(p);

	return n == p->nslots || (n > 0 && p->bytes >= p->max_bytes);
}

size_t decodepool_pending(const struct decodepool *p)
{
	/* tail moves only in submit, on the reader's thread. */
	return (size_t) (p->tail - p->head);
}

/* Copies the record into the slot's buffer; a record too big for memory
 * becomes an error result, not an abort (xalloc.h). */
static void copy_in(struct slot *s, const char *data, size_t len)
{
	s->len = len;
	s->copy_failed = false;
	if (len > s->cap) {
		char *buf = realloc(s->buf, len);
		if (buf == NULL) {
			s->copy_failed = true;
			return;
		}
		s->buf = buf, s->cap = len;
	}
	if (len > 0)
		memcpy(s->buf, data, len);
}

void decodepool_submit(struct decodepool *p, const char *data, size_t len, lsn_t wal_start)
{
	struct slot *s = slot_at(p, p->tail);

	copy_in(s, data, len);
	s->out.wal_start = wal_start;
	p->bytes += len;
	if (p->nthreads == 0) {
		parse(s);
		atomic_store_explicit(&s->state, SLOT_DONE, memory_order_relaxed);
		p->tail++;
		return;
	}
	lock(p);
	atomic_store_explicit(&s->state, SLOT_QUEUED, memory_order_relaxed);
	p->tail++;
	if (p->idle > 0 && p->tail - p->claim >= WAKE_BATCH)
		must(pthread_cond_signal(&p->work), "signalling work");
	unlock(p);
}

const struct decoded *decodepool_peek(struct decodepool *p)
{
	struct slot *s = slot_at(p, p->head);

	if (p->head == p->tail)
		return NULL;
	return atomic_load_explicit(&s->state, memory_order_acquire) == SLOT_DONE ? &s->out : NULL;
}

/* Under the lock. */
static void wake_for_queued(struct decodepool *p)
{
	if (p->idle > 0 && p->claim != p->tail)
		must(pthread_cond_broadcast(&p->work), "waking the workers");
}

void decodepool_kick(struct decodepool *p)
{
	if (p->nthreads == 0)
		return;
	lock(p);
	wake_for_queued(p);
	unlock(p);
}

void decodepool_wait(struct decodepool *p, size_t n)
{
	size_t pending = decodepool_pending(p);

	if (n > pending)
		n = pending;
	if (p->nthreads == 0 || n == 0)
		return;
	struct slot *first = slot_at(p, p->head), *last = slot_at(p, p->head + n - 1);
	lock(p);
	p->wait_head = p->head, p->wait_last = p->head + n - 1;
	while (atomic_load_explicit(&first->state, memory_order_relaxed) != SLOT_DONE ||
	       atomic_load_explicit(&last->state, memory_order_relaxed) != SLOT_DONE) {
		/* A record still queued is parsed here rather than after a
		 * switch to a worker and back: under light load that is every
		 * record, and no thread switch is paid at all. */
		if (p->claim != p->tail) {
			if (p->tail - p->claim > 1)
				wake_for_queued(p);
			parse_next(p);
			continue;
		}
		p->reader_waiting = true;
		must(pthread_cond_wait(&p->done, &p->lock), "waiting for a result");
	}
	p->reader_waiting = false;
	unlock(p);
}

void decodepool_pop(struct decodepool *p)
{
	struct slot *s = slot_at(p, p->head);

	p->bytes -= s->len;
	atomic_store_explicit(&s->state, SLOT_FREE, memory_order_relaxed);
	if (s->cap > SLOT_KEEP_BYTES) {
		free(s->buf);
		s->buf = NULL, s->cap = 0;
	}
	p->head++;
}
