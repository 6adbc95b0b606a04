/* copyup.h - placing objects in the delta (upper) for the view.
 *
 * Copy-up gives a project (lower) object a twin in upper/ at the same
 * view path, built in work/ and moved into place atomically so upper/
 * never holds a half-copied file.  The helpers here also create
 * whiteouts and replace an upper entry atomically; every function works
 * from directory fds with single-component names and never follows a
 * symlink.  Thread-safe: the per-node mutex serializes a node's copy-up. */
#ifndef AF_COPYUP_H
#define AF_COPYUP_H

#include <stdbool.h>
#include <sys/stat.h>

#include "delta/delta.h"
#include "view/node.h"

struct copyup_ctx {
	struct delta *delta;
	struct node_table *table;
	int work_fd;         /* O_DIRECTORY fd of work/ (borrowed from the delta) */
	unsigned long seq;   /* temp-name counter (atomic) */
	bool no_tmpfile;     /* O_TMPFILE + linkat unavailable: named temp files */
};

/* Make the calling thread's umask 0 so modes given by the kernel (which
 * applied the sandbox's umask already) land as is; only this thread's
 * fs context is affected. */
void copyup_thread_init(void);

/* What the user.* extended attributes of the object at path (a
 * /proc/self/fd/N link to it) cost in the disk budget: their names and
 * values plus DELTA_ENTRY_COST for the block they take, 0 if none. */
uint64_t copyup_xattr_bytes(const char *path);

/* A fresh temp name for work/ into buf (at least 32 bytes). */
void copyup_tmpname(struct copyup_ctx *c, char *buf, size_t size);

/* Open the regular file (dirfd, name) with flags, never following a
 * symlink nor blocking on something swapped in meanwhile (a FIFO).
 * Returns the fd or -errno (-EIO when it is no longer a regular file). */
int copyup_open_regular(int dirfd, const char *name, int flags);
/* The second half of that for an fd opened with O_NONBLOCK added: checks
 * it is a regular file (O_NONBLOCK stays set: it has no effect on one).
 * Returns fd, or -errno with fd closed. */
int copyup_check_regular(int fd);

/* Make sure the directory node has an upper directory, creating missing
 * ancestors first (mode of the project directory, owner rwx added so the
 * sandbox's own files can be placed in it).  Returns 0 or -errno. */
int copyup_dir(struct copyup_ctx *c, struct node *dir);

/* Give node an upper copy of its lower object (file data only when
 * with_data; symlinks, fifos and sockets as such; directories as
 * copyup_dir), recording the base first.  No-op if it has one.
 * Returns 0, -ENOENT for a node deleted meanwhile, or -errno. */
int copyup_node(struct copyup_ctx *c, struct node *n, bool with_data);

/* Copy the project entry (lpfd, name), lstat'ed as *st, to (upfd, name)
 * with no node involved (a directory move fills in a whole subtree): a
 * directory as an empty one (as copyup_dir), a file with its data, a
 * symlink, fifo or socket as such.  Records no base.  Returns 0, or
 * -errno (-EPERM for a device node). */
int copyup_raw(struct copyup_ctx *c, int lpfd, const char *name, const struct stat *st,
	       int upfd);

/* Record the base of (dir, name) before its first change: *lst if the
 * project has it, else "did not exist". */
void copyup_note_base(struct copyup_ctx *c, struct node *dir, const char *name,
		      const struct stat *lst);

/* Forget the base of (dir, name): the delta holds nothing at that path
 * any more (see delta_drop_base()). */
void copyup_drop_base(struct copyup_ctx *c, struct node *dir, const char *name);

/* Hide the project entry name in dir: a whiteout takes the place of the
 * upper entry if there is one (moved to work/ atomically and removed
 * there), else is created.  Returns 0 or -errno. */
int copyup_whiteout(struct copyup_ctx *c, struct node *dir, const char *name, bool has_upper);

/* Remove the directory dirfd's whiteouts (its only entries). Returns 0 or -errno. */
int copyup_clear_whiteouts(int dirfd);

/* Put one whiteout in upper directory newfd for every entry of the lower
 * directory lowerfd.  Returns 0 or -errno. */
int copyup_hide_lower(int newfd, int lowerfd);

/* Remove a directory tree built in work/ (name in work/).  Best effort. */
void copyup_discard(struct copyup_ctx *c, const char *name);

#endif
