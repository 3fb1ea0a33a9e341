/* session: the server settings walcount relies on, sent with every
 * connection it opens, normal and replication, so that no setting on the
 * database or role (ALTER DATABASE/ROLE ... SET) can change them. */
#ifndef WALCOUNT_SESSION_H
#define WALCOUNT_SESSION_H

/* The libpq "options" value for a connection to dsn: the DSN's own options
 * (or PGOPTIONS when it has none, as libpq would use) followed by walcount's
 * -c settings, which thus win over both. A malloc'd string the caller
 * frees. */
char *session_options(const char *dsn);

#endif
