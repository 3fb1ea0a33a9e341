/* badinput: what the bad-input tests (badinput_*_tests.c, design.md §9,
 * one test per row) share. Each test asserts the exact message walcount
 * gives (or its counter) and that no count was lost; these are the steps
 * they take (badinput.c). */
#ifndef IT_BADINPUT_H
#define IT_BADINPUT_H

#include <stdbool.h>
#include <stddef.h>

#include "cases.h"

#define RUNUSER_PATH "/usr/sbin/runuser"

/* Runs a statement on the test's connection; a failure is the test's. */
bool bi_sql(struct ctx *t, const char *text);
/* walcount's log so far (malloc'd; "" when unreadable). */
char *read_log(struct ctx *t);
/* How often needle occurs in walcount's log. */
int count_in_log(struct ctx *t, const char *needle);
/* Waits until walcount's log holds needle at least n times. */
bool bi_wait_log(struct ctx *t, const char *needle, int n, double timeout_s);
/* A log line is "TIMESTAMP LEVEL MESSAGE" with the level padded to 5
 * (log.c). Writes the exact "Z LEVEL MESSAGE\n" tail into buf. */
const char *log_line(char *buf, size_t len, const char *level, const char *msg);
/* The LSN of the first log line "…PREFIX<lsn>SUFFIX" into *lsn. */
bool lsn_after(const char *text, const char *prefix, const char *suffix, lsn_t *lsn);
/* Whether walcount's log has the exact line "LEVEL BEFORE<lsn>AFTER" for an
 * LSN in [l0, l1), the change the test wrote there; fails saying what was
 * missing or which LSN it named. */
bool logged_at(struct ctx *t, const char *level, const char *before, const char *after, lsn_t l0, lsn_t l1);
/* pg_current_wal_lsn(), and walcount.progress.lsn of the test's slot. */
bool current_lsn(struct ctx *t, lsn_t *out);
bool progress_lsn(struct ctx *t, lsn_t *out);
/* A config for a second walcount process: the test's database, another
 * slot and user, and whatever extra lines (indented ones belong to the
 * stream section). */
bool bi_write_config(struct ctx *t, const char *path, const char *dsn, const char *slot, const char *extra);
/* Writes len bytes of text to path (a config file case). */
bool write_bytes(struct ctx *t, const char *path, const char *text, size_t len);
/* Runs argv to its end and wants a non-zero exit, nothing on stdout and
 * stderr whose last line ends with want_tail (the exact message, after
 * the timestamp and level when it is a log line). lines: the number of
 * stderr lines wanted, 0 for any. */
bool refused(struct ctx *t, const char *label, const char *const *argv, const char *want_tail, int lines);
/* Whether a replication slot of that name exists. */
bool slot_exists(struct ctx *t, const char *slot, bool *exists);
/* Both tests that refuse a second process's slot must leave no slot behind
 * (test_prerequisites needs none at the end). */
void drop_slot(struct ctx *t, const char *slot);
/* The drift cells as "tbl[id].col expected/actual" joined by "; ", and
 * their count (-1 on error). */
long drift_cells(struct ctx *t, char *buf, size_t len);
/* True when every count cell matches a recount; otherwise fails with
 * "WHY: N cells drift: EXAMPLES". */
bool no_drift_cells(struct ctx *t, const char *why);
/* Polls /metrics on port (10 s at most) until series equals want. */
bool metric_is(struct ctx *t, int port, const char *series, double want);

#endif
