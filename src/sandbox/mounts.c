/* mounts.c - parse and check --bind, --ro-bind and --tmpfs (see mounts.h). */
#include "sandbox/mounts.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#ifndef PROC_SUPER_MAGIC
#define PROC_SUPER_MAGIC 0x9fa0
#endif

/* Where the sandbox keeps what it builds itself: a mount over or under
 * one of these would replace the view, the fresh /proc or the minimal
 * /dev. */
static const char *const reserved[] = { "/workspace", "/proc", "/dev", NULL };

const char *mount_kind_option(enum mount_kind kind)
{
	switch (kind) {
	case MOUNT_BIND:
		return "--bind";
	case MOUNT_RO_BIND:
		return "--ro-bind";
	case MOUNT_TMPFS:
		return "--tmpfs";
	}
	return "--bind";
}

bool mounts_on_procfs(const char *path)
{
	struct statfs sf;
	return statfs(path, &sf) == 0 && sf.f_type == PROC_SUPER_MAGIC;
}

bool mounts_path_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	if (n == 1 && dir[0] == '/')
		return true;
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

bool mounts_paths_overlap(const char *a, const char *b)
{
	return mounts_path_under(a, b) || mounts_path_under(b, a);
}

bool mounts_host_under(const char *path, const char *dir)
{
	if (mounts_path_under(path, dir))
		return true;
	/* Spelling is not identity: on a file system that ignores case
	 * "/p/SECRETS" is "/p/secrets", and a directory may be mounted at
	 * more than one place.  Walk up from path by "..", which crosses
	 * mount points as a lookup does, looking for dir itself. */
	struct stat want, root, st;
	if (stat(dir, &want) < 0 || stat("/", &root) < 0)
		return false;
	autoclose int fd = open(path, O_PATH | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		return false;
	for (unsigned i = 0; i < PATH_MAX / 2; i++) {
		if (st.st_dev == want.st_dev && st.st_ino == want.st_ino)
			return true;
		if (st.st_dev == root.st_dev && st.st_ino == root.st_ino)
			return false;
		/* ".." of a file is refused: its directory comes from the path */
		int up;
		if (i == 0 && !S_ISDIR(st.st_mode)) {
			const char *slash = strrchr(path, '/');
			autofree char *parent = xstrndup(path, slash && slash != path ? (size_t)(slash - path) : 1);
			up = open(parent, O_PATH | O_DIRECTORY | O_CLOEXEC);
		} else {
			up = openat(fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
		}
		if (up < 0)
			return false;
		close(fd);
		fd = up;
		if (fstat(fd, &st) < 0)
			return false;
	}
	return false;
}

bool mounts_host_overlap(const char *a, const char *b)
{
	return mounts_host_under(a, b) || mounts_host_under(b, a);
}

/* Normalise an absolute path inside the sandbox: collapse '//', drop a
 * trailing '/', refuse '.' and '..' (the sandbox's layout is not known
 * here, so they cannot be resolved honestly).  Returns a malloc'd string,
 * or NULL with *why set. */
static char *normalise_dst(const char *dst, const char **why)
{
	if (dst[0] != '/') {
		*why = "it must be an absolute path";
		return NULL;
	}
	size_t len = strlen(dst);
	if (len >= PATH_MAX) {
		*why = "it is too long";
		return NULL;
	}
	char *out = path_clean(dst, true, false);
	if (!out) {
		*why = "'.' and '..' are not allowed in it";
		return NULL;
	}
	if (!*out) {
		free(out);
		*why = "it would cover the whole root";
		return NULL;
	}
	return out;
}

int mounts_add(struct mount_list *l, enum mount_kind kind, const char *spec,
	       struct af_err *err)
{
	const char *opt = mount_kind_option(kind);
	struct mount_spec m = { .kind = kind, .is_dir = true };
	autofree char *src_arg = NULL;
	const char *dst_arg, *why = NULL;
	int r;

	if (!*spec)
		return af_err_usage(err, EINVAL, "invalid %s '': empty value", opt);
	if (kind == MOUNT_TMPFS) {
		dst_arg = spec;
	} else {
		/* SRC[:DST]: the first ':' separates them (a SRC holding ':'
		 * can be reached through a symbolic link) */
		const char *colon = strchr(spec, ':');
		src_arg = colon ? xstrndup(spec, (size_t)(colon - spec)) : xstrdup(spec);
		dst_arg = colon ? colon + 1 : spec;
		if (!*src_arg)
			return af_err_usage(err, EINVAL, "invalid %s '%s': empty source", opt, spec);
		if (!*dst_arg)
			return af_err_usage(err, EINVAL, "invalid %s '%s': empty destination", opt,
					    spec);
		struct stat st;
		if (stat(src_arg, &st) < 0) {
			int e = errno;
			char target[PATH_MAX];
			ssize_t n = readlink(src_arg, target, sizeof(target) - 1);
			/* a dangling link: say where it leads, not just ENOENT */
			if (n >= 0) {
				target[n] = '\0';
				return af_err_usage(err, e, "invalid %s '%s': source '%s' is a "
						    "symbolic link to '%s': %s", opt, spec, src_arg,
						    target, strerror(e));
			}
			return af_err_usage(err, e, "invalid %s '%s': cannot use source '%s': %s",
					    opt, spec, src_arg, strerror(e));
		}
		if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
			r = af_err_usage(err, EINVAL,
					 "invalid %s '%s': source '%s' is neither a directory nor "
					 "a regular file", opt, spec, src_arg);
			af_err_hint(err, "devices, sockets and pipes cannot be bound into the "
					 "sandbox");
			return r;
		}
		if (mounts_on_procfs(src_arg)) {
			r = af_err_usage(err, EINVAL,
					 "invalid %s '%s': source '%s' is on the host's /proc", opt,
					 spec, src_arg);
			af_err_hint(err, "/proc/PID/root and /proc/PID/cwd of your own processes "
					 "lead to the whole host filesystem; the sandbox has a /proc "
					 "of its own");
			return r;
		}
		m.src = realpath(src_arg, NULL);
		if (!m.src)
			return af_err_usage(err, errno, "invalid %s '%s': cannot resolve source '%s': %s",
					    opt, spec, src_arg, strerror(errno));
		m.is_dir = S_ISDIR(st.st_mode);
		m.dev = st.st_dev;
		m.ino = st.st_ino;
		if (!colon && src_arg[0] == '/') {
			/* the default DST is SRC as written, or its canonical
			 * path if it cannot stand as one (e.g. it has '..') */
			m.dst = normalise_dst(src_arg, &why);
			if (!m.dst)
				dst_arg = m.src;
		} else if (!colon) {
			dst_arg = m.src; /* a relative SRC, made absolute */
		}
	}
	if (!m.dst)
		m.dst = normalise_dst(dst_arg, &why);
	if (!m.dst) {
		r = af_err_usage(err, EINVAL, "invalid %s '%s': destination '%s': %s", opt, spec,
				 dst_arg, why);
		if (dst_arg[0] != '/')
			af_err_hint(err, "write the destination inside the sandbox as an absolute "
					 "path, e.g. '/mnt/%s'", dst_arg);
		free(m.src);
		return r;
	}
	for (const char *const *p = reserved; *p; p++)
		if (mounts_path_under(m.dst, *p)) {
			r = af_err_usage(err, EINVAL,
					 "invalid %s '%s': destination '%s' %s '%s', which the "
					 "sandbox builds itself", opt, spec, m.dst,
					 strcmp(m.dst, *p) == 0 ? "would cover" : "is inside", *p);
			if (strcmp(*p, "/workspace") == 0)
				af_err_hint(err, "/workspace is the project's view; mount somewhere "
						 "else, e.g. '/mnt%s'", m.dst + strlen(*p));
			free(m.src);
			free(m.dst);
			return r;
		}
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].dst, m.dst) == 0) {
			r = af_err_usage(err, EINVAL,
					 "invalid %s '%s': destination '%s' is already used by %s",
					 opt, spec, m.dst, mount_kind_option(l->v[i].kind));
			free(m.src);
			free(m.dst);
			return r;
		}
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n++] = m;
	return 0;
}

