/* workload: a seeded random mix of the write patterns walcount must count
 * exactly (audius-schema-facts.md, "How the rows are written"): upserts in
 * place (toggles and no-op redeliveries), demote-then-insert, deletes, key
 * changes, bulk demotions and non-current inserts over reposts, saves and
 * follows, in transactions of 1..8 statements (3% of 50..300), 10% of them
 * rolled back. 70% of operations hit 5 hot users and 5 hot items. */
#ifndef IT_WORKLOAD_H
#define IT_WORKLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

/* workload_run results besides a change count. */
#define WL_FAILED (-1) /* unexpected error: err says what */
#define WL_LOST \
	(-2) /* the connection broke (server restart, terminated):
			* reconnect and call again; committed work is kept */

#define WL_HOT 5

/* splitmix64: small, seedable, good enough for test choices. */
uint64_t rng_next(uint64_t *state);
/* Uniform in [lo, hi]. */
long rng_between(uint64_t *state, long lo, long hi);
bool rng_chance(uint64_t *state, int percent);

struct workload {
	uint64_t rng;
	uint64_t tag; /* with seq, makes every txhash unique */
	uint64_t seq;
	long hot_users[WL_HOT], hot_tracks[WL_HOT], hot_playlists[WL_HOT];
	long committed;    /* changes (PQcmdTuples) in committed transactions, all calls */
	long transactions; /* committed */
	long rollbacks;
	long big; /* committed transactions of 50..300 operations */
};

void workload_init(struct workload *w, uint64_t seed);

/* Runs whole transactions on conn until at least target changes are
 * committed by this call, and returns how many were. Returns WL_LOST when
 * the connection broke (the open transaction is lost, earlier ones are in
 * w->committed) and WL_FAILED on any other error, after rolling back. Can be
 * called repeatedly with small targets: the stream of operations goes on. */
long workload_run(struct workload *w, PGconn *conn, long target, char *err, size_t errlen);

#endif
