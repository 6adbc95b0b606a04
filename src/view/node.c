/* node.c - the inode table of a view (see node.h). */
#include "view/node.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/casefold.h"
#include "common/util.h"

static size_t hash_key(const struct node *parent, const char *name)
{
	/* FNV-1a over the name, mixed with the parent's address */
	uint64_t h = 1469598103934665603ULL ^ ((uintptr_t)parent >> 4);
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		h ^= *p;
		h *= 1099511628211ULL;
	}
	return (size_t)(h ^ (h >> 29));
}

void node_table_init(struct node_table *t, int lower_fd, int upper_fd, uint64_t root_ino,
		     const struct decision *root_dec)
{
	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
	t->nbuckets = 1024;
	t->buckets = xcalloc(t->nbuckets, sizeof(*t->buckets));
	struct node *r = &t->root;
	pthread_mutex_init(&r->lock, NULL);
	r->refs = 1; /* never freed */
	r->nlookup = 1;
	r->ino = root_ino;
	r->type = S_IFDIR;
	r->level = root_dec->level;
	r->traversable = root_dec->traversable;
	/* the mountpoint itself always shows, even if the policy hides it */
	if (!node_visible(r))
		r->traversable = true;
	r->lower_fd = lower_fd;
	r->merge_fd = lower_fd;
	r->upper_fd = upper_fd;
	r->in_upper = true;
	r->hashed = true;
}

static void node_free_one(struct node_table *t, struct node *n)
{
	if (n->listing && t->listing_free)
		t->listing_free(n->listing);
	casefold_names_free(n->spellings);
	if (n->name != n->lname)
		free(n->name);
	free(n->lname);
	if (n->lower_fd >= 0)
		close(n->lower_fd);
	if (n->upper_fd >= 0 && !S_ISDIR(n->type) && t->pin_freed)
		t->pin_freed(t->pin_arg, n->upper_fd);
	if (n->upper_fd >= 0)
		close(n->upper_fd);
	for (size_t i = 0; i < n->nextra; i++)
		close(n->extra_fds[i]);
	free(n->extra_fds);
	pthread_mutex_destroy(&n->lock);
	free(n);
}

void node_table_destroy(struct node_table *t)
{
	struct node *n = t->all;
	while (n) {
		struct node *next = n->all_next;
		node_free_one(t, n);
		n = next;
	}
	t->all = NULL;
	free(t->buckets);
	t->buckets = NULL;
	if (t->root.listing && t->listing_free)
		t->listing_free(t->root.listing);
	casefold_names_free(t->root.spellings);
	if (t->root.lower_fd >= 0)
		close(t->root.lower_fd);
	if (t->root.upper_fd >= 0)
		close(t->root.upper_fd);
	pthread_mutex_destroy(&t->root.lock);
	pthread_mutex_destroy(&t->lock);
}

static void chain_remove(struct node_table *t, struct node *n)
{
	size_t b = hash_key(n->parent, n->name) & (t->nbuckets - 1);
	for (struct node **pp = &t->buckets[b]; *pp; pp = &(*pp)->hnext) {
		if (*pp == n) {
			*pp = n->hnext;
			n->hnext = NULL;
			t->count--;
			return;
		}
	}
}

static void chain_add(struct node_table *t, struct node *n)
{
	if (t->count >= t->nbuckets * 2) {
		size_t nb = t->nbuckets * 2;
		struct node **nbk = xcalloc(nb, sizeof(*nbk));
		for (size_t i = 0; i < t->nbuckets; i++) {
			struct node *m = t->buckets[i];
			while (m) {
				struct node *next = m->hnext;
				size_t b = hash_key(m->parent, m->name) & (nb - 1);
				m->hnext = nbk[b];
				nbk[b] = m;
				m = next;
			}
		}
		free(t->buckets);
		t->buckets = nbk;
		t->nbuckets = nb;
	}
	size_t b = hash_key(n->parent, n->name) & (t->nbuckets - 1);
	n->hnext = t->buckets[b];
	t->buckets[b] = n;
	t->count++;
}

/* Caller holds t->lock. */
static struct node *chain_find(struct node_table *t, struct node *parent, const char *name)
{
	size_t b = hash_key(parent, name) & (t->nbuckets - 1);
	for (struct node *n = t->buckets[b]; n; n = n->hnext)
		if (n->parent == parent && strcmp(n->name, name) == 0)
			return n;
	return NULL;
}

