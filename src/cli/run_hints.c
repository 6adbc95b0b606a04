/* run_hints.c - why a command could not be run, said from the host side
 * once the sandbox is gone: a script whose interpreter the sandbox does
 * not have (a venv made on the host names the host's path), or a path
 * that exists on the host but is not shown in the sandbox. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/run_plan.h"
#include "sandbox/rootfs.h"

/* The first component of absolute path p, in list (NULL-terminated). */
static bool first_in(const char *p, const char *const *list)
{
	size_t n = strcspn(p + 1, "/");
	for (size_t i = 0; list[i]; i++)
		if (strlen(list[i]) == n && strncmp(p + 1, list[i], n) == 0)
			return true;
	return false;
}

/* The host path whose content the sandbox shows at path (absolute,
 * clean), malloc'd; NULL if it shows none, or none the user may read
 * through the view (hidden, view only) or a tmpfs, /proc or /dev. */
static char *host_path_of(const struct run_plan *p, const char *path)
{
	if (mounts_path_under(path, p->workspace)) {
		const char *rel = path + strlen(p->workspace);
		rel += *rel == '/';
		struct decision d;
		policy_decide(p->policy, rel, false, &d);
		if (*rel && d.level < LEVEL_READ)
			return NULL;
		return *rel ? xasprintf("%s/%s", p->project, rel) : xstrdup(p->project);
	}
	/* the deepest mount holding path decides (the list goes parents first) */
	for (size_t i = p->mounts->n; i-- > 0;) {
		const struct mount_spec *m = &p->mounts->v[i];
		if (!mounts_path_under(path, m->dst))
			continue;
		if (m->kind == MOUNT_TMPFS)
			return NULL;
		return xasprintf("%s%s", m->src, path + strlen(m->dst));
	}
	if (p->root_dir)
		return first_in(path, rootfs_own_dirs) ? NULL
						       : xasprintf("%s%s", p->root_dir, path);
	return first_in(path, rootfs_system_dirs) ? xstrdup(path) : NULL;
}

/* The interpreter a script at host path names on its "#!" line,
 * malloc'd, or NULL when it is no script. */
static char *shebang(const char *host)
{
	autoclose int fd = open(host, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	struct stat st;
	char buf[256];
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return NULL;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n < 3 || buf[0] != '#' || buf[1] != '!')
		return NULL;
	buf[n] = '\0';
	char *s = buf + 2;
	s += strspn(s, " \t");
	size_t len = strcspn(s, " \t\r\n");
	if (!len)
		return NULL;
	return xasprintf("%.*s", (int)len, s);
}

/* Whether the sandbox has an executable file at path (as far as the
 * host can tell). */
static bool sandbox_has(const struct run_plan *p, const char *path)
{
	autofree char *clean = path_clean(path, true, true);
	autofree char *host = clean ? host_path_of(p, clean) : NULL;
	return host && access(host, F_OK) == 0;
}

/* The sandbox paths exec would have tried for cmd: itself (against the
 * working directory) with a slash, else each PATH entry's. */
static size_t candidates(const struct run_plan *p, const char *cmd, char *const *envp,
			 char **out, size_t max)
{
	size_t n = 0;
	if (strchr(cmd, '/')) {
		out[n++] = cmd[0] == '/' ? xstrdup(cmd) : xasprintf("%s/%s", p->workdir, cmd);
		return n;
	}
	const char *path = "/usr/local/bin:/usr/bin:/bin";
	for (; envp && *envp; envp++)
		if (strncmp(*envp, "PATH=", 5) == 0)
			path = *envp + 5;
	for (const char *s = path; n < max;) {
		size_t len = strcspn(s, ":");
		if (len && s[0] == '/')
			out[n++] = xasprintf("%.*s/%s", (int)len, s, cmd);
		if (!s[len])
			break;
		s += len + 1;
	}
	return n;
}

void run_plan_exec_failed(const struct run_plan *p, char *const *envp, int exec_errno)
{
	const char *cmd = p->argv[0];
	char *cand[64];
	size_t n = exec_errno == ENOENT ? candidates(p, cmd, envp, cand, 64) : 0;
	autofree char *interp = NULL, *interp_host = NULL;

	/* ENOENT for a file that is there: its interpreter is not */
	for (size_t i = 0; i < n && !interp; i++) {
		autofree char *clean = path_clean(cand[i], true, true);
		autofree char *host = clean ? host_path_of(p, clean) : NULL;
		autofree char *s = host ? shebang(host) : NULL;
		if (s && s[0] == '/' && !sandbox_has(p, s))
			interp = steal_pointer(&s);
	}
	for (size_t i = 0; i < n; i++)
		free(cand[i]);
	if (interp) {
		error_msg("cannot run '%s': its interpreter '%s' does not exist in the sandbox",
			  cmd, interp);
		if (mounts_path_under(interp, p->project))
			hint_msg("the project is at %s in the sandbox, not at '%s': a script made "
				 "on the host names the host's paths; make it again inside the "
				 "sandbox, or show the project at its own path with --host-path",
				 p->workspace, p->project);
		else if (access(interp, X_OK) == 0)
			hint_msg("'%s' exists on the host: '--ro-bind %s' shows it in the sandbox",
				 interp, interp);
		return;
	}
	error_msg("cannot run '%s': %s", cmd, strerror(exec_errno));
	/* a host path the sandbox does not show: ~/.local/bin/agent */
	autofree char *clean = cmd[0] == '/' ? path_clean(cmd, true, true) : NULL;
	if (clean && exec_errno == ENOENT && !mounts_path_under(clean, p->workspace) &&
	    !sandbox_has(p, clean) && access(clean, F_OK) == 0) {
		autofree char *dir = xstrdup(clean);
		*strrchr(dir, '/') = '\0';
		hint_msg("'%s' exists on the host, but the sandbox shows only the system "
			 "directories, the project and what is bound", clean);
		hint_msg("'--ro-bind %s' shows its directory in the sandbox", *dir ? dir : "/");
	}
}
