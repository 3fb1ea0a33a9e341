/* reconcile_pause: a sweep must not stop the stream for long (issue 16).
 * A harness connection reads walcount's applied position, max(lsn) of
 * walcount.progress, which every batch advances, every POLL_MS while the
 * writers run: once without sweeps, then during back-to-back sweeps of a
 * world large enough that a sweep which recounts or compares the whole
 * world inside its correcting steps, between batches on the stream's
 * thread, stops the stream for far longer than a batch interval. Also:
 * the baseline sweep corrects exactly the non-stream columns, the later
 * ones nothing, the end state equals the full recount, and every in-stream
 * step is in walcount_reconcile_pause_seconds, none over 0.25 s. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "reconcile.h"

#define POLL_MS 2
#define QUIET_SECS 4 /* IT_QUICK: 3 */
#define SWEEPS 3     /* after the baseline; IT_QUICK: 2 */
/* The bound on the longest stall during sweeps: STALL_SLACK_MS over the
 * longest without them, and never below STALL_FLOOR_MS. A sweep whose
 * in-stream steps are bounded by 2 x reconcile.chunk_time (80 ms by
 * default) adds at most one step to a batch interval; the rest is room for
 * a loaded 2-CPU machine, where the sweep's own scans compete with the
 * stream and the writers for the CPUs. A sweep that recounts inside its
 * steps stops this world's stream for seconds. The workload writers run
 * without the bulk writer: applying one of its 5000-row transactions stalls
 * the stream for 0.2-0.5 s by itself, longer while a sweep's scans take the
 * CPUs, and that is not the stream waiting for the sweep. The floor is
 * 1.5 s: on the shared 2-CPU machine the stream stalls for about 1 s now and
 * then, in the phase without sweeps as well, while sweeps that correct
 * inside their steps stalled it for 4.7-10 s here. The precise check is
 * walcount's own pause histogram, below. */
#define STALL_FLOOR_MS 1500.0
#define STALL_SLACK_MS 300.0
/* The in-stream step histogram's bucket every step must fall in. */
#define PAUSE_BUCKET "walcount_reconcile_pause_seconds_bucket{le=\"0.25\"}"
#define PAUSE_COUNT "walcount_reconcile_pause_seconds_count"

/* WORLD_SQL's mix at scale: 150k tracks over 50k owners, 30k playlists,
 * 150k comments over 50k tracks, and an aggregate row for every user and
 * track (and the playlists the workload writes), so every sweep checks
 * 200k rows and recounts the non-stream columns from 330k source rows. */
static const char PAUSE_WORLD_SQL[] =
	"INSERT INTO tracks (track_id, owner_id, is_current, is_delete, is_unlisted, is_available, stem_of, genre, "
	"created_at, txhash) "
	"SELECT g, 1 + g % 50000, g % 23 <> 0, g % 19 = 0, g % 17 = 0, g % 29 <> 0, "
	"CASE WHEN g % 31 = 0 THEN '{\"parent_track_id\": 1}'::jsonb END, "
	"(ARRAY['rock', 'pop', NULL, '', 'Rock', 'jazz'])[1 + (g::bigint * 2654435761 % 1000003) % 6], "
	"timestamp '2024-01-01' + ((g::bigint * 40503) % 37) * interval '1 hour', 'w' || g "
	"FROM generate_series(1, 150000) g;"
	"INSERT INTO playlists (playlist_id, playlist_owner_id, is_album, is_private, is_current, is_delete, txhash) "
	"SELECT g, 1 + g % 50000, g % 3 = 0, g % 7 = 0, g % 13 <> 0, g % 11 = 0, 'p' || g "
	"FROM generate_series(1, 30000) g;"
	"INSERT INTO comments (comment_id, entity_id, entity_type, is_delete, is_visible) "
	"SELECT g, 1 + g % 50000, CASE WHEN g % 17 = 0 THEN 'Playlist' ELSE 'Track' END, g % 9 = 0, g % 13 <> 0 "
	"FROM generate_series(1, 150000) g;"
	"INSERT INTO aggregate_user (user_id) SELECT g FROM generate_series(1, 50000) g;"
	"INSERT INTO aggregate_track (track_id) SELECT g FROM generate_series(1, 150000) g;"
	"INSERT INTO aggregate_playlist (playlist_id, is_album) SELECT g, g % 3 = 0 FROM generate_series(1, 300) g;"
	"ANALYZE";

