/* sync.c - apply a delta to the project: delta_sync().
 *
 * Walks upper/ by directory fd and, for each entry, compares the project
 * path with the base record the view took when the sandbox first touched
 * it.  Only a project path that still matches its base (or that did not
 * exist and still does not) is replaced; anything else is a conflict: the
 * project keeps its version, the delta keeps the sandbox's.  Neither tree
 * is ever traversed through a symlink (single-component openat with
 * O_NOFOLLOW, AT_SYMLINK_NOFOLLOW), and every file lands in the project
 * through a temp file + rename, so the project never sees a half-written
 * file.  Besides conflicts, sync holds back what synchold.c names: what a
 * tool on the host would obey, and symlinks to what the policy hides. */
#include "delta/delta.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "common/casefold.h"
#include "delta/delta_int.h"
#include "delta/gitprep.h"

struct sync_ctx {
	struct delta *d;
	struct sync_report *rep;
	struct af_err *err;
	int first; /* first I/O error (-errno), 0 if none */
	struct hold_ctx hold;
	bool hinted; /* the hint on links out of the project was given */
	uint64_t limit;   /* the delta's disk limit (0: none) */
	uint64_t written; /* bytes charged for what was written so far */
};

static char *join(const char *dir, const char *name)
{
	return dir[0] ? xasprintf("%s/%s", dir, name) : xstrdup(name);
}

void sync_report_free(struct sync_report *rep)
{
	for (size_t i = 0; i < rep->n_notes; i++) {
		free(rep->notes[i].path);
		free(rep->notes[i].text);
		free(rep->notes[i].hint);
	}
	free(rep->notes);
	rep->notes = NULL;
	rep->n_notes = 0;
}

/* Describe path (view path form) in the report; text is taken. */
static void add_note(struct sync_ctx *c, enum sync_note_kind kind, const char *path, char *text)
{
	struct sync_report *rep = c->rep;
	if (rep->n_notes >= SYNC_MAX_NOTES) {
		rep->notes_dropped++;
		free(text);
		return;
	}
	if ((rep->n_notes & (rep->n_notes - 1)) == 0) /* 0, 1, 2, 4, ...: double */
		rep->notes = xrealloc(rep->notes, (rep->n_notes ? rep->n_notes * 2 : 1) *
							  sizeof(*rep->notes));
	rep->notes[rep->n_notes++] = (struct sync_note){ .kind = kind,
							 .path = delta_escape(path),
							 .text = text };
}

/* Record an I/O error on path: the first fills *err, later ones are
 * notes so they are not lost. */
static void record(struct sync_ctx *c, int r, const char *path, const char *msg)
{
	if (!c->first) {
		c->first = r;
		af_err_set(c->err, -r, "%s", msg);
	} else {
		c->rep->errors++;
		add_note(c, SYNC_NOTE_ERROR, path, xstrdup(msg));
	}
}

/* An I/O error on project path (view path form). */
static void sync_fail(struct sync_ctx *c, int r, const char *what, const char *path)
{
	autofree char *e = delta_escape(path[0] ? path : ".");
	autofree char *msg = xasprintf("cannot %s '%s' in the project: %s", what, e, strerror(-r));
	record(c, r, path, msg);
}

/* An I/O error on the delta's copy of path. */
static void delta_fail(struct sync_ctx *c, int r, const char *what, const char *path)
{
	autofree char *e = delta_escape(path);
	autofree char *msg = xasprintf("cannot %s '%s/upper/%s': %s", what, delta_path(c->d), e,
				       strerror(-r));
	record(c, r, path, msg);
}

static void conflict(struct sync_ctx *c, const char *path)
{
	autofree char *e = delta_escape(path);
	add_note(c, SYNC_NOTE_CONFLICT, path,
		 xasprintf("conflict: '%s' changed in the project while the sandbox ran; "
			   "the sandbox's version is kept in '%s/upper/%s'",
			   e, delta_path(c->d), e));
	c->rep->conflicts++;
}

