/* gitprep.h - git in the sandbox: the repository's configuration and
 * index as the delta presents them to the view, and what sync undoes of
 * that (see gitprep.c). */
#ifndef AF_GITPREP_H
#define AF_GITPREP_H

#include <stdbool.h>
#include <stddef.h>

#include "common/util.h"
#include "delta/delta.h"

struct policy;

/* Before the view starts: put in the delta the cleaned configuration of
 * the repository at the project's root (project_path: its canonical
 * path on the host), shown read-only, and its index with the paths the
 * sandbox cannot read marked skip-worktree; the same for the linked
 * worktrees checked out in the project, whose '.git' file is shown with
 * a relative path.  Does nothing without a repository the policy lets
 * the sandbox read.  Returns 0, or -errno with *err filled when the
 * delta cannot be written. */
int gitprep_prepare(struct delta *d, int project_fd, const char *project_path,
		    const struct policy *pol, struct af_err *err);

/* For sync, before it applies upper entry name (project path path) of
 * upper directory ufd, project directory pfd: true if the entry is one
 * gitprep_prepare() made and the sandbox left as it was, or an index
 * that, its skip-worktree bits of unreadable paths cleared (in place),
 * equals the project's: sync then drops it.  False: sync it as usual.
 * Never fails: what cannot be read is synced as usual. */
bool gitprep_sync(struct delta *d, int ufd, int pfd, const char *name, const char *path,
		  const struct policy *pol);

/* --- for the unit tests: the parsers of gitprep.c on their own. */

/* The configuration text cleaned as the sandbox sees it (malloc'd), or
 * NULL when git could not parse it; *sha256 as its object format. */
char *gitprep_config_clean(const char *text, size_t len, bool *sha256);
/* Rewrite index [in, in + len) for pol: set (or clear) the skip-worktree
 * bit of the paths the sandbox cannot read.  *out (malloc'd, *outlen
 * bytes) is the result.  Returns 1 if anything changed, 0 if not, or
 * -EINVAL / -ENOTSUP (a split index). */
int gitprep_index_mark(const void *in, size_t len, size_t hashlen, const struct policy *pol,
		       bool set, void **out, size_t *outlen);

#endif
