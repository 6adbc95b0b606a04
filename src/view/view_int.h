/* view_int.h - what the files of the FUSE view share (not a public API).
 *
 * The view is split by concern: view.c (lookup, attributes, creation,
 * I/O, the session), view_dir.c (directory walking and listings),
 * view_move.c (unlink, rmdir, rename, link), view_xattr.c (extended
 * attributes), view_fh.c (file handles), view_loop.c (the request
 * loop).  Helpers used across them carry a vw_ prefix and follow the
 * view's contract: 0 (or a value) on success, -errno on failure.
 *
 * Lock order.  A thread takes the view's locks only in this order, and
 * never waits for a lock earlier in it while holding a later one:
 *   1. tree_lock, shared or exclusive, before any other; taking it
 *      shared again while holding it is free (vw_tree_rdlock nests), but
 *      it is never taken exclusively by a thread holding it at all.
 *   2. node locks (node->lock), a directory's before those of its
 *      entries: a listing (dir->listing) holds the directory's while it
 *      looks up and stats the entries.  Directories are locked one at a
 *      time: copyup_dir() copies the ancestors up first, each under its
 *      own lock alone.  Under an entry's lock, copyup_dir() is called
 *      only on a parent already copied up, where it takes no lock.  Two
 *      entries' locks are never held together.
 *   3. leaf locks, held for short sections that take no other lock: the
 *      node table's, the delta's base table, the fh table's, the inval
 *      queue's, the request loop's (never held while a request is
 *      served).
 * The kernel holds inode locks (i_rwsem) around the requests it sends,
 * so a request may never wait for the kernel: notifications that can
 * need such a lock go through the inval queue's thread, which holds no
 * view lock while it sends them. */
#ifndef AF_VIEW_INT_H
#define AF_VIEW_INT_H

#include <dirent.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/stat.h>

#include "common/casefold.h"
#include "view/copyup.h"
#include "view/node.h"
#include "view/view.h"

/* Invalidations of kernel inode caches, sent by a helper thread: the
 * kernel may hold locks a notification needs while a request is being
 * served, so a request handler only queues them. */
struct inval_queue {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	fuse_ino_t *ino;
	size_t n, cap;
	bool stop;
	bool running;
	pthread_t thread;
};

/* Handles of created files, and the nodes' cached I/O fds (view_fh.c). */
enum {
	FH_READ = 1,  /* open for reading */
	FH_WRITE = 2, /* open for writing */
	FH_UPPER = 4, /* of the node's object in the delta */
};
struct fh_slot {
	int fd;         /* the open file, or -1 */
	uint32_t gen;   /* bumped when the slot is emptied */
	uint32_t busy;  /* requests using fd */
	bool dead;      /* released while busy: close when idle */
	uint64_t stamp; /* last use, for recycling */
	const void *owner; /* the node of a cached I/O fd, else NULL */
	unsigned kind;  /* FH_* of a cached I/O fd */
};
struct fh_table {
	pthread_mutex_t lock;
	struct fh_slot *s;
	unsigned n;
	uint64_t clock;
};

/* The request loop's state (view_loop.c). */
struct view_loop {
	pthread_mutex_t lock;
	pthread_cond_t cond;  /* idle threads wait here to be the standby */
	unsigned threads;     /* loop threads: the first and the started ones */
	pthread_t *tids;      /* the started ones, to join */
	unsigned idle;        /* of them, waiting on cond */
	bool leader;          /* a thread is reading the device */
	bool standby;         /* a thread waits for the timer */
	bool done;            /* every thread is to leave */
	bool hot;             /* requests come in a burst: spin first (leader only) */
	atomic_bool stopping; /* view_loop_stop() was called */
	int stop_fd;          /* eventfd: wakes every sleeping thread to leave */
	int timer_fd;         /* fires when a request is served for too long */
	uint64_t spin_ns;     /* busy-poll budget per wait; 0: never */
	int err;              /* -errno of a device failure */
	atomic_uint busy;     /* requests being served */
	atomic_uint_fast64_t answered_ns; /* when the last one was served */
};

/* Locks that serialize the size-changing operations on one upper file
 * (by inode number, so two names of it share one), for the disk budget:
 * each measures the file before and after itself, and two at once would
 * count each other's blocks. */
#define DISK_STRIPES 64

