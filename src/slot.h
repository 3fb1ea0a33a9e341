/* slot: the walcount state schema and the replication slot: inspect, create
 * when missing, refuse when unusable. */
#ifndef WALCOUNT_SLOT_H
#define WALCOUNT_SLOT_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "config.h"

/* Creates the walcount schema and its tables when missing (idempotent). */
bool slot_state_schema(PGconn *conn, char *err, size_t errlen);

/* Makes sure a usable persistent slot named cfg->slot_name exists in conn's
 * database: creates it with wal2json when missing and records its consistent
 * point as the progress; refuses a slot of another plugin or database, or
 * one held by another process. Sets *created. A temporary slot
 * (slot.temporary) is not touched here: stream.c creates it per connection.
 * Returns false with err set on any failure. */
bool slot_ensure(PGconn *conn, const struct config *cfg, bool *created, char *err, size_t errlen);

#endif
