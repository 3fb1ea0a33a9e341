/* log_tests: log.format json, each line one JSON object with the slot and,
 * where it has them, the event, LSN and xid an operator filters on. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "badinput.h"

/* Events the run below must log, each with an LSN when lsn is set. */
static const struct {
	const char *event;
	bool lsn, xid;
} WANT[] = {
	{"slot_created", true, false},   {"initial_load", true, false},  {"connected", false, false},
	{"stream_started", true, false}, {"change_skipped", true, true}, {"stopped", true, false},
};

/* Checks one line: an object with ts, level, msg and the slot; counts it in
 * seen (by WANT's index) when it is one of WANT's events with its fields. */
static bool check_line(struct ctx *t, const char *line, size_t len, int *seen)
{
	json_error_t e;
	json_t *o = json_loadb(line, len, 0, &e);
	bool ok = o != NULL && json_is_object(o) && json_is_string(json_object_get(o, "ts")) &&
		  json_is_string(json_object_get(o, "level")) && json_is_string(json_object_get(o, "msg")) &&
		  json_is_string(json_object_get(o, "slot")) && strcmp(json_string_value(json_object_get(o, "slot")), t->db) == 0;
	const char *event = ok ? json_string_value(json_object_get(o, "event")) : NULL;

	for (size_t i = 0; event && i < sizeof WANT / sizeof WANT[0]; i++)
		if (strcmp(event, WANT[i].event) == 0 && (!WANT[i].lsn || json_is_string(json_object_get(o, "lsn"))) &&
		    (!WANT[i].xid || json_integer_value(json_object_get(o, "xid")) > 0))
			seen[i]++;
	json_decref(o);
	return ok || fail(t, "log line is not one JSON object with ts, level, msg and slot %s: %.*s", t->db, (int) len, line);
}

/* A run that creates its slot, streams, skips one change (a NULL
 * is_delete) and stops: every line parses, names the slot, and the
 * events above appear with their LSN (and the skip with its xid). */
bool test_json_log(struct ctx *t)
{
	char err[IT_ERRLEN];
	int seen[sizeof WANT / sizeof WANT[0]] = {0};
	size_t len, lines = 0;

	if (!configure(t, &(struct wc_opts){.log_format = "json"}) ||
	    !bi_sql(t, "ALTER TABLE reposts ALTER COLUMN is_delete DROP NOT NULL") || !start_streaming(t) ||
	    !run_changes(t, 300, false) ||
	    !bi_sql(t, "INSERT INTO reposts (user_id, repost_item_id, repost_type, is_current, is_delete, txhash) "
		       "VALUES (4601, 4601, 'track', true, NULL, 'null')") ||
	    !run_changes(t, 300, false) || !caught_up(t, CAUGHT_UP_TIMEOUT) || !stop_clean(t))
		return false;
	char *text = it_read_file(t->wc.log, &len, err, sizeof err);
	if (text == NULL)
		return fail_err(t, "reading the log", err);
	bool ok = true;
	for (char *p = text; ok && *p; lines++) {
		size_t n = strcspn(p, "\n");
		/* The harness marks each run in the log. */
		if (strncmp(p, "--- it:", 7) != 0)
			ok = check_line(t, p, n, seen);
		p += n + (p[n] == '\n');
	}
	free(text);
	for (size_t i = 0; ok && i < sizeof WANT / sizeof WANT[0]; i++)
		if (seen[i] == 0)
			ok = fail(t, "no \"%s\" line with its %s", WANT[i].event, WANT[i].xid ? "lsn and xid" : "fields");
	if (ok && !drift_zero(t))
		return false;
	if (ok)
		snprintf(t->details, sizeof t->details,
			 "%zu lines, each one JSON object naming slot %s; slot_created, initial_load, stream_started, "
			 "change_skipped (with xid) and stopped carry their lsn",
			 lines, t->db);
	return ok;
}
