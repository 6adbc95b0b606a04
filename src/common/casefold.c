/* casefold.c - names on case-insensitive file systems (see casefold.h).
 *
 * Detection is per directory, done once when the view (or sync) first
 * opens it: statfs tells the file system type, which settles the common
 * case-sensitive ones (ext4, xfs, btrfs, tmpfs without the casefold
 * attribute) with one or two system calls; FUSE, network and other file
 * systems report nothing reliable, so for them one existing entry is
 * looked up again with its letters' case swapped. */
#include "common/casefold.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "common/util.h"

/* statfs f_type values (linux/magic.h, and fs sources for the rest) */
#define MAGIC_EXT4 0xEF53UL       /* also ext2 and ext3 */
#define MAGIC_F2FS 0xF2F52010UL
#define MAGIC_TMPFS 0x01021994UL
#define MAGIC_XFS 0x58465342UL
#define MAGIC_BTRFS 0x9123683EUL
#define MAGIC_OVERLAY 0x794C7630UL
#define MAGIC_MSDOS 0x4D44UL      /* vfat and msdos */
#define MAGIC_EXFAT 0x2011BAB0UL
#define MAGIC_CIFS 0xFF534D42UL
#define MAGIC_SMB2 0xFE534D42UL
#ifndef FS_CASEFOLD_FL
#define FS_CASEFOLD_FL 0x40000000
#endif

/* Fold s into out (room for strlen(s) + 1: folding never lengthens). */
static void fold_into(char *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		if (p[0] == 0xE2 && p[1] == 0x84 && p[2] == 0xAA) { /* U+212A KELVIN SIGN */
			*out++ = 'k';
			p += 3;
		} else if (p[0] == 0xC5 && p[1] == 0xBF) { /* U+017F LATIN SMALL LETTER LONG S */
			*out++ = 's';
			p += 2;
		} else {
			*out++ = (char)(*p >= 'A' && *p <= 'Z' ? *p + ('a' - 'A') : *p);
			p++;
		}
	}
	*out = '\0';
}

char *casefold_dup(const char *s)
{
	char *out = xmalloc(strlen(s) + 1);
	fold_into(out, s);
	return out;
}

static bool has_letter(const char *s)
{
	for (; *s; s++)
		if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))
			return true;
	return false;
}

