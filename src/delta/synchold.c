/* synchold.c - what sync holds back although nothing conflicts: what the
 * sandbox wrote that a tool on the host would obey, and symbolic links
 * that would show the host what the policy hides.  Used by sync.c only.
 *
 * A held entry is not applied; it stays in the delta like a conflict.
 *
 * Repositories.  git takes a directory for a repository when it holds
 * HEAD, objects/ and refs/ (or HEAD and a commondir file), and a '.git'
 * file saying "gitdir: PATH" for a link to one; a repository's config
 * and hooks run code on git status.  Mercurial does the same with .hg
 * and .hg/hgrc.  So, decided on the tree sync produces (project and
 * delta merged), never on the delta alone:
 *   - an entry named '.git' or '.hg' under any spelling git or a file
 *     system takes for it, unless it is a directory the project already
 *     has (then the policy decides what inside it may change);
 *   - HEAD, objects, refs and commondir of a directory that the delta
 *     would turn into a git repository;
 *   - config, config.worktree, hooks and commondir of any directory that
 *     is a git repository after sync;
 *   - rebase-merge, rebase-apply and sequencer of one: the state of an
 *     unfinished rebase, cherry-pick or revert, whose todo list may say
 *     "exec COMMAND", which git on the host runs on --continue;
 *   - hgrc, hgrc-not-shared and sharedpath in a directory named '.hg'.
 *
 * Symbolic links.  The target is resolved lexically from the link's
 * place, following the links it meets on the way in the merged tree (a
 * link to a link); the link is held if the resolution leaves the project
 * (absolute, or '..' past the root), if a path on the way is below read
 * in the policy, or if it is a directory with such a path below it.
 * view counts as hidden: its content is unreadable in the sandbox but
 * would be readable through the link on the host. */
#include "delta/delta.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <search.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "common/casefold.h"
#include "delta/delta_int.h"
#include "policy/policy.h"

/* Links followed in one resolution, as the kernel's limit. */
#define MAX_HOPS 40
/* Entries a check of a linked directory may look at before it gives up
 * and holds the link. */
#define MAX_WALK 20000

/* ---- names ------------------------------------------------------------ */

/* Length of the UTF-8 code point at s if HFS+ ignores it when comparing
 * names (git's next_hfs_char: zero-width joiners, direction marks, BOM),
 * else 0. */
static size_t hfs_ignorable(const unsigned char *s)
{
	if (s[0] == 0xe2 && s[1] == 0x80 &&
	    ((s[2] >= 0x8c && s[2] <= 0x8f) || (s[2] >= 0xaa && s[2] <= 0xae)))
		return 3;
	if (s[0] == 0xe2 && s[1] == 0x81 && s[2] >= 0xaa && s[2] <= 0xaf)
		return 3;
	if (s[0] == 0xef && s[1] == 0xbb && s[2] == 0xbf)
		return 3;
	return 0;
}

/* Does component [s, end) spell ".WORD", or the NTFS short name SHORT,
 * as git or a file system would take it: ASCII case ignored, HFS+
 * ignorable code points dropped, trailing dots and spaces dropped, an
 * NTFS stream suffix (":...") dropped? */
static bool spells(const char *s, const char *end, const char *word, const char *shortn)
{
	/* a whole name fits: a short buffer would let trailing dots or
	 * spaces push ".git" past its end */
	char buf[NAME_MAX + 1];
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)s; p < (const unsigned char *)end;) {
		size_t skip = hfs_ignorable(p);
		if (skip) {
			p += skip;
			continue;
		}
		if (*p == ':')
			break;
		if (n + 1 >= sizeof(buf))
			return false;
		buf[n++] = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
		p++;
	}
	while (n && (buf[n - 1] == '.' || buf[n - 1] == ' '))
		n--;
	buf[n] = '\0';
	return (buf[0] == '.' && strcmp(buf + 1, word) == 0) || strcmp(buf, shortn) == 0;
}

