/* procstats: the standard process_* metrics of this process, read from
 * /proc (Linux) and getrlimit at scrape time, as Prometheus' client
 * libraries define them. metrics.c renders them; the reading is here so
 * that metrics.c does no I/O of its own. */
#ifndef WALCOUNT_PROCSTATS_H
#define WALCOUNT_PROCSTATS_H

struct procstats {
	double cpu_seconds;    /* user + system CPU time */
	double resident_bytes; /* resident set size */
	double virtual_bytes;  /* virtual memory size */
	double start_time;     /* seconds since the epoch */
	double open_fds;       /* entries of /proc/self/fd */
	double max_fds;        /* the soft RLIMIT_NOFILE; +Inf when unlimited */
};

/* Fills *ps from /proc. A value that cannot be read (a sandbox hides part
 * of /proc) is NAN, and metrics.c leaves its family out; the others are
 * exported still. /proc/stat is not needed: systemd's ProcSubset=pid, as
 * walcount.service sets it, hides it. */
void procstats_read(struct procstats *ps);

/* The same from the proc file system at proc (tests pass a copy). */
void procstats_read_at(const char *proc, struct procstats *ps);

#endif
