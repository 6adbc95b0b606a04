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
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

/* Bytes of a value we take at most: a name or an address. */
#define MAX_VALUE 1024
/* Bytes of git's answer we read at most: every level's user.name and
 * user.email, each with its key. */
#define MAX_OUTPUT (8 * (MAX_VALUE + 16))

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Run `git -C dir config -z --get-regexp '^user\.(name|email)$'` on the
 * host (one git for both keys: serve waits for it) and read its answer
 * into buf (NUL-terminated).  Returns its length, or -1 (no git, nothing
 * set, too much, or no answer within GIT_IDENTITY_TIMEOUT_MS). */
static ssize_t host_git_user(const char *dir, char *buf, size_t size)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -1;
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
	char *argv[] = { "git", "-C", (char *)dir, "config", "-z", "--get-regexp",
			 "^user\\.(name|email)$", NULL };
	pid_t pid;
	int r = posix_spawnp(&pid, "git", &fa, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	if (r != 0) {
		close(pfd[0]);
		return -1;
	}
	size_t len = 0;
	bool late = false;
	int64_t end = now_ms() + GIT_IDENTITY_TIMEOUT_MS;
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
		ssize_t n = read(pfd[0], buf + len, size - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == size - 1)
			break; /* too much: git dies writing the rest */
	}
	close(pfd[0]);
	if (late)
		kill(pid, SIGKILL); /* stuck (reading a FIFO its config includes) */
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	buf[len] = '\0';
	if (late || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || len == size - 1)
		return -1;
	return (ssize_t)len;
}

/* The value git would use for key (lowercase) in git config -z
 * output: the last one, if it is text git takes in an identity.  NULL
 * otherwise. */
static const char *last_value(const char *out, size_t len, const char *key, size_t *vlen)
{
	const char *val = NULL;
	size_t kl = strlen(key);
	for (const char *p = out; p < out + len;) {
		size_t el = strlen(p); /* "key\nvalue"; a key alone has no value */
		if (el > kl && strncmp(p, key, kl) == 0 && p[kl] == '\n') {
			val = p + kl + 1;
			*vlen = el - kl - 1;
		} else if (el == kl && strncmp(p, key, kl) == 0) {
			val = NULL;
		}
		p += el + 1;
	}
	if (!val || *vlen == 0 || *vlen > MAX_VALUE)
		return NULL;
	for (size_t i = 0; i < *vlen; i++)
		if ((unsigned char)val[i] < 0x20)
			return NULL; /* git would refuse it in an identity */
	return val;
}

void git_identity_env(struct env *e, const char *dir)
{
	char *out = malloc(MAX_OUTPUT);
	ssize_t len = out ? host_git_user(dir, out, MAX_OUTPUT) : -1;
	size_t vl = 0;
	const char *name = len > 0 ? last_value(out, (size_t)len, "user.name", &vl) : NULL;
	if (name) {
		env_set(e, "GIT_AUTHOR_NAME", name);
		env_set(e, "GIT_COMMITTER_NAME", name);
	}
	const char *email = len > 0 ? last_value(out, (size_t)len, "user.email", &vl) : NULL;
	if (email) {
		env_set(e, "GIT_AUTHOR_EMAIL", email);
		env_set(e, "GIT_COMMITTER_EMAIL", email);
	}
	free(out);
}
