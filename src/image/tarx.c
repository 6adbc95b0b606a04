/* tarx.c - unpack an image layer (see tarx.h). */
#include "image/tarx.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define BLOCK 512
#define MAX_META (1u << 20) /* largest pax or long-name record we read */
#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"

struct entry {
	char type;
	char *name; /* normalised: relative, no '.', no '..', "" for the root */
	char *link; /* link target as stored (symlink) or normalised (hard link) */
	uint64_t size;
	mode_t mode;
	int64_t mtime;
};

static void entry_clear(struct entry *e)
{
	free(e->name);
	free(e->link);
	memset(e, 0, sizeof(*e));
}

/* Read exactly n bytes.  Returns n, 0 at a clean end of stream (nothing
 * read), or -errno (-EIO for a truncated stream). */
static ssize_t rd_exact(int fd, void *buf, size_t n)
{
	ssize_t got = read_full(fd, buf, n);
	if (got < 0)
		return got;
	if (got > 0 && (size_t)got < n)
		return -EIO;
	return got;
}

/* Skip n bytes of the stream.  Returns 0 or -errno. */
static int rd_skip(int fd, uint64_t n)
{
	char buf[16384];
	while (n) {
		size_t k = n < sizeof(buf) ? (size_t)n : sizeof(buf);
		ssize_t r = rd_exact(fd, buf, k);
		if (r <= 0)
			return r < 0 ? (int)r : -EIO;
		n -= k;
	}
	return 0;
}

static uint64_t padding(uint64_t size)
{
	return (BLOCK - size % BLOCK) % BLOCK;
}

/* A numeric header field: octal text, or base-256 when the top bit of
 * the first byte is set (GNU, for large sizes).  Returns false if it is
 * neither. */
static bool parse_num(const char *f, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	if ((unsigned char)f[0] & 0x80) {
		v = (unsigned char)f[0] & 0x3f;
		for (size_t i = 1; i < len; i++) {
			if (v >> 55)
				return false;
			v = v << 8 | (unsigned char)f[i];
		}
		*out = v;
		return true;
	}
	size_t i = 0;
	while (i < len && (f[i] == ' ' || f[i] == '\0'))
		i++;
	for (; i < len && f[i] >= '0' && f[i] <= '7'; i++) {
		if (v >> 60)
			return false;
		v = v << 3 | (uint64_t)(f[i] - '0');
	}
	for (; i < len; i++)
		if (f[i] != ' ' && f[i] != '\0')
			return false;
	*out = v;
	return true;
}

/* Normalise a member name: drop leading '/', '.' components and empty
 * ones; refuse '..'.  Returns a malloc'd string ("" for the root), or
 * NULL for a name with '..'. */
static char *normalise(const char *name)
{
	return path_clean(name, false, true);
}

/* Read a metadata record (pax header, GNU long name) of size bytes plus
 * its padding.  Returns a malloc'd NUL-terminated buffer, or NULL with
 * *r set. */
static char *read_meta(int fd, uint64_t size, int *r)
{
	if (size > MAX_META) {
		*r = -EFBIG;
		return NULL;
	}
	char *buf = xmalloc((size_t)size + 1);
	ssize_t n = size ? rd_exact(fd, buf, (size_t)size) : 0;
	if (n < 0 || (uint64_t)n != size || (*r = rd_skip(fd, padding(size))) < 0) {
		if (n >= 0 && (uint64_t)n != size)
			*r = -EIO;
		else if (n < 0)
			*r = (int)n;
		free(buf);
		return NULL;
	}
	buf[size] = '\0';
	return buf;
}

struct pending {
	char *path, *linkpath;
	uint64_t size;
	bool has_size;
};

static void pending_clear(struct pending *p)
{
	free(p->path);
	free(p->linkpath);
	memset(p, 0, sizeof(*p));
}

/* Parse pax records "LEN key=value\n" for the keys we use.  Returns 0
 * or -EINVAL. */
