/* rootfs.c - build the sandbox's minimal, read-only root (see rootfs.h).
 *
 * Runs in the sandbox child only.  No malloc, no stdio: see rootfs.h. */
#include "sandbox/rootfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The new root is assembled on a tmpfs mounted over /tmp in the child's
 * own mount namespace: /tmp exists everywhere, and mounting over it
 * hides nothing from the host. */
#define NEWROOT "/tmp"

const char *const rootfs_system_dirs[] = {
	"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc", "opt", NULL,
};

const char *const rootfs_own_dirs[] = { "proc", "dev", "tmp", "workspace", NULL };

/* Host files that hold secrets only root can read: a sandbox started by
 * root keeps uid 0 (without capabilities), so cover them with an empty
 * /dev/null to be sure. */
static const char *const masked[] = { "etc/shadow", "etc/shadow-", "etc/gshadow", "etc/gshadow-",
				      NULL };

/* Device nodes bound from the host /dev. */
static const char *const dev_nodes[] = { "null", "zero", "full", "random", "urandom", "tty", NULL };

static const struct {
	const char *name, *target;
} dev_links[] = {
	{ "fd", "/proc/self/fd" },
	{ "stdin", "/proc/self/fd/0" },
	{ "stdout", "/proc/self/fd/1" },
	{ "stderr", "/proc/self/fd/2" },
	{ "ptmx", "pts/ptmx" },
};

/* /proc entries that could change host state if they were writable;
 * covered by read-only binds of themselves, as bubblewrap does (and
 * runc, with fs). */
static const char *const proc_ro[] = { "sys", "sysrq-trigger", "irq", "bus", "fs", NULL };

/* /proc entries that show the host, not the sandbox, hidden as runc and
 * crun hide them: the keys of the user's keyrings (shared with the
 * host's sessions: names, serials, payload sizes), kernel memory, timers
 * and the scheduler's state of every host task, hardware.  A file is
 * covered with /dev/null (reads give nothing), a directory with an
 * empty read-only tmpfs. */
static const char *const proc_masked[] = { "acpi", "asound", "kcore", "keys", "latency_stats",
					   "sched_debug", "scsi", "timer_list", "timer_stats",
					   NULL };

#define fail(err, ...) af_err_set(err, errno, __VA_ARGS__)

/* Join NEWROOT and a path; returns 0 or -ENAMETOOLONG. */
static int in_root(char *buf, size_t len, const char *path, struct af_err *err)
{
	int n = snprintf(buf, len, NEWROOT "/%s", path[0] == '/' ? path + 1 : path);
	if (n < 0 || (size_t)n >= len)
		return af_err_set(err, ENAMETOOLONG, "cannot build path for '%s'", path);
	return 0;
}

/* How a path under construction is called inside the sandbox. */
static const char *shown(const char *path)
{
	size_t n = strlen(NEWROOT);
	if (strncmp(path, NEWROOT, n) == 0 && path[n] == '/')
		return path + n;
	return path;
}

static int do_mount(const char *src, const char *dst, const char *type, unsigned long flags,
		    const char *data, struct af_err *err)
{
	if (mount(src, dst, type, flags, data) == 0)
		return 0;
	if (type)
		return fail(err, "cannot mount %s on '%s'", type, shown(dst));
	if (src)
		return fail(err, "cannot bind '%s' on '%s'", src, shown(dst));
	return fail(err, "cannot change the propagation of '%s'", dst);
}

/* Make the mount at path and every mount below it read-only, nosuid and
 * nodev.  mount_setattr(AT_RECURSIVE) does it in one call (Linux 5.12);
 * older kernels get the top mount only, remounted with the flags the
 * kernel locked (a remount that drops a locked flag fails with EPERM).
 * Returns 0 or -errno. */
static int make_readonly(const char *path, struct af_err *err)
{
	struct mount_attr attr = {
		.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
	};
	if (syscall(SYS_mount_setattr, AT_FDCWD, path, AT_RECURSIVE, &attr, sizeof(attr)) == 0)
		return 0;
	if (errno != ENOSYS)
		return fail(err, "cannot make '%s' read-only", shown(path));

	struct statvfs sv;
	if (statvfs(path, &sv) < 0)
		return fail(err, "cannot stat '%s'", path);
	unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV;
	flags |= sv.f_flag & (ST_NOEXEC | ST_NOATIME | ST_NODIRATIME | ST_RELATIME);
	if (mount(NULL, path, NULL, flags, NULL) < 0)
		return fail(err, "cannot make '%s' read-only", shown(path));
	return 0;
}

