/* node.h - the inode table of a view.
 *
 * A node is what the kernel knows as a FUSE inode: its nodeid is the
 * node's address (the root is FUSE_ROOT_ID).  Nodes are deduplicated by
 * (parent, name) so one view path has one node, and each node carries the
 * policy decision for its path, computed once at lookup.
 *
 * Backing objects.  A node may have an object in the project (lower) and
 * one in the delta (upper).  To keep file descriptors few, only
 * directories hold O_PATH fds (of their lower and upper objects): there
 * are far fewer of them, and the kernel keeps a node for as long as the
 * entry timeout (a day), so an fd per file would run a view creating a
 * few thousand files out of descriptors.  A lower file is reached as
 * (lparent->lower_fd, lname) by single-component *at() calls with
 * AT_SYMLINK_NOFOLLOW/O_NOFOLLOW.  That pair never changes: a node whose
 * path moves (rename) is copied up first.  A non-directory's upper object
 * (in_upper) is reached the same way through its current place,
 * (parent->upper_fd, name), which only a rename of it changes, with its
 * lock held; several names of one upper inode (hard links) are several
 * nodes, each reaching it by its own name.  When such an object leaves
 * its place while the kernel may still use the node (unlink, rename onto
 * it), it is pinned first: upper_fd then holds an O_PATH fd of it, until
 * the node is freed (the kernel forgets an unlinked inode as soon as no
 * one holds it open, so pins are few).
 *
 * Locking: the table mutex guards the hash chains, parent/name, refcounts
 * and lookup counts (held only for short, syscall-free sections); the node
 * mutex serializes creation of the node's upper object (copy-up) and,
 * for a non-directory, guards its place: parent and name change (rename)
 * and the object is pinned only with it held, so they may be read and
 * used for *at() calls under it alone. */
#ifndef AF_NODE_H
#define AF_NODE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "policy/policy.h"

/* st_ino of objects that exist only in the delta: the upper inode number
 * with the top bit set, so it cannot collide with a project inode. */
#define NODE_UPPER_INO_BIT (1ULL << 63)

struct node {
	struct node *parent;  /* current parent (holds a ref); NULL for the root */
	char *name;           /* current name; NULL for the root */
	struct node *lparent; /* parent at creation (holds a ref); NULL for the root */
	char *lname;          /* name at creation, immutable */
	struct node *hnext;   /* hash chain */
	struct node *all_prev, *all_next; /* every live node, for teardown */
	bool hashed;          /* reachable by (parent, name); false once deleted or replaced */

	uint64_t refs;    /* children, lparent links, kernel lookups (as one) */
	uint64_t nlookup; /* kernel lookup count */

	uint64_t ino;          /* st_ino reported to the sandbox */
	mode_t type;           /* S_IFMT bits */
	enum level level;      /* decision for the path at lookup */
	bool traversable;

	pthread_mutex_t lock; /* serializes copy-up */
	int lower_fd;         /* O_PATH fd of the lower directory, or -1;
	                         reaches lower children by lname, immutable */
	int merge_fd;         /* the lower directory merged into this one's
	                         listing and lookups: lower_fd, until a move
	                         of the directory re-points it at the project
	                         directory of its new path (or -1) */
	int *extra_fds;       /* merge_fds opened by moves; closed at free */
	size_t nextra;
	int upper_fd;         /* directory: O_PATH fd of the upper directory,
	                         or -1, set once; non-directory: the pin (see
	                         above) or -1, set once under lock */
	bool in_upper;        /* the upper object exists (set once) */
	bool folds;           /* directory: the project may resolve names in
	                         it to an entry of another spelling
	                         (casefold.h); set before the node is
	                         published, later only false -> true with
	                         the view's tree lock held exclusively */
	struct casefold_names *spellings; /* directory that folds: its
	                         project side's names (casefold.h), made
	                         once, then shared */
	void *listing;        /* directory read without a FUSE opendir: the
	                         view's snapshot, guarded by lock */
	uint64_t iofh;        /* file: handle of its cached I/O fd in the
	                         view's table, or 0; only a hint, checked
	                         against the table (atomic) */
};