static int parse_pax(const char *buf, size_t len, struct pending *p)
{
	size_t off = 0;
	while (off < len) {
		char *end;
		/* digits first: strtoul would skip white space (a newline
		 * too) and take a sign, letting the length count fewer bytes
		 * than it skipped, so the key would start past the record's
		 * end and memchr run off the buffer */
		if (buf[off] < '0' || buf[off] > '9')
			return -EINVAL;
		unsigned long rl = strtoul(buf + off, &end, 10);
		if (*end != ' ' || rl == 0 || rl > len - off || buf[off + rl - 1] != '\n')
			return -EINVAL;
		const char *kv = end + 1, *stop = buf + off + rl - 1;
		if (kv > stop)
			return -EINVAL; /* the length ends inside "LEN " itself */
		const char *eq = memchr(kv, '=', (size_t)(stop - kv));
		if (!eq)
			return -EINVAL;
		size_t klen = (size_t)(eq - kv);
		char *val = xstrndup(eq + 1, (size_t)(stop - eq - 1));
		if (klen == 4 && memcmp(kv, "path", 4) == 0) {
			free(p->path);
			p->path = val;
		} else if (klen == 8 && memcmp(kv, "linkpath", 8) == 0) {
			free(p->linkpath);
			p->linkpath = val;
		} else if (klen == 4 && memcmp(kv, "size", 4) == 0) {
			/* plain digits, below 2^62: strtoull would take "-1"
			 * as 2^64-1, whose padding wraps round to a skip of 0 */
			char *vend;
			errno = 0;
			p->size = strtoull(val, &vend, 10);
			bool ok = val[0] >= '0' && val[0] <= '9' && !*vend && !errno &&
				  p->size < (1ULL << 62);
			free(val);
			if (!ok)
				return -EINVAL;
			p->has_size = true;
		} else {
			free(val);
		}
		off += rl;
	}
	return 0;
}

/* Read the next real entry, consuming pax and GNU long-name records.
 * Returns 1 with *e filled (its data, if any, is next in the stream), 0
 * at the end of the archive, or -errno with *err filled. */
static int next_entry(int fd, struct entry *e, const char *what, struct af_err *err)
{
	struct pending p = { 0 };
	unsigned char h[BLOCK];
	char field[256 + 2];
	int r = 0;

	entry_clear(e);
	for (;;) {
		ssize_t n = rd_exact(fd, h, BLOCK);
		if (n == 0) {
			r = 0; /* no end-of-archive blocks: accept a plain end */
			break;
		}
		if (n < 0) {
			r = af_err_usage(err, (int)-n, "cannot read layer %s: %s", what,
					 n == -EIO ? "truncated archive" : strerror((int)-n));
			break;
		}
		bool zero = true;
		for (int i = 0; i < BLOCK && zero; i++)
			zero = h[i] == 0;
		if (zero) {
			r = 0;
			break;
		}
		uint64_t sum = 0, want, size;
		for (int i = 0; i < BLOCK; i++)
			sum += (i >= 148 && i < 156) ? ' ' : h[i];
		if (!parse_num((char *)h + 148, 8, &want) || want != sum ||
		    !parse_num((char *)h + 124, 12, &size)) {
			r = af_err_usage(err, EINVAL, "cannot read layer %s: not a tar archive "
					 "(bad header checksum)", what);
			break;
		}
		char type = (char)h[156];
		if (type == 'x' || type == 'g' || type == 'L' || type == 'K') {
			char *meta = read_meta(fd, size, &r);
			if (!meta) {
				af_err_usage(err, -r, "cannot read layer %s: bad %s record: %s", what,
					     type == 'x' || type == 'g' ? "pax" : "long name",
					     strerror(-r));
				break;
			}
			if (type == 'x' && parse_pax(meta, (size_t)size, &p) < 0) {
				free(meta);
				r = af_err_usage(err, EINVAL, "cannot read layer %s: malformed pax "
						 "record", what);
				break;
			}
			if (type == 'L') {
				free(p.path);
				p.path = xstrdup(meta);
			} else if (type == 'K') {
				free(p.linkpath);
				p.linkpath = xstrdup(meta);
			}
			free(meta);
			continue;
		}
		/* ustar: prefix "/" name; both may fill their field */
		char *name;
		if (p.path) {
			name = xstrdup(p.path);
		} else if (memcmp(h + 257, "ustar", 5) == 0 && h[345]) {
			snprintf(field, sizeof(field), "%.155s/%.100s", (char *)h + 345, (char *)h);
			name = xstrdup(field);
		} else {
			name = xstrndup((char *)h, 100);
		}
		char *link = p.linkpath ? xstrdup(p.linkpath) : xstrndup((char *)h + 157, 100);
		uint64_t mode = 0, mtime = 0;
		parse_num((char *)h + 100, 8, &mode);
		parse_num((char *)h + 136, 12, &mtime);
		e->type = type ? type : '0';
		e->size = p.has_size ? p.size : size;
		e->mode = (mode_t)(mode & 07777);
		e->mtime = (int64_t)mtime;
		e->name = normalise(name);
		if (e->type == '1')
			e->link = normalise(link);
		else
			e->link = xstrdup(link);
		if (!e->name || !e->link) {
			r = af_err_usage(err, EINVAL, "refusing layer %s: entry '%s' %s '..'", what,
					 name, e->name ? "links to a path with" : "has");
			free(name);
			free(link);
			break;
		}
		free(name);
		free(link);
		if (strlen(e->name) >= PATH_MAX) {
			r = af_err_usage(err, ENAMETOOLONG, "refusing layer %s: a name is too long",
					 what);
			break;
		}
		r = 1;
		break;
	}
	pending_clear(&p);
	if (r <= 0)
		entry_clear(e);
	return r;
}

