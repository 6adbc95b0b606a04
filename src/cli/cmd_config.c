/* cmd_config.c - `agentfense config`: the defaults run and shell use,
 * each with where it came from (the configuration file and line, an
 * AGENTFENSE_* variable, or agentfense's own default). */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/config.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: agentfense config\n"
		   "\n"
		   "Show the defaults of run and shell and where each comes from:\n"
		   "$XDG_CONFIG_HOME/agentfense/config.ini (else ~/.config/agentfense/\n"
		   "config.ini), section [run], then AGENTFENSE_* environment variables\n"
		   "over it; options on the command line go over both.  See agentfense(1),\n"
		   "CONFIGURATION.\n");
}

/* agentfense's own default for key k, in words. */
static const char *builtin_default(enum config_key k)
{
	switch (k) {
	case CONFIG_PRESET:
		return "agent-safe";
	case CONFIG_NET:
		return "none";
	case CONFIG_CHANGES:
		return "sync";
	case CONFIG_KILL_AFTER:
		return "10s";
	case CONFIG_DISK_LIMIT:
		return "half the free space";
	case CONFIG_TIMEOUT:
	case CONFIG_MEMORY:
	case CONFIG_CPUS:
	case CONFIG_PIDS:
	case CONFIG_RULE:
	case CONFIG_BIND:
	case CONFIG_RO_BIND:
	case CONFIG_TMPFS:
	case CONFIG_NKEYS:
		break;
	}
	return "none";
}

static void show(const char *key, const char *value, const char *source)
{
	printf("%-10s = %-28s (%s)\n", key, value, source);
}

int cmd_config(int argc, char **argv)
{
	struct af_err err = { 0 };
	struct config c;

	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc > 1) {
		error_msg("config: unexpected argument '%s'", argv[1]);
		hint_msg("see 'agentfense config --help'");
		return AF_EXIT_USAGE;
	}
	if (config_load(&c, &err) < 0) {
		print_err(&err);
		return err.exit_code ? err.exit_code : AF_EXIT_USAGE;
	}
	if (c.path)
		printf("# %s: '%s'\n", c.found ? "configuration file" : "no configuration file",
		       c.path);
	else
		printf("# no configuration file: no home directory\n");
	for (int k = 0; k < CONFIG_NSCALARS; k++) {
		const struct config_value *v = &c.scalar[k];
		if (v->value)
			show(config_key_name((enum config_key)k), v->value, v->source);
		else
			show(config_key_name((enum config_key)k),
			     builtin_default((enum config_key)k), "default");
	}
	for (int k = CONFIG_NSCALARS; k < CONFIG_NKEYS; k++) {
		for (size_t i = 0; i < c.n[k]; i++)
			show(config_key_name((enum config_key)k), c.list[k][i].value,
			     c.list[k][i].source);
		if (!c.n[k])
			show(config_key_name((enum config_key)k), "none", "default");
	}
	config_free(&c);
	fflush(stdout);
	return ferror(stdout) ? AF_EXIT_FAILURE : 0;
}
