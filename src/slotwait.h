/* slotwait: CREATE_REPLICATION_SLOT waits for every transaction that holds
 * an xid, prepared ones included, before its slot is consistent. This runs
 * it without blocking, says what it waits for, and lets a signal stop it. */
#ifndef WALCOUNT_SLOTWAIT_H
#define WALCOUNT_SLOTWAIT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

/* What the creation of slot waits for, as "prepared transaction gid=...
 * xid=... (age ...) and N more transactions", on conn (a normal
 * connection). Writes "" when slot is not being created (missing, or
 * consistent already). False with err set when the query failed. */
bool slotwait_blockers(PGconn *conn, const char *slot, char *buf, size_t len, char *err, size_t errlen);

/* Runs sql (CREATE_REPLICATION_SLOT) on repl and returns its result; while
 * it waits, logs what holds it up on conn, first after first_report_ms
 * (slot.create_report_after: a slot on a quiet server is consistent within
 * milliseconds, one still waiting then is held up), then every minute. Once *stop is set the creation is cancelled (the server
 * drops the half-made slot). NULL with a one-line err on failure or stop;
 * the caller PQclear()s the result. */
PGresult *slotwait_create(PGconn *conn, PGconn *repl, const char *slot, const char *sql, int64_t first_report_ms,
			  volatile sig_atomic_t *stop, char *err, size_t errlen);

#endif
