/* `walcount status` end to end (design.md §7): ok while streaming and caught
 * up, a breached threshold and its exit code, an inactive slot, a missing
 * slot and schema, the table, an unreachable server, and a password that
 * must never be printed. Thresholds are forced through WALCOUNT_*
 * variables, set by env(1) since it_spawn clears the caller's. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "harness.h"
#include "workload.h"

#include "cases.h"

#define ENV_BIN "/usr/bin/env"
#define MAX_ENV 3
#define RUN_TIMEOUT 30
/* Caught up, the only WAL after the applied LSN is what the server writes by
 * itself (autovacuum, checkpoints): far below one 16 MB segment. */
#define SMALL_LAG (16L * 1024 * 1024)
#define SECRET "secret123"

/* One run of `walcount status`: WALCOUNT_* settings, and what came out. */
struct run {
	const char *name; /* names the output files IT_TMP/status-NAME.{out,err} */
	const char *env[MAX_ENV + 1];
	bool json;
	int code; /* exit code */
	char *out, *err;
	json_t *report; /* with json: stdout parsed */
};

/* env NAME=VALUE... walcount status [--json] --config PATH */
static void build_argv(const struct ctx *t, const struct run *r, const char *argv[])
{
	int n = 0;

	argv[n++] = ENV_BIN;
	for (int i = 0; r->env[i] != NULL; i++)
		argv[n++] = r->env[i];
	argv[n++] = IT.bin;
	argv[n++] = "status";
	if (r->json)
		argv[n++] = "--json";
	argv[n++] = "--config";
	argv[n++] = t->wc.config;
	argv[n] = NULL;
}

