/* config: config.yaml (libyaml) plus WALCOUNT_* environment overrides, read
 * through one declarative table of keys in config.c. Parsing is pure; only
 * config_load touches the file system. */
#ifndef WALCOUNT_CONFIG_H
#define WALCOUNT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"

/* How many keys config.c's table has (checked there at compile time). */
#define CONFIG_NKEYS 33

/* Where a key's value came from. */
enum config_source { CONFIG_DEFAULT, CONFIG_FILE, CONFIG_ENV };

struct config_origin {
	enum config_source source;
	unsigned line, column; /* CONFIG_FILE: 1-based position of the value */
};

/* Strings are owned by the struct (config_free releases them); NULL means
 * unset. Durations are in milliseconds. */
struct config {
	char *database_dsn;
	char *database_password_file;
	char *slot_name;
	bool slot_temporary;
	int64_t slot_heartbeat_interval_ms;
	int64_t slot_refresh_interval_ms;
	int64_t slot_release_wait_ms;
	int64_t slot_create_report_after_ms;
	int64_t batch_max_changes;
	int64_t batch_max_delay_ms;
	int64_t batch_max_keys;
	int64_t apply_workers;
	int64_t checkpoint_interval_ms;
	bool reconcile_enabled;
	int64_t reconcile_chunk_rows;
	int64_t reconcile_chunk_time_ms;
	char *metrics_listen;
	int64_t metrics_idle_timeout_ms;
	int64_t status_lag_warning; /* bytes */
	int64_t status_lag_critical;
	int64_t status_retained_wal_warning;
	int64_t status_retained_wal_critical;
	int64_t status_inactive_warning_ms;
	int64_t status_inactive_critical_ms;
	int64_t status_batch_age_warning_ms;
	int64_t status_batch_age_critical_ms;
	enum log_level log_level;
	enum log_format log_format;
	int64_t stream_status_interval_ms;
	int64_t stream_reconnect_min_ms;
	int64_t stream_reconnect_max_ms;
	int64_t stream_connect_attempts;
	int64_t decode_workers;
	struct config_origin origin[CONFIG_NKEYS]; /* by key, in config_item's order */
};

/* Limits on the file, checked before libyaml builds a document, so that a
 * hostile or mistaken file fails fast at start and on SIGHUP. */
#define CONFIG_MAX_BYTES (64 * 1024) /* 16 times the shipped file; parsed in 0.05 s at worst */
#define CONFIG_MAX_DEPTH 32
#define CONFIG_MAX_ANCHORS 100 /* anchors and aliases together */

/* Looks up an environment variable; NULL when unset. getenv fits. */
typedef const char *(*config_getenv_fn)(const char *name);

/* Fills *cfg with the defaults of every key. */
void config_defaults(struct config *cfg);

/* Parses YAML text (len bytes) named `name` in messages over *cfg, which must
 * hold defaults or an earlier parse, then applies environment overrides from
 * env (may be NULL). Returns true on success. On failure returns false and
 * writes one line into err such as
 * "config.yaml:12:5: batch.max_changes must be > 0" or
 * "WALCOUNT_BATCH_MAX_DELAY: batch.max_delay: bad duration 'x' (use ms, s, m or h)";
 * text over CONFIG_MAX_BYTES, nested deeper than CONFIG_MAX_DEPTH or with
 * more than CONFIG_MAX_ANCHORS fails ("config.yaml: file is N bytes, more
 * than the 64 KiB limit", "config.yaml:1:33: nesting deeper than 32 levels",
 * "config.yaml:3:9: more than 100 anchors and aliases");
 * *cfg may then hold partly applied values and must still be config_free'd. */
bool config_parse(const char *name, const char *text, size_t len, config_getenv_fn env, struct config *cfg, char *err,
		  size_t errlen);

/* Defaults + file at path + environment. A missing file is an error naming
 * the path. Same contract as config_parse otherwise. */
bool config_load(const char *path, config_getenv_fn env, struct config *cfg, char *err, size_t errlen);

/* SIGHUP: copies every key that may change at run time from fresh into
 * live. Writes the changed keys it applied into applied and the changed
 * keys that need a restart (connection, slot, metrics listener) into
 * ignored, each as "a.b, c.d" ("" when none). */
void config_reload(struct config *live, const struct config *fresh, char *applied, size_t alen, char *ignored, size_t ilen);

void config_free(struct config *cfg);

/* Environment variables that start with WALCOUNT_ but are not keys: read by
 * main (WALCOUNT_CONFIG) or by the project's scripts, which pass their
 * environment on to walcount (scripts/run-local.sh, the integration tests).
 * NULL-terminated. */
extern const char *const config_reserved_env[];

/* Checks the names in env, environ-style "NAME=value" strings (NULL-
 * terminated): each that starts with a section's prefix (WALCOUNT_BATCH_)
 * or is near a key's variable or a reserved name must be one of them, as a
 * file may hold only known keys. On the first that is not, returns false
 * with err such as "WALCOUNT_BATCH_MAX_CHANGE: unknown variable (did you
 * mean WALCOUNT_BATCH_MAX_CHANGES?)". Other WALCOUNT_ names, and those
 * of Kubernetes' and Docker's service links (WALCOUNT_SERVICE_HOST,
 * WALCOUNT_PORT_9187_TCP), belong to other tools and pass. */
bool config_check_env(char *const *env, char *err, size_t errlen);

/* One key of the table, as `walcount config` shows it. */
struct config_item {
	const char *path; /* "batch.max_delay" */
	char env[64];     /* "WALCOUNT_BATCH_MAX_DELAY" */
	bool string;      /* the value is text, quoted when shown */
	bool conninfo;    /* a libpq connection string: show it redacted */
	bool null;        /* unset; value is "" */
	struct config_origin origin;
};

/* Describes key i (0 <= i < CONFIG_NKEYS, in config.yaml's order) of cfg
 * into *it and writes its value into value as config.yaml spells it
 * ("200ms", "64MB", "true"; strings raw, unquoted), cut at len - 1 bytes. */
void config_item(const struct config *cfg, size_t i, struct config_item *it, char *value, size_t len);

#endif
