/* reslimits.c - memory, CPU and process limits for one sandbox (see
 * reslimits.h): parsing, choosing a backend, the cgroup files, rlimits.
 *
 * cgroup paths come from the kernel (/proc/self/cgroup and
 * /proc/self/mountinfo), never from the user; once a directory is
 * chosen everything below it is reached through directory fds. */
#include "sandbox/reslimits.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "common/units.h"

#define MEMORY_MIN (4ULL << 20)
#define DISK_MIN (1ULL << 20)
#define PIDS_MAX 4194304 /* PID_MAX_LIMIT */
#define CPUS_MAX 1024

static const char *const ctl_name[LIMITS_NCTL] = { "memory", "pids", "cpu" };
static const char *const ctl_option[LIMITS_NCTL] = { "--memory", "--pids", "--cpus" };

/* One cgroup directory we created for the sandbox. */
struct cg_leaf {
	int parent_fd;       /* O_PATH: where to rmdir it from */
	int fd;              /* O_PATH | O_DIRECTORY */
	int version;         /* 1 or 2 */
	char name[64];
	char path[PATH_MAX]; /* for messages */
};

struct limits {
	struct limits_spec spec;
	enum limits_backend backend[LIMITS_NCTL];
	struct cg_leaf leaf[LIMITS_NCTL];
	size_t n_leaves;
	int leaf_of[LIMITS_NCTL]; /* index into leaf[], or -1 */
	/* the fallback, ready for a child that cannot compute anything */
	bool set_nproc, set_as;
	struct rlimit nproc, as;
	/* why no cgroup could take each controller, for the warnings */
	char why[LIMITS_NCTL][512];
	struct limits_warning warn[LIMITS_NCTL];
	size_t n_warn;
};

/* snprintf for messages and paths that may be cut short (a cgroup path
 * near PATH_MAX is not one we can use anyway). */
