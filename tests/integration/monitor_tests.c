/* Monitoring tests: /metrics and /healthz of a running consumer, checked
 * by promtool and scraped by a real Prometheus server. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cases.h"

/* The value of one sample line "name{labels} value" in an exposition. */
static double sample(const char *text, const char *series)
{
	size_t n = strlen(series);

	for (const char *p = text; (p = strstr(p, series)) != NULL; p += n)
		if ((p == text || p[-1] == '\n') && p[n] == ' ')
			return atof(p + n + 1);
	return -1;
}

static bool promtool_ok(struct ctx *t, const char *text)
{
	char path[PATH_MAX], cmd[2 * PATH_MAX + 64];
	FILE *f;

	snprintf(path, sizeof path, "%s/metrics.txt", IT.tmp);
	if ((f = fopen(path, "w")) == NULL || fputs(text, f) < 0 || fclose(f) != 0)
		return fail(t, "%s: %s", path, strerror(errno));
	snprintf(cmd, sizeof cmd, "promtool check metrics < %s > %s.check 2>&1", path, path);
	return system(cmd) == 0 || fail(t, "promtool check metrics failed, see %s.check", path);
}

/* Polls /metrics until the slot gauge, set by the first slot refresh
 * (slot.refresh_interval), reads 1; *text is the last body. */
static bool slot_gauge_set(struct ctx *t, int port, char **text, int *st)
{
	double active = -1;

	for (double end = it_now() + 30;; it_sleep_ms(50)) {
		free(*text);
		*text = NULL;
		*st = http_get(port, "/metrics", text);
		active = *st == 200 ? sample(*text, "walcount_slot_active") : -1;
		if (active == 1)
			return true;
		if (it_now() >= end)
			return fail(t, "walcount_slot_active: got %g (/metrics answered %d), want 1 within 30 s", active, *st);
	}
}

/* While connected and refreshed, every family declared by a TYPE line has
 * a sample (a histogram's are its _bucket lines). */
static bool every_family_sampled(struct ctx *t, const char *text)
{
	char name[128], type[16], series[160];

	for (const char *p = text; (p = strstr(p, "\n# TYPE ")) != NULL; p++) {
		if (sscanf(p, "\n# TYPE %127s %15s", name, type) != 2)
			return fail(t, "unreadable TYPE line in /metrics");
		snprintf(series, sizeof series, "\n%s%s", name, strcmp(type, "histogram") == 0 ? "_bucket{" : "");
		const char *q = strstr(text, series);
		size_t n = strlen(series);
		if (q == NULL || (series[n - 1] != '{' && q[n] != ' ' && q[n] != '{'))
			return fail(t, "family %s has no sample while connected", name);
	}
	return true;
}

/* Item by item, what operators' alerts read (docker/prometheus/alerts.yml). */
static bool check_conventions(struct ctx *t, const char *text)
{
	double lag = sample(text, "walcount_lag_seconds");
	bool ok = every_family_sampled(t, text);

	ok = ok && (sample(text, "walcount_connected") == 1 || fail(t, "walcount_connected is not 1 while streaming"));
	ok = ok && (strstr(text, "\nwalcount_build_info{version=\"") != NULL || fail(t, "no walcount_build_info"));
	ok = ok && (sample(text, "process_resident_memory_bytes") > 0 || fail(t, "no process_resident_memory_bytes"));
	ok = ok && (sample(text, "process_open_fds") >= 3 || fail(t, "no process_open_fds"));
	ok = ok && ((lag >= 0 && lag < 30) || fail(t, "walcount_lag_seconds %g after catching up, want 0 <= lag < 30", lag));
	ok = ok && (sample(text, "walcount_slot_wal_status{status=\"reserved\"}") == 1 ||
		    fail(t, "walcount_slot_wal_status{status=\"reserved\"} is not 1"));
	ok = ok && (sample(text, "walcount_standbys") == 0 || fail(t, "walcount_standbys is not 0"));
	ok = ok && (sample(text, "walcount_reconcile_corrected_total{table=\"aggregate_track\",column=\"comment_count\"}") == 0 ||
		    fail(t, "walcount_reconcile_corrected_total not exported at 0 before a correction"));
	return ok;
}

/* Idle and caught up, walcount_lag_seconds is 0, not the age of the last
 * applied commit (a heartbeat's transaction may be in flight for a moment). */
static bool lag_settles(struct ctx *t, int port)
{
	double lag = -1;

	for (double end = it_now() + 10; it_now() < end; it_sleep_ms(100)) {
		char *text = NULL;
		lag = http_get(port, "/metrics", &text) == 200 ? sample(text, "walcount_lag_seconds") : -1;
		free(text);
		if (lag == 0)
			return true;
	}
	return fail(t, "walcount_lag_seconds is %g, not 0, 10 s after catching up", lag);
}

static bool check_exposition(struct ctx *t, int port)
{
	char *text = NULL, *health = NULL;
	int st = 0;
	bool ok = slot_gauge_set(t, port, &text, &st);
	int hst = http_get(port, "/healthz", &health);

	ok = ok && (hst == 200 || fail(t, "/healthz answered %d: %s", hst, health ? health : ""));
	ok = ok && promtool_ok(t, text);
	ok = ok && (sample(text, "walcount_changes_total{table=\"reposts\",action=\"insert\"}") > 0 ||
		    fail(t, "no reposts inserts counted in /metrics"));
	ok = ok && (sample(text, "walcount_batches_total") > 0 || fail(t, "walcount_batches_total not > 0"));
	ok = ok && (sample(text, "walcount_starting") == 0 || fail(t, "walcount_starting is not 0 while streaming"));
	ok = ok && (sample(text, "walcount_commit_to_apply_seconds_count") > 0 || fail(t, "commit_to_apply histogram empty"));
	ok = ok && check_conventions(t, text) && lag_settles(t, port);
	free(text);
	free(health);
	return ok;
}

