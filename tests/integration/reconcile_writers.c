/* reconcile_writers: the reconcile tests' writers, the workload at full
 * speed in child processes (see reconcile.h). */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "reconcile.h"

/* ---- writers: the workload at full speed in child processes ---- */

static volatile sig_atomic_t writer_stop;

static void on_writer_term(int sig)
{
	(void) sig;
	writer_stop = 1;
}

/* Errors two writers on the same identities cause each other
 * (demote-then-insert racing an insert, lock order; the workload's bulk
 * demotions touch the bulk writer's rows): the transaction is rolled back,
 * and the writer goes on. */
static bool conflict(const char *err)
{
	return strstr(err, "duplicate key") != NULL || strstr(err, "deadlock detected") != NULL;
}

/* Step i of the bulk writer: one transaction of BULK_ROWS follows from its
 * own followers to the hot users of wl, inserted (even i) or deleted (odd
 * i). Decoding and applying one takes long enough that a sweep's recount
 * often ends before the stream has applied all its snapshot saw: the sweep
 * must wait for the stream before it compares (design.md §8). */
static long bulk_step(PGconn *conn, const struct workload *wl, long i, char *err, size_t errlen)
{
	const long *h = wl->hot_users;
	char sql[512];

	if (i > 0)
		it_sleep_ms(BULK_PAUSE_MS);
	if (i % 2 == 0)
		snprintf(sql, sizeof sql,
			 "INSERT INTO follows (follower_user_id, followee_user_id, is_current, is_delete, txhash) "
			 "SELECT 100000 + g, (ARRAY[%ld, %ld, %ld, %ld, %ld])[1 + g %% 5], true, false, 'bulk' "
			 "FROM generate_series(1, %d) g",
			 h[0], h[1], h[2], h[3], h[4], BULK_ROWS);
	else
		snprintf(sql, sizeof sql, "DELETE FROM follows WHERE txhash = 'bulk'");
	PGresult *res = it_query(conn, sql, 0, NULL, err, errlen);
	long rows = res != NULL ? atol(PQcmdTuples(res)) : WL_FAILED;
	PQclear(res);
	return rows;
}

/* A writer child: the workload (or, with bulk, bulk_step) at full speed
 * until SIGTERM. It never touches the parent's connection (the socket is
 * shared after fork) and leaves with _exit so no atexit or stdio of the
 * parent runs twice. */
static void writer_main(struct workload wl, bool bulk, const char *db, int fd)
{
	struct sigaction sa = {.sa_handler = on_writer_term};
	char err[IT_ERRLEN] = "";
	long conflicts = 0, committed = 0, step = 0;
	bool broke = false;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	PGconn *conn = it_connect(db, err, sizeof err);
	while (conn != NULL && !writer_stop) {
		long n = bulk ? bulk_step(conn, &wl, step++, err, sizeof err)
			      : workload_run(&wl, conn, WRITER_CHUNK, err, sizeof err);
		if (n >= 0)
			committed += n;
		else if (n == WL_FAILED && conflict(err))
			conflicts++;
		else {
			broke = true;
			break;
		}
	}
	if (conn == NULL || broke)
		fprintf(stderr, "writer: %s\n", err);
	dprintf(fd, "%ld %ld\n", committed, conflicts);
	_exit(conn == NULL || broke ? 1 : 0);
}

/* Starts WRITERS workload writers, each on its own hot keys (the first on
 * t->wl's) with its own txhash tag, and the bulk writer on the first one's
 * hot users. Writers sharing hot identities would mostly wait for each
 * other's row locks and deadlock (a tenth of the throughput of one); apart,
 * each runs at full speed. */
bool start_writers(struct ctx *t, struct writers *w, bool bulk)
{
	*w = (struct writers){.started = it_now()};
	for (int i = 0; i < (bulk ? PROCS : WRITERS); i++) {
		struct workload wl = i < WRITERS ? t->wl : w->wl[0];
		int p[2];
		if (i > 0 && i < WRITERS)
			workload_init(&wl, rng_next(&t->rng));
		wl.tag = rng_next(&t->rng);
		if (i < WRITERS)
			w->wl[i] = wl;
		if (pipe(p) != 0)
			return fail(t, "pipe: %s", strerror(errno));
		fflush(stdout);
		if ((w->pid[i] = fork()) == 0) {
			close(p[0]);
			writer_main(wl, i == WRITERS, t->db, p[1]);
		}
		close(p[1]);
		w->fd[i] = p[0];
		if (w->pid[i] < 0)
			return fail(t, "fork: %s", strerror(errno));
	}
	return true;
}

/* Stops the writers (SIGTERM: each ends after its current chunk) and adds
 * up what they committed. Every writer must have run until told to stop. */
bool stop_writers(struct ctx *t, struct writers *w)
{
	bool ok = true;

	w->secs = it_now() - w->started;
	for (int i = 0; i < PROCS; i++)
		if (w->pid[i] > 0)
			kill(w->pid[i], SIGTERM);
	for (int i = 0; i < PROCS; i++) {
		char buf[64] = "";
		long c = 0, k = 0;
		int status = 0;
		if (w->pid[i] <= 0)
			continue;
		if (!it_reap(w->pid[i], 60, &status, NULL)) {
			kill(w->pid[i], SIGKILL);
			it_reap(w->pid[i], 10, &status, NULL);
		}
		ssize_t n = read(w->fd[i], buf, sizeof buf - 1);
		close(w->fd[i]);
		if (n > 0 && sscanf(buf, "%ld %ld", &c, &k) == 2)
			*(i < WRITERS ? &w->committed : &w->bulk) += c, w->conflicts += k;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			ok = fail(t, "writer %d failed (see the test's stderr)", i + 1);
		w->pid[i] = 0;
	}
	return ok;
}