/* The applied position, and the sweeps finished after checkpoint $2 and
 * the last of them. */
static const char WATCH_SQL[] =
	"SELECT (SELECT max(lsn) FROM walcount.progress WHERE slot_name = $1)::text, "
	"count(*), coalesce(max(id), 0) FROM walcount.checkpoints WHERE id > $2 AND reconcile_checked IS NOT NULL";

struct watch {
	double longest_ms; /* the longest interval without an advance */
	double secs;
	long polls, advances;
	long sweeps, last; /* sweeps finished, the last one's checkpoint id */
};

/* One poll: a new applied position ends a stall. */
static bool poll_once(struct ctx *t, const char *const *params, char *lsn, struct watch *w, double *advanced)
{
	char err[IT_ERRLEN];
	PGresult *res = it_query(t->conn, WATCH_SQL, 2, params, err, sizeof err);
	double now = it_now();

	if (res == NULL)
		return fail_err(t, "reading walcount's progress", err);
	if (strcmp(lsn, PQgetvalue(res, 0, 0)) != 0) {
		snprintf(lsn, LSN_BUFLEN, "%s", PQgetvalue(res, 0, 0));
		w->advances++;
		if ((now - *advanced) * 1000 > w->longest_ms)
			w->longest_ms = (now - *advanced) * 1000;
		*advanced = now;
	}
	w->sweeps = atol(PQgetvalue(res, 0, 1));
	if (w->sweeps > 0)
		w->last = atol(PQgetvalue(res, 0, 2));
	w->polls++;
	PQclear(res);
	return true;
}

/* Polls the applied position every POLL_MS: for `secs` when sweeps is 0,
 * else until `sweeps` sweeps are done, each requested by SIGUSR1 as soon as
 * the one before has finished. A stall still going on at the end counts. */
static bool watch(struct ctx *t, long sweeps, double secs, struct watch *w)
{
	char after[24], lsn[LSN_BUFLEN] = "";
	const char *params[2] = {t->db, after};
	long sent = 0;

	*w = (struct watch){0};
	if (!last_checkpoint(t, &w->last))
		return false;
	snprintf(after, sizeof after, "%ld", w->last);
	double start = it_now(), advanced = start, end = start + (sweeps > 0 ? (double) sweeps * SWEEP_TIMEOUT : secs);
	for (;; it_sleep_ms(POLL_MS)) {
		if (!poll_once(t, params, lsn, w, &advanced))
			return false;
		if (sweeps > 0 ? w->sweeps >= sweeps : it_now() >= end)
			break;
		if (!wc_alive(&t->wc))
			return fail(t, "walcount exited while the stream was watched");
		if (it_now() >= end)
			return fail(t, "%ld of %ld sweeps finished within %.0f s", w->sweeps, sweeps, end - start);
		if (sent < sweeps && sent == w->sweeps) {
			if (kill(t->wc.pid, SIGUSR1) != 0)
				return fail(t, "cannot signal walcount (pid %d): %s", (int) t->wc.pid, strerror(errno));
			sent++;
		}
	}
	w->secs = it_now() - start;
	if ((it_now() - advanced) * 1000 > w->longest_ms)
		w->longest_ms = (it_now() - advanced) * 1000;
	return true;
}

