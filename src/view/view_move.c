/* view_move.c - removing, renaming and linking entries in the FUSE view
 * (see view_int.h). */
#include "view/view_int.h"

#include <fcntl.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* ---- unlink, rmdir ---- */

/* Returns 0 or -errno. */
static int unlink_node(struct view *v, struct node *dir, const char *name, struct node *n,
		       bool rmdir_op)
{
	if (n->level != LEVEL_WRITE)
		return -EACCES;
	bool is_dir = S_ISDIR(n->type);
	if (rmdir_op && !is_dir)
		return -ENOTDIR;
	if (!rmdir_op && is_dir)
		return -EISDIR;
	struct merged m;
	int r = vw_merged_stat(dir, name, &m);
	if (r < 0)
		return r;
	if (!merged_exists(&m))
		return -ENOENT;
	if (is_dir) {
		r = vw_dir_empty(node_upper(n), node_merge(n));
		if (r < 0)
			return r;
	}
	copyup_thread_init();
	r = copyup_dir(&v->cu, dir);
	if (r < 0)
		return r;
	/* the name's cost, and a directory's attributes (it has no other
	 * name); a file's inode is credited when the table lets it go */
	uint64_t credit = 0;
	pthread_mutex_t *xlock = NULL;
	if (m.upper) {
		credit = DELTA_ENTRY_COST;
		struct stat st;
		if (is_dir && fstat(node_upper(n), &st) == 0) {
			/* held to the end: no attribute change in between is
			 * credited twice (see view_xattr.c) */
			xlock = &v->disk_lock[st.st_ino % DISK_STRIPES];
			pthread_mutex_lock(xlock);
			char proc[64];
			proc_path(proc, sizeof(proc), node_upper(n));
			credit += copyup_xattr_bytes(proc);
		}
	}
	if (!is_dir) {
		/* the node reaches its upper object by this place: keep it
		 * reachable for the kernel (a file open while unlinked) */
		pthread_mutex_lock(&n->lock);
		r = vw_node_at_locked(n, dir, name) ? vw_pin_locked(n) : -ENOENT;
	}
	if (r == 0 && m.lower) {
		copyup_note_base(&v->cu, dir, name, &m.lst);
		r = copyup_whiteout(&v->cu, dir, name, m.upper);
	} else if (r == 0) {
		int pu = node_upper(dir);
		if (is_dir) {
			(void)copyup_clear_whiteouts(node_upper(n));
			r = unlinkat(pu, name, AT_REMOVEDIR) < 0 ? -errno : 0;
		} else {
			r = unlinkat(pu, name, 0) < 0 ? -errno : 0;
		}
		/* nothing of the path is left in the delta: its base record
		 * would only outlive it (a create-delete loop, unbounded) */
		if (r == 0)
			copyup_drop_base(&v->cu, dir, name);
	}
	if (!is_dir)
		pthread_mutex_unlock(&n->lock);
	if (xlock)
		pthread_mutex_unlock(xlock);
	if (r == 0)
		vw_disk_credit(v, credit);
	if (r == 0)
		node_unhash(&v->table, dir, name);
	return r;
}

/* Returns 0 or -errno. */
static int do_unlink(struct view *v, struct node *dir, const char *name, bool rmdir_op)
{
	int r = vw_check_name(name);
	if (r < 0)
		return r;
	struct fuse_entry_param e;
	r = vw_lookup(v, dir, name, NULL, 0, &e);
	if (r < 0)
		return r;
	struct node *n = get_node(v, e.ino);
	vw_tree_rdlock(v);
	r = unlink_node(v, dir, name, n, rmdir_op);
	vw_tree_rdunlock(v);
	node_forget(&v->table, n, 1);
	return r;
}

void vw_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct view *v = req_view(req);
	fuse_reply_err(req, -do_unlink(v, get_node(v, parent), name, false));
}

void vw_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct view *v = req_view(req);
	fuse_reply_err(req, -do_unlink(v, get_node(v, parent), name, true));
}

/* ---- rename ---- */

