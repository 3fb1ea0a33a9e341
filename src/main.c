/* walcount: keeps Audius-style aggregate counters exact by streaming WAL
 * changes of reposts, saves and follows from a logical replication slot. */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "config_show.h"
#include "consumer.h"
#include "db.h"
#include "help.h"
#include "http.h"
#include "identity.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "prereq.h"
#include "request.h"
#include "slot.h"
#include "status.h"
#include "version.h"

extern char **environ;

static volatile sig_atomic_t stop_requested, sweep_requested, reload_requested;

/* What SIGHUP reloads: the file run was started with, into its config. */
static const char *live_path;
static struct config *live_cfg;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		sweep_requested = 1;
	else if (sig == SIGHUP)
		reload_requested = 1;
	else {
		stop_requested = 1;
		notify_stopping();
	}
}

/* No SA_RESTART: a signal must wake the stream's poll(). */
static void handle_signals(void)
{
	struct sigaction sa = {0};

	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

static const char *env_lookup(const char *name)
{
	return getenv(name);
}

/* SIGHUP, as PgBouncer's RELOAD: the same loader reads the file again; keys
 * that can change at run time take effect, the others are named. A bad file
 * changes nothing. */
static void reload_config(void)
{
	struct config fresh;
	char err[1024], applied[1024], ignored[512];

	if (!config_load(live_path, env_lookup, &fresh, err, sizeof err))
		log_error("reload: %s; keeping the running configuration", err);
	else {
		config_reload(live_cfg, &fresh, applied, sizeof applied, ignored, sizeof ignored);
		log_setup(live_cfg->log_level, live_cfg->log_format);
		log_info("reload: %s%s", *applied ? "applied " : "no run-time key changed", applied);
		if (*ignored)
			log_warn("reload: changed but only applied at restart: %s", ignored);
	}
	config_free(&fresh);
}

/* Command-line flags; each command accepts the ones its row names. */
struct options {
	const char *config_path;
	bool json, yes, takeover, dry_run, take_ownership;
};

enum { OPT_JSON = 1, OPT_YES = 2, OPT_TAKEOVER = 4, OPT_DRY_RUN = 8, OPT_TAKE_OWNERSHIP = 16 };

/* Prerequisites, state schema, ownership and slot: everything `run` does
 * before streaming, under the start-up lock (slot_lock). Checks come first
 * so a failed one writes nothing. Returns the connection, still holding
 * the lock, with *out SLOT_OK or SLOT_HELD (err says by whom); NULL after
 * logging why not. */
static PGconn *prepare(const struct config *cfg, const struct options *o, enum slot_outcome *out, char *err, size_t errlen)
{
	const struct slot_opts so = {o->takeover, o->take_ownership};
	PGconn *conn = db_connect_retrying(cfg, DB_NORMAL, &stop_requested, err, errlen);
	int holder;

	*out = SLOT_RETRY;
	if (conn != NULL && prereq_check(conn, err, errlen) && slot_lock(conn, &stop_requested, err, errlen) &&
	    slot_state_schema(conn, err, errlen) && identity_check_start(conn, cfg, err, errlen))
		*out = slot_ensure(conn, cfg, &so, &stop_requested, &holder, err, errlen);
	if (*out == SLOT_OK || *out == SLOT_HELD)
		return conn;
	/* A stop asked for is no error, even one that cancels a load. */
	if (stop_requested)
		log_info("%s", err);
	else
		log_error("%s", err);
	PQfinish(conn);
	return NULL;
}

static int cmd_init(const struct config *cfg, const struct options *o)
{
	char err[1024];
	enum slot_outcome out;
	/* So a stop while the slot is being created cancels the creation:
	 * killed outright, walcount would leave the server waiting on. */
	handle_signals();
	PGconn *conn = prepare(cfg, o, &out, err, sizeof err);

	if (conn == NULL)
		return 1;
	if (out == SLOT_HELD)
		log_info("init: ready, %s (a running consumer)", err);
	else
		log_event(LOG_INFO, "init_ready", 0, 0, "init: ready, slot %s", cfg->slot_name);
	PQfinish(conn);
	return 0;
}

static int cmd_run(const struct config *cfg, const struct options *o)
{
	struct consumer_opts copts = {.sweep_now = &sweep_requested, .reload_now = &reload_requested, .reload = reload_config};
	char err[1024];
	enum slot_outcome out;

	/* Type=notify under systemd: READY=1 once streaming (consumer.c). */
	notify_init();
	notify_status("starting: checking prerequisites and slot %s", cfg->slot_name);
	/* Before prepare: the slot shows as active during the initial load, and
	 * a SIGUSR1 sent then must not end the process. */
	handle_signals();
	/* The listener first: a port in use must fail before the schema, the
	 * slot and the initial load exist. /healthz says "not streaming" until
	 * the consumer streams. */
	metrics_reconcile_config(cfg->reconcile_enabled, (double) cfg->checkpoint_interval_ms / 1e3);
	if (!http_start(cfg->metrics_listen, cfg->metrics_idle_timeout_ms, err, sizeof err)) {
		log_error("%s", err);
		return 1;
	}
	/* Stopped during start-up (a slot creation waiting, an initial load):
	 * exit 0 as at any other stop, so that `systemctl stop` does not
	 * leave the unit failed. */
	if ((copts.conn = prepare(cfg, o, &out, err, sizeof err)) == NULL) {
		http_stop();
		return stop_requested ? 0 : 1;
	}
	/* The PID to signal (SIGHUP, SIGUSR1, SIGTERM): the only other one in
	 * the log is the walsender's. Once the start-up checks have passed, so
	 * that a refused start stays one line. */
	log_info("walcount %s started: pid %d, config %s", WALCOUNT_VERSION, (int) getpid(), live_path);
	/* Held by another process: the consumer stands by on a connection of
	 * its own. */
	if (out == SLOT_HELD) {
		PQfinish(copts.conn);
		copts.conn = NULL;
	}
	if (cfg->slot_temporary)
		log_warn("slot.temporary is set: changes made while walcount is disconnected are lost");
	int rc = consumer_run(cfg, &copts, &stop_requested);
	http_stop();
	if (rc != 0)
		notify_status("stopped by an error, see the log");
	notify_close();
	return rc;
}

/* One sweep now. It needs the stream to know what the recount's snapshot
 * missed, so it runs as a consumer that stops when the sweep is done; with
 * a consumer already streaming the slot, that one is asked through the
 * database (request.c) and its result printed. */
static int cmd_reconcile(const struct config *cfg, const struct options *o)
{
	struct consumer_opts copts = {.sweep_once = true, .dry_run = o->dry_run};
	char err[1024];
	enum slot_outcome out;

	handle_signals();
	if ((copts.conn = prepare(cfg, o, &out, err, sizeof err)) == NULL)
		return 1;
	if (out == SLOT_HELD) {
		slot_unlock(copts.conn);
		int rc = request_sweep(copts.conn, cfg->slot_name, o->dry_run, &stop_requested);
		PQfinish(copts.conn);
		return rc;
	}
	return consumer_run(cfg, &copts, &stop_requested);
}

static int cmd_status(const struct config *cfg, const struct options *o)
{
	return (int) status_run(cfg, o->json);
}

/* The configuration has loaded, so it is valid: print it. */
static int cmd_config(const struct config *cfg, const struct options *o)
{
	char *text = config_show(cfg, o->config_path, o->json);
	bool ok = text != NULL && puts(text) != EOF && fflush(stdout) == 0;

	if (text == NULL)
		fprintf(stderr, "walcount config: out of memory\n");
	else if (!ok)
		fprintf(stderr, "walcount config: cannot write to stdout: %s\n", strerror(errno));
	free(text);
	return ok ? 0 : 1;
}

static int cmd_drop(const struct config *cfg, const struct options *o)
{
	char err[1024];

	if (!o->yes) {
		fprintf(stderr, "walcount: drop removes slot %s and walcount's state; run again with --yes\n", cfg->slot_name);
		return 2;
	}
	PGconn *conn = db_connect(cfg, DB_NORMAL, err, sizeof err);
	bool ok = conn != NULL && slot_drop(conn, cfg, err, sizeof err);
	if (ok)
		log_event(LOG_INFO, "dropped", 0, 0, "drop: slot %s and its state removed", cfg->slot_name);
	else
		log_error("%s", err);
	PQfinish(conn);
	return ok ? 0 : 1;
}

static const struct command {
	const char *name;
	int (*fn)(const struct config *cfg, const struct options *o);
	unsigned flags; /* OPT_* this command accepts */
} commands[] = {
	{"config", cmd_config, OPT_JSON},
	{"drop", cmd_drop, OPT_YES},
	{"init", cmd_init, OPT_TAKEOVER | OPT_TAKE_OWNERSHIP},
	{"reconcile", cmd_reconcile, OPT_DRY_RUN},
	{"run", cmd_run, OPT_TAKEOVER | OPT_TAKE_OWNERSHIP},
	{"status", cmd_status, OPT_JSON},
};

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static const struct {
	const char *name;
	unsigned flag;
	size_t offset;
} flags[] = {
	{"--json", OPT_JSON, offsetof(struct options, json)},
	{"--yes", OPT_YES, offsetof(struct options, yes)},
	{"--takeover", OPT_TAKEOVER, offsetof(struct options, takeover)},
	{"--dry-run", OPT_DRY_RUN, offsetof(struct options, dry_run)},
	{"--take-ownership", OPT_TAKE_OWNERSHIP, offsetof(struct options, take_ownership)},
};

/* Sets a boolean flag of o; returns the flag's OPT_ bit, 0 when arg is none. */
static unsigned set_flag(const char *arg, struct options *o)
{
	for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
		if (strcmp(arg, flags[i].name) == 0) {
			*(bool *) ((char *) o + flags[i].offset) = true;
			return flags[i].flag;
		}
	return 0;
}

/* Names the OPT_* bits in mask, as "--json, --yes". */
static const char *flag_names(unsigned mask, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof flags / sizeof flags[0] && n < len; i++)
		if (mask & flags[i].flag)
			n += snprintf(buf + n, len - n, "%s%s", n ? ", " : "", flags[i].name);
	return buf;
}

