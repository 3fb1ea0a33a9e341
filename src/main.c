/* walcount: keeps Audius-style aggregate counters exact by streaming WAL
 * changes of reposts, saves and follows from a logical replication slot. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "consumer.h"
#include "db.h"
#include "log.h"
#include "prereq.h"
#include "slot.h"

#define WALCOUNT_VERSION "0.1.0"

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
	(void) sig;
	stop_requested = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"walcount %s: exact denormalised counters from a logical replication slot\n"
		"\n"
		"Usage: walcount COMMAND [--config PATH]\n"
		"\n"
		"Commands:\n"
		"  run       check prerequisites, create the state schema and slot when missing,\n"
		"            then stream until SIGINT/SIGTERM (flushes and exits 0)\n"
		"  init      only the checks, the state schema and the slot; idempotent\n"
		"\n"
		"Options:\n"
		"  --config PATH  configuration file (default: $WALCOUNT_CONFIG, else ./config.yaml);\n"
		"                 every key can be overridden by WALCOUNT_<SECTION>_<KEY>\n"
		"  --help         this text\n"
		"  --version      print the version\n",
		WALCOUNT_VERSION);
}

/* Prerequisites, state schema and slot: everything `run` does before
 * streaming. Checks come first so a failed one writes nothing. */
static int prepare(const struct config *cfg)
{
	char err[1024];
	bool created;
	PGconn *conn = db_connect(cfg, DB_NORMAL, err, sizeof err);
	int rc = 1;

	if (conn == NULL)
		log_error("%s", err);
	else if (!prereq_check(conn, err, sizeof err) || !slot_state_schema(conn, err, sizeof err) ||
		 !slot_ensure(conn, cfg, &created, err, sizeof err))
		log_error("%s", err);
	else
		rc = 0;
	PQfinish(conn);
	return rc;
}

static int cmd_init(const struct config *cfg)
{
	int rc = prepare(cfg);

	if (rc == 0)
		log_info("init: ready, slot %s", cfg->slot_name);
	return rc;
}

static int cmd_run(const struct config *cfg)
{
	struct sigaction sa = {0};

	if (prepare(cfg) != 0)
		return 1;
	if (cfg->slot_temporary)
		log_warn("slot.temporary is set: changes made while walcount is disconnected are lost");
	/* No SA_RESTART: a signal must wake the stream's select(). */
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	return consumer_run(cfg, &stop_requested);
}

static const struct command {
	const char *name;
	int (*fn)(const struct config *cfg);
} commands[] = {
	{"init", cmd_init},
	{"run", cmd_run},
};

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

/* Parses argv into the command and config path; exits on --help/--version
 * and on usage errors. */
static const struct command *parse_args(int argc, char **argv, const char **config_path)
{
	const struct command *cmd = NULL;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			exit(0);
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("walcount %s\n", WALCOUNT_VERSION);
			exit(0);
		} else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			*config_path = argv[++i];
		} else if (cmd == NULL && argv[i][0] != '-' && (cmd = find_command(argv[i])) != NULL) {
			continue;
		} else {
			fprintf(stderr, "walcount: unknown argument '%s' (see walcount --help)\n", argv[i]);
			exit(2);
		}
	}
	if (cmd == NULL) {
		usage(stderr);
		exit(2);
	}
	return cmd;
}

static const char *env_lookup(const char *name)
{
	return getenv(name);
}

int main(int argc, char **argv)
{
	const char *path = getenv("WALCOUNT_CONFIG") ? getenv("WALCOUNT_CONFIG") : "config.yaml";
	const struct command *cmd = parse_args(argc, argv, &path);
	struct config cfg;
	char err[1024];

	if (!config_load(path, env_lookup, &cfg, err, sizeof err)) {
		fprintf(stderr, "walcount: %s\n", err);
		config_free(&cfg);
		return 1;
	}
	log_setup(cfg.log_level, cfg.log_format);
	int rc = cmd->fn(&cfg);
	config_free(&cfg);
	return rc;
}
