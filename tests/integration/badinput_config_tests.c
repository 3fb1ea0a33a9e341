/* badinput_config: design.md §9 row 11, a config file missing, unreadable,
 * not YAML or with wrong types. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>

#include "badinput.h"

/* Row 11: config file missing / unreadable / not YAML / wrong types. */

struct config_case {
	const char *name;
	const char *text; /* NULL: no file */
	size_t len;       /* 0: strlen(text) */
	const char *want; /* after "walcount: PATH" */
};

static const struct config_case CONFIG_CASES[] = {
	{"missing", NULL, 0, ": cannot read: No such file or directory"},
	{"not-yaml-flow", "database: [unclosed\n", 0,
	 ":2:1: did not find expected ',' or ']' (while parsing a flow sequence at 1:11)"},
	{"not-yaml-binary", "\x89PNG\r\n\x1a\n\0\0", 10, ":1:1: invalid leading UTF-8 octet"},
	{"not-yaml-scalar", "just a string\n", 0, ":1:1: the top level must be a mapping"},
	{"wrong-int", "batch:\n  max_changes: lots\n", 0, ":2:16: batch.max_changes: bad integer 'lots'"},
	{"wrong-bool", "slot:\n  temporary: maybe\n", 0, ":2:14: slot.temporary: bad boolean 'maybe' (use true or false)"},
	{"wrong-section", "database: 5\n", 0, ":1:11: database must be a mapping"},
	{"wrong-sequence", "batch:\n  max_delay: [1, 2]\n", 0, ":2:14: batch.max_delay must be a duration, not a sequence"},
	{"wrong-enum", "log:\n  level: loud\n", 0, ":2:10: log.level: bad value 'loud' (use error, warn, info or debug)"},
	{"wrong-duration", "batch:\n  max_delay: 5\n", 0, ":2:14: batch.max_delay: bad duration '5' (use ms, s, m or h)"},
	{"unknown-key", "batch:\n  max_change: 5\n", 0, ":2:3: unknown key 'batch.max_change' (did you mean batch.max_changes?)"},
};

/* Each case: exit 1, nothing on stdout, exactly "walcount: PATH<want>" on
 * stderr, nothing connected or written; meanwhile the running consumer
 * stays exact. Unreadable: mode 000, run as nobody when root (root reads
 * anything), and a directory. A wrong type from the environment too. */
bool test_bi_config_file(struct ctx *t)
{
	char dir[PATH_MAX], path[PATH_MAX + 64], want[PATH_MAX + 256];
	const char *argv[] = {IT.bin, "run", "--config", path, NULL};
	int cases = 0;

	snprintf(dir, sizeof dir, "%s/bi-config", IT.tmp);
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return fail(t, "mkdir %s: %s", dir, strerror(errno));
	if (!configure(t, &(struct wc_opts){0}) || !start_streaming(t))
		return false;
	for (size_t i = 0; i < sizeof CONFIG_CASES / sizeof CONFIG_CASES[0]; i++) {
		const struct config_case *c = &CONFIG_CASES[i];
		char label[64];
		snprintf(path, sizeof path, "%s/%s.yaml", dir, c->name);
		unlink(path);
		if (c->text && !write_bytes(t, path, c->text, c->len ? c->len : strlen(c->text)))
			return false;
		snprintf(want, sizeof want, "walcount: %s%s\n", path, c->want);
		snprintf(label, sizeof label, "bi-config-%s", c->name);
		if (!refused(t, label, argv, want, 1) || !run_changes(t, 200, false))
			return false;
		cases++;
	}
	/* A directory. */
	snprintf(path, sizeof path, "%s", dir);
	snprintf(want, sizeof want, "walcount: %s: cannot read: Is a directory\n", dir);
	if (!refused(t, "bi-config-directory", argv, want, 1))
		return false;
	cases++;
	/* Unreadable. */
	snprintf(path, sizeof path, "%s/unreadable.yaml", dir);
	if (!write_bytes(t, path, "log:\n  level: info\n", 19) || chmod(path, 0) != 0)
		return fail(t, "chmod %s: %s", path, strerror(errno));
	snprintf(want, sizeof want, "walcount: %s: cannot read: Permission denied\n", path);
	const char *as_nobody[] = {RUNUSER_PATH, "-u", "nobody", "--", IT.bin, "run", "--config", path, NULL};
	if (!refused(t, "bi-config-unreadable", geteuid() == 0 ? as_nobody : argv, want, 1))
		return false;
	cases++;
	/* A wrong type from the environment (it_spawn clears WALCOUNT_*; env
	 * sets it again for walcount alone). */
	char good[PATH_MAX];
	snprintf(good, sizeof good, "%s", t->wc.config);
	const char *with_env[] = {"/usr/bin/env", "WALCOUNT_BATCH_MAX_CHANGES=many", IT.bin, "run", "--config", good, NULL};
	if (!refused(t, "bi-config-env", with_env,
		     "walcount: WALCOUNT_BATCH_MAX_CHANGES: batch.max_changes: bad integer 'many'\n", 1))
		return false;
	cases++;
	/* A misspelt variable is refused as a misspelt key is. */
	const char *typo[] = {"/usr/bin/env", "WALCOUNT_BATCH_MAX_CHANGE=5", IT.bin, "run", "--config", good, NULL};
	if (!refused(t, "bi-config-env-typo", typo,
		     "walcount: WALCOUNT_BATCH_MAX_CHANGE: unknown variable (did you mean WALCOUNT_BATCH_MAX_CHANGES?)\n", 1))
		return false;
	cases++;
	bool exists = true;
	if (!slot_exists(t, "walcount", &exists) || (exists && !fail(t, "a refused config created slot \"walcount\"")))
		return false;
	if (!caught_up(t, CAUGHT_UP_TIMEOUT) || !drift_zero(t))
		return false;
	snprintf(t->details, sizeof t->details,
		 "%d cases (missing, directory, unreadable, 3 not YAML, 6 wrong types or keys, env value, env name): exit 1 with the exact "
		 "one-line message each; the running consumer stayed exact (drift 0)",
		 cases);
	return true;
}
