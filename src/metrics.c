#include "metrics.h"
#include "strbuf.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define N_TABLES (SRC__COUNT - SRC_REPOSTS)
#define N_BUCKETS 13

/* The label values of walcount_changes_total{action} and
 * walcount_skipped_changes_total{reason}, as decode.c and delta.c name the
 * row actions and skip reasons (test_metrics.c checks they agree). */
static const char *const actions[] = {"insert", "update", "delete", "truncate"};
static const char *const skip_reasons[] = {"null_flag", "unknown_type", "null_key", "identity"};

/* Finite upper bounds; +Inf is the count. Lags are usually sub-second. */
static const double bucket_bounds[N_BUCKETS] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

struct histogram {
	uint64_t le[N_BUCKETS]; /* cumulative: observations <= bucket_bounds[i] */
	uint64_t count;
	double sum;
};

/* Written by the consumer thread, read by the HTTP thread: every field is
 * accessed under lock. batches_total is batch_duration.count. */
static struct {
	pthread_mutex_t lock;
	uint64_t changes[N_TABLES][ARRAY_LEN(actions)];
	uint64_t skipped[ARRAY_LEN(skip_reasons)];
	struct histogram batch_duration;
	struct histogram commit_to_apply;
	lsn_t applied_lsn;
	int64_t lag_bytes;
	int64_t retained_wal_bytes;
	bool slot_active;
	uint64_t reconnects;
	uint64_t rebuilds[REBUILD__COUNT];
	uint64_t corrected[COL__ALL];
	bool corrected_seen[COL__ALL]; /* a series is exported once reported */
	double reconcile_seconds;
	bool streaming;
	bool last_batch_ok;
	bool standby;
	uint64_t violations[CHECK__COUNT];
	bool counts_stale;
} m = {.lock = PTHREAD_MUTEX_INITIALIZER, .last_batch_ok = true};

/* ---- updates ---- */

/* Negative durations come from clock skew between the server, whose commit
 * timestamps we read, and this host; they count as 0. So does NaN, which
 * would otherwise poison the sum. */
static void observe(struct histogram *h, double seconds)
{
	if (isnan(seconds) || seconds < 0)
		seconds = 0;
	for (int i = 0; i < N_BUCKETS; i++)
		if (seconds <= bucket_bounds[i])
			h->le[i]++;
	h->count++;
	h->sum += seconds;
}

/* The position of label in labels[0..n), or -1. */
static int label_index(const char *const *labels, size_t n, const char *label)
{
	for (size_t i = 0; label != NULL && i < n; i++)
		if (strcmp(labels[i], label) == 0)
			return (int) i;
	return -1;
}

void metrics_change(enum src_table table, const char *action)
{
	int a = label_index(actions, ARRAY_LEN(actions), action);

	if (table < SRC_REPOSTS || table >= SRC__COUNT || a < 0)
		return;
	pthread_mutex_lock(&m.lock);
	m.changes[table - SRC_REPOSTS][a]++;
	pthread_mutex_unlock(&m.lock);
}

void metrics_skipped(const char *reason)
{
	int r = label_index(skip_reasons, ARRAY_LEN(skip_reasons), reason);

	if (r < 0)
		return;
	pthread_mutex_lock(&m.lock);
	m.skipped[r]++;
	pthread_mutex_unlock(&m.lock);
}

void metrics_prerequisite_violation(enum prereq_check check)
{
	if (check >= CHECK__COUNT)
		return;
	pthread_mutex_lock(&m.lock);
	m.violations[check]++;
	pthread_mutex_unlock(&m.lock);
}

void metrics_counts_stale(bool stale)
{
	pthread_mutex_lock(&m.lock);
	m.counts_stale = stale;
	pthread_mutex_unlock(&m.lock);
}

void metrics_batch(double seconds, lsn_t applied)
{
	pthread_mutex_lock(&m.lock);
	observe(&m.batch_duration, seconds);
	m.applied_lsn = applied;
	pthread_mutex_unlock(&m.lock);
}

void metrics_applied_lsn(lsn_t applied)
{
	pthread_mutex_lock(&m.lock);
	m.applied_lsn = applied;
	pthread_mutex_unlock(&m.lock);
}

void metrics_commit_to_apply(double seconds)
{
	pthread_mutex_lock(&m.lock);
	observe(&m.commit_to_apply, seconds);
	pthread_mutex_unlock(&m.lock);
}

void metrics_reconnect(void)
{
	pthread_mutex_lock(&m.lock);
	m.reconnects++;
	pthread_mutex_unlock(&m.lock);
}

void metrics_slot(int64_t lag_bytes, int64_t retained_wal_bytes, bool active)
{
	pthread_mutex_lock(&m.lock);
	m.lag_bytes = lag_bytes;
	m.retained_wal_bytes = retained_wal_bytes;
	m.slot_active = active;
	pthread_mutex_unlock(&m.lock);
}

