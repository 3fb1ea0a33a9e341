#include "identity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "sqlfiles.h"

/* What a normal connection reports (sql/identity.sql). */
struct view {
	struct server_id own; /* its server; lsn: pg_current_wal_lsn() */
	bool has_row;         /* the slot has a progress row */
	struct server_id row; /* where that row was written; lsn: its position */
};

/* A name for the server in messages: host:port of the connection. */
static const char *server_name(PGconn *repl, char *buf, size_t len)
{
	snprintf(buf, len, "%s:%s", PQhost(repl), PQport(repl));
	return buf;
}

static bool parse_timeline(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	*out = (uint32_t) v;
	return *s != '\0' && *end == '\0' && v > 0 && v <= UINT32_MAX;
}

bool identity_read(PGconn *repl, struct server_id *out, char *err, size_t errlen)
{
	PGresult *res = db_exec(repl, "identifying the server", "IDENTIFY_SYSTEM", err, errlen);
	bool ok = res != NULL && PQntuples(res) == 1 && PQnfields(res) >= 3;

	memset(out, 0, sizeof *out);
	if (ok) {
		snprintf(out->system_id, sizeof out->system_id, "%s", PQgetvalue(res, 0, 0));
		ok = parse_timeline(PQgetvalue(res, 0, 1), &out->timeline) && lsn_parse(PQgetvalue(res, 0, 2), &out->lsn);
	}
	if (res != NULL && !ok)
		snprintf(err, errlen, "identifying the server: unexpected IDENTIFY_SYSTEM reply");
	PQclear(res);
	return ok;
}

static bool read_view(PGconn *conn, const char *slot, struct view *v, char *err, size_t errlen)
{
	const char *params[1] = {slot};
	PGresult *res = db_exec_params(conn, "reading the server identity", sql_identity, 1, params, err, errlen);
	bool ok = res != NULL && PQntuples(res) == 1;

	memset(v, 0, sizeof *v);
	if (ok) {
		snprintf(v->own.system_id, sizeof v->own.system_id, "%s", PQgetvalue(res, 0, 0));
		ok = parse_timeline(PQgetvalue(res, 0, 1), &v->own.timeline) && lsn_parse(PQgetvalue(res, 0, 2), &v->own.lsn);
		v->has_row = !PQgetisnull(res, 0, 3);
		if (ok && v->has_row)
			ok = lsn_parse(PQgetvalue(res, 0, 3), &v->row.lsn);
		/* A row an older walcount wrote has no identity: nothing to compare. */
		if (ok && v->has_row && !PQgetisnull(res, 0, 4)) {
			snprintf(v->row.system_id, sizeof v->row.system_id, "%s", PQgetvalue(res, 0, 4));
			ok = parse_timeline(PQgetvalue(res, 0, 5), &v->row.timeline);
		}
	}
	if (res != NULL && !ok)
		snprintf(err, errlen, "reading the server identity: unexpected reply");
	PQclear(res);
	return ok;
}

/* Where the history of the server's timeline leaves timeline tli
 * (TIMELINE_HISTORY): *found is false when tli is not one of its
 * ancestors. */
static bool switch_point(PGconn *repl, uint32_t server_tli, uint32_t tli, bool *found, lsn_t *at, char *err, size_t errlen)
{
	char sql[48];

	snprintf(sql, sizeof sql, "TIMELINE_HISTORY %u", server_tli);
	PGresult *res = db_exec(repl, "reading the timeline history", sql, err, errlen);
	*found = false;
	if (res == NULL)
		return false;
	const char *text = PQntuples(res) == 1 && PQnfields(res) == 2 ? PQgetvalue(res, 0, 1) : "";
	for (const char *line = text; *line != '\0' && !*found; line += strcspn(line, "\n"), line += *line == '\n') {
		unsigned t, hi, lo;
		if (sscanf(line, "%u %X/%X", &t, &hi, &lo) == 3 && t == tli) {
			*found = true;
			*at = (lsn_t) hi << 32 | lo;
		}
	}
	PQclear(res);
	return true;
}

/* Whether the server's history contains position pos of timeline tli (an
 * older timeline than the server's): the history leaves tli at or after
 * pos. *at: where it leaves it (LSN_INVALID: tli is not an ancestor). */
static enum identity_verdict ancestor(PGconn *repl, const struct server_id *server, uint32_t tli, lsn_t pos, lsn_t *at, char *err,
				      size_t errlen)
{
	bool found;

	*at = LSN_INVALID;
	if (!switch_point(repl, server->timeline, tli, &found, at, err, errlen))
		return IDENTITY_RETRY;
	return found && pos <= *at ? IDENTITY_OK : IDENTITY_REFUSED;
}

/* The server this process streamed from before: the same system, on the
 * same timeline or one promoted from it. What it applied after the
 * promotion point was never replicated here and is lost with the old
 * primary; the server's own progress row is what continues. */
