/* Unit tests for config.c: defaults, YAML values, WALCOUNT_* overrides and
 * the exact one-line errors operators see. Run from the repository root. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

/* ---- helpers ---- */

struct env_var {
	const char *name, *value;
};

/* The environment config_parse sees: a {NULL, NULL}-terminated list. */
static const struct env_var *fake_env;

static const char *fake_getenv(const char *name)
{
	for (const struct env_var *v = fake_env; v && v->name; v++)
		if (strcmp(v->name, name) == 0)
			return v->value;
	return NULL;
}

/* Defaults, then yaml and env; the parse must succeed. Caller frees cfg. */
static void parse_ok(const char *yaml, const struct env_var *env, struct config *cfg)
{
	char err[512] = "";

	config_defaults(cfg);
	fake_env = env;
	if (!config_parse("config.yaml", yaml, strlen(yaml), fake_getenv, cfg, err, sizeof err))
		fail_msg("unexpected error: %s", err);
}

/* Defaults, then yaml and env; the parse must fail with exactly want. */
static void expect_error(const char *yaml, const struct env_var *env, const char *want)
{
	struct config cfg;
	char err[512] = "";

	config_defaults(&cfg);
	fake_env = env;
	assert_false(config_parse("config.yaml", yaml, strlen(yaml), fake_getenv, &cfg, err, sizeof err));
	assert_string_equal(err, want);
	config_free(&cfg);
}

static void assert_same_string(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static void assert_config_equal(const struct config *a, const struct config *b)
{
	assert_same_string(a->database_dsn, b->database_dsn);
	assert_same_string(a->database_password_file, b->database_password_file);
	assert_same_string(a->slot_name, b->slot_name);
	assert_int_equal(a->slot_temporary, b->slot_temporary);
	assert_int_equal(a->batch_max_changes, b->batch_max_changes);
	assert_int_equal(a->batch_max_delay_ms, b->batch_max_delay_ms);
	assert_int_equal(a->batch_max_keys, b->batch_max_keys);
	assert_int_equal(a->apply_workers, b->apply_workers);
	assert_int_equal(a->checkpoint_interval_ms, b->checkpoint_interval_ms);
	assert_int_equal(a->reconcile_enabled, b->reconcile_enabled);
	assert_int_equal(a->reconcile_chunk_rows, b->reconcile_chunk_rows);
	assert_int_equal(a->reconcile_chunk_time_ms, b->reconcile_chunk_time_ms);
	assert_same_string(a->metrics_listen, b->metrics_listen);
	assert_int_equal(a->log_level, b->log_level);
	assert_int_equal(a->log_format, b->log_format);
	assert_int_equal(a->stream_status_interval_ms, b->stream_status_interval_ms);
	assert_int_equal(a->stream_reconnect_min_ms, b->stream_reconnect_min_ms);
	assert_int_equal(a->stream_reconnect_max_ms, b->stream_reconnect_max_ms);
	assert_int_equal(a->stream_connect_attempts, b->stream_connect_attempts);
	assert_int_equal(a->decode_workers, b->decode_workers);
}

/* Parses yaml and checks it leaves every key at its default. */
static void assert_parses_to_defaults(const char *yaml)
{
	struct config cfg, def;

	parse_ok(yaml, NULL, &cfg);
	config_defaults(&def);
	assert_config_equal(&cfg, &def);
	config_free(&cfg);
	config_free(&def);
}

/* ---- good input ---- */

static void test_defaults(void **state)
{
	struct config cfg;

	(void) state;
	config_defaults(&cfg);
	assert_string_equal(cfg.database_dsn, "host=localhost port=5432 dbname=audius user=walcount");
	assert_null(cfg.database_password_file);
	assert_string_equal(cfg.slot_name, "walcount");
	assert_false(cfg.slot_temporary);
	assert_int_equal(cfg.batch_max_changes, 10000);
	assert_int_equal(cfg.batch_max_delay_ms, 200);
	assert_int_equal(cfg.batch_max_keys, 100000);
	assert_int_equal(cfg.apply_workers, 1);
	assert_int_equal(cfg.checkpoint_interval_ms, 10 * 60 * 1000);
	assert_true(cfg.reconcile_enabled);
	assert_int_equal(cfg.reconcile_chunk_rows, 50000);
	assert_int_equal(cfg.reconcile_chunk_time_ms, 40);
	assert_string_equal(cfg.metrics_listen, "127.0.0.1:9187");
	assert_int_equal(cfg.log_level, LOG_INFO);
	assert_int_equal(cfg.log_format, LOG_TEXT);
	assert_int_equal(cfg.stream_status_interval_ms, 10 * 1000);
	assert_int_equal(cfg.stream_reconnect_min_ms, 200);
	assert_int_equal(cfg.stream_reconnect_max_ms, 30 * 1000);
	assert_int_equal(cfg.stream_connect_attempts, 10);
	assert_int_equal(cfg.decode_workers, 2);
	config_free(&cfg);
}

static void test_empty_input_means_defaults(void **state)
{
	(void) state;
	assert_parses_to_defaults("");
	assert_parses_to_defaults("# only a comment\n\n");
	assert_parses_to_defaults("---\n");
	assert_parses_to_defaults("batch:\n# every key commented out\n");
}

static void test_full_file(void **state)
{
	static const char yaml[] = "database:\n"
				   "  dsn: \"host=db port=5433 dbname=x user=y\"\n"
				   "  password_file: /run/secrets/pg\n"
				   "slot:\n"
				   "  name: walcount_2\n"
				   "  temporary: yes\n"
				   "batch:\n"
				   "  max_changes: 500\n"
				   "  max_delay: 1s\n"
				   "  max_keys: 8\n"
				   "checkpoint:\n"
				   "  interval: 1h\n"
				   "reconcile:\n"
				   "  enabled: off\n"
				   "  chunk_rows: 1000\n"
				   "  chunk_time: 250ms\n"
				   "metrics:\n"
				   "  listen: \"\"\n"
				   "log:\n"
				   "  level: debug\n"
				   "  format: json\n"
				   "stream:\n"
				   "  status_interval: 5s\n"
				   "  reconnect_min: 1s\n"
				   "  reconnect_max: 2m\n"
				   "  connect_attempts: 3\n"
				   "decode:\n"
				   "  workers: 4\n";
	struct config cfg;

	(void) state;
	parse_ok(yaml, NULL, &cfg);
	assert_string_equal(cfg.database_dsn, "host=db port=5433 dbname=x user=y");
	assert_string_equal(cfg.database_password_file, "/run/secrets/pg");
	assert_string_equal(cfg.slot_name, "walcount_2");
	assert_true(cfg.slot_temporary);
	assert_int_equal(cfg.batch_max_changes, 500);
	assert_int_equal(cfg.batch_max_delay_ms, 1000);
	assert_int_equal(cfg.batch_max_keys, 8);
	assert_int_equal(cfg.checkpoint_interval_ms, 3600 * 1000);
	assert_false(cfg.reconcile_enabled);
	assert_int_equal(cfg.reconcile_chunk_rows, 1000);
	assert_int_equal(cfg.reconcile_chunk_time_ms, 250);
	assert_string_equal(cfg.metrics_listen, "");
	assert_int_equal(cfg.log_level, LOG_DEBUG);
	assert_int_equal(cfg.log_format, LOG_JSON);
	assert_int_equal(cfg.stream_status_interval_ms, 5000);
	assert_int_equal(cfg.stream_reconnect_min_ms, 1000);
	assert_int_equal(cfg.stream_reconnect_max_ms, 120 * 1000);
	assert_int_equal(cfg.stream_connect_attempts, 3);
	assert_int_equal(cfg.decode_workers, 4);
	config_free(&cfg);
}

static void test_duration_units(void **state)
{
	static const struct {
		const char *yaml;
		int64_t ms;
	} cases[] = {
		{"batch:\n  max_delay: 250ms\n", 250},
		{"batch:\n  max_delay: 3s\n", 3000},
		{"batch:\n  max_delay: 2m\n", 2 * 60 * 1000},
		{"batch:\n  max_delay: 1h\n", 60 * 60 * 1000},
	};
	struct config cfg;

	(void) state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		parse_ok(cases[i].yaml, NULL, &cfg);
		assert_int_equal(cfg.batch_max_delay_ms, cases[i].ms);
		config_free(&cfg);
	}
}

