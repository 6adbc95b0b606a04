/* view_dir.c - directories of the FUSE view: walking host directories,
 * emptiness that counts hidden entries, and the merged, filtered listing
 * served to readdir (see view_int.h). */
#include "view/view_int.h"

#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

/* The state of one open directory: a snapshot of its merged, filtered
 * entries taken at the first readdir (and again at each rewind). */
struct dir_ent {
	char *name;
	uint64_t ino;
	mode_t type;
	struct decision dec;
};
struct dir_handle {
	struct dir_ent *ents;
	size_t n, cap;
	bool built;
};


/* ---- directories ----------------------------------------------------------- */

/* The entry's type, statting when readdir does not say; whiteouts are
 * reported as 0.  Returns the S_IFMT bits or -errno. */
int vw_entry_type(int dirfd, const struct dirent *de)
{
	if (de->d_type != DT_UNKNOWN && de->d_type != DT_CHR)
		return (int)DTTOIF(de->d_type);
	struct stat st;
	if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (delta_is_whiteout(&st))
		return 0;
	return (int)(st.st_mode & S_IFMT);
}

void vw_names_add(struct name_set *s, const char *name)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	s->v[s->n++] = xstrdup(name);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void vw_names_sort(struct name_set *s)
{
	if (s->n > 1)
		qsort(s->v, s->n, sizeof(*s->v), cmp_str);
}

bool vw_names_has(const struct name_set *s, const char *name)
{
	return s->n && bsearch(&name, s->v, s->n, sizeof(*s->v), cmp_str) != NULL;
}

void vw_names_free(struct name_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/* ---- emptiness (hidden entries count) ---- */

static int empty_upper_cb(int dirfd, const struct dirent *de, void *arg)
{
	int t = vw_entry_type(dirfd, de);
	if (t < 0)
		return t;
	if (t != 0)
		return -ENOTEMPTY;
	vw_names_add(arg, de->d_name);
	return 0;
}

static int empty_lower_cb(int dirfd, const struct dirent *de, void *arg)
{
	(void)dirfd;
	return vw_names_has(arg, de->d_name) ? 0 : -ENOTEMPTY;
}

/* Is the merged directory empty, counting entries the sandbox cannot
 * see?  Returns 0, -ENOTEMPTY or -errno. */
int vw_dir_empty(int ufd, int lfd)
{
	struct name_set wh = { 0 };
	int r = 0;
	if (ufd >= 0)
		r = for_each_dir_entry(ufd, empty_upper_cb, &wh);
	vw_names_sort(&wh);
	if (r == 0 && lfd >= 0)
		r = for_each_dir_entry(lfd, empty_lower_cb, &wh);
	vw_names_free(&wh);
	return r;
}

/* ---- readdir ---- */

static void dh_add(struct dir_handle *h, const char *name, uint64_t ino, mode_t type,
		   const struct decision *dec)
{
	if (h->n == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 32;
		h->ents = xrealloc(h->ents, h->cap * sizeof(*h->ents));
	}
	struct dir_ent *e = &h->ents[h->n++];
	e->name = xstrdup(name);
	e->ino = ino;
	e->type = type;
	if (dec)
		e->dec = *dec;
	else
		memset(&e->dec, 0, sizeof(e->dec));
}

static void dh_free(struct dir_handle *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n; i++)
		free(h->ents[i].name);
	free(h->ents);
	free(h);
}

struct snap_ctx {
	struct view *v;
	struct node *dir;
	struct dir_handle *h;
	struct name_set upper; /* names upper holds, whiteouts included */
	char *path;            /* "dirpath/" prefix, then the entry name */
	size_t plen;
	int lfd;               /* the merged project directory, or -1 */
};

/* Add the entry if its path is visible. */
static void snap_add(struct snap_ctx *c, const char *name, uint64_t ino, int type)
{
	size_t nlen = strlen(name);
	memcpy(c->path + c->plen, name, nlen + 1);
	struct decision d;
	vw_policy_decide(c->v, node_folds(c->dir), c->path, type == S_IFDIR, &d);
	if (!vw_dec_visible(&d))
		return;
	uint64_t known;
	if (node_peek_ino(&c->v->table, c->dir, name, &known))
		ino = known;
	dh_add(c->h, name, ino, (mode_t)type, &d);
}

static int snap_upper_cb(int dirfd, const struct dirent *de, void *arg)
{
	struct snap_ctx *c = arg;
	int t = vw_entry_type(dirfd, de);
	if (t < 0)
		return t == -ENOENT ? 0 : t;
	vw_names_add(&c->upper, de->d_name);
	if (t == 0)
		return 0; /* whiteout */
	uint64_t ino = (uint64_t)de->d_ino | NODE_UPPER_INO_BIT;
	struct stat lst;
	if (c->lfd >= 0 && fstatat(c->lfd, de->d_name, &lst, AT_SYMLINK_NOFOLLOW) == 0 &&
	    (int)(lst.st_mode & S_IFMT) == t)
		ino = lst.st_ino;
	snap_add(c, de->d_name, ino, t);
	return 0;
}

static int snap_lower_cb(int dirfd, const struct dirent *de, void *arg)
{
	struct snap_ctx *c = arg;
	if (vw_names_has(&c->upper, de->d_name))
		return 0;
	int t = vw_entry_type(dirfd, de);
	if (t <= 0)
		return t == -ENOENT ? 0 : t;
	snap_add(c, de->d_name, de->d_ino, t);
	return 0;
}