struct node_table {
	pthread_mutex_t lock;
	struct node **buckets;
	size_t nbuckets;
	size_t count;
	size_t live;      /* nodes allocated, the root aside */
	size_t max_live;  /* node_insert() refuses past it; 0: no cap */
	struct node *all; /* every node but the root */
	void (*listing_free)(void *listing); /* frees node->listing */
	/* told of a non-directory's pin (see above) just before it is
	 * closed with the node, or NULL */
	void (*pin_freed)(void *arg, int fd);
	void *pin_arg;
	struct node root;
};

/* Initialize the table; root takes ownership of lower_fd and upper_fd. */
void node_table_init(struct node_table *t, int lower_fd, int upper_fd, uint64_t root_ino,
		     const struct decision *root_dec);
/* Free every node (the connection is gone) and close their fds. */
void node_table_destroy(struct node_table *t);

/* Find the live node (parent, name) and add one kernel lookup to it.
 * Returns NULL if absent. */
struct node *node_find_lookup(struct node_table *t, struct node *parent, const char *name);
/* Are max_live nodes allocated (a racy hint, for refusing early)? */
bool node_table_full(struct node_table *t);
/* Find without taking a lookup (for readdir's inode numbers); copies
 * the node's ino into *ino.  Returns true if present. */
bool node_peek_ino(struct node_table *t, struct node *parent, const char *name, uint64_t *ino);

/* Insert a fresh node (fds owned by the node; in_upper: the upper object
 * exists, upper_fd then its fd for a directory; folds: see struct node)
 * with one kernel lookup, or, if another thread inserted (parent, name)
 * meanwhile, free the fresh one and return the existing one with a
 * lookup added.  Returns NULL (the fds closed) when max_live nodes are
 * allocated already. */
struct node *node_insert(struct node_table *t, struct node *parent, const char *name,
			 uint64_t ino, mode_t type, const struct decision *dec, int lower_fd,
			 int upper_fd, bool in_upper, bool folds);

/* Find the live node (parent, name) and take a reference to it (not a
 * kernel lookup); release with node_put().  Returns NULL if absent. */
struct node *node_get(struct node_table *t, struct node *parent, const char *name);
void node_put(struct node_table *t, struct node *node);

/* Drop n kernel lookups; frees the node when nothing refers to it. */
void node_forget(struct node_table *t, struct node *node, uint64_t n);

/* Remove (parent, name) from the table: the path was deleted or
 * replaced.  The node lives on for the kernel until forgotten. */
void node_unhash(struct node_table *t, struct node *parent, const char *name);
/* Move node to (newparent, newname), unhashing whatever was there. */
void node_move(struct node_table *t, struct node *node, struct node *newparent,
	       const char *newname);

/* The view path of node ("" for the root, "a/b" otherwise), malloc'd;
 * with child != NULL, the path of that child name below node.  Returns
 * NULL when memory runs out: the request then fails, the process goes
 * on (it serves other views and sandboxes). */
char *node_path(struct node_table *t, struct node *node, const char *child);

/* Publish the upper object: fd is a directory's O_PATH fd, -1 for a
 * non-directory (caller holds node->lock and checked it unset). */
void node_set_upper(struct node *node, int fd);
/* A directory's upper fd, or -1 (use node_has_upper() for others). */
static inline int node_upper(struct node *node)
{
	return __atomic_load_n(&node->upper_fd, __ATOMIC_ACQUIRE);
}
static inline bool node_has_upper(struct node *node)
{
	return __atomic_load_n(&node->in_upper, __ATOMIC_ACQUIRE);
}

static inline int node_merge(struct node *node)
{
	return __atomic_load_n(&node->merge_fd, __ATOMIC_ACQUIRE);
}
/* Re-point merge_fd at fd (owned by the node from now on; -1: none).
 * The old one stays open until the node is freed, as a reader may hold
 * it.  Callers serialize (the view's tree lock, held exclusively). */
void node_set_merge(struct node *node, int fd);

/* The directory nodes at or below node (itself included), parents
 * before children, each with a reference taken (node_put() them), as a
 * malloc'd array of *n entries. */
struct node **node_subtree_dirs(struct node_table *t, struct node *node, size_t *n);

static inline bool node_folds(const struct node *node)
{
	return __atomic_load_n(&node->folds, __ATOMIC_ACQUIRE);
}

static inline bool node_visible(const struct node *n)
{
	return n->level >= LEVEL_VIEW || n->traversable;
}

#endif
