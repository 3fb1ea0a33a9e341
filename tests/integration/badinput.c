/* badinput: the shared steps of the bad-input tests (see badinput.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "badinput.h"

bool bi_sql(struct ctx *t, const char *text)
{
	char err[IT_ERRLEN];

	return it_exec(t->conn, text, 0, NULL, err, sizeof err) || fail_err(t, "SQL", err);
}

static bool value(struct ctx *t, const char *text, char *out, size_t len)
{
	char err[IT_ERRLEN];

	return it_value(t->conn, text, 0, NULL, out, len, err, sizeof err) || fail_err(t, "SQL", err);
}

char *read_log(struct ctx *t)
{
	char err[IT_ERRLEN];
	char *text = it_read_file(t->wc.log, NULL, err, sizeof err);

	return text ? text : strdup("");
}

int count_in_log(struct ctx *t, const char *needle)
{
	return count_in_file(t->wc.log, needle);
}

/* Waits until walcount's log holds needle at least n times. */
bool bi_wait_log(struct ctx *t, const char *needle, int n, double timeout_s)
{
	for (double end = it_now() + timeout_s;; it_sleep_ms(50)) {
		if (count_in_log(t, needle) >= n)
			return true;
		if (it_now() >= end)
			return fail(t, "walcount's log showed \"%s\" %d time(s) within %.0f s, want %d", needle,
				    count_in_log(t, needle), timeout_s, n);
	}
}

/* A log line is "TIMESTAMP LEVEL MESSAGE" with the level padded to 5
 * (log.c). Writes the exact "Z LEVEL MESSAGE\n" tail into buf. */
const char *log_line(char *buf, size_t len, const char *level, const char *msg)
{
	snprintf(buf, len, "Z %-5s %s\n", level, msg);
	return buf;
}

/* The LSN of the first log line "…PREFIX<lsn>SUFFIX" into *lsn. */
bool lsn_after(const char *text, const char *prefix, const char *suffix, lsn_t *lsn)
{
	for (const char *p = text; (p = strstr(p, prefix)) != NULL; p++) {
		char buf[LSN_BUFLEN + 1];
		const char *s = p + strlen(prefix);
		size_t n = strspn(s, "0123456789ABCDEF/");
		if (n == 0 || n > LSN_BUFLEN - 1 || strncmp(s + n, suffix, strlen(suffix)) != 0)
			continue;
		snprintf(buf, sizeof buf, "%.*s", (int) n, s);
		return lsn_parse(buf, lsn);
	}
	return false;
}

bool logged_at(struct ctx *t, const char *level, const char *before, const char *after, lsn_t l0, lsn_t l1)
{
	char prefix[256], line[640], msg[512], l[LSN_BUFLEN];
	char *text = read_log(t);
	lsn_t at = 0;

	snprintf(prefix, sizeof prefix, " %-5s %s", level, before);
	bool found = text != NULL && lsn_after(text, prefix, after, &at);
	snprintf(msg, sizeof msg, "%s%s%s", before, lsn_format(at, l), after);
	found = found && strstr(text, log_line(line, sizeof line, level, msg)) != NULL;
	free(text);
	if (!found)
		return fail(t, "no exact line \"%s  %sL%s\" in walcount's log", level, before, after);
	if (at < l0 || at >= l1)
		return fail(t, "the line \"%s\" names LSN %s, want one of the change written between %" PRIX64 " and %" PRIX64,
			    msg, l, l0, l1);
	return true;
}

bool current_lsn(struct ctx *t, lsn_t *out)
{
	char v[LSN_BUFLEN + 8];

	if (!value(t, "SELECT pg_current_wal_lsn()", v, sizeof v))
		return false;
	return lsn_parse(v, out) || fail(t, "pg_current_wal_lsn() gave '%s'", v);
}

bool progress_lsn(struct ctx *t, lsn_t *out)
{
	const char *params[1] = {t->db};
	char err[IT_ERRLEN], v[LSN_BUFLEN + 8];

	if (!it_value(t->conn, "SELECT min(lsn) FROM walcount.progress WHERE slot_name = $1 HAVING count(*) > 0", 1, params, v,
		      sizeof v, err, sizeof err))
		return fail_err(t, "reading walcount.progress", err);
	return lsn_parse(v, out) || fail(t, "walcount.progress.lsn is '%s'", v);
}

/* A config for a second walcount process: the test's database, another
 * slot and user, and whatever extra lines (indented ones belong to the
 * stream section). */
bool bi_write_config(struct ctx *t, const char *path, const char *dsn, const char *slot, const char *extra)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return fail(t, "%s: %s", path, strerror(errno));
	fprintf(f,
		"database:\n  dsn: \"%s\"\nslot:\n  name: %s\nreconcile:\n  enabled: false\nmetrics:\n  listen: \"\"\n"
		"stream:\n  status_interval: 1s\n  reconnect_min: 100ms\n  reconnect_max: 2s\n%s",
		dsn, slot, extra ? extra : "");
	if (fclose(f) != 0)
		return fail(t, "%s: %s", path, strerror(errno));
	return true;
}

