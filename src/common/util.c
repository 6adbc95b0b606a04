/* util.c - error reporting and allocation helpers (see util.h). */
#include "common/util.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

static int err_vset(struct af_err *err, int code, int errnum, const char *fmt, va_list ap)
{
	if (err) {
		err->errnum = errnum;
		err->exit_code = code;
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		err->hint[0] = '\0';
	}
	return -(errnum ? errnum : EINVAL);
}

int af_err_set(struct af_err *err, int errnum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = err_vset(err, AF_EXIT_FAILURE, errnum, fmt, ap);
	va_end(ap);
	return r;
}

int af_err_usage(struct af_err *err, int errnum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = err_vset(err, AF_EXIT_USAGE, errnum, fmt, ap);
	va_end(ap);
	return r;
}

void af_err_hint(struct af_err *err, const char *fmt, ...)
{
	va_list ap;
	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(err->hint, sizeof(err->hint), fmt, ap);
	va_end(ap);
}

static void vreport(const char *prefix, const char *fmt, va_list ap)
{
	char buf[2048];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	fprintf(stderr, "%s%s\n", prefix, buf);
}

void error_msg(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport(AF_PROG ": ", fmt, ap);
	va_end(ap);
}

void warn_msg(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport(AF_PROG ": warning: ", fmt, ap);
	va_end(ap);
}

void hint_msg(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport("hint: ", fmt, ap);
	va_end(ap);
}

void die(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport(AF_PROG ": ", fmt, ap);
	va_end(ap);
	exit(code);
}

void print_err(const struct af_err *err)
{
	error_msg("%s", err->msg[0] ? err->msg : "unknown error");
	if (err->hint[0]) {
		/* a hint may span lines; prefix each */
		const char *p = err->hint;
		while (*p) {
			const char *nl = strchr(p, '\n');
			size_t n = nl ? (size_t)(nl - p) : strlen(p);
			fprintf(stderr, "hint: %.*s\n", (int)n, p);
			p += n + (nl ? 1 : 0);
		}
	}
}

void die_err(const struct af_err *err)
{
	print_err(err);
	exit(err->exit_code ? err->exit_code : AF_EXIT_FAILURE);
}

static void oom(void)
{
	static const char m[] = AF_PROG ": out of memory\n";
	(void)!write(2, m, sizeof(m) - 1);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom();
	return p;
}

void *xcalloc(size_t n, size_t m)
{
	void *p = calloc(n ? n : 1, m ? m : 1);
	if (!p)
		oom();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		oom();
	return p;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p)
		oom();
	return p;
}

char *xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);
	if (!p)
		oom();
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;
	va_start(ap, fmt);
	int r = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (r < 0)
		oom();
	return p;
}

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(fd, p + got, len - got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* Call fn for every entry of directory fd but "." and ".." (fd may be an
 * O_PATH fd; it is not consumed).  Returns 0, fn's nonzero result, or
 * -errno. */
int for_each_dir_entry(int fd, dir_entry_fn fn, void *arg)
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
	for (errno = 0; (de = readdir(d)); errno = 0) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		r = fn(dirfd(d), de, arg);
		if (r != 0)
			break;
	}
	if (!de && errno)
		r = -errno; /* readdir failed */
	closedir(d);
	return r;
}

