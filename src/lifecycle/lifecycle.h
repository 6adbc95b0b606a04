/* lifecycle.h - one sandboxed command from start to end: the order in
 * which the project, the delta, the view and the sandbox are made,
 * started, stopped and freed, and what becomes of the delta.
 *
 *   lc_project_open (safety checks) -> lc_new (limits) -> lc_start
 *   (sandbox_begin, delta, view, sandbox_ready, view_start) -> lc_exec
 *   -> lc_wait, or lc_fd + lc_step from an event loop -> lc_stop
 *   (sandbox gone, then the view) -> lc_finish (sync, keep or discard)
 *   -> lc_free.
 *
 * Library code: nothing here prints or exits; errors come back in a
 * struct af_err (hints included) and what happened as data (lc_end(),
 * struct lc_finish), for the CLI to print and for serve to send.
 * Process-wide settings stay the caller's: the signal mask lc_wait()
 * needs, RLIMIT_NOFILE, a terminal relay.  Any number of lifecycles may
 * exist in one process; each is used by one thread at a time, and its
 * sandbox dies with the thread that called lc_start() (see sandbox.h). */
#ifndef AF_LIFECYCLE_H
#define AF_LIFECYCLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "delta/delta.h"
#include "sandbox/reslimits.h"
#include "sandbox/sandbox.h"

struct policy;

/* A project opened and checked for sandboxes. */
struct lc_project {
	int fd;           /* O_DIRECTORY fd of the project root, or -1 */
	char *real;       /* its canonical path */
	char *state_real; /* agentfense's state directory, canonical */
};

/* Open the project DIR and refuse topologies that would defeat the
 * sandbox: a project every sandbox shows read-only anyway, a state
 * directory inside one, project and state directory overlapping.
 * Returns 0, or -errno with *err filled (exit code 2 for bad input). */
int lc_project_open(const char *dir, struct lc_project *p, struct af_err *err);
void lc_project_close(struct lc_project *p);

/* Canonical form of a path that may not exist yet: the longest existing
 * prefix resolved, the rest appended.  Returns a malloc'd string. */
char *lc_canonical(const char *path);

/* Resolve a root filesystem directory (opt names it in messages:
 * "--rootfs", "--image") and refuse one that holds the project or the
 * state directory, or lies in either: those would be shown whole,
 * outside the view.  Returns its canonical path (malloc'd), or NULL
 * with *err filled (exit code 2). */
char *lc_check_root_dir(const char *opt, const char *dir, const struct lc_project *p,
			struct af_err *err);

/* Can FUSE work at all?  Returns 0, or -errno with *err filled and a
 * hint when the cause is known. */
int lc_check_dev_fuse(struct af_err *err);

/* What the caller wants the sandboxed command's life to be. */
struct lc_config {
	const struct lc_project *project; /* borrowed; must outlive the lifecycle */
	/* finalized; borrowed, must outlive the lifecycle (and, if the view
	 * stopped answering, the process: see lc_stuck()) */
	const struct policy *policy;
	/* The sandbox, borrowed until lc_start() returns (it is copied).
	 * fuse_options and limits are the lifecycle's to set. */
	struct sandbox_config sandbox;
	struct limits_spec limits;
	uint64_t disk_limit; /* bytes the delta may take; 0: half the free space there */
	/* The view's budgets, as in struct view_config (0: its defaults) */
	unsigned view_fds;
	unsigned view_threads;
	int view_spin_us;
	/* A service sandbox (sandbox.service, no argv): lc_exec() lets its
	 * PID 1 wait for lc_spawn() requests. */
	bool service;
};

struct lifecycle;

/* Create a lifecycle and its limits (cgroups, or the rlimit fallback);
 * nothing runs yet.  Returns 0, or -errno with *err filled. */
int lc_new(const struct lc_config *cfg, struct lifecycle **out, struct af_err *err);

/* What the limits' fallback does not enforce (*n warnings). */
const struct limits_warning *lc_limits_warnings(const struct lifecycle *lc, size_t *n);

/* Start the sandbox (it builds its root while the delta and the view
 * are made), then serve the view on its mount.  The command has not
 * started yet.  Returns 0, or -errno with *err filled; then lc_stop(),
 * lc_finish() and lc_free() still apply. */
int lc_start(struct lifecycle *lc, struct af_err *err);

/* lc_start() after lc_stop() starts again on the same delta (a stopped
 * service sandbox resumed): a new view and a new sandbox over the delta
 * and its base records, which are kept until lc_finish(); not after
 * lc_finish() (-EINVAL), nor when the view stopped answering (-EBUSY). */

