/* libFuzzer target: the config parser, as `walcount --config FILE` and
 * SIGHUP use it. The input is the YAML text; when it holds a NUL byte, what
 * follows the first one is an environment, "NAME=value" per line, that the
 * WALCOUNT_* lookup reads (so the seeds, plain config files, are pure YAML).
 *
 * Besides ASan/UBSan/leak findings it aborts when a documented contract
 * breaks: a failure leaves one non-empty line in err; a success leaves every
 * key in its range (the table's minimums, slot.name's rule, enums in range,
 * reconnect_max >= reconnect_min); config_reload of defaults onto the result
 * and back is consistent; parsing the same input twice gives the same
 * outcome. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define CHECK(cond)                                                                                               \
	do {                                                                                                      \
		if (!(cond)) {                                                                                    \
			fprintf(stderr, "fuzz_config: contract broken: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
			abort();                                                                                  \
		}                                                                                                 \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The environment of the current input: "NAME=value" lines. */
static const char *env_text;
static size_t env_len;
static char env_value[4096];

static const char *fuzz_getenv(const char *name)
{
	size_t n = strlen(name);

	if (env_text == NULL)
		return NULL;
	for (const char *p = env_text, *end = env_text + env_len; p != NULL && p < end;) {
		const char *nl = memchr(p, '\n', (size_t) (end - p));
		size_t line = nl ? (size_t) (nl - p) : (size_t) (end - p);
		if (line > n && memcmp(p, name, n) == 0 && p[n] == '=') {
			size_t v = line - n - 1;
			if (v >= sizeof env_value)
				v = sizeof env_value - 1;
			memcpy(env_value, p + n + 1, v);
			env_value[v] = '\0';
			return env_value;
		}
		p = nl ? nl + 1 : end;
	}
	return NULL;
}

static void check_line(const char *err, size_t errlen)
{
	size_t n = strnlen(err, errlen);

	CHECK(n > 0 && n < errlen);
	CHECK(memchr(err, '\n', n) == NULL);
}

static bool slot_name_ok(const char *s)
{
	size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_");

	return n > 0 && n <= 63 && s[n] == '\0';
}

static void check_config(const struct config *c)
{
	CHECK(c->database_dsn != NULL);
	CHECK(c->slot_name != NULL && slot_name_ok(c->slot_name));
	CHECK(c->metrics_listen != NULL);
	CHECK(c->slot_heartbeat_interval_ms >= 1);
	CHECK(c->batch_max_changes >= 1);
	CHECK(c->batch_max_delay_ms >= 1);
	CHECK(c->batch_max_keys >= 8);
	CHECK(c->checkpoint_interval_ms >= 1);
	CHECK(c->reconcile_chunk_rows >= 1);
	CHECK(c->status_lag_warning >= 0 && c->status_lag_critical >= 0);
	CHECK(c->status_retained_wal_warning >= 0 && c->status_retained_wal_critical >= 0);
	CHECK(c->status_inactive_warning_ms >= 0 && c->status_inactive_critical_ms >= 0);
	CHECK(c->status_batch_age_warning_ms >= 0 && c->status_batch_age_critical_ms >= 0);
	CHECK(c->log_level >= LOG_ERROR && c->log_level <= LOG_DEBUG);
	CHECK(c->log_format == LOG_TEXT || c->log_format == LOG_JSON);
	CHECK(c->stream_status_interval_ms >= 1 && c->stream_reconnect_min_ms >= 1);
	CHECK(c->stream_reconnect_max_ms >= c->stream_reconnect_min_ms);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy, not NUL-terminated, as config_load passes it. */
	const uint8_t *nul = memchr(data, '\0', size);
	size_t yaml_len = nul ? (size_t) (nul - data) : size;
	char *text = malloc(yaml_len ? yaml_len : 1);
	struct config cfg, again, defaults;
	char err[1024], err2[1024];

	if (text == NULL)
		return 0;
	memcpy(text, data, yaml_len);
	env_text = nul ? (const char *) nul + 1 : NULL;
	env_len = nul ? size - yaml_len - 1 : 0;

	config_defaults(&cfg);
	check_config(&cfg);
	bool ok = config_parse("fuzz.yaml", text, yaml_len, fuzz_getenv, &cfg, err, sizeof err);
	if (ok)
		check_config(&cfg);
	else
		check_line(err, sizeof err);

	config_defaults(&again);
	CHECK(config_parse("fuzz.yaml", text, yaml_len, fuzz_getenv, &again, err2, sizeof err2) == ok);
	if (!ok)
		CHECK(strcmp(err, err2) == 0);

	/* SIGHUP in both directions: whatever it applies must still hold. */
	if (ok) {
		char applied[1024], ignored[512];
		config_defaults(&defaults);
		config_reload(&defaults, &cfg, applied, sizeof applied, ignored, sizeof ignored);
		check_config(&defaults);
		config_reload(&again, &defaults, applied, sizeof applied, ignored, sizeof ignored);
		check_config(&again);
		config_free(&defaults);
	}
	config_free(&again);
	config_free(&cfg);
	free(text);
	return 0;
}