static void test_bool_spellings(void **state)
{
	static const struct {
		const char *yaml;
		bool value;
	} cases[] = {
		{"slot:\n  temporary: true\n", true}, {"slot:\n  temporary: True\n", true},
		{"slot:\n  temporary: on\n", true},   {"slot:\n  temporary: FALSE\n", false},
		{"slot:\n  temporary: no\n", false},  {"slot:\n  temporary: off\n", false},
	};
	struct config cfg;

	(void) state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		parse_ok(cases[i].yaml, NULL, &cfg);
		assert_int_equal(cfg.slot_temporary, cases[i].value);
		config_free(&cfg);
	}
}

/* Plain null unsets the optional path; a quoted "null" is a file name. */
static void test_password_file_null(void **state)
{
	struct config cfg;

	(void) state;
	parse_ok("database:\n  password_file: /a\n", NULL, &cfg);
	assert_string_equal(cfg.database_password_file, "/a");
	config_free(&cfg);
	parse_ok("database:\n  password_file: ~\n", NULL, &cfg);
	assert_null(cfg.database_password_file);
	config_free(&cfg);
	parse_ok("database:\n  password_file: \"null\"\n", NULL, &cfg);
	assert_string_equal(cfg.database_password_file, "null");
	config_free(&cfg);
}

/* config_parse applies over whatever cfg holds, so layers add up. */
static void test_parse_over_earlier_parse(void **state)
{
	static const char second[] = "batch:\n  max_keys: 9\n";
	struct config cfg;
	char err[256];

	(void) state;
	parse_ok("batch:\n  max_changes: 7\n", NULL, &cfg);
	assert_true(config_parse("second.yaml", second, strlen(second), NULL, &cfg, err, sizeof err));
	assert_int_equal(cfg.batch_max_changes, 7);
	assert_int_equal(cfg.batch_max_keys, 9);
	config_free(&cfg);
}

