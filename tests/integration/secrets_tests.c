/* Secrets (issue 12 item 10): no password reaches any output. Every DSN
 * form libpq takes (keyword=value, URI, the environment) and malformed ones
 * go through every command that connects, against a refused login and a
 * port nothing listens on; then a consumer streams with a password in its
 * DSN while /metrics, /healthz, status and its log are read. Every secret
 * holds "SEKRET", which nothing else prints. */
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cases.h"

#define SECRET_MARK "SEKRET"

struct form {
	const char *name;
	const char *dsn; /* {H} host, {P} port, {D} database, {U} user */
	const char *env; /* NULL, or NAME=value for the environment, same fields */
	bool malformed;
};

static const struct form forms[] = {
	{"kw-ssl-first", "host={H} port={P} dbname={D} user={U} sslpassword=it" SECRET_MARK "1 password=it" SECRET_MARK "2", NULL,
	 false},
	{"kw-pw-first", "password=it" SECRET_MARK "3 sslpassword=it" SECRET_MARK "4 host={H} port={P} dbname={D} user={U}", NULL,
	 false},
	{"kw-user-named-password", "user=password_rotator password=it" SECRET_MARK "5 host={H} port={P} dbname={D}", NULL, false},
	{"kw-quoted", "host={H} port={P} dbname={D} user={U} password='it " SECRET_MARK "\\'6'", NULL, false},
	{"uri-query", "postgresql://{U}@{H}:{P}/{D}?password=it" SECRET_MARK "7", NULL, false},
	{"uri-userinfo", "postgresql://{U}:it" SECRET_MARK "8@{H}:{P}/{D}", NULL, false},
	{"uri-both", "postgres://{U}:it" SECRET_MARK "9@{H}:{P}/{D}?sslpassword=it" SECRET_MARK "10&connect_timeout=5", NULL,
	 false},
	{"env-pgpassword", "host={H} port={P} dbname={D} user={U}", "PGPASSWORD=it" SECRET_MARK "11", false},
	{"env-dsn", "host={H} port={P} dbname={D} user={U}",
	 "WALCOUNT_DATABASE_DSN=host={H} port={P} dbname={D} user={U} password=it" SECRET_MARK "12", false},
	{"bad-missing-eq", "host={H} port={P} password=it" SECRET_MARK "13 oops", NULL, true},
	{"bad-option", "password=it" SECRET_MARK "14 it" SECRET_MARK "15=x", NULL, true},
	{"bad-quote", "host={H} password='it" SECRET_MARK "16", NULL, true},
	{"bad-uri-host", "postgresql://{U}:it" SECRET_MARK "17@[::1/{D}", NULL, true},
	{"bad-uri-query", "postgresql://{U}:it" SECRET_MARK "18@{H}:{P}/{D}?password=it" SECRET_MARK "19&x", NULL, true},
	{"bad-env-dsn", "host={H} port={P} dbname={D} user={U}",
	 "WALCOUNT_DATABASE_DSN=postgresql://{U}:it" SECRET_MARK "20@{H}:{P}/{D}?%zz", true},
};

struct target {
	const char *name, *host, *user;
	char port[16];
};

static const char *const commands[][3] = {
	{"run"}, {"init"}, {"reconcile"}, {"status"}, {"status", "--json"},
};

/* tmpl with {H} {P} {D} {U} replaced from tg and the test's database. */
static void subst(const char *tmpl, const struct target *tg, const char *db, char *out, size_t len)
{
	size_t n = 0;

	for (const char *p = tmpl; *p && n + 1 < len; p++) {
		const char *v = NULL;
		if (p[0] == '{' && p[1] && p[2] == '}')
			v = p[1] == 'H' ? tg->host : p[1] == 'P' ? tg->port : p[1] == 'D' ? db : p[1] == 'U' ? tg->user : NULL;
		if (v == NULL) {
			out[n++] = *p;
			continue;
		}
		n += (size_t) snprintf(out + n, len - n, "%s", v);
		if (n >= len)
			n = len - 1;
		p += 2;
	}
	out[n] = '\0';
}

/* A YAML double-quoted scalar of s. */
static void yaml_quote(const char *s, char *out, size_t len)
{
	size_t n = 0;

	out[n++] = '"';
	for (; *s && n + 3 < len; s++) {
		if (*s == '"' || *s == '\\')
			out[n++] = '\\';
		out[n++] = *s;
	}
	out[n++] = '"';
	out[n] = '\0';
}

static bool write_config(struct ctx *t, const char *path, const char *dsn)
{
	char quoted[1024];
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return fail(t, "cannot write %s", path);
	yaml_quote(dsn, quoted, sizeof quoted);
	fprintf(f,
		"database:\n  dsn: %s\nslot:\n  name: %s\nreconcile:\n  enabled: false\nmetrics:\n  listen: \"\"\n"
		"log:\n  level: debug\nstream:\n  connect_attempts: 2\n  reconnect_min: 100ms\n  reconnect_max: 200ms\n",
		quoted, t->db);
	return fclose(f) == 0 || fail(t, "cannot write %s", path);
}

/* Outputs checked, and the ones that broke the rules with the first reason. */
struct tally {
	int runs, bad;
	char first[1024];
};

