#include "metrics.h"
#include "clock.h"
#include "procstats.h"
#include "strbuf.h"
#include "version.h"

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
/* pg_replication_slots.wal_status, for walcount_slot_wal_status{status}. */
static const char *const wal_statuses[] = {"reserved", "extended", "unreserved", "lost"};

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
	struct histogram reconcile_pause;
	lsn_t applied_lsn;
	int64_t unapplied_since_us;
	bool slot_known; /* refreshed since the stream connected */
	int64_t lag_bytes;
	int64_t retained_wal_bytes;
	bool slot_active;
	int wal_status; /* index in wal_statuses, or -1 */
	int64_t standbys;
	uint64_t reconnects;
	uint64_t rebuilds[REBUILD__COUNT];
	uint64_t corrected[COL__ALL];
	double reconcile_seconds;
	uint64_t reconcile_failures;
	double reconcile_last_success; /* seconds since the epoch; 0: none yet */
	bool reconcile_enabled;
	double checkpoint_interval;
	bool streaming;
	bool last_batch_ok;
	bool standby;
	bool starting;
	uint64_t violations[CHECK__COUNT];
	bool counts_stale;
} m = {.lock = PTHREAD_MUTEX_INITIALIZER, .last_batch_ok = true, .wal_status = -1};

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

void metrics_unapplied_since(int64_t commit_us)
{
	pthread_mutex_lock(&m.lock);
	m.unapplied_since_us = commit_us;
	pthread_mutex_unlock(&m.lock);
}

void metrics_reconnect(void)
{
	pthread_mutex_lock(&m.lock);
	m.reconnects++;
	pthread_mutex_unlock(&m.lock);
}

void metrics_slot(const struct slot_gauges *g)
{
	int status = label_index(wal_statuses, ARRAY_LEN(wal_statuses), g->wal_status);

	pthread_mutex_lock(&m.lock);
	m.slot_known = true;
	m.lag_bytes = g->lag_bytes;
	m.retained_wal_bytes = g->retained_wal_bytes;
	m.slot_active = g->active;
	m.wal_status = status;
	m.standbys = g->standbys;
	pthread_mutex_unlock(&m.lock);
}

void metrics_slot_released(void)
{
	pthread_mutex_lock(&m.lock);
	m.slot_known = false;
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
	pthread_mutex_unlock(&m.lock);
}

void metrics_reconcile_pause(double seconds)
{
	pthread_mutex_lock(&m.lock);
	observe(&m.reconcile_pause, seconds);
	pthread_mutex_unlock(&m.lock);
}

void metrics_reconcile_duration(double seconds)
{
	pthread_mutex_lock(&m.lock);
	m.reconcile_seconds = seconds;
	pthread_mutex_unlock(&m.lock);
}

void metrics_reconcile_done(bool ok)
{
	double now = (double) clock_wall_us() / 1e6;

	pthread_mutex_lock(&m.lock);
	if (ok)
		m.reconcile_last_success = now;
	else
		m.reconcile_failures++;
	pthread_mutex_unlock(&m.lock);
}