/* A file system at or below path (or holding path) that a bind must
 * not carry into the sandbox, or NULL.  A bind is recursive: "proc"
 * (another procfs, say a chroot's, shows the host's processes), and for
 * a writable bind "cgroup" (the cgroups agentfense makes for the limits
 * belong to the invoking user: the command could lift its own). */
static const char *bad_fs_at(const char *path, bool writable)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return NULL;
	char *line = NULL;
	size_t cap = 0;
	const char *bad = NULL;
	while (!bad && getline(&line, &cap, f) > 0) {
		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [FIELDS...] - FSTYPE ... */
		char *sep = strstr(line, " - ");
		char *save = NULL, *mnt = strtok_r(line, " ", &save);
		for (int i = 1; mnt && i < 5; i++)
			mnt = strtok_r(NULL, " ", &save);
		char fstype[32] = "";
		if (!mnt || !sep || mnt > sep || sscanf(sep + 3, "%31s", fstype) != 1)
			continue;
		const char *kind = strcmp(fstype, "proc") == 0 ? "proc"
				   : writable && (strcmp(fstype, "cgroup") == 0 ||
						  strcmp(fstype, "cgroup2") == 0)
					   ? "cgroup"
					   : NULL;
		if (!kind)
			continue;
		mountinfo_unescape(mnt);
		if (mounts_paths_overlap(mnt, path))
			bad = kind;
	}
	free(line);
	fclose(f);
	return bad;
}

