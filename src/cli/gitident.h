/* gitident.h - the host's git identity for commits in the sandbox. */
#ifndef AF_GITIDENT_H
#define AF_GITIDENT_H

#include "sandbox/env.h"

/* Set GIT_AUTHOR_NAME/EMAIL and GIT_COMMITTER_NAME/EMAIL in e from
 * user.name and user.email as git on the host resolves them in dir;
 * what is not set there (or without git) is left out.  Never fails. */
void git_identity_env(struct env *e, const char *dir);

#endif