/* A directory is moved by completing its copy in upper in place, which
 * the sandbox cannot tell apart in the merged view (every project entry
 * below gets its upper twin, or keeps its whiteout), and then renaming
 * that one upper directory, leaving a whiteout at the old path in the
 * same step when the project has it.  Every project path below gets its
 * base recorded, so sync deletes the old tree and creates the new one.
 * The kernel moves its dentries itself; the nodes below keep their
 * parent links and each of them has an upper object by then, so none
 * reaches the project through its old path again, and their levels stay
 * right because every entry below, hidden ones included, had to be
 * `write` under both its old and its new path.  All of it happens with
 * tree_lock held exclusively: nothing can be created in, or removed
 * from, the tree between the check and the move.
 *
 * Bound: that lock stops every lookup and change in the view while the
 * subtree is checked and copied, so a tree of more than MOVE_MAX_ENTRIES
 * entries, deeper than MOVE_MAX_DEPTH or holding more than MOVE_MAX_BYTES
 * of project file data to copy is refused with EXDEV, as are device
 * nodes (which cannot be copied); mv then copies and deletes, each step
 * checked as usual. */
#define MOVE_MAX_ENTRIES 100000
#define MOVE_MAX_DEPTH 256
#define MOVE_MAX_BYTES (1LL << 30)

struct move_ctx {
	struct view *v;
	bool folds; /* either end may fold case: decide folded too */
	size_t entries;
	long long bytes;
};

static int add_name_cb(int dirfd, const struct dirent *de, void *arg)
{
	(void)dirfd;
	vw_names_add(arg, de->d_name);
	return 0;
}

/* The names of directory fd (-1: none), sorted.  Returns 0 or -errno. */
static int list_names(int fd, struct name_set *s)
{
	int r = fd >= 0 ? for_each_dir_entry(fd, add_name_cb, s) : 0;
	vw_names_sort(s);
	return r;
}

static char *join_path(const char *dir, const char *name)
{
	return dir[0] ? xasprintf("%s/%s", dir, name) : xstrdup(name);
}

/* One merged entry of a directory being moved. */
struct move_ent {
	bool upper, lower; /* present (upper: not a whiteout) */
	bool whiteout;
	struct stat ust, lst;
};

/* Returns 0 or -errno. */
static int move_stat(int ufd, int lfd, const char *name, struct move_ent *e)
{
	memset(e, 0, sizeof(*e));
	if (ufd >= 0) {
		if (fstatat(ufd, name, &e->ust, AT_SYMLINK_NOFOLLOW) == 0) {
			if (delta_is_whiteout(&e->ust))
				e->whiteout = true;
			else
				e->upper = true;
		} else if (errno != ENOENT) {
			return -errno;
		}
	}
	if (lfd >= 0) {
		if (fstatat(lfd, name, &e->lst, AT_SYMLINK_NOFOLLOW) == 0)
			e->lower = true;
		else if (errno != ENOENT)
			return -errno;
	}
	return 0;
}

/* Open child name of directory fd (-1: none) as an O_PATH directory, or
 * return -1 when it is not one.  Returns the fd, -1, or -errno. */