/* Hold path back: one line saying why (what: "is ..."), counted with
 * the conflicts, the sandbox's version staying in the delta.  Returns
 * its note, or NULL past SYNC_MAX_NOTES. */
static struct sync_note *held(struct sync_ctx *c, const char *path, const char *what)
{
	autofree char *e = delta_escape(path);
	autofree char *w = delta_escape(what);
	size_t n = c->rep->n_notes;
	add_note(c, SYNC_NOTE_HELD, path,
		 xasprintf("held: '%s' %s; the sandbox's version is kept in '%s/upper/%s'", e, w,
			   delta_path(c->d), e));
	c->rep->conflicts++;
	return c->rep->n_notes > n ? &c->rep->notes[n] : NULL;
}

static void held_kind(struct sync_ctx *c, const char *path, const char *dir, enum hold_kind k)
{
	autofree char *what = NULL;
	const char *d = dir[0] ? dir : ".";
	switch (k) {
	case HOLD_DOTGIT:
		what = xasprintf("is a name git takes for '.git' (a repository or a 'gitdir:' "
				 "link), whose configuration git on the host would run");
		break;
	case HOLD_GITDIR:
		what = xasprintf("would make '%s' a git repository, whose configuration git on "
				 "the host would run", d);
		break;
	case HOLD_GITCONFIG:
		what = xasprintf("is configuration or hooks of the git repository '%s', which git "
				 "on the host would run", d);
		break;
	case HOLD_GITTODO:
		what = xasprintf("is an unfinished rebase, cherry-pick or revert of the git "
				 "repository '%s', whose todo list git on the host would run on "
				 "--continue", d);
		break;
	case HOLD_HG:
		what = xasprintf("is a name Mercurial takes for '.hg' (a repository), whose "
				 "configuration hg on the host would run");
		break;
	case HOLD_HGCONFIG:
		what = xasprintf("is configuration of the Mercurial repository '%s', which hg on "
				 "the host would run", d);
		break;
	case HOLD_NONE:
		return;
	}
	held(c, path, what);
}

/* Hold a symlink of the sandbox that leads out of the project or to what
 * the policy hides.  Returns true if held. */
static bool hold_link(struct sync_ctx *c, int ufd, const char *name, const char *path,
		      const struct stat *ust)
{
	size_t cap = (size_t)ust->st_size + 2;
	autofree char *target = xmalloc(cap);
	ssize_t n = readlinkat(ufd, name, target, cap);
	if (n < 0 || (size_t)n >= cap)
		return false; /* make_tmp_copy reports it */
	target[n] = '\0';
	autofree char *why = NULL;
	if (!hold_check_link(&c->hold, path, target, &why))
		return false;
	autofree char *what = xasprintf("is a symlink to '%s': %s", target, why);
	struct sync_note *note = held(c, path, what);
	if (!c->hinted && (target[0] == '/' || strstr(why, "outside the project"))) {
		/* once per sync: it says the same for every such link */
		if (note)
			note->hint = xstrdup("a symlink out of the project is never synced, the "
					     "host's files being other than the sandbox's; make "
					     "it on the host if it is wanted");
		c->hinted = true;
	}
	return true;
}

/* The project keeps name under another spelling, in a directory that
 * folds case: writing name would land in that entry. */
static void conflict_spelling(struct sync_ctx *c, const char *path)
{
	autofree char *e = delta_escape(path);
	add_note(c, SYNC_NOTE_CONFLICT, path,
		 xasprintf("conflict: the project has '%s' under another spelling (its file "
			   "system ignores case); the sandbox's version is kept in "
			   "'%s/upper/%s'", e, delta_path(c->d), e));
	c->rep->conflicts++;
}

/* The real spellings in a project directory that may fold case. */
struct spellings {
	bool folds;
	char **names; /* sorted; NULL if they could not be read */
	size_t n;
};

/* Is name, which the project resolves, spelled so there? */
static bool spelled(const struct spellings *sp, const char *name)
{
	if (!sp->folds)
		return true;
	return sp->names && bsearch(&name, sp->names, sp->n, sizeof(*sp->names),
				    delta_cmp_names) != NULL;
}

