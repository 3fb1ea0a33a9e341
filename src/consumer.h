/* consumer: drives the pipeline stream -> decode -> delta -> batch -> apply
 * for `walcount run`, and owns the exactly-once bookkeeping (design.md §5):
 * which transactions to skip after a restart, when a batch is flushed, which
 * LSN may be reported to the server, and reconnecting with backoff. */
#ifndef WALCOUNT_CONSUMER_H
#define WALCOUNT_CONSUMER_H

#include <signal.h>

#include <stdbool.h>

#include <libpq-fe.h>

#include "config.h"
#include "slot.h"

struct consumer_opts {
	/* Set by a signal handler (SIGUSR1): start a reconcile sweep now. */
	volatile sig_atomic_t *sweep_now;
	/* Set by a signal handler (SIGHUP): call reload, which updates the
	 * configuration the consumer runs with in place. */
	volatile sig_atomic_t *reload_now;
	void (*reload)(void);
	/* `walcount reconcile`: sweep once, print the result, stop. */
	bool sweep_once;
	bool dry_run;
	/* The connection prepare() checked the slot on, holding the start-up
	 * lock (slot_lock) until streaming starts; the consumer takes it over
	 * as its apply connection. NULL: it connects itself. */
	PGconn *conn;
	struct slot_opts slot;
};

/* Streams until *stop becomes non-zero (then flushes, confirms and returns
 * 0) or an error retrying cannot fix (returns 1 after logging it). While
 * another process streams from the slot, stands by (logged once, /healthz
 * "standby") and takes over once it is released. The state schema must
 * exist (slot.c). */
int consumer_run(const struct config *cfg, const struct consumer_opts *opts, volatile sig_atomic_t *stop);

#endif
