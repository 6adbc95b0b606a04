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
 * the top bit set for entries the sandbox created. */
#include "view.h"

#include <dirent.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "copyup.h"
#include "node.h"

#define DEFAULT_TIMEOUT 86400.0
#define DEFAULT_THREADS 16
#define MAX_IO (1U << 20)

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
	struct fuse_session *se;
	pthread_t thread;
	bool running;
	int loop_ret;
};

/* The state of one open directory: a snapshot of its merged, filtered
 * entries taken at the first readdir (and again at each rewind). */
struct dir_ent {
	char *name;
	uint64_t ino;
	mode_t type;
	struct decision dec;
};
struct dir_handle {
	struct dir_ent *ents;
	size_t n, cap;
	bool built;
};

/* What (dir, name) is in upper and lower. */
struct merged {
	bool upper;    /* a non-whiteout upper entry */
	bool whiteout; /* upper holds a whiteout */
	bool lower;    /* the project has the name (hidden or not) */
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

static struct view *req_view(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct node *get_node(struct view *v, fuse_ino_t ino)
{
	if (ino == FUSE_ROOT_ID)
		return &v->table.root;
	return (struct node *)(uintptr_t)ino;
}

/* Returns 0 or -errno for a name the kernel passed. */
static int check_name(const char *name)
{
	if (name[0] == '\0' || strchr(name, '/'))
		return -EINVAL;
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return -EINVAL;
	if (strlen(name) > NAME_MAX)
		return -ENAMETOOLONG;
	return 0;
}

static void decide(struct view *v, struct node *dir, const char *name, bool is_dir,
		   struct decision *out)
{
	autofree char *path = node_path(&v->table, dir, name);
	policy_decide(v->policy, path, is_dir, out);
}

static bool dec_visible(const struct decision *d)
{
	return d->level >= LEVEL_VIEW || d->traversable;
}

/* Returns 0 or -errno. */
static int merged_stat(struct node *dir, const char *name, struct merged *m)
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
	if (dir->lower_fd >= 0) {
		if (fstatat(dir->lower_fd, name, &m->lst, AT_SYMLINK_NOFOLLOW) == 0)
			m->lower = true;
		else if (errno != ENOENT && errno != ENOTDIR)
			return -errno;
	}
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

/* Returns 0 or -errno. */
static int node_stat(struct view *v, struct node *n, struct stat *st)
{
	int r, ufd = node_upper(n);
	/* the root shows as the project root, not as the delta's upper/ */
	if (ufd >= 0 && n != &v->table.root)
		r = fstatat(ufd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
	else if (n->lower_fd >= 0)
		r = fstatat(n->lower_fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
	else if (n->lparent)
		r = fstatat(n->lparent->lower_fd, n->lname, st, AT_SYMLINK_NOFOLLOW);
	else
		return -EIO;
	if (r < 0)
		return -errno;
	st->st_ino = n->ino;
	/* merged directories have no meaningful link count; 1 tells tools
	 * like find not to infer the number of subdirectories from it */
	if (S_ISDIR(st->st_mode))
		st->st_nlink = 1;
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

static double attr_timeout(struct view *v, const struct stat *st)
{
	/* several names for one upper file are several nodes: never let
	 * the kernel trust a stale size or time for them */
	if (S_ISREG(st->st_mode) && st->st_nlink > 1 && (st->st_ino & NODE_UPPER_INO_BIT))
		return 0;
	return v->timeout;
}

/* Find or create the node for (dir, name) with one kernel lookup taken.
 * pre: a decision already computed for the path (readdir), or NULL.
 * Returns 0 or -errno (-ENOENT also for hidden entries). */
static int do_lookup(struct view *v, struct node *dir, const char *name, const struct decision *pre,
		     struct fuse_entry_param *e)
{
	int r = check_name(name);
	if (r < 0)
		return r == -EINVAL ? -ENOENT : r;
	memset(e, 0, sizeof(*e));
	struct node *n = node_find_lookup(&v->table, dir, name);
	if (!n) {
		struct merged m;
		r = merged_stat(dir, name, &m);
		if (r < 0)
			return r;
		if (!merged_exists(&m))
			return -ENOENT;
		const struct stat *st = merged_st(&m);
		bool is_dir = S_ISDIR(st->st_mode);
		struct decision dec;
		if (pre)
			dec = *pre;
		else
			decide(v, dir, name, is_dir, &dec);
		if (!dec_visible(&dec))
			return -ENOENT;
		int lfd = -1, ufd = -1;
		if (m.upper) {
			ufd = openat(node_upper(dir), name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
			if (ufd < 0)
				return errno == ENOENT ? -ENOENT : -errno;
		}
		if (is_dir && m.lower && S_ISDIR(m.lst.st_mode)) {
			lfd = openat(dir->lower_fd, name, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
			if (lfd < 0) {
				r = -errno;
				if (ufd >= 0)
					close(ufd);
				return r;
			}
		}
		n = node_insert(&v->table, dir, name, merged_ino(&m), st->st_mode & S_IFMT, &dec,
				lfd, ufd);
	}
	r = node_stat(v, n, &e->attr);
	if (r < 0) {
		node_forget(&v->table, n, 1);
		return r;
	}
	e->ino = (uintptr_t)n;
	e->attr_timeout = attr_timeout(v, &e->attr);
	e->entry_timeout = v->timeout;
	return 0;
}

/* ---- lookup, forget, getattr ------------------------------------------ */

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct view *v = req_view(req);
	struct fuse_entry_param e;
	int r = do_lookup(v, get_node(v, parent), name, NULL, &e);
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
	int r = node_stat(v, get_node(v, ino), &st);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, attr_timeout(v, &st));
}

/* ---- setattr ------------------------------------------------------------ */

static void proc_path(char *buf, size_t size, int fd)
{
	snprintf(buf, size, "/proc/self/fd/%d", fd);
}

/* Returns 0 or -errno. */
static int do_setattr(struct view *v, struct node *n, const struct stat *attr, int valid,
		      bool has_file, struct stat *out)
{
	if (n->level != LEVEL_WRITE)
		return -EACCES;
	copyup_thread_init();
	/* every change is made on the upper object, never through the
	 * request's file, which may be open on the project's copy */
	bool trunc0 = (valid & FUSE_SET_ATTR_SIZE) && attr->st_size == 0 && !has_file;
	int r = copyup_node(&v->cu, n, !trunc0);
	if (r < 0)
		return r;
	int ufd = node_upper(n);
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
		r = truncate(proc, attr->st_size);
		if (r < 0)
			return -errno;
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
	return node_stat(v, n, out);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int valid,
		       struct fuse_file_info *fi)
{
	struct view *v = req_view(req);
	struct stat st;
	/* fh 0: opened without a FUSE open (kernel_permissions) */
	int r = do_setattr(v, get_node(v, ino), attr, valid, fi && fi->fh != 0, &st);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, attr_timeout(v, &st));
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
	int ufd = node_upper(n);
	ssize_t len = ufd >= 0 ? readlinkat(ufd, "", buf, PATH_MAX)
			       : readlinkat(n->lparent->lower_fd, n->lname, buf, PATH_MAX);
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
	int r, ufd = node_upper(n);
	if (ufd >= 0) {
		char proc[64];
		proc_path(proc, sizeof(proc), ufd);
		r = S_ISLNK(n->type) ? 0 : faccessat(AT_FDCWD, proc, mask, AT_EACCESS);
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
	if (fstatvfs(node_upper(&v->table.root), &sv) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_statfs(req, &sv);
}

/* Host extended attributes are never exposed; the level still decides
 * whether asking is allowed at all. */
static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	(void)name;
	(void)size;
	struct view *v = req_view(req);
	fuse_reply_err(req, get_node(v, ino)->level < LEVEL_READ ? EACCES : ENODATA);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct view *v = req_view(req);
	if (get_node(v, ino)->level < LEVEL_READ)
		fuse_reply_err(req, EACCES);
	else if (size == 0)
		fuse_reply_xattr(req, 0);
	else
		fuse_reply_buf(req, NULL, 0);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	(void)name;
	(void)value;
	(void)size;
	(void)flags;
	struct view *v = req_view(req);
	fuse_reply_err(req, get_node(v, ino)->level != LEVEL_WRITE ? EACCES : ENOTSUP);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	(void)name;
	struct view *v = req_view(req);
	fuse_reply_err(req, get_node(v, ino)->level != LEVEL_WRITE ? EACCES : ENOTSUP);
}

/* ---- creating entries ---------------------------------------------------- */

/* Check that (dir, name) may be created as a new object of the given
 * type: fills *m and *dec.  Returns 0, -EEXIST for a visible entry,
 * -EACCES for a path below `write` or one holding a hidden entry, or
 * -errno.  On success the parent has an upper directory. */
static int prepare_create(struct view *v, struct node *dir, const char *name, bool is_dir,
			  struct merged *m, struct decision *dec)
{
	int r = check_name(name);
	if (r < 0)
		return r;
	r = merged_stat(dir, name, m);
	if (r < 0)
		return r;
	if (merged_exists(m)) {
		struct decision old;
		decide(v, dir, name, S_ISDIR(merged_st(m)->st_mode), &old);
		/* never reveal a hidden entry: refuse like any non-write path */
		return dec_visible(&old) ? -EEXIST : -EACCES;
	}
	decide(v, dir, name, is_dir, dec);
	if (dec->level != LEVEL_WRITE)
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
 * replaced atomically (the object is built in work/ first). */
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
	struct merged m;
	struct decision dec;
	int r = prepare_create(v, dir, name, S_ISDIR(s->mode), &m, &dec);
	if (r < 0)
		return r;
	s->lowerfd = -1;
	if (S_ISDIR(s->mode) && m.lower && S_ISDIR(m.lst.st_mode)) {
		/* a new directory where the project had one: the project's
		 * entries stay deleted */
		s->lowerfd = openat(dir->lower_fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (s->lowerfd < 0)
			return -errno;
	}
	r = make_entry(v, dir, name, &m, s);
	if (s->lowerfd >= 0)
		close(s->lowerfd);
	if (r < 0)
		return r;
	r = do_lookup(v, dir, name, &dec, e);
	if (r < 0 && s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
	return r;
}

static void reply_entry_or_err(fuse_req_t req, int r, const struct fuse_entry_param *e)
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
	reply_entry_or_err(req, r, &e);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct view *v = req_view(req);
	struct fuse_entry_param e;
	struct mk_spec s = { .mode = S_IFDIR | (mode & 07777), .fd = -1 };
	int r = do_create(v, get_node(v, parent), name, &s, &e);
	reply_entry_or_err(req, r, &e);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct view *v = req_view(req);
	struct fuse_entry_param e;
	struct mk_spec s = { .mode = S_IFLNK | 0777, .target = link, .fd = -1 };
	int r = do_create(v, get_node(v, parent), name, &s, &e);
	reply_entry_or_err(req, r, &e);
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
	int oflags = (flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_NOFOLLOW)) | O_CLOEXEC;
	int fd, ufd = node_upper(n);
	if (ufd >= 0) {
		char proc[64];
		proc_path(proc, sizeof(proc), ufd);
		fd = open(proc, oflags);
	} else {
		fd = openat(n->lparent->lower_fd, n->lname, oflags | O_NOFOLLOW | O_NOCTTY);
	}
	return fd < 0 ? -errno : fd;
}

static void set_open_flags(struct fuse_file_info *fi, const struct stat *st)
{
	/* the kernel's page cache is coherent: every change goes through
	 * it, except for several names of one upper file */
	fi->keep_cache = !(st && st->st_nlink > 1 && (st->st_ino & NODE_UPPER_INO_BIT));
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
	set_open_flags(fi, node_upper(n) >= 0 && node_stat(v, n, &st) == 0 ? &st : NULL);
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
		r = do_lookup(v, dir, name, NULL, &e);
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
	fi->fh = (uint64_t)s.fd;
	set_open_flags(fi, &e.attr);
	if (fuse_reply_create(req, &e, fi) < 0) {
		close(s.fd);
		node_forget(&v->table, get_node(v, e.ino), 1);
	}
}

/* The fd to do I/O on: the open file's, or (fh 0: the kernel opened the
 * file without a FUSE open) a temporary one, checked like an open with
 * flags.  *tmp says whether the caller closes it.  Returns fd or -errno. */
static int io_fd(struct view *v, fuse_ino_t ino, struct fuse_file_info *fi, int flags, bool *tmp)
{
	*tmp = false;
	if (fi && fi->fh != 0)
		return (int)fi->fh;
	*tmp = true;
	return do_open(v, get_node(v, ino), flags);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	bool tmp;
	int fd = io_fd(req_view(req), ino, fi, O_RDONLY, &tmp);
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = fd;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
	if (tmp)
		close(fd);
}

static void op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in, off_t off,
			 struct fuse_file_info *fi)
{
	bool tmp;
	int fd = io_fd(req_view(req), ino, fi, O_WRONLY, &tmp);
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in));
	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out.buf[0].fd = fd;
	out.buf[0].pos = off;
	ssize_t r = fuse_buf_copy(&out, in, 0);
	if (tmp)
		close(fd);
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
	if (fi->fh != 0)
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
	bool tmp;
	int fd = io_fd(req_view(req), ino, fi, O_WRONLY, &tmp);
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	int r = fallocate(fd, mode, off, len) < 0 ? errno : 0;
	if (tmp)
		close(fd);
	fuse_reply_err(req, r);
}

static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	bool tmp;
	int fd = io_fd(req_view(req), ino, fi, O_RDONLY, &tmp);
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	off_t r = lseek(fd, off, whence);
	int e = errno;
	if (tmp)
		close(fd);
	if (r < 0)
		fuse_reply_err(req, e);
	else
		fuse_reply_lseek(req, r);
}

/* ---- directories ----------------------------------------------------------- */

/* Call fn for every entry of directory fd but "." and ".." (fd may be an
 * O_PATH fd; it is not consumed).  Returns 0, fn's nonzero result, or
 * -errno. */
typedef int (*entry_fn)(int dirfd, const struct dirent *de, void *arg);
static int for_each_entry(int fd, entry_fn fn, void *arg)
{
	int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	DIR *d = fdopendir(dfd);
	if (!d) {
		int e = errno;
		close(dfd);
		return -e;
	}
	int r = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		r = fn(dirfd(d), de, arg);
		if (r != 0)
			break;
	}
	closedir(d);
	return r;
}

