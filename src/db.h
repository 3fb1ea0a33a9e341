/* db: libpq connections built from the configuration, and the few checked
 * query helpers the other modules share. */
#ifndef WALCOUNT_DB_H
#define WALCOUNT_DB_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "config.h"

enum db_kind { DB_NORMAL, DB_REPLICATION };

/* Opens a connection from cfg->database_dsn (conninfo or URI; PG* variables
 * apply), with the password from cfg->database_password_file when set and
 * replication=database for DB_REPLICATION. Returns the connection, or NULL
 * with a one-line reason in err that never contains a password. The caller
 * PQfinish()es the result. */
PGconn *db_connect(const struct config *cfg, enum db_kind kind, char *err, size_t errlen);

/* Writes cfg's DSN with any password removed into buf (for logs). */
void db_redacted_dsn(const char *dsn, char *buf, size_t len);

/* Runs sql (no parameters) and returns its result when the status is
 * PGRES_COMMAND_OK or PGRES_TUPLES_OK; otherwise returns NULL and writes
 * "what: server message" into err. The caller PQclear()s the result. */
PGresult *db_exec(PGconn *conn, const char *what, const char *sql, char *err, size_t errlen);

/* As db_exec with text parameters. */
PGresult *db_exec_params(PGconn *conn, const char *what, const char *sql, int nparams,
			 const char *const *params, char *err, size_t errlen);

/* The first line of the connection's current error, for one-line messages. */
const char *db_error_line(const PGconn *conn, char *buf, size_t len);

#endif