/* Bytes of data that follow an entry's header. */
static uint64_t data_size(const struct entry *e)
{
	switch (e->type) {
	case '1': case '2': case '3': case '4': case '5': case '6':
		return 0;
	default:
		return e->size;
	}
}

static int skip_data(int fd, const struct entry *e)
{
	uint64_t n = data_size(e);
	return rd_skip(fd, n + padding(n));
}

/* Open the directory holding path (relative, normalised), one component
 * at a time without following symbolic links; create missing ones when
 * create is set.  Returns an O_PATH fd with *base pointing at the last
 * component, -ENOENT when a component is missing (and !create), or
 * -ENOTDIR with *err filled when a component is not a directory. */
static int open_parent(int root_fd, const char *path, bool create, const char **base,
		       const char *what, struct af_err *err)
{
	char comp[NAME_MAX + 1];
	int cur = openat(root_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cur < 0)
		return -errno;
	const char *p = path;
	for (;;) {
		const char *slash = strchr(p, '/');
		if (!slash)
			break;
		size_t n = (size_t)(slash - p);
		if (n > NAME_MAX) {
			close(cur);
			return af_err_usage(err, ENAMETOOLONG, "refusing layer %s: a name in '%s' is "
					    "too long", what, path);
		}
		memcpy(comp, p, n);
		comp[n] = '\0';
		int next = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0 && errno == ENOENT && create) {
			if (mkdirat(cur, comp, 0755) < 0 && errno != EEXIST) {
				int e = errno;
				close(cur);
				return af_err_set(err, e, "cannot create '%.*s' unpacking layer %s: %s",
						  (int)(slash - path), path, what, strerror(e));
			}
			next = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (next < 0) {
			int e = errno;
			close(cur);
			if (e == ENOENT)
				return -ENOENT;
			if (e == ENOTDIR || e == ELOOP)
				return af_err_usage(err, ENOTDIR, "refusing layer %s: entry '%s' lies "
						    "below '%.*s', which is not a directory (a "
						    "symbolic link?)", what, path,
						    (int)(slash - path), path);
			return af_err_set(err, e, "cannot open '%.*s' unpacking layer %s: %s",
					  (int)(slash - path), path, what, strerror(e));
		}
		close(cur);
		cur = next;
		p = slash + 1;
	}
	*base = p;
	return cur;
}

