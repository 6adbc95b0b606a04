/* mounts.h - extra mounts a sandbox shows on request (--bind, --ro-bind,
 * --tmpfs): parsing and checking on the host side.
 *
 * A spec is checked once, in the caller, before any namespace exists:
 * SRC must exist and is resolved to its canonical host path (with its
 * device and inode, which the sandbox child checks again when it binds
 * it); DST is an absolute, normalised path inside the sandbox.  The
 * sandbox child applies the list (rootfs.c), parents before children. */
#ifndef AF_MOUNTS_H
#define AF_MOUNTS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/util.h"

enum mount_kind {
	MOUNT_BIND,    /* --bind SRC[:DST]: read-write, writes reach the host */
	MOUNT_RO_BIND, /* --ro-bind SRC[:DST]: read-only, recursively */
	MOUNT_TMPFS,   /* --tmpfs DST: a fresh, empty, private tmpfs */
};

struct mount_spec {
	enum mount_kind kind;
	char *src;   /* canonical host path; NULL for a tmpfs */
	char *dst;   /* normalised absolute path inside the sandbox */
	bool is_dir; /* SRC is a directory (a tmpfs is one) */
	dev_t dev;   /* SRC's identity when it was resolved */
	ino_t ino;
};

struct mount_list {
	struct mount_spec *v;
	size_t n;
};

/* The option name of a kind ("--bind", ...). */
const char *mount_kind_option(enum mount_kind kind);

/* Parse one option value and append it: SRC[:DST] for binds (DST
 * defaults to SRC), DST for a tmpfs.  Refuses an empty or missing SRC,
 * one on the host's /proc or neither a directory nor a regular file, a
 * relative DST, '.' or '..' in DST, a DST of '/' or over /workspace,
 * /proc or /dev, and a DST given twice.  Returns 0, or -errno with
 * *err filled (a usage error). */
int mounts_add(struct mount_list *l, enum mount_kind kind, const char *spec,
	       struct af_err *err);

/* Refuse binds that would show, outside the view, what the view is
 * there to filter or protect: the project (real_project, canonical),
 * any directory inside it or holding it, and agentfense's state
 * directory (state_real, canonical; NULL to skip); and writable binds
 * that overlap the image cache (cache_real, canonical; NULL to skip),
 * whose unpacked images later runs use as they find them.  Returns 0,
 * or -EINVAL with *err filled (a usage error). */
int mounts_check(const struct mount_list *l, const char *real_project, const char *state_real,
		 const char *cache_real, struct af_err *err);

/* Order the list so that a mount comes after the one it lies in. */
void mounts_sort(struct mount_list *l);

/* Deep copy (for a sandbox that outlives the caller's list). */
void mounts_copy(struct mount_list *dst, const struct mount_spec *v, size_t n);

void mounts_free(struct mount_list *l);

/* True if path is on a procfs: never shown in a sandbox, since
 * /proc/PID/root of the user's own host processes leads to the whole
 * host filesystem. */
bool mounts_on_procfs(const char *path);

/* True if path equals dir or lies below it (both canonical, absolute). */
bool mounts_path_under(const char *path, const char *dir);
/* True if a and b are one directory or one lies below the other. */
bool mounts_paths_overlap(const char *a, const char *b);
/* The same for existing host paths (canonical, absolute), decided also
 * by identity: true as well if path is dir or lies below it under any
 * spelling (a file system that ignores case, another mount of it). */
bool mounts_host_under(const char *path, const char *dir);
bool mounts_host_overlap(const char *a, const char *b);

#endif
