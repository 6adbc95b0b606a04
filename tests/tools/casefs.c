/* casefs.c - a case-insensitive passthrough file system for the tests.
 *
 *   casefs BACKING MOUNTPOINT [FUSE-OPTION...]
 *
 * Shows directory BACKING at MOUNTPOINT (mounted as the calling user
 * through fusermount3; unmount with `fusermount3 -u MOUNTPOINT`), and
 * resolves every name the way a case-insensitive, case-preserving file
 * system does: an existing entry of the exact spelling first, else any
 * entry whose name folds to the same (ASCII letters, the Latin-1 capitals
 * U+00C0-U+00DE, and KELVIN SIGN and LONG S as Unicode casefolding
 * does), else the name as given (a new entry keeps that spelling).  The
 * kernel caches nothing, so changes in BACKING show at once.  This kernel
 * has neither vfat nor casefold support: this is what the tests put a
 * project on to see the view on such a file system. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <unistd.h>

static int root_fd = -1;

static void fold(char *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		if (p[0] == 0xE2 && p[1] == 0x84 && p[2] == 0xAA) { /* KELVIN SIGN */
			*out++ = 'k';
			p += 3;
		} else if (p[0] == 0xC5 && p[1] == 0xBF) { /* LONG S */
			*out++ = 's';
			p += 2;
		} else if (p[0] == 0xC3 && p[1] >= 0x80 && p[1] <= 0x9E && p[1] != 0x97) {
			*out++ = (char)0xC3; /* Latin-1 capital: its small letter */
			*out++ = (char)(p[1] + 0x20);
			p += 2;
		} else {
			*out++ = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
			p++;
		}
	}
	*out = '\0';
}

/* The real spelling of name in directory dfd into real (NAME_MAX + 1):
 * itself if it exists, else the first entry that folds to the same, else
 * itself. */
static void real_name(int dfd, const char *name, char *real)
{
	struct stat st;
	snprintf(real, NAME_MAX + 1, "%s", name);
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return;
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	char want[NAME_MAX * 3 + 1], have[NAME_MAX * 3 + 1];
	fold(want, name);
	struct dirent *de;
	while ((de = readdir(d))) {
		fold(have, de->d_name);
		if (strcmp(have, want) == 0) {
			snprintf(real, NAME_MAX + 1, "%s", de->d_name);
			break;
		}
	}
	closedir(d);
}

/* Resolve path: an O_PATH fd of the parent directory (the caller closes
 * it) and the real spelling of the last name ("." for the root).
 * Returns the fd or -errno. */
static int resolve(const char *path, char *last)
{
	int cur = openat(root_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cur < 0)
		return -errno;
	strcpy(last, ".");
	while (*path == '/')
		path++;
	while (*path) {
		const char *end = strchrnul(path, '/');
		char comp[NAME_MAX + 1];
		if ((size_t)(end - path) > NAME_MAX) {
			close(cur);
			return -ENAMETOOLONG;
		}
		memcpy(comp, path, (size_t)(end - path));
		comp[end - path] = '\0';
		while (*end == '/')
			end++;
		if (strcmp(last, ".") != 0) {
			int next = openat(cur, last, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			int e = errno;
			close(cur);
			if (next < 0)
				return -e;
			cur = next;
		}
		real_name(cur, comp, last);
		path = end;
	}
	return cur;
}

#define RESOLVE(path)                  \
	char name[NAME_MAX + 1];       \
	int dfd = resolve(path, name); \
	if (dfd < 0)                   \
		return dfd

#define RET(expr)                          \
	do {                               \
		int r_ = (expr) < 0 ? -errno : 0; \
		close(dfd);                \
		return r_;                 \
	} while (0)

static void *cf_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	(void)conn;
	cfg->use_ino = 1;
	cfg->entry_timeout = 0;
	cfg->attr_timeout = 0;
	cfg->negative_timeout = 0;
	return NULL;
}

static int cf_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	if (fi)
		return fstat((int)fi->fh, st) < 0 ? -errno : 0;
	RESOLVE(path);
	RET(fstatat(dfd, name, st, AT_SYMLINK_NOFOLLOW));
}

static int cf_readlink(const char *path, char *buf, size_t size)
{
	RESOLVE(path);
	ssize_t n = readlinkat(dfd, name, buf, size - 1);
	int e = errno;
	close(dfd);
	if (n < 0)
		return -e;
	buf[n] = '\0';
	return 0;
}

static int cf_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	(void)off;
	(void)fi;
	(void)flags;
	RESOLVE(path);
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int e = errno;
	close(dfd);
	if (fd < 0)
		return -e;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -ENOMEM;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		struct stat st = { 0 };
		st.st_ino = de->d_ino;
		st.st_mode = (mode_t)DTTOIF(de->d_type);
		if (filler(buf, de->d_name, &st, 0, 0))
			break;
	}
	closedir(d);
	return 0;
}

static int cf_mknod(const char *path, mode_t mode, dev_t rdev)
{
	RESOLVE(path);
	RET(mknodat(dfd, name, mode, rdev));
}

static int cf_mkdir(const char *path, mode_t mode)
{
	RESOLVE(path);
	RET(mkdirat(dfd, name, mode));
}

