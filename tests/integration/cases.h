/* cases: what the integration test cases share: the per-test context and
 * the steps they are built from (start walcount, wait for its slot, run the
 * workload, wait until caught up, check drift). Each step returns false
 * after recording the first failure reason in the context. */
#ifndef IT_CASES_H
#define IT_CASES_H

#include <stdbool.h>
#include <stdint.h>

#include "expect.h"
#include "harness.h"
#include "workload.h"

#define ACTIVE_SQL "SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND active)"
#define INACTIVE_SQL "SELECT NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND active)"
#define CAUGHT_UP_TIMEOUT 120
#define STOP_TIMEOUT 30

extern uint64_t seed;

/* Config keys a test sets; 0 / NULL leaves the test default. */
struct wc_opts {
	long max_changes, max_keys;
	const char *max_delay;
	const char *heartbeat;      /* slot.heartbeat_interval */
	const char *metrics_listen; /* default "" (off) */
	const char *user;           /* default postgres */
	const char *password_file;
	const char *log_level;            /* default info */
	const char *log_format;           /* log.format; default text */
	const char *dsn_extra;            /* appended to the DSN */
	const char *checkpoint_interval;  /* checkpoint.interval; default 10m */
	bool reconcile;                   /* reconcile.enabled; default false */
	const char *chunk_time;           /* reconcile.chunk_time; default walcount's */
	const char *refresh;              /* slot.refresh_interval; default 5s */
	const char *release_wait;         /* slot.release_wait; default 15s */
	const char *create_report_after;  /* slot.create_report_after; default 5s */
	const char *metrics_idle_timeout; /* metrics.idle_timeout; default 10s */
	long workers;                     /* apply.workers; default IT_WORKERS, else 1 */
	const char *decode_workers;       /* decode.workers; default $IT_DECODE_WORKERS, else walcount's */
};

struct ctx {
	char db[64]; /* database and slot name (it_...) */
	PGconn *conn;
	struct walcount wc;
	struct workload wl;
	uint64_t rng; /* the test's own choices: chunk sizes, sleeps */
	int markers;
	char details[1024];
	char reason[IT_ERRLEN];
};

bool fail(struct ctx *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool fail_err(struct ctx *t, const char *what, const char *err);
bool configure(struct ctx *t, const struct wc_opts *o);
bool wait_slot(struct ctx *t, bool active, double timeout_s);
bool start(struct ctx *t);
bool start_streaming(struct ctx *t);
bool stop_clean(struct ctx *t);
bool kill_hard(struct ctx *t);
bool run_changes(struct ctx *t, long target, bool reconnect);
bool marker(struct ctx *t, struct it_mark *m);
bool wait_applied(struct ctx *t, const struct it_mark *m, double timeout_s);
bool caught_up(struct ctx *t, double timeout_s);
bool drift_zero(struct ctx *t);
/* Ends the walsender holding t's slot (waiting up to 60 s for one). With
 * must, a walsender that went away by itself meanwhile is a failure. */
bool terminate_walsender(struct ctx *t, bool must);
/* How often needle occurs in text (NULL: 0). */
int count_in(const char *text, const char *needle);
/* How often needle occurs in the file at path (unreadable: 0). */
int count_in_file(const char *path, const char *needle);
/* Runs bin/walcount with args (NULL-terminated, after the program name) to
 * its exit, 30 s at most; stdout and stderr go to IT_TMP/LABEL.out/.err and
 * into *out and *errtext (malloc'd, the caller frees). */
bool run_walcount(struct ctx *t, const char *label, const char *const *args, int *status, char **out, char **errtext);
/* The same for any program: argv[0] is its path. */
bool run_program(struct ctx *t, const char *label, const char *const *argv, int *status, char **out, char **errtext);
/* HTTP/1.0 GET on 127.0.0.1:port; returns the status code (-1 on a socket
 * error) and the body in a malloc'd *body the caller frees. */
int http_get(int port, const char *path, char **body);
/* A TCP port on loopback nothing listens on: bound, then closed (1 when
 * none could be bound). */
int closed_port(void);
/* n distinct loopback ports free to listen on, found at run time (bound to
 * port 0 together, read back, closed); false when the kernel gave none. */
bool free_ports(int *ports, int n);
/* One of them, or fails the test (0). */
int free_port(struct ctx *t);
/* IT_QUICK=1 (make check): the repetitive tests run `quick` rounds instead
 * of `full`. */
int rounds(int full, int quick);
/* Polls sql (one boolean; $1, when used, is the test's database and slot
 * name) until it is true; fails with `what` and the last value of `show`
 * (a one-value query, the same $1) when it is not within timeout_s. */
bool poll_until(struct ctx *t, const char *what, const char *sql, const char *show, double timeout_s);

/* slot_tests.c: PRELOAD_ROWS source rows (and wrong aggregates) for an
 * initial load that takes a while; a writer child process running the
 * workload for `changes` changes, and its end. */
bool preload(struct ctx *t, long *rows);
pid_t start_writer(struct ctx *t, long changes);
bool writer_done(struct ctx *t, pid_t pid);

/* walcount.progress holds `want` rows for t's slot: one per partition
 * (apply.workers). */
bool progress_rows(struct ctx *t, long want);

/* GET /metrics on 127.0.0.1:port: the value of series, -1 when absent. */
double metric(int port, const char *series);

/* The test cases (registry.h). */
#define IT_TEST(name, db) bool test_##name(struct ctx *t);
#include "registry.h"
#undef IT_TEST

#endif