/* One size-changing operation on an upper file (vw_disk_begin()). */
struct disk_op {
	int fd;                /* the file, or -1: no limit to keep */
	uint64_t reserved;     /* bytes reserved for it */
	blkcnt_t before;       /* st_blocks before */
	pthread_mutex_t *lock; /* its stripe, held */
};

struct view {
	struct delta *delta;
	const struct policy *policy;
	struct node_table table;
	struct copyup_ctx cu;
	double timeout;
	unsigned max_threads;
	bool kperm; /* view_config.kernel_permissions */
	uid_t uid;  /* the user's own ids */
	gid_t gid;
	/* Held shared by every operation that adds or removes names
	 * (creation, unlink, rename of a non-directory, the node-creating
	 * part of lookup) and exclusively by the rename of a directory, so
	 * nothing appears in or vanishes from a directory tree between the
	 * check of all its entries and its move. */
	pthread_rwlock_t tree_lock;
	struct inval_queue inval;
	struct fh_table fht; /* created files' handles, with kperm */
	pthread_mutex_t disk_lock[DISK_STRIPES];
	bool nodes_full; /* the node cap refused a lookup (atomic) */
	struct fuse_session *se;
	struct view_loop loop;
	pthread_t thread;
	bool running;
	int loop_ret;
};

/* What (dir, name) is in upper and lower. */
struct merged {
	bool upper;    /* a non-whiteout upper entry */
	bool whiteout; /* upper holds a whiteout */
	bool lower;    /* the project has the name (hidden or not) */
	bool alias;    /* the name is another spelling of an entry in a
	                  directory that folds case: all else is false */
	struct stat ust, lst;
};

static inline bool merged_exists(const struct merged *m)
{
	return m->upper || (m->lower && !m->whiteout);
}
static inline const struct stat *merged_st(const struct merged *m)
{
	return m->upper ? &m->ust : &m->lst;
}