/* ---- environment ---- */

static void test_env_overrides(void **state)
{
	static const struct env_var env[] = {
		{"WALCOUNT_DATABASE_DSN", "host=envhost"},
		{"WALCOUNT_DATABASE_PASSWORD_FILE", "/env/pw"},
		{"WALCOUNT_BATCH_MAX_CHANGES", "42"},
		{"WALCOUNT_BATCH_MAX_DELAY", "3s"},
		{"WALCOUNT_SLOT_TEMPORARY", "true"},
		{"WALCOUNT_LOG_FORMAT", "json"},
		{"WALCOUNT_METRICS_LISTEN", ""},
		{"WALCOUNT_STREAM_RECONNECT_MAX", "1m"},
		{NULL, NULL},
	};
	struct config cfg;

	(void) state;
	parse_ok("", env, &cfg);
	assert_string_equal(cfg.database_dsn, "host=envhost");
	assert_string_equal(cfg.database_password_file, "/env/pw");
	assert_int_equal(cfg.batch_max_changes, 42);
	assert_int_equal(cfg.batch_max_delay_ms, 3000);
	assert_true(cfg.slot_temporary);
	assert_int_equal(cfg.log_format, LOG_JSON);
	assert_string_equal(cfg.metrics_listen, "");
	assert_int_equal(cfg.stream_reconnect_max_ms, 60 * 1000);
	config_free(&cfg);
}

/* The environment cannot spell null, so an empty optional path unsets it. */
static void test_env_empty_password_file_is_null(void **state)
{
	static const struct env_var env[] = {{"WALCOUNT_DATABASE_PASSWORD_FILE", ""}, {NULL, NULL}};
	struct config cfg;

	(void) state;
	parse_ok("database:\n  password_file: /a\n", env, &cfg);
	assert_null(cfg.database_password_file);
	config_free(&cfg);
}

static void test_env_wins_over_file(void **state)
{
	static const struct env_var env[] = {
		{"WALCOUNT_BATCH_MAX_CHANGES", "7"},
		{"WALCOUNT_LOG_LEVEL", "warn"},
		{"WALCOUNT_RECONCILE_ENABLED", "false"},
		{NULL, NULL},
	};
	struct config cfg;

	(void) state;
	parse_ok("batch:\n  max_changes: 5\n  max_keys: 20\nlog:\n  level: debug\n", env, &cfg);
	assert_int_equal(cfg.batch_max_changes, 7);
	assert_int_equal(cfg.batch_max_keys, 20); /* not overridden: the file's value */
	assert_int_equal(cfg.log_level, LOG_WARN);
	assert_false(cfg.reconcile_enabled);
	config_free(&cfg);
}

/* ---- errors: exact text, file:line:column of the key or value ---- */

static void test_error_unknown_key(void **state)
{
	(void) state;
	expect_error("slot:\n  nmae: x\n", NULL, "config.yaml:2:3: unknown key 'slot.nmae' (did you mean slot.name?)");
	expect_error("log:\n  level: info\nslots:\n  name: x\n", NULL,
		     "config.yaml:3:1: unknown key 'slots' (did you mean slot?)");
	expect_error("batch:\n  max_change: 5\n", NULL,
		     "config.yaml:2:3: unknown key 'batch.max_change' (did you mean batch.max_changes?)");
	expect_error("max_changes: 5\n", NULL, "config.yaml:1:1: unknown key 'max_changes' (did you mean batch.max_changes?)");
	/* Nothing near: no guess. */
	expect_error("batch:\n  colour: red\n", NULL, "config.yaml:2:3: unknown key 'batch.colour'");
	expect_error("batch.max_changes: 5\n", NULL, "config.yaml:1:1: key 'batch.max_changes' must be nested, not dotted");
}

static void test_error_mapping_where_scalar_expected(void **state)
{
	(void) state;
	expect_error("batch:\n  max_delay:\n    ms: 5\n", NULL,
		     "config.yaml:3:5: batch.max_delay must be a duration, not a mapping");
	expect_error("database:\n  dsn: {host: x}\n", NULL, "config.yaml:2:8: database.dsn must be a string, not a mapping");
}

static void test_error_sequence_where_scalar_expected(void **state)
{
	(void) state;
	expect_error("log:\n  level: [info]\n", NULL, "config.yaml:2:10: log.level must be a string, not a sequence");
	expect_error("batch:\n  max_changes:\n    - 1\n", NULL,
		     "config.yaml:3:5: batch.max_changes must be an integer, not a sequence");
}

static void test_error_section_or_top_not_mapping(void **state)
{
	(void) state;
	expect_error("database: foo\n", NULL, "config.yaml:1:11: database must be a mapping");
	expect_error("- a\n- b\n", NULL, "config.yaml:1:1: the top level must be a mapping");
	expect_error("just text\n", NULL, "config.yaml:1:1: the top level must be a mapping");
}

static void test_error_null_where_value_required(void **state)
{
	(void) state;
	expect_error("database:\n  dsn: ~\n", NULL, "config.yaml:2:8: database.dsn must be a string, not null");
	expect_error("batch:\n  max_keys: null\n", NULL, "config.yaml:2:13: batch.max_keys must be an integer, not null");
}

