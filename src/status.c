/* status: `walcount status [--json]` (design.md §7). One query
 * (sql/status.sql) reads the slot, its walsender and decoding statistics,
 * and walcount's own progress and checkpoints. Its row becomes one JSON
 * object, which is at once the --json output and what the thresholds and
 * the table read, so the three cannot disagree. */
#include "status.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "db.h"
#include "lsn.h"
#include "slotwait.h"
#include "sqlfiles.h"

#define ERRLEN 1024
#define LABEL_WIDTH 20

static const char *const STATE_NAMES[] = {"ok", "warning", "critical", "unknown"};

/* The report member saying what a slot still being created waits for;
 * null otherwise. */
#define CREATING "slot_creation_waiting_for"

/* ---- the status row as JSON ---- */

enum col_type { C_STR, C_INT, C_BOOL, C_LSN, C_JSON, C_OBJECT };

/* One member of the report, read from a column of the status row. A
 * C_OBJECT member is made of `fields` and is null when `column` is NULL. */
struct field {
	const char *key, *column;
	enum col_type type;
	const struct field *fields;
};

/* clang-format off */
#define F(key, column, type) {key, column, type, NULL}
#define OBJ(key, column, fields) {key, column, C_OBJECT, fields}
#define END {NULL, NULL, C_STR, NULL}
/* clang-format on */

static const struct field SLOT[] = {
	F("name", "slot_name", C_STR),
	F("plugin", "plugin", C_STR),
	F("active", "active", C_BOOL),
	F("active_pid", "active_pid", C_INT),
	F("restart_lsn", "restart_lsn", C_LSN),
	F("confirmed_flush_lsn", "confirmed_flush_lsn", C_LSN),
	F("wal_status", "wal_status", C_STR),
	F("safe_wal_size", "safe_wal_size", C_INT),
	END,
};
static const struct field CHECKPOINT[] = {F("lsn", "checkpoint_lsn", C_LSN), F("at", "checkpoint_at", C_STR), END};
static const struct field RECONCILE[] = {
	F("at", "reconcile_at", C_STR),
	F("checked", "reconcile_checked", C_INT),
	F("corrected", "reconcile_corrected", C_JSON),
	F("duration_ms", "reconcile_duration_ms", C_INT),
	END,
};
/* total_bytes is everything decoded, so the spilled share can be judged. */
static const struct field SPILL[] = {
	F("txns", "spill_txns", C_INT),
	F("bytes", "spill_bytes", C_INT),
	F("total_bytes", "total_bytes", C_INT),
	END,
};
static const struct field WALSENDER[] = {
	F("state", "walsender_state", C_STR),
	F("write_lag_ms", "write_lag_ms", C_INT),
	F("flush_lag_ms", "flush_lag_ms", C_INT),
	F("replay_lag_ms", "replay_lag_ms", C_INT),
	END,
};
/* A missing slot has no plugin, so "slot" is null exactly when it is missing. */
static const struct field REPORT[] = {
	OBJ("slot", "plugin", SLOT),
	F("retained_wal_bytes", "retained_wal_bytes", C_INT),
	F("applied_lsn", "applied_lsn", C_LSN),
	F("lag_bytes", "lag_bytes", C_INT),
	F("progress_age_ms", "progress_age_ms", C_INT),
	F("inactive_ms", "inactive_ms", C_INT),
	OBJ("last_checkpoint", "checkpoint_lsn", CHECKPOINT),
	OBJ("last_reconcile", "reconcile_at", RECONCILE),
	OBJ("spill", "spill_txns", SPILL),
	OBJ("walsender", "walsender_state", WALSENDER),
	F("owner", "owner", C_STR),
	F("standbys", "standbys", C_JSON),
	F("other_slots", "other_slots", C_JSON),
	END,
};

static json_t *object_from(const PGresult *res, const struct field *fields);

static json_t *parse_int(const char *s)
{
	char *end;

	errno = 0;
	long long v = strtoll(s, &end, 10);
	return errno == 0 && end != s && *end == '\0' ? json_integer(v) : NULL;
}

