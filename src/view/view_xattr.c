/* view_xattr.c - extended attributes in the FUSE view (see view_int.h).
 *
 * The host's attributes are passed through: reading needs `read` (a
 * `view` entry gives EACCES for a value, like its content, and lists no
 * names: `view` promises the entry's name and metadata, and the names
 * of attributes are data someone wrote, which may say what the content
 * is.  Of a `view` entry's security.* and system.* attributes (labels
 * and ACLs, which `ls -l` asks for on every entry) none is shown, as
 * ENODATA, whether the host has one or not: refusing them made `ls -l`
 * print an error for every entry.  Changing needs `write`
 * and lands on the upper copy, made first.  The object is reached through
 * an O_PATH fd of it as /proc/self/fd/N, which names exactly that inode
 * (a magic link is not resolved again), or, for a project file without
 * an fd, as /proc/self/fd/PARENT/NAME with the l*xattr calls, which never
 * follow the last component.  Symlinks carry no user.* attributes on
 * Linux: they show none and refuse new ones, so no symlink is ever
 * resolved here.  ENOSYS is never replied: the kernel would stop asking
 * for the rest of the mount. */
#include "view/view_int.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

/* Where n's attributes live: fills path and says whether the l*xattr
 * calls must be used; *tmpfd is an fd the path names, to close after, or
 * -1.  Returns 0, or -errno (a copy-up needed first, for_write, failed). */
static int xattr_path(struct view *v, struct node *n, bool for_write, char *path, size_t size,
		      bool *nofollow, int *tmpfd)
{
	*nofollow = false;
	*tmpfd = -1;
	if (for_write) {
		copyup_thread_init();
		int r = copyup_node(&v->cu, n, true);
		if (r < 0)
			return r;
	}
	/* the root shows as the project root, not as the delta's upper/ */
	if (node_has_upper(n) && n != &v->table.root) {
		int ufd = vw_upper_open(n, O_PATH);
		if (ufd < 0)
			return ufd;
		proc_path(path, size, ufd);
		*tmpfd = ufd;
	} else if (n->lower_fd >= 0) {
		proc_path(path, size, n->lower_fd);
	} else if (n->lparent && n->lparent->lower_fd >= 0) {
		snprintf(path, size, "/proc/self/fd/%d/%s", n->lparent->lower_fd, n->lname);
		*nofollow = true;
	} else {
		return -EIO;
	}
	return 0;
}

static int xattr_err(int e)
{
	return e == ENOSYS ? EOPNOTSUPP : e;
}

/* Reply to a get/listxattr asking size bytes (0: the length only) with
 * what the call returned: len bytes in buf, or -1 and errno. */
static void reply_xattr(fuse_req_t req, const char *buf, size_t size, ssize_t len)
{
	if (len < 0)
		fuse_reply_err(req, xattr_err(errno));
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)len);
	else
		fuse_reply_buf(req, buf, (size_t)len);
}

/* Returns 0 if n's attributes may be read, else the errno to reply. */
static int may_read(struct node *n)
{
	if (!node_visible(n))
		return ENOENT;
	return n->level < LEVEL_READ ? EACCES : 0;
}

/* Reply to a getxattr of name, or a listxattr when name is NULL, on n,
 * which may be read, with what the call on its current object returns. */
static void read_xattr(fuse_req_t req, struct view *v, struct node *n, const char *name,
		       size_t size)
{
	char path[PATH_MAX];
	bool nofollow;
	autoclose int tmpfd = -1;
	int r = xattr_path(v, n, false, path, sizeof(path), &nofollow, &tmpfd);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	/* size is the caller's (up to 64 KiB): out of memory fails this
	 * request, never the process */
	autofree char *buf = size ? malloc(size) : NULL;
	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ssize_t len;
	if (name)
		len = nofollow ? lgetxattr(path, name, buf, size) : getxattr(path, name, buf, size);
	else
		len = nofollow ? llistxattr(path, buf, size) : listxattr(path, buf, size);
	reply_xattr(req, buf, size, len);
}

void vw_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct view *v = req_view(req);
	struct node *n = get_node(v, ino);
	int e = may_read(n);
	if (e == EACCES && (strncmp(name, "security.", 9) == 0 || strncmp(name, "system.", 7) == 0))
		e = ENODATA; /* see above: the same answer whatever the host has */
	if (e) {
		fuse_reply_err(req, e);
		return;
	}
	if (S_ISLNK(n->type)) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	read_xattr(req, v, n, name, size);
}

