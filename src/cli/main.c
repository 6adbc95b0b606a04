/* main.c - agentfense entry point: refuse unsafe set-ups, then dispatch
 * to the subcommand table. */
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "common/suggest.h"
#include "common/util.h"

static int cmd_help(int argc, char **argv);
static int cmd_version(int argc, char **argv);

static const struct cmd commands[] = {
	{ "run", cmd_run, "run a command in a sandbox over a permissioned view of DIR" },
	{ "shell", cmd_shell, "start an interactive shell in a sandbox over DIR" },
	{ "preset", cmd_preset, "list presets or show one" },
	{ "explain", cmd_explain, "show the level of paths and the rule that decided it" },
	{ "serve", cmd_serve, "serve the API (codebases, sandboxes, sessions) on a Unix socket" },
	{ "codebase", cmd_codebase, "create, list, fill and remove codebases through serve" },
	{ "config", cmd_config, "show the defaults of run and shell and where each comes from" },
	{ "sandbox", cmd_sandbox, "create, start, exec in and remove sandboxes through serve" },
	{ "session", cmd_session, "persistent shells in a sandbox of serve" },
	{ "help", cmd_help, "show this help" },
	{ "version", cmd_version, "show the version" },
	{ NULL, NULL, NULL },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: agentfense <command> [<args>]\n\n"
		   "A least-privilege filesystem sandbox for AI agents.\n\ncommands:\n");
	for (const struct cmd *c = commands; c->name; c++)
		fprintf(f, "  %-9s %s\n", c->name, c->summary);
	fprintf(f, "\nRun 'agentfense <command> --help' for a command's options;"
		   " see agentfense(1).\n");
}

/* "unknown command 'x'", with the closest command as a hint. */
static int unknown_command(const char *name)
{
	const char *names[ARRAY_SIZE(commands)];
	size_t n = 0;
	for (const struct cmd *c = commands; c->name; c++)
		names[n++] = c->name;
	error_msg("unknown command '%s'", name);
	const char *near = suggest_name(name, names, n);
	if (near)
		hint_msg("did you mean '%s'?", near);
	else
		hint_msg("run 'agentfense help' for the list of commands");
	return AF_EXIT_USAGE;
}

static int cmd_help(int argc, char **argv)
{
	if (argc > 1) {
		for (const struct cmd *c = commands; c->name; c++)
			if (strcmp(c->name, argv[1]) == 0 && c->fn != cmd_help) {
				char *args[] = { argv[1], (char *)"--help", NULL };
				return c->fn(2, args);
			}
		return unknown_command(argv[1]);
	}
	usage(stdout);
	return 0;
}

static int cmd_version(int argc, char **argv)
{
	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("usage: agentfense version\n\nShow the version (also: agentfense --version).\n");
		return 0;
	}
	if (argc > 1) {
		error_msg("%s takes no arguments: unexpected '%s'", argv[0], argv[1]);
		return AF_EXIT_USAGE;
	}
	printf("agentfense %s\n", AF_VERSION);
	return 0;
}

/* agentfense must never grow a privileged surface: refuse to run with
 * set-user-ID or set-group-ID privileges. */
static void refuse_setuid(void)
{
	struct stat st;

	/* AT_SECURE covers set-ID and file capabilities even when the real
	 * and effective IDs happen to be equal (root running a set-ID
	 * binary); the mode check catches an installation that would grant
	 * privileges to other users. */
	if (getuid() != geteuid() || getgid() != getegid() || getauxval(AT_SECURE))
		die(AF_EXIT_FAILURE, "refusing to run set-user-ID or set-group-ID");
	if (stat("/proc/self/exe", &st) == 0 && (st.st_mode & (S_ISUID | S_ISGID))) {
		error_msg("refusing to run: the agentfense binary is installed set-user-ID or set-group-ID");
		hint_msg("agentfense needs no privileges; run 'chmod u-s,g-s' on it");
		exit(AF_EXIT_FAILURE);
	}
}

int main(int argc, char **argv)
{
	refuse_setuid();
	if (argc < 2) {
		usage(stderr);
		return AF_EXIT_USAGE;
	}
	const char *name = argv[1];
	if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0)
		return cmd_version(argc - 1, argv + 1);
	if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
		return cmd_help(1, argv + 1);
	for (const struct cmd *c = commands; c->name; c++)
		if (strcmp(c->name, name) == 0)
			return c->fn(argc - 1, argv + 1);
	if (name[0] == '-') {
		/* agentfense's own options come before the command */
		static const char *const opts[] = { "--help", "--version" };
		error_msg("unknown option '%s'", name);
		const char *near = suggest_name(name, opts, ARRAY_SIZE(opts));
		if (near)
			hint_msg("did you mean '%s'?", near);
		else
			hint_msg("options go after the command: 'agentfense <command> [OPTIONS]'; "
				 "run 'agentfense help' for the commands");
		return AF_EXIT_USAGE;
	}
	return unknown_command(name);
}