/* The sandbox, between lc_start() and lc_stop(), for sandbox_pty() and
 * a caller's own wait (a terminal relay); NULL otherwise. */
struct sandbox *lc_sandbox(struct lifecycle *lc);

/* Let the command start.  Returns 0 or -errno with *err filled. */
int lc_exec(struct lifecycle *lc, struct af_err *err);

/* Start a process in a running service sandbox (sandbox_spawn()).
 * Returns 0 with *out, or -errno with *err filled (-ESRCH: not running). */
int lc_spawn(struct lifecycle *lc, const struct sproc_spec *sp,
	     struct sandbox_proc **out, struct af_err *err);

/* Wait for the command, blocking, with sandbox_wait() (signals
 * forwarded: the caller blocks them beforehand).  Returns 0 with
 * lc_end()->res filled, or -errno with *err filled. */
int lc_wait(struct lifecycle *lc, double timeout, struct af_err *err);

/* For an event loop: the fd that becomes readable when lc_step() has
 * something to do (the sandbox's control socket), and a step that never
 * waits for the command.  Returns 1 when the command ended (lc_end()->res
 * filled), 0 while it runs, or -errno with *err filled.  A timeout is the
 * loop's: lc_time_up() kills the sandbox and records the timeout. */
int lc_fd(const struct lifecycle *lc);
int lc_step(struct lifecycle *lc, struct af_err *err);
void lc_time_up(struct lifecycle *lc);

/* The command's end as the caller's own wait saw it (a terminal relay
 * waiting in place of lc_wait()). */
void lc_set_result(struct lifecycle *lc, const struct sandbox_result *res);

/* What happened, once stopped. */
struct lc_end {
	bool ran;                   /* the command was started */
	bool ended;                 /* res says how it ended */
	struct sandbox_result res;
	/* The view stopped answering and its connection was cut: its
	 * threads may still hold the view, the delta and the policy (see
	 * lc_stuck()); the delta is kept, never synced */
	bool view_cut;
	size_t nodes_refused; /* the view's inode cap, if it refused a lookup */
	bool disk_full;       /* the disk budget refused a write */
	uint64_t disk_limit;  /* that budget, bytes */
};

/* End the sandbox (everything in it killed) and then the view, waiting
 * at most about 2 s for each when processes hang on the view; lc_end()
 * then says what happened.  Idempotent. */
void lc_stop(struct lifecycle *lc);
const struct lc_end *lc_end(const struct lifecycle *lc);

/* The delta's run directory once lc_start() made it, else NULL; valid
 * until lc_finish() or lc_free() (serve records it, so a serve killed
 * with SIGKILL leaves its successor the path of the changes). */
const char *lc_delta_path(const struct lifecycle *lc);

/* What to do with the delta at the end (as --changes lists them). */
enum lc_changes { LC_CHANGES_SYNC, LC_CHANGES_DISCARD, LC_CHANGES_KEEP };

/* What became of the delta. */
enum lc_fate {
	LC_FATE_NONE,        /* there was no delta */
	LC_FATE_DISCARDED,   /* removed (asked, or the command never ran) */
	LC_FATE_KEPT,        /* kept, as asked */
	LC_FATE_SYNCED,      /* synced to the project, then removed */
	LC_FATE_CONFLICTS,   /* synced but for conflicts, kept with those */
	LC_FATE_SYNC_FAILED, /* sync failed: kept if saved */
	LC_FATE_UNSYNCED,    /* the view was cut: kept, not synced */
};

struct lc_finish {
	enum lc_fate fate;
	struct sync_report sync; /* SYNCED, CONFLICTS, SYNC_FAILED: counts and notes */
	bool kept;               /* the delta is saved, at delta_path */
	const char *delta_path;  /* valid until lc_free() */
	struct af_err save_err;  /* SYNC_FAILED and not kept: why not */
};

/* Give the delta its fate, after lc_stop(): ch if the command ran and
 * the view ended cleanly; removed if the command never ran; kept if the
 * view was cut.  *out says what was done, also on failure; free it with
 * lc_finish_free().  Returns 0, or -errno with *err filled. */
int lc_finish(struct lifecycle *lc, enum lc_changes ch, struct lc_finish *out,
	      struct af_err *err);
void lc_finish_free(struct lc_finish *f);

/* The view stopped answering: its threads are blocked for good and may
 * hold the view, the delta and the policy, so lc_free() leaves those to
 * the process's exit and the caller must not free the policy. */
bool lc_stuck(const struct lifecycle *lc);

/* Free everything (lc_stop() first if needed).  Removing the limits'
 * cgroups may block up to 2 s each while the kernel lets go of the dead
 * (limits_free()). */
void lc_free(struct lifecycle *lc);

#endif