/* Drop one reference; nodes that reach zero are unlinked from the table
 * and appended to *dead for freeing outside the lock.  Caller holds
 * t->lock. */
static void node_put_locked(struct node_table *t, struct node *n, struct node **dead)
{
	while (n && n != &t->root) {
		if (--n->refs > 0)
			return;
		if (n->hashed) {
			chain_remove(t, n);
			n->hashed = false;
		}
		struct node *p = n->parent, *lp = n->lparent;
		if (n->all_prev)
			n->all_prev->all_next = n->all_next;
		else
			t->all = n->all_next;
		if (n->all_next)
			n->all_next->all_prev = n->all_prev;
		n->hnext = *dead;
		*dead = n;
		t->live--;
		/* lparent first (recursion bounded by depth), then parent */
		if (lp != p)
			node_put_locked(t, lp, dead);
		else if (lp)
			--lp->refs; /* two refs held on the same parent */
		n = p;
	}
}

static void free_dead(struct node_table *t, struct node *dead)
{
	while (dead) {
		struct node *next = dead->hnext;
		node_free_one(t, dead);
		dead = next;
	}
}

struct node *node_find_lookup(struct node_table *t, struct node *parent, const char *name)
{
	pthread_mutex_lock(&t->lock);
	struct node *n = chain_find(t, parent, name);
	if (n) {
		if (n->nlookup++ == 0)
			n->refs++;
	}
	pthread_mutex_unlock(&t->lock);
	return n;
}

struct node *node_get(struct node_table *t, struct node *parent, const char *name)
{
	pthread_mutex_lock(&t->lock);
	struct node *n = chain_find(t, parent, name);
	if (n)
		n->refs++;
	pthread_mutex_unlock(&t->lock);
	return n;
}

void node_put(struct node_table *t, struct node *node)
{
	struct node *dead = NULL;
	pthread_mutex_lock(&t->lock);
	node_put_locked(t, node, &dead);
	pthread_mutex_unlock(&t->lock);
	free_dead(t, dead);
}

bool node_table_full(struct node_table *t)
{
	pthread_mutex_lock(&t->lock);
	bool full = t->max_live && t->live >= t->max_live;
	pthread_mutex_unlock(&t->lock);
	return full;
}

bool node_peek_ino(struct node_table *t, struct node *parent, const char *name, uint64_t *ino)
{
	pthread_mutex_lock(&t->lock);
	struct node *n = chain_find(t, parent, name);
	if (n)
		*ino = n->ino;
	pthread_mutex_unlock(&t->lock);
	return n != NULL;
}

struct node *node_insert(struct node_table *t, struct node *parent, const char *name,
			 uint64_t ino, mode_t type, const struct decision *dec, int lower_fd,
			 int upper_fd, bool in_upper, bool folds)
{
	struct node *n = xcalloc(1, sizeof(*n));
	pthread_mutex_init(&n->lock, NULL);
	n->lname = xstrdup(name);
	n->name = n->lname;
	n->ino = ino;
	n->type = type;
	n->level = dec->level;
	n->traversable = dec->traversable;
	n->lower_fd = lower_fd;
	n->merge_fd = lower_fd;
	n->upper_fd = upper_fd;
	n->in_upper = in_upper;
	n->folds = folds;

	pthread_mutex_lock(&t->lock);
	struct node *old = chain_find(t, parent, name);
	if (old) {
		if (old->nlookup++ == 0)
			old->refs++;
		pthread_mutex_unlock(&t->lock);
		node_free_one(t, n);
		return old;
	}
	if (t->max_live && t->live >= t->max_live) {
		pthread_mutex_unlock(&t->lock);
		node_free_one(t, n);
		return NULL;
	}
	t->live++;
	n->parent = parent;
	n->lparent = parent;
	parent->refs += 2;
	n->refs = 1;
	n->nlookup = 1;
	n->hashed = true;
	chain_add(t, n);
	n->all_next = t->all;
	if (t->all)
		t->all->all_prev = n;
	t->all = n;
	pthread_mutex_unlock(&t->lock);
	return n;
}