static void test_error_out_of_range(void **state)
{
	(void) state;
	expect_error("batch:\n  max_changes: 0\n", NULL, "config.yaml:2:16: batch.max_changes must be > 0");
	expect_error("batch:\n  max_keys: 7\n", NULL, "config.yaml:2:13: batch.max_keys must be >= 8");
	expect_error("apply:\n  workers: 0\n", NULL, "config.yaml:2:12: apply.workers must be > 0");
	expect_error("apply:\n  workers: 65\n", NULL, "config.yaml:2:12: apply.workers must be <= 64");
	expect_error("reconcile:\n  chunk_rows: -3\n", NULL, "config.yaml:2:15: reconcile.chunk_rows must be > 0");
	expect_error("reconcile:\n  chunk_time: 0s\n", NULL, "config.yaml:2:15: reconcile.chunk_time must be > 0");
	expect_error("reconcile:\n  chunk_time: 2m\n", NULL, "config.yaml:2:15: reconcile.chunk_time must be <= 60000ms");
	expect_error("decode:\n  workers: -1\n", NULL, "config.yaml:2:12: decode.workers must be >= 0");
	expect_error("decode:\n  workers: 65\n", NULL, "config.yaml:2:12: decode.workers must be <= 64");
	expect_error("checkpoint:\n  interval: 0s\n", NULL, "config.yaml:2:13: checkpoint.interval must be > 0");
	expect_error("batch:\n  max_changes: 99999999999999999999\n", NULL,
		     "config.yaml:2:16: batch.max_changes: '99999999999999999999' is out of range");
	expect_error("batch:\n  max_delay: 9999999999999999h\n", NULL,
		     "config.yaml:2:14: batch.max_delay: '9999999999999999h' is out of range");
}

static void test_error_bad_integer(void **state)
{
	(void) state;
	expect_error("batch:\n  max_changes: 10k\n", NULL, "config.yaml:2:16: batch.max_changes: bad integer '10k'");
	expect_error("batch:\n  max_changes: +5\n", NULL, "config.yaml:2:16: batch.max_changes: bad integer '+5'");
	expect_error("batch:\n  max_changes: 1.5\n", NULL, "config.yaml:2:16: batch.max_changes: bad integer '1.5'");
}

static void test_size_units(void **state)
{
	static const struct {
		const char *yaml;
		int64_t bytes;
	} cases[] = {
		{"status:\n  lag_warning: 512B\n", 512},
		{"status:\n  lag_warning: 8kB\n", 8 << 10},
		{"status:\n  lag_warning: 64MB\n", INT64_C(64) << 20},
		{"status:\n  lag_warning: 2GB\n", INT64_C(2) << 30},
		{"status:\n  lag_warning: 1TB\n", INT64_C(1) << 40},
	};
	struct config cfg;

	(void) state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		parse_ok(cases[i].yaml, NULL, &cfg);
		assert_int_equal(cfg.status_lag_warning, cases[i].bytes);
		config_free(&cfg);
	}
}

static void test_error_bad_size(void **state)
{
	(void) state;
	/* PostgreSQL's spelling: kB, not KB; and a unit is required. */
	expect_error("status:\n  lag_warning: 8KB\n", NULL,
		     "config.yaml:2:16: status.lag_warning: bad size '8KB' (use B, kB, MB, GB or TB)");
	expect_error("status:\n  lag_warning: 100\n", NULL,
		     "config.yaml:2:16: status.lag_warning: bad size '100' (use B, kB, MB, GB or TB)");
	expect_error("status:\n  lag_warning: 99999999TB\n", NULL,
		     "config.yaml:2:16: status.lag_warning: '99999999TB' is out of range");
}

static void test_reload(void **state)
{
	struct config live, fresh;
	char applied[256], ignored[256];

	(void) state;
	parse_ok("", NULL, &live);
	parse_ok("database:\n  dsn: \"host=elsewhere\"\nbatch:\n  max_delay: 50ms\nlog:\n  level: debug\n"
		 "metrics:\n  listen: \"\"\n",
		 NULL, &fresh);
	config_reload(&live, &fresh, applied, sizeof applied, ignored, sizeof ignored);
	assert_string_equal(applied, "batch.max_delay, log.level");
	assert_string_equal(ignored, "database.dsn, metrics.listen");
	assert_int_equal(live.batch_max_delay_ms, 50);
	assert_int_equal(live.log_level, LOG_DEBUG);
	assert_string_equal(live.database_dsn, "host=localhost port=5432 dbname=audius user=walcount");
	assert_string_equal(live.metrics_listen, "127.0.0.1:9187");
	/* A second reload of the same file changes nothing more. */
	config_reload(&live, &fresh, applied, sizeof applied, ignored, sizeof ignored);
	assert_string_equal(applied, "");
	config_free(&live);
	config_free(&fresh);
}