/* status is a monitoring plugin: its usage errors are UNKNOWN too. */
static int usage_exit(const struct command *cmd)
{
	return cmd != NULL && strcmp(cmd->name, "status") == 0 ? STATUS_UNKNOWN : 2;
}

static void print_version(void)
{
	printf("walcount %s (revision %s)\n", WALCOUNT_VERSION, walcount_revision);
	exit(0);
}

/* `walcount help [TOPIC]`, and --help after a command. */
static void print_help(const char *topic)
{
	if (topic == NULL)
		help_general(stdout);
	else if (!help_command(stdout, topic)) {
		fprintf(stderr, "walcount: unknown command '%s' (see walcount help)\n", topic);
		exit(2);
	}
	exit(0);
}

/* What argv asked for, before it is judged. */
struct parsed {
	const struct command *cmd;
	const char *topic; /* help's COMMAND */
	bool is_help, want_help;
	unsigned seen;   /* OPT_* given */
	char error[256]; /* the first usage error, "" when none */
};

/* Keeps the first usage error: the one to report. */
static void usage_problem(struct parsed *p, const char *what, const char *arg)
{
	if (!*p->error)
		snprintf(p->error, sizeof p->error, "%s '%s'", what, arg);
}

/* A word: the command, help, or help's topic. */
static void parse_word(const char *arg, struct parsed *p)
{
	bool first = p->cmd == NULL && !p->is_help;

	if (first && strcmp(arg, "help") == 0)
		p->is_help = true;
	else if (first && (p->cmd = find_command(arg)) != NULL)
		return;
	else if (p->is_help && p->topic == NULL)
		p->topic = arg;
	else
		usage_problem(p, first ? "unknown command" : "unknown argument", arg);
}

