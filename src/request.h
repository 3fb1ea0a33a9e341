/* request: `walcount reconcile` next to a running `walcount run`. The
 * command queues a row in walcount.sweep_requests and notifies channel
 * walcount_sweep; the consumer streaming the slot claims it, runs the sweep
 * between its batches and writes back the line `reconcile` prints. Through
 * the database, so it works from any host. */
#ifndef WALCOUNT_REQUEST_H
#define WALCOUNT_REQUEST_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#define REQUEST_CHANNEL "walcount_sweep"

/* The requesting side: queues a sweep (dry_run: report only) for the
 * consumer of slot, waits for its result and prints it on stdout. Returns
 * the exit code: 0 when the sweep ran, 1 when it failed, no consumer
 * streamed the slot for long enough to take it, or *stop was set (the
 * request is withdrawn when nobody has started it). */
int request_sweep(PGconn *conn, const char *slot, bool dry_run, volatile sig_atomic_t *stop);

/* The consumer's side: claims the oldest queued request of slot. *id is 0
 * when there is none. False with err set on a query error. */
bool request_claim(PGconn *conn, const char *slot, int64_t *id, bool *dry_run, char *err, size_t errlen);

/* Records the outcome of request id: the line to print, or why it failed. */
bool request_finish(PGconn *conn, int64_t id, bool ok, const char *text, char *err, size_t errlen);

#endif
