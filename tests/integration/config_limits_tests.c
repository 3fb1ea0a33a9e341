/* Configuration limits (issue 12 item 12): a SIGHUP with a hostile file,
 * one too big, one nested too deep, and one at both limits, is refused or
 * parsed within a bounded time, and streaming goes on: a marker committed
 * right after the reload error is applied promptly. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"

#define LIMIT_BYTES (64 * 1024)
#define PROMPT_S 10.0

/* Writes n copies of unit after prefix, then suffix, into the live config. */
static bool write_hostile(struct ctx *t, const char *prefix, const char *unit, long n, const char *suffix)
{
	FILE *f = fopen(t->wc.config, "w");

	if (f == NULL)
		return fail(t, "%s: %s", t->wc.config, strerror(errno));
	fputs(prefix, f);
	for (long i = 0; i < n; i++)
		fputs(unit, f);
	fputs(suffix, f);
	if (fclose(f) != 0)
		return fail(t, "%s: %s", t->wc.config, strerror(errno));
	return true;
}

/* Polls walcount's log for needle until deadline; false when it never came. */
static bool log_has_by(struct ctx *t, const char *needle, double deadline)
{
	for (;; it_sleep_ms(20)) {
		if (count_in_file(t->wc.log, needle) > 0)
			return true;
		if (it_now() > deadline)
			return false;
	}
}

/* SIGHUP, then the expected reload line and a marker applied, each within
 * PROMPT_S; the time from the signal to the line into *line_s and to the
 * applied marker into *applied_s. */
static bool reload_refused(struct ctx *t, const char *what, const char *want, double *line_s, double *applied_s)
{
	char needle[PATH_MAX + 512];
	struct it_mark m;

	snprintf(needle, sizeof needle, "reload: %s%s; keeping the running configuration", t->wc.config, want);
	if (!run_changes(t, 300, false))
		return false;
	double t0 = it_now();
	kill(t->wc.pid, SIGHUP);
	if (!log_has_by(t, needle, t0 + PROMPT_S))
		return fail(t, "%s: no \"%s\" in walcount's log within %.0f s of the SIGHUP", what, needle, PROMPT_S);
	*line_s = it_now() - t0;
	if (!marker(t, &m) || !wait_applied(t, &m, PROMPT_S))
		return false;
	*applied_s = it_now() - t0;
	return true;
}

bool test_config_limits(struct ctx *t)
{
	double big_l, big_a, deep_l, deep_a, edge_l, edge_a;
	char prefix[64];

	if (!configure(t, &(struct wc_opts){0}) || !start_streaming(t) || !run_changes(t, 500, false) ||
	    !caught_up(t, CAUGHT_UP_TIMEOUT))
		return false;
	/* 10 MiB of '[': over two minutes in libyaml before the caps. */
	if (!write_hostile(t, "", "[", 10L * 1024 * 1024, "") ||
	    !reload_refused(t, "10 MiB", ": file is 10485760 bytes, more than the 64 KiB limit", &big_l, &big_a))
		return false;
	if (!write_hostile(t, "", "[", LIMIT_BYTES, "") ||
	    !reload_refused(t, "64 KiB of [", ":1:33: nesting deeper than 32 levels", &deep_l, &deep_a))
		return false;
	/* At both limits: 64 KiB, 32 levels deep (the top mapping and 31 '['),
	 * 32k tokens at the deepest level. */
	snprintf(prefix, sizeof prefix, "x: %.31s", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[");
	long n = (LIMIT_BYTES - (long) strlen(prefix) - 32) / 2;
	if (!write_hostile(t, prefix, "1,", n, "1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]") ||
	    !reload_refused(t, "at the limits", ":1:1: unknown key 'x'", &edge_l, &edge_a))
		return false;
	if (!configure(t, &(struct wc_opts){0}) || !run_changes(t, 500, false) || !caught_up(t, CAUGHT_UP_TIMEOUT) ||
	    !drift_zero(t))
		return false;
	snprintf(t->details, sizeof t->details,
		 "SIGHUP to reload error line / marker applied: 10 MiB %.2f / %.2f s, 64 KiB of [ %.2f / %.2f s, "
		 "64 KiB at 32 levels %.2f / %.2f s; drift 0",
		 big_l, big_a, deep_l, deep_a, edge_l, edge_a);
	return true;
}