static bool ts_eq(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

/* Does the project's current state (present, *st) match base b?  A
 * directory only has to keep its identity: its entries are checked one by
 * one. */
static bool base_matches(const struct delta_base *b, bool present, const struct stat *st)
{
	if (!b->existed || !present)
		return !b->existed && !present;
	if ((b->mode & S_IFMT) != (st->st_mode & S_IFMT) || b->ino != st->st_ino)
		return false;
	if (S_ISDIR(st->st_mode))
		return true;
	return b->size == st->st_size && ts_eq(&b->mtime, &st->st_mtim) &&
	       ts_eq(&b->ctime, &st->st_ctim);
}

/* A fresh name for a temp entry in a project directory. */
static void tmp_name(char buf[32])
{
	static const char al[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	unsigned char rnd[10];
	if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd)) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		unsigned long x = (unsigned long)ts.tv_nsec ^ ((unsigned long)getpid() << 16);
		for (size_t i = 0; i < sizeof(rnd); i++, x = x * 6364136223846793005UL + 1)
			rnd[i] = (unsigned char)(x >> 33);
	}
	char *p = buf + sprintf(buf, ".agentfense-");
	for (size_t i = 0; i < sizeof(rnd); i++)
		*p++ = al[rnd[i] % (sizeof(al) - 1)];
	*p = '\0';
}

/* Create, under a temp name in project directory pfd, a copy of the
 * non-directory upper entry name (in ufd, described by ust): data, mode
 * and times, fsync'ed.  Returns 0 with the name in tmp, or -errno. */