void metrics_reconcile_config(bool enabled, double checkpoint_interval_seconds)
{
	pthread_mutex_lock(&m.lock);
	m.reconcile_enabled = enabled;
	m.checkpoint_interval = checkpoint_interval_seconds;
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

void metrics_starting(bool starting)
{
	pthread_mutex_lock(&m.lock);
	m.starting = starting;
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

/* The slot as the last refresh saw it. While the stream is down the
 * families keep their HELP and TYPE but have no sample: a stale value
 * would read as current. */
static void render_slot(struct strbuf *b, double now)
{
	bool known = m.streaming && m.slot_known;

	family(b, "walcount_lag_seconds", "gauge",
	       "Now minus the commit time of the oldest source transaction received and not yet applied, 0 when "
	       "everything received is applied; absent while not connected.");
	if (m.streaming) {
		double lag = m.unapplied_since_us == 0 ? 0 : now - (double) m.unapplied_since_us / 1e6;
		strbuf_append(b, "walcount_lag_seconds ");
		append_double(b, lag > 0 ? lag : 0);
		strbuf_putc(b, '\n');
	}
	family(b, "walcount_lag_bytes", "gauge", "Current WAL LSN minus the applied LSN, in bytes; absent while not connected.");
	if (known)
		strbuf_appendf(b, "walcount_lag_bytes %" PRId64 "\n", m.lag_bytes);
	family(b, "walcount_slot_retained_wal_bytes", "gauge",
	       "WAL the replication slot retains, in bytes; absent while not connected.");
	if (known)
		strbuf_appendf(b, "walcount_slot_retained_wal_bytes %" PRId64 "\n", m.retained_wal_bytes);
	family(b, "walcount_slot_active", "gauge", "1 when the replication slot is in use, else 0; absent while not connected.");
	if (known)
		strbuf_appendf(b, "walcount_slot_active %d\n", m.slot_active ? 1 : 0);
	family(b, "walcount_slot_wal_status", "gauge",
	       "1 for the slot's wal_status (reserved, extended, unreserved: WAL about to be removed, lost: removed), 0 "
	       "for the others; absent while not connected.");
	for (size_t i = 0; known && i < ARRAY_LEN(wal_statuses); i++)
		strbuf_appendf(b, "walcount_slot_wal_status{status=\"%s\"} %d\n", wal_statuses[i], m.wal_status == (int) i);
	family(b, "walcount_standbys", "gauge",
	       "walcount standbys waiting for the slot, as this instance sees them; absent while not connected.");
	if (known)
		strbuf_appendf(b, "walcount_standbys %" PRId64 "\n", m.standbys);
}

/* Where the stream stands: connection, applied LSN, standby, starting,
 * reconnects. */
static void render_stream(struct strbuf *b)
{
	family(b, "walcount_connected", "gauge", "1 while the replication stream is connected, else 0.");
	strbuf_appendf(b, "walcount_connected %d\n", m.streaming ? 1 : 0);
	family(b, "walcount_applied_lsn", "gauge", "Commit end LSN of the last applied batch, as a number.");
	strbuf_appendf(b, "walcount_applied_lsn %" PRIu64 "\n", m.applied_lsn);
	family(b, "walcount_standby", "gauge", "1 while this instance stands by for a slot another process streams from.");
	strbuf_appendf(b, "walcount_standby %d\n", m.standby ? 1 : 0);
	family(b, "walcount_starting", "gauge",
	       "1 while this instance prepares its slot: waits to create it, creates it, runs the initial load.");
	strbuf_appendf(b, "walcount_starting %d\n", m.starting ? 1 : 0);
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
			strbuf_appendf(b, "walcount_reconcile_corrected_total{table=\"%s\",column=\"%s\"} %" PRIu64 "\n",
				       agg_table_name((enum agg_table) t), agg_column_name(c), m.corrected[c]);
		}
	render_histogram(b, "walcount_reconcile_pause_seconds",
			 "Time the stream waited for a reconcile sweep: each correcting step and each other statement a sweep "
			 "runs between batches.",
			 &m.reconcile_pause);
	family(b, "walcount_reconcile_duration_seconds", "gauge", "Duration of the last reconcile sweep.");
	strbuf_appendf(b, "walcount_reconcile_duration_seconds ");
	append_double(b, m.reconcile_seconds);
	strbuf_putc(b, '\n');
	family(b, "walcount_reconcile_failures_total", "counter", "Reconcile sweeps that failed.");
	strbuf_appendf(b, "walcount_reconcile_failures_total %" PRIu64 "\n", m.reconcile_failures);
	family(b, "walcount_reconcile_last_success_timestamp_seconds", "gauge",
	       "When the last reconcile sweep of this process finished, in seconds since the epoch; 0 before the first.");
	strbuf_append(b, "walcount_reconcile_last_success_timestamp_seconds ");
	append_double(b, m.reconcile_last_success);
	strbuf_putc(b, '\n');
	family(b, "walcount_reconcile_enabled", "gauge", "1 when reconcile.enabled sweeps after every checkpoint, else 0.");
	strbuf_appendf(b, "walcount_reconcile_enabled %d\n", m.reconcile_enabled ? 1 : 0);
	family(b, "walcount_checkpoint_interval_seconds", "gauge",
	       "checkpoint.interval: how often a checkpoint (and a sweep) is due.");
	strbuf_append(b, "walcount_checkpoint_interval_seconds ");
	append_double(b, m.checkpoint_interval);
	strbuf_putc(b, '\n');
}

/* Label values are escaped as the text format requires. */
static void append_label_value(struct strbuf *b, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\' || *v == '"')
			strbuf_putc(b, '\\');
		if (*v == '\n')
			strbuf_append(b, "\\n");
		else
			strbuf_putc(b, *v);
	}
}

static void render_build_info(struct strbuf *b)
{
	family(b, "walcount_build_info", "gauge", "Always 1; the labels say which build runs.");
	strbuf_append(b, "walcount_build_info{version=\"");
	append_label_value(b, WALCOUNT_VERSION);
	strbuf_append(b, "\",revision=\"");
	append_label_value(b, walcount_revision);
	strbuf_append(b, "\"} 1\n");
}

/* NAN: not readable here (procstats.h), so the family is left out. */
static void process_gauge(struct strbuf *b, const char *name, const char *type, const char *help, double v)
{
	if (isnan(v))
		return;
	family(b, name, type, help);
	strbuf_appendf(b, "%s ", name);
	append_double(b, v);
	strbuf_putc(b, '\n');
}

/* The standard process_* families of Prometheus' client libraries. */
static void render_process(struct strbuf *b, const struct procstats *ps)
{
	process_gauge(b, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.",
		      ps->cpu_seconds);
	process_gauge(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", ps->resident_bytes);
	process_gauge(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", ps->virtual_bytes);
	process_gauge(b, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.",
		      ps->start_time);
	process_gauge(b, "process_open_fds", "gauge", "Number of open file descriptors.", ps->open_fds);
	process_gauge(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.", ps->max_fds);
}

/* The lock is held for the whole rendering so a scrape sees one instant:
 * batches_total never disagrees with the applied LSN. Rendering takes
 * microseconds; the consumer waits at most that long. */
char *metrics_render(void)
{
	struct strbuf b = {0};
	struct procstats ps;
	/* Read before the lock: the consumer never waits for /proc. */
	procstats_read(&ps);
	double now = (double) clock_wall_us() / 1e6;

	family(&b, "walcount_up", "gauge", "1 while walcount runs.");
	strbuf_appendf(&b, "walcount_up 1\n");
	render_build_info(&b);
	render_process(&b, &ps);
	pthread_mutex_lock(&m.lock);
	render_changes(&b);
	render_skipped(&b);
	render_prerequisites(&b);
	render_batches(&b);
	render_stream(&b);
	render_slot(&b, now);
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