/* Set attributes (MOUNT_ATTR_*) on the mount fd is the root of and every
 * mount below it; name is how the user calls it.  Falls back, as
 * make_readonly() does, to remounting the top mount through
 * /proc/self/fd.  Returns 0 or -errno. */
static int set_attr_fd(int fd, uint64_t attrs, const char *name, struct af_err *err)
{
	struct mount_attr attr = { .attr_set = attrs };
	if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr,
		    sizeof(attr)) == 0)
		return 0;
	if (errno != ENOSYS)
		return fail(err, "cannot set the mount flags of '%s'", name);

	char path[64];
	struct statvfs sv;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (fstatvfs(fd, &sv) < 0)
		return fail(err, "cannot stat '%s'", name);
	unsigned long flags = MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV;
	if (attrs & MOUNT_ATTR_RDONLY)
		flags |= MS_RDONLY;
	flags |= sv.f_flag & (ST_RDONLY | ST_NOEXEC | ST_NOATIME | ST_NODIRATIME | ST_RELATIME);
	if (mount(NULL, path, NULL, flags, NULL) < 0)
		return fail(err, "cannot set the mount flags of '%s'", name);
	return 0;
}

/* Bind src on dst (recursively) and make it read-only.  Returns 0 or -errno. */
static int bind_ro(const char *src, const char *dst, struct af_err *err)
{
	int r = do_mount(src, dst, NULL, MS_BIND | MS_REC, NULL, err);
	return r < 0 ? r : make_readonly(dst, err);
}

static int make_dir(const char *path, mode_t mode, struct af_err *err)
{
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return fail(err, "cannot create directory '%s'", shown(path));
	return 0;
}

static int make_file(const char *path, struct af_err *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return fail(err, "cannot create '%s'", shown(path));
	close(fd);
	return 0;
}

static int make_link(const char *target, const char *path, struct af_err *err)
{
	if (symlink(target, path) < 0)
		return fail(err, "cannot create symbolic link '%s'", shown(path));
	return 0;
}

/* Show the host's system directories: a directory is bound read-only, a
 * symlink (merged /usr: /bin -> usr/bin) is copied as a symlink, and a
 * missing one is skipped.  Returns 0 or -errno. */