void node_forget(struct node_table *t, struct node *node, uint64_t count)
{
	struct node *dead = NULL;
	if (node == &t->root)
		return;
	pthread_mutex_lock(&t->lock);
	if (count > node->nlookup)
		count = node->nlookup;
	if (count > 0) {
		node->nlookup -= count;
		if (node->nlookup == 0)
			node_put_locked(t, node, &dead);
	}
	pthread_mutex_unlock(&t->lock);
	free_dead(t, dead);
}

void node_unhash(struct node_table *t, struct node *parent, const char *name)
{
	pthread_mutex_lock(&t->lock);
	struct node *n = chain_find(t, parent, name);
	if (n) {
		chain_remove(t, n);
		n->hashed = false;
	}
	pthread_mutex_unlock(&t->lock);
}

void node_move(struct node_table *t, struct node *node, struct node *newparent,
	       const char *newname)
{
	struct node *dead = NULL;
	char *nn = xstrdup(newname);
	pthread_mutex_lock(&t->lock);
	struct node *victim = chain_find(t, newparent, newname);
	if (victim && victim != node) {
		chain_remove(t, victim);
		victim->hashed = false;
	}
	bool was_hashed = node->hashed;
	if (was_hashed)
		chain_remove(t, node);
	struct node *oldparent = node->parent;
	char *oldname = node->name;
	newparent->refs++;
	node->parent = newparent;
	node->name = nn;
	if (oldname != node->lname)
		free(oldname);
	node->hashed = true;
	chain_add(t, node);
	node_put_locked(t, oldparent, &dead);
	pthread_mutex_unlock(&t->lock);
	free_dead(t, dead);
}

char *node_path(struct node_table *t, struct node *node, const char *child)
{
	pthread_mutex_lock(&t->lock);
	size_t len = child ? strlen(child) + 1 : 0;
	for (struct node *n = node; n && n->parent; n = n->parent)
		len += strlen(n->name) + 1;
	char *buf = malloc(len + 1);
	if (!buf) {
		pthread_mutex_unlock(&t->lock);
		return NULL;
	}
	size_t pos = len;
	buf[pos] = '\0';
	if (child) {
		size_t l = strlen(child);
		pos -= l;
		memcpy(buf + pos, child, l);
		buf[--pos] = '/';
	}
	for (struct node *n = node; n && n->parent; n = n->parent) {
		size_t l = strlen(n->name);
		pos -= l;
		memcpy(buf + pos, n->name, l);
		buf[--pos] = '/';
	}
	pthread_mutex_unlock(&t->lock);
	/* drop the leading '/' (pos is 0 here unless the path is "") */
	if (len == 0)
		return buf;
	memmove(buf, buf + 1, len);
	return buf;
}

void node_set_merge(struct node *node, int fd)
{
	if (fd >= 0) {
		node->extra_fds = xrealloc(node->extra_fds, (node->nextra + 1) * sizeof(int));
		node->extra_fds[node->nextra++] = fd;
	}
	__atomic_store_n(&node->merge_fd, fd, __ATOMIC_RELEASE);
}

struct subtree_ent {
	struct node *n;
	size_t depth;
};

static int cmp_depth(const void *a, const void *b)
{
	const struct subtree_ent *x = a, *y = b;
	return (x->depth > y->depth) - (x->depth < y->depth);
}

struct node **node_subtree_dirs(struct node_table *t, struct node *node, size_t *count)
{
	struct subtree_ent *v = NULL;
	size_t n = 0, cap = 0;
	pthread_mutex_lock(&t->lock);
	for (struct node *m = t->all; m; m = m->all_next) {
		if (!S_ISDIR(m->type))
			continue;
		size_t depth = 0;
		struct node *a = m;
		while (a && a != node) {
			a = a->parent;
			depth++;
		}
		if (!a)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			v = xrealloc(v, cap * sizeof(*v));
		}
		m->refs++;
		v[n].n = m;
		v[n++].depth = depth;
	}
	pthread_mutex_unlock(&t->lock);
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_depth);
	struct node **out = xmalloc((n ? n : 1) * sizeof(*out));
	for (size_t i = 0; i < n; i++)
		out[i] = v[i].n;
	free(v);
	*count = n;
	return out;
}

void node_set_upper(struct node *node, int fd)
{
	if (fd >= 0)
		__atomic_store_n(&node->upper_fd, fd, __ATOMIC_RELEASE);
	__atomic_store_n(&node->in_upper, true, __ATOMIC_RELEASE);
}