void mountinfo_unescape(char *s)
{
	char *w = s;
	for (char *r = s; *r; r++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 3;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
}

/* Is buf[0..n) all zero bytes? */
static bool all_zero(const char *buf, size_t n)
{
	return n == 0 || (buf[0] == 0 && memcmp(buf, buf + 1, n - 1) == 0);
}

/* Copy [off, end) of in to the same offsets of out with pread/pwrite,
 * leaving 4 KiB blocks of zeros unwritten (holes of out, which the
 * caller sizes at the end): a source on a file system that reports no
 * holes must not come out inflated.  Returns 0 or -errno. */
static int copy_range_by_hand(int in, int out, off_t off, off_t end)
{
	static const size_t bufsize = 1 << 17, blk = 4096;
	autofree char *buf = xmalloc(bufsize);
	while (off < end) {
		size_t want = end - off < (off_t)bufsize ? (size_t)(end - off) : bufsize;
		ssize_t n = pread(in, buf, want, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0; /* shrank meanwhile */
		for (size_t i = 0; i < (size_t)n; i += blk) {
			size_t len = (size_t)n - i < blk ? (size_t)n - i : blk;
			if (all_zero(buf + i, len))
				continue;
			for (size_t put = 0; put < len;) {
				ssize_t w = pwrite(out, buf + i + put, len - put, off + (off_t)(i + put));
				if (w < 0 && errno == EINTR)
					continue;
				if (w < 0)
					return -errno;
				put += (size_t)w;
			}
		}
		off += n;
	}
	return 0;
}

/* Copy [off, end) of in to the same offsets of out: copy_file_range
 * where the pair of file systems allows it, else by hand.  Returns 0 or
 * -errno. */
static int copy_range(int in, int out, off_t off, off_t end, bool *by_hand)
{
	while (!*by_hand && off < end) {
		off_t ioff = off, ooff = off;
		size_t len = end - off < (1 << 30) ? (size_t)(end - off) : 1 << 30;
		ssize_t n = copy_file_range(in, &ioff, out, &ooff, len, 0);
		if (n > 0) {
			off += n;
			continue;
		}
		/* 0: the file shrank meanwhile, or a file system that says
		 * nothing instead of failing; the copy by hand tells them apart */
		if (n == 0) {
			*by_hand = true;
			break;
		}
		if (errno == EINTR)
			continue;
		/* not across these file systems, or not on this one */
		if (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP ||
		    errno == EPERM || errno == EBADF)
			*by_hand = true;
		else
			return -errno;
	}
	return off < end ? copy_range_by_hand(in, out, off, end) : 0;
}

int copy_fd_data(int in, int out, off_t size)
{
	if (size == 0 || ioctl(out, FICLONE, in) == 0)
		return 0;
	struct stat st;
	if (fstat(in, &st) < 0)
		return -errno;
	off_t end = st.st_size, off = 0;
	bool by_hand = false;
	/* only the data segments: a hole is never read, let alone written,
	 * so a sparse file costs what it holds in the copy as well (a
	 * `truncate -s 2G` file is one ftruncate below) */
	while (off < end) {
		off_t data = lseek(in, off, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			break; /* only a hole is left */
		off_t hole = data < 0 ? end : lseek(in, data, SEEK_HOLE);
		if (data < 0) {
			if (errno != EINVAL && errno != EOPNOTSUPP)
				return -errno;
			data = off; /* no SEEK_DATA here: all of it is data */
		}
		if (hole < 0)
			return -errno;
		if (hole > end)
			hole = end;
		int r = copy_range(in, out, data, hole, &by_hand);
		if (r < 0)
			return r;
		off = hole;
	}
	return ftruncate(out, end) < 0 ? -errno : 0;
}

char *path_clean(const char *path, bool absolute, bool dot_ok)
{
	char *out = xmalloc(strlen(path) + 2);
	size_t o = 0;
	for (const char *p = path; *p;) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *end = strchrnul(p, '/');
		size_t n = (size_t)(end - p);
		bool dot = n == 1 && p[0] == '.';
		if ((n == 2 && p[0] == '.' && p[1] == '.') || (dot && !dot_ok)) {
			free(out);
			return NULL;
		}
		if (!dot) {
			if (o || absolute)
				out[o++] = '/';
			memcpy(out + o, p, n);
			o += n;
		}
		p = end;
	}
	out[o] = '\0';
	return out;
}

int mkdir_p(const char *path)
{
	autofree char *p = xstrdup(path);
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			return -errno;
		*s = c;
		if (!c)
			break;
	}
	return 0;
}

char *xdg_dir(const char *var, const char *home_rel, const char *sub, const char *what,
	      struct af_err *err)
{
	const char *xdg = getenv(var);
	if (xdg && xdg[0] == '/')
		return xasprintf("%s/%s", xdg, sub);
	const char *home = getenv("HOME");
	/* getpwuid_r: getpwuid's static buffer is shared by every thread */
	struct passwd pwd, *pw = NULL;
	char buf[4096];
	if (!home || home[0] != '/') {
		if (getpwuid_r(getuid(), &pwd, buf, sizeof(buf), &pw) != 0)
			pw = NULL;
		home = pw && pw->pw_dir && pw->pw_dir[0] == '/' ? pw->pw_dir : NULL;
	}
	if (!home) {
		af_err_set(err, ENOENT, "cannot find the %s: HOME is not set", what);
		af_err_hint(err, "set %s or HOME to an absolute path", var);
		return NULL;
	}
	return xasprintf("%s/%s/%s", home, home_rel, sub);
}
