/* slot: the walcount state schema and the replication slot: inspect, create
 * with the exact initial load, rebuild when the slot can no longer continue
 * what walcount applied, drop. */
#ifndef WALCOUNT_SLOT_H
#define WALCOUNT_SLOT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "config.h"

/* Creates the walcount schema and its tables when missing (idempotent). */
bool slot_state_schema(PGconn *conn, char *err, size_t errlen);

/* Makes the slot cfg->slot_name ready to stream from walcount.progress, on
 * conn (a normal connection to the slot's database):
 *  - missing: creates it with an exported snapshot and runs the exact
 *    initial load in that snapshot (design.md §6);
 *  - held by another process: waits a while for it to be released, or with
 *    takeover terminates the holder; then an error naming the PID;
 *  - another plugin or database: an error;
 *  - no progress row, wal_status lost, or confirmed_flush_lsn ahead of the
 *    stored progress (advanced or replaced by someone else): logs why, drops
 *    it and rebuilds it exactly as if missing.
 * A temporary slot (slot.temporary) is left to stream.c. Creating a slot
 * waits for the transactions that hold an xid (slotwait.h), and stops once
 * *stop is set. Returns false with a one-line err on failure. */
bool slot_ensure(PGconn *conn, const struct config *cfg, bool takeover, volatile sig_atomic_t *stop, char *err,
		 size_t errlen);

/* Drops the slot and walcount's state (its progress and checkpoint rows;
 * the schema too when no other slot's rows remain). Refuses while a
 * consumer holds the slot. Returns false with err set on failure. */
bool slot_drop(PGconn *conn, const struct config *cfg, char *err, size_t errlen);

#endif
