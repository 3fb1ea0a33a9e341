/* Deployment tests: walcount as the least-privilege role of sql/roles.sql
 * with a password from database.password_file (and from PGPASSWORD), and
 * SIGHUP reloading the configuration. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "cases.h"

#define ROLE_PASSWORD "wc-Secret-31337"

/* Password authentication for the walcount role only, ahead of the trust
 * lines the test cluster uses for everyone else. */
static const char HBA_LINES[] = "host all walcount 127.0.0.1/32 scram-sha-256\n";

static bool exec_sql(struct ctx *t, PGconn *conn, const char *sql)
{
	char err[IT_ERRLEN];

	return it_exec(conn, sql, 0, NULL, err, sizeof err) || fail_err(t, "setting up", err);
}

static bool write_text(struct ctx *t, const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
		return fail(t, "%s: %s", path, strerror(errno));
	return true;
}

/* The role, its grants in this database, its password and an hba that
 * demands the password. */
static bool require_password(struct ctx *t)
{
	char path[PATH_MAX], err[IT_ERRLEN];
	char *hba;

	snprintf(path, sizeof path, "%s/data/pg_hba.conf", IT.pgdir);
	if ((hba = it_read_file(path, NULL, err, sizeof err)) == NULL)
		return fail_err(t, "reading pg_hba.conf", err);
	FILE *f = strstr(hba, HBA_LINES) ? NULL : fopen(path, "w");
	bool ok = strstr(hba, HBA_LINES) || (f && fputs(HBA_LINES, f) >= 0 && fputs(hba, f) >= 0);
	if (f && fclose(f) != 0)
		ok = false;
	free(hba);
	return (ok || fail(t, "writing %s: %s", path, strerror(errno))) && exec_sql(t, t->conn, "SELECT pg_reload_conf()");
}

static bool setup_role(struct ctx *t)
{
	char *roles, err[IT_ERRLEN];

	if ((roles = it_read_file("sql/roles.sql", NULL, err, sizeof err)) == NULL)
		return fail_err(t, "reading sql/roles.sql", err);
	bool ok = exec_sql(t, t->conn, roles);
	free(roles);
	return ok && exec_sql(t, t->conn, "ALTER ROLE walcount PASSWORD '" ROLE_PASSWORD "'") && require_password(t);
}

/* The test config: user=walcount, the password in a file. */
static bool configure_role(struct ctx *t, const char *password)
{
	char pwfile[PATH_MAX], line[256];
	struct wc_opts o = {.user = "walcount", .password_file = pwfile};

	snprintf(pwfile, sizeof pwfile, "%s/walcount.password", IT.tmp);
	snprintf(line, sizeof line, "%s\n", password);
	return write_text(t, pwfile, line) && configure(t, &o);
}

/* As walcount: a count column may be written, a score may not. */
static bool column_grants_hold(struct ctx *t)
{
	char dsn[256], err[IT_ERRLEN];

	snprintf(dsn, sizeof dsn, "host=%s port=%s dbname=%s user=walcount password=" ROLE_PASSWORD, IT.host, IT.port, t->db);
	PGconn *conn = PQconnectdb(dsn);
	if (PQstatus(conn) != CONNECTION_OK) {
		PQfinish(conn);
		return fail(t, "connecting as walcount failed");
	}
	bool count_ok = it_exec(conn, "UPDATE aggregate_user SET repost_count = repost_count WHERE user_id = -1", 0, NULL, err,
				sizeof err);
	bool score_ok = it_exec(conn, "UPDATE aggregate_user SET score = 1", 0, NULL, err, sizeof err);
	PQfinish(conn);
	if (!count_ok)
		return fail(t, "walcount may not update repost_count: %s", err);
	if (score_ok || strstr(err, "permission denied") == NULL)
		return fail(t, "walcount was not refused an UPDATE of score (%s)", score_ok ? "it succeeded" : err);
	return true;
}

/* Runs argv to its exit; wants exit code `want`, needle (when not NULL)
 * in its output, and never the password. */
