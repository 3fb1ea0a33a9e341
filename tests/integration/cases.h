/* cases: what the integration test cases share: the per-test context and
 * the steps they are built from (start walcount, wait for its slot, run the
 * workload, wait until caught up, check drift). Each step returns false
 * after recording the first failure reason in the context. */
#ifndef IT_CASES_H
#define IT_CASES_H

#include <stdbool.h>
#include <stdint.h>

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
	const char *log_level;      /* default info */
	const char *dsn_extra;      /* appended to the DSN */
	const char *checkpoint_interval; /* checkpoint.interval; default 10m */
	bool reconcile;             /* reconcile.enabled; default false */
};

struct ctx {
	char db[64];          /* database and slot name (it_...) */
	PGconn *conn;
	struct walcount wc;
	struct workload wl;
	uint64_t rng;         /* the test's own choices: chunk sizes, sleeps */
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
bool marker(struct ctx *t, char m[LSN_BUFLEN]);
bool wait_applied(struct ctx *t, const char m[LSN_BUFLEN], double timeout_s);
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
bool run_program(struct ctx *t, const char *label, char *const *argv, int *status, char **out, char **errtext);
/* HTTP/1.0 GET on 127.0.0.1:port; returns the status code (-1 on a socket
 * error) and the body in a malloc'd *body the caller frees. */
int http_get(int port, const char *path, char **body);
/* A TCP port on loopback nothing listens on: bound, then closed (1 when
 * none could be bound). */
int closed_port(void);

/* slot_tests.c: PRELOAD_ROWS source rows (and wrong aggregates) for an
 * initial load that takes a while; a writer child process running the
 * workload for `changes` changes, and its end. */
bool preload(struct ctx *t, long *rows);
pid_t start_writer(struct ctx *t, long changes);
bool writer_done(struct ctx *t, pid_t pid);

/* monitor_tests.c: HTTP/1.0 GET on 127.0.0.1:port; the status code (-1 on
 * a socket error), the body in a malloc'd *body the caller frees. */
int http_get(int port, const char *path, char **body);

/* The test cases, one per file group. */
bool test_random_workload(struct ctx *t);
bool test_sigkill_restarts(struct ctx *t);
bool test_reconnects(struct ctx *t);
bool test_huge_transaction(struct ctx *t);
bool test_prerequisites(struct ctx *t);
bool test_initial_load(struct ctx *t);
bool test_idle_wal_retention(struct ctx *t);
bool test_takeover(struct ctx *t);
bool test_takeover_flag(struct ctx *t);
bool test_rebuild(struct ctx *t);
bool test_drop(struct ctx *t);
bool test_metrics(struct ctx *t);
bool test_status(struct ctx *t);
bool test_least_privilege(struct ctx *t);
bool test_reload(struct ctx *t);
bool test_reconcile_drift(struct ctx *t);
bool test_reconcile_no_drift(struct ctx *t);
bool test_dominant_genre(struct ctx *t);
bool test_truncate_follows(struct ctx *t);
/* session_tests.c: a slot created past a prepared transaction, settings on
 * the database. */
bool test_slot_create_waits(struct ctx *t);
bool test_session_settings(struct ctx *t);
/* fault_tests.c: the seeded fault loop (IT_FAULT_SECONDS). */
bool test_fault_loop(struct ctx *t);
bool test_fault_partial_heartbeat(struct ctx *t);
/* owner_tests.c: issue 12's ownership, standby, requests, drop. */
bool test_two_instances_fresh(struct ctx *t);
bool test_second_slot_name(struct ctx *t);
bool test_standby_takeover(struct ctx *t);
bool test_reconcile_request(struct ctx *t);
bool test_drop_while_starting(struct ctx *t);
/* badinput_tests.c: design.md §9, one test per row. */
bool test_bi_column_added(struct ctx *t);
bool test_bi_column_dropped(struct ctx *t);
bool test_bi_table_renamed(struct ctx *t);
bool test_bi_pgoutput_slot(struct ctx *t);
bool test_bi_two_consumers(struct ctx *t);
bool test_bi_no_replication(struct ctx *t);
bool test_bi_enum_value(struct ctx *t);
bool test_bi_null_is_delete(struct ctx *t);
bool test_bi_count_overflow(struct ctx *t);
bool test_bi_server_down(struct ctx *t);
bool test_bi_config_file(struct ctx *t);
/* hostile_tests.c: hostile input (issue 12 item 9). */
bool test_hostile_metrics_flood(struct ctx *t);
/* GET /metrics on 127.0.0.1:port: the value of series, -1 when absent. */
double metric(int port, const char *series);
/* identity_tests.c: the replica identity changed while streaming. */
bool test_identity_nothing(struct ctx *t);
bool test_identity_default(struct ctx *t);
bool test_identity_sweep_new_keys(struct ctx *t);
/* config_limits_tests.c: a SIGHUP with a hostile file keeps streaming. */
bool test_config_limits(struct ctx *t);
/* startup_tests.c: a metrics port in use fails run before anything is created. */
bool test_startup_order(struct ctx *t);
/* secrets_tests.c: no DSN form prints a password on any path. */
bool test_secrets_redacted(struct ctx *t);
/* failover_tests.c: a physical standby promoted (issue 12, item 13). */
bool test_failover_switchover(struct ctx *t);
bool test_failover_lagging(struct ctx *t);
bool test_failover_diverged(struct ctx *t);
bool test_failover_identity(struct ctx *t);

#endif