/* The sweeps after checkpoint `base` corrected nothing. */
static bool clean_since(struct ctx *t, long base)
{
	char sb[24], err[IT_ERRLEN], v[256];
	const char *params[1] = {sb};

	snprintf(sb, sizeof sb, "%ld", base);
	if (!it_value(t->conn,
		      "SELECT coalesce(string_agg(id || ':' || cells, ','), '') FROM (SELECT id, "
		      "  (SELECT coalesce(sum(value::bigint), 0) FROM jsonb_each_text(reconcile_corrected)) AS cells "
		      "  FROM walcount.checkpoints WHERE id > $1 AND reconcile_checked IS NOT NULL) AS s WHERE cells <> 0",
		      1, params, v, sizeof v, err, sizeof err))
		return fail_err(t, "reading the sweeps' corrections", err);
	return *v == '\0' || fail(t, "sweeps without drift corrected cells (checkpoint:cells %s)", v);
}

/* Every in-stream step of the sweeps is in walcount_reconcile_pause_seconds,
 * none above its 0.25 s bucket. */
static bool pause_metric(struct ctx *t, int port, double *steps)
{
	double within = metric(port, PAUSE_BUCKET);

	*steps = metric(port, PAUSE_COUNT);
	if (*steps <= 0)
		return fail(t, "%s is %g after the sweeps, want > 0 (-1: not exported)", PAUSE_COUNT, *steps);
	return within == *steps || fail(t, "%g of %g in-stream steps took over 0.25 s", *steps - within, *steps);
}

/* The stall bound: the longest stall during sweeps against the one
 * without. */
static bool stall_bounded(struct ctx *t, const struct watch *quiet, const struct watch *swept, const struct watch *base)
{
	double bound = quiet->longest_ms + STALL_SLACK_MS;

	if (bound < STALL_FLOOR_MS)
		bound = STALL_FLOOR_MS;
	return swept->longest_ms <= bound ||
	       fail(t,
		    "the stream stalled for %.0f ms during %ld sweeps (%.1f s), over the bound of %.0f ms; longest stall "
		    "without sweeps %.0f ms (%.1f s), during the baseline sweep %.0f ms",
		    swept->longest_ms, swept->sweeps, swept->secs, bound, quiet->longest_ms, quiet->secs, base->longest_ms);
}

bool test_reconcile_pause(struct ctx *t)
{
	char listen[32], err[IT_ERRLEN];
	int port = free_port(t);
	struct wc_opts o = {.checkpoint_interval = "1h", .reconcile = true, .metrics_listen = listen};
	struct watch quiet, base, swept;
	struct sweep_row b;
	struct writers w = {0};
	double steps = 0;

	if (port == 0)
		return false;
	snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
	if (!it_exec(t->conn, PAUSE_WORLD_SQL, 0, NULL, err, sizeof err))
		return fail_err(t, "creating the world", err);
	if (!expect_baseline(t) || !configure(t, &o) || !start_streaming(t) || !wait_stream_started(t) ||
	    !start_writers(t, &w, false)) {
		stop_writers(t, &w); /* those that did start */
		return false;
	}
	bool ok = traffic(t, WARMUP_WAL) && watch(t, 0, rounds(QUIET_SECS, 3), &quiet) && watch(t, 1, 0, &base) &&
		  check_sweep(t, base.last, "baseline", &b) && watch(t, rounds(SWEEPS, 2), 0, &swept) &&
		  clean_since(t, base.last);
	/* Exact first: a stall is the finding only when nothing else is wrong. */
	if (!settle(t, &w, ok) || !stall_bounded(t, &quiet, &swept, &base) || !pause_metric(t, port, &steps))
		return false;
	snprintf(t->details, sizeof t->details,
		 "longest stream stall %.0f ms during %ld sweeps (%.1f s, %ld polls), %.0f ms without (%.1f s), %.0f ms during "
		 "the baseline sweep (%ld cells corrected in %ld ms); %.0f in-stream steps all <= 0.25 s; writers committed "
		 "%ld changes; later sweeps corrected nothing; full recount and drift 0",
		 swept.longest_ms, swept.sweeps, swept.secs, swept.polls, quiet.longest_ms, quiet.secs, base.longest_ms,
		 b.corrected, b.ms, steps, w.committed);
	return true;
}