static int open_subdir(int fd, const char *name, bool is_dir)
{
	if (fd < 0 || !is_dir)
		return -1;
	int r = openat(fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return r < 0 ? -errno : r;
}

/* Check every entry of the merged directory (ufd: upper or -1, lfd:
 * project or -1) at oldp for a move to newp.  Returns 0, -EACCES, -EXDEV
 * (too big, a device node) or -errno. */
static int move_check(struct move_ctx *c, int ufd, int lfd, const char *oldp, const char *newp,
		      unsigned depth)
{
	if (depth > MOVE_MAX_DEPTH)
		return -EXDEV;
	struct name_set un = { 0 }, ln = { 0 };
	int r = list_names(ufd, &un);
	if (r == 0)
		r = list_names(lfd, &ln);
	/* each name once: upper's, then the project's not in upper */
	for (size_t i = 0; r == 0 && i < un.n + ln.n; i++) {
		bool from_upper = i < un.n;
		const char *name = from_upper ? un.v[i] : ln.v[i - un.n];
		if (!from_upper && vw_names_has(&un, name))
			continue;
		struct move_ent e;
		r = move_stat(ufd, lfd, name, &e);
		if (r < 0)
			break;
		if (!e.upper && (e.whiteout || !e.lower))
			continue; /* deleted, or gone meanwhile */
		if (++c->entries > MOVE_MAX_ENTRIES) {
			r = -EXDEV;
			break;
		}
		const struct stat *st = e.upper ? &e.ust : &e.lst;
		bool is_dir = S_ISDIR(st->st_mode);
		if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) {
			r = -EXDEV;
			break;
		}
		if (!e.upper && S_ISREG(st->st_mode)) {
			c->bytes += st->st_size;
			if (c->bytes > MOVE_MAX_BYTES) {
				r = -EXDEV;
				break;
			}
		}
		autofree char *o = join_path(oldp, name);
		autofree char *n = join_path(newp, name);
		struct decision d;
		vw_policy_decide(c->v, c->folds, o, is_dir, &d);
		if (d.level != LEVEL_WRITE) {
			r = -EACCES;
			break;
		}
		vw_policy_decide(c->v, c->folds, n, is_dir, &d);
		if (d.level != LEVEL_WRITE) {
			r = -EACCES;
			break;
		}
		if (!is_dir)
			continue;
		/* an upper directory merges with a project directory below it */
		int cu = open_subdir(ufd, name, e.upper);
		int cl = open_subdir(lfd, name, e.lower && S_ISDIR(e.lst.st_mode));
		if (cu < -1 || cl < -1) {
			r = cu < -1 ? cu : cl;
		} else {
			r = move_check(c, cu, cl, o, n, depth + 1);
		}
		if (cu >= 0)
			close(cu);
		if (cl >= 0)
			close(cl);
	}
	vw_names_free(&un);
	vw_names_free(&ln);
	return r;
}

/* Give every project entry of the merged directory (dnode: its node, or
 * NULL if the kernel knows none; ufd: its upper directory; lfd: its
 * project directory or -1) at oldp an upper twin, through its node when
 * there is one (so the node uses it from now on), and record the base of
 * every project path.  A directory created here gets its project times
 * back once filled.  Returns 0 or -errno. */
static int move_copyup(struct move_ctx *c, struct node *dnode, int ufd, int lfd,
		       const char *oldp)
{
	struct view *v = c->v;
	struct name_set ln = { 0 };
	int r = list_names(lfd, &ln);
	for (size_t i = 0; r == 0 && i < ln.n; i++) {
		const char *name = ln.v[i];
		struct move_ent e;
		r = move_stat(ufd, lfd, name, &e);
		if (r < 0 || !e.lower)
			continue;
		autofree char *o = join_path(oldp, name);
		delta_note_base(v->delta, o, &e.lst);
		if (e.whiteout)
			continue;
		bool created = false;
		struct node *n = dnode ? node_get(&v->table, dnode, name) : NULL;
		if (!e.upper) {
			if (n)
				r = copyup_node(&v->cu, n, true);
			else
				r = copyup_raw(&v->cu, lfd, name, &e.lst, ufd);
			if (r == -EEXIST)
				r = 0;
			created = r == 0;
		}
		if (r == 0 && S_ISDIR(e.lst.st_mode)) {
			r = move_stat(ufd, lfd, name, &e);
			if (r == 0 && e.upper && S_ISDIR(e.ust.st_mode)) {
				autoclose int cu = open_subdir(ufd, name, true);
				autoclose int cl = open_subdir(lfd, name, true);
				if (cu < 0 || cl < 0)
					r = cu < 0 ? cu : cl;
				else
					r = move_copyup(c, n, cu, cl, o);
				if (r == 0 && created) {
					struct timespec ts[2] = { e.lst.st_atim, e.lst.st_mtim };
					(void)utimensat(cu, "", ts, AT_EMPTY_PATH);
				}
			}
		}
		if (n)
			node_put(&v->table, n);
	}
	vw_names_free(&ln);
	return r;
}

