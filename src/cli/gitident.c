/* gitident.c - the host's git identity for commits in the sandbox.
 *
 * The user's git configuration stays on the host (it may hold
 * credentials, aliases and programs to run), so git in the sandbox
 * knows no author.  run and shell carry in user.name and user.email
 * alone, as git on the host resolves them for the project (its own
 * config, then the user's, then the system's), as GIT_AUTHOR_NAME,
 * GIT_AUTHOR_EMAIL, GIT_COMMITTER_NAME and GIT_COMMITTER_EMAIL. */
#include "cli/gitident.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>

extern char **environ;

/* Bytes of a value we take at most: a name or an address. */
#define MAX_VALUE 1024

/* `git -C dir config --get key` on the host: the value without its
 * newline, or NULL (no git, not set, or not one line of text). */
static char *host_git_config(const char *dir, const char *key)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return NULL;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	char *argv[] = { "git", "-C", (char *)dir, "config", "--get", (char *)key, NULL };
	pid_t pid;
	int r = posix_spawnp(&pid, "git", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	if (r != 0) {
		close(pfd[0]);
		return NULL;
	}
	char buf[MAX_VALUE + 2];
	size_t len = 0;
	for (;;) {
		ssize_t n = read(pfd[0], buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == sizeof(buf) - 1)
			break;
	}
	close(pfd[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	buf[len] = '\0';
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || len == 0 || len > MAX_VALUE)
		return NULL;
	if (buf[len - 1] == '\n')
		buf[--len] = '\0';
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)buf[i] < 0x20)
			return NULL; /* git would refuse it in an identity */
	return len ? xstrdup(buf) : NULL;
}

void git_identity_env(struct env *e, const char *dir)
{
	autofree char *name = host_git_config(dir, "user.name");
	autofree char *email = host_git_config(dir, "user.email");
	if (name) {
		env_set(e, "GIT_AUTHOR_NAME", name);
		env_set(e, "GIT_COMMITTER_NAME", name);
	}
	if (email) {
		env_set(e, "GIT_AUTHOR_EMAIL", email);
		env_set(e, "GIT_COMMITTER_EMAIL", email);
	}
}
