/* env.c - the sandboxed command's environment (see env.h). */
#include "sandbox/env.h"

#include <pwd.h>
#include <string.h>
#include <unistd.h>

void env_init(struct env *e)
{
	e->n = 0;
	e->cap = 16;
	e->v = xcalloc(e->cap, sizeof(char *));
}

void env_free(struct env *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->v[i]);
	free(e->v);
	e->v = NULL;
	e->n = e->cap = 0;
}

void env_set(struct env *e, const char *key, const char *value)
{
	size_t klen = strlen(key);
	char *kv = xasprintf("%s=%s", key, value);

	for (size_t i = 0; i < e->n; i++)
		if (strncmp(e->v[i], key, klen) == 0 && e->v[i][klen] == '=') {
			free(e->v[i]);
			e->v[i] = kv;
			return;
		}
	if (e->n + 1 >= e->cap) {
		e->cap *= 2;
		e->v = xrealloc(e->v, e->cap * sizeof(char *));
	}
	e->v[e->n++] = kv;
	e->v[e->n] = NULL;
}

void env_defaults(struct env *e, const char *workdir)
{
	env_set(e, "PATH", ENV_DEFAULT_PATH);
	env_set(e, "HOME", "/tmp");
	env_set(e, "LANG", "C.UTF-8");
	env_set(e, "SHELL", "/bin/sh");
	/* getpwuid_r: getpwuid's static buffer is shared by every thread */
	struct passwd pwd, *pw = NULL;
	char buf[4096];
	if (getpwuid_r(getuid(), &pwd, buf, sizeof(buf), &pw) != 0)
		pw = NULL;
	if (pw && pw->pw_name && *pw->pw_name) {
		env_set(e, "USER", pw->pw_name);
		env_set(e, "LOGNAME", pw->pw_name);
	}
	env_set(e, "PWD", workdir);
	const char *term = getenv("TERM");
	if (term && *term)
		env_set(e, "TERM", term);
}

bool env_name_valid(const char *name, size_t len)
{
	if (len == 0 || (name[0] >= '0' && name[0] <= '9'))
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

int env_set_spec(struct env *e, const char *spec, struct af_err *err)
{
	const char *eq = strchr(spec, '=');
	if (!eq) {
		/* KEY alone: agentfense's own value, so a secret never has to
		 * be written on a command line (docker, systemd-run) */
		if (!env_name_valid(spec, strlen(spec)))
			return af_err_usage(err, EINVAL, "invalid environment variable '%s': expected "
					    "KEY=VALUE, or KEY to pass agentfense's own", spec);
		const char *v = getenv(spec);
		if (v)
			env_set(e, spec, v);
		return 0;
	}
	if (!env_name_valid(spec, (size_t)(eq - spec)))
		return af_err_usage(err, EINVAL,
				    "invalid environment variable name '%.*s': use letters, digits "
				    "and '_', not starting with a digit",
				    (int)(eq - spec), spec);
	autofree char *key = xstrndup(spec, (size_t)(eq - spec));
	env_set(e, key, eq + 1);
	return 0;
}