static void test_error_bad_duration(void **state)
{
	(void) state;
	expect_error("batch:\n  max_delay: 5x\n", NULL,
		     "config.yaml:2:14: batch.max_delay: bad duration '5x' (use ms, s, m or h)");
	expect_error("batch:\n  max_delay: ms\n", NULL,
		     "config.yaml:2:14: batch.max_delay: bad duration 'ms' (use ms, s, m or h)");
	expect_error("stream:\n  status_interval: 10 s\n", NULL,
		     "config.yaml:2:20: stream.status_interval: bad duration '10 s' (use ms, s, m or h)");
}

static void test_error_bare_integer_duration(void **state)
{
	(void) state;
	expect_error("batch:\n  max_delay: 5\n", NULL, "config.yaml:2:14: batch.max_delay: bad duration '5' (use ms, s, m or h)");
}

static void test_error_bad_bool(void **state)
{
	(void) state;
	expect_error("slot:\n  temporary: maybe\n", NULL,
		     "config.yaml:2:14: slot.temporary: bad boolean 'maybe' (use true or false)");
}

static void test_error_bad_enum(void **state)
{
	(void) state;
	expect_error("log:\n  level: verbose\n", NULL,
		     "config.yaml:2:10: log.level: bad value 'verbose' (use error, warn, info or debug)");
	expect_error("log:\n  format: xml\n", NULL, "config.yaml:2:11: log.format: bad value 'xml' (use text or json)");
}

static void test_error_bad_slot_name(void **state)
{
	static const char hint[] = "(use 1 to 63 characters of a-z, 0-9 and _)";
	char yaml[128], want[256];

	(void) state;
	snprintf(want, sizeof want, "config.yaml:2:9: slot.name: bad value 'Wal-Count' %s", hint);
	expect_error("slot:\n  name: Wal-Count\n", NULL, want);
	snprintf(want, sizeof want, "config.yaml:2:9: slot.name: bad value '' %s", hint);
	expect_error("slot:\n  name: \"\"\n", NULL, want);
	snprintf(yaml, sizeof yaml, "slot:\n  name: %064d\n", 0);
	snprintf(want, sizeof want, "config.yaml:2:9: slot.name: bad value '%064d' %s", 0, hint);
	expect_error(yaml, NULL, want);
}

static void test_error_yaml_syntax(void **state)
{
	(void) state;
	expect_error("slot:\n  name: a: b\n", NULL, "config.yaml:2:10: mapping values are not allowed in this context");
	expect_error("batch:\n  max_changes: 1\n max_delay: 2s\n", NULL,
		     "config.yaml:3:2: did not find expected key (while parsing a block mapping at 1:1)");
	expect_error("log: [info\n", NULL,
		     "config.yaml:2:1: did not find expected ',' or ']' (while parsing a flow sequence at 1:6)");
	expect_error("log:\n  level: \"info\xff\"\n", NULL, "config.yaml:2:15: invalid leading UTF-8 octet");
}

static void test_error_second_document(void **state)
{
	(void) state;
	expect_error("log:\n  level: info\n---\nlog:\n  level: debug\n", NULL,
		     "config.yaml:4:1: only one YAML document is allowed");
}

static void test_error_key_not_scalar(void **state)
{
	(void) state;
	expect_error("? [a, b]\n: 1\n", NULL, "config.yaml:1:3: a key must be a scalar");
}

static void test_error_nul_byte(void **state)
{
	(void) state;
	expect_error("database:\n  dsn: \"a\\0b\"\n", NULL, "config.yaml:2:8: database.dsn must not contain a NUL byte");
}

static void test_error_duplicate_key(void **state)
{
	(void) state;
	expect_error("batch:\n  max_changes: 1\n  max_changes: 2\n", NULL, "config.yaml:3:3: duplicate key 'batch.max_changes'");
	expect_error("batch:\n  max_changes: 1\nbatch:\n  max_keys: 9\n", NULL, "config.yaml:3:1: duplicate key 'batch'");
}

static void test_error_reconnect_max_below_min(void **state)
{
	static const struct env_var env[] = {{"WALCOUNT_STREAM_RECONNECT_MAX", "100ms"}, {NULL, NULL}};

	(void) state;
	/* Blamed on reconnect_max where it was set... */
	expect_error("stream:\n  reconnect_min: 5s\n  reconnect_max: 1s\n", NULL,
		     "config.yaml:3:18: stream.reconnect_max (1000ms) must be >= stream.reconnect_min (5000ms)");
	expect_error("", env,
		     "WALCOUNT_STREAM_RECONNECT_MAX: stream.reconnect_max (100ms) must be >= stream.reconnect_min (200ms)");
	/* ...else on reconnect_min, the value that moved. */
	expect_error("stream:\n  reconnect_min: 1m\n", NULL,
		     "config.yaml:2:18: stream.reconnect_max (30000ms) must be >= stream.reconnect_min (60000ms)");
}