/* Probe result of for_each_dir_entry: 1 folds, 2 tells case apart. */
static int probe_cb(int dirfd, const struct dirent *de, void *arg)
{
	(void)arg;
	if (!has_letter(de->d_name))
		return 0;
	char swapped[NAME_MAX + 1];
	size_t i;
	for (i = 0; de->d_name[i] && i < NAME_MAX; i++) {
		char c = de->d_name[i];
		if (c >= 'a' && c <= 'z')
			c = (char)(c - ('a' - 'A'));
		else if (c >= 'A' && c <= 'Z')
			c = (char)(c + ('a' - 'A'));
		swapped[i] = c;
	}
	swapped[i] = '\0';
	struct stat a, b;
	if (fstatat(dirfd, de->d_name, &a, AT_SYMLINK_NOFOLLOW) < 0)
		return 0; /* gone meanwhile: try another */
	if (fstatat(dirfd, swapped, &b, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 2 : 1;
	return a.st_ino == b.st_ino && a.st_dev == b.st_dev ? 1 : 2;
}

bool casefold_dir_may_fold(int fd)
{
	struct statfs sf;
	if (fstatfs(fd, &sf) < 0)
		return true;
	switch ((unsigned long)sf.f_type) {
	case MAGIC_XFS:
	case MAGIC_BTRFS:
		return false;
	case MAGIC_MSDOS:
	case MAGIC_EXFAT:
	case MAGIC_CIFS:
	case MAGIC_SMB2:
		return true;
	case MAGIC_EXT4:
	case MAGIC_F2FS:
	case MAGIC_TMPFS:
	case MAGIC_OVERLAY: /* shows its layers' attribute (casefolded ones since Linux 6.17) */
	{
		/* casefolding is an attribute of each directory there */
		autoclose int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_NONBLOCK | O_CLOEXEC);
		/* A directory we may not read (mode 0311) does not say: it
		 * took the attribute of its parent when made, which is what
		 * the caller assumes then. */
		if (dfd < 0)
			return errno != EACCES && errno != EPERM;
		int flags = 0;
		if (ioctl(dfd, FS_IOC_GETFLAGS, &flags) < 0)
			return errno != ENOTTY && errno != EOPNOTSUPP && errno != ENOSYS;
		return (flags & FS_CASEFOLD_FL) != 0;
	}
	default:
		break;
	}
	/* Unknown (FUSE, NFS, ZFS, ntfs3 ...): a folding file system folds
	 * ASCII letters, so one entry found again under its swapped
	 * spelling settles it; without such an entry it may fold. */
	return for_each_dir_entry(fd, probe_cb, NULL) != 2;
}

int casefold_dir_probe(int fd)
{
	char name[64], other[64];
	snprintf(name, sizeof(name), ".agentfense-Case-Probe.%ld", (long)getpid());
	snprintf(other, sizeof(other), ".AGENTFENSE-cASE-pROBE.%ld", (long)getpid());
	int pfd = openat(fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (pfd < 0 && errno == EEXIST) { /* left by a process of this pid */
		unlinkat(fd, name, 0);
		pfd = openat(fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	}
	if (pfd < 0)
		return -errno;
	close(pfd);
	struct stat st;
	int r = fstatat(fd, other, &st, AT_SYMLINK_NOFOLLOW) == 0 ? 1 : errno == ENOENT ? 0 : -errno;
	unlinkat(fd, name, 0);
	return r;
}

struct casefold_names {
	pthread_mutex_t lock;
	bool valid;
	struct stat st; /* of the directory when read */
	char **v;       /* sorted */
	size_t n, cap;
};

struct casefold_names *casefold_names_new(void)
{
	struct casefold_names *c = xcalloc(1, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

static void names_clear(struct casefold_names *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i]);
	c->n = 0;
	c->valid = false;
}

void casefold_names_free(struct casefold_names *c)
{
	if (!c)
		return;
	names_clear(c);
	free(c->v);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static int add_cb(int dirfd, const struct dirent *de, void *arg)
{
	(void)dirfd;
	struct casefold_names *c = arg;
	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 64;
		c->v = xrealloc(c->v, c->cap * sizeof(*c->v));
	}
	c->v[c->n++] = xstrdup(de->d_name);
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool same_dir(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

int casefold_names_has(struct casefold_names *c, int fd, const char *name)
{
	struct stat st;
	int r = 0;
	if (fstat(fd, &st) < 0)
		return -errno;
	pthread_mutex_lock(&c->lock);
	if (!c->valid || !same_dir(&st, &c->st)) {
		names_clear(c);
		r = for_each_dir_entry(fd, add_cb, c);
		if (r == 0) {
			qsort(c->v, c->n, sizeof(*c->v), cmp_names);
			c->st = st;
			c->valid = true;
		} else {
			names_clear(c);
		}
	}
	if (r == 0)
		r = bsearch(&name, c->v, c->n, sizeof(*c->v), cmp_names) != NULL;
	pthread_mutex_unlock(&c->lock);
	return r;
}

struct clash_ctx {
	const char *name;
	const char *folded;
};

static int clash_cb(int dirfd, const struct dirent *de, void *arg)
{
	(void)dirfd;
	const struct clash_ctx *c = arg;
	char f[NAME_MAX * 3 + 1];
	if (strlen(de->d_name) >= sizeof(f) || strcmp(de->d_name, c->name) == 0)
		return 0;
	fold_into(f, de->d_name);
	return strcmp(f, c->folded) == 0;
}

int casefold_dir_has_clash(int fd, const char *name)
{
	autofree char *folded = casefold_dup(name);
	struct clash_ctx c = { name, folded };
	return for_each_dir_entry(fd, clash_cb, &c);
}
