/* delta.c - the run directory of a delta: creation, base records, the
 * manifest and removal (sync lives in sync.c).
 *
 * Manifest format (written by delta_save, read back by tools that review
 * a kept delta).  Text, one record per line, '#' starts a comment line:
 *
 *   # agentfense manifest 1
 *   E MODE INO SIZE MTIME CTIME PATH    the path existed in the project
 *   N - - - - - PATH                    the path did not exist
 *
 * MODE is the full st_mode in octal (type bits included), INO and SIZE
 * decimal, MTIME and CTIME "SECONDS.NANOSECONDS".  PATH is the rest of
 * the line after the sixth space: the view path with a leading '/' ("/"
 * for the project root), escaped with delta_escape() (backslash, newline,
 * tab and other control bytes become \\ \n \t \xHH; every other byte,
 * UTF-8 included, is written as is).  Records are sorted by PATH. */
#include "delta/delta.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>

#include "delta/delta_int.h"

struct base_slot {
	char *path; /* NULL: empty slot */
	uint64_t hash;
	struct delta_base base;
};

struct delta {
	char *path;         /* run directory */
	char *project_path; /* for the info file */
	int state_fd;       /* state directory (parent of the run directory) */
	char *name;         /* run directory's name inside the state directory */
	int dir_fd, upper_fd, work_fd;
	bool removed;

	pthread_mutex_t lock; /* guards the base table */
	struct base_slot *slots;
	size_t nslots, count;

	uint64_t disk_limit; /* bytes; 0: none (set before the view starts) */
	uint64_t disk_used;  /* charged and reserved bytes (atomic) */
	bool disk_full;      /* a reservation was refused (atomic) */

	char **shown; /* paths made to be read whatever the policy says */
	size_t nshown;
};

/* ---- small helpers shared with sync.c --------------------------------- */

char *delta_escape(const char *s)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		n += (*p == '\\' || *p == '\n' || *p == '\t') ? 2 : (*p < 0x20 || *p == 0x7f) ? 4 : 1;
	char *out = xmalloc(n + 1), *o = out;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '\\') {
			*o++ = '\\';
			*o++ = '\\';
		} else if (*p == '\n') {
			*o++ = '\\';
			*o++ = 'n';
		} else if (*p == '\t') {
			*o++ = '\\';
			*o++ = 't';
		} else if (*p < 0x20 || *p == 0x7f) {
			o += sprintf(o, "\\x%02x", *p);
		} else {
			*o++ = (char)*p;
		}
	}
	*o = '\0';
	return out;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *delta_unescape(const char *s)
{
	autofree char *out = xmalloc(strlen(s) + 1);
	char *o = out;
	for (const char *p = s; *p; p++) {
		if (*p != '\\') {
			*o++ = *p;
			continue;
		}
		p++;
		if (*p == '\\')
			*o++ = '\\';
		else if (*p == 'n')
			*o++ = '\n';
		else if (*p == 't')
			*o++ = '\t';
		else if (*p == 'x' && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
			int v = hexval(p[1]) * 16 + hexval(p[2]);
			if (v == 0)
				return NULL;
			*o++ = (char)v;
			p += 2;
		} else
			return NULL;
	}
	*o = '\0';
	return steal_pointer(&out);
}

struct name_list {
	char **v;
	size_t n, cap;
};

