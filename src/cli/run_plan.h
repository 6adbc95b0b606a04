/* run_plan.h - what `run` is about to do, in words: for --dry-run
 * (everything, nothing started) and -v (what a person needs to check a
 * run against: where the rules came from, the mounts, the delta). */
#ifndef AF_RUN_PLAN_H
#define AF_RUN_PLAN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "policy/policy.h"
#include "sandbox/mounts.h"
#include "sandbox/reslimits.h"

struct run_plan {
	const struct policy *policy;  /* finalized */
	const char *project;          /* canonical host path */
	const char *root_dir;         /* --rootfs/--image root, or NULL: the host's */
	const char *image;            /* --image not unpacked yet (--dry-run), or NULL */
	const struct mount_list *mounts;
	const char *resolv;           /* the mount that shows where /etc/resolv.conf leads */
	bool net_host;
	bool seccomp_off;
	const struct limits_spec *limits;
	const struct limits *lim;     /* how each limit is enforced; NULL: not known */
	uint64_t disk_limit;          /* 0: the default */
	double timeout, kill_after;   /* 0: none */
	const char *changes;          /* what becomes of the changes, in words */
	const char *workspace;        /* where the view is shown */
	const char *workdir;          /* inside the sandbox */
	char *const *argv;            /* NULL: an interactive shell */
	const char *delta;            /* the run directory, or NULL: not made yet */
	const char *state_dir;        /* where run directories go */
};

/* Print the plan on f, each line prefixed with prefix ("" or
 * "agentfense: "); full adds what -v leaves out (network, limits,
 * timeout, changes, command).  Cannot fail. */
void run_plan_print(FILE *f, const char *prefix, const struct run_plan *p, bool full);

/* The command could not be executed (exec_errno): say so, and why when
 * the host can tell (run_hints.c): a script's missing interpreter, named,
 * or a host path the sandbox does not show, with the --ro-bind that
 * would.  envp: the command's environment (its PATH).  Cannot fail. */
void run_plan_exec_failed(const struct run_plan *p, char *const *envp, int exec_errno);

#endif
