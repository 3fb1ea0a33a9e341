#include "session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "xalloc.h"

/* README "Session settings" says why each one. All are user-settable, so a
 * role without superuser may send them; all exist since PostgreSQL 14.
 * TimeZone is GMT, not UTC: the same offset, but PostgreSQL knows GMT
 * without a time zone database, which a bare server install may lack. */
static const char SETTINGS[] = "-c statement_timeout=0 -c lock_timeout=0 -c idle_in_transaction_session_timeout=0 "
			       "-c idle_session_timeout=0 -c default_transaction_isolation=read\\ committed "
			       "-c default_transaction_read_only=off -c synchronous_commit=on -c search_path=public "
			       "-c DateStyle=ISO -c IntervalStyle=postgres -c TimeZone=GMT";

/* The DSN's options, parsed as libpq does (conninfo or URI); NULL when it
 * has none or does not parse (the connection then reports why). */
static char *dsn_options(const char *dsn)
{
	PQconninfoOption *opts = PQconninfoParse(dsn, NULL);
	char *found = NULL;

	for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++)
		if (strcmp(o->keyword, "options") == 0 && o->val != NULL && o->val[0] != '\0')
			found = xstrdup(o->val);
	PQconninfoFree(opts);
	return found;
}

char *session_options(const char *dsn)
{
	char *own = dsn_options(dsn);
	const char *user = own != NULL ? own : getenv("PGOPTIONS");
	size_t len = (user != NULL ? strlen(user) + 1 : 0) + sizeof SETTINGS;
	char *all = xmalloc(len);

	snprintf(all, len, "%s%s%s", user != NULL ? user : "", user != NULL ? " " : "", SETTINGS);
	free(own);
	return all;
}
