/* Unit tests for procstats.c: the process_* values from the real /proc, and
 * from copies of it that lack parts, as systemd's ProcSubset=pid (no
 * /proc/stat) or a stricter sandbox leave it: what can be read is read. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "procstats.h"

/* A fake /proc: root/self/fd with fds entries (numbered from 1000, apart
 * from the descriptor that reads the directory), and root/self/stat, a copy
 * of the real one, when with_stat. */
struct fake {
	char root[64];
	int fds;
	bool with_stat;
};

static void path_of(char *buf, size_t len, const struct fake *f, const char *rel)
{
	snprintf(buf, len, "%s/%s", f->root, rel);
}

static void write_file(const char *path, const char *text, size_t n)
{
	FILE *out = fopen(path, "w");

	assert_non_null(out);
	assert_int_equal(fwrite(text, 1, n, out), n);
	assert_int_equal(fclose(out), 0);
}

static void fake_make(struct fake *f)
{
	char path[128], name[32], stat[1024];

	snprintf(f->root, sizeof f->root, "/tmp/walcount-procstats-XXXXXX");
	assert_non_null(mkdtemp(f->root));
	path_of(path, sizeof path, f, "self");
	assert_int_equal(mkdir(path, 0700), 0);
	path_of(path, sizeof path, f, "self/fd");
	assert_int_equal(mkdir(path, 0700), 0);
	for (int i = 0; i < f->fds; i++) {
		snprintf(name, sizeof name, "self/fd/%d", 1000 + i);
		path_of(path, sizeof path, f, name);
		write_file(path, "", 0);
	}
	if (f->with_stat) {
		FILE *in = fopen("/proc/self/stat", "r");
		assert_non_null(in);
		size_t n = fread(stat, 1, sizeof stat, in);
		fclose(in);
		path_of(path, sizeof path, f, "self/stat");
		write_file(path, stat, n);
	}
}

static void fake_remove(const struct fake *f)
{
	char path[128], name[32];

	for (int i = 0; i < f->fds; i++) {
		snprintf(name, sizeof name, "self/fd/%d", 1000 + i);
		path_of(path, sizeof path, f, name);
		assert_int_equal(unlink(path), 0);
	}
	path_of(path, sizeof path, f, "self/stat");
	assert_true(!f->with_stat || unlink(path) == 0);
	path_of(path, sizeof path, f, "self/fd");
	assert_int_equal(rmdir(path), 0);
	path_of(path, sizeof path, f, "self");
	assert_int_equal(rmdir(path), 0);
	assert_int_equal(rmdir(f->root), 0);
}

static double soft_fd_limit(void)
{
	struct rlimit rl;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	return rl.rlim_cur == RLIM_INFINITY ? INFINITY : (double) rl.rlim_cur;
}

/* Values no reading leaves, so that one not written shows. */
static void poison(struct procstats *ps)
{
	ps->cpu_seconds = ps->resident_bytes = ps->virtual_bytes = -1;
	ps->start_time = ps->open_fds = ps->max_fds = -1;
}

/* This process started within the last minute (Valgrind starts slowly). */
static void assert_started_lately(double start)
{
	double now = (double) time(NULL);

	if (!(start > now - 60 && start < now + 1))
		fail_msg("start time %.3f, now %.0f", start, now);
}

/* Every value but the descriptor count, which each test knows. */
static void assert_all_read(const struct procstats *ps)
{
	assert_true(ps->cpu_seconds >= 0);
	assert_true(ps->resident_bytes > 0);
	assert_true(ps->virtual_bytes >= ps->resident_bytes);
	assert_started_lately(ps->start_time);
	assert_true(ps->max_fds == soft_fd_limit());
}

static void test_real_proc(void **state)
{
	struct procstats ps;

	(void) state;
	poison(&ps);
	procstats_read(&ps);
	assert_all_read(&ps);
	assert_true(ps.open_fds >= 3);
}

/* What procstats reads from a fake /proc with fds descriptors open and,
 * with_stat, a /proc/self/stat. */
static void read_fake(int fds, bool with_stat, struct procstats *ps)
{
	struct fake f = {.fds = fds, .with_stat = with_stat};

	fake_make(&f);
	poison(ps);
	procstats_read_at(f.root, ps);
	fake_remove(&f);
}

/* No /proc/stat (ProcSubset=pid): every value still, the start time from
 * the clocks instead of the boot time there. */
static void test_without_proc_stat(void **state)
{
	struct procstats ps;

	(void) state;
	read_fake(3, true, &ps);
	assert_all_read(&ps);
	assert_true(ps.open_fds == 3);
}

/* Not even /proc/self/stat: those values are NAN (not exported), the
 * descriptors are still counted. */
static void test_partial(void **state)
{
	struct procstats ps;

	(void) state;
	read_fake(4, false, &ps);
	assert_true(isnan(ps.cpu_seconds));
	assert_true(isnan(ps.resident_bytes));
	assert_true(isnan(ps.virtual_bytes));
	assert_true(isnan(ps.start_time));
	assert_true(ps.open_fds == 4);
	assert_true(ps.max_fds == soft_fd_limit());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_proc),
		cmocka_unit_test(test_without_proc_stat),
		cmocka_unit_test(test_partial),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