static int remove_cb(int dirfd, const struct dirent *de, void *arg)
{
	(void)arg;
	return tarx_remove_tree(dirfd, de->d_name);
}

int tarx_remove_tree(int dirfd, const char *name)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (S_ISDIR(st.st_mode)) {
		if ((st.st_mode & 0700) != 0700)
			(void)!fchmodat(dirfd, name, (st.st_mode & 07777) | 0700, 0);
		int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		int r = for_each_dir_entry(fd, remove_cb, NULL);
		close(fd);
		if (r < 0)
			return r;
		if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0)
			return errno == ENOENT ? 0 : -errno;
		return 0;
	}
	if (unlinkat(dirfd, name, 0) < 0)
		return errno == ENOENT ? 0 : -errno;
	return 0;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

/* Apply one whiteout entry to the layers below.  Returns 0 or -errno. */
static int apply_whiteout(int root_fd, const struct entry *e, const char *what,
			  struct tarx_stats *st, struct af_err *err)
{
	const char *base, *b = base_name(e->name);
	int r, dfd;

	dfd = open_parent(root_fd, e->name, false, &base, what, err);
	if (dfd == -ENOENT)
		return 0; /* nothing below to hide */
	if (dfd < 0)
		return dfd;
	if (strcmp(b, WH_OPAQUE) == 0) {
		/* the directory holding the marker hides all it had below */
		int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		r = fd < 0 ? -errno : for_each_dir_entry(fd, remove_cb, NULL);
		if (fd >= 0)
			close(fd);
	} else {
		const char *victim = b + strlen(WH_PREFIX);
		if (!*victim || strcmp(victim, ".") == 0 || strcmp(victim, "..") == 0) {
			close(dfd);
			return af_err_usage(err, EINVAL, "refusing layer %s: bad whiteout '%s'", what,
					    e->name);
		}
		r = tarx_remove_tree(dfd, victim);
	}
	close(dfd);
	if (r < 0)
		return af_err_set(err, -r, "cannot apply whiteout '%s' of layer %s: %s", e->name,
				  what, strerror(-r));
	st->whiteouts++;
	return 0;
}

int tarx_whiteouts(int in_fd, int root_fd, const char *what, struct tarx_stats *st,
		   struct af_err *err)
{
	struct entry e = { 0 };
	int r;

	while ((r = next_entry(in_fd, &e, what, err)) > 0) {
		if (strncmp(base_name(e.name), WH_PREFIX, strlen(WH_PREFIX)) == 0 &&
		    (r = apply_whiteout(root_fd, &e, what, st, err)) < 0)
			break;
		if ((r = skip_data(in_fd, &e)) < 0) {
			af_err_usage(err, -r, "cannot read layer %s: truncated archive", what);
			break;
		}
	}
	entry_clear(&e);
	return r;
}

/* Copy a regular file's data from the stream.  Returns 0 or -errno. */
static int write_data(int in_fd, int fd, uint64_t size)
{
	char buf[65536];
	while (size) {
		size_t k = size < sizeof(buf) ? (size_t)size : sizeof(buf);
		ssize_t n = rd_exact(in_fd, buf, k);
		if (n <= 0)
			return n < 0 ? (int)n : -EIO;
		int r = write_all(fd, buf, k);
		if (r < 0)
			return r;
		size -= k;
	}
	return 0;
}

/* Create one entry at (dfd, base), replacing what is there.  Returns 0,
 * or -errno with *err filled; the entry's data has been consumed. */
