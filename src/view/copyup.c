/* copyup.c - placing objects in the delta for the view (see copyup.h). */
#include "view/copyup.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/util.h"

void copyup_thread_init(void)
{
	static __thread bool done;
	if (done)
		return;
	done = true;
	/* a private fs context so umask(0) stays in this thread */
	if (unshare(CLONE_FS) == 0)
		umask(0);
}

void copyup_tmpname(struct copyup_ctx *c, char *buf, size_t size)
{
	unsigned long n = __atomic_add_fetch(&c->seq, 1, __ATOMIC_RELAXED);
	snprintf(buf, size, "cu.%d.%lu", (int)getpid(), n);
}

void copyup_note_base(struct copyup_ctx *c, struct node *dir, const char *name,
		      const struct stat *lst)
{
	autofree char *path = node_path(c->table, dir, name);
	/* out of memory: with no base, sync counts the path as a conflict
	 * and keeps the sandbox's version in the delta */
	if (path)
		delta_note_base(c->delta, path, lst);
}

void copyup_drop_base(struct copyup_ctx *c, struct node *dir, const char *name)
{
	autofree char *path = node_path(c->table, dir, name);
	if (path) /* else the record stays: sync then only looks at it */
		delta_drop_base(c->delta, path);
}

/* The names of the extended attributes of path (follow: as listxattr,
 * else as llistxattr), *len bytes of them.  Returns them, or NULL when
 * there are none or they cannot be read. */
static char *xattr_names(const char *path, bool follow, ssize_t *len)
{
	ssize_t (*list)(const char *, char *, size_t) = follow ? listxattr : llistxattr;
	*len = list(path, NULL, 0);
	if (*len <= 0)
		return NULL;
	autofree char *names = xmalloc((size_t)*len);
	*len = list(path, names, (size_t)*len);
	if (*len <= 0)
		return NULL;
	return steal_pointer(&names);
}

/* Copy the user.* extended attributes of the object at path from to
 * the object open as fd (any fd, O_PATH included).  follow: from is a
 * /proc/self/fd/N magic link naming the object itself; else from's last
 * component is never followed.  Other namespaces need privileges or mean
 * something only on the original; best effort, as for the owner. */
static uint64_t copy_xattrs(const char *from, bool follow, int fd)
{
	ssize_t (*get)(const char *, const char *, void *, size_t) = follow ? getxattr : lgetxattr;
	ssize_t len;
	autofree char *names = xattr_names(from, follow, &len);
	if (!names)
		return 0;
	bool copied = false;
	char to[64];
	snprintf(to, sizeof(to), "/proc/self/fd/%d", fd);
	autofree char *val = NULL;
	size_t cap = 0;
	for (char *nm = names; nm < names + len; nm += strlen(nm) + 1) {
		if (strncmp(nm, "user.", 5) != 0)
			continue;
		ssize_t vl = get(from, nm, NULL, 0);
		if (vl < 0)
			continue;
		if ((size_t)vl > cap) {
			cap = (size_t)vl;
			val = xrealloc(val, cap);
		}
		vl = get(from, nm, val, cap);
		if (vl >= 0 && setxattr(to, nm, val, (size_t)vl, 0) == 0)
			copied = true;
	}
	return copied ? copyup_xattr_bytes(to) : 0;
}

uint64_t copyup_xattr_bytes(const char *path)
{
	ssize_t len;
	autofree char *names = xattr_names(path, true, &len);
	if (!names)
		return 0;
	uint64_t sum = 0;
	for (char *nm = names; nm < names + len; nm += strlen(nm) + 1) {
		if (strncmp(nm, "user.", 5) != 0)
			continue; /* the only ones the sandbox and copy-up set */
		ssize_t vl = getxattr(path, nm, NULL, 0);
		if (vl >= 0)
			sum += strlen(nm) + (uint64_t)vl;
	}
	/* ext4 keeps them in a block of their own once the inode is full */
	return sum ? sum + DELTA_ENTRY_COST : 0;
}

/* Charge what a copy-up put in the delta.  Never refused: the project
 * bounds it (each of its entries is copied once), and counting it keeps
 * the credit of the entry's removal from making the budget drift low. */