static void test_error_bad_env_value(void **state)
{
	static const struct env_var keys[] = {{"WALCOUNT_BATCH_MAX_KEYS", "7"}, {NULL, NULL}};
	static const struct env_var delay[] = {{"WALCOUNT_BATCH_MAX_DELAY", "5"}, {NULL, NULL}};
	static const struct env_var level[] = {{"WALCOUNT_LOG_LEVEL", "loud"}, {NULL, NULL}};
	static const struct env_var slot[] = {{"WALCOUNT_SLOT_NAME", "a.b"}, {NULL, NULL}};
	static const struct env_var workers[] = {{"WALCOUNT_DECODE_WORKERS", "1000"}, {NULL, NULL}};

	(void) state;
	expect_error("", keys, "WALCOUNT_BATCH_MAX_KEYS: batch.max_keys must be >= 8");
	expect_error("batch:\n  max_delay: 1s\n", delay,
		     "WALCOUNT_BATCH_MAX_DELAY: batch.max_delay: bad duration '5' (use ms, s, m or h)");
	expect_error("", level, "WALCOUNT_LOG_LEVEL: log.level: bad value 'loud' (use error, warn, info or debug)");
	expect_error("", workers, "WALCOUNT_DECODE_WORKERS: decode.workers must be <= 64");
	expect_error("", slot, "WALCOUNT_SLOT_NAME: slot.name: bad value 'a.b' (use 1 to 63 characters of a-z, 0-9 and _)");
}

/* ---- the environment's WALCOUNT_* names ---- */

static void expect_env_refused(const char *var, const char *want)
{
	char copy[128], err[256] = "";
	char *env[] = {"PATH=/bin", copy, "HOME=/root", NULL};

	snprintf(copy, sizeof copy, "%s", var);
	assert_false(config_check_env(env, err, sizeof err));
	assert_string_equal(err, want);
}

static void test_check_env(void **state)
{
	char *fine[] = {"PATH=/bin", "WALCOUNT_BATCH_MAX_CHANGES=5", "WALCOUNT_DATABASE_DSN=host=x port=1",
			"WALCOUNT_CONFIG=/etc/walcount.yaml", "WALCOUNT_LOCAL_PORT=5500", "WALCOUNT_LOCAL_DIR=/tmp/pg",
			"WALCOUNT_BIN=bin/walcount", "walcount_batch_max_change=5", /* another prefix: not ours */
			"XWALCOUNT_FOO=1",
			/* Other tools' names: Kubernetes and Docker links for a
			 * service named walcount. */
			"WALCOUNT_SERVICE_HOST=10.0.0.1", "WALCOUNT_SERVICE_PORT=9187", "WALCOUNT_PORT=tcp://10.0.0.1:9187",
			"WALCOUNT_PORT_9187_TCP_ADDR=10.0.0.1", "WALCOUNT_FOO=1", NULL};
	char err[256] = "";

	(void) state;
	assert_true(config_check_env(fine, err, sizeof err));
	assert_true(config_check_env(NULL, err, sizeof err));
	expect_env_refused("WALCOUNT_BATCH_MAX_CHANGE=5",
			   "WALCOUNT_BATCH_MAX_CHANGE: unknown variable (did you mean WALCOUNT_BATCH_MAX_CHANGES?)");
	expect_env_refused("WALCOUNT_DATABSE_DSN=host=x",
			   "WALCOUNT_DATABSE_DSN: unknown variable (did you mean WALCOUNT_DATABASE_DSN?)");
	expect_env_refused("WALCOUNT_CONFG=x", "WALCOUNT_CONFG: unknown variable (did you mean WALCOUNT_CONFIG?)");
	expect_env_refused("WALCOUNT_PASSWORD_FILE=/pw",
			   "WALCOUNT_PASSWORD_FILE: unknown variable (did you mean WALCOUNT_DATABASE_PASSWORD_FILE?)");
	expect_env_refused("WALCOUNT_BATCH_FOO=1", "WALCOUNT_BATCH_FOO: unknown variable");
	expect_env_refused("WALCOUNT_LOG_=1", "WALCOUNT_LOG_: unknown variable");
}

/* ---- where each value came from, and how it reads back ---- */

/* Key index of path, through config_item. */
static size_t key_index(const char *path)
{
	struct config def;
	struct config_item it;
	char value[64];

	config_defaults(&def);
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		config_item(&def, i, &it, value, sizeof value);
		if (strcmp(it.path, path) == 0) {
			config_free(&def);
			return i;
		}
	}
	fail_msg("no key %s", path);
	return 0;
}

static void assert_item(const struct config *cfg, const char *path, const char *value, enum config_source source, unsigned line,
			unsigned column)
{
	struct config_item it;
	char got[256];

	config_item(cfg, key_index(path), &it, got, sizeof got);
	assert_string_equal(it.path, path);
	assert_string_equal(got, value);
	assert_int_equal(it.origin.source, source);
	assert_int_equal(it.origin.line, line);
	assert_int_equal(it.origin.column, column);
}

