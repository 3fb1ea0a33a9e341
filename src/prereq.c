#include "prereq.h"

#include <stdio.h>
#include <string.h>

#include "db.h"
#include "sqlfiles.h"

/* True when output_plugin_libraries, a comma-separated list as the server
 * shows it, names wal2json. */
static bool plugin_listed(const char *libraries)
{
	const char *p = libraries;

	while (*p) {
		p += strspn(p, " \t,\"");
		size_t n = strcspn(p, " \t,\"");
		if (n == strlen("wal2json") && strncmp(p, "wal2json", n) == 0)
			return true;
		p += n;
	}
	return false;
}

static bool check_wal_level(PGconn *conn, char *err, size_t errlen)
{
	PGresult *res = db_exec(conn, "reading wal_level", "SELECT current_setting('wal_level')", err, errlen);

	if (res == NULL)
		return false;
	bool ok = strcmp(PQgetvalue(res, 0, 0), "logical") == 0;
	if (!ok)
		snprintf(
			err, errlen,
			"wal_level is '%s' but walcount needs 'logical'; fix: ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL",
			PQgetvalue(res, 0, 0));
	PQclear(res);
	return ok;
}

/* Servers before 15.19 have no output_plugin_libraries and load any plugin:
 * no row means no restriction (design.md §10). */
static bool check_plugin_allowed(PGconn *conn, char *err, size_t errlen)
{
	PGresult *res = db_exec(conn, "reading output_plugin_libraries",
				"SELECT setting FROM pg_settings WHERE name = 'output_plugin_libraries'", err, errlen);

	if (res == NULL)
		return false;
	bool ok = PQntuples(res) == 0 || plugin_listed(PQgetvalue(res, 0, 0));
	if (!ok)
		snprintf(
			err, errlen,
			"output_plugin_libraries = '%s' does not allow wal2json; fix: ALTER SYSTEM SET output_plugin_libraries = '%s%swal2json'; then restart PostgreSQL",
			PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 0), *PQgetvalue(res, 0, 0) ? ", " : "");
	PQclear(res);
	return ok;
}

static bool check_replication_role(PGconn *conn, char *err, size_t errlen)
{
	PGresult *res = db_exec(conn, "reading role attributes", sql_role_attributes, err, errlen);

	if (res == NULL)
		return false;
	bool ok = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	if (!ok)
		snprintf(err, errlen, "role %s lacks the REPLICATION attribute; fix: ALTER ROLE %s REPLICATION;",
			 PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 1));
	PQclear(res);
	return ok;
}

static bool check_replica_identity(PGconn *conn, char *err, size_t errlen)
{
	PGresult *res = db_exec(conn, "reading replica identities", sql_replica_identity, err, errlen);

	if (res == NULL)
		return false;
	bool ok = true;
	for (int i = 0; ok && i < PQntuples(res); i++) {
		const char *table = PQgetvalue(res, i, 0);
		if (strcmp(PQgetvalue(res, i, 1), "t") != 0) {
			snprintf(err, errlen, "source table public.%s does not exist", table);
			ok = false;
		} else if (strcmp(PQgetvalue(res, i, 3), "t") != 0) {
			snprintf(
				err, errlen,
				"replica identity of public.%s does not carry is_current and is_delete, so old row images cannot be counted; fix: ALTER TABLE public.%s REPLICA IDENTITY FULL;",
				table, table);
			ok = false;
		}
	}
	PQclear(res);
	return ok;
}

/* The grants of sql/roles.sql: a role that lacks one would fail later, in
 * the middle of a batch or a sweep. */
static bool check_privileges(PGconn *conn, char *err, size_t errlen)
{
	PGresult *res = db_exec(conn, "reading privileges", sql_privileges, err, errlen);

	if (res == NULL)
		return false;
	bool ok = PQntuples(res) == 0;
	if (!ok) {
		const char *col = PQgetvalue(res, 0, 1);
		snprintf(err, errlen,
			 "role %s lacks %s%s%s%s on %s; fix: run sql/roles.sql as a superuser, or GRANT %s%s%s%s ON %s TO %s;",
			 PQuser(conn), PQgetvalue(res, 0, 2), *col ? " (" : "", col, *col ? ")" : "", PQgetvalue(res, 0, 0),
			 PQgetvalue(res, 0, 2), *col ? " (" : "", col, *col ? ")" : "", PQgetvalue(res, 0, 0), PQuser(conn));
	}
	PQclear(res);
	return ok;
}

bool prereq_check(PGconn *conn, char *err, size_t errlen)
{
	return check_wal_level(conn, err, errlen) && check_plugin_allowed(conn, err, errlen) &&
	       check_replication_role(conn, err, errlen) && check_replica_identity(conn, err, errlen) &&
	       check_privileges(conn, err, errlen);
}