/* The text of a non-NULL column as JSON; NULL when malformed. LSNs go
 * through lsn.c so every LSN in the report has one spelling. */
static json_t *parse(const char *s, enum col_type type)
{
	char buf[LSN_BUFLEN];
	lsn_t lsn;

	switch (type) {
	case C_INT:
		return parse_int(s);
	case C_BOOL:
		return strcmp(s, "t") == 0 ? json_true() : strcmp(s, "f") == 0 ? json_false() : NULL;
	case C_LSN:
		return lsn_parse(s, &lsn) ? json_string(lsn_format(lsn, buf)) : NULL;
	case C_JSON:
		return json_loads(s, JSON_DECODE_ANY, NULL);
	default:
		return json_string(s);
	}
}

/* A member's value; with res NULL (no row) it is null, which makes the
 * report's skeleton. NULL on a malformed value or a column the SQL lacks. */
static json_t *value(const PGresult *res, const struct field *f)
{
	int col = res != NULL ? PQfnumber(res, f->column) : -1;

	if (res != NULL && col < 0)
		return NULL;
	if (res == NULL || PQgetisnull(res, 0, col))
		return json_null();
	if (f->type == C_OBJECT)
		return object_from(res, f->fields);
	return parse(PQgetvalue(res, 0, col), f->type);
}

static json_t *object_from(const PGresult *res, const struct field *fields)
{
	json_t *obj = json_object();

	for (const struct field *f = fields; obj != NULL && f->key != NULL; f++) {
		/* Takes value()'s reference, and fails on a NULL one. */
		if (json_object_set_new(obj, f->key, value(res, f)) != 0) {
			json_decref(obj);
			obj = NULL;
		}
	}
	return obj;
}

/* ---- humanized values ---- */

typedef char *(*fmt_fn)(int64_t v, char *buf, size_t len);

/* Binary units spelled as PostgreSQL and config sizes spell them, so a
 * "1GB" threshold reads back as "1.0 GB". */
static char *fmt_bytes(int64_t v, char *buf, size_t len)
{
	static const char *const units[] = {"B", "kB", "MB", "GB", "TB"};
	double d = (double) v;
	int u = 0;

	for (; (d >= 1024 || d <= -1024) && u < 4; u++)
		d /= 1024;
	if (u == 0)
		snprintf(buf, len, "%" PRId64 " B", v);
	else
		snprintf(buf, len, "%.1f %s", d, units[u]);
	return buf;
}

static char *fmt_ms(int64_t v, char *buf, size_t len)
{
	if (v < 1000 && v > -1000)
		snprintf(buf, len, "%" PRId64 " ms", v);
	else if (v < 60 * 1000 && v > -60 * 1000)
		snprintf(buf, len, "%.1f s", (double) v / 1000);
	else if (v < 60 * 60 * 1000 && v > -60 * 60 * 1000)
		snprintf(buf, len, "%.1f min", (double) v / (60 * 1000));
	else
		snprintf(buf, len, "%.1f h", (double) v / (60 * 60 * 1000));
	return buf;
}

/* ---- thresholds ---- */

struct verdict {
	enum status_code code; /* the worst so far */
	json_t *reasons;       /* one string per breach */
};