static void charge(struct copyup_ctx *c, uint64_t bytes)
{
	if (delta_disk_limit(c->delta))
		delta_disk_settle(c->delta, 0, (int64_t)bytes);
}

/* "/proc/self/fd/DIRFD/NAME" into buf: name in the directory dirfd. */
static void at_path(char *buf, size_t size, int dirfd, const char *name)
{
	snprintf(buf, size, "/proc/self/fd/%d/%s", dirfd, name);
}

static void copy_times_fd(int fd, const struct stat *st)
{
	struct timespec ts[2] = { st->st_atim, st->st_mtim };
	(void)futimens(fd, ts);
}

int copyup_open_regular(int dirfd, const char *name, int flags)
{
	/* The project can change under the view: a file statted a moment
	 * ago may be a FIFO by now, whose open would block this thread for
	 * good.  O_NONBLOCK makes that open return, the check refuses it. */
	int fd = openat(dirfd, name, flags | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return copyup_check_regular(fd);
}

int copyup_check_regular(int fd)
{
	struct stat st;
	int r = fstat(fd, &st) < 0 ? -errno : 0;
	if (r == 0 && !S_ISREG(st.st_mode))
		r = -EIO; /* swapped for something else since it was looked up */
	/* O_NONBLOCK is left set: on a regular file it changes nothing
	 * (open(2)), and clearing it cost two system calls per open */
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

/* Build a copy of the lower regular file (lpfd, name) in work/ and link
 * it at (upfd, name).  Returns 0 or -errno. */
static int copy_regular(struct copyup_ctx *c, int lpfd, const char *name, const struct stat *st,
			int upfd, bool with_data)
{
	autoclose int in = -1;
	if (with_data && st->st_size > 0) {
		in = copyup_open_regular(lpfd, name, O_RDONLY);
		if (in < 0)
			return in;
	}
	char tmp[64];
	autoclose int out = -1;
	bool named = __atomic_load_n(&c->no_tmpfile, __ATOMIC_RELAXED);
	if (!named) {
		out = openat(c->work_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (out < 0) {
			if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
				return -errno;
			__atomic_store_n(&c->no_tmpfile, true, __ATOMIC_RELAXED);
			named = true;
		}
	}
	if (named) {
		copyup_tmpname(c, tmp, sizeof(tmp));
		out = openat(c->work_fd, tmp, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (out < 0)
			return -errno;
	}
	/* the copy costs what the project's file holds (holes stay holes) */
	uint64_t want = in >= 0 ? (uint64_t)st->st_blocks * 512 : 0;
	int r = delta_disk_reserve(c->delta, want);
	if (r < 0) {
		if (named)
			unlinkat(c->work_fd, tmp, 0);
		return r;
	}
	if (in >= 0)
		r = copy_fd_data(in, out, st->st_size);
	if (r == 0) {
		if (fchown(out, st->st_uid, st->st_gid) < 0) {
			/* best effort: only root may give files away */
		}
		if (fchmod(out, st->st_mode & 07777) < 0)
			r = -errno;
	}
	if (r == 0) {
		char from[PATH_MAX + 32];
		at_path(from, sizeof(from), lpfd, name);
		charge(c, copy_xattrs(from, false, out));
		copy_times_fd(out, st);
	}
	if (r == 0) {
		if (named) {
			if (renameat2(c->work_fd, tmp, upfd, name, RENAME_NOREPLACE) < 0)
				r = -errno;
		} else {
			char proc[64];
			snprintf(proc, sizeof(proc), "/proc/self/fd/%d", out);
			if (linkat(AT_FDCWD, proc, upfd, name, AT_SYMLINK_FOLLOW) < 0)
				r = -errno;
		}
	}
	if (r < 0 && named)
		unlinkat(c->work_fd, tmp, 0);
	struct stat ost;
	int64_t got = r < 0 ? 0 : fstat(out, &ost) < 0 ? (int64_t)want : (int64_t)ost.st_blocks * 512;
	delta_disk_settle(c->delta, want, got);
	return r;
}

/* Returns 0 or -errno. */
static int copy_symlink(int lpfd, const char *name, const struct stat *st, int upfd)
{
	char target[PATH_MAX + 1];
	ssize_t n = readlinkat(lpfd, name, target, PATH_MAX);
	if (n < 0)
		return -errno;
	target[n] = '\0';
	if (symlinkat(target, upfd, name) < 0)
		return -errno;
	if (fchownat(upfd, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0) {
		/* best effort, as for files */
	}
	struct timespec ts[2] = { st->st_atim, st->st_mtim };
	(void)utimensat(upfd, name, ts, AT_SYMLINK_NOFOLLOW);
	return 0;
}

/* Copy the lower non-directory (lpfd, name), lstat'ed as *st, to (upfd,
 * name).  Returns 0 or -errno. */
static int copy_nondir(struct copyup_ctx *c, int lpfd, const char *name, const struct stat *st,
		       int upfd, bool with_data)
{
	int r;
	switch (st->st_mode & S_IFMT) {
	case S_IFREG:
		r = copy_regular(c, lpfd, name, st, upfd, with_data);
		break;
	case S_IFLNK:
		r = copy_symlink(lpfd, name, st, upfd);
		break;
	case S_IFIFO:
	case S_IFSOCK:
		r = mknodat(upfd, name, st->st_mode, 0) < 0 ? -errno : 0;
		if (r == 0) {
			struct timespec ts[2] = { st->st_atim, st->st_mtim };
			(void)utimensat(upfd, name, ts, AT_SYMLINK_NOFOLLOW);
		}
		break;
	default:
		return -EPERM; /* device nodes cannot be created unprivileged */
	}
	if (r == 0)
		charge(c, DELTA_ENTRY_COST + (S_ISLNK(st->st_mode) ? (uint64_t)st->st_size : 0));
	return r;
}

/* Create the upper twin of lower directory lfd at (pu, name), empty:
 * its mode with owner rwx added, its user xattrs and times.  Returns an
 * O_PATH fd of it or -errno. */
static int make_upper_dir(struct copyup_ctx *c, int lfd, int pu, const char *name)
{
	struct stat st;
	if (fstatat(lfd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	bool made = mkdirat(pu, name, (st.st_mode & 07777) | S_IRWXU) == 0;
	if (!made && errno != EEXIST)
		return -errno;
	int fd = openat(pu, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOTDIR ? -ENOENT : -errno;
	char from[64];
	snprintf(from, sizeof(from), "/proc/self/fd/%d", lfd);
	uint64_t xb = copy_xattrs(from, true, fd);
	if (made)
		charge(c, DELTA_ENTRY_COST + xb);
	struct timespec ts[2] = { st.st_atim, st.st_mtim };
	(void)utimensat(fd, "", ts, AT_EMPTY_PATH);
	return fd;
}

int copyup_raw(struct copyup_ctx *c, int lpfd, const char *name, const struct stat *st, int upfd)
{
	if (!S_ISDIR(st->st_mode))
		return copy_nondir(c, lpfd, name, st, upfd, true);
	int lfd = openat(lpfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (lfd < 0)
		return -errno;
	int fd = make_upper_dir(c, lfd, upfd, name);
	close(lfd);
	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

int copyup_dir(struct copyup_ctx *c, struct node *dir)
{
	if (node_upper(dir) >= 0)
		return 0;
	if (!dir->lparent || dir->lower_fd < 0)
		return -EIO; /* only the root lacks a parent, and it has an upper */
	int r = copyup_dir(c, dir->lparent);
	if (r < 0)
		return r;
	pthread_mutex_lock(&dir->lock);
	if (node_upper(dir) >= 0)
		goto out;
	if (!__atomic_load_n(&dir->hashed, __ATOMIC_RELAXED)) {
		r = -ENOENT;
		goto out;
	}
	int fd = make_upper_dir(c, dir->lower_fd, node_upper(dir->lparent), dir->lname);
	if (fd < 0) {
		r = fd;
		goto out;
	}
	node_set_upper(dir, fd);
out:
	pthread_mutex_unlock(&dir->lock);
	return r;
}

int copyup_node(struct copyup_ctx *c, struct node *n, bool with_data)
{
	if (node_has_upper(n))
		return 0;
	if (S_ISDIR(n->type))
		return copyup_dir(c, n);
	struct node *p = n->lparent;
	if (!p)
		return -EIO;
	int r = copyup_dir(c, p);
	if (r < 0)
		return r;
	pthread_mutex_lock(&n->lock);
	if (node_has_upper(n))
		goto out;
	if (!__atomic_load_n(&n->hashed, __ATOMIC_RELAXED)) {
		r = -ENOENT; /* deleted: its path must not come back */
		goto out;
	}
	struct stat st;
	if (fstatat(p->lower_fd, n->lname, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		r = -errno;
		goto out;
	}
	if ((st.st_mode & S_IFMT) != n->type) {
		r = -EIO; /* swapped on the host since the lookup */
		goto out;
	}
	copyup_note_base(c, p, n->lname, &st);
	int pu = node_upper(p);
	r = copy_nondir(c, p->lower_fd, n->lname, &st, pu, with_data);
	if (r < 0)
		goto out;
	/* reached from now on as (parent's upper, name): no fd kept */
	node_set_upper(n, -1);
out:
	pthread_mutex_unlock(&n->lock);
	return r;
}

/* Unlink de if it is a whiteout, keeping the first failure in *arg (an
 * int).  Returns 0. */
static int clear_whiteout_cb(int dirfd, const struct dirent *de, void *arg)
{
	int *r = arg;
	if (de->d_type != DT_CHR && de->d_type != DT_UNKNOWN)
		return 0;
	struct stat st;
	if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && delta_is_whiteout(&st) &&
	    unlinkat(dirfd, de->d_name, 0) < 0 && *r == 0)
		*r = -errno;
	return 0; /* go on: clear as many as possible */
}

int copyup_clear_whiteouts(int dirfd)
{
	int r = 0;
	int e = for_each_dir_entry(dirfd, clear_whiteout_cb, &r);
	return e < 0 ? e : r;
}

void copyup_discard(struct copyup_ctx *c, const char *name)
{
	struct stat st;
	if (fstatat(c->work_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		unlinkat(c->work_fd, name, 0);
		return;
	}
	int fd = openat(c->work_fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		copyup_clear_whiteouts(fd);
		close(fd);
	}
	unlinkat(c->work_fd, name, AT_REMOVEDIR);
}

int copyup_whiteout(struct copyup_ctx *c, struct node *dir, const char *name, bool has_upper)
{
	int r = copyup_dir(c, dir);
	if (r < 0)
		return r;
	int pu = node_upper(dir);
	if (!has_upper) {
		if (mknodat(pu, name, S_IFCHR | 0000, makedev(0, 0)) < 0)
			return -errno;
		return 0;
	}
	/* move the upper entry out of the way leaving a whiteout in one step */
	char tmp[64];
	copyup_tmpname(c, tmp, sizeof(tmp));
	if (renameat2(pu, name, c->work_fd, tmp, RENAME_WHITEOUT) < 0) {
		if (errno != EINVAL)
			return -errno;
		/* filesystem without RENAME_WHITEOUT: two steps */
		if (renameat(pu, name, c->work_fd, tmp) < 0)
			return -errno;
		if (mknodat(pu, name, S_IFCHR | 0000, makedev(0, 0)) < 0) {
			r = -errno;
			renameat(c->work_fd, tmp, pu, name);
			return r;
		}
	}
	copyup_discard(c, tmp);
	return 0;
}

/* Put a whiteout for de in the directory *arg (an int fd).  Returns 0 or
 * -errno. */
static int hide_cb(int dirfd, const struct dirent *de, void *arg)
{
	(void)dirfd;
	const int *newfd = arg;
	if (mknodat(*newfd, de->d_name, S_IFCHR | 0000, makedev(0, 0)) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int copyup_hide_lower(int newfd, int lowerfd)
{
	return for_each_dir_entry(lowerfd, hide_cb, &newfd);
}
