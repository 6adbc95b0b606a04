/* env.h - the sandboxed command's environment.
 *
 * The host environment is never inherited: a command starts from a
 * small default (env_defaults) plus what the user sets explicitly. */
#ifndef AF_ENV_H
#define AF_ENV_H

#include <stdbool.h>
#include <stddef.h>

#include "common/util.h"

/* A NULL-terminated "KEY=VALUE" array, ready for execve. */
struct env {
	char **v;
	size_t n, cap;
};

#define ENV_DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"

void env_init(struct env *e);
void env_free(struct env *e);

/* Set KEY to value, replacing an earlier value. */
void env_set(struct env *e, const char *key, const char *value);

/* The defaults: PATH, HOME=/tmp, LANG=C.UTF-8, SHELL=/bin/sh, USER and
 * LOGNAME of the invoking user, PWD=workdir, and TERM copied from the
 * host if set (so interactive programs draw correctly). */
void env_defaults(struct env *e, const char *workdir);

/* True if name[0..len) is a valid variable name: [A-Za-z_][A-Za-z0-9_]*. */
bool env_name_valid(const char *name, size_t len);

/* Apply "KEY=VALUE"; "KEY" alone copies KEY's value from this process's
 * environment, and sets nothing if KEY is not set there (as docker does).
 * Returns 0, or -EINVAL with *err filled (a usage error). */
int env_set_spec(struct env *e, const char *spec, struct af_err *err);

#endif