static void bad_output(struct tally *y, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void bad_output(struct tally *y, const char *fmt, ...)
{
	va_list ap;

	if (y->bad++ > 0)
		return;
	va_start(ap, fmt);
	vsnprintf(y->first, sizeof y->first, fmt, ap);
	va_end(ap);
}

/* Runs every command with form fm against tg: each must exit non-zero,
 * print something, and never a secret; a malformed DSN is named as such.
 * False only when a command could not be run. */
static bool form_outputs(struct ctx *t, const struct form *fm, const struct target *tg, struct tally *y)
{
	char dsn[512], env[512], cfg[PATH_MAX], label[128];

	subst(fm->dsn, tg, t->db, dsn, sizeof dsn);
	if (fm->env)
		subst(fm->env, tg, t->db, env, sizeof env);
	snprintf(cfg, sizeof cfg, "%s/secrets-%s.yaml", IT.tmp, fm->name);
	if (!write_config(t, cfg, dsn))
		return false;
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		const char *argv[10];
		char *out = NULL, *errtext = NULL, st[32];
		int n = 0, status;
		if (fm->env) {
			argv[n++] = "/usr/bin/env";
			argv[n++] = env;
		}
		argv[n++] = IT.bin;
		for (int k = 0; k < 3 && commands[i][k]; k++)
			argv[n++] = commands[i][k];
		argv[n++] = "--config";
		argv[n++] = cfg;
		argv[n] = NULL;
		snprintf(label, sizeof label, "secrets-%s-%s-%s%s", fm->name, tg->name, commands[i][0],
			 commands[i][1] ? "-json" : "");
		if (!run_program(t, label, argv, &status, &out, &errtext))
			return false;
		y->runs++;
		if (strstr(out, SECRET_MARK) || strstr(errtext, SECRET_MARK))
			bad_output(y, "%s printed a password: %.400s%.400s", label, out, errtext);
		else if (!WIFEXITED(status) || WEXITSTATUS(status) == 0 || (!*out && !*errtext))
			bad_output(y, "%s ended with %s and %zu bytes of output, want a non-zero exit and a reason", label,
				   it_status_text(status, st, sizeof st), strlen(out) + strlen(errtext));
		else if (fm->malformed && !strstr(out, "(unparseable DSN: ") && !strstr(errtext, "(unparseable DSN: "))
			bad_output(y, "%s: no \"(unparseable DSN: \" in %.400s%.400s", label, out, errtext);
		free(out);
		free(errtext);
	}
	return true;
}

/* A running consumer with passwords in its DSN: /metrics, /healthz,
 * status, status --json and its whole log (debug, with a stream
 * reconnect) show neither. */
static bool streaming_outputs(struct ctx *t, struct tally *y)
{
	char listen_addr[32], *body = NULL;
	int port = free_port(t);
	struct wc_opts o = {.metrics_listen = listen_addr,
			    .log_level = "debug",
			    .dsn_extra = " sslpassword=it" SECRET_MARK "30 password=it" SECRET_MARK "31"};

	snprintf(listen_addr, sizeof listen_addr, "127.0.0.1:%d", port);
	if (port == 0 || !configure(t, &o) || !start_streaming(t) || !run_changes(t, 300, false) ||
	    !caught_up(t, CAUGHT_UP_TIMEOUT) || !terminate_walsender(t, true) || !run_changes(t, 300, false) ||
	    !caught_up(t, CAUGHT_UP_TIMEOUT))
		return false;
	const char *paths[] = {"/metrics", "/healthz"};
	for (int i = 0; i < 2; i++, y->runs++) {
		int code = http_get(port, paths[i], &body);
		bool leaked = body && strstr(body, SECRET_MARK);
		if (code != 200 || leaked) {
			fail(t, "GET %s: %d%s: %.300s", paths[i], code, leaked ? ", with a password" : "", body ? body : "");
			free(body);
			return false;
		}
		free(body);
	}
	const char *status_args[][4] = {{"status", "--config", t->wc.config, NULL},
					{"status", "--json", "--config", t->wc.config}};
	for (int i = 0; i < 2; i++, y->runs++) {
		const char *args[5] = {status_args[i][0], status_args[i][1], status_args[i][2], status_args[i][3], NULL};
		char *out = NULL, *errtext = NULL;
		int status;
		if (!run_walcount(t, i == 0 ? "secrets-live-status" : "secrets-live-status-json", args, &status, &out, &errtext))
			return false;
		bool clean = expect_str_lacks(t, "stdout of status of a running consumer", out, SECRET_MARK) &&
			     expect_str_lacks(t, "stderr of status of a running consumer", errtext, SECRET_MARK);
		free(out);
		free(errtext);
		if (!clean)
			return false;
	}
	if (!stop_clean(t))
		return false;
	y->runs++;
	return count_in_file(t->wc.log, SECRET_MARK) == 0 || fail(t, "walcount's log (%s) holds a password", t->wc.log);
}

bool test_secrets_redacted(struct ctx *t)
{
	struct target tg[2] = {{"refused", IT.host, "it_no_such_role", ""}, {"closed", "127.0.0.1", "postgres", ""}};
	struct tally y = {0};

	snprintf(tg[0].port, sizeof tg[0].port, "%s", IT.port);
	snprintf(tg[1].port, sizeof tg[1].port, "%d", closed_port());
	for (size_t f = 0; f < sizeof forms / sizeof forms[0]; f++)
		for (int k = 0; k < (forms[f].malformed ? 1 : 2); k++)
			if (!form_outputs(t, &forms[f], &tg[k], &y))
				return false;
	if (y.bad > 0)
		return fail(t, "%d of %d outputs broke the rules; first: %s", y.bad, y.runs, y.first);
	if (!streaming_outputs(t, &y))
		return false;
	snprintf(t->details, sizeof t->details,
		 "%zu DSN forms x run, init, reconcile, status, status --json against a refused login and a closed "
		 "port, then /metrics, /healthz, status and the log of a streaming consumer: %d outputs, no password",
		 sizeof forms / sizeof forms[0], y.runs);
	return true;
}
