/* view.c - the permissioned, copy-on-write FUSE view (see view.h).
 *
 * libfuse low-level API.  Each op is a thin function that replies; the
 * work is done by do_* helpers returning 0 or -errno.  Every operation is
 * checked here against the decision cached in the node (the kernel's
 * default_permissions is not used); the project (lower) is never
 * written, every change lands in the delta (upper) through copyup.c.
 *
 * Merge rules: an upper entry wins over a lower one, a whiteout in upper
 * hides the lower entry; a directory present in both is merged (its
 * lower fd is kept for lookups below it).  Inode numbers: the project's
 * for anything that exists there (also after copy-up), the upper one with
 * the top bit set for entries the sandbox created.
 *
 * This file: lookup, attributes, creation, open and I/O, the session;
 * see view_int.h for how the rest is split. */
#include "view/view_int.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT 86400.0
#define DEFAULT_THREADS 16
#define MAX_IO (1U << 20)

void vw_policy_decide(struct view *v, bool folds, const char *path, bool is_dir,
		      struct decision *out)
{
	if (folds)
		policy_decide_folded(v->policy, path, is_dir, out);
	else
		policy_decide(v->policy, path, is_dir, out);
	/* the repository's configuration the delta cleaned for git in the
	 * sandbox (gitprep.c), read-only */
	if (!is_dir && out->level < LEVEL_READ && delta_is_shown(v->delta, path)) {
		out->level = LEVEL_READ;
		out->traversable = false;
	}
}

bool vw_may_place(struct view *v, struct node *dir, const char *name, bool is_dir,
		  struct decision *dec)
{
	autofree char *path = node_path(&v->table, dir, name);
	if (!path) { /* out of memory: refuse, never grant */
		*dec = (struct decision){ .level = LEVEL_NONE };
		return false;
	}
	vw_policy_decide(v, node_folds(dir), path, is_dir, dec);
	if (dec->level != LEVEL_WRITE)
		return false;
	if (is_dir)
		return true;
	/* A rule for a directory (`hooks/`) does not match a file or
	 * symlink of that name, yet a symlink there is followed as the
	 * directory by whoever uses the path later (git runs the hooks
	 * through it), and a file may be swapped for a directory at sync:
	 * a name that would not be writable as a directory is not given to
	 * anything else either. */
	struct decision as_dir;
	vw_policy_decide(v, node_folds(dir), path, true, &as_dir);
	return as_dir.level == LEVEL_WRITE;
}

/* Returns 0 or -errno for a name the kernel passed. */
int vw_check_name(const char *name)
{
	if (name[0] == '\0' || strchr(name, '/'))
		return -EINVAL;
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return -EINVAL;
	if (strlen(name) > NAME_MAX)
		return -ENAMETOOLONG;
	return 0;
}

void vw_decide(struct view *v, struct node *dir, const char *name, bool is_dir,
		   struct decision *out)
{
	autofree char *path = node_path(&v->table, dir, name);
	if (!path) { /* out of memory: hidden, never shown by mistake */
		*out = (struct decision){ .level = LEVEL_NONE };
		return;
	}
	vw_policy_decide(v, node_folds(dir), path, is_dir, out);
}

/* The part of vw_merged_stat() for a directory whose project side may
 * fold case (casefold.h).  Returns 0 or -errno. */
