/* db: libpq connections built from the configuration, and the few checked
 * query helpers the other modules share. */
#ifndef WALCOUNT_DB_H
#define WALCOUNT_DB_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "config.h"

enum db_kind { DB_NORMAL, DB_REPLICATION };

/* Opens a connection from cfg->database_dsn (conninfo or URI; PG* variables
 * apply), with the password from cfg->database_password_file when set and
 * replication=database for DB_REPLICATION. Returns the connection, or NULL
 * with a one-line reason in err that never contains a password. The caller
 * PQfinish()es the result. */
PGconn *db_connect(const struct config *cfg, enum db_kind kind, char *err, size_t errlen);

/* As db_connect, but while the server does not answer (or is starting or
 * shutting down) retries up to stream.connect_attempts times in all, with
 * the reconnect backoff, logging each failed attempt; stops early once
 * *stop is set. For start-up: a consumer already running retries for
 * ever. */
PGconn *db_connect_retrying(const struct config *cfg, enum db_kind kind, volatile sig_atomic_t *stop, char *err, size_t errlen);

/* Sleeps ms milliseconds unless *stop is set first. */
void db_backoff_sleep(int64_t ms, volatile sig_atomic_t *stop);

/* The reconnect delay after delay_ms: doubled, at most stream.reconnect_max. */
int64_t db_next_backoff(const struct config *cfg, int64_t delay_ms);

/* Runs sql (no parameters) and returns its result when the status is
 * PGRES_COMMAND_OK or PGRES_TUPLES_OK; otherwise returns NULL and writes
 * "what: server message" into err. The caller PQclear()s the result. */
PGresult *db_exec(PGconn *conn, const char *what, const char *sql, char *err, size_t errlen);

/* As db_exec with text parameters. */
PGresult *db_exec_params(PGconn *conn, const char *what, const char *sql, int nparams, const char *const *params, char *err,
			 size_t errlen);

/* As db_exec_params; code gets the error's SQLSTATE (empty on success or
 * when the server sent none), for a caller that treats some errors apart. */
PGresult *db_exec_params_code(PGconn *conn, const char *what, const char *sql, int nparams, const char *const *params,
			      char code[6], char *err, size_t errlen);
/* db_exec and db_exec_params for statements whose result is not needed:
 * true when they succeeded, else false with err set. */
bool db_command(PGconn *conn, const char *what, const char *sql, char *err, size_t errlen);
bool db_command_params(PGconn *conn, const char *what, const char *sql, int nparams, const char *const *params, char *err,
		       size_t errlen);

/* As db_exec_params without waiting: the result is read by db_collect.
 * Returns false with err set when the statement could not be sent. */
bool db_send_params(PGconn *conn, const char *what, const char *sql, int nparams, const char *const *params, char *err,
		    size_t errlen);

/* Prepares sql as statement `name` on conn, unless the session holds one
 * of that name already (a connection set up again after a stream
 * reconnect). types[i] != 0 fixes parameter i's type. True when the
 * statement is there, else false with err set. */
bool db_prepare(PGconn *conn, const char *what, const char *name, const char *sql, int nparams, const Oid *types, char *err,
		size_t errlen);

/* As db_send_params for the prepared statement `name`, with per parameter
 * its length and format (1: binary) as PQsendQueryPrepared takes them. */
bool db_send_prepared(PGconn *conn, const char *what, const char *name, int nparams, const char *const *params,
		      const int *lengths, const int *formats, char *err, size_t errlen);

enum db_async { DB_BUSY, DB_DONE, DB_FAILED };

/* The outcome of what was sent on conn: DB_BUSY while the server is still
 * working (only when !wait), DB_DONE once every result is in and all of
 * them succeeded, DB_FAILED with "what: first error" in err otherwise.
 * With DB_DONE and last != NULL, *last is the last result (the caller
 * PQclear()s it). */
enum db_async db_collect(PGconn *conn, const char *what, bool wait, PGresult **last, char *err, size_t errlen);

/* Asks the server to cancel the statement running on conn; false, with
 * "cancelling WHAT: reason" logged, when the request could not be sent
 * (the statement then runs to its end). */
bool db_cancel(PGconn *conn, const char *what);

/* The first line of the connection's current error, for one-line messages. */
const char *db_error_line(const PGconn *conn, char *buf, size_t len);

#endif
