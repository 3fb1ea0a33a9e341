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

/* The start-up lock: slot creation, initial load, rebuild, ownership moves
 * and drop are serialized across processes by a session-level advisory
 * lock on the database (advisory locks are per database), held from the
 * decision to create until the stream has started. Waits for another
 * holder (logging who it is, once) until it is free or *stop is set;
 * false with err set then or on a query error. PQfinish releases it too. */
bool slot_lock(PGconn *conn, volatile sig_atomic_t *stop, char *err, size_t errlen);
void slot_unlock(PGconn *conn);

enum slot_outcome {
	SLOT_OK,      /* ready to stream from walcount.progress */
	SLOT_RETRY,   /* a query failed: try again later */
	SLOT_REFUSED, /* retrying cannot help (ownership, plugin, database) */
	SLOT_HELD,    /* another process streams from it: stand by */
};

struct slot_opts {
	bool takeover;       /* end the process holding the slot */
	bool take_ownership; /* move the counts from the owning slot to this one */
};

/* Makes the slot cfg->slot_name ready to stream from walcount.progress, on
 * conn (a normal connection to the slot's database, holding slot_lock):
 *  - the counts are owned by another slot: SLOT_REFUSED naming it, unless
 *    take_ownership drops that slot and its state and recounts for this
 *    one; nobody owns them: this slot claims them;
 *  - missing: creates it with an exported snapshot and runs the exact
 *    initial load in that snapshot (design.md §6);
 *  - held by another process: SLOT_HELD with err and *holder naming the
 *    holder's PID, or with
 *    takeover terminates the holder and waits for the slot;
 *  - another plugin or database: SLOT_REFUSED;
 *  - no progress row, wal_status lost, or confirmed_flush_lsn ahead of the
 *    stored progress (advanced or replaced by someone else): logs why, drops
 *    it and rebuilds it exactly as if missing.
 * A temporary slot (slot.temporary) is left to stream.c. Creating a slot
 * waits for the transactions that hold an xid (slotwait.h), and stops once
 * *stop is set. err gets a one-line reason for every outcome but SLOT_OK. */
enum slot_outcome slot_ensure(PGconn *conn, const struct config *cfg, const struct slot_opts *o, volatile sig_atomic_t *stop,
			      int *holder, char *err, size_t errlen);

/* Why the slot, now streaming on this process's replication connection,
 * cannot continue from walcount.progress: writes the reason into why and
 * returns true (the next slot_ensure rebuilds it). False when it can, or
 * on a query error (err set, *failed). */
bool slot_moved_by_others(PGconn *conn, const char *slot, char *why, size_t len, bool *failed, char *err, size_t errlen);

/* Drops the slot and walcount's state (its progress and checkpoint rows and
 * its ownership; the schema too when no other slot's rows remain). Refuses,
 * atomically, while a consumer holds the slot, one is starting (holds the
 * start-up lock) or stands by for it. Returns false with err set on
 * failure. */
bool slot_drop(PGconn *conn, const struct config *cfg, char *err, size_t errlen);

#endif
