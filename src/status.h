/* status: `walcount status [--json]`, slot and consumer health against the
 * configured thresholds (design.md §7). */
#ifndef WALCOUNT_STATUS_H
#define WALCOUNT_STATUS_H

#include <stdbool.h>

#include "config.h"

/* Exit codes, as monitoring plugins (Nagios, Icinga) read them. */
enum status_code { STATUS_OK = 0, STATUS_WARNING = 1, STATUS_CRITICAL = 2, STATUS_UNKNOWN = 3 };

/* Prints the status to stdout (an aligned table, or one JSON object with
 * json) and returns its code. Unreachable server or missing state is
 * STATUS_UNKNOWN, with the reason printed. */
enum status_code status_run(const struct config *cfg, bool json);

#endif