static bool run_expect(struct ctx *t, const char *label, const char *const *argv, int want, const char *needle)
{
	char *out = NULL, *errtext = NULL, st[32];
	int status;
	bool ok = run_program(t, label, argv, &status, &out, &errtext);

	if (ok && (!WIFEXITED(status) || WEXITSTATUS(status) != want))
		ok = fail(t, "%s ended with %s, want exit %d: %s%s", label, it_status_text(status, st, sizeof st), want, out,
			  errtext);
	if (ok && needle && !strstr(out, needle) && !strstr(errtext, needle))
		ok = fail(t, "%s: output lacks \"%s\": %s%s", label, needle, out, errtext);
	if (ok && (strstr(out, ROLE_PASSWORD) || strstr(errtext, ROLE_PASSWORD)))
		ok = fail(t, "%s printed the password", label);
	free(out);
	free(errtext);
	return ok;
}

bool test_least_privilege(struct ctx *t)
{
	const char *run[] = {IT.bin, "run", "--config", t->wc.config, NULL};
	const char *reconcile[] = {IT.bin, "reconcile", "--config", t->wc.config, NULL};
	const char *status_env[] = {
		"/usr/bin/env", "PGPASSWORD=" ROLE_PASSWORD, IT.bin, "status", "--config", t->wc.config, NULL};
	struct wc_opts no_file = {.user = "walcount"};

	if (!setup_role(t) || !configure_role(t, "wrong-password") ||
	    !run_expect(t, "role-badpw", run, 1, "password authentication failed"))
		return false;
	if (!exec_sql(t, t->conn, "REVOKE SELECT ON comments FROM walcount") || !configure_role(t, ROLE_PASSWORD) ||
	    !run_expect(t, "role-nogrant", run, 1, "lacks SELECT on public.comments") ||
	    !exec_sql(t, t->conn, "GRANT SELECT ON comments TO walcount"))
		return false;
	if (!start_streaming(t) || !run_changes(t, 5000, false) || !caught_up(t, CAUGHT_UP_TIMEOUT) || !drift_zero(t) ||
	    !stop_clean(t) || !run_expect(t, "role-reconcile", reconcile, 0, "reconcile: checked") || !column_grants_hold(t))
		return false;
	/* PGPASSWORD, libpq's own source, works without password_file. */
	if (!configure(t, &no_file) || !run_expect(t, "role-pgpassword", status_env, 0, "state: ok"))
		return false;
	snprintf(t->details, sizeof t->details,
		 "streamed and reconciled as walcount with a password file; drift 0; score write refused; missing grant "
		 "and wrong password refused; PGPASSWORD works; password never printed");
	return true;
}
/* Waits for needle in walcount's log. */
static bool log_shows(struct ctx *t, const char *needle)
{
	for (double end = it_now() + 10; it_now() < end; it_sleep_ms(100)) {
		char *text = it_read_file(t->wc.log, NULL, NULL, 0);
		bool found = text && strstr(text, needle);
		free(text);
		if (found)
			return true;
	}
	return fail(t, "walcount's log never showed \"%s\"", needle);
}

bool test_reload(struct ctx *t)
{
	struct wc_opts o = {0};
	struct wc_opts changed = {.max_delay = "300ms", .log_level = "debug", .dsn_extra = " application_name=x"};

	if (!configure(t, &o) || !start_streaming(t) || !run_changes(t, 1000, false) || !configure(t, &changed))
		return false;
	kill(t->wc.pid, SIGHUP);
	if (!log_shows(t, "reload: applied batch.max_delay, log.level") || !log_shows(t, "only applied at restart: database.dsn"))
		return false;
	/* Still streaming, now with debug lines for every batch. */
	if (!run_changes(t, 1000, false) || !caught_up(t, CAUGHT_UP_TIMEOUT) || !drift_zero(t) || !log_shows(t, "debug apply:"))
		return false;
	snprintf(t->details, sizeof t->details,
		 "SIGHUP applied batch.max_delay and log.level, named database.dsn as needing a restart; drift 0");
	return true;
}