/* The entry's type, statting when readdir does not say; whiteouts are
 * reported as 0.  Returns the S_IFMT bits or -errno. */
static int entry_type(int dirfd, const struct dirent *de)
{
	if (de->d_type != DT_UNKNOWN && de->d_type != DT_CHR)
		return (int)DTTOIF(de->d_type);
	struct stat st;
	if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (delta_is_whiteout(&st))
		return 0;
	return (int)(st.st_mode & S_IFMT);
}

/* A sorted set of names. */
struct name_set {
	char **v;
	size_t n, cap;
};

static void names_add(struct name_set *s, const char *name)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	s->v[s->n++] = xstrdup(name);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void names_sort(struct name_set *s)
{
	if (s->n > 1)
		qsort(s->v, s->n, sizeof(*s->v), cmp_str);
}

static bool names_has(const struct name_set *s, const char *name)
{
	return s->n && bsearch(&name, s->v, s->n, sizeof(*s->v), cmp_str) != NULL;
}

static void names_free(struct name_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/* ---- emptiness (hidden entries count) ---- */

static int empty_upper_cb(int dirfd, const struct dirent *de, void *arg)
{
	int t = entry_type(dirfd, de);
	if (t < 0)
		return t;
	if (t != 0)
		return -ENOTEMPTY;
	names_add(arg, de->d_name);
	return 0;
}

static int empty_lower_cb(int dirfd, const struct dirent *de, void *arg)
{
	(void)dirfd;
	return names_has(arg, de->d_name) ? 0 : -ENOTEMPTY;
}

/* Is the merged directory empty, counting entries the sandbox cannot
 * see?  Returns 0, -ENOTEMPTY or -errno. */
static int dir_empty(int ufd, int lfd)
{
	struct name_set wh = { 0 };
	int r = 0;
	if (ufd >= 0)
		r = for_each_entry(ufd, empty_upper_cb, &wh);
	names_sort(&wh);
	if (r == 0 && lfd >= 0)
		r = for_each_entry(lfd, empty_lower_cb, &wh);
	names_free(&wh);
	return r;
}

/* ---- unlink, rmdir ---- */

/* Returns 0 or -errno. */
static int unlink_node(struct view *v, struct node *dir, const char *name, struct node *n,
		       bool rmdir_op)
{
	if (n->level != LEVEL_WRITE)
		return -EACCES;
	bool is_dir = S_ISDIR(n->type);
	if (rmdir_op && !is_dir)
		return -ENOTDIR;
	if (!rmdir_op && is_dir)
		return -EISDIR;
	struct merged m;
	int r = merged_stat(dir, name, &m);
	if (r < 0)
		return r;
	if (!merged_exists(&m))
		return -ENOENT;
	if (is_dir) {
		r = dir_empty(node_upper(n), n->lower_fd);
		if (r < 0)
			return r;
	}
	copyup_thread_init();
	if (m.lower) {
		copyup_note_base(&v->cu, dir, name, &m.lst);
		r = copyup_whiteout(&v->cu, dir, name, m.upper);
	} else {
		int pu = node_upper(dir);
		if (is_dir) {
			(void)copyup_clear_whiteouts(node_upper(n));
			r = unlinkat(pu, name, AT_REMOVEDIR) < 0 ? -errno : 0;
		} else {
			r = unlinkat(pu, name, 0) < 0 ? -errno : 0;
		}
	}
	if (r == 0)
		node_unhash(&v->table, dir, name);
	return r;
}

/* Returns 0 or -errno. */
static int do_unlink(struct view *v, struct node *dir, const char *name, bool rmdir_op)
{
	int r = check_name(name);
	if (r < 0)
		return r;
	struct fuse_entry_param e;
	r = do_lookup(v, dir, name, NULL, &e);
	if (r < 0)
		return r;
	struct node *n = get_node(v, e.ino);
	r = unlink_node(v, dir, name, n, rmdir_op);
	node_forget(&v->table, n, 1);
	return r;
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct view *v = req_view(req);
	fuse_reply_err(req, -do_unlink(v, get_node(v, parent), name, false));
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct view *v = req_view(req);
	fuse_reply_err(req, -do_unlink(v, get_node(v, parent), name, true));
}

/* ---- rename ---- */

struct subtree_ctx {
	struct view *v;
	const char *oldp, *newp;
};

static int check_subtree(struct view *v, int fd, const char *oldp, const char *newp);

static int subtree_cb(int dirfd, const struct dirent *de, void *arg)
{
	struct subtree_ctx *c = arg;
	int t = entry_type(dirfd, de);
	if (t < 0)
		return t;
	if (t == 0)
		return 0; /* whiteout */
	autofree char *o = xasprintf("%s/%s", c->oldp, de->d_name);
	autofree char *n = xasprintf("%s/%s", c->newp, de->d_name);
	struct decision d;
	policy_decide(c->v->policy, o, t == S_IFDIR, &d);
	if (d.level != LEVEL_WRITE)
		return -EACCES;
	policy_decide(c->v->policy, n, t == S_IFDIR, &d);
	if (d.level != LEVEL_WRITE)
		return -EACCES;
	if (t != S_IFDIR)
		return 0;
	autoclose int cfd = openat(dirfd, de->d_name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (cfd < 0)
		return -errno;
	return check_subtree(c->v, cfd, o, n);
}

/* Every entry below an upper-only directory must stay `write` under both
 * its old and its new path.  Returns 0, -EACCES or -errno. */
static int check_subtree(struct view *v, int fd, const char *oldp, const char *newp)
{
	struct subtree_ctx c = { v, oldp, newp };
	return for_each_entry(fd, subtree_cb, &c);
}

/* Returns 0 or -errno. */
static int rename_node(struct view *v, struct node *p, const char *name, struct node *sn,
		       struct node *np, const char *newname, unsigned flags)
{
	if (sn->level != LEVEL_WRITE)
		return -EACCES;
	bool src_dir = S_ISDIR(sn->type);
	struct merged sm, dm;
	int r = merged_stat(p, name, &sm);
	if (r < 0)
		return r;
	if (!merged_exists(&sm))
		return -ENOENT;
	r = merged_stat(np, newname, &dm);
	if (r < 0)
		return r;
	bool dexists = merged_exists(&dm);
	if (dexists) {
		bool ddir = S_ISDIR(merged_st(&dm)->st_mode);
		struct decision dd;
		decide(v, np, newname, ddir, &dd);
		if (!dec_visible(&dd))
			return -EACCES;
		if (flags & RENAME_NOREPLACE)
			return -EEXIST;
		if (p == np && strcmp(name, newname) == 0)
			return 0;
		if (dd.level != LEVEL_WRITE)
			return -EACCES;
		if (src_dir && !ddir)
			return -ENOTDIR;
		if (!src_dir && ddir)
			return -EISDIR;
		/* replacing a project directory would merge with it */
		if (ddir && dm.lower && S_ISDIR(dm.lst.st_mode))
			return -EXDEV;
	}
	struct decision nd;
	decide(v, np, newname, src_dir, &nd);
	if (nd.level != LEVEL_WRITE)
		return -EACCES;
	copyup_thread_init();
	if (src_dir) {
		/* a project directory is moved by copying (mv falls back to
		 * copy + delete, each step checked); so is one that would land
		 * on a deleted project directory */
		if (sn->lower_fd >= 0 || (dm.lower && S_ISDIR(dm.lst.st_mode)))
			return -EXDEV;
		autofree char *oldp = node_path(&v->table, p, name);
		autofree char *newp = node_path(&v->table, np, newname);
		r = check_subtree(v, node_upper(sn), oldp, newp);
	} else {
		r = copyup_node(&v->cu, sn, true);
	}
	if (r < 0)
		return r;
	r = copyup_dir(&v->cu, np);
	if (r < 0)
		return r;
	if (sm.lower)
		copyup_note_base(&v->cu, p, name, &sm.lst);
	copyup_note_base(&v->cu, np, newname, dm.lower ? &dm.lst : NULL);
	int pu = node_upper(p), npu = node_upper(np);
	if (src_dir && dm.whiteout) {
		/* a directory cannot replace the whiteout: swap them */
		if (renameat2(pu, name, npu, newname, RENAME_EXCHANGE) < 0)
			return -errno;
		if (!sm.lower)
			(void)unlinkat(pu, name, 0);
	} else {
		unsigned fl = (dm.upper || dm.whiteout) ? 0 : RENAME_NOREPLACE;
		if (sm.lower)
			fl |= RENAME_WHITEOUT; /* hide the project entry in the same step */
		r = renameat2(pu, name, npu, newname, fl) < 0 ? -errno : 0;
		if (r == -EINVAL && (fl & RENAME_WHITEOUT)) {
			r = renameat2(pu, name, npu, newname, fl & ~RENAME_WHITEOUT) < 0 ? -errno : 0;
			if (r == 0 && mknodat(pu, name, S_IFCHR | 0000, makedev(0, 0)) < 0)
				r = -errno;
		}
		if (r < 0)
			return r;
	}
	node_move(&v->table, sn, np, newname);
	return 0;
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	struct view *v = req_view(req);
	struct node *p = get_node(v, parent), *np = get_node(v, newparent);
	int r = flags & ~(unsigned)RENAME_NOREPLACE ? -EINVAL : check_name(newname);
	if (r == 0) {
		struct fuse_entry_param e;
		r = do_lookup(v, p, name, NULL, &e);
		if (r == 0) {
			struct node *sn = get_node(v, e.ino);
			r = rename_node(v, p, name, sn, np, newname, flags);
			node_forget(&v->table, sn, 1);
		}
	}
	fuse_reply_err(req, -r);
}

/* ---- link ---- */

/* Returns 0 or -errno. */
static int do_link(struct view *v, struct node *sn, struct node *np, const char *newname,
		   struct fuse_entry_param *e)
{
	if (sn->level != LEVEL_WRITE)
		return -EACCES;
	if (S_ISDIR(sn->type))
		return -EPERM;
	struct merged m;
	struct decision dec;
	int r = prepare_create(v, np, newname, false, &m, &dec);
	if (r < 0)
		return r;
	r = copyup_node(&v->cu, sn, true);
	if (r < 0)
		return r;
	char proc[64];
	proc_path(proc, sizeof(proc), node_upper(sn));
	int npu = node_upper(np);
	if (m.whiteout) {
		char tmp[64];
		copyup_tmpname(&v->cu, tmp, sizeof(tmp));
		if (linkat(AT_FDCWD, proc, v->cu.work_fd, tmp, AT_SYMLINK_FOLLOW) < 0)
			return -errno;
		r = renameat(v->cu.work_fd, tmp, npu, newname) < 0 ? -errno : 0;
		if (r < 0)
			(void)unlinkat(v->cu.work_fd, tmp, 0);
	} else {
		r = linkat(AT_FDCWD, proc, npu, newname, AT_SYMLINK_FOLLOW) < 0 ? -errno : 0;
	}
	if (r < 0)
		return r;
	return do_lookup(v, np, newname, &dec, e);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct view *v = req_view(req);
	struct fuse_entry_param e;
	int r = do_link(v, get_node(v, ino), get_node(v, newparent), newname, &e);
	reply_entry_or_err(req, r, &e);
}

/* ---- readdir ---- */

static void dh_add(struct dir_handle *h, const char *name, uint64_t ino, mode_t type,
		   const struct decision *dec)
{
	if (h->n == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 32;
		h->ents = xrealloc(h->ents, h->cap * sizeof(*h->ents));
	}
	struct dir_ent *e = &h->ents[h->n++];
	e->name = xstrdup(name);
	e->ino = ino;
	e->type = type;
	if (dec)
		e->dec = *dec;
	else
		memset(&e->dec, 0, sizeof(e->dec));
}

static void dh_free(struct dir_handle *h)
{
	for (size_t i = 0; i < h->n; i++)
		free(h->ents[i].name);
	free(h->ents);
	free(h);
}

struct snap_ctx {
	struct view *v;
	struct node *dir;
	struct dir_handle *h;
	struct name_set upper; /* names upper holds, whiteouts included */
	char *path;            /* "dirpath/" prefix, then the entry name */
	size_t plen;
	bool in_upper;
};

/* Add the entry if its path is visible. */
static void snap_add(struct snap_ctx *c, const char *name, uint64_t ino, int type)
{
	size_t nlen = strlen(name);
	memcpy(c->path + c->plen, name, nlen + 1);
	struct decision d;
	policy_decide(c->v->policy, c->path, type == S_IFDIR, &d);
	if (!dec_visible(&d))
		return;
	uint64_t known;
	if (node_peek_ino(&c->v->table, c->dir, name, &known))
		ino = known;
	dh_add(c->h, name, ino, (mode_t)type, &d);
}

static int snap_upper_cb(int dirfd, const struct dirent *de, void *arg)
{
	struct snap_ctx *c = arg;
	int t = entry_type(dirfd, de);
	if (t < 0)
		return t == -ENOENT ? 0 : t;
	names_add(&c->upper, de->d_name);
	if (t == 0)
		return 0; /* whiteout */
	uint64_t ino = (uint64_t)de->d_ino | NODE_UPPER_INO_BIT;
	struct stat lst;
	if (c->dir->lower_fd >= 0 &&
	    fstatat(c->dir->lower_fd, de->d_name, &lst, AT_SYMLINK_NOFOLLOW) == 0 &&
	    (int)(lst.st_mode & S_IFMT) == t)
		ino = lst.st_ino;
	snap_add(c, de->d_name, ino, t);
	return 0;
}

static int snap_lower_cb(int dirfd, const struct dirent *de, void *arg)
{
	struct snap_ctx *c = arg;
	if (names_has(&c->upper, de->d_name))
		return 0;
	int t = entry_type(dirfd, de);
	if (t <= 0)
		return t == -ENOENT ? 0 : t;
	snap_add(c, de->d_name, de->d_ino, t);
	return 0;
}

/* Snapshot the merged, filtered listing of dir.  Returns 0 or -errno. */
static int snapshot(struct view *v, struct node *dir, struct dir_handle *h)
{
	struct node *parent = dir->parent ? dir->parent : dir;
	dh_add(h, ".", dir->ino, S_IFDIR, NULL);
	dh_add(h, "..", parent->ino, S_IFDIR, NULL);
	autofree char *dpath = node_path(&v->table, dir, NULL);
	struct snap_ctx c = { .v = v, .dir = dir, .h = h };
	c.plen = strlen(dpath);
	c.path = xmalloc(c.plen + NAME_MAX + 2);
	memcpy(c.path, dpath, c.plen);
	if (c.plen)
		c.path[c.plen++] = '/';
	int r = 0, ufd = node_upper(dir);
	if (ufd >= 0)
		r = for_each_entry(ufd, snap_upper_cb, &c);
	names_sort(&c.upper);
	if (r == 0 && dir->lower_fd >= 0)
		r = for_each_entry(dir->lower_fd, snap_lower_cb, &c);
	names_free(&c.upper);
	free(c.path);
	return r;
}

static void listing_free(void *p)
{
	dh_free(p);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct view *v = req_view(req);
	struct node *dir = get_node(v, ino);
	if (v->kperm) {
		/* nothing to check that lookup did not: let the kernel open
		 * directories by itself and cache their listings (readdir then
		 * comes with fh 0 and uses the node's listing) */
		fuse_reply_err(req, ENOSYS);
		return;
	}
	/* listing names is what `view` (and a traversable directory) grants */
	if (!node_visible(dir)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	/* the listing is taken at the first readdir, not here: only then
	 * does the kernel hold the directory against concurrent changes, so
	 * the listing it caches is never older than the cache */
	struct dir_handle *h = xcalloc(1, sizeof(*h));
	fi->fh = (uintptr_t)h;
	fi->keep_cache = 1;
	fi->cache_readdir = 1;
	if (fuse_reply_open(req, fi) < 0)
		dh_free(h);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, bool plus)
{
	struct view *v = req_view(req);
	struct node *dir = get_node(v, ino);
	struct dir_handle *h = (struct dir_handle *)(uintptr_t)fi->fh;
	bool shared = false;
	if (h && (off == 0 || !h->built)) {
		for (size_t i = 0; i < h->n; i++)
			free(h->ents[i].name);
		h->n = 0;
		int r = snapshot(v, dir, h);
		if (r < 0) {
			fuse_reply_err(req, -r);
			return;
		}
		h->built = true;
	} else if (!h) {
		/* no opendir: a listing per directory node, taken at offset 0
		 * and dropped once read to the end */
		shared = true;
		pthread_mutex_lock(&dir->lock);
		if (off == 0 || !dir->listing) {
			if (dir->listing)
				dh_free(dir->listing);
			dir->listing = xcalloc(1, sizeof(struct dir_handle));
			int r = snapshot(v, dir, dir->listing);
			if (r < 0) {
				dh_free(dir->listing);
				dir->listing = NULL;
				pthread_mutex_unlock(&dir->lock);
				fuse_reply_err(req, -r);
				return;
			}
		}
		h = dir->listing;
	}
	autofree char *buf = xmalloc(size);
	size_t pos = 0;
	for (size_t i = off < 0 ? 0 : (size_t)off; i < h->n; i++) {
		struct dir_ent *de = &h->ents[i];
		size_t rem = size - pos, len;
		if (!plus) {
			struct stat st = { .st_ino = de->ino, .st_mode = de->type };
			len = fuse_add_direntry(req, buf + pos, rem, de->name, &st, (off_t)i + 1);
			if (len > rem)
				break;
		} else {
			struct fuse_entry_param e;
			if (i < 2) {
				memset(&e, 0, sizeof(e));
				e.attr.st_ino = de->ino;
				e.attr.st_mode = de->type;
			} else if (do_lookup(v, dir, de->name, &de->dec, &e) < 0) {
				continue; /* gone since opendir */
			}
			len = fuse_add_direntry_plus(req, buf + pos, rem, de->name, &e, (off_t)i + 1);
			if (len > rem) {
				if (e.ino)
					node_forget(&v->table, get_node(v, e.ino), 1);
				break;
			}
		}
		pos += len;
	}
	if (shared) {
		if (pos == 0) {
			dh_free(dir->listing);
			dir->listing = NULL;
		}
		pthread_mutex_unlock(&dir->lock);
	}
	fuse_reply_buf(req, buf, pos);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	if (fi->fh != 0)
		dh_free((struct dir_handle *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
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
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.open = op_open,
	.read = op_read,
	.write_buf = op_write_buf,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.fsyncdir = op_fsync,
	.statfs = op_statfs,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
	.access = op_access,
	.create = op_create,
	.fallocate = op_fallocate,
	.lseek = op_lseek,
};

static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int view_new(const struct view_config *cfg, struct view **out, struct af_err *err)
{
	if (!cfg || !cfg->delta || !cfg->policy || cfg->project_fd < 0)
		return af_err_set(err, EINVAL, "cannot create the view: incomplete configuration");
	raise_nofile();
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
	struct stat st;
	if (fstat(lower, &st) < 0)
		return af_err_set(err, errno, "cannot stat the project directory: %s", strerror(errno));
	struct decision dec;
	policy_decide(cfg->policy, "", true, &dec);

	struct view *v = xcalloc(1, sizeof(*v));
	v->delta = cfg->delta;
	v->policy = cfg->policy;
	v->timeout = cfg->cache_timeout > 0 ? cfg->cache_timeout : DEFAULT_TIMEOUT;
	v->max_threads = cfg->max_threads ? cfg->max_threads : DEFAULT_THREADS;
	v->kperm = cfg->kernel_permissions;
	v->uid = getuid();
	v->gid = getgid();
	node_table_init(&v->table, steal_fd(&lower), steal_fd(&upper), st.st_ino, &dec);
	v->table.listing_free = listing_free;
	v->cu.delta = cfg->delta;
	v->cu.table = &v->table;
	v->cu.work_fd = wfd;
	*out = v;
	return 0;
}

static void *loop_thread(void *arg)
{
	struct view *v = arg;
	struct fuse_loop_config cfg = { .clone_fd = 0, .max_idle_threads = v->max_threads };
	v->loop_ret = fuse_session_loop_mt(v->se, &cfg);
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
	int r = pthread_create(&v->thread, NULL, loop_thread, v);
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
	fuse_session_exit(v->se);
	pthread_join(v->thread, NULL);
	v->running = false;
}

void view_free(struct view *v)
{
	if (!v)
		return;
	view_stop(v);
	if (v->se)
		fuse_session_destroy(v->se);
	node_table_destroy(&v->table);
	free(v);
}