/* Snapshot the merged, filtered listing of dir.  Returns 0 or -errno. */
static int snapshot(struct view *v, struct node *dir, struct dir_handle *h)
{
	struct node *parent = dir->parent ? dir->parent : dir;
	dh_add(h, ".", dir->ino, S_IFDIR, NULL);
	dh_add(h, "..", parent->ino, S_IFDIR, NULL);
	autofree char *dpath = node_path(&v->table, dir, NULL);
	if (!dpath)
		return -ENOMEM;
	struct snap_ctx c = { .v = v, .dir = dir, .h = h, .lfd = node_merge(dir) };
	c.plen = strlen(dpath);
	c.path = malloc(c.plen + NAME_MAX + 2);
	if (!c.path)
		return -ENOMEM;
	memcpy(c.path, dpath, c.plen);
	if (c.plen)
		c.path[c.plen++] = '/';
	int r = 0, ufd = node_upper(dir);
	if (ufd >= 0)
		r = for_each_dir_entry(ufd, snap_upper_cb, &c);
	vw_names_sort(&c.upper);
	if (r == 0 && c.lfd >= 0)
		r = for_each_dir_entry(c.lfd, snap_lower_cb, &c);
	vw_names_free(&c.upper);
	free(c.path);
	return r;
}

void vw_listing_free(void *p)
{
	dh_free(p);
}

void vw_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct view *v = req_view(req);
	struct node *dir = get_node(v, ino);
	if (v->kperm) {
		/* nothing to check that lookup did not: let the kernel open
		 * directories by itself and cache their listings (readdir then
		 * comes with fh 0 and uses the node's listing) */
		fuse_reply_err(req, ENOSYS);
		return;
	}
	/* listing names is what `view` (and a traversable directory) grants */
	if (!node_visible(dir)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	/* the listing is taken at the first readdir, not here: only then
	 * does the kernel hold the directory against concurrent changes, so
	 * the listing it caches is never older than the cache */
	struct dir_handle *h = xcalloc(1, sizeof(*h));
	fi->fh = (uintptr_t)h;
	fi->keep_cache = 1;
	fi->cache_readdir = 1;
	if (fuse_reply_open(req, fi) < 0)
		dh_free(h);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, bool plus)
{
	struct view *v = req_view(req);
	struct node *dir = get_node(v, ino);
	struct dir_handle *h = (struct dir_handle *)(uintptr_t)fi->fh;
	bool shared = false;
	if (h && (off == 0 || !h->built)) {
		for (size_t i = 0; i < h->n; i++)
			free(h->ents[i].name);
		h->n = 0;
		int r = snapshot(v, dir, h);
		if (r < 0) {
			fuse_reply_err(req, -r);
			return;
		}
		h->built = true;
	} else if (!h) {
		/* no opendir: a listing per directory node, taken at offset 0
		 * and dropped once read to the end */
		shared = true;
		/* the lookups below take tree_lock, which comes before any
		 * node's lock (view_int.h): take it first, or a directory's
		 * rename, holding it and copying this directory up, waits
		 * for the lock held here while this waits for it */
		vw_tree_rdlock(v);
		pthread_mutex_lock(&dir->lock);
		if (off == 0 || !dir->listing) {
			if (dir->listing)
				dh_free(dir->listing);
			dir->listing = calloc(1, sizeof(struct dir_handle));
			int r = dir->listing ? snapshot(v, dir, dir->listing) : -ENOMEM;
			if (r < 0) {
				dh_free(dir->listing);
				dir->listing = NULL;
				pthread_mutex_unlock(&dir->lock);
				vw_tree_rdunlock(v);
				fuse_reply_err(req, -r);
				return;
			}
		}
		h = dir->listing;
	}
	/* out of memory fails this request, never the process */
	autofree char *buf = malloc(size ? size : 1);
	if (!buf) {
		if (shared) {
			pthread_mutex_unlock(&dir->lock);
			vw_tree_rdunlock(v);
		}
		fuse_reply_err(req, ENOMEM);
		return;
	}
	size_t pos = 0;
	for (size_t i = off < 0 ? 0 : (size_t)off; i < h->n; i++) {
		struct dir_ent *de = &h->ents[i];
		size_t rem = size - pos, len;
		if (!plus) {
			struct stat st = { .st_ino = de->ino, .st_mode = de->type };
			len = fuse_add_direntry(req, buf + pos, rem, de->name, &st, (off_t)i + 1);
			if (len > rem)
				break;
		} else {
			struct fuse_entry_param e;
			if (i < 2) {
				memset(&e, 0, sizeof(e));
				e.attr.st_ino = de->ino;
				e.attr.st_mode = de->type;
			} else if (vw_lookup(v, dir, de->name, &de->dec, de->type, &e) < 0) {
				continue; /* gone since opendir */
			}
			len = fuse_add_direntry_plus(req, buf + pos, rem, de->name, &e, (off_t)i + 1);
			if (len > rem) {
				if (e.ino)
					node_forget(&v->table, get_node(v, e.ino), 1);
				break;
			}
		}
		pos += len;
	}
	if (shared) {
		if (pos == 0) {
			dh_free(dir->listing);
			dir->listing = NULL;
		}
		pthread_mutex_unlock(&dir->lock);
		vw_tree_rdunlock(v);
	}
	fuse_reply_buf(req, buf, pos);
}

void vw_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

void vw_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

void vw_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	if (fi->fh != 0)
		dh_free((struct dir_handle *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