static int make_tmp_copy(int ufd, const char *name, const struct stat *ust, int pfd,
			 char tmp[32])
{
	const struct timespec times[2] = { ust->st_atim, ust->st_mtim };
	/* the sandbox may not hand set-ID bits to the host */
	mode_t mode = ust->st_mode & 07777 & ~(mode_t)(S_ISUID | S_ISGID);
	int r = 0, tries = 0;

	if (S_ISREG(ust->st_mode)) {
		autoclose int in = openat(ufd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (in < 0 && errno == EACCES && fchmodat(ufd, name, (ust->st_mode & 07777) | S_IRUSR, 0) == 0)
			in = openat(ufd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (in < 0)
			return -errno;
		autoclose int out = -1;
		do {
			tmp_name(tmp);
			out = openat(pfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		} while (out < 0 && errno == EEXIST && ++tries < 100);
		if (out < 0)
			return -errno;
		r = copy_fd_data(in, out, ust->st_size);
		if (r == 0 && fchmod(out, mode) < 0)
			r = -errno;
		if (r == 0 && futimens(out, times) < 0)
			r = -errno;
		if (r == 0 && fsync(out) < 0)
			r = -errno;
	} else if (S_ISLNK(ust->st_mode)) {
		size_t cap = (size_t)ust->st_size + 2;
		autofree char *target = xmalloc(cap);
		ssize_t n = readlinkat(ufd, name, target, cap);
		if (n < 0)
			return -errno;
		if ((size_t)n >= cap) /* changed under us: nobody should write here */
			return -EIO;
		target[n] = '\0';
		do {
			tmp_name(tmp);
			r = symlinkat(target, pfd, tmp) < 0 ? -errno : 0;
		} while (r == -EEXIST && ++tries < 100);
		if (r < 0)
			return r;
		/* times of a symlink are cosmetic; not every fs allows them */
		utimensat(pfd, tmp, times, AT_SYMLINK_NOFOLLOW);
	} else if (S_ISFIFO(ust->st_mode)) {
		do {
			tmp_name(tmp);
			r = mknodat(pfd, tmp, S_IFIFO | mode, 0) < 0 ? -errno : 0;
		} while (r == -EEXIST && ++tries < 100);
		if (r < 0)
			return r;
		/* mknodat applied the umask */
		if (fchmodat(pfd, tmp, mode, 0) < 0 || utimensat(pfd, tmp, times, AT_SYMLINK_NOFOLLOW) < 0)
			r = -errno;
	} else {
		return -EOPNOTSUPP;
	}
	if (r < 0)
		unlinkat(pfd, tmp, 0);
	return r;
}

/* Move temp entry tmp to name in pfd: over whatever is there (replace),
 * or only if name does not exist.  Returns 0, -EEXIST, or -errno. */
static int place(int pfd, const char *tmp, const char *name, bool replace)
{
	if (replace)
		return renameat(pfd, tmp, pfd, name) < 0 ? -errno : 0;
	if (renameat2(pfd, tmp, pfd, name, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -errno;
	/* no RENAME_NOREPLACE here: a hard link fails on an existing name too */
	if (linkat(pfd, tmp, pfd, name, 0) < 0)
		return -errno;
	unlinkat(pfd, tmp, 0);
	return 0;
}

/* Remove project directory name (in pfd, lstat'ed as *pst, already known
 * to match its base) as far as the sandbox deleted it: only entries with
 * a matching base record go, anything else stays.  With dry, remove
 * nothing and only tell.  Returns 0 if everything is (would be) gone, 1
 * if something stays, or -errno (already recorded). */
static int remove_covered(struct sync_ctx *c, int pfd, const char *name, const char *path,
			  const struct stat *pst, bool dry)
{
	autoclose int dfd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (dfd < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno == ELOOP || errno == ENOTDIR)
			return 1; /* replaced meanwhile */
		int r = -errno;
		sync_fail(c, r, "open directory", path);
		return r;
	}
	if (fstat(dfd, &st) < 0 || st.st_ino != pst->st_ino || st.st_dev != pst->st_dev)
		return 1;
	/* the project directory may be read-only; it is going away, but
	 * restore its mode if something has to stay */
	bool chmodded = false;
	if (!dry && (st.st_mode & (S_IWUSR | S_IXUSR)) != (S_IWUSR | S_IXUSR) &&
	    st.st_uid == geteuid() && fchmod(dfd, (st.st_mode & 07777) | S_IRWXU) == 0)
		chmodded = true;

	char **names;
	int r = delta_list_dir(dfd, &names);
	if (r < 0) {
		sync_fail(c, r, "read directory", path);
		return r;
	}
	int kept = 0, err = 0;
	for (size_t i = 0; names[i]; i++) {
		autofree char *cpath = join(path, names[i]);
		struct stat cst;
		struct delta_base b;
		if (fstatat(dfd, names[i], &cst, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue;
			err = -errno;
			sync_fail(c, err, "stat", cpath);
			continue;
		}
		if (!delta_get_base(c->d, cpath, &b) || !base_matches(&b, true, &cst)) {
			kept = 1;
			continue;
		}
		if (S_ISDIR(cst.st_mode)) {
			r = remove_covered(c, dfd, names[i], cpath, &cst, dry);
			if (r < 0)
				err = r;
			else if (r > 0)
				kept = 1;
		} else if (!dry) {
			if (unlinkat(dfd, names[i], 0) < 0 && errno != ENOENT) {
				err = -errno;
				sync_fail(c, err, "delete", cpath);
			} else {
				c->rep->deleted++;
			}
		}
	}
	delta_free_names(names);
	if (!dry && !kept && !err) {
		if (unlinkat(pfd, name, AT_REMOVEDIR) == 0) {
			c->rep->deleted++;
			return 0;
		}
		if (errno == ENOTEMPTY || errno == EEXIST) {
			kept = 1; /* something appeared meanwhile */
		} else {
			err = -errno;
			sync_fail(c, err, "delete directory", path);
		}
	}
	if (chmodded)
		fchmod(dfd, st.st_mode & 07777);
	return err ? err : kept;
}

static void sync_dir(struct sync_ctx *c, int ufd, int pfd, const char *path);

/* Drop a synced entry from the delta. */
static void drop_upper(struct sync_ctx *c, int ufd, const char *name, const char *path)
{
	if (unlinkat(ufd, name, 0) < 0 && errno != ENOENT)
		delta_fail(c, -errno, "remove", path);
}

static void sync_whiteout(struct sync_ctx *c, int ufd, int pfd, const char *name,
			  const char *path, bool present, const struct stat *pst, bool *dirty)
{
	struct delta_base b;
	bool has = delta_get_base(c->d, path, &b);

	/* gone already, or never seen by the sandbox (created meanwhile on
	 * the host after the sandbox created and deleted its own): the
	 * sandbox meant to delete nothing that is there now */
	if (!present || (has && !b.existed)) {
		drop_upper(c, ufd, name, path);
		return;
	}
	if (!has || !base_matches(&b, true, pst)) {
		conflict(c, path);
		return;
	}
	if (S_ISDIR(pst->st_mode)) {
		int r = remove_covered(c, pfd, name, path, pst, false);
		*dirty = true;
		if (r > 0)
			conflict(c, path);
		if (r != 0)
			return;
	} else {
		if (unlinkat(pfd, name, 0) < 0 && errno != ENOENT) {
			sync_fail(c, -errno, "delete", path);
			return;
		}
		c->rep->deleted++;
		*dirty = true;
	}
	drop_upper(c, ufd, name, path);
}

static void sync_node(struct sync_ctx *c, int ufd, int pfd, const char *name, const char *path,
		      const struct stat *ust, bool present, const struct stat *pst, bool *dirty)
{
	struct delta_base b;
	bool has = delta_get_base(c->d, path, &b);
	bool ok = has ? base_matches(&b, present, pst) : !present;
	char tmp[32];
	int r;

	if (!ok) {
		conflict(c, path);
		return;
	}
	if (S_ISLNK(ust->st_mode) && hold_link(c, ufd, name, path, ust))
		return;
	/* what the project is given is bounded like the delta itself: a
	 * file past the disk limit stays in the delta, unwritten */
	uint64_t cost = DELTA_ENTRY_COST + (S_ISREG(ust->st_mode)   ? (uint64_t)ust->st_blocks * 512
					    : S_ISLNK(ust->st_mode) ? (uint64_t)ust->st_size
								    : 0);
	if (c->limit && (cost > c->limit || c->written > c->limit - cost)) {
		sync_fail(c, -ENOSPC, "write", path);
		return;
	}
	if (present && S_ISDIR(pst->st_mode)) {
		/* the sandbox deleted a directory and put something else there:
		 * only if it deleted all of it */
		r = remove_covered(c, pfd, name, path, pst, true);
		if (r == 0)
			r = remove_covered(c, pfd, name, path, pst, false);
		*dirty = true;
		if (r > 0)
			conflict(c, path);
		if (r != 0)
			return;
		present = false;
	}
	r = make_tmp_copy(ufd, name, ust, pfd, tmp);
	if (r < 0) {
		sync_fail(c, r, "write", path);
		return;
	}
	r = place(pfd, tmp, name, present);
	if (r < 0) {
		unlinkat(pfd, tmp, 0);
		if (r == -EEXIST)
			conflict(c, path); /* created on the host just now */
		else
			sync_fail(c, r, "write", path);
		return;
	}
	*dirty = true;
	c->rep->written++;
	c->written += cost;
	drop_upper(c, ufd, name, path);
}

/* Give project directory fd the upper directory's mode and times. */
static void apply_dir_meta(struct sync_ctx *c, int fd, const struct stat *ust, const char *path)
{
	const struct timespec times[2] = { ust->st_atim, ust->st_mtim };
	if (fchmod(fd, ust->st_mode & 07777) < 0 || futimens(fd, times) < 0)
		sync_fail(c, -errno, "set mode and times of", path);
}

static void sync_subdir(struct sync_ctx *c, int ufd, int pfd, const char *name, const char *path,
			const struct stat *ust, bool present, const struct stat *pst, bool *dirty)
{
	struct delta_base b;
	bool has = delta_get_base(c->d, path, &b);
	bool meta; /* the sandbox owns this directory's mode and times */

	if (present && S_ISDIR(pst->st_mode) && (!has || base_matches(&b, true, pst))) {
		meta = has; /* an existing directory; without a base only a container */
	} else if (!present && (!has || !b.existed)) {
		/* a new directory costs as in the delta: the limit bounds how
		 * many the project is given */
		if (c->limit && (c->written > c->limit || c->limit - c->written < DELTA_ENTRY_COST)) {
			sync_fail(c, -ENOSPC, "create directory", path);
			return;
		}
		if (mkdirat(pfd, name, 0700) < 0) {
			if (errno == EEXIST)
				conflict(c, path);
			else
				sync_fail(c, -errno, "create directory", path);
			return;
		}
		meta = true;
		*dirty = true;
		c->rep->written++;
		c->written += DELTA_ENTRY_COST;
	} else if (present && !S_ISDIR(pst->st_mode) && has && base_matches(&b, true, pst)) {
		/* the sandbox replaced a file or link by a directory */
		if (unlinkat(pfd, name, 0) < 0 || mkdirat(pfd, name, 0700) < 0) {
			sync_fail(c, -errno, "replace", path);
			return;
		}
		c->rep->deleted++;
		c->rep->written++;
		meta = true;
		*dirty = true;
	} else {
		/* host changed it meanwhile, or a symlink stands where the delta
		 * has a directory: never traverse it */
		conflict(c, path);
		return;
	}

	autoclose int pchild = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (pchild < 0) {
		if (errno == ELOOP || errno == ENOTDIR || errno == ENOENT)
			conflict(c, path);
		else
			sync_fail(c, -errno, "open directory", path);
		return;
	}
	struct stat now;
	if (present && S_ISDIR(pst->st_mode) &&
	    (fstat(pchild, &now) < 0 || now.st_ino != pst->st_ino || now.st_dev != pst->st_dev)) {
		conflict(c, path); /* swapped between stat and open */
		return;
	}
	if (meta && fstat(pchild, &now) == 0 && (now.st_mode & S_IRWXU) != S_IRWXU)
		fchmod(pchild, (now.st_mode & 07777) | S_IRWXU); /* final mode set below */

	/* the sandbox may have left it read-only; we must empty it */
	delta_make_writable(ufd, name, ust);
	autoclose int uchild = openat(ufd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (uchild < 0) {
		delta_fail(c, -errno, "open", path);
		return;
	}
	sync_dir(c, uchild, pchild, path);
	if (meta)
		apply_dir_meta(c, pchild, ust, path);

	if (unlinkat(ufd, name, AT_REMOVEDIR) < 0 && (ust->st_mode & S_IRWXU) != S_IRWXU)
		fchmod(uchild, ust->st_mode & 07777); /* stays in the delta: as the sandbox left it */
}

static void sync_entry(struct sync_ctx *c, int ufd, int pfd, const char *name, const char *path,
		       const char *dir, enum hold_kind hold, const struct spellings *sp,
		       bool *dirty)
{
	struct stat ust, pst;
	/* what the delta made for git in the sandbox, and left unchanged */
	if (gitprep_sync(c->d, ufd, pfd, name, path, c->hold.policy)) {
		drop_upper(c, ufd, name, path);
		return;
	}
	if (fstatat(ufd, name, &ust, AT_SYMLINK_NOFOLLOW) < 0) {
		delta_fail(c, -errno, "stat", path);
		return;
	}
	bool present = fstatat(pfd, name, &pst, AT_SYMLINK_NOFOLLOW) == 0;
	if (!present && errno != ENOENT) {
		sync_fail(c, -errno, "stat", path);
		return;
	}
	/* Only the entry of this very spelling is the one the sandbox saw
	 * (the view serves no other); names the project lists after this
	 * directory was read, this sync's own included, count as others. */
	if (present && !spelled(sp, name)) {
		conflict_spelling(c, path);
		return;
	}

	if (hold != HOLD_NONE && !delta_is_whiteout(&ust))
		held_kind(c, path, dir, hold);
	else if (delta_is_whiteout(&ust))
		sync_whiteout(c, ufd, pfd, name, path, present, &pst, dirty);
	else if (S_ISDIR(ust.st_mode))
		sync_subdir(c, ufd, pfd, name, path, &ust, present, &pst, dirty);
	else if (S_ISREG(ust.st_mode) || S_ISLNK(ust.st_mode) || S_ISFIFO(ust.st_mode))
		sync_node(c, ufd, pfd, name, path, &ust, present, &pst, dirty);
	else {
		autofree char *e = delta_escape(path);
		c->rep->skipped++;
		add_note(c, SYNC_NOTE_SKIPPED, path,
			 xasprintf("not syncing '%s': devices and sockets are not copied to the "
				   "project", e));
	}
}

static void sync_dir(struct sync_ctx *c, int ufd, int pfd, const char *path)
{
	char **names;
	int r = delta_list_dir(ufd, &names);
	if (r < 0) {
		delta_fail(c, r, "read directory", path);
		return;
	}
	size_t n = 0;
	while (names[n])
		n++;
	autofree enum hold_kind *holds = xcalloc(n + 1, sizeof(*holds));
	hold_scan_dir(ufd, pfd, path, names, holds);
	struct spellings sp = { .folds = casefold_dir_may_fold(pfd) };
	if (sp.folds && delta_list_dir(pfd, &sp.names) == 0)
		while (sp.names[sp.n])
			sp.n++;
	bool dirty = false;
	for (size_t i = 0; names[i]; i++) {
		autofree char *cpath = join(path, names[i]);
		sync_entry(c, ufd, pfd, names[i], cpath, path, holds[i], &sp, &dirty);
	}
	delta_free_names(names);
	delta_free_names(sp.names);
	if (dirty && fsync(pfd) < 0)
		sync_fail(c, -errno, "sync directory", path);
}

int delta_sync(struct delta *d, int project_fd, const struct policy *policy,
	       struct sync_report *rep, struct af_err *err)
{
	/* without the caller's report, its notes are ours to free */
	__attribute__((cleanup(sync_report_free))) struct sync_report local = { 0 };
	if (!rep)
		rep = &local;
	memset(rep, 0, sizeof(*rep));
	struct stat ust, pst;
	/* our own fd: the caller's may be O_PATH, which cannot be fsync'ed */
	autoclose int pfd = openat(project_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0 || fstat(delta_upper_fd(d), &ust) < 0 || fstat(pfd, &pst) < 0)
		return af_err_set(err, errno, "cannot sync '%s' to the project: %s", delta_path(d),
				  strerror(errno));
	struct hold_memo memo = { 0 };
	struct sync_ctx c = {
		.d = d, .rep = rep, .err = err, .first = 0,
		.hold = { .upper_fd = delta_upper_fd(d), .project_fd = pfd, .policy = policy,
			  .memo = &memo },
		.limit = delta_disk_limit(d),
	};

	/* the sandbox may have taken our own permissions away from upper/
	 * itself (chmod 0 /workspace): we must list and empty it */
	if ((ust.st_mode & S_IRWXU) != S_IRWXU)
		(void)fchmod(delta_upper_fd(d), (ust.st_mode & 07777) | S_IRWXU);

	/* the root itself: its mode and times are the sandbox's only if it
	 * changed them (base record "") */
	struct delta_base b;
	bool meta = delta_get_base(d, "", &b) && base_matches(&b, true, &pst);
	if (meta && (pst.st_mode & S_IRWXU) != S_IRWXU)
		fchmod(pfd, (pst.st_mode & 07777) | S_IRWXU);
	sync_dir(&c, delta_upper_fd(d), pfd, "");
	hold_memo_clear(&memo);
	if (meta)
		apply_dir_meta(&c, pfd, &ust, "");

	if (!c.first && rep->conflicts == 0)
		return delta_remove(d, err);
	/* the run directory stays: keep its manifest for review */
	struct af_err serr;
	int r = delta_save(d, &serr);
	if (r < 0 && !c.first) {
		if (err)
			*err = serr;
		return r;
	}
	return c.first;
}