static inline struct view *req_view(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static inline struct node *get_node(struct view *v, fuse_ino_t ino)
{
	if (ino == FUSE_ROOT_ID)
		return &v->table.root;
	return (struct node *)(uintptr_t)ino;
}

static inline bool vw_dec_visible(const struct decision *d)
{
	return d->level >= LEVEL_VIEW || d->traversable;
}

static inline void proc_path(char *buf, size_t size, int fd)
{
	snprintf(buf, size, "/proc/self/fd/%d", fd);
}

/* ---- view.c ---- */

/* Returns 0 or -errno for a name the kernel passed. */
int vw_check_name(const char *name);
/* The policy's decision for path; folds: a directory on the way may fold
 * case (node_folds()), so the folded decision applies too. */
void vw_policy_decide(struct view *v, bool folds, const char *path, bool is_dir,
		      struct decision *out);
void vw_decide(struct view *v, struct node *dir, const char *name, bool is_dir,
	       struct decision *out);
/* May a new entry (is_dir: a directory) be placed at (dir, name)?  Fills
 * *dec with the decision for its path. */
bool vw_may_place(struct view *v, struct node *dir, const char *name, bool is_dir,
		  struct decision *dec);
/* Returns 0 or -errno; an alias (in a directory that folds case) is
 * reported as absent, with m->alias set. */
int vw_merged_stat(struct node *dir, const char *name, struct merged *m);
/* Returns 0 or -errno. */
int vw_node_stat(struct view *v, struct node *n, struct stat *st);
/* Open n's upper object (which it must have) with flags, never
 * following a symlink; O_PATH for an fd to use in *at() calls or
 * /proc/self/fd paths.  Returns a new fd or -errno. */
int vw_upper_open(struct node *n, int flags);
/* Pin the upper object of non-directory n, about to leave its place
 * (see node.h); caller holds n->lock.  Returns 0 or -errno. */
int vw_pin_locked(struct node *n);
/* Is n (lock held) still the live node at (dir, name)? */
bool vw_node_at_locked(struct node *n, struct node *dir, const char *name);
double vw_attr_timeout(struct view *v, struct node *n, const struct stat *st);
/* Find or create the node for (dir, name) with one kernel lookup taken.
 * pre: a decision already made for the path as an entry of type
 * pre_type (S_IFMT bits), used only if the entry still has that kind.
 * Returns 0 or -errno (-ENOENT also for hidden entries). */
int vw_lookup(struct view *v, struct node *dir, const char *name, const struct decision *pre,
	      mode_t pre_type, struct fuse_entry_param *e);
/* Returns 0, -EEXIST, -EACCES or -errno (see view.c). */
int vw_prepare_create(struct view *v, struct node *dir, const char *name, bool is_dir,
		      struct merged *m, struct decision *dec);
void vw_reply_entry(fuse_req_t req, int r, const struct fuse_entry_param *e);

/* Before an operation that may grow the upper file fd (any fd of it,
 * O_PATH included) by up to grow allocated bytes: reserve them in the
 * delta's disk budget and measure the file.  vw_disk_end() after the
 * operation, whatever its outcome, settles with what it allocated.
 * Returns 0, or -ENOSPC past the limit or -errno (nothing to end then). */
int vw_disk_begin(struct view *v, int fd, uint64_t grow, struct disk_op *op);
void vw_disk_end(struct view *v, struct disk_op *op);

/* Charge bytes to the delta's disk budget for an entry or attribute
 * about to be made: returns 0, or -ENOSPC past the limit.  Credit them
 * back when it is gone (or was never made). */
int vw_disk_charge(struct view *v, uint64_t bytes);
void vw_disk_credit(struct view *v, uint64_t bytes);

/* Shared hold of tree_lock; nests within one thread. */
void vw_tree_rdlock(struct view *v);
void vw_tree_rdunlock(struct view *v);

/* Queue an invalidation of the kernel's attributes and pages of ino. */
void vw_inval_inode(struct view *v, fuse_ino_t ino);

/* ---- view_fh.c ---- */

void vw_fh_init(struct fh_table *t, unsigned nslots);
void vw_fh_destroy(struct fh_table *t);
/* Give open file fd (owned by the table from now on) a handle; 0 when
 * every slot is busy (fd is closed then). */
uint64_t vw_fh_add(struct fh_table *t, int fd);
/* The fd of handle fh for one request, or -1 if it was recycled;
 * vw_fh_put() it after. */
int vw_fh_get(struct fh_table *t, uint64_t fh);
void vw_fh_put(struct fh_table *t, uint64_t fh);
/* The kernel released fh (it may never do so). */
void vw_fh_release(struct fh_table *t, uint64_t fh);
/* Cached I/O fds of nodes (reads and writes that come without a FUSE
 * open).  vw_fh_cache() gives fd (owned by the table from now on) a
 * handle for owner, taken for one request as by vw_fh_get(); 0 when every
 * slot is busy (fd is then still the caller's).  vw_fh_get_cached()
 * returns the fd of handle fh if it is still owner's and its kind has
 * every bit of need and no bit of refuse, taken for one request; else
 * -1.  vw_fh_put() either after. */
uint64_t vw_fh_cache(struct fh_table *t, int fd, const void *owner, unsigned kind);
int vw_fh_get_cached(struct fh_table *t, uint64_t fh, const void *owner, unsigned need,
		     unsigned refuse);

/* ---- view_dir.c ---- */

/* The entry's type, statting when readdir does not say; whiteouts are
 * reported as 0.  Returns the S_IFMT bits or -errno. */
int vw_entry_type(int dirfd, const struct dirent *de);

/* A sorted set of names. */
struct name_set {
	char **v;
	size_t n, cap;
};
void vw_names_add(struct name_set *s, const char *name);
void vw_names_sort(struct name_set *s);
bool vw_names_has(const struct name_set *s, const char *name);
void vw_names_free(struct name_set *s);

/* Is the merged directory empty, counting entries the sandbox cannot
 * see?  Returns 0, -ENOTEMPTY or -errno. */
int vw_dir_empty(int ufd, int lfd);
void vw_listing_free(void *p);

void vw_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void vw_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		   struct fuse_file_info *fi);
void vw_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi);
void vw_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);

/* ---- view_move.c ---- */

void vw_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void vw_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void vw_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		  const char *newname, unsigned int flags);
void vw_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);

/* ---- view_xattr.c ---- */

void vw_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void vw_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void vw_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		    size_t size, int flags);
void vw_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

/* ---- view_loop.c ---- */

/* Set up the loop of v; spin_us as in view_config.  Returns 0 or -errno. */
int view_loop_init(struct view *v, int spin_us);
/* Serve v->se until the connection ends or view_loop_stop(); runs in
 * the calling thread and the ones it starts.  Returns 0 or -errno of a
 * device failure. */
int view_loop_run(struct view *v);
/* Make view_loop_run() return soon; any thread may call it. */
void view_loop_stop(struct view *v);
/* After view_loop_run() returned (or was never called). */
void view_loop_destroy(struct view *v);

#endif
