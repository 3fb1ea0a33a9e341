#include "procstats.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* The system's boot time, from /proc/stat's btime: starttime in
 * /proc/self/stat counts clock ticks from it. */
static bool boot_time(double *btime)
{
	char line[256];
	FILE *f = fopen("/proc/stat", "r");
	bool found = false;

	if (f == NULL)
		return false;
	while (!found && fgets(line, sizeof line, f) != NULL)
		found = sscanf(line, "btime %lf", btime) == 1;
	fclose(f);
	return found;
}

/* Fields 14-15 (utime, stime), 22 (starttime), 23 (vsize) and 24 (rss) of
 * /proc/self/stat. The command name (field 2) may hold blanks and
 * parentheses, so fields are counted from the last ')'. */
static bool read_stat(struct procstats *ps)
{
	char buf[1024];
	unsigned long utime, stime, vsize;
	unsigned long long start;
	long rss, ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	double btime;
	FILE *f = fopen("/proc/self/stat", "r");
	size_t n = f != NULL ? fread(buf, 1, sizeof buf - 1, f) : 0;

	if (f != NULL)
		fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	/* From field 3 (state) on: 11 fields to skip before utime. */
	if (p == NULL || ticks <= 0 || page <= 0 || !boot_time(&btime) ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %*d %*d %llu %lu %ld", &utime,
		   &stime, &start, &vsize, &rss) != 5)
		return false;
	ps->cpu_seconds = (double) (utime + stime) / (double) ticks;
	ps->start_time = btime + (double) start / (double) ticks;
	ps->virtual_bytes = (double) vsize;
	ps->resident_bytes = (double) rss * (double) page;
	return true;
}

static bool count_fds(double *n)
{
	DIR *d = opendir("/proc/self/fd");
	const struct dirent *e;

	if (d == NULL)
		return false;
	*n = 0;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			(*n)++;
	/* The directory's own descriptor is not one of the process's. */
	(*n)--;
	closedir(d);
	return true;
}

bool procstats_read(struct procstats *ps)
{
	struct rlimit rl;

	if (!read_stat(ps) || !count_fds(&ps->open_fds) || getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return false;
	ps->max_fds = rl.rlim_cur == RLIM_INFINITY ? INFINITY : (double) rl.rlim_cur;
	return true;
}
