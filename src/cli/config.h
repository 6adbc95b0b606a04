/* config.h - the user's defaults for run and shell: the configuration
 * file $XDG_CONFIG_HOME/agentfense/config.ini (else
 * ~/.config/agentfense/config.ini), then AGENTFENSE_* environment
 * variables over it; the command line goes over both (cmd_run.c).
 * Every value is checked here, naming where it came from. */
#ifndef AF_CONFIG_H
#define AF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "common/util.h"

enum config_key {
	/* one value each: the environment's over the file's */
	CONFIG_PRESET,
	CONFIG_NET,
	CONFIG_CHANGES,
	CONFIG_TIMEOUT,
	CONFIG_KILL_AFTER,
	CONFIG_MEMORY,
	CONFIG_CPUS,
	CONFIG_PIDS,
	CONFIG_DISK_LIMIT,
	/* lists, in the file's order, before the command line's */
	CONFIG_RULE,
	CONFIG_BIND,
	CONFIG_RO_BIND,
	CONFIG_TMPFS,
	CONFIG_NKEYS
};
#define CONFIG_NSCALARS CONFIG_RULE

struct config_value {
	char *value;
	char *source; /* "/home/u/.config/agentfense/config.ini:3" or "AGENTFENSE_NET" */
};

struct config {
	char *path;   /* the file looked for; NULL: no home to look in */
	bool found;   /* it exists */
	struct config_value scalar[CONFIG_NSCALARS]; /* value NULL: not set */
	struct config_value *list[CONFIG_NKEYS];     /* CONFIG_RULE and after */
	size_t n[CONFIG_NKEYS];
};

/* The key's name in the file ("kill-after") and its variable
 * ("AGENTFENSE_KILL_AFTER"; NULL for the lists, set in the file only). */
const char *config_key_name(enum config_key k);
const char *config_key_env(enum config_key k);

/* Read the file (if any) and the environment into *c, checking every
 * key and value.  Returns 0, or -errno with *err filled (a usage error
 * naming the file and line, or the variable) and nothing left in *c. */
int config_load(struct config *c, struct af_err *err);
void config_free(struct config *c);

/* A value of the configuration was refused where it is used: print err
 * and where the value came from.  Dies with a usage error. */
AF_NORETURN void config_error(const struct af_err *err, const struct config_value *v);

/* The configuration's preset (the default, when -p is not given) and
 * rules (before the command line's) into po, after the command line
 * filled it.  c must outlive po.  Dies naming the source of a preset
 * that does not exist. */
struct policy_options;
void config_policy_options(const struct config *c, struct policy_options *po);

#endif
