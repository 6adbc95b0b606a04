/* util.h - small helpers shared by every module: error reporting, the
 * error object passed up from library code, cleanup attributes and
 * allocation wrappers.
 *
 * Two error tiers: library code (policy, view, delta, sandbox) fills a
 * struct af_err and returns -errno; only CLI code calls die(). */
#ifndef AF_UTIL_H
#define AF_UTIL_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

#define AF_PROG "agentfense"

/* Exit codes of every subcommand (documented in agentfense(1)).  A
 * usage error is an error of agentfense like any other (docker's
 * convention): 2 is what sh and grep exit with, so a script could not
 * tell the two apart. */
enum {
	AF_EXIT_USAGE = 125,    /* bad command line, preset, rule or policy */
	AF_EXIT_TIMEOUT = 124,  /* --timeout fired */
	AF_EXIT_FAILURE = 125,  /* agentfense itself failed */
	AF_EXIT_NOEXEC = 126,   /* command found but not executable */
	AF_EXIT_NOTFOUND = 127, /* command not found */
};

#define AF_NORETURN __attribute__((noreturn))
#define AF_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define AF_UNUSED __attribute__((unused))

/* Error object: library functions fill it and return -errnum.  msg is
 * one line in git style: lowercase, the failing thing first, subjects
 * quoted, no trailing period.  hint is optional advice ("" if none). */
struct af_err {
	int errnum;
	int exit_code; /* suggested exit code for the CLI (125) */
	char msg[1024];
	char hint[512];
};

/* Fill *err (may be NULL) and return -errnum.  exit_code defaults to 125. */
int af_err_set(struct af_err *err, int errnum, const char *fmt, ...) AF_PRINTF(3, 4);
/* Same, for a usage/input error (AF_EXIT_USAGE). */
int af_err_usage(struct af_err *err, int errnum, const char *fmt, ...) AF_PRINTF(3, 4);
/* Set the hint line of an already filled error. */
void af_err_hint(struct af_err *err, const char *fmt, ...) AF_PRINTF(2, 3);

/* CLI tier: print "agentfense: MSG" (and "hint: ..." lines) and exit. */
AF_NORETURN void die(int code, const char *fmt, ...) AF_PRINTF(2, 3);
AF_NORETURN void die_err(const struct af_err *err);
void error_msg(const char *fmt, ...) AF_PRINTF(1, 2);
void warn_msg(const char *fmt, ...) AF_PRINTF(1, 2);
void hint_msg(const char *fmt, ...) AF_PRINTF(1, 2);
void print_err(const struct af_err *err);

/* Allocation that cannot fail (aborts with a message on ENOMEM). */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) AF_PRINTF(1, 2);

/* Write all of buf; returns 0 or -errno. */
int write_all(int fd, const void *buf, size_t len);

/* Copy all of in into out, an empty file: a reflink if the file system
 * can (size: in's size, 0 meaning nothing to copy), else its data
 * segments (SEEK_DATA/SEEK_HOLE) by copy_file_range, else by read/write
 * skipping blocks of zeros, so holes stay holes.  Returns 0 or -errno. */
int copy_fd_data(int in, int out, off_t size);

/* path with empty components dropped, and '.' ones too if dot_ok, as
 * "a/b" (absolute: "/a/b"; "" for no component at all), malloc'd; NULL
 * if a component is '..' (or '.' without dot_ok).  Nothing is resolved. */
char *path_clean(const char *path, bool absolute, bool dot_ok);

/* mkdir -p, mode 0700 for every directory it creates.  Returns 0 or
 * -errno. */
int mkdir_p(const char *path);

/* $VAR/SUB if VAR is an absolute path, else $HOME/HOME_REL/SUB (HOME
 * from the password database if unset), malloc'd; NULL with *err filled
 * (naming WHAT) if there is no home.  For the XDG base directories. */
char *xdg_dir(const char *var, const char *home_rel, const char *sub, const char *what,
	      struct af_err *err);
/* Read up to len bytes, retrying on EINTR; returns bytes read or -errno. */
ssize_t read_full(int fd, void *buf, size_t len);

/* Call fn for every entry of directory fd but "." and ".." (fd may be an
 * O_PATH fd; it is not consumed).  Returns 0, fn's nonzero result, or
 * -errno. */
struct dirent;
typedef int (*dir_entry_fn)(int dirfd, const struct dirent *de, void *arg);
int for_each_dir_entry(int fd, dir_entry_fn fn, void *arg);

/* Cleanup attributes: ownership is visible at the declaration. */
static inline void af_freep(void *p) { free(*(void **)p); }
static inline void af_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}
#define autofree __attribute__((cleanup(af_freep)))
#define autoclose __attribute__((cleanup(af_closep)))

/* Hand an owned pointer to someone else: the cleanup then sees NULL. */
static inline void *steal_ptr(void *pp)
{
	void **p = pp;
	void *r = *p;
	*p = NULL;
	return r;
}
#define steal_pointer(pp) ((__typeof__(*(pp)))steal_ptr(pp))
static inline int steal_fd(int *fd)
{
	int r = *fd;
	*fd = -1;
	return r;
}

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Undo the octal escapes (\040 for a space, ...) of a field of
 * /proc/self/mountinfo, in place.  Cannot fail. */
void mountinfo_unescape(char *s);

#endif