static int place(int in_fd, int root_fd, int dfd, const char *base, const struct entry *e,
		 const char *what, struct tarx_stats *st, struct af_err *err)
{
	struct stat old;
	bool exists = fstatat(dfd, base, &old, AT_SYMLINK_NOFOLLOW) == 0;
	/* no set-id bits: nothing here runs with them anyway */
	mode_t mode = e->mode & 01777;
	struct timespec ts[2] = { { .tv_sec = e->mtime }, { .tv_sec = e->mtime } };
	int r = 0;

	if (e->type == '5') {
		if (exists && !S_ISDIR(old.st_mode) && (r = tarx_remove_tree(dfd, base)) < 0)
			goto fail;
		if ((!exists || !S_ISDIR(old.st_mode)) && mkdirat(dfd, base, 0700) < 0) {
			r = -errno;
			goto fail;
		}
		/* u+rwx: later layers write here, and the cache must be removable */
		if (fchmodat(dfd, base, mode | 0700, 0) < 0) {
			r = -errno;
			goto fail;
		}
		st->entries++;
		return 0;
	}
	if (exists && (r = tarx_remove_tree(dfd, base)) < 0)
		goto fail;
	switch (e->type) {
	case '0':
	case '7': {
		int fd = openat(dfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0) {
			r = -errno;
			goto fail;
		}
		r = write_data(in_fd, fd, e->size);
		if (r == 0 && (fchmod(fd, mode) < 0 || futimens(fd, ts) < 0))
			r = -errno;
		close(fd);
		if (r < 0)
			goto fail;
		r = rd_skip(in_fd, padding(e->size));
		if (r < 0)
			goto fail;
		st->entries++;
		return 0;
	}
	case '2':
		if (symlinkat(e->link, dfd, base) < 0) {
			r = -errno;
			goto fail;
		}
		utimensat(dfd, base, ts, AT_SYMLINK_NOFOLLOW);
		break;
	case '1': {
		const char *lbase;
		int lfd = open_parent(root_fd, e->link, false, &lbase, what, err);
		if (lfd == -ENOENT || (lfd >= 0 && linkat(lfd, lbase, dfd, base, 0) < 0)) {
			r = lfd >= 0 ? -errno : -ENOENT;
			if (lfd >= 0)
				close(lfd);
			return af_err_usage(err, -r, "cannot unpack layer %s: hard link '%s' to "
					    "'%s': %s", what, e->name, e->link, strerror(-r));
		}
		if (lfd < 0)
			return lfd;
		close(lfd);
		break;
	}
	case '6':
		if (mknodat(dfd, base, S_IFIFO | mode, 0) < 0) {
			r = -errno;
			goto fail;
		}
		break;
	case '3':
	case '4':
		st->devices++; /* an unprivileged user cannot create them */
		return skip_data(in_fd, e);
	default:
		return af_err_usage(err, EINVAL, "cannot unpack layer %s: entry '%s' has an "
				    "unsupported type '%c'", what, e->name, e->type);
	}
	st->entries++;
	return skip_data(in_fd, e);
fail:
	return af_err_set(err, -r, "cannot unpack '%s' of layer %s: %s", e->name, what,
			  strerror(-r));
}

int tarx_extract(int in_fd, int root_fd, const char *what, struct tarx_stats *st,
		 struct af_err *err)
{
	struct entry e = { 0 };
	int r;

	while ((r = next_entry(in_fd, &e, what, err)) > 0) {
		const char *base;
		if (!*e.name || strncmp(base_name(e.name), WH_PREFIX, strlen(WH_PREFIX)) == 0) {
			/* the root itself, or a whiteout (pass 1 applied it) */
			if ((r = skip_data(in_fd, &e)) < 0) {
				af_err_usage(err, -r, "cannot read layer %s: truncated archive", what);
				break;
			}
			continue;
		}
		int dfd = open_parent(root_fd, e.name, true, &base, what, err);
		if (dfd < 0) {
			r = dfd;
			break;
		}
		r = place(in_fd, root_fd, dfd, base, &e, what, st, err);
		close(dfd);
		if (r < 0)
			break;
	}
	entry_clear(&e);
	return r;
}
