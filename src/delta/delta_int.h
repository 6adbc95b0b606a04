/* delta_int.h - helpers shared by delta.c and sync.c only. */
#ifndef AF_DELTA_INT_H
#define AF_DELTA_INT_H

#include <stdbool.h>
#include <sys/stat.h>

struct policy;

/* Sorted names of directory fd, NULL-terminated (fd is not consumed).
 * Returns 0 or -errno. */
int delta_list_dir(int fd, char ***out);
void delta_free_names(char **names);
int delta_cmp_names(const void *a, const void *b);

/* Give the owner rwx on directory NAME in fd if it lacks any of them.
 * Returns the previous permission bits, or -errno. */
int delta_make_writable(int fd, const char *name, const struct stat *st);

/* Remove NAME in fd recursively, never following symlinks, making
 * read-only directories writable.  Returns 0 or -errno. */
int delta_rm_rf_at(int fd, const char *name);

/* --- synchold.c: what sync holds back although nothing conflicts. */

enum hold_kind {
	HOLD_NONE,
	HOLD_DOTGIT,    /* a new '.git', under any spelling */
	HOLD_GITDIR,    /* HEAD, objects, refs, commondir making a repository */
	HOLD_GITCONFIG, /* config, config.worktree, hooks, commondir of one */
	HOLD_GITTODO,   /* rebase-merge, rebase-apply, sequencer of one */
	HOLD_HG,        /* a new '.hg', under any spelling */
	HOLD_HGCONFIG,  /* hgrc, hgrc-not-shared, sharedpath in a '.hg' */
};

/* What the checks of one sync found in the project's directories, so
 * that each is looked through once however many links lead to it. */
struct hold_memo {
	void *root; /* tsearch() tree */
};

struct hold_ctx {
	int upper_fd;                /* the delta's upper/ */
	int project_fd;              /* the project root */
	const struct policy *policy; /* NULL: nothing is hidden */
	struct hold_memo *memo;      /* NULL: none kept */
};

/* Free what memo holds (for a memo of a sync that is over). */
void hold_memo_clear(struct hold_memo *memo);

/* Is name a spelling git or some file system takes for '.git'? */
bool hold_is_dotgit(const char *name);

/* For the entries names of upper directory ufd (project path path, its
 * project directory pfd, -1 if there is none), set holds[i] to why
 * names[i] must not reach the project.  Never fails: what cannot be
 * looked at counts as absent. */
void hold_scan_dir(int ufd, int pfd, const char *path, char **names, enum hold_kind *holds);

/* Must the sandbox's symlink at path, pointing at target, be held?
 * Returns 1 with *why (malloc'd: "it leads to '...', which the policy
 * hides") or 0. */
int hold_check_link(const struct hold_ctx *h, const char *path, const char *target, char **why);

#endif