void metrics_slot_released(void)
{
	pthread_mutex_lock(&m.lock);
	m.slot_active = false;
	pthread_mutex_unlock(&m.lock);
}

void metrics_rebuild(enum rebuild_reason reason)
{
	if ((unsigned) reason >= REBUILD__COUNT)
		return;
	pthread_mutex_lock(&m.lock);
	m.rebuilds[reason]++;
	pthread_mutex_unlock(&m.lock);
}

void metrics_reconcile_corrected(enum agg_column column, uint64_t n)
{
	if ((unsigned) column >= COL__ALL)
		return;
	pthread_mutex_lock(&m.lock);
	m.corrected[column] += n;
	m.corrected_seen[column] = true;
	pthread_mutex_unlock(&m.lock);
}

void metrics_reconcile_duration(double seconds)
{
	pthread_mutex_lock(&m.lock);
	m.reconcile_seconds = seconds;
	pthread_mutex_unlock(&m.lock);
}

void metrics_health(bool streaming, bool last_batch_ok)
{
	pthread_mutex_lock(&m.lock);
	m.streaming = streaming;
	m.last_batch_ok = last_batch_ok;
	pthread_mutex_unlock(&m.lock);
}

void metrics_standby(bool standby)
{
	pthread_mutex_lock(&m.lock);
	m.standby = standby;
	pthread_mutex_unlock(&m.lock);
}

/* ---- rendering ---- */

/* The shortest of %.15g and %.17g that reads back as v, so 0.1 prints as
 * "0.1" yet no value loses precision; non-finite values as Prometheus
 * spells them. */
