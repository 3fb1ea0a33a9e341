/* prereq: read-only checks that the server and the source tables can feed
 * walcount. Nothing is written, so a failed check leaves no trace. */
#ifndef WALCOUNT_PREREQ_H
#define WALCOUNT_PREREQ_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

/* Checks wal_level, output_plugin_libraries, the role's REPLICATION
 * attribute, each source table's replica identity and the role's grants. Returns true when all
 * pass; otherwise false with one line in err that says what is wrong and the
 * statement that fixes it. */
bool prereq_check(PGconn *conn, char *err, size_t errlen);

#endif
