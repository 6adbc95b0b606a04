/* boxtool.h - what the multibox and svcbox test tools share: their
 * failure reports, a clock, file helpers, the projects and policy their
 * boxes start from, and the check that nothing was left behind.  Included by each
 * tool, which is one .c file, after it defined H, its name in messages. */
#ifndef AF_TESTS_TOOLS_BOXTOOL_H
#define AF_TESTS_TOOLS_BOXTOOL_H

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "lifecycle/lifecycle.h"
#include "policy/policy.h"
#include "procstate.h"

static int failures;

static AF_PRINTF(1, 2) void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs(H ": ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	failures++;
}

static AF_NORETURN void setup_failed(const struct af_err *err)
{
	fprintf(stderr, H ": %s\n", err->msg);
	if (err->hint[0])
		fprintf(stderr, "hint: %s\n", err->hint);
	exit(125);
}

static double now_sec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A new file at path holding s; exits 125 if it cannot be written. */
static void write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, s, strlen(s)) != (ssize_t)strlen(s)) {
		fprintf(stderr, H ": cannot write '%s': %s\n", path, strerror(errno));
		exit(125);
	}
	close(fd);
}

/* The contents of dir/name ("" if it does not exist), malloc'd. */
static char *slurp(const char *dir, const char *name)
{
	autofree char *path = xasprintf("%s/%s", dir, name);
	char buf[4096];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return xstrdup(errno == ENOENT ? "" : "?unreadable");
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return xstrdup(buf);
}

/* Project i, a new directory top/pI holding its own secret.txt and a
 * .env the development preset hides; its path, malloc'd.  Exits 125 if
 * it cannot be made. */
static char *make_project(const char *top, int i)
{
	char *dir = xasprintf("%s/p%d", top, i);
	if (mkdir(dir, 0755) < 0) {
		fprintf(stderr, H ": cannot create '%s': %s\n", dir, strerror(errno));
		exit(125);
	}
	autofree char *secret = xasprintf("%s/secret.txt", dir);
	autofree char *text = xasprintf("secret-%d\n", i);
	write_file(secret, text);
	autofree char *env = xasprintf("%s/.env", dir);
	write_file(env, "TOKEN=hidden\n");
	return dir;
}

/* The development preset, and rule on top of it when not NULL, once
 * /dev/fuse was found usable.  Exits 125 on failure. */
static struct policy *box_policy(const char *rule)
{
	struct af_err err = { 0 };
	struct policy *policy = policy_new();
	if (policy_add_preset(policy, "development", &err) < 0 ||
	    (rule && policy_add_spec(policy, rule, H, &err) < 0))
		setup_failed(&err);
	policy_finalize(policy);
	if (lc_check_dev_fuse(&err) < 0)
		setup_failed(&err);
	return policy;
}

/* Once every box is freed: a failure for each count of this process
 * (fds, threads, mounts) that is not what it was before, and for a
 * child left. */
static void check_nothing_left(const struct counts *before)
{
	struct counts after;
	/* a view's threads are joined by lc_stop(); give the kernel a
	 * moment to remove them from /proc all the same */
	for (int tries = 0; tries < 50; tries++) {
		take_counts(&after);
		if (after.threads == before->threads)
			break;
		usleep(20 * 1000);
	}
	if (after.fds != before->fds)
		fail("%ld fds open before, %ld after", before->fds, after.fds);
	if (after.threads != before->threads)
		fail("%ld threads before, %ld after", before->threads, after.threads);
	if (after.mounts != before->mounts)
		fail("%ld mounts before, %ld after", before->mounts, after.mounts);
	if (waitpid(-1, NULL, WNOHANG) != -1 || errno != ECHILD)
		fail("a child process is left");
}

#endif
