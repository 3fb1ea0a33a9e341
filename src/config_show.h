/* config_show: `walcount config`, the effective configuration with where
 * each value came from, secrets redacted. Pure: builds text, prints none. */
#ifndef WALCOUNT_CONFIG_SHOW_H
#define WALCOUNT_CONFIG_SHOW_H

#include <stdbool.h>

#include "config.h"

/* The configuration cfg, loaded from the file at path, as YAML-style text
 * (every key under its section, a comment naming its source: "path:12:5",
 * "WALCOUNT_BATCH_MAX_DELAY" or "default") or with json as one JSON object
 * {"file": path, "keys": {"batch.max_delay": {"value": "200ms", "source":
 * "file", "where": "path:12:5"}, ...}}; source is file, env or default, and
 * where is null for a default. database.dsn is shown as libpq parses it,
 * with password and sslpassword as ***; a value or path that is not UTF-8
 * as "(not UTF-8)" (in the text, the path as it is). Returns malloc'd text
 * for the caller to free, NULL when out of memory. */
char *config_show(const struct config *cfg, const char *path, bool json);

#endif