/* One argument (two for --config); returns the index of the last one used. */
static int parse_arg(int argc, char **argv, int i, struct options *o, struct parsed *p)
{
	const char *arg = argv[i];
	unsigned bit;

	if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
		p->want_help = true;
	else if (strcmp(arg, "--version") == 0 || strcmp(arg, "-V") == 0)
		print_version();
	else if (strcmp(arg, "--config") == 0 && i + 1 < argc)
		o->config_path = argv[++i];
	else if (strcmp(arg, "--config") == 0)
		usage_problem(p, "a PATH must follow", arg);
	else if ((bit = set_flag(arg, o)) != 0)
		p->seen |= bit;
	else if (arg[0] != '-')
		parse_word(arg, p);
	else
		usage_problem(p, "unknown argument", arg);
	return i;
}

/* Parses argv into the command and options; exits on help, --version and
 * usage errors. */
static const struct command *parse_args(int argc, char **argv, struct options *o)
{
	struct parsed p = {0};
	char names[128];

	for (int i = 1; i < argc; i++)
		i = parse_arg(argc, argv, i, o, &p);
	if (*p.error) {
		fprintf(stderr, "walcount: %s (see walcount %s%s)\n", p.error, p.cmd ? "help " : "--help",
			p.cmd ? p.cmd->name : "");
		exit(usage_exit(p.cmd));
	}
	if (p.is_help)
		print_help(p.topic ? p.topic : p.want_help ? "help" : NULL);
	if (p.want_help)
		print_help(p.cmd ? p.cmd->name : NULL);
	if (p.cmd == NULL) {
		help_general(stderr);
		exit(2);
	}
	if (p.seen & ~p.cmd->flags) {
		unsigned extra = p.seen & ~p.cmd->flags;
		fprintf(stderr, "walcount: %s %s not apply to %s (see walcount help %s)\n",
			flag_names(extra, names, sizeof names), (extra & (extra - 1)) ? "do" : "does", p.cmd->name, p.cmd->name);
		exit(usage_exit(p.cmd));
	}
	return p.cmd;
}

/* The environment's WALCOUNT_* names, then the file with its overrides. */
static bool load_config(const char *path, struct config *cfg, char *err, size_t errlen)
{
	if (!config_check_env(environ, err, errlen)) {
		config_defaults(cfg);
		return false;
	}
	return config_load(path, env_lookup, cfg, err, errlen);
}

int main(int argc, char **argv)
{
	struct options o = {.config_path = getenv("WALCOUNT_CONFIG") ? getenv("WALCOUNT_CONFIG") : "config.yaml"};
	const struct command *cmd = parse_args(argc, argv, &o);
	struct config cfg;
	char err[1024];

	if (!load_config(o.config_path, &cfg, err, sizeof err)) {
		fprintf(stderr, "walcount: %s\n", err);
		config_free(&cfg);
		/* A monitoring plugin that cannot judge says UNKNOWN. */
		return cmd->fn == cmd_status ? STATUS_UNKNOWN : 1;
	}
	log_setup(cfg.log_level, cfg.log_format);
	log_set_slot(cfg.slot_name);
	live_path = o.config_path;
	live_cfg = &cfg;
	int rc = cmd->fn(&cfg, &o);
	config_free(&cfg);
	return rc;
}
