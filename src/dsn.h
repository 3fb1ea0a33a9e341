/* dsn: a libpq connection string as people may see it. The DSN is parsed by
 * libpq (PQconninfoParse), never searched for substrings, so every form it
 * accepts (keyword=value, URI, quoted values, query parameters) is masked
 * alike. Pure: no I/O. */
#ifndef WALCOUNT_DSN_H
#define WALCOUNT_DSN_H

#include <stdbool.h>
#include <stddef.h>

/* Writes dsn into buf as keyword=value pairs, libpq's parse of it, with
 * password and sslpassword shown as ***. A DSN libpq cannot parse is
 * written as "(unparseable DSN: REASON)", where REASON is libpq's message
 * with every fragment of the DSN cut out, and false is returned. len > 0. */
bool dsn_redact(const char *dsn, char *buf, size_t len);

/* Replaces in msg (a NUL-terminated string of len bytes at most) every
 * occurrence of a password or sslpassword value dsn holds with ***: for
 * libpq messages, which quote option values back. */
void dsn_scrub(const char *dsn, char *msg, size_t len);

#endif