static int add_system_dirs(struct af_err *err)
{
	char src[PATH_MAX], dst[PATH_MAX], target[PATH_MAX];
	int r;

	for (const char *const *p = rootfs_system_dirs; *p; p++) {
		struct stat st;
		snprintf(src, sizeof(src), "/%s", *p);
		if ((r = in_root(dst, sizeof(dst), *p, err)) < 0)
			return r;
		if (lstat(src, &st) < 0) {
			if (errno == ENOENT)
				continue;
			return fail(err, "cannot stat '%s'", src);
		}
		if (S_ISLNK(st.st_mode)) {
			ssize_t n = readlink(src, target, sizeof(target) - 1);
			if (n < 0)
				return fail(err, "cannot read symbolic link '%s'", src);
			target[n] = '\0';
			if ((r = make_link(target, dst, err)) < 0)
				return r;
		} else if (S_ISDIR(st.st_mode)) {
			if ((r = make_dir(dst, 0755, err)) < 0 || (r = bind_ro(src, dst, err)) < 0)
				return r;
		}
	}
	for (const char *const *p = masked; *p; p++) {
		struct stat st;
		if ((r = in_root(dst, sizeof(dst), *p, err)) < 0)
			return r;
		if (lstat(dst, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		if ((r = do_mount("/dev/null", dst, NULL, MS_BIND, NULL, err)) < 0)
			return r;
	}
	return 0;
}

/* Bind the entry name of directory dirfd (the root_dir) read-only at
 * the same name in the new root; a symlink is copied as a symlink, so an
 * absolute target resolves inside the sandbox.  Returns 0 or -errno. */
static int add_root_entry(int dirfd, const char *root_dir, const char *name,
			  struct af_err *err)
{
	char src[PATH_MAX], dst[PATH_MAX], target[PATH_MAX];
	struct stat st;
	int r;

	snprintf(src, sizeof(src), "%s/%s", root_dir, name);
	if ((r = in_root(dst, sizeof(dst), name, err)) < 0)
		return r;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return fail(err, "cannot stat '%s'", src);
	if (S_ISLNK(st.st_mode)) {
		ssize_t n = readlinkat(dirfd, name, target, sizeof(target) - 1);
		if (n < 0)
			return fail(err, "cannot read symbolic link '%s'", src);
		target[n] = '\0';
		return make_link(target, dst, err);
	}
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
		return 0; /* a device, socket or pipe at the top: nothing to show */
	/* bind what was just looked at, not whatever the name means by now */
	int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return fail(err, "cannot open '%s'", src);
	char fdpath[64];
	snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", fd);
	if (S_ISDIR(st.st_mode))
		r = make_dir(dst, 0755, err);
	else
		r = make_file(dst, err);
	if (r == 0 && mount(fdpath, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
		r = fail(err, "cannot bind '%s' on '%s'", src, shown(dst));
	close(fd);
	return r < 0 ? r : make_readonly(dst, err);
}

/* Show the top-level entries of root_dir instead of the host's system
 * directories; the ones the sandbox makes itself are left out.  Reads
 * the directory with getdents64: no malloc here.  Returns 0 or -errno. */
static int add_root_dir(int fd, const char *root_dir, struct af_err *err)
{
	char buf[4096];
	int r = 0;

	if (lseek(fd, 0, SEEK_SET) < 0)
		return fail(err, "cannot read the root filesystem '%s'", root_dir);
	for (;;) {
		long n = syscall(SYS_getdents64, fd, buf, sizeof(buf));
		if (n < 0) {
			r = fail(err, "cannot read the root filesystem '%s'", root_dir);
			break;
		}
		if (n == 0)
			break;
		for (long off = 0; off < n && r == 0;) {
			struct dirent64 *de = (struct dirent64 *)(buf + off);
			off += de->d_reclen;
			const char *name = de->d_name;
			bool own = strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
			for (const char *const *p = rootfs_own_dirs; *p && !own; p++)
				own = strcmp(name, *p) == 0;
			if (!own)
				r = add_root_entry(fd, root_dir, name, err);
		}
		if (r < 0)
			break;
	}
	return r;
}

/* A mount point that cannot be created: in a read-only directory, the
 * user asked for the impossible (a usage error).  Returns -errno. */
static int mount_point_error(const struct mount_spec *m, struct af_err *err)
{
	if (errno != EROFS)
		return fail(err, "cannot create mount point '%s'", m->dst);
	int r = af_err_usage(err, EROFS, "cannot create mount point '%s'", m->dst);
	af_err_hint(err, "inside a directory shown read-only, a mount point must exist "
			 "already; mount in a new directory, e.g. '/mnt%s'", m->dst);
	return r;
}

/* Open (creating what is missing) the mount point of m in the new root,
 * one component at a time and never through a symbolic link, so a
 * destination cannot lead out of the new root (a root_dir may hold any
 * link).  Returns 0 with *out an O_PATH fd, or -errno. */
static int open_mount_point(const struct mount_spec *m, int *out, struct af_err *err)
{
	char comp[NAME_MAX + 1];
	int cur = open(NEWROOT, O_PATH | O_DIRECTORY | O_CLOEXEC), r = 0;

	if (cur < 0)
		return fail(err, "cannot open the new root");
	for (const char *p = m->dst; *p;) {
		p++; /* the '/' */
		const char *end = strchrnul(p, '/');
		size_t len = (size_t)(end - p);
		bool last = *end == '\0';
		if (len > NAME_MAX) {
			r = af_err_set(err, ENAMETOOLONG, "cannot create mount point '%s'", m->dst);
			break;
		}
		memcpy(comp, p, len);
		comp[len] = '\0';
		p = end;
		int next;
		if (!last || m->is_dir) {
			if (mkdirat(cur, comp, 0755) < 0 && errno != EEXIST) {
				r = mount_point_error(m, err);
				break;
			}
			next = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		} else {
			next = openat(cur, comp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
				      0644);
			if (next >= 0)
				close(next);
			else if (errno != EEXIST) {
				r = mount_point_error(m, err);
				break;
			}
			next = openat(cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		}
		if (next < 0) {
			struct stat st;
			int e = errno;
			if (fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
				r = af_err_usage(err, ELOOP, "cannot use mount point '%s': '%.*s' is "
						   "a symbolic link in the sandbox", m->dst,
						   (int)(end - m->dst), m->dst);
				af_err_hint(err, "name the directory it points to instead");
			} else {
				errno = e;
				r = fail(err, "cannot use mount point '%s'", m->dst);
			}
			break;
		}
		close(cur);
		cur = next;
		if (last && !m->is_dir) {
			struct stat st;
			char target[PATH_MAX];
			ssize_t n = -1;
			if (fstat(cur, &st) == 0 && S_ISLNK(st.st_mode))
				n = readlinkat(cur, "", target, sizeof(target) - 1);
			if (n >= 0) {
				/* /etc/localtime and the like: the host's /etc
				 * shows the link, which a mount would not follow */
				target[n] = '\0';
				r = af_err_usage(err, ELOOP, "cannot bind a file on '%s': it is a "
						   "symbolic link in the sandbox, to '%s'", m->dst,
						   target);
				af_err_hint(err, "give the path it points to as the destination, "
						 "or another path");
				break;
			}
			if (fstat(cur, &st) < 0 || !S_ISREG(st.st_mode)) {
				r = af_err_usage(err, EISDIR, "cannot bind a file on '%s': it is %s in "
						   "the sandbox", m->dst, S_ISDIR(st.st_mode) ?
						   "a directory" : "not a regular file");
				break;
			}
		}
	}
	if (r < 0) {
		close(cur);
		return r;
	}
	*out = cur;
	return 0;
}

/* Open SRC of a bind as the object the caller resolved (same device and
 * inode), never through a symbolic link.  Returns an O_PATH fd or -errno. */
static int open_bind_source(const struct mount_spec *m, struct af_err *err)
{
	struct open_how how = { .flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
				.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
	struct stat st;
	int fd = (int)syscall(SYS_openat2, AT_FDCWD, m->src, &how, sizeof(how));
	if (fd < 0 && errno == ENOSYS)
		fd = open(m->src, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return fail(err, "cannot open bind source '%s'", m->src);
	if (fstat(fd, &st) < 0 || st.st_dev != m->dev || st.st_ino != m->ino) {
		close(fd);
		return af_err_set(err, ESTALE, "bind source '%s' changed after it was checked",
				  m->src);
	}
	return fd;
}

/* Apply one extra mount; src is the O_PATH fd of a bind's source.
 * Returns 0 or -errno. */
static int add_mount(const struct mount_spec *m, int src, struct af_err *err)
{
	char tpath[64], spath[64];
	int target = -1, top = -1, r;

	if ((r = open_mount_point(m, &target, err)) < 0)
		return r;
	snprintf(tpath, sizeof(tpath), "/proc/self/fd/%d", target);
	if (m->kind == MOUNT_TMPFS) {
		if (mount("tmpfs", tpath, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
			r = fail(err, "cannot mount tmpfs on '%s'", m->dst);
	} else {
		snprintf(spath, sizeof(spath), "/proc/self/fd/%d", src);
		if (mount(spath, tpath, NULL, MS_BIND | MS_REC, NULL) < 0)
			r = fail(err, "cannot bind '%s' on '%s'", m->src, m->dst);
	}
	if (r == 0 && m->kind != MOUNT_TMPFS) {
		/* the fd still names the directory under the new mount:
		 * reopen the path to get the mount's root */
		char path[PATH_MAX];
		if ((r = in_root(path, sizeof(path), m->dst, err)) == 0) {
			top = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
			if (top < 0)
				r = fail(err, "cannot open '%s'", m->dst);
			else
				r = set_attr_fd(top, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
						(m->kind == MOUNT_RO_BIND ? MOUNT_ATTR_RDONLY : 0),
						m->dst, err);
		}
	}
	if (top >= 0)
		close(top);
	close(target);
	return r;
}

/* A minimal /dev: a few harmless nodes bound from the host, the usual
 * symlinks, a private devpts instance and a /dev/shm tmpfs.
 * Returns 0 or -errno. */
static int add_dev(struct af_err *err)
{
	char src[PATH_MAX], dst[PATH_MAX];
	int r;

	if ((r = make_dir(NEWROOT "/dev", 0755, err)) < 0 ||
	    (r = do_mount("tmpfs", NEWROOT "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC,
			  "mode=0755,size=64k", err)) < 0)
		return r;
	for (const char *const *p = dev_nodes; *p; p++) {
		snprintf(src, sizeof(src), "/dev/%s", *p);
		snprintf(dst, sizeof(dst), NEWROOT "/dev/%s", *p);
		if ((r = make_file(dst, err)) < 0 ||
		    (r = do_mount(src, dst, NULL, MS_BIND, NULL, err)) < 0)
			return r;
	}
	for (size_t i = 0; i < ARRAY_SIZE(dev_links); i++) {
		snprintf(dst, sizeof(dst), NEWROOT "/dev/%s", dev_links[i].name);
		if ((r = make_link(dev_links[i].target, dst, err)) < 0)
			return r;
	}
	if ((r = make_dir(NEWROOT "/dev/pts", 0755, err)) < 0 ||
	    (r = do_mount("devpts", NEWROOT "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
			  "newinstance,ptmxmode=0666,mode=620", err)) < 0)
		return r;
	if ((r = make_dir(NEWROOT "/dev/shm", 01777, err)) < 0 ||
	    (r = do_mount("tmpfs", NEWROOT "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV,
			  "mode=1777", err)) < 0)
		return r;
	return 0;
}

int rootfs_mount_proc(const char *dir, struct af_err *err)
{
	char path[PATH_MAX];
	int r;

	if ((r = do_mount("proc", dir, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err)) < 0) {
		if (r == -EPERM)
			af_err_hint(err, "the kernel refuses a new /proc while parts of the host's "
					 "/proc are covered by other mounts (as in many containers)");
		return r;
	}
	for (const char *const *p = proc_ro; *p; p++) {
		snprintf(path, sizeof(path), "%s/%s", dir, *p);
		if (access(path, F_OK) < 0)
			continue;
		if ((r = bind_ro(path, path, err)) < 0)
			return r;
	}
	for (const char *const *p = proc_masked; *p; p++) {
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", dir, *p);
		if (lstat(path, &st) < 0)
			continue; /* not in this kernel */
		if (S_ISDIR(st.st_mode))
			r = do_mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
				     "mode=0555,size=4k", err);
		else
			r = do_mount("/dev/null", path, NULL, MS_BIND, NULL, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Make the workspace's directory in the new root, its parents too, one
 * component at a time and never through a symbolic link.  Returns 0 or
 * -errno. */
static int make_workspace_dir(const char *ws, struct af_err *err)
{
	char comp[NAME_MAX + 1];
	int cur = open(NEWROOT, O_PATH | O_DIRECTORY | O_CLOEXEC), r = 0;

	if (cur < 0)
		return fail(err, "cannot open the new root");
	for (const char *p = ws; *p;) {
		p++; /* the '/' */
		size_t len = strcspn(p, "/");
		if (len > NAME_MAX) {
			r = af_err_set(err, ENAMETOOLONG, "cannot create the workspace '%s'", ws);
			break;
		}
		memcpy(comp, p, len);
		comp[len] = '\0';
		p += len;
		if (mkdirat(cur, comp, 0755) < 0 && errno != EEXIST) {
			r = fail(err, "cannot create the workspace '%s'", ws);
			break;
		}
		int next = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0) {
			r = fail(err, "cannot create the workspace '%s'", ws);
			break;
		}
		close(cur);
		cur = next;
	}
	close(cur);
	return r;
}

/* Open /dev/fuse inside the user namespace and mount it at the
 * workspace.  Returns 0 with *fuse_fd set, or -errno. */
static int add_workspace(const struct rootfs_config *rc, int *fuse_fd, struct af_err *err)
{
	char opts[512], target[PATH_MAX];
	const char *ws = rc->workspace ? rc->workspace : "/workspace";
	int r;

	if ((size_t)snprintf(target, sizeof(target), NEWROOT "%s", ws) >= sizeof(target))
		return af_err_set(err, ENAMETOOLONG, "cannot create the workspace '%s'", ws);
	if ((r = make_workspace_dir(ws, err)) < 0)
		return r;
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		r = fail(err, "cannot open '/dev/fuse'");
		if (errno == ENOENT || errno == ENODEV || errno == ENXIO)
			af_err_hint(err, "the FUSE kernel module is not loaded: run 'modprobe fuse'");
		else if (errno == EACCES || errno == EPERM)
			af_err_hint(err, "/dev/fuse must be readable and writable by everyone "
					 "(mode 0666)");
		return r;
	}
	int n = snprintf(opts, sizeof(opts), "fd=%d,rootmode=40000,user_id=%u,group_id=%u%s%s", fd,
			 (unsigned)rc->uid, (unsigned)rc->gid, rc->fuse_options ? "," : "",
			 rc->fuse_options ? rc->fuse_options : "");
	if (n < 0 || (size_t)n >= sizeof(opts)) {
		close(fd);
		return af_err_set(err, EINVAL, "FUSE mount options too long");
	}
	if (mount("agentfense", target, "fuse.agentfense", MS_NOSUID | MS_NODEV, opts) < 0) {
		r = fail(err, "cannot mount the view on '%s'", ws);
		close(fd);
		return r;
	}
	*fuse_fd = fd;
	return 0;
}

int rootfs_loopback_up(struct af_err *err)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return fail(err, "cannot create a socket to configure 'lo'");
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		goto fail;
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		goto fail;
	close(s);
	return 0;
fail:;
	int r = fail(err, "cannot bring up the loopback interface 'lo'");
	close(s);
	return r;
}

/* Close the fds rootfs_build() opened first. */
static void close_sources(const struct rootfs_config *rc, int root_fd)
{
	if (root_fd >= 0)
		close(root_fd);
	for (size_t i = 0; i < rc->n_mounts; i++)
		if (rc->mount_fds[i] >= 0) {
			close(rc->mount_fds[i]);
			rc->mount_fds[i] = -1;
		}
}

int rootfs_build(const struct rootfs_config *rc, int *fuse_fd, struct af_err *err)
{
	int fd = -1, root_fd = -1, r;

	*fuse_fd = -1;
	/* Nothing we mount may propagate back to the host; host unmounts
	 * still propagate in so we never pin a host filesystem. */
	if ((r = do_mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL, err)) < 0)
		return r;
	/* Everything taken from the host, first: the new root is built
	 * over the host's /tmp, where a source may well live. */
	for (size_t i = 0; i < rc->n_mounts; i++)
		rc->mount_fds[i] = -1;
	if (rc->root_dir) {
		root_fd = open(rc->root_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (root_fd < 0)
			return fail(err, "cannot open the root filesystem '%s'", rc->root_dir);
	}
	for (size_t i = 0; i < rc->n_mounts; i++)
		if (rc->mounts[i].kind != MOUNT_TMPFS &&
		    (r = rc->mount_fds[i] = open_bind_source(&rc->mounts[i], err)) < 0) {
			rc->mount_fds[i] = -1;
			goto out;
		}
	if ((r = do_mount("tmpfs", NEWROOT, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m",
			  err)) < 0)
		goto out;
	if ((r = rc->root_dir ? add_root_dir(root_fd, rc->root_dir, err) : add_system_dirs(err)) <
		    0 ||
	    (r = add_dev(err)) < 0)
		goto out;
	if ((r = make_dir(NEWROOT "/tmp", 01777, err)) < 0 ||
	    (r = do_mount("tmpfs", NEWROOT "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777",
			  err)) < 0)
		goto out;
	/* /var/tmp is where some tools keep larger temporary files; a
	 * root_dir brings its own /var */
	struct stat st;
	if (lstat(NEWROOT "/var", &st) < 0 &&
	    ((r = make_dir(NEWROOT "/var", 0755, err)) < 0 ||
	     (r = make_link("/tmp", NEWROOT "/var/tmp", err)) < 0))
		goto out;
	if ((r = make_dir(NEWROOT "/proc", 0555, err)) < 0 ||
	    (r = rootfs_mount_proc(NEWROOT "/proc", err)) < 0)
		goto out;
	for (size_t i = 0; i < rc->n_mounts; i++)
		if ((r = add_mount(&rc->mounts[i], rc->mount_fds[i], err)) < 0)
			goto out;
	close_sources(rc, steal_fd(&root_fd));
	if ((r = add_workspace(rc, &fd, err)) < 0)
		goto out;

	/* Switch roots: stack the old root on the new one, then detach it. */
	if (chdir(NEWROOT) < 0) {
		r = fail(err, "cannot change to '%s'", NEWROOT);
		goto out;
	}
	if (syscall(SYS_pivot_root, ".", ".") < 0) {
		r = fail(err, "cannot pivot to the new root");
		goto out;
	}
	if (umount2(".", MNT_DETACH) < 0) {
		r = fail(err, "cannot detach the old root");
		goto out;
	}
	if (chdir("/") < 0) {
		r = fail(err, "cannot change to '/'");
		goto out;
	}
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) <
	    0) {
		r = fail(err, "cannot make the root read-only");
		goto out;
	}
	*fuse_fd = steal_fd(&fd);
	return 0;
out:
	close_sources(rc, root_fd);
	if (fd >= 0)
		close(fd);
	return r;
}