static pid_t spawn(struct ctx *t, const struct run *r, const char *outp, const char *errp)
{
	const char *argv[MAX_ENV + 8];
	char err[IT_ERRLEN];
	int ofd = open(outp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int efd = open(errp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	pid_t pid = -1;

	build_argv(t, r, argv);
	if (ofd < 0 || efd < 0)
		snprintf(err, sizeof err, "output files in %.200s: %s", IT.tmp, strerror(errno));
	else
		pid = it_spawn(argv, ofd, efd, err, sizeof err);
	if (ofd >= 0)
		close(ofd);
	if (efd >= 0)
		close(efd);
	if (pid < 0)
		fail(t, "status %s: cannot start walcount: %s", r->name, err);
	return pid;
}

/* Runs it to its exit; fills code, out and err. */
static bool run_status(struct ctx *t, struct run *r)
{
	char outp[PATH_MAX], errp[PATH_MAX], err[IT_ERRLEN], st[32];
	int status;

	snprintf(outp, sizeof outp, "%s/status-%s.out", IT.tmp, r->name);
	snprintf(errp, sizeof errp, "%s/status-%s.err", IT.tmp, r->name);
	pid_t pid = spawn(t, r, outp, errp);
	if (pid < 0)
		return false;
	if (!it_reap(pid, RUN_TIMEOUT, &status, NULL)) {
		kill(pid, SIGKILL);
		it_reap(pid, 10, &status, NULL);
		return fail(t, "status %s: still running after %d s", r->name, RUN_TIMEOUT);
	}
	if (!WIFEXITED(status))
		return fail(t, "status %s: ended with %s", r->name, it_status_text(status, st, sizeof st));
	r->code = WEXITSTATUS(status);
	if ((r->out = it_read_file(outp, NULL, err, sizeof err)) == NULL ||
	    (r->err = it_read_file(errp, NULL, err, sizeof err)) == NULL)
		return fail(t, "status %s: %s", r->name, err);
	return true;
}

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
	json_decref(r->report);
}

static const char *const STATES[] = {"ok", "warning", "critical", "unknown"};

/* Runs it and checks the exit code, that stdout is exactly one JSON object,
 * and that its state matches the code. */
static bool expect_json(struct ctx *t, struct run *r, int want)
{
	json_error_t jerr;
	char what[96];

	r->json = true;
	if (!run_status(t, r))
		return false;
	if (r->code != want)
		return fail(t, "status %s: exit %d, want %d; stdout: %.300s stderr: %.300s", r->name, r->code, want, r->out,
			    r->err);
	if ((r->report = json_loads(r->out, 0, &jerr)) == NULL || !json_is_object(r->report))
		return fail(t, "status %s: stdout is not one JSON object (%s): %.300s", r->name, jerr.text, r->out);
	snprintf(what, sizeof what, "status %s: state", r->name);
	return expect_str_eq(t, what, STATES[want], json_string_value(json_object_get(r->report, "state")));
}

/* True when some reason contains word. */
static bool has_reason(const json_t *report, const char *word)
{
	size_t i;
	json_t *reason;

	json_array_foreach (json_object_get(report, "reasons"), i, reason)
		if (strstr(json_string_value(reason) ? json_string_value(reason) : "", word) != NULL)
			return true;
	return false;
}

/* expect_json, plus a reason that mentions word. */
static bool expect_reason(struct ctx *t, struct run *r, int want, const char *word)
{
	char *reasons;

	if (!expect_json(t, r, want))
		return false;
	if (has_reason(r->report, word))
		return true;
	reasons = json_dumps(json_object_get(r->report, "reasons"), JSON_COMPACT);
	fail(t, "status %s: no reason mentions \"%s\": %s", r->name, word, reasons ? reasons : "?");
	free(reasons);
	return false;
}

/* Streaming and caught up with marker m: ok, active, applied past m, little
 * lag. */
static bool check_ok(struct ctx *t, const char m[LSN_BUFLEN], long *lag)
{
	struct run r = {.name = "ok"};
	lsn_t applied, want;
	bool ok = expect_json(t, &r, 0);
	const json_t *slot = json_object_get(r.report, "slot");
	const json_t *lag_bytes = json_object_get(r.report, "lag_bytes");
	const char *applied_text = json_string_value(json_object_get(r.report, "applied_lsn"));

	if (ok && !json_is_true(json_object_get(slot, "active")))
		ok = fail(t, "status ok: slot.active is not true: %.400s", r.out);
	else if (ok && (applied_text == NULL || !lsn_parse(applied_text, &applied) || !lsn_parse(m, &want) || applied <= want))
		ok = fail(t, "status ok: applied_lsn not past the marker %s: %.400s", m, r.out);
	else if (ok &&
		 (!json_is_integer(lag_bytes) || json_integer_value(lag_bytes) < 0 || json_integer_value(lag_bytes) >= SMALL_LAG))
		ok = fail(t, "status ok: lag_bytes not in [0, %ld): %.400s", SMALL_LAG, r.out);
	else if (ok && json_array_size(json_object_get(r.report, "reasons")) != 0)
		ok = fail(t, "status ok: reasons not empty: %.400s", r.out);
	*lag = ok ? (long) json_integer_value(lag_bytes) : -1;
	run_free(&r);
	return ok;
}

/* Thresholds forced down: a breach is a warning or a critical by its own
 * threshold. */
static bool check_retained(struct ctx *t)
{
	struct run w = {.name = "retained-warning", .env = {"WALCOUNT_STATUS_RETAINED_WAL_WARNING=1B"}};
	struct run c = {.name = "retained-critical", .env = {"WALCOUNT_STATUS_RETAINED_WAL_CRITICAL=1B"}};
	bool ok = expect_reason(t, &w, 1, "retained") && expect_reason(t, &c, 2, "retained");

	run_free(&w);
	run_free(&c);
	return ok;
}

/* The table, while ok, ends with the state line. */
static bool check_table(struct ctx *t)
{
	struct run r = {.name = "table"};
	bool ok = run_status(t, &r);

	if (ok && (r.code != 0 || strstr(r.out, "\nstate: ok\n") == NULL))
		ok = fail(t, "status table: exit %d, want 0 and a \"state: ok\" line: %.500s", r.code, r.out);
	run_free(&r);
	return ok;
}

/* After a clean stop: the inactive time is judged. */
static bool check_inactive(struct ctx *t)
{
	struct run r = {.name = "inactive", .env = {"WALCOUNT_STATUS_INACTIVE_WARNING=1ms"}};
	bool ok = expect_reason(t, &r, 1, "inactive");

	if (ok && !json_is_false(json_object_get(json_object_get(r.report, "slot"), "active")))
		ok = fail(t, "status inactive: slot.active is not false: %.400s", r.out);
	run_free(&r);
	return ok;
}

/* Another slot name, and a database without the walcount schema. */
static bool check_missing(struct ctx *t)
{
	char slot[128], dsn[256];
	struct run r1 = {.name = "no-slot", .env = {slot}};
	struct run r2 = {.name = "no-schema", .env = {dsn}};

	snprintf(slot, sizeof slot, "WALCOUNT_SLOT_NAME=%s_missing", t->db);
	snprintf(dsn, sizeof dsn, "WALCOUNT_DATABASE_DSN=host=%s port=%s dbname=postgres user=postgres", IT.host, IT.port);
	bool ok = expect_reason(t, &r1, 2, "does not exist") && expect_reason(t, &r2, 3, "schema missing");
	run_free(&r1);
	run_free(&r2);
	return ok;
}

/* Nothing listens on port 1: unknown, with a reason but not the password,
 * in either DSN form and either output. */
static bool check_unreachable(struct ctx *t)
{
	struct run r[2] = {
		{.name = "unreachable-json",
		 .env = {"WALCOUNT_DATABASE_DSN=host=127.0.0.1 port=1 dbname=x user=postgres password=" SECRET
			 " connect_timeout=5"}},
		{.name = "unreachable-table",
		 .env = {"WALCOUNT_DATABASE_DSN=postgresql://postgres:" SECRET "@127.0.0.1:1/x?connect_timeout=5"}},
	};
	bool ok = expect_reason(t, &r[0], 3, "cannot connect") && run_status(t, &r[1]);

	/* The skeleton has every member, null, as with a server that answers. */
	if (ok && !json_is_null(json_object_get(r[0].report, "slot_creation_waiting_for")))
		ok = fail(t, "status %s: no slot_creation_waiting_for: null: %.300s", r[0].name, r[0].out);
	if (ok && (r[1].code != 3 || strstr(r[1].out, "state: unknown") == NULL))
		ok = fail(t, "status %s: exit %d, want 3 and \"state: unknown\": %.300s", r[1].name, r[1].code, r[1].out);
	for (int i = 0; ok && i < 2; i++)
		if (strstr(r[i].out, SECRET) != NULL || strstr(r[i].err, SECRET) != NULL)
			ok = fail(t, "status %s: the password is in the output: %.300s %.300s", r[i].name, r[i].out, r[i].err);
	run_free(&r[0]);
	run_free(&r[1]);
	return ok;
}

/* Streaming and caught up, then stopped cleanly; each check runs
 * `walcount status` against that state. */
bool test_status(struct ctx *t)
{
	struct it_mark m;
	long lag;

	if (!configure(t, &(struct wc_opts){0}) || !start_streaming(t) || !run_changes(t, 2000, false) || !marker(t, &m) ||
	    !wait_applied(t, &m, CAUGHT_UP_TIMEOUT) || !check_ok(t, m.lsn, &lag) || !check_retained(t) || !check_table(t) ||
	    !stop_clean(t) || !wait_slot(t, false, STOP_TIMEOUT) || !check_inactive(t) || !check_missing(t) ||
	    !check_unreachable(t))
		return false;
	snprintf(t->details, sizeof t->details,
		 "caught up: ok, active, lag %ld B; retained 1B: warning, critical; stopped: inactive warning; "
		 "missing slot: critical; no schema, closed port: unknown; password never printed",
		 lag);
	return true;
}