/* Is name (one component on Linux, but a path on Windows, where '\' also
 * separates) a spelling of ".WORD" in any of its parts? */
static bool name_spells(const char *name, const char *word, const char *shortn)
{
	for (const char *p = name;;) {
		const char *end = strchrnul(p, '\\');
		if (spells(p, end, word, shortn))
			return true;
		if (!*end)
			return false;
		p = end + 1;
	}
}

bool hold_is_dotgit(const char *name)
{
	return name_spells(name, "git", "git~1");
}

static bool is_dothg(const char *name)
{
	return name_spells(name, "hg", "hg~1");
}

/* The last component of path. */
static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

/* Is name one of list as a case-insensitive file system may take it:
 * ASCII case ignored, and the KELVIN SIGN and LONG S that fold to k and
 * s ("hook\u017f" opens "hooks" there)? */
static bool in_list(const char *name, const char *const *list)
{
	autofree char *folded = casefold_dup(name);
	for (size_t i = 0; list[i]; i++)
		if (strcasecmp(folded, list[i]) == 0)
			return true;
	return false;
}

static const char *const git_markers[] = { "HEAD", "objects", "refs", "commondir", NULL };
static const char *const git_config[] = { "config", "config.worktree", "hooks", "commondir", NULL };
static const char *const git_todo[] = { "rebase-merge", "rebase-apply", "sequencer", NULL };
static const char *const hg_config[] = { "hgrc", "hgrc-not-shared", "sharedpath", NULL };

/* Is there a non-whiteout entry in upper directory ufd whose name is
 * want as the project's file system may take it (in_list)?  With
 * whiteout, is there a whiteout named exactly want? */
static bool upper_has(int ufd, char **names, const char *want, bool whiteout)
{
	const char *const one[] = { want, NULL };
	for (size_t i = 0; names[i]; i++) {
		struct stat st;
		if (whiteout ? strcmp(names[i], want) != 0 : !in_list(names[i], one))
			continue;
		if (fstatat(ufd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (delta_is_whiteout(&st) == whiteout)
			return true;
	}
	return false;
}

/* git's is_git_directory on a directory, as a test of names: HEAD of any
 * type (git accepts a symlink, and we do not trust content), objects and
 * refs of any type (git only checks access(X_OK)). */
static bool project_has(int pfd, const char *name)
{
	struct stat st;
	return pfd >= 0 && fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static bool merged_has(int ufd, char **names, int pfd, const char *name)
{
	return upper_has(ufd, names, name, false) ||
	       (project_has(pfd, name) && !upper_has(ufd, names, name, true));
}

static bool project_is_repo(int pfd)
{
	return project_has(pfd, "HEAD") &&
	       ((project_has(pfd, "objects") && project_has(pfd, "refs")) ||
		project_has(pfd, "commondir"));
}

static bool merged_is_repo(int ufd, char **names, int pfd)
{
	return merged_has(ufd, names, pfd, "HEAD") &&
	       ((merged_has(ufd, names, pfd, "objects") && merged_has(ufd, names, pfd, "refs")) ||
		merged_has(ufd, names, pfd, "commondir"));
}

void hold_scan_dir(int ufd, int pfd, const char *path, char **names, enum hold_kind *holds)
{
	bool repo = merged_is_repo(ufd, names, pfd);
	bool new_repo = repo && !project_is_repo(pfd);
	bool in_hg = is_dothg(base_name(path)) && path[0];

	for (size_t i = 0; names[i]; i++) {
		const char *n = names[i];
		struct stat ust, pst;
		holds[i] = HOLD_NONE;
		if (fstatat(ufd, n, &ust, AT_SYMLINK_NOFOLLOW) < 0 || delta_is_whiteout(&ust))
			continue;
		/* an existing directory only passes the sandbox's changes inside
		 * it, which the checks one level down see */
		bool existing_dir = S_ISDIR(ust.st_mode) && pfd >= 0 &&
				    fstatat(pfd, n, &pst, AT_SYMLINK_NOFOLLOW) == 0 &&
				    S_ISDIR(pst.st_mode);
		if (hold_is_dotgit(n) && !existing_dir)
			holds[i] = HOLD_DOTGIT;
		else if (is_dothg(n) && !existing_dir)
			holds[i] = HOLD_HG;
		else if (new_repo && in_list(n, git_markers))
			holds[i] = HOLD_GITDIR;
		else if (repo && in_list(n, git_config))
			holds[i] = HOLD_GITCONFIG;
		else if (repo && in_list(n, git_todo))
			holds[i] = HOLD_GITTODO;
		else if (in_hg && in_list(n, hg_config))
			holds[i] = HOLD_HGCONFIG;
	}
}

/* ---- symbolic links ----------------------------------------------------- */

struct resolver {
	const struct hold_ctx *h;
	int depth;     /* links being followed, nested */
	size_t walked; /* entries looked at */
	char *why; /* the reason, once held */
	bool limited; /* held at MAX_WALK or MAX_HOPS, not for what was found */
	int trees;    /* check_tree() calls under way */
};

/* A path as its components. */
struct comps {
	char **v;
	size_t n;
};

static void comps_free(struct comps *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i]);
	free(c->v);
	c->v = NULL;
	c->n = 0;
}

static void comps_push(struct comps *c, const char *s, size_t len)
{
	c->v = xrealloc(c->v, (c->n + 1) * sizeof(*c->v));
	c->v[c->n++] = xstrndup(s, len);
}

/* Append the components of rel to c, applying '.' and '..' lexically.
 * Returns 0, or -1 if '..' goes past the root. */
static int comps_apply(struct comps *c, const char *rel)
{
	for (const char *p = rel; *p;) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *end = strchrnul(p, '/');
		size_t n = (size_t)(end - p);
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (!c->n)
				return -1;
			free(c->v[--c->n]);
		} else if (!(n == 1 && p[0] == '.')) {
			comps_push(c, p, n);
		}
		p = end;
	}
	return 0;
}