static void append_double(struct strbuf *b, double v)
{
	char s[32];

	if (isnan(v) || isinf(v)) {
		strbuf_append(b, isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf");
		return;
	}
	snprintf(s, sizeof s, "%.15g", v);
	if (strtod(s, NULL) != v)
		snprintf(s, sizeof s, "%.17g", v);
	strbuf_append(b, s);
}

static void family(struct strbuf *b, const char *name, const char *type, const char *help)
{
	strbuf_appendf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void render_changes(struct strbuf *b)
{
	family(b, "walcount_changes_total", "counter", "Row changes received from the stream, by source table and action.");
	for (int t = 0; t < N_TABLES; t++)
		for (size_t a = 0; a < ARRAY_LEN(actions); a++)
			strbuf_appendf(b, "walcount_changes_total{table=\"%s\",action=\"%s\"} %" PRIu64 "\n",
				       src_table_name((enum src_table)(SRC_REPOSTS + t)), actions[a], m.changes[t][a]);
}

static void render_skipped(struct strbuf *b)
{
	family(b, "walcount_skipped_changes_total", "counter",
	       "Row changes left uncounted because an image cannot be counted, by reason.");
	for (size_t r = 0; r < ARRAY_LEN(skip_reasons); r++)
		strbuf_appendf(b, "walcount_skipped_changes_total{reason=\"%s\"} %" PRIu64 "\n", skip_reasons[r], m.skipped[r]);
}

static void render_prerequisites(struct strbuf *b)
{
	static const char *const checks[CHECK__COUNT] = {
		[CHECK_SOURCE_TABLES] = "source_tables",
		[CHECK_REPLICA_IDENTITY] = "replica_identity",
		[CHECK_SLOT_PLUGIN] = "slot_plugin",
	};

	family(b, "walcount_prerequisite_violations_total", "counter",
	       "Prerequisites found broken while running (each time one breaks), by check.");
	for (int i = 0; i < CHECK__COUNT; i++)
		strbuf_appendf(b, "walcount_prerequisite_violations_total{check=\"%s\"} %" PRIu64 "\n", checks[i],
			       m.violations[i]);
	family(b, "walcount_counts_stale", "gauge",
	       "1 while changes may be missing from the counts (a prerequisite broke or a change was skipped for its "
	       "replica identity) until a reconcile sweep recounts them, else 0.");
	strbuf_appendf(b, "walcount_counts_stale %d\n", m.counts_stale ? 1 : 0);
}

static void render_histogram(struct strbuf *b, const char *name, const char *help, const struct histogram *h)
{
	family(b, name, "histogram", help);
	for (int i = 0; i < N_BUCKETS; i++)
		strbuf_appendf(b, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, bucket_bounds[i], h->le[i]);
	strbuf_appendf(b, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n%s_sum ", name, h->count, name);
	append_double(b, h->sum);
	strbuf_appendf(b, "\n%s_count %" PRIu64 "\n", name, h->count);
}

static void render_batches(struct strbuf *b)
{
	family(b, "walcount_batches_total", "counter", "Batches applied and committed.");
	strbuf_appendf(b, "walcount_batches_total %" PRIu64 "\n", m.batch_duration.count);
	render_histogram(b, "walcount_batch_duration_seconds", "Time to apply and commit one batch.", &m.batch_duration);
	render_histogram(b, "walcount_commit_to_apply_seconds",
			 "Time from a source transaction's commit to the commit of the batch that applied it.",
			 &m.commit_to_apply);
}

/* Where the stream stands: applied LSN, lag, the slot, reconnects. */
static void render_stream(struct strbuf *b)
{
	family(b, "walcount_applied_lsn", "gauge", "Commit end LSN of the last applied batch, as a number.");
	strbuf_appendf(b, "walcount_applied_lsn %" PRIu64 "\n", m.applied_lsn);
	family(b, "walcount_lag_bytes", "gauge", "Current WAL LSN minus the applied LSN, in bytes.");
	strbuf_appendf(b, "walcount_lag_bytes %" PRId64 "\n", m.lag_bytes);
	family(b, "walcount_slot_retained_wal_bytes", "gauge", "WAL the replication slot retains, in bytes.");
	strbuf_appendf(b, "walcount_slot_retained_wal_bytes %" PRId64 "\n", m.retained_wal_bytes);
	family(b, "walcount_slot_active", "gauge", "1 when the replication slot is in use, else 0.");
	strbuf_appendf(b, "walcount_slot_active %d\n", m.slot_active ? 1 : 0);
	family(b, "walcount_standby", "gauge", "1 while this instance stands by for a slot another process streams from.");
	strbuf_appendf(b, "walcount_standby %d\n", m.standby ? 1 : 0);
	family(b, "walcount_reconnects_total", "counter", "Reconnections to the server after a lost connection.");
	strbuf_appendf(b, "walcount_reconnects_total %" PRIu64 "\n", m.reconnects);
	static const char *const rebuild_names[REBUILD__COUNT] = {"slot_missing", "no_progress", "wal_lost", "slot_ahead"};
	family(b, "walcount_rebuilds_total", "counter",
	       "Slots created again with an exact recount, by reason (slot_missing: a promoted server or a dropped slot).");
	for (int r = 0; r < REBUILD__COUNT; r++)
		strbuf_appendf(b, "walcount_rebuilds_total{reason=\"%s\"} %" PRIu64 "\n", rebuild_names[r], m.rebuilds[r]);
}

static void render_reconcile(struct strbuf *b)
{
	family(b, "walcount_reconcile_corrected_total", "counter",
	       "Aggregate cells a reconcile sweep corrected, by table and column.");
	/* Column names are plain identifiers (test_counters.c): no escaping. */
	for (int t = 0; t < AGG__COUNT; t++)
		for (int i = 0; i < agg_swept_columns((enum agg_table) t); i++) {
			enum agg_column c = agg_column_at((enum agg_table) t, i);
			if (m.corrected_seen[c])
				strbuf_appendf(b, "walcount_reconcile_corrected_total{table=\"%s\",column=\"%s\"} %" PRIu64 "\n",
					       agg_table_name((enum agg_table) t), agg_column_name(c), m.corrected[c]);
		}
	family(b, "walcount_reconcile_duration_seconds", "gauge", "Duration of the last reconcile sweep.");
	strbuf_appendf(b, "walcount_reconcile_duration_seconds ");
	append_double(b, m.reconcile_seconds);
	strbuf_putc(b, '\n');
}

/* The lock is held for the whole rendering so a scrape sees one instant:
 * batches_total never disagrees with the applied LSN. Rendering takes
 * microseconds; the consumer waits at most that long. */
char *metrics_render(void)
{
	struct strbuf b = {0};

	family(&b, "walcount_up", "gauge", "1 while walcount runs.");
	strbuf_appendf(&b, "walcount_up 1\n");
	pthread_mutex_lock(&m.lock);
	render_changes(&b);
	render_skipped(&b);
	render_prerequisites(&b);
	render_batches(&b);
	render_stream(&b);
	render_reconcile(&b);
	pthread_mutex_unlock(&m.lock);
	return strbuf_take(&b);
}

bool metrics_healthy(const char **body)
{
	bool standby, streaming, last_batch_ok;

	pthread_mutex_lock(&m.lock);
	standby = m.standby;
	streaming = m.streaming;
	last_batch_ok = m.last_batch_ok;
	pthread_mutex_unlock(&m.lock);
	/* A standby is healthy: it waits by design, and an orchestrator that
	 * restarted it for that would only lose the spare. */
	if (standby)
		*body = "standby\n";
	else if (!streaming)
		*body = "not streaming\n";
	else if (!last_batch_ok)
		*body = "last batch failed\n";
	else
		*body = "ok\n";
	return standby || (streaming && last_batch_ok);
}
