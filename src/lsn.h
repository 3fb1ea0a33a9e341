/* LSN parsing and formatting in PostgreSQL's "X/X" notation. */
#ifndef WALCOUNT_LSN_H
#define WALCOUNT_LSN_H

#include <stdbool.h>
#include <stdint.h>

typedef uint64_t lsn_t;

#define LSN_INVALID ((lsn_t) 0)
/* "FFFFFFFF/FFFFFFFF" plus NUL. */
#define LSN_BUFLEN 18

/* Parses "16/B374D848" into *out. Returns false (and leaves *out alone) on
 * anything else, including trailing garbage. */
bool lsn_parse(const char *s, lsn_t *out);

/* Writes the "X/X" form of lsn into buf and returns buf. Cannot fail. */
char *lsn_format(lsn_t lsn, char buf[LSN_BUFLEN]);

#endif