static int fold_alias(struct node *dir, const char *name, struct merged *m)
{
	int r;
	if (m->lower) {
		/* found, but maybe only through the file system's folding */
		struct casefold_names *sp = __atomic_load_n(&dir->spellings, __ATOMIC_ACQUIRE);
		if (!sp) {
			struct casefold_names *fresh = casefold_names_new(), *none = NULL;
			if (__atomic_compare_exchange_n(&dir->spellings, &none, fresh, false,
							__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
				sp = fresh;
			} else {
				casefold_names_free(fresh);
				sp = none;
			}
		}
		r = casefold_names_has(sp, node_merge(dir), name);
		if (r < 0)
			return r;
		if (r == 0) {
			m->lower = false;
			/* the sandbox's own entry of this spelling stays its
			 * own (sync then finds the project's other spelling in
			 * the way, a conflict) */
			m->alias = !m->upper && !m->whiteout;
		}
		return 0;
	}
	int pu = node_upper(dir);
	if (pu < 0 || m->upper || m->whiteout)
		return 0;
	/* another spelling the sandbox made: the project would take both
	 * for one name at sync */
	r = casefold_dir_has_clash(pu, name);
	if (r > 0)
		m->alias = true;
	return r < 0 ? r : 0;
}

/* Returns 0 or -errno. */
int vw_merged_stat(struct node *dir, const char *name, struct merged *m)
{
	memset(m, 0, sizeof(*m));
	int pu = node_upper(dir);
	if (pu >= 0) {
		if (fstatat(pu, name, &m->ust, AT_SYMLINK_NOFOLLOW) == 0) {
			if (delta_is_whiteout(&m->ust))
				m->whiteout = true;
			else
				m->upper = true;
		} else if (errno != ENOENT) {
			return -errno;
		}
	}
	int lfd = node_merge(dir);
	if (lfd >= 0) {
		if (fstatat(lfd, name, &m->lst, AT_SYMLINK_NOFOLLOW) == 0)
			m->lower = true;
		else if (errno != ENOENT && errno != ENOTDIR)
			return -errno;
	}
	/* Where the project folds case, an entry is served under its own
	 * spelling only: the policy decides on the name the host resolves,
	 * whatever folding the file system does (ASCII on vfat, Unicode on
	 * ext4, where KELVIN SIGN is k).  An alias looks absent and nothing
	 * may be created over it. */
	if (node_folds(dir))
		return fold_alias(dir, name, m);
	return 0;
}

static uint64_t merged_ino(const struct merged *m)
{
	if (m->upper) {
		if (m->lower && (m->lst.st_mode & S_IFMT) == (m->ust.st_mode & S_IFMT))
			return m->lst.st_ino;
		return (uint64_t)m->ust.st_ino | NODE_UPPER_INO_BIT;
	}
	return m->lst.st_ino;
}

/* A new fd of the object O_PATH fd ofd is open on, with flags: a
 * duplicate for O_PATH, else a reopen through the magic link, which
 * reaches exactly that inode.  Returns the fd or -errno. */
static int reopen_fd(int ofd, int flags)
{
	int fd;
	if (flags & O_PATH) {
		fd = fcntl(ofd, F_DUPFD_CLOEXEC, 0);
	} else {
		char proc[64];
		proc_path(proc, sizeof(proc), ofd);
		fd = open(proc, (flags & ~O_NOFOLLOW) | O_CLOEXEC);
	}
	return fd < 0 ? -errno : fd;
}

/* Open the upper object of non-directory n, whose lock the caller
 * holds, with flags.  Returns the fd or -errno. */
static int upper_open_locked(struct node *n, int flags)
{
	int pin = node_upper(n);
	if (pin >= 0)
		return reopen_fd(pin, flags);
	if (!node_has_upper(n))
		return -ENOENT;
	int pfd = node_upper(n->parent);
	if (pfd < 0)
		return -EIO;
	int fd = openat(pfd, n->name, flags | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int vw_upper_open(struct node *n, int flags)
{
	int fd;
	if (S_ISDIR(n->type)) {
		int ufd = node_upper(n);
		return ufd < 0 ? -ENOENT : reopen_fd(ufd, flags);
	}
	pthread_mutex_lock(&n->lock);
	fd = upper_open_locked(n, flags);
	pthread_mutex_unlock(&n->lock);
	return fd;
}

/* lstat of n's upper object.  Returns 0 or -errno. */
static int upper_stat(struct node *n, struct stat *st)
{
	int r, ufd = node_upper(n);
	if (S_ISDIR(n->type) || ufd >= 0)
		return fstatat(ufd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
	pthread_mutex_lock(&n->lock);
	ufd = node_upper(n); /* pinned meanwhile */
	if (ufd >= 0)
		r = fstatat(ufd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
	else
		r = fstatat(node_upper(n->parent), n->name, st, AT_SYMLINK_NOFOLLOW);
	r = r < 0 ? -errno : 0;
	pthread_mutex_unlock(&n->lock);
	return r;
}

int vw_pin_locked(struct node *n)
{
	if (S_ISDIR(n->type) || !node_has_upper(n) || node_upper(n) >= 0)
		return 0;
	int fd = upper_open_locked(n, O_PATH);
	if (fd < 0)
		return fd;
	__atomic_store_n(&n->upper_fd, fd, __ATOMIC_RELEASE);
	return 0;
}

bool vw_node_at_locked(struct node *n, struct node *dir, const char *name)
{
	return __atomic_load_n(&n->hashed, __ATOMIC_RELAXED) && n->parent == dir &&
	       strcmp(n->name, name) == 0;
}

/* Returns 0 or -errno. */
int vw_node_stat(struct view *v, struct node *n, struct stat *st)
{
	int r;
	/* the root shows as the project root, not as the delta's upper/ */
	if (n != &v->table.root && node_has_upper(n))
		r = upper_stat(n, st);
	else if (n->lower_fd >= 0)
		r = fstatat(n->lower_fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
	else if (n->lparent)
		r = fstatat(n->lparent->lower_fd, n->lname, st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
	else
		r = -EIO;
	if (r < 0)
		return r;
	st->st_ino = n->ino;
	/* merged directories have no meaningful link count; 1 tells tools
	 * like find not to infer the number of subdirectories from it.  Nor
	 * a size: on tmpfs, btrfs or XFS a directory's size grows with its
	 * entries' names, hidden ones included, so one block stands in for
	 * every directory. */
	if (S_ISDIR(st->st_mode)) {
		st->st_nlink = 1;
		st->st_size = 4096;
		st->st_blocks = 8;
	}
	/* The sandbox maps only the user's own uid and gid, and the kernel
	 * refuses changes to an inode with an unmapped id: a file the user
	 * owns shows with the user's group, so the owner may change it as on
	 * the real disk, whatever its group there. */
	if (st->st_uid == v->uid)
		st->st_gid = v->gid;
	/* the level, in the bits the kernel checks at open (default_permissions) */
	if (v->kperm && S_ISREG(st->st_mode)) {
		if (n->level < LEVEL_READ)
			st->st_mode &= ~(mode_t)0777;
		else if (n->level < LEVEL_WRITE)
			st->st_mode &= ~(mode_t)0222;
	}
	return 0;
}

/* Several names of one upper file (hard links made in the sandbox) are
 * several nodes, so several kernel inodes: a change through one name is
 * not seen in the others' caches.  For such a file the kernel must ask
 * every time (with auto_inval_data it then also drops stale pages).  A
 * project file with several names is never changed in place, so its
 * attributes stay cacheable until a copy-up splits it off. */
static bool shared_upper(struct node *n, const struct stat *st)
{
	return S_ISREG(st->st_mode) && st->st_nlink > 1 && node_has_upper(n);
}

double vw_attr_timeout(struct view *v, struct node *n, const struct stat *st)
{
	return shared_upper(n, st) ? 0 : v->timeout;
}

/* The nesting depth of this thread's shared hold of a view's tree_lock
 * (a thread serves one view at a time). */
static __thread unsigned tree_depth;

void vw_tree_rdlock(struct view *v)
{
	if (tree_depth++ == 0)
		pthread_rwlock_rdlock(&v->tree_lock);
}

void vw_tree_rdunlock(struct view *v)
{
	if (--tree_depth == 0)
		pthread_rwlock_unlock(&v->tree_lock);
}

/* Create the node for (dir, name), which the table lacks, with one
 * kernel lookup taken.  Returns it, or NULL with *err set to -errno. */
static struct node *lookup_new(struct view *v, struct node *dir, const char *name,
			       const struct decision *pre, mode_t pre_type, int *err)
{
	struct merged m;
	int r = vw_merged_stat(dir, name, &m);
	if (r < 0)
		goto fail;
	r = -ENOENT;
	if (!merged_exists(&m))
		goto fail;
	const struct stat *st = merged_st(&m);
	bool is_dir = S_ISDIR(st->st_mode);
	struct decision dec;
	/* a decision made for another type (the host swapped a file for a
	 * directory since it was made) does not apply: trailing-'/' rules
	 * match directories only */
	if (pre && S_ISDIR(pre_type) == is_dir)
		dec = *pre;
	else
		vw_decide(v, dir, name, is_dir, &dec);
	if (!vw_dec_visible(&dec))
		goto fail;
	int lfd = -1, ufd = -1;
	bool folds = false;
	/* only directories keep fds (see node.h) */
	if (m.upper && is_dir) {
		ufd = openat(node_upper(dir), name, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
		if (ufd < 0) {
			r = errno == ENOENT ? -ENOENT : -errno;
			goto fail;
		}
	}
	if (is_dir && m.lower && S_ISDIR(m.lst.st_mode)) {
		lfd = openat(node_merge(dir), name, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
		if (lfd < 0) {
			r = -errno;
			if (ufd >= 0)
				close(ufd);
			goto fail;
		}
	}
	/* casefolding is inherited by new directories on ext4, and the whole
	 * file system folds on vfat: below a folding directory, always */
	if (is_dir)
		folds = node_folds(dir) || (lfd >= 0 && casefold_dir_may_fold(lfd));
	struct node *n = node_insert(&v->table, dir, name, merged_ino(&m), st->st_mode & S_IFMT,
				     &dec, lfd, ufd, m.upper, folds);
	if (n)
		return n;
	/* the kernel holds max_nodes inodes and forgets none: refuse this
	 * one request rather than grow without bound */
	r = -ENFILE;
	__atomic_store_n(&v->nodes_full, true, __ATOMIC_RELAXED);
fail:
	*err = r;
	return NULL;
}

/* Find or create the node for (dir, name) with one kernel lookup taken.
 * pre: a decision already computed for the path (readdir, create) as an
 * entry of type pre_type (S_IFMT bits), or NULL.
 * Returns 0 or -errno (-ENOENT also for hidden entries). */
int vw_lookup(struct view *v, struct node *dir, const char *name, const struct decision *pre,
	      mode_t pre_type, struct fuse_entry_param *e)
{
	int r = vw_check_name(name);
	if (r < 0)
		return r == -EINVAL ? -ENOENT : r;
	memset(e, 0, sizeof(*e));
	struct node *n = node_find_lookup(&v->table, dir, name);
	if (!n) {
		/* what is seen in the directories and the node made from it
		 * must belong together: no directory move in between */
		vw_tree_rdlock(v);
		n = lookup_new(v, dir, name, pre, pre_type, &r);
		vw_tree_rdunlock(v);
		if (!n)
			return r;
	}
	r = vw_node_stat(v, n, &e->attr);
	if (r < 0) {
		node_forget(&v->table, n, 1);
		return r;
	}
	e->ino = (uintptr_t)n;
	e->attr_timeout = vw_attr_timeout(v, n, &e->attr);
	e->entry_timeout = v->timeout;
	return 0;
}

/* ---- lookup, forget, getattr ------------------------------------------ */

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct view *v = req_view(req);
	struct fuse_entry_param e;
	int r = vw_lookup(v, get_node(v, parent), name, NULL, 0, &e);
	if (r == -ENOENT) {
		/* negative entry: cached by the kernel like a positive one */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = v->timeout;
		fuse_reply_entry(req, &e);
	} else if (r < 0) {
		fuse_reply_err(req, -r);
	} else {
		fuse_reply_entry(req, &e);
	}
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct view *v = req_view(req);
	node_forget(&v->table, get_node(v, ino), nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct view *v = req_view(req);
	for (size_t i = 0; i < count; i++)
		node_forget(&v->table, get_node(v, forgets[i].ino), forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	struct view *v = req_view(req);
	struct stat st;
	struct node *n = get_node(v, ino);
	int r = vw_node_stat(v, n, &st);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, vw_attr_timeout(v, n, &st));
}

/* ---- setattr ------------------------------------------------------------ */

/* A setattr of the view root.  Its upper object is the delta's own
 * upper/ directory, which the view and sync must always be able to
 * enter, and sync applies nothing to the project root itself (no base
 * record "" is ever made): so its mode and owner cannot be changed from
 * the sandbox (EPERM; setting the values it has is a no-op, as tar or
 * rsync do), and times set on it are ignored, as refusing them would
 * only break those tools.  Returns 0 or -errno. */
static int root_setattr(struct view *v, const struct stat *attr, int valid, struct stat *out)
{
	int r = vw_node_stat(v, &v->table.root, out);
	if (r < 0)
		return r;
	if (valid & FUSE_SET_ATTR_SIZE)
		return -EISDIR;
	if ((valid & FUSE_SET_ATTR_MODE) && (attr->st_mode & 07777) != (out->st_mode & 07777))
		return -EPERM;
	if ((valid & FUSE_SET_ATTR_UID) && attr->st_uid != out->st_uid)
		return -EPERM;
	if ((valid & FUSE_SET_ATTR_GID) && attr->st_gid != out->st_gid)
		return -EPERM;
	return 0;
}

/* Returns 0 or -errno. */
static int do_setattr(struct view *v, struct node *n, const struct stat *attr, int valid,
		      bool has_file, struct stat *out)
{
	if (n->level != LEVEL_WRITE)
		return -EACCES;
	if (n == &v->table.root)
		return root_setattr(v, attr, valid, out);
	copyup_thread_init();
	/* every change is made on the upper object, never through the
	 * request's file, which may be open on the project's copy */
	bool trunc0 = (valid & FUSE_SET_ATTR_SIZE) && attr->st_size == 0 && !has_file;
	int r = copyup_node(&v->cu, n, !trunc0);
	if (r < 0)
		return r;
	autoclose int ufd = vw_upper_open(n, O_PATH);
	if (ufd < 0)
		return ufd;
	char proc[64];
	proc_path(proc, sizeof(proc), ufd);
	bool is_link = S_ISLNK(n->type);
	if (valid & FUSE_SET_ATTR_MODE) {
		if (is_link)
			return -EOPNOTSUPP;
		r = chmod(proc, attr->st_mode & 07777);
		if (r < 0)
			return -errno;
	}
	if (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		uid_t uid = (valid & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
		gid_t gid = (valid & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;
		if (fchownat(ufd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
	}
	if (valid & FUSE_SET_ATTR_SIZE) {
		if (!S_ISREG(n->type))
			return S_ISDIR(n->type) ? -EISDIR : -EINVAL;
		/* growing a file makes a hole: nothing to reserve, and what a
		 * file system without holes allocates is charged after */
		struct disk_op dop;
		r = vw_disk_begin(v, ufd, 0, &dop);
		if (r < 0)
			return r;
		r = truncate(proc, attr->st_size) < 0 ? -errno : 0;
		vw_disk_end(v, &dop);
		if (r < 0)
			return r;
	}
	if (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
		struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_OMIT } };
		if (valid & FUSE_SET_ATTR_ATIME_NOW)
			ts[0].tv_nsec = UTIME_NOW;
		else if (valid & FUSE_SET_ATTR_ATIME)
			ts[0] = attr->st_atim;
		if (valid & FUSE_SET_ATTR_MTIME_NOW)
			ts[1].tv_nsec = UTIME_NOW;
		else if (valid & FUSE_SET_ATTR_MTIME)
			ts[1] = attr->st_mtim;
		if (is_link)
			r = utimensat(ufd, "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
		else
			r = utimensat(AT_FDCWD, proc, ts, 0);
		if (r < 0)
			return -errno;
	}
	return vw_node_stat(v, n, out);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int valid,
		       struct fuse_file_info *fi)
{
	struct view *v = req_view(req);
	struct stat st;
	/* fh 0: opened without a FUSE open (kernel_permissions) */
	struct node *n = get_node(v, ino);
	int r = do_setattr(v, n, attr, valid, fi && fi->fh != 0, &st);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, vw_attr_timeout(v, n, &st));
}

/* ---- the disk budget ------------------------------------------------------ */

int vw_disk_begin(struct view *v, int fd, uint64_t grow, struct disk_op *op)
{
	op->fd = -1;
	if (!delta_disk_limit(v->delta))
		return 0;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	int r = delta_disk_reserve(v->delta, grow);
	if (r < 0)
		return r;
	op->lock = &v->disk_lock[st.st_ino % DISK_STRIPES];
	pthread_mutex_lock(op->lock);
	/* again under the lock: another operation may have just changed it */
	if (fstat(fd, &st) < 0) {
		r = -errno;
		pthread_mutex_unlock(op->lock);
		delta_disk_settle(v->delta, grow, 0);
		return r;
	}
	op->fd = fd;
	op->reserved = grow;
	op->before = st.st_blocks;
	return 0;
}

void vw_disk_end(struct view *v, struct disk_op *op)
{
	if (op->fd < 0)
		return;
	struct stat st;
	/* unmeasurable: keep the reservation, erring on the safe side */
	int64_t actual = fstat(op->fd, &st) < 0 ? (int64_t)op->reserved
						 : ((int64_t)st.st_blocks - (int64_t)op->before) * 512;
	pthread_mutex_unlock(op->lock);
	delta_disk_settle(v->delta, op->reserved, actual);
	op->fd = -1;
}

int vw_disk_charge(struct view *v, uint64_t bytes)
{
	return delta_disk_limit(v->delta) ? delta_disk_reserve(v->delta, bytes) : 0;
}

void vw_disk_credit(struct view *v, uint64_t bytes)
{
	if (delta_disk_limit(v->delta))
		delta_disk_settle(v->delta, 0, -(int64_t)bytes);
}

/* The table frees a node that pinned its upper file (unlinked, or
 * replaced by a rename): the file's blocks go back to the budget if no
 * name of it is left.  Only now: a file unlinked while open keeps its
 * blocks on disk until the kernel lets go of it. */
static void unpin_credit(void *arg, int fd)
{
	struct view *v = arg;
	struct stat st;
	if (!delta_disk_limit(v->delta) || fstat(fd, &st) < 0 || st.st_nlink != 0)
		return;
	/* what the inode held; its names were credited as they went */
	if (S_ISREG(st.st_mode)) {
		char proc[64];
		proc_path(proc, sizeof(proc), fd);
		uint64_t data = (uint64_t)st.st_blocks * 512, xattrs = copyup_xattr_bytes(proc);
		/* ext4 counts a block of attributes in st_blocks: credited
		 * with them, not twice (attributes kept inside the inode are
		 * not, and that file gives a block too little back: the
		 * budget errs high) */
		if (xattrs)
			data -= data < DELTA_ENTRY_COST ? data : DELTA_ENTRY_COST;
		vw_disk_credit(v, data + xattrs);
	} else if (S_ISLNK(st.st_mode)) {
		vw_disk_credit(v, (uint64_t)st.st_size);
	}
}

/* ---- readlink, access, statfs, xattrs ------------------------------------ */

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct view *v = req_view(req);
	struct node *n = get_node(v, ino);
	if (n->level < LEVEL_READ) {
		fuse_reply_err(req, EACCES);
		return;
	}
	if (!S_ISLNK(n->type)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	char buf[PATH_MAX + 1];
	ssize_t len;
	if (node_has_upper(n)) {
		autoclose int ufd = vw_upper_open(n, O_PATH);
		if (ufd < 0) {
			fuse_reply_err(req, -ufd);
			return;
		}
		len = readlinkat(ufd, "", buf, PATH_MAX);
	} else {
		len = readlinkat(n->lparent->lower_fd, n->lname, buf, PATH_MAX);
	}
	if (len < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	buf[len] = '\0';
	fuse_reply_readlink(req, buf);
}

/* Returns 0 or -errno. */
static int do_access(struct node *n, int mask)
{
	if (mask == F_OK)
		return 0;
	bool is_dir = S_ISDIR(n->type);
	if ((mask & W_OK) && n->level != LEVEL_WRITE)
		return -EACCES;
	/* listing and searching a directory is what `view` grants */
	if ((mask & (R_OK | X_OK)) && !is_dir && n->level < LEVEL_READ)
		return -EACCES;
	int r;
	if (node_has_upper(n)) {
		if (S_ISLNK(n->type))
			return 0;
		autoclose int ufd = vw_upper_open(n, O_PATH);
		if (ufd < 0)
			return ufd;
		char proc[64];
		proc_path(proc, sizeof(proc), ufd);
		r = faccessat(AT_FDCWD, proc, mask, AT_EACCESS);
	} else if (n->lower_fd >= 0) {
		char proc[64];
		proc_path(proc, sizeof(proc), n->lower_fd);
		r = faccessat(AT_FDCWD, proc, mask, AT_EACCESS);
	} else {
		r = faccessat(n->lparent->lower_fd, n->lname, mask, AT_EACCESS | AT_SYMLINK_NOFOLLOW);
	}
	if (r < 0 && errno == EROFS)
		return 0; /* writes go to the delta, never to the project */
	return r < 0 ? -errno : 0;
}

static void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct view *v = req_view(req);
	fuse_reply_err(req, -do_access(get_node(v, ino), mask));
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	(void)ino;
	struct view *v = req_view(req);
	struct statvfs sv;
	if (fstatvfs(node_upper(&v->table.root), &sv) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	/* the disk limit is the sandbox's disk: df shows it, and tools
	 * that check for room before writing see what they may write */
	uint64_t lim = delta_disk_limit(v->delta), used = delta_disk_used(v->delta);
	if (lim && sv.f_frsize) {
		fsblkcnt_t total = lim / sv.f_frsize;
		fsblkcnt_t avail = (lim > used ? lim - used : 0) / sv.f_frsize;
		sv.f_blocks = total < sv.f_blocks ? total : sv.f_blocks;
		sv.f_bfree = avail < sv.f_bfree ? avail : sv.f_bfree;
		sv.f_bavail = avail < sv.f_bavail ? avail : sv.f_bavail;
	}
	fuse_reply_statfs(req, &sv);
}

/* ---- creating entries ---------------------------------------------------- */

/* Check that (dir, name) may be created as a new object of the given
 * type: fills *m and *dec.  Returns 0, -EEXIST for a visible entry,
 * -EACCES for a path below `write`, one holding a hidden entry or
 * another spelling of an entry (see vw_merged_stat), or -errno.  On
 * success the parent has an upper directory. */
int vw_prepare_create(struct view *v, struct node *dir, const char *name, bool is_dir,
			  struct merged *m, struct decision *dec)
{
	int r = vw_check_name(name);
	if (r < 0)
		return r;
	r = vw_merged_stat(dir, name, m);
	if (r < 0)
		return r;
	if (m->alias)
		return -EACCES; /* as for a hidden entry: it may be one */
	if (merged_exists(m)) {
		struct decision old;
		vw_decide(v, dir, name, S_ISDIR(merged_st(m)->st_mode), &old);
		/* never reveal a hidden entry: refuse like any non-write path */
		return vw_dec_visible(&old) ? -EEXIST : -EACCES;
	}
	if (!vw_may_place(v, dir, name, is_dir, dec))
		return -EACCES;
	copyup_thread_init();
	r = copyup_dir(&v->cu, dir);
	if (r < 0)
		return r;
	copyup_note_base(&v->cu, dir, name, m->lower ? &m->lst : NULL);
	return 0;
}

/* What to create, for make_entry(). */
struct mk_spec {
	mode_t mode;        /* S_IFMT | permissions */
	dev_t rdev;
	const char *target; /* symlink */
	int flags;          /* open flags for a regular file */
	int fd;             /* out: the open regular file */
	int lowerfd;        /* directory: project directory to hide, or -1 */
};

/* Returns 0 or -errno. */
static int mk_at(int dirfd, const char *name, struct mk_spec *s)
{
	switch (s->mode & S_IFMT) {
	case S_IFREG:
		s->fd = openat(dirfd, name, s->flags | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			       s->mode & 07777);
		return s->fd < 0 ? -errno : 0;
	case S_IFDIR: {
		if (mkdirat(dirfd, name, s->mode & 07777) < 0)
			return -errno;
		if (s->lowerfd < 0)
			return 0;
		int fd = openat(dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		int r = copyup_hide_lower(fd, s->lowerfd);
		close(fd);
		return r;
	}
	case S_IFLNK:
		return symlinkat(s->target, dirfd, name) < 0 ? -errno : 0;
	default:
		return mknodat(dirfd, name, s->mode, s->rdev) < 0 ? -errno : 0;
	}
}

/* Create the object at (dir, name) in upper; a whiteout there is
 * replaced atomically (the object is built in work/ first).  Returns 0
 * or -errno; s->fd may be left open either way (the caller closes it). */
static int make_entry(struct view *v, struct node *dir, const char *name, const struct merged *m,
		      struct mk_spec *s)
{
	int pu = node_upper(dir);
	if (!m->whiteout)
		return mk_at(pu, name, s);
	char tmp[64];
	copyup_tmpname(&v->cu, tmp, sizeof(tmp));
	int r = mk_at(v->cu.work_fd, tmp, s);
	if (r < 0) {
		copyup_discard(&v->cu, tmp);
		return r;
	}
	if (S_ISDIR(s->mode)) {
		if (renameat2(v->cu.work_fd, tmp, pu, name, RENAME_EXCHANGE) < 0)
			r = -errno;
	} else if (renameat(v->cu.work_fd, tmp, pu, name) < 0) {
		r = -errno;
	}
	copyup_discard(&v->cu, tmp); /* the whiteout, or the failed object */
	return r;
}

/* Returns 0 or -errno; on success e describes the new entry. */
static int create_locked(struct view *v, struct node *dir, const char *name, struct mk_spec *s,
			 struct fuse_entry_param *e)
{
	struct merged m;
	struct decision dec;
	/* no node for it at the cap: refuse before the entry is made */
	if (node_table_full(&v->table)) {
		__atomic_store_n(&v->nodes_full, true, __ATOMIC_RELAXED);
		return -ENFILE;
	}
	int r = vw_prepare_create(v, dir, name, S_ISDIR(s->mode), &m, &dec);
	if (r < 0)
		return r;
	s->lowerfd = -1;
	if (S_ISDIR(s->mode) && m.lower && S_ISDIR(m.lst.st_mode)) {
		/* a new directory where the project had one: the project's
		 * entries stay deleted */
		s->lowerfd = openat(node_merge(dir), name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (s->lowerfd < 0)
			return -errno;
	}
	/* the entry's own cost, before it exists: past the limit the
	 * sandbox gets ENOSPC and the delta nothing */
	uint64_t cost = DELTA_ENTRY_COST + (S_ISLNK(s->mode) ? strlen(s->target) : 0);
	r = vw_disk_charge(v, cost);
	if (r == 0) {
		r = make_entry(v, dir, name, &m, s);
		if (r < 0)
			vw_disk_credit(v, cost);
	}
	if (s->lowerfd >= 0)
		close(s->lowerfd);
	if (r == 0)
		r = vw_lookup(v, dir, name, &dec, s->mode & S_IFMT, e);
	/* a file made but not placed, or not found after: not the caller's */
	if (r < 0 && s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
	return r;
}

/* Returns 0 or -errno; on success e describes the new entry. */
static int do_create(struct view *v, struct node *dir, const char *name, struct mk_spec *s,
		     struct fuse_entry_param *e)
{
	vw_tree_rdlock(v);
	int r = create_locked(v, dir, name, s, e);
	vw_tree_rdunlock(v);
	return r;
}

void vw_reply_entry(fuse_req_t req, int r, const struct fuse_entry_param *e)
{
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_entry(req, e);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct view *v = req_view(req);
	struct fuse_entry_param e;
	int r;
	switch (mode & S_IFMT) {
	case S_IFREG:
	case S_IFIFO:
	case S_IFSOCK: {
		struct mk_spec s = { .mode = mode, .rdev = 0, .flags = O_WRONLY, .fd = -1 };
		r = do_create(v, get_node(v, parent), name, &s, &e);
		if (s.fd >= 0)
			close(s.fd);
		break;
	}
	default:
		(void)rdev;
		r = -EPERM; /* no device nodes in the view */
		break;
	}
	vw_reply_entry(req, r, &e);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct view *v = req_view(req);
	struct fuse_entry_param e;
	struct mk_spec s = { .mode = S_IFDIR | (mode & 07777), .fd = -1 };
	int r = do_create(v, get_node(v, parent), name, &s, &e);
	vw_reply_entry(req, r, &e);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct view *v = req_view(req);
	struct fuse_entry_param e;
	struct mk_spec s = { .mode = S_IFLNK | 0777, .target = link, .fd = -1 };
	int r = do_create(v, get_node(v, parent), name, &s, &e);
	vw_reply_entry(req, r, &e);
}

/* ---- open, read, write ---------------------------------------------------- */

static bool wants_write(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
}

/* Open the node's content; returns an fd or -errno. */
static int do_open(struct view *v, struct node *n, int flags)
{
	if (!S_ISREG(n->type))
		return S_ISDIR(n->type) ? -EISDIR : -EACCES;
	if (wants_write(flags)) {
		if (n->level != LEVEL_WRITE)
			return -EACCES;
		copyup_thread_init();
		int r = copyup_node(&v->cu, n, !(flags & O_TRUNC));
		if (r < 0)
			return r;
	} else if (n->level < LEVEL_READ) {
		return -EACCES;
	}
	int oflags = flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_NOFOLLOW);
	if (!node_has_upper(n))
		return copyup_open_regular(n->lparent->lower_fd, n->lname, oflags);
	/* the sandbox's own objects cannot change type, but the check costs
	 * one fstat and keeps both paths alike */
	int fd = vw_upper_open(n, (oflags & ~O_TRUNC) | O_NONBLOCK | O_NOCTTY);
	if (fd >= 0)
		fd = copyup_check_regular(fd);
	if (fd < 0 || !(oflags & O_TRUNC))
		return fd;
	/* an O_TRUNC (FUSE_CAP_ATOMIC_O_TRUNC) frees blocks: measured */
	struct disk_op dop;
	int r = vw_disk_begin(v, fd, 0, &dop);
	if (r == 0) {
		/* by path: O_RDONLY | O_TRUNC truncates too */
		char proc[64];
		proc_path(proc, sizeof(proc), fd);
		r = truncate(proc, 0) < 0 ? -errno : 0;
		vw_disk_end(v, &dop);
	}
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

static void set_open_flags(struct fuse_file_info *fi, struct node *n, const struct stat *st)
{
	/* the kernel's page cache is coherent: every change goes through
	 * it, except for several names of one upper file */
	fi->keep_cache = !(st && shared_upper(n, st));
	fi->noflush = 1;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct view *v = req_view(req);
	struct node *n = get_node(v, ino);
	if (v->kperm) {
		/* the kernel checked the mode bits, which carry the level; from
		 * now on it opens files without asking (reads and writes still
		 * come here, with fh 0) */
		fuse_reply_err(req, ENOSYS);
		return;
	}
	int fd = do_open(v, n, fi->flags);
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	fi->fh = (uint64_t)fd;
	struct stat st;
	set_open_flags(fi, n, node_has_upper(n) && vw_node_stat(v, n, &st) == 0 ? &st : NULL);
	if (fuse_reply_open(req, fi) < 0)
		close(fd); /* interrupted: the kernel will not release it */
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct view *v = req_view(req);
	struct node *dir = get_node(v, parent);
	struct fuse_entry_param e;
	struct mk_spec s = { .mode = S_IFREG | (mode & 07777),
			     .flags = fi->flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_NOFOLLOW),
			     .fd = -1 };
	int r = do_create(v, dir, name, &s, &e);
	if (r == -EEXIST && !(fi->flags & O_EXCL)) {
		/* raced with another creator: open what is there */
		r = vw_lookup(v, dir, name, NULL, 0, &e);
		if (r == 0) {
			s.fd = do_open(v, get_node(v, e.ino), fi->flags);
			if (s.fd < 0) {
				node_forget(&v->table, get_node(v, e.ino), 1);
				r = s.fd;
			}
		}
	}
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	/* with kperm no release may ever come: see view_fh.c */
	fi->fh = v->kperm ? vw_fh_add(&v->fht, s.fd) : (uint64_t)s.fd;
	s.fd = -1; /* owned by fi->fh now */
	set_open_flags(fi, get_node(v, e.ino), &e.attr);
	if (fuse_reply_create(req, &e, fi) < 0) {
		if (v->kperm)
			vw_fh_release(&v->fht, fi->fh);
		else
			close((int)fi->fh);
		node_forget(&v->table, get_node(v, e.ino), 1);
	}
}

/* How a request got its fd, for io_done(). */
struct io_ref {
	bool tmp;    /* opened for the request: close it */
	uint64_t fh; /* a slot of v->fht to put back, or 0 */
};

/* The node's cached fd for a request (write: for writing; else for
 * reading the object the node now reads from, lower or upper), taken;
 * or -1.  The level is the node's for good, but checked here as do_open
 * checks it: the cache must not widen what an fd may do. */
static int io_cached(struct view *v, struct node *n, bool write, struct io_ref *ref)
{
	uint64_t fh = __atomic_load_n(&n->iofh, __ATOMIC_RELAXED);
	if (!fh || n->level < (write ? LEVEL_WRITE : LEVEL_READ))
		return -1;
	/* a copy-up since the fd was opened makes a lower fd stale */
	bool upper = node_has_upper(n);
	unsigned need = write ? FH_WRITE : FH_READ | (upper ? FH_UPPER : 0);
	unsigned refuse = write || upper ? 0 : FH_UPPER;
	int fd = vw_fh_get_cached(&v->fht, fh, n, need, refuse);
	if (fd >= 0)
		ref->fh = fh;
	return fd;
}

/* Open the node for a request and, if worth it, cache the fd.  Returns
 * fd or -errno. */
static int io_open(struct view *v, struct node *n, bool write, off_t off, struct io_ref *ref)
{
	/* for writing, both ways if the file's own mode lets us: a read
	 * after a write then needs no other fd */
	int fd = write ? do_open(v, n, O_RDWR) : -1;
	unsigned kind = FH_READ | FH_WRITE;
	if (fd < 0) {
		fd = do_open(v, n, write ? O_WRONLY : O_RDONLY);
		kind = write ? FH_WRITE : FH_READ;
	}
	if (fd < 0)
		return fd;
	if (write || node_has_upper(n))
		kind |= FH_UPPER;
	/* a small file is read in one request, at offset 0: keeping its fd
	 * would only push out the fds of files being streamed */
	if (off != 0 && S_ISREG(n->type)) {
		uint64_t fh = vw_fh_cache(&v->fht, fd, n, kind);
		if (fh) {
			__atomic_store_n(&n->iofh, fh, __ATOMIC_RELAXED);
			ref->fh = fh;
			return fd;
		}
	}
	ref->tmp = true;
	return fd;
}

/* The fd to do I/O on (flags: O_RDONLY or O_WRONLY) at offset off: the
 * open file's, or (fh 0: the kernel opened the file without a FUSE open;
 * or a recycled handle, see view_fh.c) the node's cached one, or a
 * fresh one, checked like an open with flags.  Returns fd or -errno;
 * io_done() it after. */
static int io_fd(struct view *v, fuse_ino_t ino, struct fuse_file_info *fi, int flags, off_t off,
		 struct io_ref *ref)
{
	ref->tmp = false;
	ref->fh = 0;
	if (fi && fi->fh != 0) {
		if (!v->kperm)
			return (int)fi->fh;
		int fd = vw_fh_get(&v->fht, fi->fh);
		if (fd >= 0) {
			ref->fh = fi->fh;
			return fd;
		}
	}
	struct node *n = get_node(v, ino);
	bool write = (flags & O_ACCMODE) != O_RDONLY;
	int fd = io_cached(v, n, write, ref);
	return fd >= 0 ? fd : io_open(v, n, write, off, ref);
}

static void io_done(struct view *v, struct io_ref *ref, int fd)
{
	if (ref->tmp)
		close(fd);
	else if (ref->fh)
		vw_fh_put(&v->fht, ref->fh);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct view *v = req_view(req);
	struct io_ref ref;
	int fd = io_fd(v, ino, fi, O_RDONLY, off, &ref);
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = fd;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
	io_done(v, &ref, fd);
}

static void op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in, off_t off,
			 struct fuse_file_info *fi)
{
	struct view *v = req_view(req);
	struct io_ref ref;
	int fd = io_fd(v, ino, fi, O_WRONLY, off, &ref);
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in));
	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out.buf[0].fd = fd;
	out.buf[0].pos = off;
	struct disk_op dop;
	ssize_t r = vw_disk_begin(v, fd, fuse_buf_size(in), &dop);
	if (r == 0) {
		r = fuse_buf_copy(&out, in, 0);
		vw_disk_end(v, &dop);
	}
	io_done(v, &ref, fd);
	if (r < 0)
		fuse_reply_err(req, (int)-r);
	else
		fuse_reply_write(req, (size_t)r);
}

/* Copy up to len bytes from in at *ioff to out at *ooff with pread and
 * pwrite, advancing both; for file systems (or pairs of them: the
 * project and the delta) copy_file_range() cannot serve.  Returns the
 * bytes copied (a short copy is a valid answer), or -errno. */
static ssize_t copy_by_hand(int in, off_t *ioff, int out, off_t *ooff, size_t len)
{
	char buf[64 * 1024];
	size_t done = 0;
	/* one MiB per request at most: the caller loops for the rest */
	len = len < (1u << 20) ? len : (1u << 20);
	/* overlapping ranges of one file: refused, as copy_file_range() does */
	struct stat si, so;
	if (fstat(in, &si) < 0 || fstat(out, &so) < 0)
		return -errno;
	if (si.st_dev == so.st_dev && si.st_ino == so.st_ino && *ioff < *ooff + (off_t)len &&
	    *ooff < *ioff + (off_t)len)
		return -EINVAL;
	while (done < len) {
		size_t want = len - done < sizeof(buf) ? len - done : sizeof(buf);
		ssize_t n = pread(in, buf, want, *ioff);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return done ? (ssize_t)done : -errno;
		if (n == 0)
			break;
		for (ssize_t put = 0; put < n;) {
			ssize_t w = pwrite(out, buf + put, (size_t)(n - put), *ooff);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return done ? (ssize_t)done : -errno;
			put += w;
			*ooff += w;
			done += (size_t)w;
		}
		*ioff += n;
	}
	return (ssize_t)done;
}

/* The most one copy_file_range request copies: a fraction of a second
 * on a slow disk. */
#define COPY_RANGE_MAX ((size_t)32 << 20)

/* copy_file_range() in the sandbox: the data moves between the backing
 * files without passing through the kernel's FUSE pages twice (cp of a
 * project file is one request instead of a READ and a WRITE per chunk,
 * and a reflink where the file system has them).  The source needs
 * `read` and the destination `write`, checked and copied up as for any
 * read and write. */
static void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			       struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
			       struct fuse_file_info *fi_out, size_t len, int flags)
{
	struct view *v = req_view(req);
	if (flags != 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	struct io_ref rin, rout;
	int in = io_fd(v, ino_in, fi_in, O_RDONLY, off_in, &rin);
	if (in < 0) {
		fuse_reply_err(req, -in);
		return;
	}
	int out = io_fd(v, ino_out, fi_out, O_WRONLY, off_out, &rout);
	if (out < 0) {
		io_done(v, &rin, in);
		fuse_reply_err(req, -out);
		return;
	}
	/* one request copies a bounded part, the caller asking again for
	 * the rest: a copy of gigabytes in one request would hold the
	 * process that asked past SIGKILL, and leave the view answering
	 * nothing for seconds, as a hung one does */
	if (len > COPY_RANGE_MAX)
		len = COPY_RANGE_MAX;
	/* what may land in out: no more than in has from off_in on (a
	 * copy asks for far more than that, cp up to SSIZE_MAX) */
	struct stat ist;
	uint64_t grow = len;
	if (fstat(in, &ist) == 0)
		grow = ist.st_size <= off_in ? 0 : (uint64_t)(ist.st_size - off_in) < len ? (uint64_t)(ist.st_size - off_in) : len;
	struct disk_op dop;
	ssize_t r = vw_disk_begin(v, out, grow, &dop);
	if (r < 0) {
		io_done(v, &rout, out);
		io_done(v, &rin, in);
		fuse_reply_err(req, (int)-r);
		return;
	}
	r = copy_file_range(in, &off_in, out, &off_out, len, 0);
	/* EXDEV: project and delta on two file systems; EOPNOTSUPP and
	 * ENOSYS: a file system or kernel without it.  Not EINVAL: that is
	 * also the answer for overlapping ranges of one file (two names of
	 * it are two nodes here, so the sandbox's kernel cannot tell), which
	 * a forward copy would garble. */
	if (r < 0)
		r = errno == EXDEV || errno == EOPNOTSUPP || errno == ENOSYS
			    ? copy_by_hand(in, &off_in, out, &off_out, len)
			    : -errno;
	vw_disk_end(v, &dop);
	io_done(v, &rout, out);
	io_done(v, &rin, in);
	if (r < 0)
		fuse_reply_err(req, (int)-r);
	else
		fuse_reply_write(req, (size_t)r);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	/* nothing to flush; ENOSYS tells the kernel to stop asking */
	fuse_reply_err(req, ENOSYS);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	struct view *v = req_view(req);
	if (fi->fh != 0 && v->kperm)
		vw_fh_release(&v->fht, fi->fh);
	else if (fi->fh != 0)
		close((int)fi->fh);
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	/* the delta is scratch until sync, which makes its own result
	 * durable: a per-file fsync would only cost time */
	fuse_reply_err(req, 0);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	struct view *v = req_view(req);
	struct io_ref ref;
	int fd = io_fd(v, ino, fi, O_WRONLY, 0, &ref);
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	/* punching or collapsing a range frees blocks, the rest may take len */
	bool frees = mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_COLLAPSE_RANGE);
	struct disk_op dop;
	int r = off < 0 || len <= 0 ? EINVAL : -vw_disk_begin(v, fd, frees ? 0 : (uint64_t)len, &dop);
	if (r == 0) {
		r = fallocate(fd, mode, off, len) < 0 ? errno : 0;
		vw_disk_end(v, &dop);
	}
	io_done(v, &ref, fd);
	fuse_reply_err(req, r);
}

static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	struct view *v = req_view(req);
	struct io_ref ref;
	int fd = io_fd(v, ino, fi, O_RDONLY, 0, &ref);
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	off_t r = lseek(fd, off, whence);
	int e = errno;
	io_done(v, &ref, fd);
	if (r < 0)
		fuse_reply_err(req, e);
	else
		fuse_reply_lseek(req, r);
}

/* ---- session ------------------------------------------------------------ */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct view *v = userdata;
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	/* Without FUSE opens an O_TRUNC must reach the view as a setattr,
	 * not be applied by the kernel to its cache alone. */
	if ((conn->capable & FUSE_CAP_ATOMIC_O_TRUNC) && !v->kperm)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	else
		conn->want &= ~(unsigned)FUSE_CAP_ATOMIC_O_TRUNC;
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	/* the sandbox's umask is applied by the kernel */
	conn->want &= ~(unsigned)FUSE_CAP_DONT_MASK;
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	/* big requests: libfuse negotiates max_pages from this */
	conn->max_write = MAX_IO;
	conn->max_read = 0;
	conn->time_gran = 1;
}

static const struct fuse_lowlevel_ops view_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = vw_op_unlink,
	.rmdir = vw_op_rmdir,
	.symlink = op_symlink,
	.rename = vw_op_rename,
	.link = vw_op_link,
	.open = op_open,
	.read = op_read,
	.write_buf = op_write_buf,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.opendir = vw_op_opendir,
	.readdir = vw_op_readdir,
	.readdirplus = vw_op_readdirplus,
	.releasedir = vw_op_releasedir,
	.fsyncdir = op_fsync,
	.statfs = op_statfs,
	.setxattr = vw_op_setxattr,
	.getxattr = vw_op_getxattr,
	.listxattr = vw_op_listxattr,
	.removexattr = vw_op_removexattr,
	.access = op_access,
	.create = op_create,
	.fallocate = op_fallocate,
	.lseek = op_lseek,
	.copy_file_range = op_copy_file_range,
};

int view_new(const struct view_config *cfg, struct view **out, struct af_err *err)
{
	if (!cfg || !cfg->delta || !cfg->policy || cfg->project_fd < 0)
		return af_err_set(err, EINVAL, "cannot create the view: incomplete configuration");
	autoclose int lower = openat(cfg->project_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (lower < 0)
		return af_err_set(err, errno, "cannot open the project directory: %s", strerror(errno));
	int ufd = delta_upper_fd(cfg->delta), wfd = delta_work_fd(cfg->delta);
	if (ufd < 0 || wfd < 0)
		return af_err_set(err, EBADF, "cannot use the delta '%s': no upper or work directory",
				  delta_path(cfg->delta));
	autoclose int upper = openat(ufd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (upper < 0)
		return af_err_set(err, errno, "cannot open '%s/upper': %s", delta_path(cfg->delta),
				  strerror(errno));
	/* Names in the delta must mean what they mean to the view: two
	 * spellings the project keeps apart would be one object there. */
	int probe = casefold_dir_probe(wfd);
	if (probe < 0)
		return af_err_set(err, -probe, "cannot use the delta '%s': %s", delta_path(cfg->delta),
				  strerror(-probe));
	if (probe > 0) {
		int e = af_err_set(err, EINVAL, "cannot use the delta '%s': its file system ignores case",
				   delta_path(cfg->delta));
		af_err_hint(err, "set XDG_STATE_HOME to a directory on a file system that tells case apart");
		return e;
	}
	struct stat st;
	if (fstat(lower, &st) < 0)
		return af_err_set(err, errno, "cannot stat the project directory: %s", strerror(errno));
	struct decision dec;
	policy_decide(cfg->policy, "", true, &dec);
	bool folds = casefold_dir_may_fold(lower);

	struct view *v = xcalloc(1, sizeof(*v));
	v->max_threads = cfg->max_threads ? cfg->max_threads : DEFAULT_THREADS;
	int r = view_loop_init(v, cfg->spin_us);
	if (r < 0) {
		free(v);
		return af_err_set(err, -r, "cannot set up the FUSE server loop: %s", strerror(-r));
	}
	v->delta = cfg->delta;
	v->policy = cfg->policy;
	v->timeout = cfg->cache_timeout > 0 ? cfg->cache_timeout : DEFAULT_TIMEOUT;
	v->kperm = cfg->kernel_permissions;
	v->uid = getuid();
	v->gid = getgid();
	node_table_init(&v->table, steal_fd(&lower), steal_fd(&upper), st.st_ino, &dec);
	v->table.root.folds = folds;
	v->table.listing_free = vw_listing_free;
	v->table.max_live = cfg->max_nodes ? cfg->max_nodes : VIEW_MAX_NODES;
	v->cu.delta = cfg->delta;
	v->cu.table = &v->table;
	v->cu.work_fd = wfd;
	/* writers first: a directory move must not wait for a quiet moment */
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&v->tree_lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&v->inval.lock, NULL);
	pthread_cond_init(&v->inval.cond, NULL);
	vw_fh_init(&v->fht, cfg->max_fds ? cfg->max_fds : VIEW_DEFAULT_FDS);
	for (unsigned i = 0; i < DISK_STRIPES; i++)
		pthread_mutex_init(&v->disk_lock[i], NULL);
	v->table.pin_freed = unpin_credit;
	v->table.pin_arg = v;
	*out = v;
	return 0;
}

/* ---- cache invalidations -------------------------------------------------- */

void vw_inval_inode(struct view *v, fuse_ino_t ino)
{
	struct inval_queue *q = &v->inval;
	pthread_mutex_lock(&q->lock);
	if (q->running && !q->stop) {
		if (q->n == q->cap) {
			size_t cap = q->cap ? q->cap * 2 : 16;
			fuse_ino_t *more = realloc(q->ino, cap * sizeof(*q->ino));
			/* out of memory: this invalidation is lost, and the
			 * kernel's cache of ino lasts until its timeout */
			if (!more)
				goto out;
			q->ino = more;
			q->cap = cap;
		}
		q->ino[q->n++] = ino;
		pthread_cond_signal(&q->cond);
	}
out:
	pthread_mutex_unlock(&q->lock);
}

/* Send the queued invalidations.  A node may have been forgotten
 * meanwhile: the kernel then no longer knows the id (ENOENT), or it was
 * reused for another node, which only loses its cache; either is
 * harmless, so no reference is held. */
static void *inval_thread(void *arg)
{
	struct view *v = arg;
	struct inval_queue *q = &v->inval;
	fuse_ino_t *batch = NULL;
	size_t cap = 0;
	pthread_mutex_lock(&q->lock);
	for (;;) {
		while (q->n == 0 && !q->stop)
			pthread_cond_wait(&q->cond, &q->lock);
		if (q->stop)
			break;
		size_t n = q->n;
		if (n > cap) {
			fuse_ino_t *more = realloc(batch, n * sizeof(*batch));
			if (!more) { /* out of memory: as in vw_inval_inode() */
				q->n = 0;
				continue;
			}
			batch = more;
			cap = n;
		}
		memcpy(batch, q->ino, n * sizeof(*batch));
		q->n = 0;
		pthread_mutex_unlock(&q->lock);
		for (size_t i = 0; i < n; i++)
			(void)fuse_lowlevel_notify_inval_inode(v->se, batch[i], 0, 0);
		pthread_mutex_lock(&q->lock);
	}
	pthread_mutex_unlock(&q->lock);
	free(batch);
	return NULL;
}

/* Returns 0 or a positive error number. */
static int inval_start(struct view *v)
{
	struct inval_queue *q = &v->inval;
	int r = pthread_create(&q->thread, NULL, inval_thread, v);
	if (r == 0)
		q->running = true;
	return r;
}

static void inval_stop(struct view *v)
{
	struct inval_queue *q = &v->inval;
	if (!q->running)
		return;
	pthread_mutex_lock(&q->lock);
	q->stop = true;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
	pthread_join(q->thread, NULL);
	q->running = false;
}

static void *loop_thread(void *arg)
{
	struct view *v = arg;
	v->loop_ret = view_loop_run(v);
	return NULL;
}

int view_start(struct view *v, int fuse_fd, struct af_err *err)
{
	autoclose int fd = fuse_fd;
	if (v->se || fd < 0)
		return af_err_set(err, EINVAL, "cannot start the view: bad state or descriptor");
	char *argv[] = { (char *)AF_PROG, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(1, argv);
	v->se = fuse_session_new(&args, &view_ops, sizeof(view_ops), v);
	fuse_opt_free_args(&args); /* option parsing may have grown it */
	if (!v->se)
		return af_err_set(err, ENOMEM, "cannot create the FUSE session");
	char mnt[64];
	snprintf(mnt, sizeof(mnt), "/dev/fd/%d", fd);
	/* libfuse takes an already mounted /dev/fuse fd given as /dev/fd/N;
	 * the session owns (and eventually closes) it from here */
	if (fuse_session_mount(v->se, mnt) != 0) {
		fuse_session_destroy(v->se);
		v->se = NULL;
		return af_err_set(err, EBADF, "cannot use the FUSE descriptor %d", fd);
	}
	fd = -1; /* owned by the session now */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int r = inval_start(v);
	if (r == 0) {
		r = pthread_create(&v->thread, NULL, loop_thread, v);
		if (r != 0)
			inval_stop(v);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0)
		return af_err_set(err, r, "cannot start the FUSE server thread: %s", strerror(r));
	v->running = true;
	return 0;
}

void view_stop(struct view *v)
{
	if (!v || !v->running)
		return;
	view_loop_stop(v);
	pthread_join(v->thread, NULL);
	inval_stop(v);
	v->running = false;
}

int view_abort(struct view *v)
{
	if (!v || !v->se)
		return -EINVAL;
	/* The connection ends when its last /dev/fuse file is released.
	 * Replacing the session's fd (not closing it: a loop thread may be
	 * about to poll or read that number) drops the view's only one; the
	 * threads then read end-of-file from /dev/null and leave, if they
	 * can. */
	autoclose int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0)
		return -errno;
	if (dup3(null, fuse_session_fd(v->se), O_CLOEXEC) < 0)
		return -errno;
	view_loop_stop(v);
	return 0;
}

int view_stop_within(struct view *v, double secs)
{
	if (!v || !v->running)
		return 0;
	view_loop_stop(v);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	double end = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + secs;
	ts.tv_sec = (time_t)end;
	ts.tv_nsec = (long)((end - (double)ts.tv_sec) * 1e9);
	int r = pthread_timedjoin_np(v->thread, NULL, &ts);
	if (r != 0)
		return -r;
	inval_stop(v);
	v->running = false;
	return 0;
}

size_t view_nodes_refused(const struct view *v)
{
	return __atomic_load_n(&v->nodes_full, __ATOMIC_RELAXED) ? v->table.max_live : 0;
}

void view_free(struct view *v)
{
	if (!v)
		return;
	view_stop(v);
	if (v->se)
		fuse_session_destroy(v->se);
	view_loop_destroy(v);
	node_table_destroy(&v->table);
	pthread_rwlock_destroy(&v->tree_lock);
	pthread_mutex_destroy(&v->inval.lock);
	pthread_cond_destroy(&v->inval.cond);
	free(v->inval.ino);
	vw_fh_destroy(&v->fht);
	for (unsigned i = 0; i < DISK_STRIPES; i++)
		pthread_mutex_destroy(&v->disk_lock[i]);
	free(v);
}