/* Scrapes walcount every second and evaluates the alert rules of
 * docker/prometheus/alerts.yml as often. */
static bool write_prometheus_config(struct ctx *t, const char *path, int port)
{
	char rules[PATH_MAX];
	FILE *f;

	if (realpath("docker/prometheus/alerts.yml", rules) == NULL)
		return fail(t, "docker/prometheus/alerts.yml: %s", strerror(errno));
	if ((f = fopen(path, "w")) == NULL)
		return fail(t, "%s: %s", path, strerror(errno));
	fprintf(f,
		"global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - '%s'\n"
		"scrape_configs:\n  - job_name: walcount\n    static_configs:\n      - targets: ['127.0.0.1:%d']\n",
		rules, port);
	return fclose(f) == 0 || fail(t, "%s: %s", path, strerror(errno));
}

static int count(const char *text, const char *s)
{
	int n = 0;

	for (const char *p = text; (p = strstr(p, s)) != NULL; p += strlen(s))
		n++;
	return n;
}

/* The alert rules, evaluated on walcount's real series, all evaluate
 * without error (vector matching, types), and none is pending or firing
 * for a healthy, caught-up walcount. Evaluations before the first scrape
 * saw no series, so 3 s of them (every second) are watched. */
static bool rules_quiet(struct ctx *t, int prom_port)
{
	char *body = NULL;
	int rules = 0, ok = 0;
	double settled = it_now() + 3;

	for (double end = it_now() + 20; ok == 0 || ok < rules || it_now() < settled; it_sleep_ms(500)) {
		free(body);
		body = NULL;
		if (http_get(prom_port, "/api/v1/rules", &body) == 200) {
			rules = count(body, "\"type\":\"alerting\"");
			ok = count(body, "\"health\":\"ok\"");
			if (strstr(body, "\"health\":\"err\"") != NULL) {
				const char *e = strstr(body, "\"lastError\":\"");
				fail(t, "an alert rule fails to evaluate: %.300s", e ? e : body);
				free(body);
				return false;
			}
		}
		if (it_now() >= end) {
			free(body);
			return fail(t, "%d of %d alert rules evaluated within 20 s", ok, rules);
		}
	}
	free(body);
	body = NULL;
	bool quiet = http_get(prom_port, "/api/v1/alerts", &body) == 200 && strstr(body, "\"alerts\":[]") != NULL;
	if (!quiet)
		fail(t, "alerts pending or firing for a healthy walcount: %.400s", body ? body : "");
	free(body);
	return quiet && rules > 10;
}

/* Starts Debian's prometheus scraping walcount every second and waits until
 * its query API returns walcount_batches_total of the job. */
static bool prometheus_scrapes(struct ctx *t, int port, int prom_port)
{
	char cfg[PATH_MAX], data[PATH_MAX], log[PATH_MAX], listen[64], err[IT_ERRLEN];
	const char *query = "/api/v1/query?query=walcount_batches_total%7Bjob%3D%22walcount%22%7D";

	snprintf(cfg, sizeof cfg, "%s/prometheus.yml", IT.tmp);
	snprintf(data, sizeof data, "--storage.tsdb.path=%s/prometheus-data", IT.tmp);
	snprintf(log, sizeof log, "%s/prometheus.log", IT.tmp);
	snprintf(listen, sizeof listen, "--web.listen-address=127.0.0.1:%d", prom_port);
	char cfgarg[PATH_MAX + 16];
	snprintf(cfgarg, sizeof cfgarg, "--config.file=%s", cfg);
	const char *argv[] = {"/usr/bin/prometheus", cfgarg, data, listen, NULL};
	if (!write_prometheus_config(t, cfg, port))
		return false;
	FILE *lf = fopen(log, "w");
	pid_t pid = lf ? it_spawn(argv, fileno(lf), fileno(lf), err, sizeof err) : -1;
	if (lf)
		fclose(lf);
	if (pid < 0)
		return fail(t, "starting prometheus: %s", lf ? err : strerror(errno));
	bool seen = false;
	for (double end = it_now() + 60; !seen && it_now() < end; it_sleep_ms(500)) {
		char *body = NULL;
		seen = http_get(prom_port, query, &body) == 200 && strstr(body, "\"value\":[") != NULL;
		free(body);
	}
	bool ok = seen ? rules_quiet(t, prom_port)
		       : fail(t, "prometheus did not scrape walcount_batches_total within 60 s (see %s)", log);
	int status;
	kill(pid, SIGTERM);
	if (!it_reap(pid, 20, &status, NULL))
		kill(pid, SIGKILL), it_reap(pid, 5, &status, NULL);
	return ok;
}

bool test_metrics(struct ctx *t)
{
	char listen[32];
	int ports[2];
	struct wc_opts o = {.metrics_listen = listen, .refresh = "200ms"};

	if (!free_ports(ports, 2))
		return fail(t, "no two free loopback ports: %s", strerror(errno));
	snprintf(listen, sizeof listen, "127.0.0.1:%d", ports[0]);
	if (!configure(t, &o) || !start_streaming(t) || !run_changes(t, 3000, false) || !caught_up(t, CAUGHT_UP_TIMEOUT))
		return false;
	if (!check_exposition(t, ports[0]) || !prometheus_scrapes(t, ports[0], ports[1]))
		return false;
	snprintf(t->details, sizeof t->details,
		 "/metrics passes promtool, every family sampled while connected, /healthz 200, Prometheus scraped it and "
		 "evaluated the alert rules: no error, none pending or firing");
	return true;
}
