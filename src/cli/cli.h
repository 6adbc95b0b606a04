/* cli.h - the subcommand table and helpers shared by subcommands. */
#ifndef AF_CLI_H
#define AF_CLI_H

#include <stdbool.h>

#include "policy/policy.h"

struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv); /* argv[0] is the subcommand name */
	const char *summary;
};

int cmd_run(int argc, char **argv);
int cmd_shell(int argc, char **argv);
int cmd_preset(int argc, char **argv);
int cmd_explain(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_codebase(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_sandbox(int argc, char **argv);
int cmd_session(int argc, char **argv);

/* Options every policy-taking subcommand accepts (run, explain, later
 * shell/serve).  Collected in order, applied by policy_options_build(). */
struct policy_opt {
	enum { POPT_PRESET, POPT_RULE, POPT_POLICY } kind;
	const char *arg;
	const char *origin; /* a rule's, for explain; NULL: "--rule" */
};
struct policy_options {
	const char *preset; /* -p; NULL: default_preset */
	const char *default_preset; /* the configuration's; NULL: agent-safe */
	bool announce;      /* say when a user preset shadows a built-in one */
	struct policy_opt *items;
	int n;
};
/* Record one -p/-r/--policy option. */
void policy_options_add(struct policy_options *po, int kind, const char *arg);
/* Record a rule of the configuration (origin: its file and line),
 * before the command line's. */
void policy_options_add_rule(struct policy_options *po, const char *spec, const char *origin);
/* Build a finalized policy: the preset (-p; else agent-safe unless a
 * --policy file names a preset), then the --policy files and --rule
 * specs in command-line order.  Dies with a
 * clear message and a usage error on bad input. */
struct policy *policy_options_build(const struct policy_options *po);
void policy_options_free(struct policy_options *po);

/* "Did you mean" for option parsers (hints.c).  struct option is
 * getopt.h's. */
struct option;
/* The long option (without "--") closest to arg ("--presett" or
 * "--presett=x"), or NULL.  Cannot fail. */
const char *suggest_option(const char *arg, const struct option *longopts);
/* True if arg names one of the options: "-p" for a letter of shorts, or
 * "--preset" / "--preset=x" exactly. */
bool is_option_of(const char *arg, const struct option *longopts, const char *shorts);
/* Print "hint: did you mean '--preset'?" when there is a close one. */
void hint_unknown_option(const char *arg, const struct option *longopts);

#endif