static int cf_unlink(const char *path)
{
	RESOLVE(path);
	RET(unlinkat(dfd, name, 0));
}

static int cf_rmdir(const char *path)
{
	RESOLVE(path);
	RET(unlinkat(dfd, name, AT_REMOVEDIR));
}

static int cf_symlink(const char *target, const char *path)
{
	RESOLVE(path);
	RET(symlinkat(target, dfd, name));
}

static int cf_rename(const char *from, const char *to, unsigned int flags)
{
	char name2[NAME_MAX + 1];
	int dfd2 = resolve(to, name2);
	if (dfd2 < 0)
		return dfd2;
	RESOLVE(from);
	int r = renameat2(dfd, name, dfd2, name2, flags) < 0 ? -errno : 0;
	close(dfd2);
	close(dfd);
	return r;
}

static int cf_link(const char *from, const char *to)
{
	char name2[NAME_MAX + 1];
	int dfd2 = resolve(to, name2);
	if (dfd2 < 0)
		return dfd2;
	RESOLVE(from);
	int r = linkat(dfd, name, dfd2, name2, 0) < 0 ? -errno : 0;
	close(dfd2);
	close(dfd);
	return r;
}

static int cf_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	if (fi)
		return fchmod((int)fi->fh, mode) < 0 ? -errno : 0;
	RESOLVE(path);
	RET(fchmodat(dfd, name, mode, 0));
}

static int cf_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	if (fi)
		return fchown((int)fi->fh, uid, gid) < 0 ? -errno : 0;
	RESOLVE(path);
	RET(fchownat(dfd, name, uid, gid, AT_SYMLINK_NOFOLLOW));
}

static int cf_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	if (fi)
		return ftruncate((int)fi->fh, size) < 0 ? -errno : 0;
	RESOLVE(path);
	int fd = openat(dfd, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	int e = errno;
	close(dfd);
	if (fd < 0)
		return -e;
	int r = ftruncate(fd, size) < 0 ? -errno : 0;
	close(fd);
	return r;
}

static int cf_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	if (fi)
		return futimens((int)fi->fh, tv) < 0 ? -errno : 0;
	RESOLVE(path);
	RET(utimensat(dfd, name, tv, AT_SYMLINK_NOFOLLOW));
}

static int cf_open(const char *path, struct fuse_file_info *fi)
{
	RESOLVE(path);
	int fd = openat(dfd, name, fi->flags | O_NOFOLLOW | O_CLOEXEC);
	int e = errno;
	close(dfd);
	if (fd < 0)
		return -e;
	fi->fh = (uint64_t)fd;
	return 0;
}

static int cf_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	RESOLVE(path);
	int fd = openat(dfd, name, fi->flags | O_CREAT | O_NOFOLLOW | O_CLOEXEC, mode);
	int e = errno;
	close(dfd);
	if (fd < 0)
		return -e;
	fi->fh = (uint64_t)fd;
	return 0;
}

static int cf_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)path;
	ssize_t n = pread((int)fi->fh, buf, size, off);
	return n < 0 ? -errno : (int)n;
}

static int cf_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void)path;
	ssize_t n = pwrite((int)fi->fh, buf, size, off);
	return n < 0 ? -errno : (int)n;
}

static int cf_statfs(const char *path, struct statvfs *sv)
{
	(void)path;
	return fstatvfs(root_fd, sv) < 0 ? -errno : 0;
}

static int cf_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	close((int)fi->fh);
	return 0;
}

static int cf_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path;
	int r = datasync ? fdatasync((int)fi->fh) : fsync((int)fi->fh);
	return r < 0 ? -errno : 0;
}

static int cf_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path;
	(void)datasync;
	(void)fi;
	return 0;
}

static const struct fuse_operations ops = {
	.init = cf_init,
	.getattr = cf_getattr,
	.readlink = cf_readlink,
	.readdir = cf_readdir,
	.mknod = cf_mknod,
	.mkdir = cf_mkdir,
	.unlink = cf_unlink,
	.rmdir = cf_rmdir,
	.symlink = cf_symlink,
	.rename = cf_rename,
	.link = cf_link,
	.chmod = cf_chmod,
	.chown = cf_chown,
	.truncate = cf_truncate,
	.utimens = cf_utimens,
	.open = cf_open,
	.create = cf_create,
	.read = cf_read,
	.write = cf_write,
	.statfs = cf_statfs,
	.release = cf_release,
	.fsync = cf_fsync,
	.fsyncdir = cf_fsyncdir,
};

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: casefs BACKING MOUNTPOINT [FUSE-OPTION...]\n");
		return 2;
	}
	root_fd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0) {
		fprintf(stderr, "casefs: cannot open '%s': %s\n", argv[1], strerror(errno));
		return 1;
	}
	umask(0);
	char *args[64];
	int n = 0;
	args[n++] = argv[0];
	args[n++] = argv[2];
	args[n++] = "-o";
	args[n++] = "fsname=casefs,subtype=casefs,default_permissions";
	for (int i = 3; i < argc && n < 63; i++)
		args[n++] = argv[i];
	args[n] = NULL;
	return fuse_main(n, args, &ops, NULL);
}
