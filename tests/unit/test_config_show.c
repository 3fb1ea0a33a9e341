/* Unit tests for config_show.c: `walcount config` text is config.yaml that
 * parses back to the same configuration, names each value's source, and
 * never shows a password; --json is one object per key. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_show.h"
#include "dsn.h"

static const char *fake_dsn;

static const char *fake_getenv(const char *name)
{
	return strcmp(name, "WALCOUNT_DATABASE_DSN") == 0 ? fake_dsn : NULL;
}

static void parse(const char *yaml, const char *dsn, struct config *cfg)
{
	char err[256] = "";

	config_defaults(cfg);
	fake_dsn = dsn;
	if (!config_parse("my.yaml", yaml, strlen(yaml), fake_getenv, cfg, err, sizeof err))
		fail_msg("%s", err);
}

static const char yaml[] = "batch:\n  max_delay: 1500ms\nslot:\n  name: \"s1\"\nstatus:\n  lag_warning: 3MB\n"
			   "log:\n  format: json\nmetrics:\n  listen: \"\"\n";

/* The text parses back to the same values: it is a config file. */
static void test_text_round_trips(void **state)
{
	struct config cfg, again;
	char err[256] = "";

	(void) state;
	parse(yaml, NULL, &cfg);
	char *text = config_show(&cfg, "my.yaml", false);
	assert_non_null(text);
	config_defaults(&again);
	if (!config_parse("shown.yaml", text, strlen(text), NULL, &again, err, sizeof err))
		fail_msg("%s in:\n%s", err, text);
	assert_int_equal(again.batch_max_delay_ms, 1500);
	assert_string_equal(again.slot_name, "s1");
	assert_int_equal(again.status_lag_warning, 3 << 20);
	assert_int_equal(again.log_format, LOG_JSON);
	assert_string_equal(again.metrics_listen, "");
	assert_null(again.database_password_file);
	char dsn1[512], dsn2[512];
	assert_true(dsn_redact(again.database_dsn, dsn1, sizeof dsn1));
	assert_true(dsn_redact(cfg.database_dsn, dsn2, sizeof dsn2));
	assert_string_equal(dsn1, dsn2);
	assert_non_null(strstr(text, "\n  max_delay: 1500ms"));
	assert_non_null(strstr(text, " # my.yaml:2:14\n"));
	assert_non_null(strstr(text, "\n  max_keys: 100000"));
	assert_non_null(strstr(text, " # default\n"));
	free(text);
	config_free(&cfg);
	config_free(&again);
}

/* Passwords in any DSN form are ***; the source is the variable. */
static void test_dsn_redacted(void **state)
{
	static const char *const dsns[] = {
		"host=h user=u password=hunter2",
		"postgresql://u:hunter2@h/db",
		"host=h sslpassword='hunter2' dbname='host=x password=hunter2'",
		/* Nested ones that do not parse: shown with the fragments cut. */
		"host=h dbname='postgresql://u:hunter2@h/d?bogus'",
		"host=h dbname='user=u password=hunter2 oops'",
	};

	(void) state;
	for (size_t i = 0; i < sizeof dsns / sizeof dsns[0]; i++) {
		struct config cfg;
		parse("", dsns[i], &cfg);
		for (int json = 0; json <= 1; json++) {
			char *text = config_show(&cfg, "my.yaml", json);
			assert_non_null(text);
			if (strstr(text, "hunter2"))
				fail_msg("password shown for %s:\n%s", dsns[i], text);
			assert_true(strstr(text, "***") != NULL || strstr(text, "(unparseable DSN: ") != NULL);
			assert_non_null(strstr(text, "WALCOUNT_DATABASE_DSN"));
			free(text);
		}
		config_free(&cfg);
	}
}

static void test_json(void **state)
{
	struct config cfg;
	json_error_t e;

	(void) state;
	parse(yaml, NULL, &cfg);
	char *text = config_show(&cfg, "my.yaml", true);
	json_t *root = json_loads(text, 0, &e), *keys = json_object_get(root, "keys");
	assert_non_null(root);
	assert_string_equal(json_string_value(json_object_get(root, "file")), "my.yaml");
	assert_int_equal(json_object_size(keys), CONFIG_NKEYS);
	json_t *delay = json_object_get(keys, "batch.max_delay"), *pw = json_object_get(keys, "database.password_file");
	assert_string_equal(json_string_value(json_object_get(delay, "value")), "1500ms");
	assert_string_equal(json_string_value(json_object_get(delay, "source")), "file");
	assert_string_equal(json_string_value(json_object_get(delay, "where")), "my.yaml:2:14");
	assert_true(json_is_null(json_object_get(pw, "value")));
	assert_string_equal(json_string_value(json_object_get(pw, "source")), "default");
	assert_true(json_is_null(json_object_get(pw, "where")));
	json_decref(root);
	free(text);
	config_free(&cfg);
}

/* Text that is not UTF-8 (a DSN, the file's path) is shown as "(not
 * UTF-8)" in JSON as in the text, and the rest still shown. */
static void test_json_not_utf8(void **state)
{
	struct config cfg;
	json_error_t e;

	(void) state;
	parse(yaml, "host=\xff", &cfg);
	char *text = config_show(&cfg, "caf\xe9.yaml", true);
	assert_non_null(text);
	json_t *root = json_loads(text, 0, &e), *keys = json_object_get(root, "keys");
	if (root == NULL)
		fail_msg("not JSON (%s): %s", e.text, text);
	json_t *dsn = json_object_get(keys, "database.dsn"), *delay = json_object_get(keys, "batch.max_delay");
	assert_string_equal(json_string_value(json_object_get(root, "file")), "(not UTF-8)");
	assert_string_equal(json_string_value(json_object_get(dsn, "value")), "(not UTF-8)");
	assert_string_equal(json_string_value(json_object_get(dsn, "where")), "WALCOUNT_DATABASE_DSN");
	assert_string_equal(json_string_value(json_object_get(delay, "value")), "1500ms");
	assert_string_equal(json_string_value(json_object_get(delay, "where")), "(not UTF-8)");
	json_decref(root);
	free(text);
	text = config_show(&cfg, "caf\xe9.yaml", false);
	assert_non_null(strstr(text, "\n  dsn: \"(not UTF-8)\""));
	free(text);
	config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_round_trips),
		cmocka_unit_test(test_dsn_redacted),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_json_not_utf8),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
