/* identity: which server walcount streams from and writes to. The system
 * identifier and timeline from IDENTIFY_SYSTEM, checked against the server
 * the progress row was written on and the one this process streamed from
 * before a reconnect: a promoted standby whose history contains the
 * position continues (or is rebuilt exactly), a diverged server or another
 * cluster is refused before anything is written. */
#ifndef WALCOUNT_IDENTITY_H
#define WALCOUNT_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "config.h"
#include "lsn.h"

struct server_id {
	char system_id[24]; /* decimal; "" when unknown */
	uint32_t timeline;
	lsn_t lsn; /* a server: its WAL flush end; what was streamed
			      * from: the applied position there */
};

enum identity_verdict {
	IDENTITY_OK,
	IDENTITY_RETRY,   /* could not tell (an error, or the two connections
			   * reached different servers): err says why */
	IDENTITY_REFUSED, /* a server walcount must not continue on: err is
			   * the one line to print */
};

/* IDENTIFY_SYSTEM on repl (a replication connection). */
bool identity_read(PGconn *repl, struct server_id *out, char *err, size_t errlen);

/* Checks server (identity_read of repl) before slot and progress are
 * touched: conn (a normal connection) must reach the same server; the
 * progress row of slot on it must have been written on this system, on
 * this timeline or an ancestor whose end is at or after its position, and
 * not be past the server's WAL end; and seen (what this process streamed
 * from before; NULL or an empty system_id: nothing) must be this system,
 * on this timeline or an ancestor of it. Logs a promotion. */
enum identity_verdict identity_check(PGconn *conn, PGconn *repl, const char *slot, const struct server_id *server,
				     const struct server_id *seen, char *err, size_t errlen);

/* identity_check at start-up, without a seen server, on a replication
 * connection of its own. False with err set when refused or on an error. */
bool identity_check_start(PGconn *conn, const struct config *cfg, char *err, size_t errlen);

#endif