static AF_PRINTF(3, 4) void sfmt(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

/* --- parsing --------------------------------------------------------------- */

/* A size for option opt (common/units.h), at least min (min_text: it
 * as written, e.g. "4M").  Returns 0, or -EINVAL with *err filled (a
 * usage error). */
static int size_option(const char *s, const char *opt, uint64_t min, const char *min_text,
		       uint64_t *out, struct af_err *err)
{
	uint64_t v;
	int r = parse_size(s, &v);

	if (r == -ERANGE)
		return af_err_usage(err, EINVAL, "invalid value '%s' for %s: too large", s, opt);
	if (r < 0)
		return af_err_usage(err, EINVAL, "invalid value '%s' for %s: expected a size "
				    "such as 512M, 1.5G or 1GiB (see agentfense(1), DURATIONS "
				    "AND SIZES)", s, opt);
	if (v < min)
		return af_err_usage(err, EINVAL, "invalid value '%s' for %s: the sandbox "
				    "needs at least %s", s, opt, min_text);
	*out = v;
	return 0;
}

int limits_parse_memory(const char *s, uint64_t *out, struct af_err *err)
{
	return size_option(s, "--memory", MEMORY_MIN, "4M", out, err);
}

int limits_parse_disk(const char *s, uint64_t *out, struct af_err *err)
{
	return size_option(s, "--disk-limit", DISK_MIN, "1M", out, err);
}

int limits_parse_cpus(const char *s, uint32_t *quota, struct af_err *err)
{
	/* digits and one dot only: no sign, exponent, hex, inf or nan */
	size_t digits = strspn(s, "0123456789"), dots = 0;
	for (const char *p = s; *p; p++) {
		if (*p == '.')
			dots++;
		else if (*p < '0' || *p > '9')
			dots = 2;
	}
	if (!*s || dots > 1 || (digits == 0 && s[0] != '.') || strcmp(s, ".") == 0)
		return af_err_usage(err, EINVAL, "invalid value '%s' for --cpus: expected a "
				    "number of CPUs such as 1 or 0.5", s);
	double v = strtod(s, NULL);
	/* the kernel's smallest quota is 1 ms per period */
	if (v < 0.01 || v > CPUS_MAX)
		return af_err_usage(err, EINVAL, "invalid value '%s' for --cpus: expected 0.01 "
				    "to %d CPUs", s, CPUS_MAX);
	*quota = (uint32_t)(v * LIMITS_CPU_PERIOD_US + 0.5);
	return 0;
}

int limits_parse_pids(const char *s, uint32_t *out, struct af_err *err)
{
	uint64_t v = 0;
	const char *p = s;

	for (; *p >= '0' && *p <= '9' && v <= PIDS_MAX; p++)
		v = v * 10 + (uint64_t)(*p - '0');
	if (p == s || *p || v < 2 || v > PIDS_MAX)
		return af_err_usage(err, EINVAL, "invalid value '%s' for --pids: expected 2 to %d "
				    "processes (the sandbox's init is one of them)", s, PIDS_MAX);
	*out = (uint32_t)v;
	return 0;
}

void limits_format_size(uint64_t b, char *buf, size_t len)
{
	static const char *const unit[] = { "TiB", "GiB", "MiB", "KiB" };
	for (unsigned i = 0; i < ARRAY_SIZE(unit); i++) {
		unsigned shift = 40 - 10 * i;
		if (b && (b & ((1ULL << shift) - 1)) == 0) {
			sfmt(buf, len, "%" PRIu64 " %s", b >> shift, unit[i]);
			return;
		}
	}
	sfmt(buf, len, "%" PRIu64 " bytes", b);
}

/* --- cgroup files ---------------------------------------------------------- */

/* Write text to file in directory dfd.  Returns 0 or -errno. */
static int cg_write(int dfd, const char *file, const char *text)
{
	autoclose int fd = openat(dfd, file, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, text, strlen(text));
	if (n < 0)
		return -errno;
	return (size_t)n == strlen(text) ? 0 : -EIO;
}

/* Read file in dfd into buf (NUL-terminated).  Returns 0 or -errno. */
static int cg_read(int dfd, const char *file, char *buf, size_t len)
{
	autoclose int fd = openat(dfd, file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	ssize_t n = read_full(fd, buf, len - 1);
	if (n < 0)
		return (int)n;
	buf[n] = '\0';
	return 0;
}

/* The number after "key " on a line of a flat-keyed file, or 0. */
static uint64_t cg_key(int dfd, const char *file, const char *key)
{
	char buf[4096];
	size_t n = strlen(key);
	if (cg_read(dfd, file, buf, sizeof(buf)) < 0)
		return 0;
	for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
		if (strncmp(line, key, n) == 0 && line[n] == ' ')
			return strtoull(line + n + 1, NULL, 10);
	return 0;
}

/* The whole of a one-number file, or 0. */
static uint64_t cg_number(int dfd, const char *file)
{
	char buf[64];
	return cg_read(dfd, file, buf, sizeof(buf)) < 0 ? 0 : strtoull(buf, NULL, 10);
}

/* True if word is an item of list (items separated by sep characters). */
static bool has_item(const char *list, const char *word, const char *sep)
{
	size_t n = strlen(word);
	for (const char *p = list; *p; p += strcspn(p, sep), p += strspn(p, sep))
		if (strncmp(p, word, n) == 0 && (p[n] == '\0' || strchr(sep, p[n])))
			return true;
	return false;
}

/* Can we create cgroups in dir and move processes into it?  0 or -errno. */
static int cg_writable(const char *dir, int version)
{
	char f[PATH_MAX];
	if (access(dir, W_OK) < 0)
		return -errno;
	sfmt(f, sizeof(f), "%s/cgroup.procs", dir);
	if (access(f, W_OK) < 0)
		return -errno;
	if (version == 2) {
		sfmt(f, sizeof(f), "%s/cgroup.subtree_control", dir);
		if (access(f, W_OK) < 0)
			return -errno;
	}
	return 0;
}

/* Our cgroup directory in the v2 hierarchy (ctl NULL) or in the v1
 * hierarchy of controller ctl: the hierarchy's mount point plus our
 * path in it.  *top gets the mount point (the highest directory we may
 * walk up to).  Returns 0 or -ENOENT (no such hierarchy mounted, or we
 * are outside the part mounted). */
static int own_cgroup(const char *ctl, char *dir, size_t len, char *top, size_t toplen)
{
	char path[PATH_MAX] = "", line[PATH_MAX * 2 + 512];
	bool found = false;

	FILE *f = fopen("/proc/self/cgroup", "re");
	if (!f)
		return -ENOENT;
	while (!found && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		char *ctls = strchr(line, ':');
		char *p = ctls ? strchr(ctls + 1, ':') : NULL;
		if (!p)
			continue;
		*p++ = '\0';
		ctls++;
		if (ctl ? has_item(ctls, ctl, ",") : (strcmp(line, "0") == 0 && !*ctls)) {
			sfmt(path, sizeof(path), "%s", p);
			found = true;
		}
	}
	fclose(f);
	if (!found)
		return -ENOENT;

	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -ENOENT;
	found = false;
	while (!found && fgets(line, sizeof(line), f)) {
		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPER */
		char *field[6] = { 0 }, *save = NULL, *tok;
		int i = 0;
		for (tok = strtok_r(line, " \n", &save); tok && i < 5; tok = strtok_r(NULL, " \n", &save))
			field[i++] = tok;
		while (tok && strcmp(tok, "-") != 0)
			tok = strtok_r(NULL, " \n", &save);
		char *fstype = strtok_r(NULL, " \n", &save);
		strtok_r(NULL, " \n", &save);
		char *super = strtok_r(NULL, " \n", &save);
		if (i < 5 || !fstype || !super)
			continue;
		if (ctl ? strcmp(fstype, "cgroup") != 0 || !has_item(super, ctl, ",")
			: strcmp(fstype, "cgroup2") != 0)
			continue;
		char *root = field[3], *mnt = field[4];
		mountinfo_unescape(root);
		mountinfo_unescape(mnt);
		size_t n = strcmp(root, "/") == 0 ? 0 : strlen(root);
		if (strncmp(path, root, n) != 0 || (path[n] != '\0' && path[n] != '/'))
			continue;
		sfmt(dir, len, "%s%s", mnt, path + n);
		sfmt(top, toplen, "%s", mnt);
		/* "/sys/fs/cgroup/memory/" for a path of "/" */
		size_t dl = strlen(dir);
		if (dl > 1 && dir[dl - 1] == '/')
			dir[dl - 1] = '\0';
		found = true;
	}
	fclose(f);
	return found ? 0 : -ENOENT;
}

/* Remove a leaf left by an agentfense that died without cleaning up
 * (SIGKILL): named after a process that no longer exists, and empty
 * (rmdir fails on a cgroup that holds processes). */
static int remove_stale(int dfd, const struct dirent *de, void *arg)
{
	(void)arg;
	int pid;
	char rest[32];
	if (sscanf(de->d_name, "agentfense-%d-%31s", &pid, rest) == 2 && pid > 0 &&
	    kill(pid, 0) < 0 && errno == ESRCH)
		unlinkat(dfd, de->d_name, AT_REMOVEDIR);
	return 0;
}

/* Create a uniquely named leaf in the directory at path/fd.  Returns 0
 * with *leaf filled (fds owned by it), or -errno. */
static int make_leaf(const char *path, int version, struct cg_leaf *leaf)
{
	autoclose int pfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0)
		return -errno;
	for_each_dir_entry(pfd, remove_stale, NULL);
	for (int tries = 0; tries < 16; tries++) {
		uint32_t r;
		if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
			r = (uint32_t)time(NULL) ^ ((uint32_t)tries << 16);
		sfmt(leaf->name, sizeof(leaf->name), "agentfense-%d-%08" PRIx32, (int)getpid(), r);
		if (mkdirat(pfd, leaf->name, 0755) < 0) {
			if (errno == EEXIST)
				continue;
			return -errno;
		}
		leaf->fd = openat(pfd, leaf->name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (leaf->fd < 0) {
			int e = errno;
			unlinkat(pfd, leaf->name, AT_REMOVEDIR);
			return -e;
		}
		leaf->parent_fd = steal_fd(&pfd);
		leaf->version = version;
		sfmt(leaf->path, sizeof(leaf->path), "%s/%s", path, leaf->name);
		return 0;
	}
	return -EEXIST;
}

/* Write one limit file of a leaf; a refused value is the user's to fix
 * (a usage error).  Returns 0 or -errno with *err filled. */
static int write_limit(const struct cg_leaf *leaf, enum limits_ctl c, const char *file,
		       const char *value, const char *arg, struct af_err *err)
{
	int r = cg_write(leaf->fd, file, value);
	if (r == 0)
		return 0;
	if (r == -EINVAL) {
		af_err_usage(err, EINVAL, "cannot apply %s %s: '%s/%s' refuses '%s': %s",
			     ctl_option[c], arg, leaf->path, file, value, strerror(EINVAL));
		af_err_hint(err, "a cgroup above it may allow less: ask for less");
		return -EINVAL;
	}
	return af_err_set(err, -r, "cannot write '%s/%s': %s", leaf->path, file, strerror(-r));
}

/* Write limit c into a leaf.  Returns 0 or -errno with *err filled. */
static int set_limit(const struct limits *l, const struct cg_leaf *leaf, enum limits_ctl c,
		     struct af_err *err)
{
	char v[64], arg[64];
	int r;

	switch (c) {
	case LIMITS_MEMORY:
		sfmt(v, sizeof(v), "%" PRIu64, l->spec.memory);
		limits_format_size(l->spec.memory, arg, sizeof(arg));
		if (leaf->version == 2) {
			if ((r = write_limit(leaf, c, "memory.max", v, arg, err)) < 0)
				return r;
			/* Without swap accounting there is no such file; RAM
			 * is bounded by memory.max either way. */
			cg_write(leaf->fd, "memory.swap.max", "0");
			return 0;
		}
		if ((r = write_limit(leaf, c, "memory.limit_in_bytes", v, arg, err)) < 0)
			return r;
		cg_write(leaf->fd, "memory.memsw.limit_in_bytes", v); /* swap too, if accounted */
		return 0;
	case LIMITS_PIDS:
		sfmt(v, sizeof(v), "%" PRIu32, l->spec.pids);
		return write_limit(leaf, c, "pids.max", v, v, err);
	case LIMITS_CPU:
		sfmt(arg, sizeof(arg), "%g", (double)l->spec.cpu_quota / LIMITS_CPU_PERIOD_US);
		if (leaf->version == 2) {
			sfmt(v, sizeof(v), "%" PRIu32 " %d", l->spec.cpu_quota, LIMITS_CPU_PERIOD_US);
			return write_limit(leaf, c, "cpu.max", v, arg, err);
		}
		sfmt(v, sizeof(v), "%d", LIMITS_CPU_PERIOD_US);
		if ((r = write_limit(leaf, c, "cpu.cfs_period_us", v, arg, err)) < 0)
			return r;
		sfmt(v, sizeof(v), "%" PRIu32, l->spec.cpu_quota);
		return write_limit(leaf, c, "cpu.cfs_quota_us", v, arg, err);
	case LIMITS_NCTL:
		break;
	}
	return 0;
}

static bool wanted(const struct limits *l, enum limits_ctl c)
{
	switch (c) {
	case LIMITS_MEMORY:
		return l->spec.memory > 0;
	case LIMITS_PIDS:
		return l->spec.pids > 0;
	case LIMITS_CPU:
		return l->spec.cpu_quota > 0;
	case LIMITS_NCTL:
		break;
	}
	return false;
}

/* cgroup v2.  Processes may only live in leaves (the "no internal
 * processes" rule), and moving one needs write access to the common
 * ancestor of where it is and where it goes.  So: walk up from our own
 * cgroup while we can write, to the top of what was delegated to us
 * (user@UID.service under systemd, the root for root); under it keep an
 * "agentfense" cgroup that never holds a process, with the controllers
 * enabled for its children; one leaf per sandbox in it.  Takes what it
 * can of the wanted controllers; sets l->why for the others.
 * Returns 0 or -errno with *err filled (a limit that cannot be written). */
static int try_cgroup2(struct limits *l, struct af_err *err)
{
	char own[PATH_MAX], top[PATH_MAX], dir[PATH_MAX], buf[512], ctl[32];
	unsigned take = 0;
	int r;

	if (own_cgroup(NULL, own, sizeof(own), top, sizeof(top)) < 0) {
		for (int c = 0; c < LIMITS_NCTL; c++)
			sfmt(l->why[c], sizeof(l->why[c]), "no cgroup2 hierarchy");
		return 0;
	}
	if ((r = cg_writable(own, 2)) < 0) {
		for (int c = 0; c < LIMITS_NCTL; c++)
			sfmt(l->why[c], sizeof(l->why[c]), "cgroup '%s' is not writable: %s", own,
				 strerror(-r));
		return 0;
	}
	sfmt(dir, sizeof(dir), "%s", own);
	while (strcmp(dir, top) != 0) {
		char parent[PATH_MAX];
		sfmt(parent, sizeof(parent), "%s", dir);
		*strrchr(parent, '/') = '\0';
		if (strlen(parent) < strlen(top) || cg_writable(parent, 2) < 0)
			break;
		sfmt(dir, sizeof(dir), "%s", parent);
	}

	autoclose int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	char avail[512] = "", enabled[512] = "";
	if (dfd < 0 || cg_read(dfd, "cgroup.controllers", avail, sizeof(avail)) < 0 ||
	    cg_read(dfd, "cgroup.subtree_control", enabled, sizeof(enabled)) < 0) {
		for (int c = 0; c < LIMITS_NCTL; c++)
			sfmt(l->why[c], sizeof(l->why[c]), "cannot read cgroup '%s'", dir);
		return 0;
	}
	avail[strcspn(avail, "\n")] = '\0';
	enabled[strcspn(enabled, "\n")] = '\0';
	for (int c = 0; c < LIMITS_NCTL; c++) {
		if (!wanted(l, c))
			continue;
		if (!has_item(avail, ctl_name[c], " ")) {
			sfmt(l->why[c], sizeof(l->why[c]), "cgroup '%s' has no %s controller",
				 dir, ctl_name[c]);
			continue;
		}
		sfmt(ctl, sizeof(ctl), "+%s", ctl_name[c]);
		/* EBUSY: the cgroup holds processes (our own, if it is ours) */
		if (!has_item(enabled, ctl_name[c], " ") &&
		    (r = cg_write(dfd, "cgroup.subtree_control", ctl)) < 0) {
			sfmt(l->why[c], sizeof(l->why[c]), "cannot enable the %s controller in "
				 "'%s': %s", ctl_name[c], dir, strerror(-r));
			continue;
		}
		take |= 1u << c;
	}
	if (!take)
		return 0;

	/* the process-free parent of every sandbox's leaf */
	sfmt(buf, sizeof(buf), "%s/agentfense", dir);
	if (mkdirat(dfd, "agentfense", 0755) < 0 && errno != EEXIST) {
		r = -errno;
		for (int c = 0; c < LIMITS_NCTL; c++)
			if (take & (1u << c))
				sfmt(l->why[c], sizeof(l->why[c]), "cannot create cgroup '%s': %s",
					 buf, strerror(-r));
		return 0;
	}
	autoclose int afd = openat(dfd, "agentfense", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	for (int c = 0; c < LIMITS_NCTL; c++) {
		if (!(take & (1u << c)))
			continue;
		sfmt(ctl, sizeof(ctl), "+%s", ctl_name[c]);
		r = afd < 0 ? -errno : cg_write(afd, "cgroup.subtree_control", ctl);
		if (r < 0) {
			take &= ~(1u << c);
			sfmt(l->why[c], sizeof(l->why[c]), "cannot enable the %s controller in "
				 "'%s': %s", ctl_name[c], buf, strerror(-r));
		}
	}
	if (!take)
		return 0;

	struct cg_leaf *leaf = &l->leaf[l->n_leaves];
	if ((r = make_leaf(buf, 2, leaf)) < 0) {
		for (int c = 0; c < LIMITS_NCTL; c++)
			if (take & (1u << c))
				sfmt(l->why[c], sizeof(l->why[c]), "cannot create a cgroup in '%s': %s",
					 buf, strerror(-r));
		return 0;
	}
	int idx = (int)l->n_leaves++;
	for (int c = 0; c < LIMITS_NCTL; c++) {
		if (!(take & (1u << c)))
			continue;
		l->leaf_of[c] = idx;
		l->backend[c] = LIMITS_CGROUP2;
		if ((r = set_limit(l, leaf, c, err)) < 0)
			return r;
	}
	return 0;
}

/* cgroup v1: each controller has a hierarchy of its own (or shares one,
 * like cpu,cpuacct) and no rule against processes in inner cgroups, so
 * the sandbox's cgroup is a child of our own, if we can write there.
 * Returns 0 or -errno with *err filled. */
static int try_cgroup1(struct limits *l, enum limits_ctl c, struct af_err *err)
{
	char own[PATH_MAX], top[PATH_MAX];
	int r;

	if (own_cgroup(ctl_name[c], own, sizeof(own), top, sizeof(top)) < 0)
		return 0; /* l->why keeps the cgroup v2 reason */
	if ((r = cg_writable(own, 1)) < 0) {
		sfmt(l->why[c], sizeof(l->why[c]), "cgroup '%s' is not writable: %s", own,
			 strerror(-r));
		return 0;
	}
	/* a hierarchy shared with a controller already placed */
	int idx = -1;
	for (size_t i = 0; i < l->n_leaves; i++) {
		size_t n = strlen(own);
		if (l->leaf[i].version == 1 && strncmp(l->leaf[i].path, own, n) == 0 &&
		    l->leaf[i].path[n] == '/' && !strchr(l->leaf[i].path + n + 1, '/'))
			idx = (int)i;
	}
	if (idx < 0) {
		if ((r = make_leaf(own, 1, &l->leaf[l->n_leaves])) < 0) {
			sfmt(l->why[c], sizeof(l->why[c]), "cannot create a cgroup in '%s': %s",
				 own, strerror(-r));
			return 0;
		}
		idx = (int)l->n_leaves++;
	}
	l->leaf_of[c] = idx;
	l->backend[c] = LIMITS_CGROUP1;
	return set_limit(l, &l->leaf[idx], c, err);
}

/* True if the kernel counts RLIMIT_NPROC per user namespace (5.14+). */
static bool nproc_per_userns(void)
{
	struct utsname u;
	int major = 0, minor = 0;
	if (uname(&u) < 0 || sscanf(u.release, "%d.%d", &major, &minor) != 2)
		return false;
	return major > 5 || (major == 5 && minor >= 14);
}

static void add_warning(struct limits *l, enum limits_ctl c, const char *what)
{
	struct limits_warning *w = &l->warn[l->n_warn++];
	sfmt(w->msg, sizeof(w->msg), "%s %s: %s", ctl_option[c], what, l->why[c]);
	sfmt(w->hint, sizeof(w->hint),
		 "to limit the sandbox as a whole, run agentfense in a cgroup you can write to, "
		 "e.g. 'systemd-run --user --scope -p Delegate=yes agentfense run ...'");
}

/* The rlimit fallback for what no cgroup took, with warnings for what it
 * enforces less, or not at all. */
static void fall_back(struct limits *l)
{
	struct rlimit cur;

	if (wanted(l, LIMITS_PIDS) && l->backend[LIMITS_PIDS] == LIMITS_NONE) {
		/* Counted per (user namespace, uid) since 5.14, so it bounds
		 * the sandbox (its init included), not all our processes;
		 * root is exempt from it. */
		if (geteuid() == 0 || !nproc_per_userns()) {
			l->backend[LIMITS_PIDS] = LIMITS_UNENFORCED;
			add_warning(l, LIMITS_PIDS, geteuid() == 0
				    ? "is not enforced (RLIMIT_NPROC does not apply to root)"
				    : "is not enforced (RLIMIT_NPROC is per sandbox only since Linux 5.14)");
		} else {
			l->backend[LIMITS_PIDS] = LIMITS_RLIMIT;
			l->set_nproc = true;
			l->nproc.rlim_cur = l->nproc.rlim_max = l->spec.pids;
			if (getrlimit(RLIMIT_NPROC, &cur) == 0 && cur.rlim_max < l->spec.pids)
				l->nproc.rlim_cur = l->nproc.rlim_max = cur.rlim_max;
			/* the kernel counts no refused fork there: the
			 * sandbox's PID 1 counts the tasks before each reap
			 * (see sandbox.c, struct nproc_watch) */
			add_warning(l, LIMITS_PIDS, "is applied with RLIMIT_NPROC, not a pids cgroup");
		}
	}
	if (wanted(l, LIMITS_MEMORY) && l->backend[LIMITS_MEMORY] == LIMITS_NONE) {
		l->backend[LIMITS_MEMORY] = LIMITS_RLIMIT;
		l->set_as = true;
		l->as.rlim_cur = l->as.rlim_max = l->spec.memory;
		if (getrlimit(RLIMIT_AS, &cur) == 0 && cur.rlim_max < l->spec.memory)
			l->as.rlim_cur = l->as.rlim_max = cur.rlim_max;
		add_warning(l, LIMITS_MEMORY, "is applied per process (RLIMIT_AS), not to the "
			    "sandbox as a whole");
	}
	if (wanted(l, LIMITS_CPU) && l->backend[LIMITS_CPU] == LIMITS_NONE) {
		l->backend[LIMITS_CPU] = LIMITS_UNENFORCED;
		add_warning(l, LIMITS_CPU, "is not enforced");
	}
}

int limits_new(const struct limits_spec *spec, struct limits **out, struct af_err *err)
{
	int r;

	*out = NULL;
	if (!spec->memory && !spec->pids && !spec->cpu_quota)
		return 0;
	struct limits *l = xcalloc(1, sizeof(*l));
	l->spec = *spec;
	for (int c = 0; c < LIMITS_NCTL; c++)
		l->leaf_of[c] = -1;
	if ((r = try_cgroup2(l, err)) < 0)
		goto fail;
	for (int c = 0; c < LIMITS_NCTL; c++)
		if (wanted(l, c) && l->backend[c] == LIMITS_NONE &&
		    (r = try_cgroup1(l, c, err)) < 0)
			goto fail;
	fall_back(l);
	*out = l;
	return 0;
fail:
	limits_free(l);
	return r;
}

enum limits_backend limits_backend(const struct limits *l, enum limits_ctl ctl)
{
	return l ? l->backend[ctl] : LIMITS_NONE;
}

const struct limits_warning *limits_warnings(const struct limits *l, size_t *n)
{
	*n = l ? l->n_warn : 0;
	return l ? l->warn : NULL;
}

const char *limits_cgroup_path(const struct limits *l, enum limits_ctl ctl)
{
	return l && l->leaf_of[ctl] >= 0 ? l->leaf[l->leaf_of[ctl]].path : NULL;
}

int limits_attach(const struct limits *l, pid_t pid, struct af_err *err)
{
	char v[32];
	if (!l)
		return 0;
	sfmt(v, sizeof(v), "%d", (int)pid);
	for (size_t i = 0; i < l->n_leaves; i++) {
		int r = cg_write(l->leaf[i].fd, "cgroup.procs", v);
		if (r < 0) {
			af_err_set(err, -r, "cannot move the sandbox into cgroup '%s': %s",
				   l->leaf[i].path, strerror(-r));
			if (l->leaf[i].version == 2)
				af_err_hint(err, "moving a process needs write access to the cgroup "
						 "that holds both it and the new cgroup");
			return r;
		}
	}
	return 0;
}

int limits_apply_rlimits(const struct limits *l)
{
	if (!l)
		return 0;
	if (l->set_nproc && setrlimit(RLIMIT_NPROC, &l->nproc) < 0)
		return -1;
	if (l->set_as && setrlimit(RLIMIT_AS, &l->as) < 0)
		return -1;
	return 0;
}

void limits_get_rlimits(const struct limits *l, struct limits_rlimits *out)
{
	memset(out, 0, sizeof(*out));
	if (!l)
		return;
	out->set_nproc = l->set_nproc;
	out->nproc = l->nproc;
	out->set_as = l->set_as;
	out->as = l->as;
}

int limits_set_rlimits(const struct limits_rlimits *rl)
{
	if (rl->set_nproc && setrlimit(RLIMIT_NPROC, &rl->nproc) < 0)
		return -1;
	if (rl->set_as && setrlimit(RLIMIT_AS, &rl->as) < 0)
		return -1;
	return 0;
}

uint64_t limits_nproc_fallback(const struct limits *l)
{
	return l && l->backend[LIMITS_PIDS] == LIMITS_RLIMIT && l->set_nproc
		       ? (uint64_t)l->nproc.rlim_cur
		       : 0;
}

void limits_usage(const struct limits *l, struct limits_usage *u)
{
	memset(u, 0, sizeof(*u));
	if (!l)
		return;
	if (l->leaf_of[LIMITS_MEMORY] >= 0) {
		const struct cg_leaf *m = &l->leaf[l->leaf_of[LIMITS_MEMORY]];
		if (m->version == 2) {
			u->oom_kills = cg_key(m->fd, "memory.events", "oom_kill");
			u->memory_peak = cg_number(m->fd, "memory.peak");
		} else {
			u->oom_kills = cg_key(m->fd, "memory.oom_control", "oom_kill");
			u->memory_peak = cg_number(m->fd, "memory.max_usage_in_bytes");
		}
	}
	if (l->leaf_of[LIMITS_PIDS] >= 0)
		u->pids_refused = cg_key(l->leaf[l->leaf_of[LIMITS_PIDS]].fd, "pids.events", "max");
}

void limits_free(struct limits *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n_leaves; i++) {
		struct cg_leaf *leaf = &l->leaf[i];
		/* Everything in it died with the sandbox's PID namespace;
		 * cgroup.kill (v2, 5.14+) makes sure, and the kernel may
		 * take a moment to let go of the dead. */
		if (leaf->version == 2)
			cg_write(leaf->fd, "cgroup.kill", "1");
		for (int tries = 0; tries < 200; tries++) {
			if (unlinkat(leaf->parent_fd, leaf->name, AT_REMOVEDIR) == 0 ||
			    (errno != EBUSY && errno != EAGAIN))
				break;
			struct timespec ts = { 0, 10 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
		close(leaf->fd);
		close(leaf->parent_fd);
	}
	free(l);
}