static void test_origins_and_values(void **state)
{
	static const struct env_var env[] = {{"WALCOUNT_BATCH_MAX_DELAY", "90s"}, {NULL, NULL}};
	static const char yaml[] = "batch:\n  max_delay: 1s\n  max_changes: 7\n"
				   "status:\n  lag_warning: 2048kB\n  lag_critical: 1536kB\n"
				   "checkpoint:\n  interval: 120m\n";
	struct config cfg;
	struct config_item it;
	char value[256];

	(void) state;
	parse_ok(yaml, env, &cfg);
	assert_item(&cfg, "batch.max_delay", "90s", CONFIG_ENV, 0, 0);
	assert_item(&cfg, "batch.max_changes", "7", CONFIG_FILE, 3, 16);
	assert_item(&cfg, "status.lag_warning", "2MB", CONFIG_FILE, 5, 16);
	assert_item(&cfg, "status.lag_critical", "1536kB", CONFIG_FILE, 6, 17);
	assert_item(&cfg, "checkpoint.interval", "2h", CONFIG_FILE, 8, 13);
	assert_item(&cfg, "batch.max_keys", "100000", CONFIG_DEFAULT, 0, 0);
	assert_item(&cfg, "slot.temporary", "false", CONFIG_DEFAULT, 0, 0);
	assert_item(&cfg, "log.format", "text", CONFIG_DEFAULT, 0, 0);
	assert_item(&cfg, "stream.reconnect_min", "200ms", CONFIG_DEFAULT, 0, 0);
	config_item(&cfg, key_index("database.password_file"), &it, value, sizeof value);
	assert_true(it.null && it.string && !it.conninfo);
	assert_string_equal(it.env, "WALCOUNT_DATABASE_PASSWORD_FILE");
	config_item(&cfg, key_index("database.dsn"), &it, value, sizeof value);
	assert_true(!it.null && it.string && it.conninfo);
	assert_string_equal(value, "host=localhost port=5432 dbname=audius user=walcount");
	config_free(&cfg);
}

/* Every key's value, read back and parsed again, is the same value. */
static void test_values_round_trip(void **state)
{
	struct config def, again;
	struct config_item it;
	char value[256], yaml[512], err[256];

	(void) state;
	config_defaults(&def);
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		config_item(&def, i, &it, value, sizeof value);
		if (it.null)
			continue;
		size_t dot = strcspn(it.path, ".");
		snprintf(yaml, sizeof yaml, "%.*s:\n  %s: '%s'\n", (int) dot, it.path, it.path + dot + 1, value);
		config_defaults(&again);
		if (!config_parse("x.yaml", yaml, strlen(yaml), NULL, &again, err, sizeof err))
			fail_msg("%s: %s", it.path, err);
		assert_config_equal(&again, &def);
		config_free(&again);
	}
	config_free(&def);
}

/* ---- config_load ---- */

static void test_load_missing_file(void **state)
{
	struct config cfg;
	char err[256];

	(void) state;
	assert_false(config_load("tests/data/no-such-config.yaml", NULL, &cfg, err, sizeof err));
	assert_string_equal(err, "tests/data/no-such-config.yaml: cannot read: No such file or directory");
	config_free(&cfg);
	assert_false(config_load("tests", NULL, &cfg, err, sizeof err));
	assert_string_equal(err, "tests: cannot read: Is a directory");
	config_free(&cfg);
}

/* ---- limits: size, nesting and anchors fail fast, before libyaml's
 * quadratic paths (17 s for 100 KB of '[' without them) ---- */

/* n copies of unit after prefix, then suffix; malloc'd. */
static char *repeat(const char *prefix, const char *unit, size_t n, const char *suffix)
{
	size_t p = strlen(prefix), u = strlen(unit), s = strlen(suffix);
	char *text = malloc(p + n * u + s + 1);

	assert_non_null(text);
	memcpy(text, prefix, p);
	for (size_t i = 0; i < n; i++)
		memcpy(text + p + i * u, unit, u);
	memcpy(text + p + n * u, suffix, s + 1);
	return text;
}

static void expect_error_text(char *yaml, const char *want)
{
	expect_error(yaml, NULL, want);
	free(yaml);
}

static void test_error_file_too_big(void **state)
{
	char path[] = "/tmp/walcount-test-config-XXXXXX", want[256], err[256];
	struct config cfg;
	int fd;

	(void) state;
	expect_error_text(repeat("", " ", CONFIG_MAX_BYTES + 1, ""),
			  "config.yaml: file is 65537 bytes, more than the 64 KiB limit");
	/* 10 MB on disk is named by its size without being read. */
	assert_true((fd = mkstemp(path)) >= 0);
	assert_int_equal(ftruncate(fd, 10 * 1024 * 1024), 0);
	close(fd);
	assert_false(config_load(path, NULL, &cfg, err, sizeof err));
	unlink(path);
	snprintf(want, sizeof want, "%s: file is 10485760 bytes, more than the 64 KiB limit", path);
	assert_string_equal(err, want);
	config_free(&cfg);
}

static void test_error_nesting_too_deep(void **state)
{
	(void) state;
	expect_error_text(repeat("", "[", CONFIG_MAX_BYTES, ""), "config.yaml:1:33: nesting deeper than 32 levels");
	expect_error_text(repeat("", "{", CONFIG_MAX_BYTES, ""), "config.yaml:1:33: nesting deeper than 32 levels");
	expect_error_text(repeat("batch: ", "[", 60000, ""), "config.yaml:1:39: nesting deeper than 32 levels");
	expect_error_text(repeat("", "- ", 30000, "1"), "config.yaml:1:65: nesting deeper than 32 levels");
}

