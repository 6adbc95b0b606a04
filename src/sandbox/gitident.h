/* gitident.h - the host's git identity for commits in the sandbox. */
#ifndef AF_GITIDENT_H
#define AF_GITIDENT_H

#include "sandbox/env.h"

/* How long git on the host may take to answer (it is killed then, the
 * identity left out): a config that includes a FIFO or a pipe must not
 * hang run, or serve's one thread. */
#define GIT_IDENTITY_TIMEOUT_MS 2000

/* Set GIT_AUTHOR_NAME/EMAIL and GIT_COMMITTER_NAME/EMAIL in e from
 * user.name and user.email as git on the host resolves them in dir;
 * what is not set there (or without git, or without memory) is left
 * out.  Never fails. */
void git_identity_env(struct env *e, const char *dir);

#endif
