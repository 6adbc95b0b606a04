/* import.c - import a host directory into a codebase (see import.h).
 *
 * gitignore semantics: every directory may hold .gitignore and
 * .sandboxignore (read in that order); their patterns apply to the
 * paths below that directory, relative to it; the last pattern that
 * matches a path decides, deeper files after shallower ones, and the
 * request's own patterns after all of them; '!' re-includes; an ignored
 * directory is not entered, so nothing below it can be re-included (as
 * in git).  Patterns are compiled by the policy engine's matcher
 * (pattern.c), which already implements anchoring, '**' and trailing
 * '/' the way gitignore(5) defines them.
 *
 * Everything is opened from directory fds with O_NOFOLLOW: a symbolic
 * link is copied as a link, never followed. */
#include "store/import.h"

#include <cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "policy/pattern.h"

#define SKIPPED_MAX 10000
#define IGNORE_FILE_MAX (1 << 20)
#define DEPTH_MAX 256

struct ign_rule {
	struct pattern pat;
	bool negate;
};

/* The rules of one ignore file (or the request), for paths below base. */
struct ign_set {
	char *base; /* "" for the root */
	size_t baselen;
	struct ign_rule *rules;
	size_t n, cap;
};

struct imp {
	const struct stat *store;
	const struct cb_create *req;
	struct import_result *res;
	struct ign_set *sets; /* a stack: root first */
	size_t nsets, capsets;
	struct ign_set extra; /* the request's patterns, applied last */
	struct af_err *err;
	char path[4096];
};

static void set_clear(struct ign_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		pattern_clear(&s->rules[i].pat);
	free(s->rules);
	free(s->base);
	memset(s, 0, sizeof(*s));
}

/* Add one gitignore line.  Returns 0 (a line that is no pattern, or one
 * the matcher cannot take, is left out as git leaves out what it cannot
 * parse), or -ENOMEM. */
static int set_add_line(struct ign_set *s, char *line)
{
	size_t n = strlen(line);
	if (n && line[n - 1] == '\r')
		line[--n] = '\0';
	/* trailing spaces go unless escaped with a backslash */
	while (n && line[n - 1] == ' ' && !(n >= 2 && line[n - 2] == '\\'))
		line[--n] = '\0';
	if (!n || line[0] == '#')
		return 0;
	bool negate = false;
	if (line[0] == '!') {
		negate = true;
		line++;
	}
	if (!*line)
		return 0;
	if (s->n == s->cap) {
		size_t c = s->cap * 2 + 8;
		struct ign_rule *r = realloc(s->rules, c * sizeof(*r));
		if (!r)
			return -ENOMEM;
		s->rules = r;
		s->cap = c;
	}
	struct ign_rule *r = &s->rules[s->n];
	memset(r, 0, sizeof(*r));
	const char *why;
	if (pattern_compile(&r->pat, line, &why) < 0)
		return 0;
	r->negate = negate;
	s->n++;
	return 0;
}

/* Read dirfd/name as an ignore file into s.  Returns 0 (also when there
 * is no such file), or -errno. */
static int set_read(struct ign_set *s, int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ELOOP ? 0 : -errno;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > IGNORE_FILE_MAX) {
		close(fd);
		return 0;
	}
	char *buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	ssize_t got = read_full(fd, buf, (size_t)st.st_size);
	close(fd);
	if (got < 0) {
		free(buf);
		return (int)got;
	}
	buf[got] = '\0';
	int r = 0;
	for (char *line = buf, *nl; line && r == 0; line = nl) {
		nl = strchr(line, '\n');
		if (nl)
			*nl++ = '\0';
		r = set_add_line(s, line);
	}
	free(buf);
	return r;
}

static bool set_decide(const struct ign_set *s, const char *path, bool is_dir, bool *ignored)
{
	const char *sub = path;
	if (s->baselen) {
		if (strncmp(path, s->base, s->baselen) != 0 || path[s->baselen] != '/')
			return false;
		sub = path + s->baselen + 1;
	}
	bool decided = false;
	for (size_t i = 0; i < s->n; i++)
		if (pattern_covers(&s->rules[i].pat, sub, is_dir)) {
			*ignored = !s->rules[i].negate;
			decided = true;
		}
	return decided;
}

