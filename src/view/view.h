/* view.h - the permissioned, copy-on-write FUSE view of a project.
 *
 * A view serves one FUSE connection: lookups resolve in the project
 * (lower, never modified) and the delta (upper), every operation is
 * checked against the policy, and every change lands in the delta.  The
 * view never follows a symlink on the host side.  Many views may live in
 * one process; each owns its threads and its inode table.
 *
 * Life cycle: view_new() -> view_start(fuse_fd) -> (sandbox runs) ->
 * view_stop() once the connection is gone (the mount namespace died) ->
 * view_free().  A view that stopped answering is cut off instead
 * (view_abort()) and left for the process's exit. */
#ifndef AF_VIEW_H
#define AF_VIEW_H

#include <sys/types.h>

#include "delta/delta.h"
#include "policy/policy.h"
#include "common/util.h"

/* The default cap on the inodes a view keeps for the kernel (a few
 * hundred bytes each): the kernel decides when to forget them, and one
 * that never does must not grow the server without bound. */
#define VIEW_MAX_NODES 1000000

struct view_config {
	int project_fd;               /* O_DIRECTORY fd of the project root; borrowed */
	struct delta *delta;          /* borrowed */
	const struct policy *policy;  /* finalized; borrowed */
	double cache_timeout;         /* entry/attr timeout in seconds (0: default) */
	unsigned max_threads;         /* 0: default */
	/* How long (microseconds) a server thread polls for the next request
	 * before it sleeps, while requests come back to back: 0 for the
	 * default (50), negative never to poll.  Polling saves the wake-up
	 * of an idle CPU per request (view_loop.c). */
	int spin_us;
	/* The mount has the default_permissions option: the view then shows
	 * each file's level in its mode bits (view: no rwx, read: no w) so
	 * the kernel refuses a forbidden open by itself, and answers the
	 * first open with ENOSYS so the kernel stops sending OPEN/RELEASE
	 * (two round trips per file).  Reads and writes stay checked in the
	 * view.  Without the option, every open is checked in the view. */
	bool kernel_permissions;
	/* Inodes the view keeps at most (0: VIEW_MAX_NODES); a lookup past
	 * it fails with ENFILE. */
	size_t max_nodes;
	/* Open files the view may keep for its files' I/O and created
	 * files' handles (0: VIEW_DEFAULT_FDS), the least recently used
	 * recycled past it.  The view never changes RLIMIT_NOFILE: the
	 * caller gives each view its share of it (run: an eighth of it). */
	unsigned max_fds;
};

/* The default of max_fds: 200 views in one process keep 12,800 fds at
 * most. */
#define VIEW_DEFAULT_FDS 64

struct view;

/* Returns 0 or -errno with *err filled. */
int view_new(const struct view_config *cfg, struct view **out, struct af_err *err);

/* Start serving the already-mounted FUSE connection fuse_fd (a /dev/fuse
 * fd the sandbox mounted); the view takes ownership of the fd.  Returns
 * once the server threads run: 0, or -errno with *err filled. */
int view_start(struct view *v, int fuse_fd, struct af_err *err);

/* Wait for the server to finish: call after every process using the
 * mount is gone (the kernel then aborts the connection).  Idempotent. */
void view_stop(struct view *v);

/* The node cap (max_nodes) if it ever refused a lookup, else 0. */
size_t view_nodes_refused(const struct view *v);

void view_free(struct view *v);

/* Has the view stopped answering: is a request being served now, and
 * was none answered for the last secs seconds?  Lock-free; any thread. */
bool view_stuck(struct view *v, double secs);

/* Cut the FUSE connection now, as the kernel does when the mount goes:
 * every request in the kernel or being served fails, so processes
 * blocked on one (which even SIGKILL does not end) go on, and die.  For
 * a view that stopped answering: its threads may stay blocked for good,
 * so it is then left to the process's exit, neither stopped nor freed.
 * Lock-free; any thread.  Returns 0 or -errno. */
int view_abort(struct view *v);

/* view_stop() waiting at most secs for the server threads.  Returns 0,
 * or -ETIMEDOUT when they did not finish: some are blocked, and the
 * view is to be left as after view_abort(). */
int view_stop_within(struct view *v, double secs);

#endif