/* Make the upper directory srcu, about to land on the project directory
 * dlfd (deleted, or empty in the view), hide the project entries there
 * as a directory replacing a deleted one must: a whiteout for every name
 * it does not hold itself, and the same inside each of its directories
 * that lands on a project directory.  Names it lacks are not in its own
 * project directory either (move_copyup made sure), so this hides
 * nothing where it stands now.  Returns 0 or -errno. */
static int hide_dest_lower(int srcu, int dlfd)
{
	struct name_set ln = { 0 };
	int r = list_names(dlfd, &ln);
	for (size_t i = 0; r == 0 && i < ln.n; i++) {
		const char *name = ln.v[i];
		struct stat st, lst;
		if (fstatat(srcu, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno != ENOENT ||
			    (mknodat(srcu, name, S_IFCHR | 0000, makedev(0, 0)) < 0 && errno != EEXIST))
				r = -errno;
			continue;
		}
		if (!S_ISDIR(st.st_mode) || fstatat(dlfd, name, &lst, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(lst.st_mode))
			continue;
		autoclose int cu = open_subdir(srcu, name, true);
		autoclose int cl = open_subdir(dlfd, name, true);
		if (cu < 0 || cl < 0)
			r = cu < 0 ? cu : cl;
		else
			r = hide_dest_lower(cu, cl);
	}
	vw_names_free(&ln);
	return r;
}

/* The fds of the destination directory (np, newname) described by *dm:
 * *du its upper one, *dl its project one (-1 when absent).  Returns 0 or
 * -errno. */
static int dest_fds(struct node *np, const char *newname, const struct merged *dm, int *du,
		    int *dl)
{
	*du = *dl = -1;
	if (dm->upper) {
		*du = openat(node_upper(np), newname, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (*du < 0)
			return -errno;
	}
	if (dm->lower && S_ISDIR(dm->lst.st_mode)) {
		*dl = openat(node_merge(np), newname, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (*dl < 0)
			return -errno;
	}
	return 0;
}

/* Is the destination directory empty, hidden entries counted?  Returns
 * 0, -ENOTEMPTY or -errno. */
static int dest_empty(struct node *np, const char *newname, const struct merged *dm)
{
	autoclose int du = -1;
	autoclose int dl = -1;
	int r = dest_fds(np, newname, dm, &du, &dl);
	return r < 0 ? r : vw_dir_empty(du, dl);
}

/* The destination (np, newname), a directory empty in the view, is
 * about to be replaced by a directory: turn it into a whiteout (project
 * directory) or nothing, updating *dm.  Returns 0 or -errno. */
static int clear_dest_dir(struct view *v, struct node *np, const char *newname,
			  struct merged *dm)
{
	int r;
	uint64_t credit = 0;
	if (dm->upper) {
		char proc[64];
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d/%s", node_upper(np), newname);
		credit = DELTA_ENTRY_COST + copyup_xattr_bytes(proc);
	}
	if (dm->lower) {
		copyup_note_base(&v->cu, np, newname, &dm->lst);
		r = copyup_whiteout(&v->cu, np, newname, dm->upper);
		if (r < 0)
			return r;
		dm->whiteout = true;
	} else {
		autoclose int du = -1;
		autoclose int dl = -1;
		r = dest_fds(np, newname, dm, &du, &dl);
		if (r < 0)
			return r;
		(void)copyup_clear_whiteouts(du);
		if (unlinkat(node_upper(np), newname, AT_REMOVEDIR) < 0)
			return -errno;
	}
	vw_disk_credit(v, credit);
	dm->upper = false;
	return 0;
}

/* Prepare the move of directory node sn from (p, name) to (np, newname):
 * check, copy up, hide the destination's project entries.  Called with
 * tree_lock held exclusively.  Returns 0 or -errno. */
static int prepare_dir_move(struct view *v, struct node *p, const char *name, struct node *sn,
			    struct node *np, const char *newname, struct merged *dm)
{
	autofree char *oldp = node_path(&v->table, p, name);
	autofree char *newp = node_path(&v->table, np, newname);
	if (!oldp || !newp)
		return -ENOMEM;
	struct move_ctx c = { .v = v, .folds = node_folds(sn) || node_folds(np) };
	int lfd = node_merge(sn);
	int r = move_check(&c, node_upper(sn), lfd, oldp, newp, 0);
	if (r < 0)
		return r;
	bool replace = merged_exists(dm);
	if (replace) {
		r = dest_empty(np, newname, dm);
		if (r < 0)
			return r;
	}
	/* from here on nothing the sandbox can see changes until the
	 * destination is cleared, right before the rename */
	bool created = node_upper(sn) < 0;
	r = copyup_node(&v->cu, sn, true);
	if (r < 0)
		return r;
	if (lfd >= 0) {
		r = move_copyup(&c, sn, node_upper(sn), lfd, oldp);
		if (r < 0)
			return r;
		if (created) {
			struct stat st;
			if (fstat(lfd, &st) == 0) {
				struct timespec ts[2] = { st.st_atim, st.st_mtim };
				(void)utimensat(node_upper(sn), "", ts, AT_EMPTY_PATH);
			}
		}
	}
	if (dm->lower && S_ISDIR(dm->lst.st_mode)) {
		autoclose int dl = openat(node_merge(np), newname,
					  O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (dl < 0)
			return -errno;
		r = hide_dest_lower(node_upper(sn), dl);
		if (r < 0)
			return r;
	}
	return replace ? clear_dest_dir(v, np, newname, dm) : 0;
}

/* After the move of directory node sn: each directory node at or below
 * it merges from now on with the project directory at its new path, if
 * any (a fresh lookup would find the same), never again with the one at
 * its old path, whose entries its upper copy holds already.  Their own
 * entries are reached through their upper objects, so nothing else
 * changes.  Called with tree_lock held exclusively. */
static void repoint_merge(struct view *v, struct node *sn)
{
	size_t n;
	struct node **dirs = node_subtree_dirs(&v->table, sn, &n);
	for (size_t i = 0; i < n; i++) {
		struct node *d = dirs[i];
		/* a deleted directory merges with nothing */
		bool hashed = __atomic_load_n(&d->hashed, __ATOMIC_RELAXED);
		int pl = hashed ? node_merge(d->parent) : -1;
		int fd = pl >= 0 ? openat(pl, d->name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
				 : -1;
		/* names below now go where the new place's project side
		 * puts them (parents come first: theirs is up to date) */
		if (!node_folds(d) && hashed &&
		    (node_folds(d->parent) || (fd >= 0 && casefold_dir_may_fold(fd))))
			__atomic_store_n(&d->folds, true, __ATOMIC_RELEASE);
		node_set_merge(d, fd);
	}
	for (size_t i = 0; i < n; i++)
		node_put(&v->table, dirs[i]);
	free(dirs);
}

static int move_entry(struct view *v, struct node *p, const char *name, struct node *sn,
		      struct node *np, const char *newname, const struct merged *smp,
		      const struct merged *dmp);

/* Returns 0 or -errno. */
static int rename_node(struct view *v, struct node *p, const char *name, struct node *sn,
		       struct node *np, const char *newname, unsigned flags)
{
	if (sn->level != LEVEL_WRITE)
		return -EACCES;
	bool src_dir = S_ISDIR(sn->type);
	struct merged sm, dm;
	int r = vw_merged_stat(p, name, &sm);
	if (r < 0)
		return r;
	if (!merged_exists(&sm))
		return -ENOENT;
	r = vw_merged_stat(np, newname, &dm);
	if (r < 0)
		return r;
	if (dm.alias)
		return -EACCES; /* another spelling of an entry, maybe hidden */
	bool dexists = merged_exists(&dm);
	if (dexists) {
		bool ddir = S_ISDIR(merged_st(&dm)->st_mode);
		struct decision dd;
		vw_decide(v, np, newname, ddir, &dd);
		if (!vw_dec_visible(&dd))
			return -EACCES;
		if (flags & RENAME_NOREPLACE)
			return -EEXIST;
		if (p == np && strcmp(name, newname) == 0)
			return 0;
		if (dd.level != LEVEL_WRITE)
			return -EACCES;
		if (src_dir && !ddir)
			return -ENOTDIR;
		if (!src_dir && ddir)
			return -EISDIR;
	}
	struct decision nd;
	if (!vw_may_place(v, np, newname, src_dir, &nd))
		return -EACCES;
	copyup_thread_init();
	r = copyup_dir(&v->cu, np);
	if (r < 0)
		return r;
	if (src_dir)
		r = prepare_dir_move(v, p, name, sn, np, newname, &dm);
	else
		r = copyup_node(&v->cu, sn, true);
	if (r < 0)
		return r;
	if (sm.lower)
		copyup_note_base(&v->cu, p, name, &sm.lst);
	copyup_note_base(&v->cu, np, newname, dm.lower ? &dm.lst : NULL);
	if (src_dir)
		return move_entry(v, p, name, sn, np, newname, &sm, &dm);
	/* a file's node reaches its upper object by its place (see node.h):
	 * pin the one replaced, and move this one's place with the object,
	 * under its lock */
	if (dm.upper) {
		struct node *victim = node_get(&v->table, np, newname);
		if (victim && victim != sn) {
			pthread_mutex_lock(&victim->lock);
			r = vw_pin_locked(victim);
			pthread_mutex_unlock(&victim->lock);
		}
		if (victim)
			node_put(&v->table, victim);
		if (r < 0)
			return r;
	}
	pthread_mutex_lock(&sn->lock);
	r = vw_node_at_locked(sn, p, name) ? move_entry(v, p, name, sn, np, newname, &sm, &dm)
					   : -ENOENT;
	pthread_mutex_unlock(&sn->lock);
	return r;
}

/* The move itself, once checked and prepared.  Returns 0 or -errno. */
static int move_entry(struct view *v, struct node *p, const char *name, struct node *sn,
		      struct node *np, const char *newname, const struct merged *smp,
		      const struct merged *dmp)
{
	const struct merged sm = *smp, dm = *dmp;
	bool src_dir = S_ISDIR(sn->type);
	int r, pu = node_upper(p), npu = node_upper(np);
	if (src_dir && dm.whiteout) {
		/* a directory cannot replace the whiteout: swap them, which
		 * leaves the whiteout at the old path */
		if (renameat2(pu, name, npu, newname, RENAME_EXCHANGE) < 0)
			return -errno;
		if (!sm.lower)
			(void)unlinkat(pu, name, 0);
	} else {
		/* two names of one upper inode: rename(2) leaves both */
		struct stat st;
		if (!src_dir && dm.upper && fstatat(pu, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    st.st_dev == dm.ust.st_dev && st.st_ino == dm.ust.st_ino) {
			r = sm.lower ? copyup_whiteout(&v->cu, p, name, true)
				     : (unlinkat(pu, name, 0) < 0 ? -errno : 0);
			if (r < 0)
				return r;
			if (!sm.lower)
				copyup_drop_base(&v->cu, p, name);
			vw_disk_credit(v, DELTA_ENTRY_COST); /* one name fewer */
			node_move(&v->table, sn, np, newname);
			return 0;
		}
		unsigned fl = (dm.upper || dm.whiteout) ? 0 : RENAME_NOREPLACE;
		if (sm.lower)
			fl |= RENAME_WHITEOUT; /* hide the project entry in the same step */
		r = renameat2(pu, name, npu, newname, fl) < 0 ? -errno : 0;
		if (r == -EINVAL && (fl & RENAME_WHITEOUT)) {
			r = renameat2(pu, name, npu, newname, fl & ~RENAME_WHITEOUT) < 0 ? -errno : 0;
			if (r == 0 && mknodat(pu, name, S_IFCHR | 0000, makedev(0, 0)) < 0)
				r = -errno;
		}
		if (r < 0)
			return r;
		if (dm.upper)
			vw_disk_credit(v, DELTA_ENTRY_COST); /* the name replaced */
	}
	/* the old path is empty in the delta now unless a whiteout holds it */
	if (!sm.lower)
		copyup_drop_base(&v->cu, p, name);
	node_move(&v->table, sn, np, newname);
	if (src_dir)
		repoint_merge(v, sn);
	return 0;
}

void vw_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		  const char *newname, unsigned int flags)
{
	struct view *v = req_view(req);
	struct node *p = get_node(v, parent), *np = get_node(v, newparent);
	int r = flags & ~(unsigned)RENAME_NOREPLACE ? -EINVAL : vw_check_name(newname);
	if (r == 0) {
		struct fuse_entry_param e;
		r = vw_lookup(v, p, name, NULL, 0, &e);
		if (r == 0) {
			struct node *sn = get_node(v, e.ino);
			/* moving a directory moves a whole tree: see above */
			bool dir = S_ISDIR(sn->type);
			if (dir)
				pthread_rwlock_wrlock(&v->tree_lock);
			else
				vw_tree_rdlock(v);
			r = rename_node(v, p, name, sn, np, newname, flags);
			if (dir)
				pthread_rwlock_unlock(&v->tree_lock);
			else
				vw_tree_rdunlock(v);
			node_forget(&v->table, sn, 1);
		}
	}
	fuse_reply_err(req, -r);
}

/* ---- link ---- */

/* Returns 0 or -errno. */
static int do_link(struct view *v, struct node *sn, struct node *np, const char *newname,
		   struct fuse_entry_param *e)
{
	if (sn->level != LEVEL_WRITE)
		return -EACCES;
	if (S_ISDIR(sn->type))
		return -EPERM;
	struct merged m;
	struct decision dec;
	int r = vw_prepare_create(v, np, newname, false, &m, &dec);
	if (r < 0)
		return r;
	r = copyup_node(&v->cu, sn, true);
	if (r < 0)
		return r;
	autoclose int sfd = vw_upper_open(sn, O_PATH);
	if (sfd < 0)
		return sfd;
	char proc[64];
	proc_path(proc, sizeof(proc), sfd);
	int npu = node_upper(np);
	r = vw_disk_charge(v, DELTA_ENTRY_COST); /* a name costs as an entry */
	if (r < 0)
		return r;
	if (m.whiteout) {
		char tmp[64];
		copyup_tmpname(&v->cu, tmp, sizeof(tmp));
		if (linkat(AT_FDCWD, proc, v->cu.work_fd, tmp, AT_SYMLINK_FOLLOW) < 0)
			r = -errno;
		else if (renameat(v->cu.work_fd, tmp, npu, newname) < 0) {
			r = -errno;
			(void)unlinkat(v->cu.work_fd, tmp, 0);
		}
	} else {
		r = linkat(AT_FDCWD, proc, npu, newname, AT_SYMLINK_FOLLOW) < 0 ? -errno : 0;
	}
	if (r < 0) {
		vw_disk_credit(v, DELTA_ENTRY_COST);
		return r;
	}
	return vw_lookup(v, np, newname, &dec, S_IFREG, e);
}

void vw_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct view *v = req_view(req);
	struct fuse_entry_param e;
	vw_tree_rdlock(v);
	int r = do_link(v, get_node(v, ino), get_node(v, newparent), newname, &e);
	vw_tree_rdunlock(v);
	/* The new name is a new node, so a new kernel inode, while the old
	 * name's size and times stay cached from long before the link.
	 * From now on both names are asked every time (vw_attr_timeout);
	 * drop the old one's attributes before the link returns, so the
	 * very next access asks.  Invalidating attributes only takes no
	 * lock the kernel may hold for this request; its pages (dropped
	 * anyway once the attributes show a change, auto_inval_data) may be
	 * locked, so those go through the helper thread. */
	if (r == 0) {
		(void)fuse_lowlevel_notify_inval_inode(v->se, ino, -1, 0);
		vw_inval_inode(v, ino);
	}
	vw_reply_entry(req, r, &e);
}