bool write_bytes(struct ctx *t, const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (f == NULL || fwrite(text, 1, len, f) != len || fclose(f) != 0)
		return fail(t, "writing %s: %s", path, strerror(errno));
	return true;
}

/* Runs argv to its end and wants a non-zero exit, nothing on stdout and
 * stderr whose last line ends with want_tail (the exact message, after
 * the timestamp and level when it is a log line). lines: the number of
 * stderr lines wanted, 0 for any. */
bool refused(struct ctx *t, const char *label, const char *const *argv, const char *want_tail, int lines)
{
	char *out = NULL, *errtext = NULL, st[32];
	int status;
	bool ok = run_program(t, label, argv, &status, &out, &errtext);

	if (ok && (!WIFEXITED(status) || WEXITSTATUS(status) == 0))
		ok = fail(t, "%s: walcount ended with %s, want a non-zero exit: %.300s", label,
			  it_status_text(status, st, sizeof st), errtext);
	if (ok && *out != '\0')
		ok = fail(t, "%s: stdout not empty: %.200s", label, out);
	size_t n = ok ? strlen(errtext) : 0, k = strlen(want_tail);
	if (ok && (n < k || strcmp(errtext + n - k, want_tail) != 0))
		ok = fail(t, "%s: stderr does not end with the exact message \"%.*s\": %.500s", label,
			  (int) strcspn(want_tail, "\n"), want_tail, errtext);
	if (ok && lines > 0 && count_in(errtext, "\n") != lines)
		ok = fail(t, "%s: stderr has %d lines, want %d: %.500s", label, count_in(errtext, "\n"), lines, errtext);
	free(out);
	free(errtext);
	return ok;
}

bool slot_exists(struct ctx *t, const char *slot, bool *exists)
{
	const char *params[1] = {slot};
	char err[IT_ERRLEN], v[8];

	if (!it_value(t->conn, "SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)", 1, params, v, sizeof v,
		      err, sizeof err))
		return fail_err(t, "reading pg_replication_slots", err);
	*exists = strcmp(v, "t") == 0;
	return true;
}

/* Both tests that refuse a second process's slot must leave no slot behind
 * (test_prerequisites needs none at the end). */
void drop_slot(struct ctx *t, const char *slot)
{
	const char *params[1] = {slot};
	char err[IT_ERRLEN];

	if (PQstatus(t->conn) != CONNECTION_OK)
		it_reconnect(&t->conn, t->db, 60, err, sizeof err);
	it_exec(t->conn,
		"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active", 1,
		params, err, sizeof err);
}

/* The drift cells as "tbl[id].col expected/actual" joined by "; ", and
 * their count (-1 on error). */
long drift_cells(struct ctx *t, char *buf, size_t len)
{
	char err[IT_ERRLEN];

	long n = it_drift(t->conn, buf, len, err, sizeof err);
	if (n < 0)
		fail_err(t, "drift check", err);
	return n;
}

bool no_drift_cells(struct ctx *t, const char *why)
{
	char examples[1024];
	long n = drift_cells(t, examples, sizeof examples);

	if (n > 0)
		return fail(t, "%s: %ld cells drift: %s", why, n, examples);
	return n == 0;
}

/* GET /metrics on 127.0.0.1:port; the value of series, -1 when absent. */
double metric(int port, const char *series)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t) port)};
	const char *req = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
	size_t len = 0, cap = 1 << 16;
	char *buf = malloc(cap);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	double v = -1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (buf && fd >= 0 && connect(fd, (struct sockaddr *) &sa, sizeof sa) == 0 &&
	    write(fd, req, strlen(req)) == (ssize_t) strlen(req)) {
		for (ssize_t n; (n = read(fd, buf + len, cap - len - 1)) > 0;) {
			len += (size_t) n;
			if (len + 1 == cap) {
				char *bigger = realloc(buf, cap *= 2);
				if (bigger == NULL)
					break;
				buf = bigger;
			}
		}
	}
	if (fd >= 0)
		close(fd);
	if (buf == NULL)
		return -1;
	buf[len] = '\0';
	size_t n = strlen(series);
	for (const char *p = buf; (p = strstr(p, series)) != NULL; p += n)
		if ((p == buf || p[-1] == '\n') && p[n] == ' ') {
			v = atof(p + n + 1);
			break;
		}
	free(buf);
	return v;
}

bool metric_is(struct ctx *t, int port, const char *series, double want)
{
	double v = -1;

	/* Metrics follow the stream; give the last change a moment. */
	for (double end = it_now() + 10; it_now() < end; it_sleep_ms(100))
		if ((v = metric(port, series)) == want)
			return true;
	return fail(t, "%s is %g, want %g", series, v, want);
}