static bool add_reason(struct verdict *v, enum status_code code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static bool add_reason(struct verdict *v, enum status_code code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	json_t *reason = json_vsprintf(fmt, ap);
	va_end(ap);
	if (code > v->code)
		v->code = code;
	return json_array_append_new(v->reasons, reason) == 0;
}

/* Compares an integer member with its thresholds (0 disables one); a null
 * member (not applicable, or unknown) is not judged. Only the worse breach
 * of the two is reported. */
static bool threshold(struct verdict *v, const char *what, const json_t *member, int64_t warning, int64_t critical, fmt_fn fmt)
{
	char a[32], b[32];

	if (!json_is_integer(member))
		return true;
	int64_t x = json_integer_value(member);
	bool crit = critical > 0 && x >= critical;
	if (!crit && !(warning > 0 && x >= warning))
		return true;
	return add_reason(v, crit ? STATUS_CRITICAL : STATUS_WARNING, "%s %s >= %s %s", what, fmt(x, a, sizeof a),
			  crit ? "critical" : "warning", fmt(crit ? critical : warning, b, sizeof b));
}

/* "lost": the server removed WAL the slot needs; "unreserved": it will at
 * the next checkpoint. "extended" still holds everything. */
static bool wal_health(const struct config *cfg, const char *wal_status, struct verdict *v)
{
	if (wal_status != NULL && strcmp(wal_status, "lost") == 0)
		return add_reason(v, STATUS_CRITICAL, "slot %s wal_status lost: its WAL was removed; walcount init rebuilds it",
				  cfg->slot_name);
	if (wal_status != NULL && strcmp(wal_status, "unreserved") == 0)
		return add_reason(v, STATUS_WARNING,
				  "slot %s wal_status unreserved: past max_slot_wal_keep_size, its WAL may be removed",
				  cfg->slot_name);
	return true;
}

/* What is wrong whatever the thresholds: no slot, its WAL removed or about
 * to be, no progress row to measure the lag from. A slot being created has
 * no progress yet: what it waits for is the news. */
static bool slot_health(const struct config *cfg, const json_t *root, struct verdict *v)
{
	const json_t *slot = json_object_get(root, "slot"), *applied = json_object_get(root, "applied_lsn");
	const char *creating = json_string_value(json_object_get(root, CREATING));

	if (json_is_null(slot))
		return add_reason(v, STATUS_CRITICAL, "slot %s does not exist", cfg->slot_name);
	if (creating != NULL)
		return add_reason(v, STATUS_WARNING, "slot %s is being created: waiting for %s", cfg->slot_name, creating);
	return wal_health(cfg, json_string_value(json_object_get(slot, "wal_status")), v) &&
	       (!json_is_null(applied) ||
		add_reason(v, STATUS_CRITICAL, "no walcount.progress row for slot %s: run walcount init", cfg->slot_name));
}

/* One owner per database's counts (slot.c): this configuration's slot is
 * not it, or other wal2json slots are there, pinning WAL or counting twice. */
static bool ownership(const struct config *cfg, const json_t *root, struct verdict *v)
{
	const char *owner = json_string_value(json_object_get(root, "owner"));
	const json_t *other;
	size_t i;
	char b[32];

	if (owner != NULL && strcmp(owner, cfg->slot_name) != 0 &&
	    !add_reason(v, STATUS_WARNING, "the counts are owned by slot %s, not by slot %s of this configuration", owner,
			cfg->slot_name))
		return false;
	json_array_foreach (json_object_get(root, "other_slots"), i, other) {
		const char *name = json_string_value(json_object_get(other, "name"));
		if (!add_reason(v, STATUS_WARNING,
				"slot %s (wal2json, %s, retaining %s) does not own the counts: if it is an old walcount "
				"slot it pins WAL; drop it with SELECT pg_drop_replication_slot('%s')",
				name, json_is_true(json_object_get(other, "active")) ? "active" : "inactive",
				fmt_bytes(json_integer_value(json_object_get(other, "retained_wal_bytes")), b, sizeof b), name))
			return false;
	}
	return true;
}

static bool evaluate(const struct config *cfg, const json_t *root, struct verdict *v)
{
	return ownership(cfg, root, v) && slot_health(cfg, root, v) &&
	       threshold(v, "lag_bytes", json_object_get(root, "lag_bytes"), cfg->status_lag_warning, cfg->status_lag_critical,
			 fmt_bytes) &&
	       threshold(v, "retained_wal_bytes", json_object_get(root, "retained_wal_bytes"), cfg->status_retained_wal_warning,
			 cfg->status_retained_wal_critical, fmt_bytes) &&
	       threshold(v, "inactive", json_object_get(root, "inactive_ms"), cfg->status_inactive_warning_ms,
			 cfg->status_inactive_critical_ms, fmt_ms) &&
	       threshold(v, "progress_age", json_object_get(root, "progress_age_ms"), cfg->status_batch_age_warning_ms,
			 cfg->status_batch_age_critical_ms, fmt_ms);
}

/* ---- the query ---- */

static bool schema_present(PGconn *conn, char *err, size_t errlen)
{
	PGresult *res = db_exec(conn, "checking for the walcount schema", sql_status_schema, err, errlen);
	bool present = res != NULL && PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;

	if (res != NULL && !present)
		snprintf(err, errlen, "walcount state schema missing: run walcount init");
	PQclear(res);
	return present;
}

/* A slot is listed, with no confirmed_flush_lsn, from the start of
 * CREATE_REPLICATION_SLOT until it is consistent: then *creating says what
 * it waits for. */
static bool creation_wait(PGconn *conn, const struct config *cfg, const PGresult *res, char *creating, size_t len, char *err,
			  size_t errlen)
{
	int plugin = PQfnumber(res, "plugin"), confirmed = PQfnumber(res, "confirmed_flush_lsn");

	if (plugin < 0 || confirmed < 0 || PQgetisnull(res, 0, plugin) || !PQgetisnull(res, 0, confirmed))
		return true;
	if (!slotwait_blockers(conn, cfg->slot_name, creating, len, err, errlen))
		return false;
	if (creating[0] == '\0')
		snprintf(creating, len, "the server to reach a consistent point");
	return true;
}

/* The one-row status result, or NULL with err saying why the state is
 * unknown. */
static PGresult *fetch(const struct config *cfg, char *creating, size_t len, char *err, size_t errlen)
{
	const char *params[1] = {cfg->slot_name};
	PGconn *conn = db_connect(cfg, DB_NORMAL, err, errlen);
	PGresult *res = NULL;

	if (conn != NULL && schema_present(conn, err, errlen))
		res = db_exec_params(conn, "status query", sql_status, 1, params, err, errlen);
	if (res != NULL && PQntuples(res) != 1) {
		snprintf(err, errlen, "status query: %d rows, want 1", PQntuples(res));
		PQclear(res);
		res = NULL;
	}
	if (res != NULL && !creation_wait(conn, cfg, res, creating, len, err, errlen)) {
		PQclear(res);
		res = NULL;
	}
	PQfinish(conn);
	return res;
}

/* Sets the CREATING member: what creating names, null when it is "". */
static bool set_creating(json_t *root, const char *creating)
{
	return json_object_set_new(root, CREATING, creating[0] ? json_string(creating) : json_null()) == 0;
}

/* The report with v filled in: the evaluated row, or when there is none the
 * skeleton (every member null) and v unknown with the reason. NULL only when
 * out of memory. */
static json_t *report(const struct config *cfg, struct verdict *v)
{
	char err[ERRLEN], creating[1024] = "";
	PGresult *res = fetch(cfg, creating, sizeof creating, err, sizeof err);
	json_t *root = res != NULL ? object_from(res, REPORT) : NULL;

	if (root != NULL && !set_creating(root, creating)) {
		json_decref(root);
		root = NULL;
	}
	if (res != NULL && root == NULL)
		snprintf(err, sizeof err, "status query: malformed row (or out of memory)");
	PQclear(res);
	bool ok = root != NULL ? evaluate(cfg, root, v)
			       : (root = object_from(NULL, REPORT)) != NULL && set_creating(root, "") &&
					 add_reason(v, STATUS_UNKNOWN, "%s", err);
	if (!ok) {
		json_decref(root);
		return NULL;
	}
	return root;
}

/* ---- output ---- */

enum show { SHOW_TEXT, SHOW_BYTES, SHOW_MS };

static const struct row {
	const char *label, *path; /* path: "member" or "member.member" */
	enum show show;
} ROWS[] = {
	{"plugin", "slot.plugin", SHOW_TEXT},
	{"active", "slot.active", SHOW_TEXT},
	{"active_pid", "slot.active_pid", SHOW_TEXT},
	{"walsender", "walsender.state", SHOW_TEXT},
	{"restart_lsn", "slot.restart_lsn", SHOW_TEXT},
	{"confirmed_flush_lsn", "slot.confirmed_flush_lsn", SHOW_TEXT},
	{"wal_status", "slot.wal_status", SHOW_TEXT},
	{"safe_wal_size", "slot.safe_wal_size", SHOW_BYTES},
	{"retained_wal", "retained_wal_bytes", SHOW_BYTES},
	{"applied_lsn", "applied_lsn", SHOW_TEXT},
	{"lag", "lag_bytes", SHOW_BYTES},
	{"progress_age", "progress_age_ms", SHOW_MS},
	{"inactive", "inactive_ms", SHOW_MS},
	{"spill_txns", "spill.txns", SHOW_TEXT},
	{"spill_bytes", "spill.bytes", SHOW_BYTES},
	{"last_checkpoint", "last_checkpoint.lsn", SHOW_TEXT},
	{"checkpoint_at", "last_checkpoint.at", SHOW_TEXT},
	{"last_reconcile", "last_reconcile.at", SHOW_TEXT},
	{"reconcile_checked", "last_reconcile.checked", SHOW_TEXT},
	{"reconcile_corrected", "last_reconcile.corrected", SHOW_TEXT},
	{"reconcile_duration", "last_reconcile.duration_ms", SHOW_MS},
	{"owner", "owner", SHOW_TEXT},
	{"standbys", "standbys", SHOW_TEXT},
};

static const json_t *lookup(const json_t *root, const char *path)
{
	const char *dot = strchr(path, '.');
	char head[32];

	if (dot == NULL)
		return json_object_get(root, path);
	snprintf(head, sizeof head, "%.*s", (int) (dot - path), path);
	return json_object_get(json_object_get(root, head), dot + 1);
}

/* A member as table text; "-" when null or absent. */
static const char *render(const json_t *v, enum show show, char *buf, size_t len)
{
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_boolean(v))
		return json_is_true(v) ? "yes" : "no";
	if (json_is_integer(v) && show != SHOW_TEXT)
		return (show == SHOW_BYTES ? fmt_bytes : fmt_ms)(json_integer_value(v), buf, len);
	if (json_is_integer(v))
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_object(v) || json_is_array(v)) {
		char *text = json_dumps(v, JSON_COMPACT);
		snprintf(buf, len, "%s", text != NULL ? text : "(out of memory)");
		free(text);
	} else
		return "-";
	return buf;
}

