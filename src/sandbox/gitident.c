/* gitident.c - the host's git identity for commits in the sandbox.
 *
 * The user's git configuration stays on the host (it may hold
 * credentials, aliases and programs to run), so git in the sandbox
 * knows no author.  run, shell and serve's sandboxes carry in
 * user.name and user.email alone, as git on the host resolves them for
 * the project (its own config, then the user's, then the system's), as
 * GIT_AUTHOR_NAME, GIT_AUTHOR_EMAIL, GIT_COMMITTER_NAME and
 * GIT_COMMITTER_EMAIL.  serve calls this on its one thread, so nothing
 * here may wait without bound, exit, or abort without memory. */
#include "sandbox/gitident.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

/* Bytes of a value we take at most: a name or an address. */
#define MAX_VALUE 1024

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* `git -C dir config --get key` on the host: the value without its
 * newline, or NULL (no git, not set, not one line of text, or no answer
 * by end, a CLOCK_MONOTONIC time in ms). */
static char *host_git_config(const char *dir, const char *key, int64_t end)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return NULL;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	/* git gets no signal blocked that its caller (serve's signalfd) blocks */
	posix_spawnattr_t attr;
	sigset_t none;
	sigemptyset(&none);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
	char *argv[] = { "git", "-C", (char *)dir, "config", "--get", (char *)key, NULL };
	pid_t pid;
	int r = posix_spawnp(&pid, "git", &fa, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	if (r != 0) {
		close(pfd[0]);
		return NULL;
	}
	char buf[MAX_VALUE + 2];
	size_t len = 0;
	bool late = false;
	for (;;) {
		int64_t left = end - now_ms();
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		int pr = left > 0 ? poll(&p, 1, (int)left) : 0;
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0) {
			late = pr == 0;
			break;
		}
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
	if (late)
		kill(pid, SIGKILL); /* stuck (reading a FIFO its config includes) */
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	buf[len] = '\0';
	if (late || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || len == 0 || len > MAX_VALUE)
		return NULL;
	if (buf[len - 1] == '\n')
		buf[--len] = '\0';
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)buf[i] < 0x20)
			return NULL; /* git would refuse it in an identity */
	return len ? strdup(buf) : NULL;
}

void git_identity_env(struct env *e, const char *dir)
{
	int64_t end = now_ms() + GIT_IDENTITY_TIMEOUT_MS; /* for both */
	autofree char *name = host_git_config(dir, "user.name", end);
	autofree char *email = host_git_config(dir, "user.email", end);
	if (name) {
		env_set(e, "GIT_AUTHOR_NAME", name);
		env_set(e, "GIT_COMMITTER_NAME", name);
	}
	if (email) {
		env_set(e, "GIT_AUTHOR_EMAIL", email);
		env_set(e, "GIT_COMMITTER_EMAIL", email);
	}
}
