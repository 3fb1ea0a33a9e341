#include "help.h"

#include <string.h>

#include "version.h"

static const char options[] = "Options of every command:\n"
			      "  --config PATH  configuration file (default: $WALCOUNT_CONFIG, else ./config.yaml);\n"
			      "                 every key can be overridden by WALCOUNT_<SECTION>_<KEY>\n"
			      "  -h, --help     this text; after a command, that command's own help\n"
			      "  -V, --version  print the version and exit\n"
			      "\n"
			      "Exit status 2 on a usage error (3 for status). See README.md.\n";

static const char config_option[] = "  --config PATH      configuration file (default: $WALCOUNT_CONFIG, else ./config.yaml)\n";

struct page {
	const char *name, *usage;
	const char *summary; /* for the general help */
	const char *does, *options, *exits;
};

static const struct page pages[] = {
	{"run", "run [--takeover] [--take-ownership]",
	 "check prerequisites, create the state schema and the slot with an exact\n      initial load when missing, then stream until SIGINT/SIGTERM",
	 "Checks the prerequisites, creates the walcount state schema and the slot with an\n"
	 "exact initial load when missing, then streams until SIGINT or SIGTERM, on which it\n"
	 "flushes the open batch, confirms it and exits. While another process streams the\n"
	 "slot it stands by and takes over when that one ends. SIGUSR1 starts a reconcile\n"
	 "sweep now; SIGHUP reloads the configuration file.\n",
	 "  --takeover         end another process that holds the slot (a stale consumer)\n"
	 "  --take-ownership   the counts are owned by another slot: drop that slot and its\n"
	 "                     state and recount exactly for this one\n",
	 "  0  stopped by SIGINT/SIGTERM after flushing\n"
	 "  1  a start-up check failed, or streaming stopped on an error (one line says why)\n"
	 "  2  usage error\n"},
	{"init", "init [--takeover] [--take-ownership]", "only the checks, the state schema, the slot and its initial load",
	 "Only the prerequisite checks, the state schema, the slot and its initial load;\n"
	 "idempotent. Ready, and exit 0, when a running consumer holds the slot.\n",
	 "  --takeover         end another process that holds the slot (a stale consumer)\n"
	 "  --take-ownership   move the counts to this slot from the slot that owns them\n",
	 "  0  ready\n"
	 "  1  a check failed or the slot could not be created (one line says why)\n"
	 "  2  usage error\n"},
	{"status", "status [--json]", "slot and consumer health; exit 0 ok, 1 warning, 2 critical, 3 unknown",
	 "Slot and consumer health against the status.* thresholds: retained WAL, lag,\n"
	 "slot activity, age of the last batch, ownership of the counts. Exit codes as\n"
	 "monitoring plugins (Nagios, Icinga) read them.\n",
	 "  --json             one JSON object instead of the table\n",
	 "  0  ok\n"
	 "  1  warning\n"
	 "  2  critical\n"
	 "  3  unknown: bad configuration or usage, server unreachable, no walcount state\n"},
	{"reconcile", "reconcile [--dry-run]", "one reconcile sweep now, printing what it corrected (or would correct)",
	 "One reconcile sweep now: recounts every aggregate column exactly while the stream\n"
	 "keeps applying, corrects only what drifted and prints rows checked and corrected\n"
	 "per column. While a `run` streams the slot, on any host, that process runs the\n"
	 "sweep and this one prints its result.\n",
	 "  --dry-run          print what it would correct; write nothing\n",
	 "  0  the sweep ran\n"
	 "  1  it could not (one line says why)\n"
	 "  2  usage error\n"},
	{"drop", "drop --yes", "drop the slot and walcount's state, releasing its ownership of the counts",
	 "Drops the slot and walcount's state and releases its ownership of the counts.\n"
	 "Refused while a consumer streams the slot, starts, or stands by for it.\n",
	 "  --yes              confirm\n",
	 "  0  dropped\n"
	 "  1  refused or failed (one line says why)\n"
	 "  2  usage error, or --yes missing\n"},
	{"config", "config [--json]", "print the effective configuration and where each value comes from",
	 "Prints the effective configuration: every key with its value and where the value\n"
	 "comes from (the file with line:column, a WALCOUNT_* environment variable, or the\n"
	 "default). Passwords in database.dsn are shown as ***. Connects to nothing.\n",
	 "  --json             one JSON object instead of YAML-style text\n",
	 "  0  printed\n"
	 "  1  the configuration is invalid (one line says where)\n"
	 "  2  usage error\n"},
	{"help", "help [COMMAND]", "this text, or COMMAND's own: what it does, its options and exit status",
	 "The general help, or the help of COMMAND (as `walcount COMMAND --help`).\n", "",
	 "  0  printed\n"
	 "  2  unknown command\n"},
};

void help_general(FILE *f)
{
	fprintf(f,
		"walcount %s: exact denormalised counters from a logical replication slot\n\n"
		"Usage: walcount COMMAND [OPTIONS] [--config PATH]\n\nCommands:\n",
		WALCOUNT_VERSION);
	for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++)
		fprintf(f, "  %s\n      %s\n", pages[i].usage, pages[i].summary);
	fprintf(f, "\n%s", options);
}

bool help_command(FILE *f, const char *name)
{
	for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++) {
		const struct page *p = &pages[i];
		if (strcmp(p->name, name) != 0)
			continue;
		/* help reads no configuration. */
		bool configured = strcmp(name, "help") != 0;
		fprintf(f, "Usage: walcount %s%s\n\n%s", p->usage, configured ? " [--config PATH]" : "", p->does);
		if (configured)
			fprintf(f, "\nOptions:\n%s%s", p->options, config_option);
		fprintf(f, "\nExit status:\n%s", p->exits);
		return true;
	}
	return false;
}