static enum identity_verdict check_seen(PGconn *repl, const char *name, const struct server_id *server,
					const struct server_id *seen, char *err, size_t errlen)
{
	char a[LSN_BUFLEN], b[LSN_BUFLEN];
	lsn_t at;

	if (strcmp(seen->system_id, server->system_id) != 0) {
		snprintf(err, errlen,
			 "refusing %s: it is system %s, not system %s that this process streamed from (the DSN "
			 "now reaches another cluster); nothing written",
			 name, server->system_id, seen->system_id);
		return IDENTITY_REFUSED;
	}
	if (server->timeline == seen->timeline)
		return IDENTITY_OK;
	if (server->timeline < seen->timeline) {
		snprintf(err, errlen,
			 "refusing %s: it is on timeline %u, older than timeline %u that this process streamed "
			 "from (a former primary that diverged?); nothing written; fence it, or put the current primary "
			 "first in database.dsn",
			 name, server->timeline, seen->timeline);
		return IDENTITY_REFUSED;
	}
	enum identity_verdict v = ancestor(repl, server, seen->timeline, LSN_INVALID, &at, err, errlen);
	if (v == IDENTITY_REFUSED)
		snprintf(err, errlen,
			 "refusing %s: its timeline %u does not descend from timeline %u that this process "
			 "streamed from (diverged); nothing written",
			 name, server->timeline, seen->timeline);
	else if (v == IDENTITY_OK && seen->lsn > at)
		log_event(LOG_WARN, "failover", at, 0,
			  "failover: %s was promoted (timeline %u from timeline %u at %s); what this process applied after "
			  "that point, through %s, never reached it and is lost with the old primary; continuing from its "
			  "own progress",
			  name, server->timeline, seen->timeline, lsn_format(at, a), lsn_format(seen->lsn, b));
	else if (v == IDENTITY_OK)
		log_event(LOG_INFO, "failover", at, 0,
			  "failover: %s was promoted (timeline %u from timeline %u at %s); continuing from its own progress",
			  name, server->timeline, seen->timeline, lsn_format(at, a));
	return v;
}

/* The progress row: written on this system, on this timeline or an
 * ancestor the server's history contains its position on, and never past
 * the server's WAL end. */
static enum identity_verdict check_row(PGconn *repl, const char *name, const char *slot, const struct view *v,
				       const struct server_id *server, char *err, size_t errlen)
{
	char a[LSN_BUFLEN], b[LSN_BUFLEN];
	const struct server_id *row = &v->row;
	lsn_t at;

	if (row->system_id[0] != '\0' && strcmp(row->system_id, server->system_id) != 0) {
		snprintf(err, errlen,
			 "refusing %s: walcount.progress of slot %s was written on system %s, this is system %s "
			 "(a copy of the database?); nothing written; to count this server from scratch run walcount drop "
			 "--yes, then start walcount again",
			 name, slot, row->system_id, server->system_id);
		return IDENTITY_REFUSED;
	}
	if (row->system_id[0] != '\0' && row->timeline > server->timeline) {
		snprintf(err, errlen,
			 "refusing %s: walcount.progress of slot %s was written on timeline %u, this server is "
			 "on older timeline %u (diverged); nothing written",
			 name, slot, row->timeline, server->timeline);
		return IDENTITY_REFUSED;
	}
	if (row->system_id[0] != '\0' && row->timeline < server->timeline) {
		enum identity_verdict r = ancestor(repl, server, row->timeline, row->lsn, &at, err, errlen);
		if (r == IDENTITY_REFUSED)
			snprintf(err, errlen,
				 "refusing %s: walcount.progress of slot %s is at %s on timeline %u, which the "
				 "history of this server's timeline %u %s (diverged); nothing written",
				 name, slot, lsn_format(row->lsn, a), row->timeline, server->timeline,
				 at == LSN_INVALID ? "does not contain" : "leaves before that point");
		if (r != IDENTITY_OK)
			return r;
	}
	if (row->lsn > v->own.lsn) {
		snprintf(err, errlen,
			 "refusing %s: walcount.progress of slot %s is at %s, past this server's WAL end %s "
			 "(written by a walcount without this check after a failover?); nothing written; to recount "
			 "exactly run walcount drop --yes, then start walcount again",
			 name, slot, lsn_format(row->lsn, a), lsn_format(v->own.lsn, b));
		return IDENTITY_REFUSED;
	}
	return IDENTITY_OK;
}

enum identity_verdict identity_check(PGconn *conn, PGconn *repl, const char *slot, const struct server_id *server,
				     const struct server_id *seen, char *err, size_t errlen)
{
	char name[300];
	struct view v;

	server_name(repl, name, sizeof name);
	if (!read_view(conn, slot, &v, err, errlen))
		return IDENTITY_RETRY;
	if (strcmp(v.own.system_id, server->system_id) != 0 || v.own.timeline != server->timeline) {
		snprintf(err, errlen,
			 "the apply connection reached system %s timeline %u, the replication connection %s "
			 "system %s timeline %u: not the same server (a failover under way?)",
			 v.own.system_id, v.own.timeline, name, server->system_id, server->timeline);
		return IDENTITY_RETRY;
	}
	enum identity_verdict r = IDENTITY_OK;
	if (seen != NULL && seen->system_id[0] != '\0')
		r = check_seen(repl, name, server, seen, err, errlen);
	if (r == IDENTITY_OK && v.has_row)
		r = check_row(repl, name, slot, &v, server, err, errlen);
	return r;
}

bool identity_check_start(PGconn *conn, const struct config *cfg, char *err, size_t errlen)
{
	struct server_id server;
	PGconn *repl = db_connect(cfg, DB_REPLICATION, err, errlen);
	bool ok = repl != NULL && identity_read(repl, &server, err, errlen) &&
		  identity_check(conn, repl, cfg->slot_name, &server, NULL, err, errlen) == IDENTITY_OK;

	PQfinish(repl);
	return ok;
}
