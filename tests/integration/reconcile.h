/* reconcile: what the reconcile tests (reconcile_*_tests.c) share: the
 * world of source rows only a sweep counts, the reference recount, the
 * expected cells and the sweeps' results (reconcile_common.c), and writers
 * hammering hot keys in child processes (reconcile_writers.c). Every end
 * state is compared with full_recount.sql, a reference written from the
 * facts (design.md §8, audius-schema-facts.md "Reconcile") rather than from
 * sql/reconcile_*.sql.
 *
 * How a sweep is observed: it inserts its walcount.checkpoints row when it
 * starts and fills reconcile_checked / reconcile_corrected ({"table.column":
 * cells}) / reconcile_duration_ms when it is done. The cells a sweep must
 * correct are put into the session's temporary table expected_cells (cell,
 * n) beforehand and compared with that jsonb column by column. */
#ifndef IT_RECONCILE_H
#define IT_RECONCILE_H

#include <stdbool.h>
#include <sys/types.h>

#include "cases.h"

#define WRITERS 2
#define SWEEP_TIMEOUT 60
/* Rows per transaction of the bulk writer (see bulk_step), and its pause
 * between them: unthrottled it writes several times faster than walcount
 * applies, and a sweep, which must wait for the stream, would never end. */
#define BULK_ROWS 5000
#define BULK_PAUSE_MS 400
#define PROCS (WRITERS + 1) /* the workload writers, then the bulk writer */
#define WRITER_CHUNK 50     /* changes per workload_run call: how soon a writer stops */
#define FULL_RECOUNT "tests/integration/full_recount.sql"
/* How much WAL the writers write before and after a sweep, so it recounts
 * and corrects in the middle of their traffic (a couple of bulk
 * transactions and the workload around them). */
#define WARMUP_WAL (2L << 20)

/* The columns the stream maintains; a baseline sweep must leave them alone. */
#define STREAM_CELLS                                                                                           \
	"('aggregate_user.repost_count', 'aggregate_user.track_save_count', 'aggregate_user.follower_count', " \
	"'aggregate_user.following_count', 'aggregate_track.repost_count', 'aggregate_track.save_count', "     \
	"'aggregate_playlist.repost_count', 'aggregate_playlist.save_count')"

/* Source rows only a sweep counts (tracks, playlists, comments), owned by
 * and attached to keys the workload also writes, with every disqualifier
 * and genre kind mixed in, and latest-upload ties (hours modulo 37). And an
 * aggregate row for every key the workload can touch (workload.c: users
 * 1..2000, tracks 1..500, playlists 1..300): a row the stream created
 * later would start with stale track columns, which a sweep would rightly
 * correct, and these tests count corrections exactly. */
extern const char WORLD_SQL[];

struct sweep_row {
	long checked, corrected; /* rows checked, cells corrected (sum over columns) */
	long ms;
};

struct writers {
	struct workload wl[WRITERS]; /* as each started: its hot keys */
	pid_t pid[PROCS];
	int fd[PROCS];                   /* read end: "committed conflicts" at the writer's exit */
	long committed, conflicts, bulk; /* changes, rolled back conflicts, bulk changes */
	double started, secs;            /* when they started, how long they ran */
};

/* full_recount.sql, read once (the binary runs from the repository root). */
const char *full_recount(struct ctx *t);
/* Every aggregate cell equals the full recount. */
bool recount_zero(struct ctx *t);
/* Replaces the session's expected_cells (cell, n) by the result of query. */
bool expect_cells(struct ctx *t, const char *query);
/* expected_cells := the full recount's mismatches per "table.column",
 * except the columns in `except` (an SQL list, or NULL for none). */
bool expect_recount(struct ctx *t, const char *except);
/* The sweep of checkpoint `id` corrected exactly expected_cells, column by
 * column (every other column 0). */
bool sweep_matches(struct ctx *t, long id, const char *which);
bool last_checkpoint(struct ctx *t, long *id);
/* Waits for the first sweep that started after checkpoint `after` to finish
 * (a sweep retried because of a just-committed transaction leaves a row
 * without a result; the next one counts). */
bool wait_sweep(struct ctx *t, long after, long *id);
/* Waits until the writers have written `bytes` of WAL from now on. */
bool traffic(struct ctx *t, long bytes);
/* Lines of walcount's log containing needle. */
int log_lines(struct ctx *t, const char *needle);
/* Waits until walcount streams. The slot is already active while `run`
 * creates it and does the initial load, before walcount handles SIGUSR1,
 * whose default action would end it. */
bool wait_stream_started(struct ctx *t);
/* SIGUSR1 to the running walcount: one sweep now. Waits for its result. */
bool sweep_now(struct ctx *t, long *id);
/* The sweep of checkpoint id corrected exactly expected_cells. */
bool check_sweep(struct ctx *t, long id, const char *which, struct sweep_row *r);
/* Baseline: the first sweep fixes exactly the track, playlist, genre and
 * comment columns the sweep alone maintains (recorded before walcount
 * started, nothing writes them), and never a stream column. */
bool expect_baseline(struct ctx *t);
/* Stops the writers, then: the stream applied everything, and every
 * aggregate equals the full recount and the harness's own drift check. */
bool settle(struct ctx *t, struct writers *w, bool ok);
/* Starts WRITERS workload writers, each on its own hot keys (the first on
 * t->wl's) with its own txhash tag, and the bulk writer on the first one's
 * hot users (unless !bulk). Writers sharing hot identities would mostly wait for each
 * other's row locks and deadlock (a tenth of the throughput of one); apart,
 * each runs at full speed. */
bool start_writers(struct ctx *t, struct writers *w, bool bulk);
/* Stops the writers (SIGTERM: each ends after its current chunk) and adds
 * up what they committed. Every writer must have run until told to stop. */
bool stop_writers(struct ctx *t, struct writers *w);

#endif
