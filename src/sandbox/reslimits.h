/* reslimits.h - resource limits for one sandbox: memory, CPU time and the
 * number of processes.
 *
 * limits_new() decides, for each requested limit, how it is enforced,
 * best first:
 *   cgroup v2  a leaf cgroup under a delegated subtree we can write to
 *              (memory.max, pids.max, cpu.max): the sandbox as a whole;
 *   cgroup v1  a child of our own cgroup in the controller's hierarchy,
 *              where that directory is writable (root, or delegated);
 *   rlimit     --pids: RLIMIT_NPROC, counted per user namespace (so per
 *              sandbox) since Linux 5.14; --memory: RLIMIT_AS, per
 *              process only, with a warning; --cpus: nothing, with a
 *              warning.
 * No limit is ever reported as applied when it is not: every fallback
 * that enforces less leaves a warning in the object for the CLI to show.
 *
 * One struct limits per sandbox and no global state, so a process may
 * hold any number of sandboxes.  The sandbox calls limits_attach() on
 * its init before the command starts, limits_apply_rlimits() in the
 * command's process before execve (system calls only), and
 * limits_usage() once everything in the sandbox is gone.  All functions
 * accept a NULL struct limits (no limits). */
#ifndef AF_RESLIMITS_H
#define AF_RESLIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "common/util.h"

/* cpu.max / cfs period: quota microseconds are spent per this period. */
#define LIMITS_CPU_PERIOD_US 100000

struct limits_spec {
	uint64_t memory;    /* bytes; 0: no limit */
	uint32_t cpu_quota; /* microseconds per LIMITS_CPU_PERIOD_US; 0: no limit */
	uint32_t pids;      /* processes and threads, the sandbox's init included; 0: none */
};

enum limits_ctl { LIMITS_MEMORY, LIMITS_PIDS, LIMITS_CPU, LIMITS_NCTL };

enum limits_backend {
	LIMITS_NONE,       /* not requested */
	LIMITS_CGROUP2,
	LIMITS_CGROUP1,
	LIMITS_RLIMIT,     /* RLIMIT_NPROC / RLIMIT_AS in the command */
	LIMITS_UNENFORCED, /* requested, not applied (a warning says so) */
};

/* A warning about a limit enforced less than asked, and what to do. */
struct limits_warning {
	char msg[768];
	char hint[256];
};

/* What the limits did, read after the sandbox is gone.  Counters the
 * backend cannot observe (rlimits) stay 0. */
struct limits_usage {
	uint64_t oom_kills;    /* processes killed by the memory limit */
	uint64_t pids_refused; /* forks/clones the pids limit refused */
	uint64_t memory_peak;  /* bytes at most in use (0: unknown) */
};

struct limits;

/* Parse "--memory SIZE": a size as parse_size() reads it (512M, 1.5G,
 * 1GiB: binary units), at least 4 MiB.  Parse
 * "--cpus N.N" (0.01 to 1024) into a quota per LIMITS_CPU_PERIOD_US.
 * Parse "--pids N" (2 to 4194304: the sandbox's init counts).  Return 0,
 * or -EINVAL with *err filled (a usage error). */
int limits_parse_memory(const char *s, uint64_t *out, struct af_err *err);
/* Parse "--disk-limit SIZE": the forms of --memory, at least 1 MiB. */
int limits_parse_disk(const char *s, uint64_t *out, struct af_err *err);
int limits_parse_cpus(const char *s, uint32_t *quota, struct af_err *err);
int limits_parse_pids(const char *s, uint32_t *out, struct af_err *err);

/* "128 MiB", "1 GiB", "1000000 bytes": bytes for messages. */
void limits_format_size(uint64_t bytes, char *buf, size_t len);

/* Choose how each limit of spec is enforced and create the sandbox's
 * cgroups with the limits written.  *out is NULL when spec asks for
 * nothing.  Returns 0, or -errno with *err filled: a usage error when the
 * kernel refuses a value (EINVAL), 125 otherwise. */
int limits_new(const struct limits_spec *spec, struct limits **out, struct af_err *err);

/* How limit ctl is enforced. */
enum limits_backend limits_backend(const struct limits *l, enum limits_ctl ctl);

/* The warnings limits_new() left (*n of them). */
const struct limits_warning *limits_warnings(const struct limits *l, size_t *n);

/* The cgroup directory that holds limit ctl, or NULL if none. */
const char *limits_cgroup_path(const struct limits *l, enum limits_ctl ctl);

/* Move pid (the sandbox's init, before it starts anything) into the
 * sandbox's cgroups.  Returns 0 or -errno with *err filled. */
int limits_attach(const struct limits *l, pid_t pid, struct af_err *err);

/* In the command's process before execve: set the fallback rlimits.
 * System calls only (the caller may be a clone of a threaded process).
 * Returns 0 or -1 with errno. */
int limits_apply_rlimits(const struct limits *l);

/* The same rlimits as plain values, for a process that goes on without
 * the caller's memory (a service sandbox's PID 1 executes itself anew). */
struct limits_rlimits {
	bool set_nproc, set_as;
	struct rlimit nproc, as;
};
void limits_get_rlimits(const struct limits *l, struct limits_rlimits *out);
/* Set them.  System calls only.  Returns 0 or -1 with errno. */
int limits_set_rlimits(const struct limits_rlimits *rl);

/* The RLIMIT_NPROC value the sandbox's tasks count against when --pids
 * falls back to it (nothing counts the forks it refuses: the caller
 * samples the sandbox's tasks instead), or 0. */
uint64_t limits_nproc_fallback(const struct limits *l);

/* Fill *u from the cgroups' counters (zeros where unknown). */
void limits_usage(const struct limits *l, struct limits_usage *u);

/* Remove the sandbox's cgroups, waiting for them to empty: at most 2 s
 * per cgroup, blocking the calling thread (the kernel takes a moment to
 * let go of the dead after the sandbox's PID 1 was reaped). */
void limits_free(struct limits *l);

#endif