static int add_name(int dirfd, const struct dirent *de, void *arg)
{
	(void)dirfd;
	struct name_list *l = arg;
	if (l->n + 2 > l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = xstrdup(de->d_name);
	l->v[l->n] = NULL;
	return 0;
}

/* List the names in directory fd (not "." and ".."), sorted; the fd is
 * not consumed.  Returns 0 and a NULL-terminated array in *out, or -errno. */
int delta_list_dir(int fd, char ***out)
{
	struct name_list l = { 0 };
	int r = for_each_dir_entry(fd, add_name, &l);
	if (r < 0) {
		delta_free_names(l.v);
		return r;
	}
	if (!l.v)
		l.v = xcalloc(1, sizeof(*l.v));
	qsort(l.v, l.n, sizeof(*l.v), delta_cmp_names);
	*out = l.v;
	return 0;
}

int delta_cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void delta_free_names(char **names)
{
	if (!names)
		return;
	for (size_t i = 0; names[i]; i++)
		free(names[i]);
	free(names);
}

/* Make sure we may list and change directory NAME in fd (we own it: it
 * is in our delta, or a project directory we are deleting).  Returns the
 * mode it had (for restoring), or -errno. */
int delta_make_writable(int fd, const char *name, const struct stat *st)
{
	mode_t want = (st->st_mode & 07777) | S_IRWXU;
	if ((st->st_mode & S_IRWXU) == S_IRWXU)
		return (int)(st->st_mode & 07777);
	/* fchmodat follows a final symlink; callers only pass directories
	 * they have just lstat'ed in a tree nobody else writes to */
	if (fchmodat(fd, name, want, 0) < 0)
		return -errno;
	return (int)(st->st_mode & 07777);
}

/* Remove NAME in directory fd and everything below it, never following
 * a symlink, making read-only directories writable as needed.  Returns 0
 * or -errno (ENOENT is not an error). */
int delta_rm_rf_at(int fd, const char *name)
{
	struct stat st;
	if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(fd, name, 0) < 0 && errno != ENOENT ? -errno : 0;

	int r = delta_make_writable(fd, name, &st);
	if (r < 0 && geteuid() != 0)
		return r;
	autoclose int dfd = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	char **names;
	r = delta_list_dir(dfd, &names);
	if (r < 0)
		return r;
	int first = 0;
	for (size_t i = 0; names[i]; i++) {
		r = delta_rm_rf_at(dfd, names[i]);
		if (r < 0 && !first)
			first = r;
	}
	delta_free_names(names);
	if (first)
		return first;
	if (unlinkat(fd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

/* Write buf to NAME in dirfd atomically: temp file, rename; if durable,
 * with an fsync of the file before and of the directory after.  Returns
 * 0 or -errno. */
static int write_atomic(int dirfd, const char *name, const char *buf, size_t len, bool durable)
{
	autofree char *tmp = xasprintf(".%s.tmp-%ld", name, (long)getpid());
	int r;
	autoclose int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
				  0600);
	if (fd < 0)
		return -errno;
	r = write_all(fd, buf, len);
	if (r == 0 && durable && fsync(fd) < 0)
		r = -errno;
	if (r == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
		r = -errno;
	if (r < 0) {
		unlinkat(dirfd, tmp, 0);
		return r;
	}
	if (durable && fsync(dirfd) < 0)
		return -errno;
	return 0;
}

/* fsync NAME in dirfd.  Returns 0 or -errno. */
static int fsync_at(int dirfd, const char *name)
{
	autoclose int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return fsync(fd) < 0 ? -errno : 0;
}

/* ---- state directory and creation -------------------------------------- */

char *delta_state_dir(struct af_err *err)
{
	return xdg_dir("XDG_STATE_HOME", ".local/state", "agentfense/runs", "state directory", err);
}

static void delta_init_table(struct delta *d)
{
	d->nslots = 64;
	d->slots = xcalloc(d->nslots, sizeof(*d->slots));
}

/* The info file: what a person (or a later review) needs to know about
 * a kept run directory.  Returns 0 or -errno. */
static int write_info(const struct delta *d, const char *created)
{
	autofree char *eproj = delta_escape(d->project_path);
	autofree char *info = xasprintf("# agentfense run\nversion %s\ncreated %s\npid %ld\nproject %s\n",
					AF_VERSION, created, (long)getpid(), eproj);
	/* not durable: a run directory is scratch until it is kept, and
	 * two fsyncs were a third of the start-up time; delta_save() makes
	 * it durable */
	return write_atomic(d->dir_fd, "info", info, strlen(info), false);
}

int delta_create(const char *state_dir, const char *project_path, struct delta **out,
		 struct af_err *err)
{
	int r;
	struct stat st;

	if (!state_dir || !state_dir[0])
		return af_err_set(err, EINVAL, "cannot create the delta: empty state directory");
	r = mkdir_p(state_dir);
	if (r < 0)
		return af_err_set(err, -r, "cannot create state directory '%s': %s", state_dir,
				  strerror(-r));
	autoclose int state_fd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (state_fd < 0)
		return af_err_set(err, errno, "cannot open state directory '%s': %s", state_dir,
				  strerror(errno));
	if (fstat(state_fd, &st) < 0)
		return af_err_set(err, errno, "cannot stat state directory '%s': %s", state_dir,
				  strerror(errno));
	/* another user's directory could be read or swapped under us */
	if (st.st_uid != geteuid()) {
		r = af_err_set(err, EPERM, "state directory '%s' is not owned by you", state_dir);
		af_err_hint(err, "set XDG_STATE_HOME to a directory of your own");
		return r;
	}

	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	char stamp[32], iso[32];
	strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
	strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm);
	autofree char *tmpl = xasprintf("%s/run-%s-%ld-XXXXXX", state_dir, stamp, (long)getpid());
	if (!mkdtemp(tmpl))
		return af_err_set(err, errno, "cannot create a run directory in '%s': %s", state_dir,
				  strerror(errno));

	struct delta *d = xcalloc(1, sizeof(*d));
	d->path = steal_pointer(&tmpl);
	d->name = xstrdup(strrchr(d->path, '/') + 1);
	d->project_path = xstrdup(project_path ? project_path : "");
	d->state_fd = steal_fd(&state_fd);
	d->dir_fd = d->upper_fd = d->work_fd = -1;
	pthread_mutex_init(&d->lock, NULL);
	delta_init_table(d);

	d->dir_fd = openat(d->state_fd, d->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (d->dir_fd < 0) {
		r = af_err_set(err, errno, "cannot open run directory '%s': %s", d->path,
			       strerror(errno));
		goto fail;
	}
	if (mkdirat(d->dir_fd, "upper", 0700) < 0 || mkdirat(d->dir_fd, "work", 0700) < 0) {
		r = af_err_set(err, errno, "cannot create '%s/upper' and 'work': %s", d->path,
			       strerror(errno));
		goto fail;
	}
	d->upper_fd = openat(d->dir_fd, "upper", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	d->work_fd = openat(d->dir_fd, "work", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (d->upper_fd < 0 || d->work_fd < 0) {
		r = af_err_set(err, errno, "cannot open '%s/upper' or 'work': %s", d->path,
			       strerror(errno));
		goto fail;
	}

	/* deletions are recorded as whiteouts: make sure this filesystem
	 * lets us create them before the sandbox starts relying on it */
	if (mknodat(d->work_fd, ".whiteout-probe", S_IFCHR | 0600, makedev(0, 0)) < 0) {
		int e = errno;
		r = af_err_set(err, e, "cannot create whiteouts in state directory '%s': %s",
			       state_dir, strerror(e));
		af_err_hint(err, "this needs Linux 5.8 or later and a filesystem that allows it;"
				 " set XDG_STATE_HOME to a directory on ext4, xfs, btrfs or tmpfs");
		goto fail;
	}
	unlinkat(d->work_fd, ".whiteout-probe", 0);

	r = write_info(d, iso);
	if (r < 0) {
		af_err_set(err, -r, "cannot write '%s/info': %s", d->path, strerror(-r));
		goto fail;
	}
	*out = d;
	return 0;

fail:
	delta_rm_rf_at(d->state_fd, d->name);
	delta_free(d);
	return r;
}

/* The value of line "key VALUE" of the info file dir_fd holds, unescaped
 * (malloc'd), or NULL. */
static char *info_value(int dir_fd, const char *key)
{
	autoclose int fd = openat(dir_fd, "info", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	char buf[64 << 10];
	ssize_t n = read_full(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		return NULL;
	buf[n] = '\0';
	size_t kl = strlen(key);
	for (char *line = buf, *end; *line; line = end + 1) {
		end = strchrnul(line, '\n');
		bool last = !*end;
		*end = '\0';
		if (strncmp(line, key, kl) == 0 && line[kl] == ' ')
			return delta_unescape(line + kl + 1);
		if (last)
			break;
	}
	return NULL;
}

/* Read the manifest back into the base table: a missing one leaves it
 * empty.  Returns 0, or -errno (-EINVAL: a malformed record). */
static int load_manifest(struct delta *d)
{
	int fd = openat(d->dir_fd, "manifest", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	FILE *f = fdopen(fd, "r");
	if (!f) {
		int e = errno;
		close(fd);
		return -e;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int r = 0;
	while (r == 0 && (len = getline(&line, &cap, f)) >= 0) {
		if (len && line[len - 1] == '\n')
			line[--len] = '\0';
		if (!len || line[0] == '#')
			continue;
		/* the path is what follows the sixth space */
		char *p = line;
		for (int i = 0; i < 6 && p; i++)
			p = strchr(p, ' ') ? strchr(p, ' ') + 1 : NULL;
		autofree char *path = p && *p == '/' ? delta_unescape(p + 1) : NULL;
		if (!path) {
			r = -EINVAL;
			break;
		}
		if (line[0] == 'N' && line[1] == ' ') {
			delta_note_base(d, path, NULL);
			continue;
		}
		unsigned mode;
		unsigned long long ino;
		long long size, ms, cs;
		long mns, cns;
		if (line[0] != 'E' || sscanf(line + 1, " %o %llu %lld %lld.%ld %lld.%ld ", &mode, &ino,
					     &size, &ms, &mns, &cs, &cns) != 7) {
			r = -EINVAL;
			break;
		}
		struct stat st = {
			.st_mode = (mode_t)mode,
			.st_ino = (ino_t)ino,
			.st_size = (off_t)size,
			.st_mtim = { .tv_sec = (time_t)ms, .tv_nsec = mns },
			.st_ctim = { .tv_sec = (time_t)cs, .tv_nsec = cns },
		};
		delta_note_base(d, path, &st);
	}
	if (r == 0 && ferror(f))
		r = -EIO;
	free(line);
	fclose(f);
	return r;
}

int delta_open(const char *state_dir, const char *path, const char *project_path,
	       struct delta **out, struct af_err *err)
{
	autofree char *state_real = realpath(state_dir, NULL);
	const char *slash = strrchr(path, '/');
	size_t sl = state_real ? strlen(state_real) : 0;
	/* only an entry of the state directory itself, by its own name */
	if (!state_real || !slash || (size_t)(slash - path) != sl ||
	    strncmp(path, state_real, sl) != 0 || strncmp(slash + 1, "run-", 4) != 0)
		return af_err_set(err, EINVAL, "'%s' is not a run directory of '%s'", path,
				  state_dir);
	struct delta *d = xcalloc(1, sizeof(*d));
	d->path = xstrdup(path);
	d->name = xstrdup(slash + 1);
	d->project_path = xstrdup(project_path);
	d->dir_fd = d->upper_fd = d->work_fd = -1;
	pthread_mutex_init(&d->lock, NULL);
	delta_init_table(d);
	struct stat st;
	int r = 0;
	autofree char *proj = NULL;
	d->state_fd = open(state_real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->state_fd < 0 || fstat(d->state_fd, &st) < 0) {
		r = af_err_set(err, errno, "cannot open state directory '%s': %s", state_real,
			       strerror(errno));
		goto fail;
	}
	if (st.st_uid != geteuid()) {
		r = af_err_set(err, EPERM, "state directory '%s' is not owned by you", state_real);
		goto fail;
	}
	d->dir_fd = openat(d->state_fd, d->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (d->dir_fd >= 0)
		d->upper_fd = openat(d->dir_fd, "upper", O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
				     O_CLOEXEC);
	if (d->upper_fd >= 0)
		d->work_fd = openat(d->dir_fd, "work", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (d->work_fd < 0) {
		r = af_err_set(err, errno, "cannot open run directory '%s': %s", path,
			       strerror(errno));
		goto fail;
	}
	proj = info_value(d->dir_fd, "project");
	if (!proj || strcmp(proj, project_path) != 0) {
		r = af_err_set(err, EINVAL, "run directory '%s' is not of project '%s'", path,
			       project_path);
		goto fail;
	}
	r = load_manifest(d);
	if (r < 0) {
		af_err_set(err, -r, "cannot read '%s/manifest': %s", path,
			   r == -EINVAL ? "malformed record" : strerror(-r));
		goto fail;
	}
	*out = d;
	return 0;
fail:
	delta_free(d);
	return r;
}

void delta_free(struct delta *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->nshown; i++)
		free(d->shown[i]);
	free(d->shown);
	for (size_t i = 0; i < d->nslots; i++)
		free(d->slots[i].path);
	free(d->slots);
	pthread_mutex_destroy(&d->lock);
	if (d->dir_fd >= 0)
		close(d->dir_fd);
	if (d->upper_fd >= 0)
		close(d->upper_fd);
	if (d->work_fd >= 0)
		close(d->work_fd);
	if (d->state_fd >= 0)
		close(d->state_fd);
	free(d->path);
	free(d->name);
	free(d->project_path);
	free(d);
}

const char *delta_path(const struct delta *d)
{
	return d->path;
}

int delta_dir_fd(const struct delta *d)
{
	return d->dir_fd;
}

void delta_add_shown(struct delta *d, const char *path)
{
	if (delta_is_shown(d, path))
		return; /* a delta resumed */
	d->shown = xrealloc(d->shown, (d->nshown + 1) * sizeof(*d->shown));
	d->shown[d->nshown++] = xstrdup(path);
}

bool delta_is_shown(const struct delta *d, const char *path)
{
	for (size_t i = 0; i < d->nshown; i++)
		if (strcmp(d->shown[i], path) == 0)
			return true;
	return false;
}

int delta_upper_fd(const struct delta *d)
{
	return d->upper_fd;
}

int delta_work_fd(const struct delta *d)
{
	return d->work_fd;
}

/* ---- base records ------------------------------------------------------ */

static uint64_t hash_path(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

/* Slot for path: the one holding it, or the empty one where it belongs.
 * Called with the lock held. */
static struct base_slot *find_slot(struct base_slot *slots, size_t nslots, const char *path,
				   uint64_t h)
{
	size_t i = (size_t)h & (nslots - 1);
	for (;;) {
		struct base_slot *s = &slots[i];
		if (!s->path || (s->hash == h && strcmp(s->path, path) == 0))
			return s;
		i = (i + 1) & (nslots - 1);
	}
}

static void grow(struct delta *d)
{
	size_t n = d->nslots * 2;
	struct base_slot *slots = xcalloc(n, sizeof(*slots));
	for (size_t i = 0; i < d->nslots; i++)
		if (d->slots[i].path)
			*find_slot(slots, n, d->slots[i].path, d->slots[i].hash) = d->slots[i];
	free(d->slots);
	d->slots = slots;
	d->nslots = n;
}

void delta_note_base(struct delta *d, const char *path, const struct stat *st)
{
	uint64_t h = hash_path(path);
	pthread_mutex_lock(&d->lock);
	struct base_slot *s = find_slot(d->slots, d->nslots, path, h);
	if (!s->path) {
		s->path = xstrdup(path);
		s->hash = h;
		memset(&s->base, 0, sizeof(s->base));
		if (st) {
			s->base.existed = true;
			s->base.mode = st->st_mode;
			s->base.ino = st->st_ino;
			s->base.size = st->st_size;
			s->base.mtime = st->st_mtim;
			s->base.ctime = st->st_ctim;
		}
		if (++d->count * 10 > d->nslots * 7)
			grow(d);
	}
	pthread_mutex_unlock(&d->lock);
}

void delta_drop_base(struct delta *d, const char *path)
{
	uint64_t h = hash_path(path);
	pthread_mutex_lock(&d->lock);
	struct base_slot *s = find_slot(d->slots, d->nslots, path, h);
	if (!s->path) {
		pthread_mutex_unlock(&d->lock);
		return;
	}
	free(s->path);
	s->path = NULL;
	d->count--;
	/* linear probing: move later members of the run back into the hole
	 * (each only if the hole lies on its way from its home slot), so
	 * find_slot() still reaches them without tombstones */
	size_t mask = d->nslots - 1, hole = (size_t)(s - d->slots);
	for (size_t i = (hole + 1) & mask; d->slots[i].path; i = (i + 1) & mask) {
		size_t home = (size_t)d->slots[i].hash & mask;
		if (((i - home) & mask) >= ((i - hole) & mask)) {
			d->slots[hole] = d->slots[i];
			d->slots[i].path = NULL;
			hole = i;
		}
	}
	pthread_mutex_unlock(&d->lock);
}

bool delta_get_base(const struct delta *cd, const char *path, struct delta_base *out)
{
	/* the table is logically const here; only the lock is taken */
	struct delta *d = (struct delta *)cd;
	uint64_t h = hash_path(path);
	pthread_mutex_lock(&d->lock);
	struct base_slot *s = find_slot(d->slots, d->nslots, path, h);
	bool found = s->path != NULL;
	if (found && out)
		*out = s->base;
	pthread_mutex_unlock(&d->lock);
	return found;
}

size_t delta_base_count(const struct delta *cd)
{
	struct delta *d = (struct delta *)cd;
	pthread_mutex_lock(&d->lock);
	size_t n = d->count;
	pthread_mutex_unlock(&d->lock);
	return n;
}

/* ---- disk budget ------------------------------------------------------- */

void delta_set_disk_limit(struct delta *d, uint64_t bytes)
{
	d->disk_limit = bytes;
}

uint64_t delta_disk_limit(const struct delta *d)
{
	return d->disk_limit;
}

int delta_disk_reserve(struct delta *d, uint64_t bytes)
{
	uint64_t used = __atomic_load_n(&d->disk_used, __ATOMIC_RELAXED);
	do {
		if (d->disk_limit && (bytes > d->disk_limit || used > d->disk_limit - bytes)) {
			__atomic_store_n(&d->disk_full, true, __ATOMIC_RELAXED);
			return -ENOSPC;
		}
	} while (!__atomic_compare_exchange_n(&d->disk_used, &used, used + bytes, true,
					      __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	return 0;
}

void delta_disk_settle(struct delta *d, uint64_t reserved, int64_t actual)
{
	uint64_t used = __atomic_load_n(&d->disk_used, __ATOMIC_RELAXED), next;
	do {
		/* what another file freed may be counted below zero here
		 * when it was charged before a limit applied: never wrap */
		int64_t diff = actual - (int64_t)reserved;
		next = diff < 0 && (uint64_t)-diff > used ? 0 : used + (uint64_t)diff;
	} while (!__atomic_compare_exchange_n(&d->disk_used, &used, next, true, __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
}

uint64_t delta_disk_used(const struct delta *d)
{
	return __atomic_load_n(&d->disk_used, __ATOMIC_RELAXED);
}

bool delta_disk_full(const struct delta *d)
{
	return __atomic_load_n(&d->disk_full, __ATOMIC_RELAXED);
}

/* ---- manifest ------------------------------------------------------------ */

static int cmp_slot_path(const void *a, const void *b)
{
	return strcmp((*(struct base_slot *const *)a)->path, (*(struct base_slot *const *)b)->path);
}

int delta_save(struct delta *d, struct af_err *err)
{
	if (d->removed)
		return af_err_set(err, ENOENT, "cannot save the manifest: '%s' was removed", d->path);

	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return af_err_set(err, errno, "cannot save the manifest: %s", strerror(errno));
	fputs("# agentfense manifest 1\n"
	      "# E MODE INO SIZE MTIME CTIME PATH   (the path existed)\n"
	      "# N - - - - - PATH                   (the path did not exist)\n",
	      f);

	pthread_mutex_lock(&d->lock);
	struct base_slot **v = xmalloc((d->count + 1) * sizeof(*v));
	size_t n = 0;
	for (size_t i = 0; i < d->nslots; i++)
		if (d->slots[i].path)
			v[n++] = &d->slots[i];
	qsort(v, n, sizeof(*v), cmp_slot_path);
	for (size_t i = 0; i < n; i++) {
		const struct delta_base *b = &v[i]->base;
		autofree char *e = delta_escape(v[i]->path);
		if (b->existed)
			fprintf(f, "E %o %llu %lld %lld.%09ld %lld.%09ld /%s\n", (unsigned)b->mode,
				(unsigned long long)b->ino, (long long)b->size,
				(long long)b->mtime.tv_sec, b->mtime.tv_nsec,
				(long long)b->ctime.tv_sec, b->ctime.tv_nsec, e);
		else
			fprintf(f, "N - - - - - /%s\n", e);
	}
	pthread_mutex_unlock(&d->lock);
	free(v);
	if (fclose(f) != 0) {
		free(buf);
		return af_err_set(err, ENOMEM, "cannot save the manifest: out of memory");
	}

	int r = write_atomic(d->dir_fd, "manifest", buf, len, true);
	free(buf);
	if (r < 0)
		return af_err_set(err, -r, "cannot write '%s/manifest': %s", d->path, strerror(-r));
	r = fsync_at(d->dir_fd, "info");
	if (r < 0)
		return af_err_set(err, -r, "cannot write '%s/info': %s", d->path, strerror(-r));
	return 0;
}

int delta_remove(struct delta *d, struct af_err *err)
{
	if (d->removed)
		return 0;
	int r = delta_rm_rf_at(d->state_fd, d->name);
	if (r < 0)
		return af_err_set(err, -r, "cannot remove '%s': %s", d->path, strerror(-r));
	d->removed = true;
	return 0;
}
