/* walcount integration tests: a real walcount against a real PostgreSQL with
 * wal2json (started by tests/run.sh), checked against a recount of the
 * source tables. Each test gets its own database it_... and slot, and
 * drops the slot at the end so nothing pins WAL.
 *
 * Output: "seed=N", then per test "ok - NAME (details)" or
 * "FAIL - NAME: reason (seed=N)" plus the tail of walcount's log, and last
 * "integration: N passed, M failed". IT_SEED replays a seed; IT_ONLY
 * (comma-separated names) runs a subset. IT_QUICK=1 (make check) runs fewer
 * rounds of the repetitive tests (standby_takeover 3+3 kills instead of
 * 10+10, reconcile_no_drift 5 sweeps instead of 20, two_instances_fresh 2
 * rounds instead of 3, bi_two_consumers 6 walsender kills instead of 16,
 * huge_transaction 200,000 rows instead of 1,000,000);
 * IT_FAULT_SECONDS sets the fault loop's length; IT_DECODE_WORKERS sets
 * decode.workers for every test that does not set its own. The tests are
 * listed in registry.h. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "workload.h"

#include "cases.h"

static const struct test {
	const char *name, *db;
	bool (*run)(struct ctx *t);
} TESTS[] = {
#define IT_TEST(name, db) {#name, #db, test_##name},
#include "registry.h"
#undef IT_TEST
};

/* Drops what an earlier run left (the slot pins the database), then creates
 * the test's database from sql/schema.sql. */
static bool create_database(struct ctx *t)
{
	const char *params[1] = {t->db};
	char err[IT_ERRLEN], sql[160];
	PGconn *admin = it_connect("postgres", err, sizeof err);
	bool ok = admin != NULL;

	snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", t->db);
	ok = ok && it_exec(admin, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1", 1,
			   params, err, sizeof err);
	ok = ok && it_exec(admin, sql, 0, NULL, err, sizeof err);
	snprintf(sql, sizeof sql, "CREATE DATABASE %s", t->db);
	ok = ok && it_exec(admin, sql, 0, NULL, err, sizeof err);
	PQfinish(admin);
	ok = ok && (t->conn = it_connect(t->db, err, sizeof err)) != NULL;
	ok = ok && it_exec(t->conn, IT.schema_sql, 0, NULL, err, sizeof err);
	return ok || fail_err(t, "creating the test database", err);
}

/* Stops walcount if the test left it running (it must still stop
 * cleanly), then drops the slot whatever happened, so no WAL stays pinned. */
static bool teardown(struct ctx *t)
{
	const char *params[1] = {t->db};
	char err[IT_ERRLEN];
	bool ok = t->wc.pid == 0 || stop_clean(t);

	if (t->conn == NULL || PQstatus(t->conn) != CONNECTION_OK)
		if (!it_reconnect(&t->conn, t->db, 60, err, sizeof err))
			return fail_err(t, "reconnecting for cleanup", err);
	if (!wait_slot(t, false, 30))
		return false;
	return (it_exec(t->conn, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", 1,
			params, err, sizeof err) ||
		fail_err(t, "dropping the slot", err)) &&
	       ok;
}

static uint64_t name_hash(const char *s)
{
	uint64_t h = UINT64_C(1469598103934665603);

	for (; *s; s++)
		h = (h ^ (unsigned char) *s) * UINT64_C(1099511628211);
	return h;
}

static bool run_test(const struct test *test)
{
	static struct ctx t; /* large; one at a time */

	t = (struct ctx){0};
	snprintf(t.db, sizeof t.db, "%s", test->db);
	snprintf(t.wc.config, sizeof t.wc.config, "%s/%s.yaml", IT.tmp, test->name);
	snprintf(t.wc.log, sizeof t.wc.log, "%s/%s.log", IT.tmp, test->name);
	unlink(t.wc.log);
	/* Per-test streams: IT_ONLY=x replays the same choices as a full run. */
	t.rng = seed ^ name_hash(test->name);
	workload_init(&t.wl, rng_next(&t.rng));
	double t0 = it_now();
	bool ok = create_database(&t) && test->run(&t);
	ok = teardown(&t) && ok;
	PQfinish(t.conn);
	if (ok) {
		printf("ok - %s (%s; %.1f s)\n", test->name, t.details, it_now() - t0);
		return true;
	}
	printf("FAIL - %s: %s (seed=%" PRIu64 ")\n", test->name, t.reason, seed);
	if (t.wc.runs > 0)
		it_print_tail(t.wc.log, 20);
	return false;
}

/* IT_ONLY: comma-separated test names; unset runs everything. */
static bool selected(const struct test *test)
{
	const char *only = getenv("IT_ONLY");
	const char *name = test->name;
	size_t n = strlen(name);

	if (only == NULL || *only == '\0')
		return true;
	for (const char *p = only; *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ',')) {
		if (strcspn(p, ",") == n && strncmp(p, name, n) == 0)
			return true;
	}
	return false;
}

/* Names in IT_ONLY that match no test, so a typo fails instead of running
 * nothing. */
static int unknown_selections(void)
{
	const char *only = getenv("IT_ONLY");
	int unknown = 0;

	for (const char *p = only ? only : ""; *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ',')) {
		size_t n = strcspn(p, ",");
		bool found = false;
		for (size_t i = 0; i < sizeof TESTS / sizeof TESTS[0]; i++)
			found |= strlen(TESTS[i].name) == n && strncmp(p, TESTS[i].name, n) == 0;
		if (!found && n > 0) {
			printf("FAIL - IT_ONLY: no test named \"%.*s\" (seed=%" PRIu64 ")\n", (int) n, p, seed);
			unknown++;
		}
	}
	return unknown;
}

int main(void)
{
	char err[IT_ERRLEN];
	const char *s = getenv("IT_SEED");
	int passed = 0, failed = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	seed = s && *s ? strtoull(s, NULL, 10) : (uint64_t) time(NULL) ^ ((uint64_t) getpid() << 32);
	printf("seed=%" PRIu64 "\n", seed);
	if (!it_env_load(err, sizeof err)) {
		printf("FAIL - setup: %s (seed=%" PRIu64 ")\n", err, seed);
		failed++;
	} else {
		failed += unknown_selections();
		for (size_t i = 0; i < sizeof TESTS / sizeof TESTS[0]; i++) {
			if (selected(&TESTS[i]))
				run_test(&TESTS[i]) ? passed++ : failed++;
		}
	}
	printf("integration: %d passed, %d failed\n", passed, failed);
	return failed > 0;
}