void vw_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct view *v = req_view(req);
	struct node *n = get_node(v, ino);
	int e = may_read(n);
	if (e == EACCES) {
		reply_xattr(req, NULL, size, 0); /* an empty list: see above */
		return;
	}
	if (e) {
		fuse_reply_err(req, e);
		return;
	}
	if (S_ISLNK(n->type)) {
		reply_xattr(req, NULL, size, 0); /* no user.* on a symlink */
		return;
	}
	read_xattr(req, v, n, NULL, size);
}

/* Returns 0 if n's attributes may be changed, else the errno to reply. */
static int may_change(struct view *v, struct node *n)
{
	if (n->level != LEVEL_WRITE)
		return node_visible(n) ? EACCES : ENOENT;
	if (S_ISLNK(n->type))
		return EPERM; /* as Linux says for user.* on a symlink */
	/* the root's upper object is the delta's own directory */
	if (n == &v->table.root)
		return EOPNOTSUPP;
	return 0;
}

/* Where the attributes of n, which are to change, live (as xattr_path,
 * with n copied up first; path has PATH_MAX bytes).  Returns 0, or the
 * errno to reply. */
static int change_path(struct view *v, struct node *n, char *path, bool *nofollow, int *tmpfd)
{
	int e = may_change(v, n);
	if (e)
		return e;
	int r = xattr_path(v, n, true, path, PATH_MAX, nofollow, tmpfd);
	return r < 0 ? -r : 0;
}

/* A change of the attributes of an upper object, for the disk budget. */
struct xattr_op {
	pthread_mutex_t *lock; /* the object's disk lock, held; NULL: no limit */
	uint64_t reserved, before;
};

/* Before changing the attributes of the upper object open as fd (path
 * naming it): reserve grow bytes and measure them, under the lock the
 * file data accounting takes for it.  Returns 0, or -ENOSPC past the
 * limit or -errno (nothing to end then). */
static int xattr_begin(struct view *v, int fd, const char *path, uint64_t grow,
		       struct xattr_op *op)
{
	op->lock = NULL;
	if (!delta_disk_limit(v->delta))
		return 0;
	struct stat st;
	if (fd < 0)
		return -EIO; /* change_path() gave an upper object */
	if (fstat(fd, &st) < 0)
		return -errno;
	int r = vw_disk_charge(v, grow);
	if (r < 0)
		return r;
	op->lock = &v->disk_lock[st.st_ino % DISK_STRIPES];
	pthread_mutex_lock(op->lock);
	op->reserved = grow;
	op->before = copyup_xattr_bytes(path);
	return 0;
}

/* Settle with what the attributes cost now, whatever the outcome. */
static void xattr_end(struct view *v, const char *path, struct xattr_op *op)
{
	if (!op->lock)
		return;
	uint64_t after = copyup_xattr_bytes(path);
	pthread_mutex_unlock(op->lock);
	delta_disk_settle(v->delta, op->reserved, (int64_t)after - (int64_t)op->before);
}

void vw_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		    size_t size, int flags)
{
	struct view *v = req_view(req);
	char path[PATH_MAX];
	bool nofollow;
	autoclose int tmpfd = -1;
	int e = change_path(v, get_node(v, ino), path, &nofollow, &tmpfd);
	if (e) {
		fuse_reply_err(req, e);
		return;
	}
	/* the most it may add is reserved before it lands, then settled
	 * with what the attributes cost after against before, measured
	 * under the inode's lock so racing changes are each counted once */
	struct xattr_op op;
	int r = xattr_begin(v, tmpfd, path, DELTA_ENTRY_COST + strlen(name) + size, &op);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	r = nofollow ? lsetxattr(path, name, value, size, flags)
		     : setxattr(path, name, value, size, flags);
	int err = r < 0 ? xattr_err(errno) : 0;
	xattr_end(v, path, &op);
	fuse_reply_err(req, err);
}

void vw_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct view *v = req_view(req);
	char path[PATH_MAX];
	bool nofollow;
	autoclose int tmpfd = -1;
	int e = change_path(v, get_node(v, ino), path, &nofollow, &tmpfd);
	if (e) {
		fuse_reply_err(req, e);
		return;
	}
	struct xattr_op op;
	int r = xattr_begin(v, tmpfd, path, 0, &op);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	r = nofollow ? lremovexattr(path, name) : removexattr(path, name);
	int err = r < 0 ? xattr_err(errno) : 0;
	xattr_end(v, path, &op);
	fuse_reply_err(req, err);
}
