/* rootfs.h - the sandbox's minimal root filesystem, built inside the
 * sandbox child (new user, mount and PID namespaces, before the command
 * runs).
 *
 * Everything here runs in a child cloned from a possibly multithreaded
 * process, so it must stay async-signal-safe in practice: system calls,
 * stack buffers and snprintf only; no malloc, no stdio streams, no
 * strerror (the errno travels to the parent, which formats it). */
#ifndef AF_ROOTFS_H
#define AF_ROOTFS_H

#include <stdbool.h>
#include <sys/types.h>

#include "sandbox/mounts.h"
#include "common/util.h"

struct rootfs_config {
	uid_t uid;            /* owner of the FUSE mount, as seen inside */
	gid_t gid;
	const char *fuse_options; /* extra FUSE mount options, or NULL */
	/* Another root filesystem (canonical host path): its top-level
	 * entries, bound read-only, replace the host's system directories;
	 * NULL for the host's. */
	const char *root_dir;
	/* Where the view is mounted (absolute, clean), made with its
	 * parents, never through a symbolic link. */
	const char *workspace;
	/* Extra mounts (--bind, --ro-bind, --tmpfs), parents first. */
	const struct mount_spec *mounts;
	size_t n_mounts;
	/* Room for n_mounts fds, prepared by the caller (the child cannot
	 * malloc): the bind sources, opened before the new root hides
	 * the host's /tmp. */
	int *mount_fds;
};

/* Top-level entries of a root_dir that are never bound: the sandbox
 * makes its own, NULL-terminated. */
extern const char *const rootfs_own_dirs[];

/* Top-level host directories shown read-only in the sandbox (symlinks
 * among them are replicated as symlinks), NULL-terminated. */
extern const char *const rootfs_system_dirs[];

/* Build the new root on a private tmpfs: system directories (or the
 * entries of root_dir) bound read-only, minimal /dev, private /tmp,
 * fresh /proc, the extra mounts, and the FUSE mount at /workspace; then pivot into it and make it read-only.  On success
 * *fuse_fd is the /dev/fuse fd of the /workspace mount (opened inside
 * the user namespace, as the kernel requires).  Returns 0, or -errno
 * with *err filled: err->msg names what failed WITHOUT the strerror
 * part, which the parent appends. */
int rootfs_build(const struct rootfs_config *rc, int *fuse_fd, struct af_err *err);

/* Mount a fresh procfs for the caller's PID namespace on dir, with the
 * entries that could touch the host made read-only and those that show
 * it hidden.  Returns 0, or -errno with *err filled (same convention). */
int rootfs_mount_proc(const char *dir, struct af_err *err);

/* Bring the loopback interface up in a new network namespace.
 * Returns 0 or -errno with *err filled (same convention). */
int rootfs_loopback_up(struct af_err *err);

#endif