static char *comps_join(const struct comps *c, size_t upto)
{
	size_t len = 1;
	for (size_t i = 0; i < upto; i++)
		len += strlen(c->v[i]) + 1;
	char *s = xmalloc(len), *o = s;
	*o = '\0';
	for (size_t i = 0; i < upto; i++)
		o += sprintf(o, "%s%s", i ? "/" : "", c->v[i]);
	return s;
}

/* Open directory path (components [0, n) of c) under root fd, never
 * through a symlink.  Returns an fd, or -1 with errno set. */
static int open_beneath(int root, const struct comps *c, size_t n)
{
	int fd = openat(root, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	for (size_t i = 0; fd >= 0 && i < n; i++) {
		int next = openat(fd, c->v[i], O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int e = errno;
		close(fd);
		fd = next;
		errno = e;
	}
	return fd;
}

/* lstat of path (components [0, n) of c) in the tree sync produces: the
 * delta's entry if it has one (a whiteout meaning none), else the
 * project's.  A symlink's target goes to *target (malloc'd).  Returns 0
 * or -ENOENT. */
static int merged_lstat(const struct hold_ctx *h, const struct comps *c, size_t n,
			struct stat *st, char **target)
{
	*target = NULL;
	if (n == 0)
		return fstat(h->project_fd, st) < 0 ? -errno : 0;
	const int roots[2] = { h->upper_fd, h->project_fd };
	for (int r = 0; r < 2; r++) {
		autoclose int dfd = open_beneath(roots[r], c, n - 1);
		if (dfd < 0)
			continue;
		if (fstatat(dfd, c->v[n - 1], st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (r == 0 && delta_is_whiteout(st))
			return -ENOENT;
		if (S_ISLNK(st->st_mode)) {
			size_t cap = (size_t)st->st_size + 2;
			autofree char *t = xmalloc(cap);
			ssize_t len = readlinkat(dfd, c->v[n - 1], t, cap);
			if (len < 0 || (size_t)len >= cap)
				return -ENOENT;
			t[len] = '\0';
			*target = steal_pointer(&t);
		}
		return 0;
	}
	return -ENOENT;
}

static bool hold_why(struct resolver *r, char *why)
{
	if (!r->why)
		r->why = why;
	else
		free(why);
	return true;
}

/* hold_why() for a limit of the check reached. */
static bool hold_limit(struct resolver *r, char *why)
{
	r->limited = true;
	return hold_why(r, why);
}

/* Is path, at the given type, below read in the policy?  A directory
 * shown only for its visible descendants is not: what is hidden below it
 * is found by name.  Decided as on a case-insensitive file system on
 * every project, since any directory of it may fold case: "SECRETS/x"
 * may be "secrets/x" there. */
static bool hidden(const struct hold_ctx *h, const char *path, bool is_dir)
{
	struct decision d;
	if (!h->policy)
		return false;
	policy_decide_folded(h->policy, path, is_dir, &d);
	return d.level < LEVEL_READ && !(is_dir && d.traversable);
}

static bool check_path(struct resolver *r, const char *from, const char *rel);

/* What check_tree() found in one project directory. */
struct memo_entry {
	char *path;
	char *why; /* the reason it holds a link, or NULL: nothing hidden */
};

static int memo_cmp(const void *a, const void *b)
{
	return strcmp(((const struct memo_entry *)a)->path, ((const struct memo_entry *)b)->path);
}

static void memo_entry_free(void *p)
{
	struct memo_entry *e = p;
	free(e->path);
	free(e->why);
	free(e);
}

void hold_memo_clear(struct hold_memo *memo)
{
	tdestroy(memo->root, memo_entry_free);
	memo->root = NULL;
}

static bool check_tree_walk(struct resolver *r, int dfd, const char *path);

/* Look through project directory dfd (path) for an entry the policy
 * hides, or a link that leads to one.  Returns true if the link is held.
 * A directory is looked through once per sync: links by the thousand to
 * one large directory would otherwise make sync take hours.  What a
 * limit (MAX_WALK, MAX_HOPS) cut short is remembered only for the
 * directory the check began at, whose next check would end the same;
 * a directory below it was left half seen. */
static bool check_tree(struct resolver *r, int dfd, const char *path)
{
	struct hold_memo *memo = r->h->memo;
	struct memo_entry key = { .path = (char *)path };
	if (!memo || r->why)
		return check_tree_walk(r, dfd, path);
	struct memo_entry **found = tfind(&key, &memo->root, memo_cmp);
	if (found)
		return (*found)->why ? hold_why(r, xstrdup((*found)->why)) : false;
	bool top = r->trees == 0;
	r->trees++;
	bool held = check_tree_walk(r, dfd, path);
	r->trees--;
	if (r->limited && !top)
		return held;
	struct memo_entry *e = xmalloc(sizeof(*e));
	e->path = xstrdup(path);
	e->why = held && r->why ? xstrdup(r->why) : NULL;
	if (held && !e->why)
		e->why = xasprintf("it leads to '%s', which the policy hides", path);
	if (!tsearch(e, &memo->root, memo_cmp))
		memo_entry_free(e); /* no memory for it: only not remembered */
	return held;
}

static bool check_tree_walk(struct resolver *r, int dfd, const char *path)
{
	char **names;
	if (delta_list_dir(dfd, &names) < 0)
		return hold_why(r, xasprintf("it leads to '%s', which cannot be read to check it", path));
	bool held = false;
	for (size_t i = 0; names[i] && !held; i++) {
		autofree char *cp = path[0] ? xasprintf("%s/%s", path, names[i]) : xstrdup(names[i]);
		struct stat st;
		if (++r->walked > MAX_WALK) {
			held = hold_limit(r, xasprintf("it leads to '%s', too large a tree to check",
						       path[0] ? path : "."));
			break;
		}
		if (fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (hidden(r->h, cp, S_ISDIR(st.st_mode))) {
			held = hold_why(r, xasprintf("it leads to '%s', which the policy hides", cp));
		} else if (S_ISDIR(st.st_mode)) {
			autoclose int sub = openat(dfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0)
				held = check_tree(r, sub, cp);
		} else if (S_ISLNK(st.st_mode)) {
			size_t cap = (size_t)st.st_size + 2;
			autofree char *t = xmalloc(cap);
			ssize_t len = readlinkat(dfd, names[i], t, cap);
			if (len >= 0 && (size_t)len < cap) {
				t[len] = '\0';
				held = check_path(r, path, t);
			}
		}
	}
	delta_free_names(names);
	return held;
}

/* Check the path c, following the links met on the way.  Returns true
 * if the link is held (r->why set). */
static bool check_comps(struct resolver *r, const struct comps *c)
{
	struct stat st;
	for (size_t i = 1; i <= c->n; i++) {
		autofree char *t = NULL;
		autofree char *p = comps_join(c, i);
		if (merged_lstat(r->h, c, i, &st, &t) < 0) {
			/* does not exist (yet): only the names can tell */
			autofree char *all = comps_join(c, c->n);
			if (hidden(r->h, all, false) || hidden(r->h, all, true))
				return hold_why(r, xasprintf("it leads to '%s', which the policy hides", all));
			return false;
		}
		if (hidden(r->h, p, S_ISDIR(st.st_mode)))
			return hold_why(r, xasprintf("it leads to '%s', which the policy hides", p));
		if (S_ISLNK(st.st_mode)) {
			/* splice: the link's directory, its target, the rest */
			autofree char *dir = comps_join(c, i - 1);
			autofree char *rest = xstrdup(t);
			for (size_t k = i; k < c->n; k++) {
				char *s = xasprintf("%s/%s", rest, c->v[k]);
				free(rest);
				rest = s;
			}
			return check_path(r, dir, rest);
		}
		if (!S_ISDIR(st.st_mode))
			return false;
	}
	/* the end of the chain: a directory must not hold what is hidden */
	autofree char *t = NULL;
	if (merged_lstat(r->h, c, c->n, &st, &t) < 0 || !S_ISDIR(st.st_mode))
		return false;
	autoclose int dfd = open_beneath(r->h->project_fd, c, c->n);
	if (dfd < 0)
		return false; /* made by the sandbox: nothing hidden in it */
	autoclose int rd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rd < 0)
		return hold_why(r, xasprintf("it leads to a directory that cannot be read to check it"));
	autofree char *end = comps_join(c, c->n);
	return check_tree(r, rd, end);
}

/* Resolve rel from directory from (project path form) and check every
 * path on the way.  Returns true if the link is held (r->why set). */
static bool check_path(struct resolver *r, const char *from, const char *rel)
{
	if (rel[0] == '/')
		return hold_why(r, r->depth ? xasprintf("it leads to '%s', outside the project", rel)
					    : xasprintf("an absolute path, outside the project"));
	/* a chain of links, or links in linked directories: bounded as the
	 * kernel bounds a resolution */
	if (r->depth >= MAX_HOPS)
		return hold_limit(r, xasprintf("it leads through too many links"));
	struct comps c = { 0 };
	bool held;
	if (comps_apply(&c, from) < 0 || comps_apply(&c, rel) < 0) {
		held = hold_why(r, xasprintf("it leads outside the project"));
	} else {
		r->depth++;
		held = check_comps(r, &c);
		r->depth--;
	}
	comps_free(&c);
	return held;
}

int hold_check_link(const struct hold_ctx *h, const char *path, const char *target, char **why)
{
	struct resolver r = { .h = h };
	autofree char *dir = xstrndup(path, (size_t)(base_name(path) - path));
	*why = NULL;
	if (!check_path(&r, dir, target))
		return 0;
	*why = r.why;
	return 1;
}