static bool print_table(const struct config *cfg, const json_t *root, const struct verdict *v)
{
	char buf[256];
	size_t i;
	json_t *reason;

	printf("%-*s %s\n", LABEL_WIDTH, "slot", cfg->slot_name);
	/* Without a status row every value would be "-": the reason says it all. */
	for (i = 0; v->code != STATUS_UNKNOWN && i < sizeof ROWS / sizeof ROWS[0]; i++)
		printf("%-*s %s\n", LABEL_WIDTH, ROWS[i].label, render(lookup(root, ROWS[i].path), ROWS[i].show, buf, sizeof buf));
	printf("state: %s\n", STATE_NAMES[v->code]);
	json_array_foreach (v->reasons, i, reason)
		printf("  %s\n", json_string_value(reason));
	return !ferror(stdout);
}

static bool print_json(json_t *root, const struct verdict *v)
{
	return json_object_set_new(root, "state", json_string(STATE_NAMES[v->code])) == 0 &&
	       json_object_set(root, "reasons", v->reasons) == 0 && json_dumpf(root, stdout, JSON_COMPACT) == 0 &&
	       putchar('\n') != EOF;
}

enum status_code status_run(const struct config *cfg, bool json)
{
	struct verdict v = {STATUS_OK, json_array()};
	json_t *root = report(cfg, &v);
	bool ok = root != NULL && (json ? print_json(root, &v) : print_table(cfg, root, &v));

	json_decref(root);
	json_decref(v.reasons);
	if (fflush(stdout) != 0 || !ok) {
		fprintf(stderr, "walcount status: cannot produce the report (out of memory, or stdout not writable)\n");
		return STATUS_UNKNOWN;
	}
	return v.code;
}