static void test_error_too_many_anchors(void **state)
{
	(void) state;
	expect_error_text(repeat("x: [&a 1", ", *a", 100, "]"), "config.yaml:1:407: more than 100 anchors and aliases");
	expect_error_text(repeat("x: [&a 1", ", *a", 99, "]"), "config.yaml:1:1: unknown key 'x'");
}

/* At the limits the file is parsed: the errors are the ordinary ones. */
static void test_limits_just_under(void **state)
{
	char *yaml = repeat("", "#", CONFIG_MAX_BYTES, "");
	struct config cfg;

	(void) state;
	parse_ok(yaml, NULL, &cfg);
	config_free(&cfg);
	free(yaml);
	/* The top mapping, database's and 30 more. */
	yaml = repeat("database:\n  dsn: ", "[", 30, "");
	char *full = repeat(yaml, "]", 30, "");
	free(yaml);
	expect_error_text(full, "config.yaml:2:8: database.dsn must be a string, not a sequence");
}

/* Errors from a loaded file name the path it was loaded from. */
static void test_load_names_path(void **state)
{
	char path[] = "/tmp/walcount-test-config-XXXXXX";
	static const char yaml[] = "batch:\n  max_changes: 0\n";
	struct config cfg;
	char err[256], want[256];
	int fd;

	(void) state;
	assert_true((fd = mkstemp(path)) >= 0);
	assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t) strlen(yaml));
	assert_int_equal(close(fd), 0);
	assert_false(config_load(path, NULL, &cfg, err, sizeof err));
	unlink(path);
	snprintf(want, sizeof want, "%s:2:16: batch.max_changes must be > 0", path);
	assert_string_equal(err, want);
	config_free(&cfg);
}

/* The shipped config.yaml documents the defaults; it must not drift. */
static void test_load_shipped_config_is_defaults(void **state)
{
	struct config cfg, def;
	char err[256] = "";

	(void) state;
	if (!config_load("config.yaml", NULL, &cfg, err, sizeof err))
		fail_msg("config.yaml: %s", err);
	config_defaults(&def);
	/* The one value that differs: `make run`'s local server, so that the
	 * README's commands reach it as written. */
	assert_string_equal(cfg.database_dsn, "host=127.0.0.1 port=5499 dbname=audius user=postgres");
	free(def.database_dsn);
	def.database_dsn = strdup(cfg.database_dsn);
	assert_config_equal(&cfg, &def);
	/* The file documents every key: none may fall back to its default. */
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		struct config_item it;
		char value[256];

		config_item(&cfg, i, &it, value, sizeof value);
		if (it.origin.source != CONFIG_FILE)
			fail_msg("config.yaml: %s is missing (it must document every key)", it.path);
	}
	config_free(&cfg);
	config_free(&def);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_empty_input_means_defaults),
		cmocka_unit_test(test_full_file),
		cmocka_unit_test(test_duration_units),
		cmocka_unit_test(test_bool_spellings),
		cmocka_unit_test(test_password_file_null),
		cmocka_unit_test(test_parse_over_earlier_parse),
		cmocka_unit_test(test_env_overrides),
		cmocka_unit_test(test_env_empty_password_file_is_null),
		cmocka_unit_test(test_env_wins_over_file),
		cmocka_unit_test(test_check_env),
		cmocka_unit_test(test_origins_and_values),
		cmocka_unit_test(test_values_round_trip),
		cmocka_unit_test(test_error_unknown_key),
		cmocka_unit_test(test_error_mapping_where_scalar_expected),
		cmocka_unit_test(test_error_sequence_where_scalar_expected),
		cmocka_unit_test(test_error_section_or_top_not_mapping),
		cmocka_unit_test(test_error_null_where_value_required),
		cmocka_unit_test(test_error_out_of_range),
		cmocka_unit_test(test_error_bad_integer),
		cmocka_unit_test(test_size_units),
		cmocka_unit_test(test_reload),
		cmocka_unit_test(test_error_bad_size),
		cmocka_unit_test(test_error_bad_duration),
		cmocka_unit_test(test_error_bare_integer_duration),
		cmocka_unit_test(test_error_bad_bool),
		cmocka_unit_test(test_error_bad_enum),
		cmocka_unit_test(test_error_bad_slot_name),
		cmocka_unit_test(test_error_yaml_syntax),
		cmocka_unit_test(test_error_second_document),
		cmocka_unit_test(test_error_key_not_scalar),
		cmocka_unit_test(test_error_nul_byte),
		cmocka_unit_test(test_error_duplicate_key),
		cmocka_unit_test(test_error_reconnect_max_below_min),
		cmocka_unit_test(test_error_bad_env_value),
		cmocka_unit_test(test_load_missing_file),
		cmocka_unit_test(test_load_names_path),
		cmocka_unit_test(test_load_shipped_config_is_defaults),
		cmocka_unit_test(test_error_file_too_big),
		cmocka_unit_test(test_error_nesting_too_deep),
		cmocka_unit_test(test_error_too_many_anchors),
		cmocka_unit_test(test_limits_just_under),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
