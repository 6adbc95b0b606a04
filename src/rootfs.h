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

#include "util.h"

struct rootfs_config {
	uid_t uid;            /* owner of the FUSE mount, as seen inside */
	gid_t gid;
	const char *fuse_options; /* extra FUSE mount options, or NULL */
};

/* Top-level host directories shown read-only in the sandbox (symlinks
 * among them are replicated as symlinks), NULL-terminated. */
extern const char *const rootfs_system_dirs[];

/* Build the new root on a private tmpfs: system directories bound
 * read-only, minimal /dev, private /tmp, fresh /proc, and the FUSE mount
 * at /workspace; then pivot into it and make it read-only.  On success
 * *fuse_fd is the /dev/fuse fd of the /workspace mount (opened inside
 * the user namespace, as the kernel requires).  Returns 0, or -errno
 * with *err filled: err->msg names what failed WITHOUT the strerror
 * part, which the parent appends. */
int rootfs_build(const struct rootfs_config *rc, int *fuse_fd, struct af_err *err);

/* Bring the loopback interface up in a new network namespace.
 * Returns 0 or -errno with *err filled (same convention). */
int rootfs_loopback_up(struct af_err *err);

#endif
