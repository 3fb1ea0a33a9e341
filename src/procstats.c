#include "procstats.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* The start time in seconds since the epoch from starttime, clock ticks
 * since boot: now less the time since then, from the clocks, because
 * /proc/stat's btime is hidden under systemd's ProcSubset=pid. */
static double start_time(unsigned long long start, long ticks)
{
	struct timespec real, boot;

	if (clock_gettime(CLOCK_REALTIME, &real) != 0 || clock_gettime(CLOCK_BOOTTIME, &boot) != 0)
		return NAN;
	double since_boot = (double) boot.tv_sec + (double) boot.tv_nsec / 1e9;
	return (double) real.tv_sec + (double) real.tv_nsec / 1e9 - (since_boot - (double) start / (double) ticks);
}

/* Fields 14-15 (utime, stime), 22 (starttime), 23 (vsize) and 24 (rss) of
 * PROC/self/stat. The command name (field 2) may hold blanks and
 * parentheses, so fields are counted from the last ')'. */
static void read_stat(const char *proc, struct procstats *ps)
{
	char buf[1024], path[4096];
	unsigned long utime, stime, vsize;
	unsigned long long start;
	long rss, ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	FILE *f;
	size_t n = 0;

	snprintf(path, sizeof path, "%s/self/stat", proc);
	if ((f = fopen(path, "r")) != NULL) {
		n = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	/* From field 3 (state) on: 11 fields to skip before utime. */
	if (p == NULL || ticks <= 0 || page <= 0 ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %*d %*d %llu %lu %ld", &utime,
		   &stime, &start, &vsize, &rss) != 5)
		return;
	ps->cpu_seconds = (double) (utime + stime) / (double) ticks;
	ps->start_time = start_time(start, ticks);
	ps->virtual_bytes = (double) vsize;
	ps->resident_bytes = (double) rss * (double) page;
}

/* The entries of PROC/self/fd but the one of the directory being read. */
static void count_fds(const char *proc, double *n)
{
	char path[4096];
	DIR *d;
	const struct dirent *e;

	snprintf(path, sizeof path, "%s/self/fd", proc);
	if ((d = opendir(path)) == NULL)
		return;
	*n = 0;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d))
			(*n)++;
	closedir(d);
}

void procstats_read_at(const char *proc, struct procstats *ps)
{
	struct rlimit rl;

	ps->cpu_seconds = ps->resident_bytes = ps->virtual_bytes = ps->start_time = NAN;
	ps->open_fds = ps->max_fds = NAN;
	read_stat(proc, ps);
	count_fds(proc, &ps->open_fds);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		ps->max_fds = rl.rlim_cur == RLIM_INFINITY ? INFINITY : (double) rl.rlim_cur;
}

void procstats_read(struct procstats *ps)
{
	procstats_read_at("/proc", ps);
}