static bool is_ignored(const struct imp *im, const char *path, bool is_dir)
{
	bool ignored = false;
	for (size_t i = 0; i < im->nsets; i++)
		set_decide(&im->sets[i], path, is_dir, &ignored);
	set_decide(&im->extra, path, is_dir, &ignored);
	return ignored;
}

static int skip(struct imp *im, const char *path, long long size, const char *reason)
{
	if (cJSON_GetArraySize(im->res->skipped) >= SKIPPED_MAX)
		return 0;
	cJSON *o = cJSON_CreateObject();
	if (!o || !cJSON_AddStringToObject(o, "path", path) ||
	    (size >= 0 && !cJSON_AddNumberToObject(o, "size", (double)size)) ||
	    !cJSON_AddStringToObject(o, "reason", reason) ||
	    !cJSON_AddItemToArray(im->res->skipped, o)) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	return 0;
}

static int copy_file(struct imp *im, int sfd_dir, int dfd_dir, const char *name,
		     const struct stat *st)
{
	autoclose int in = openat(sfd_dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (in < 0) {
		if (errno == EACCES || errno == EPERM)
			return skip(im, im->path, (long long)st->st_size, "unreadable");
		return af_err_set(im->err, errno, "cannot open '%s' to import it: %s", im->path,
				  strerror(errno));
	}
	struct stat ist;
	if (fstat(in, &ist) < 0 || !S_ISREG(ist.st_mode))
		return skip(im, im->path, -1, "changed_during_import");
	autoclose int out = openat(dfd_dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
				   ist.st_mode & 0777);
	if (out < 0)
		return af_err_set(im->err, errno, "cannot create '%s' in the codebase: %s", im->path,
				  strerror(errno));
	int r = copy_fd_data(in, out, ist.st_size);
	if (r < 0)
		return af_err_set(im->err, -r, "cannot copy '%s': %s", im->path, strerror(-r));
	struct timespec ts[2] = { ist.st_atim, ist.st_mtim };
	futimens(out, ts);
	im->res->files++;
	im->res->bytes += (uint64_t)ist.st_size;
	return 0;
}

static int walk(struct imp *im, int sfd, int dfd, size_t plen, unsigned depth);

struct walk_arg {
	struct imp *im;
	int dfd;
	size_t plen;
	unsigned depth;
};

static int walk_entry(int sfd, const struct dirent *de, void *arg)
{
	struct walk_arg *wa = arg;
	struct imp *im = wa->im;
	size_t nl = strlen(de->d_name);
	size_t plen = wa->plen;
	if (plen + nl + 2 > sizeof(im->path))
		return af_err_set(im->err, ENAMETOOLONG, "path too long under '%s'", im->path);
	if (plen)
		im->path[plen++] = '/';
	memcpy(im->path + plen, de->d_name, nl + 1);
	int r = 0;
	struct stat st;
	if (fstatat(sfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		r = errno == ENOENT ? 0 : af_err_set(im->err, errno, "cannot stat '%s': %s",
						     im->path, strerror(errno));
		goto out;
	}
	bool is_dir = S_ISDIR(st.st_mode);
	if (is_ignored(im, im->path, is_dir)) {
		im->res->ignored++;
		goto out;
	}
	if (is_dir && st.st_dev == im->store->st_dev && st.st_ino == im->store->st_ino) {
		/* the store below the source: copying it into itself would
		 * never end */
		r = skip(im, im->path, -1, "agentfense_store");
		goto out;
	}
	if (is_dir) {
		if (mkdirat(wa->dfd, de->d_name, 0700) < 0) {
			r = af_err_set(im->err, errno, "cannot create directory '%s': %s", im->path,
				       strerror(errno));
			goto out;
		}
		int s2 = openat(sfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (s2 < 0) {
			r = errno == EACCES ? skip(im, im->path, -1, "unreadable")
					    : af_err_set(im->err, errno, "cannot open '%s': %s",
							 im->path, strerror(errno));
			goto out;
		}
		int d2 = openat(wa->dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (d2 < 0) {
			r = af_err_set(im->err, errno, "cannot open '%s' in the codebase: %s",
				       im->path, strerror(errno));
			close(s2);
			goto out;
		}
		r = walk(im, s2, d2, plen + nl, wa->depth + 1);
		/* u+rwx stays, so the store can always remove what it made */
		fchmod(d2, (st.st_mode & 0777) | 0700);
		struct timespec ts[2] = { st.st_atim, st.st_mtim };
		futimens(d2, ts);
		close(s2);
		close(d2);
	} else if (S_ISREG(st.st_mode)) {
		if ((uint64_t)st.st_size > im->req->max_file_size)
			r = skip(im, im->path, (long long)st.st_size, "too_large");
		else
			r = copy_file(im, sfd, wa->dfd, de->d_name, &st);
	} else if (S_ISLNK(st.st_mode)) {
		char target[4096];
		ssize_t n = readlinkat(sfd, de->d_name, target, sizeof(target) - 1);
		if (n < 0) {
			r = af_err_set(im->err, errno, "cannot read link '%s': %s", im->path,
				       strerror(errno));
			goto out;
		}
		target[n] = '\0';
		if (symlinkat(target, wa->dfd, de->d_name) < 0) {
			r = af_err_set(im->err, errno, "cannot create link '%s': %s", im->path,
				       strerror(errno));
			goto out;
		}
		im->res->files++;
	} else {
		r = skip(im, im->path, -1, "special_file");
	}
out:
	im->path[wa->plen] = '\0';
	if (r == -ENOMEM)
		af_err_set(im->err, ENOMEM, "out of memory");
	return r;
}

static int walk(struct imp *im, int sfd, int dfd, size_t plen, unsigned depth)
{
	if (depth > DEPTH_MAX)
		return af_err_set(im->err, ELOOP, "'%s' is nested too deep", im->path);
	/* this directory's ignore files apply below it */
	if (im->nsets == im->capsets) {
		size_t c = im->capsets * 2 + 8;
		struct ign_set *s = realloc(im->sets, c * sizeof(*s));
		if (!s)
			return af_err_set(im->err, ENOMEM, "out of memory");
		im->sets = s;
		im->capsets = c;
	}
	struct ign_set *set = &im->sets[im->nsets];
	memset(set, 0, sizeof(*set));
	set->base = strdup(im->path);
	if (!set->base)
		return af_err_set(im->err, ENOMEM, "out of memory");
	set->baselen = plen;
	int r = set_read(set, sfd, ".gitignore");
	if (r == 0)
		r = set_read(set, sfd, ".sandboxignore");
	if (r < 0) {
		set_clear(set);
		return af_err_set(im->err, -r, "cannot read the ignore files of '%s': %s",
				  plen ? im->path : ".", strerror(-r));
	}
	im->nsets++;
	struct walk_arg wa = { im, dfd, plen, depth };
	r = for_each_dir_entry(sfd, walk_entry, &wa);
	if (r < 0 && !im->err->msg[0])
		af_err_set(im->err, -r, "cannot list '%s': %s", plen ? im->path : ".",
			   strerror(-r));
	set_clear(&im->sets[--im->nsets]);
	return r;
}

int store_import(int src_fd, int dst_fd, const struct stat *store, const struct cb_create *req,
		 struct import_result *res, struct af_err *err)
{
	struct imp im = { .store = store, .req = req, .res = res, .err = err };
	err->msg[0] = '\0';
	for (size_t i = 0; i < req->nignore; i++) {
		autofree char *line = strdup(req->ignore[i]);
		if (!line || set_add_line(&im.extra, line) < 0) {
			set_clear(&im.extra);
			return af_err_set(err, ENOMEM, "out of memory");
		}
	}
	int r = walk(&im, src_fd, dst_fd, 0, 0);
	set_clear(&im.extra);
	free(im.sets);
	return r < 0 ? r : 0;
}