int mounts_check(const struct mount_list *l, const char *real_project, const char *state_real,
		 const char *cache_real, struct af_err *err)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct mount_spec *m = &l->v[i];
		int r;
		if (!m->src)
			continue;
		if (mounts_host_overlap(m->src, real_project)) {
			bool in = mounts_host_under(m->src, real_project);
			bool holds = mounts_host_under(real_project, m->src);
			r = af_err_usage(err, EINVAL,
					 "cannot bind '%s' (%s): it %s the project '%s', which the "
					 "sandbox shows only through the view",
					 m->src, mount_kind_option(m->kind),
					 in && holds ? "is" : in ? "is inside" : "holds", real_project);
			af_err_hint(err, "the project is at /workspace, filtered by the policy; bind "
					 "a directory outside it");
			return r;
		}
		if (state_real && mounts_host_overlap(m->src, state_real)) {
			r = af_err_usage(err, EINVAL,
					 "cannot bind '%s' (%s): it overlaps agentfense's state "
					 "directory '%s'", m->src, mount_kind_option(m->kind), state_real);
			af_err_hint(err, "the state directory holds the changes of every run; bind "
					 "a directory outside it, or point XDG_STATE_HOME elsewhere");
			return r;
		}
		/* an image is unpacked once and reused as it is: a command
		 * that could write there would choose what every later run
		 * of that image executes */
		if (m->kind == MOUNT_BIND && cache_real && mounts_host_overlap(m->src, cache_real)) {
			r = af_err_usage(err, EINVAL,
					 "cannot bind '%s' (%s): it overlaps agentfense's image "
					 "cache '%s'", m->src, mount_kind_option(m->kind), cache_real);
			af_err_hint(err, "runs with --image trust what is there; bind it read-only, "
					 "or only the part you need");
			return r;
		}
		const char *bad = m->kind == MOUNT_TMPFS ? NULL : bad_fs_at(m->src, m->kind == MOUNT_BIND);
		if (bad && strcmp(bad, "cgroup") == 0) {
			r = af_err_usage(err, EINVAL,
					 "cannot bind '%s' (%s): it shows a cgroup file system "
					 "writable, where the command could lift its own --memory, "
					 "--cpus and --pids limits", m->src, mount_kind_option(m->kind));
			af_err_hint(err, "use --ro-bind to show it read-only");
			return r;
		}
		if (bad) {
			r = af_err_usage(err, EINVAL,
					 "cannot bind '%s' (%s): a proc file system is mounted in it, "
					 "which shows the host's processes", m->src,
					 mount_kind_option(m->kind));
			af_err_hint(err, "bind the directories you need, not the one holding it");
			return r;
		}
	}
	return 0;
}

static int cmp_dst(const void *a, const void *b)
{
	const struct mount_spec *x = a, *y = b;
	return strcmp(x->dst, y->dst);
}

void mounts_sort(struct mount_list *l)
{
	/* a path sorts before every path that extends it, so a mount
	 * comes after the ones it lies in */
	if (l->n > 1)
		qsort(l->v, l->n, sizeof(*l->v), cmp_dst);
}

void mounts_copy(struct mount_list *dst, const struct mount_spec *v, size_t n)
{
	dst->n = n;
	dst->v = n ? xcalloc(n, sizeof(*v)) : NULL;
	for (size_t i = 0; i < n; i++) {
		dst->v[i] = v[i];
		dst->v[i].src = v[i].src ? xstrdup(v[i].src) : NULL;
		dst->v[i].dst = xstrdup(v[i].dst);
	}
}

void mounts_free(struct mount_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].src);
		free(l->v[i].dst);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}
