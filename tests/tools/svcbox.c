/* svcbox - service sandboxes (sandbox.h "Service mode") driven through
 * lifecycle.h from one event loop (a test tool; not installed).
 *
 *   svcbox [-n N] [-k K] [--pids N] [--hold] MODE DIR
 *
 * Makes N projects (default 2) below DIR, DIR/p0 ... DIR/pN-1, each with
 * secret.txt, ro/locked.txt and a .env (the policy: the development
 * preset, ro/ read-only), starts one service sandbox on each and runs
 * MODE in it, printing one line per result; problems go to stderr as
 * "svcbox: ...".  Every mode ends with the checks of multibox: once
 * everything is freed this process has the fds, threads, mounts and
 * children it had before.  Exit 0, 1 if a check failed, 125 if the
 * set-up failed.
 *
 * Modes:
 *   exec    K processes per sandbox (default 50), stdout/stderr and exit
 *           codes checked exactly; then a command that does not exist
 *           (127), one that is not executable (126), a missing working
 *           directory (125), stdin passed through, E2BIG
 *   kill    a process with a background job, a setsid'd grandchild and a
 *           double fork is killed (sproc_kill); nothing of it is left
 *           and the next process runs; background jobs end with their
 *           process; signals reach the process and its group
 *   many    8 processes at once in each sandbox
 *   files   READ, WRITE, LIST, STAT as the sandbox's processes see them;
 *           a WRITE is synced to the project by lc_finish
 *   resume  a write, lc_stop, lc_start again on the delta: the write is
 *           still there, a second one too, and both sync
 *   attack  what a process tries against PID 1, its exec init, the
 *           control socket and the other sandbox
 *   bomb    a process forks until the pids limit (--pids, default 32)
 *           stops it; a spawn meanwhile works or fails clearly; after
 *           the kill the next one works
 *   pid1    PID 1 is a small process executed anew (with --ballast MB
 *           this process is that much bigger first)
 *   bench   K (default 1000) spawn+wait of `true` in sandbox 0: prints
 *           p50 and p99; --hold prints PID 1's pid and waits for a line
 *           on stdin before ending (to read its smaps_rollup);
 *           --ballast MB makes this process that much bigger first.
 * --opt-tmpfs mounts a tmpfs on /opt: with a mount in a system
 * directory PID 1 is not executed anew but stays a clone of this process. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "lifecycle/lifecycle.h"
#include "policy/policy.h"
#include "sandbox/env.h"
#include "sandbox/mounts.h"

#define H "svcbox"
#include "boxtool.h"

#define MAX_BOXES 64
#define OUT_MAX (1 << 20)

struct box {
	char *dir;
	struct lc_project proj;
	struct env env;
	struct lifecycle *lc;
};

static struct policy *policy;
static struct limits_spec limits;
static struct mount_list mounts;

static void box_start(struct box *b)
{
	struct af_err err = { 0 };
	if (lc_start(b->lc, &err) < 0 || lc_exec(b->lc, &err) < 0)
		setup_failed(&err);
}

static void box_new(struct box *b)
{
	struct af_err err = { 0 };
	if (lc_project_open(b->dir, &b->proj, &err) < 0)
		setup_failed(&err);
	env_init(&b->env);
	env_defaults(&b->env, "/workspace");
	struct lc_config cfg = {
		.project = &b->proj,
		.policy = policy,
		.sandbox = { .envp = b->env.v, .workdir = "/workspace", .mounts = mounts.v,
			     .n_mounts = mounts.n },
		.limits = limits,
		.service = true,
	};
	if (lc_new(&cfg, &b->lc, &err) < 0)
		setup_failed(&err);
	box_start(b);
}

/* --- jobs: processes and what they print, driven by one loop --------------- */

struct job {
	struct box *box;
	struct sproc_spec sp;
	const char *input; /* stdin, or NULL for /dev/null */
	double timeout;    /* kill after this many seconds; 0: none */
	/* what came back */
	struct sandbox_proc *proc;
	int spawn_r;
	struct af_err err;
	int out_fd, err_fd;
	char *out, *errs;
	size_t out_len, err_len;
	bool ended;
	struct sproc_result res;
	double started;
};

/* Read what fd has into *buf.  Returns false at EOF. */
static bool drain(int *fd, char **buf, size_t *len)
{
	if (!*buf)
		*buf = xcalloc(1, OUT_MAX + 1);
	for (;;) {
		ssize_t n = read(*fd, *buf + *len, OUT_MAX - *len);
		if (n > 0) {
			*len += (size_t)n;
			if (*len < OUT_MAX)
				continue;
		}
		if (n < 0 && errno == EAGAIN)
			return true;
		if (n < 0 && errno == EINTR)
			continue;
		close(*fd);
		*fd = -1;
		return false;
	}
}

static void job_start(struct job *j)
{
	int in[2] = { -1, -1 }, out[2], er[2];
	if (j->input) {
		if (pipe2(in, O_CLOEXEC) < 0 || write(in[1], j->input, strlen(j->input)) < 0) {
			perror(H ": pipe");
			exit(125);
		}
		close(in[1]);
	}
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(er, O_CLOEXEC) < 0) {
		perror(H ": pipe");
		exit(125);
	}
	j->sp.fds[0] = j->sp.op == SPROC_WRITE || j->input ? in[0] : -1;
	j->sp.fds[1] = out[1];
	j->sp.fds[2] = er[1];
	j->started = now_sec();
	j->spawn_r = lc_spawn(j->box->lc, &j->sp, &j->proc, &j->err);
	if (in[0] >= 0)
		close(in[0]);
	close(out[1]);
	close(er[1]);
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	fcntl(er[0], F_SETFL, O_NONBLOCK);
	j->out_fd = out[0];
	j->err_fd = er[0];
	if (!j->out)
		j->out = xcalloc(1, OUT_MAX + 1);
	if (!j->errs)
		j->errs = xcalloc(1, OUT_MAX + 1);
	if (j->spawn_r < 0) {
		close(j->out_fd);
		close(j->err_fd);
		j->out_fd = j->err_fd = -1;
		j->ended = true;
	}
}

/* Drive the jobs until all have ended and their output is read. */
static void jobs_run(struct job *jobs, size_t n)
{
	struct pollfd *pfd = xcalloc(3 * n, sizeof(*pfd));
	double give_up = now_sec() + 60;
	for (;;) {
		size_t live = 0;
		for (size_t i = 0; i < n; i++) {
			struct job *j = &jobs[i];
			bool done = j->ended && j->out_fd < 0 && j->err_fd < 0;
			live += !done;
			pfd[3 * i] = (struct pollfd){ .fd = j->ended ? -1 : sproc_fd(j->proc),
						      .events = POLLIN };
			pfd[3 * i + 1] = (struct pollfd){ .fd = j->out_fd, .events = POLLIN };
			pfd[3 * i + 2] = (struct pollfd){ .fd = j->err_fd, .events = POLLIN };
		}
		if (!live)
			break;
		if (now_sec() > give_up) {
			fail("the processes did not end within 60 s");
			for (size_t i = 0; i < n; i++)
				if (!jobs[i].ended)
					sproc_kill(jobs[i].proc);
			give_up = now_sec() + 5;
		}
		if (poll(pfd, (nfds_t)(3 * n), 50) < 0 && errno != EINTR) {
			perror(H ": poll");
			exit(125);
		}
		for (size_t i = 0; i < n; i++) {
			struct job *j = &jobs[i];
			if (j->out_fd >= 0 && pfd[3 * i + 1].revents)
				drain(&j->out_fd, &j->out, &j->out_len);
			if (j->err_fd >= 0 && pfd[3 * i + 2].revents)
				drain(&j->err_fd, &j->errs, &j->err_len);
			if (j->ended)
				continue;
			if (j->timeout > 0 && now_sec() - j->started > j->timeout) {
				sproc_kill(j->proc);
				j->timeout = 0;
			}
			if (!pfd[3 * i].revents)
				continue;
			int r = sproc_step(j->proc, &j->res, &j->err);
			if (r < 0) {
				fail("sproc_step: %s", j->err.msg);
				sproc_kill(j->proc);
			}
			if (r == 1)
				j->ended = true;
		}
	}
	free(pfd);
}

static void job_free(struct job *j)
{
	sproc_free(j->proc);
	free(j->out);
	free(j->errs);
	memset(j, 0, sizeof(*j));
}

/* Run one command (sh -c script) in b; *j holds the outcome. */
static void run_sh(struct job *j, struct box *b, const char *script, const char *input,
		   double timeout)
{
	char *argv[] = { (char *)"/bin/sh", (char *)"-c", (char *)script, NULL };
	memset(j, 0, sizeof(*j));
	j->box = b;
	j->sp.op = SPROC_EXEC;
	j->sp.argv = argv;
	j->sp.envp = b->env.v;
	j->input = input;
	j->timeout = timeout;
	job_start(j);
	j->sp.argv = NULL;
	jobs_run(j, 1);
}

/* Run a script and expect exactly this output and exit code. */
static void expect_sh(struct box *b, const char *what, const char *script, const char *out,
		      const char *errs, int code)
{
	struct job j;
	run_sh(&j, b, script, NULL, 0);
	if (j.spawn_r < 0)
		fail("%s: spawn: %s", what, j.err.msg);
	else if (strcmp(j.out, out) != 0 || strcmp(j.errs, errs) != 0 || j.res.exit_code != code)
		fail("%s: exit %d, stdout '%s', stderr '%s'; expected %d, '%s', '%s' (%s)", what,
		     j.res.exit_code, j.out, j.errs, code, out, errs,
		     j.res.exec_errno ? j.err.msg : "ran");
	job_free(&j);
}

/* --- modes ------------------------------------------------------------------- */

static void mode_exec(struct box *boxes, int n, int k)
{
	for (int i = 0; i < n; i++) {
		struct box *b = &boxes[i];
		int ok = 0;
		for (int e = 0; e < k; e++) {
			autofree char *script = xasprintf("echo out-%d-%d; echo err-%d >&2; exit %d", i,
							  e, e, e % 7);
			autofree char *want_out = xasprintf("out-%d-%d\n", i, e);
			autofree char *want_err = xasprintf("err-%d\n", e);
			int before = failures;
			expect_sh(b, "exec", script, want_out, want_err, e % 7);
			ok += failures == before;
		}
		printf("box %d: %d of %d processes exact\n", i, ok, k);
	}
	struct box *b = &boxes[0];
	struct job j;
	char *missing[] = { (char *)"no-such-command", NULL };
	char *noexec[] = { (char *)"/workspace/secret.txt", NULL };
	char *const *cases[] = { missing, noexec };
	for (size_t c = 0; c < 2; c++) {
		memset(&j, 0, sizeof(j));
		j.box = b;
		j.sp = (struct sproc_spec){ .op = SPROC_EXEC, .argv = cases[c], .envp = b->env.v };
		job_start(&j);
		jobs_run(&j, 1);
		printf("%s: exit %d, %s\n", cases[c][0], j.res.exit_code,
		       j.res.exec_errno ? j.err.msg : "ran");
		job_free(&j);
	}
	char *pwd[] = { (char *)"/bin/pwd", NULL };
	const char *dirs[] = { "/workspace/nowhere", "/workspace/src", "/tmp" };
	for (size_t c = 0; c < 3; c++) {
		memset(&j, 0, sizeof(j));
		j.box = b;
		j.sp = (struct sproc_spec){ .op = SPROC_EXEC, .argv = pwd, .envp = b->env.v,
					    .workdir = dirs[c], .workdir_beneath = c < 2 };
		job_start(&j);
		jobs_run(&j, 1);
		printf("workdir %s: exit %d, %s%s\n", dirs[c], j.res.exit_code,
		       j.res.exec_errno ? j.err.msg : "pwd ", j.res.exec_errno ? "" : j.out);
		job_free(&j);
	}
	run_sh(&j, b, "tr a-z A-Z", "hello stdin\n", 0);
	printf("stdin: %s", j.out);
	job_free(&j);
	/* PID 1 raised its own open-files limit, not the processes' */
	struct rlimit nofile;
	getrlimit(RLIMIT_NOFILE, &nofile);
	run_sh(&j, b, "ulimit -n", NULL, 0);
	printf("open files: %s\n",
	       strtoull(j.out, NULL, 10) == nofile.rlim_cur ? "the caller's limit" : j.out);
	job_free(&j);
	/* a sandbox of run's is not a service one */
	{
		struct lifecycle *lc = NULL;
		struct af_err err = { 0 };
		struct sandbox_proc *p = NULL;
		char *argv[] = { (char *)"/bin/true", NULL };
		struct lc_config cfg = { .project = &b->proj, .policy = policy,
					 .sandbox = { .argv = argv, .envp = b->env.v,
						      .workdir = "/workspace" } };
		struct sproc_spec sp = { .op = SPROC_EXEC, .argv = argv, .fds = { -1, -1, -1 } };
		struct lc_finish fin;
		if (lc_new(&cfg, &lc, &err) < 0 || lc_start(lc, &err) < 0 || lc_exec(lc, &err) < 0)
			setup_failed(&err);
		int r = lc_spawn(lc, &sp, &p, &err);
		printf("spawn in run's sandbox: %s, %s\n", r == -EINVAL ? "EINVAL" : strerror(-r),
		       err.msg);
		if (lc_wait(lc, 0, &err) < 0)
			fail("run's sandbox: %s", err.msg);
		lc_stop(lc);
		lc_finish(lc, LC_CHANGES_DISCARD, &fin, &err);
		lc_finish_free(&fin);
		lc_free(lc);
	}
	/* argv over the limit */
	autofree char *big = xmalloc(SPROC_MAX_ARGS + 2);
	memset(big, 'x', SPROC_MAX_ARGS + 1);
	big[SPROC_MAX_ARGS + 1] = '\0';
	char *bigv[] = { (char *)"/bin/true", big, NULL };
	struct sandbox_proc *p = NULL;
	struct af_err err = { 0 };
	struct sproc_spec sp = { .op = SPROC_EXEC, .argv = bigv, .envp = b->env.v,
				 .fds = { -1, -1, -1 } };
	int r = lc_spawn(b->lc, &sp, &p, &err);
	printf("too long: %s\n", r == -E2BIG ? "E2BIG" : strerror(-r));
	sproc_free(p);
	/* just under the limit works: one request of ~256 KiB, in four
	 * arguments (the kernel takes at most 128 KiB in one) */
	enum { QUARTER = SPROC_MAX_ARGS / 4 - 64 };
	for (int q = 1; q <= 4; q++)
		big[q * QUARTER + q - 1] = '\0';
	char *okv[] = { (char *)"/bin/sh", (char *)"-c", (char *)"echo $((${#1}+${#2}+${#3}+${#4}))",
			(char *)"sh", big, big + QUARTER + 1, big + 2 * (QUARTER + 1),
			big + 3 * (QUARTER + 1), NULL };
	memset(&j, 0, sizeof(j));
	j.box = b;
	j.sp = (struct sproc_spec){ .op = SPROC_EXEC, .argv = okv, .envp = b->env.v };
	job_start(&j);
	jobs_run(&j, 1);
	printf("long arguments: exit %d, %s%s", j.res.exit_code, j.res.exec_errno ? j.err.msg : "",
	       j.out);
	job_free(&j);
}

/* How many sleep processes the sandbox's /proc shows (shell builtins
 * only: the lister starts none of its own). */
static const char *ps_script = "n=0; for p in /proc/[0-9]*; do c=; read -r c <$p/comm 2>/dev/null; "
			       "[ \"$c\" = sleep ] && n=$((n+1)); done; echo $n";

/* Wait until the job printed "ready" (10 s at most). */
static void wait_ready(struct job *j)
{
	for (int tries = 0; tries < 1000 && j->out_fd >= 0 && !strstr(j->out, "ready"); tries++) {
		struct pollfd pfd = { .fd = j->out_fd, .events = POLLIN };
		poll(&pfd, 1, 10);
		drain(&j->out_fd, &j->out, &j->out_len);
	}
}

static void mode_kill(struct box *boxes)
{
	struct box *b = &boxes[0];
	struct job j;

	/* a background job, a setsid'd grandchild, a double fork */
	double t = now_sec();
	run_sh(&j, b, "sleep 1000 & setsid sleep 1001 & (sleep 1002 &); echo started; wait",
	       NULL, 0.5);
	printf("killed: %s, exit %d, signal %d, stdout %s", j.res.killed ? "yes" : "no",
	       j.res.exit_code, j.res.term_signal, j.out);
	if (now_sec() - t > 5)
		fail("the kill took %.1f s", now_sec() - t);
	job_free(&j);
	run_sh(&j, b, ps_script, NULL, 0);
	printf("sleeps left after the kill: %s", j.out);
	job_free(&j);

	/* a background job ends with its process */
	run_sh(&j, b, "sleep 1003 >/dev/null 2>&1 & echo bg", NULL, 0);
	printf("background: exit %d, %s", j.res.exit_code, j.out);
	job_free(&j);
	run_sh(&j, b, ps_script, NULL, 0);
	printf("sleeps left after it: %s", j.out);
	job_free(&j);

	/* the process gets its signals, a trap in the shell runs */
	memset(&j, 0, sizeof(j));
	char *argv[] = { (char *)"/bin/sh", (char *)"-c",
			 (char *)"trap 'echo got TERM; exit 3' TERM; echo ready; "
				 "while :; do sleep 0.01; done",
			 NULL };
	j.box = b;
	j.sp = (struct sproc_spec){ .op = SPROC_EXEC, .argv = argv, .envp = b->env.v };
	job_start(&j);
	/* wait for "ready" before signalling */
	wait_ready(&j);
	int r = sproc_signal(j.proc, SIGTERM, false);
	jobs_run(&j, 1);
	printf("SIGTERM (%d): exit %d, %s", r, j.res.exit_code, j.out);
	r = sproc_signal(j.proc, SIGTERM, false);
	printf("signal after the end: %s\n", r == -ESRCH ? "ESRCH" : strerror(-r));
	job_free(&j);

	memset(&j, 0, sizeof(j));
	char *argv2[] = { (char *)"/bin/sh", (char *)"-c", (char *)"sleep 1004 & echo ready; wait",
			  NULL };
	j.box = b;
	j.sp = (struct sproc_spec){ .op = SPROC_EXEC, .argv = argv2, .envp = b->env.v };
	job_start(&j);
	wait_ready(&j);
	r = sproc_signal(j.proc, SIGINT, true);
	jobs_run(&j, 1);
	printf("SIGINT to the group (%d): exit %d, signal %d\n", r, j.res.exit_code,
	       j.res.term_signal);
	job_free(&j);
	expect_sh(b, "after the kills", "echo still usable", "still usable\n", "", 0);

	/* the sandbox stopped under a running process: it ends, killed
	 * with the sandbox, not by sproc_kill() */
	memset(&j, 0, sizeof(j));
	char *argv3[] = { (char *)"/bin/sh", (char *)"-c", (char *)"echo ready; exec sleep 1007",
			  NULL };
	j.box = b;
	j.sp = (struct sproc_spec){ .op = SPROC_EXEC, .argv = argv3, .envp = b->env.v };
	job_start(&j);
	wait_ready(&j);
	lc_stop(b->lc);
	jobs_run(&j, 1);
	printf("sandbox stopped under it: exit %d, signal %d, killed %s\n", j.res.exit_code,
	       j.res.term_signal, j.res.killed ? "yes" : "no");
	job_free(&j);
	box_start(b);
	expect_sh(b, "after the restart", "echo back", "back\n", "", 0);
}

static void mode_many(struct box *boxes, int n)
{
	enum { PER = 8 };
	struct job *jobs = xcalloc((size_t)n * PER, sizeof(*jobs));
	char **scripts = xcalloc((size_t)n * PER, sizeof(char *));
	char ***argvs = xcalloc((size_t)n * PER, sizeof(char **));
	double t = now_sec();
	for (int i = 0; i < n * PER; i++) {
		struct job *j = &jobs[i];
		scripts[i] = xasprintf("sleep 0.3; echo %d", i);
		argvs[i] = xcalloc(4, sizeof(char *));
		argvs[i][0] = (char *)"/bin/sh";
		argvs[i][1] = (char *)"-c";
		argvs[i][2] = scripts[i];
		j->box = &boxes[i / PER];
		j->sp = (struct sproc_spec){ .op = SPROC_EXEC, .argv = argvs[i],
					     .envp = j->box->env.v };
		job_start(j);
	}
	jobs_run(jobs, (size_t)n * PER);
	int ok = 0;
	for (int i = 0; i < n * PER; i++) {
		autofree char *want = xasprintf("%d\n", i);
		if (jobs[i].spawn_r == 0 && jobs[i].res.exit_code == 0 && strcmp(jobs[i].out, want) == 0)
			ok++;
		else
			fail("process %d: exit %d, '%s' %s", i, jobs[i].res.exit_code, jobs[i].out,
			     jobs[i].err.msg);
		job_free(&jobs[i]);
		free(scripts[i]);
		free(argvs[i]);
	}
	/* they ran side by side: 8 x 0.3 s one after the other would be 2.4 s */
	double took = now_sec() - t;
	printf("%d of %d concurrent processes exact%s\n", ok, n * PER,
	       took < 0.3 * PER ? ", side by side" : ", one after the other");
	free(jobs);
	free(scripts);
	free(argvs);
}

/* One file operation in b: its output, exit code and error message. */
static void file_op(struct box *b, enum sproc_op op, const char *path, bool recursive,
		    const char *input, unsigned mode, struct job *j)
{
	memset(j, 0, sizeof(*j));
	j->box = b;
	j->sp = (struct sproc_spec){ .op = op, .path = path, .recursive = recursive, .mode = mode };
	j->input = input;
	job_start(j);
	jobs_run(j, 1);
}

/* LIST/STAT records as lines "type mode path" (size and time vary). */
static void print_records(const char *what, const struct job *j)
{
	printf("%s:", what);
	if (j->res.exec_errno) {
		printf(" %s\n", j->err.msg);
		return;
	}
	/* sorted: the order of a directory is the file system's */
	char *lines[256];
	size_t n = 0;
	for (size_t off = 0; off < j->out_len && n < 256;) {
		const char *rec = j->out + off;
		size_t len = strlen(rec);
		off += len + 1;
		char type, path[4096];
		unsigned mode;
		long long size, sec;
		long nsec;
		if (sscanf(rec, "%c %o %lld %lld.%ld %4095[^\n]", &type, &mode, &size, &sec, &nsec,
			   path) != 6) {
			fail("%s: a malformed record '%s'", what, rec);
			continue;
		}
		lines[n++] = xasprintf("%c%o:%s", type, mode & 0777, path);
	}
	for (size_t a = 0; a < n; a++)
		for (size_t c = a + 1; c < n; c++)
			if (strcmp(lines[a], lines[c]) > 0) {
				char *x = lines[a];
				lines[a] = lines[c];
				lines[c] = x;
			}
	for (size_t a = 0; a < n; a++) {
		printf(" %s", lines[a]);
		free(lines[a]);
	}
	printf("\n");
}

static void mode_files(struct box *boxes)
{
	struct box *b = &boxes[0];
	struct job j;

	file_op(b, SPROC_READ, "/workspace/secret.txt", false, NULL, 0, &j);
	printf("read secret.txt: exit %d, %s", j.res.exit_code, j.out);
	job_free(&j);
	file_op(b, SPROC_READ, "/workspace/.env", false, NULL, 0, &j);
	printf("read .env: exit %d, %s\n", j.res.exit_code, j.err.msg);
	job_free(&j);
	file_op(b, SPROC_READ, "/workspace/src", false, NULL, 0, &j);
	printf("read src: exit %d, %s\n", j.res.exit_code, j.err.msg);
	job_free(&j);
	file_op(b, SPROC_WRITE, "/workspace/ro/locked.txt", false, "overwritten\n", 0, &j);
	printf("write ro/locked.txt: exit %d, %s\n", j.res.exit_code, j.err.msg);
	job_free(&j);
	file_op(b, SPROC_WRITE, "/workspace/.env", false, "TOKEN=mine\n", 0, &j);
	printf("write .env: exit %d, %s\n", j.res.exit_code, j.err.msg);
	job_free(&j);
	file_op(b, SPROC_WRITE, "/workspace/src/new.txt", false, "new content\n", 0600, &j);
	printf("write src/new.txt: exit %d\n", j.res.exit_code);
	job_free(&j);
	file_op(b, SPROC_READ, "/workspace/src/new.txt", false, NULL, 0, &j);
	printf("read it back: %s", j.out);
	job_free(&j);
	file_op(b, SPROC_WRITE, "/workspace/src/new.txt", false, "shorter\n", 0, &j);
	job_free(&j);
	expect_sh(b, "the shell sees the write", "cat /workspace/src/new.txt", "shorter\n", "", 0);
	file_op(b, SPROC_LIST, "/workspace", false, NULL, 0, &j);
	print_records("list /workspace", &j);
	job_free(&j);
	file_op(b, SPROC_LIST, "/workspace", true, NULL, 0, &j);
	print_records("list -r /workspace", &j);
	job_free(&j);
	file_op(b, SPROC_LIST, "/workspace/secret.txt", false, NULL, 0, &j);
	print_records("list secret.txt", &j);
	job_free(&j);
	file_op(b, SPROC_STAT, "/workspace/src/new.txt", false, NULL, 0, &j);
	print_records("stat src/new.txt", &j);
	if (j.out_len && !strstr(j.out, " 8 "))
		fail("stat: size is not 8: '%s'", j.out);
	job_free(&j);
	file_op(b, SPROC_STAT, "/workspace/.env", false, NULL, 0, &j);
	print_records("stat .env", &j);
	job_free(&j);
	struct sandbox_proc *p = NULL;
	struct af_err err = { 0 };
	struct sproc_spec sp = { .op = SPROC_READ, .path = "workspace/x", .fds = { -1, -1, -1 } };
	int r = lc_spawn(b->lc, &sp, &p, &err);
	printf("relative path: %d %s\n", r, err.msg);
}

static void mode_resume(struct box *boxes)
{
	struct box *b = &boxes[0];
	struct job j;
	expect_sh(b, "first write", "echo one >/workspace/first.txt", "", "", 0);
	lc_stop(b->lc);
	struct sandbox_proc *p = NULL;
	struct af_err err = { 0 };
	char *argv[] = { (char *)"/bin/true", NULL };
	struct sproc_spec sp = { .op = SPROC_EXEC, .argv = argv, .fds = { -1, -1, -1 } };
	int r = lc_spawn(b->lc, &sp, &p, &err);
	printf("spawn while stopped: %s\n", r == -ESRCH ? "ESRCH" : strerror(-r));
	for (int round = 0; round < 3; round++) {
		box_start(b);
		autofree char *script = xasprintf("cat /workspace/first.txt; echo %d >>/workspace/rounds",
						  round);
		run_sh(&j, b, script, NULL, 0);
		printf("round %d: exit %d, %s", round, j.res.exit_code, j.out);
		job_free(&j);
		lc_stop(b->lc);
	}
	box_start(b);
	run_sh(&j, b, "cat /workspace/rounds | tr '\\n' ' '", NULL, 0);
	printf("rounds: %s\n", j.out);
	job_free(&j);
	r = lc_start(b->lc, &err);
	printf("start while running: %s\n", r == -EBUSY ? "EBUSY" : strerror(-r));
}

static void mode_attack(struct box *boxes, int n)
{
	struct box *b = &boxes[0];
	struct job j, other;

	/* PID 1 of the sandbox and the exec init (our parent: PPid in the
	 * sandbox's /proc) are not ours to read, signal or trace */
	run_sh(&j, b,
	       "sh=$(awk '/^PPid/{print $2}' /proc/self/status); "
	       "init=$(awk '/^PPid/{print $2}' /proc/$sh/status); "
	       "echo exec init: $(cat /proc/$init/comm); "
	       "for p in 1 $init; do for f in environ mem maps; do "
	       "  head -c1 /proc/$p/$f >/dev/null 2>&1 && echo \"read /proc/$p/$f\"; done; "
	       "  ls /proc/$p/fd >/dev/null 2>&1 && echo \"listed /proc/$p/fd\"; "
	       "  ls -l /proc/$p/cwd >/dev/null 2>&1 && echo \"read /proc/$p/cwd\"; "
	       "done; "
	       "python3 -c '\n"
	       "import ctypes, os\n"
	       "libc = ctypes.CDLL(None, use_errno=True)\n"
	       "r = libc.ptrace(16, 1, 0, 0)\n"
	       "print(\"ptrace of its init:\", os.strerror(ctypes.get_errno()) if r else \"attached\")\n"
	       "'; "
	       "kill -KILL 1 2>/dev/null; kill -TERM 1 2>/dev/null; "
	       "echo fds: $(ls /proc/self/fd | tr '\\n' ' '); echo alive",
	       NULL, 0);
	printf("against PID 1 and its init: exit %d, %s", j.res.exit_code, j.out);
	job_free(&j);
	/* no socket of agentfense anywhere in the process's reach */
	run_sh(&j, b,
	       "for p in /proc/[0-9]*; do ls -l $p/fd/ 2>/dev/null; done | grep -c socket; "
	       "cat /proc/net/unix 2>/dev/null | wc -l",
	       NULL, 0);
	printf("sockets reachable: %s", j.out);
	job_free(&j);
	if (n < 2)
		return;
	/* a process of box 1 that waits, and box 0 looking for it */
	memset(&other, 0, sizeof(other));
	char *argv[] = { (char *)"/bin/sh", (char *)"-c", (char *)"exec sleep 1005", NULL };
	other.box = &boxes[1];
	other.sp = (struct sproc_spec){ .op = SPROC_EXEC, .argv = argv, .envp = boxes[1].env.v };
	other.timeout = 30;
	job_start(&other);
	usleep(100 * 1000);
	run_sh(&j, b,
	       "n=0; for p in /proc/[0-9]*; do c=; read -r c <$p/comm 2>/dev/null; "
	       "[ \"$c\" = sleep ] && n=$((n+1)); done; echo sleeps seen: $n; "
	       "kill -KILL -1 2>/dev/null; echo alive",
	       NULL, 0);
	printf("the other sandbox: %s", j.out);
	job_free(&j);
	sproc_kill(other.proc);
	jobs_run(&other, 1);
	printf("the other one's process was killed by us only: %s\n",
	       other.res.killed ? "yes" : "no");
	job_free(&other);
}

/* PID 1 is a process of its own, executed anew, not a copy of ours. */
static void mode_pid1(struct box *boxes, size_t ballast)
{
	struct job j;
	run_sh(&j, &boxes[0],
	       "echo PID 1: $(tr '\\0' ' ' </proc/1/cmdline | cut -d' ' -f1,2); "
	       "awk '/^VmRSS/{print $2}' /proc/1/status",
	       NULL, 0);
	char *nl = strchr(j.out, '\n');
	if (!nl) {
		fail("pid1: '%s' %s", j.out, j.errs);
		job_free(&j);
		return;
	}
	*nl = '\0';
	unsigned long rss_kb = strtoul(nl + 1, NULL, 10);
	printf("%s\n", j.out);
	printf("its resident memory: %s\n",
	       rss_kb && rss_kb * 1024 < ballast / 4 ? "small" : "as big as ours");
	job_free(&j);
}

static void mode_bomb(struct box *boxes)
{
	struct box *b = &boxes[0];
	struct job bomb, j;
	memset(&bomb, 0, sizeof(bomb));
	char *argv[] = { (char *)"python3", (char *)"-c",
			 (char *)"import os, time\n"
				 "n = 0\n"
				 "for i in range(200):\n"
				 "    try:\n"
				 "        if os.fork() == 0:\n"
				 "            time.sleep(1000)\n"
				 "            os._exit(0)\n"
				 "        n += 1\n"
				 "    except OSError as e:\n"
				 "        pass\n"
				 "print('forked', 'all' if n == 200 else 'until refused', flush=True)\n"
				 "time.sleep(1000)\n",
			 NULL };
	bomb.box = b;
	bomb.sp = (struct sproc_spec){ .op = SPROC_EXEC, .argv = argv, .envp = b->env.v };
	job_start(&bomb);
	for (int tries = 0; tries < 1000 && !strstr(bomb.out ? bomb.out : "", "forked"); tries++) {
		struct pollfd pfd = { .fd = bomb.out_fd, .events = POLLIN };
		poll(&pfd, 1, 10);
		drain(&bomb.out_fd, &bomb.out, &bomb.out_len);
	}
	run_sh(&j, b, "echo meanwhile", NULL, 5);
	if (j.spawn_r == 0 && j.res.exit_code == 0 && strcmp(j.out, "meanwhile\n") == 0)
		printf("meanwhile: ran\n");
	else if (j.res.exec_errno == EAGAIN && j.res.exit_code == AF_EXIT_FAILURE &&
		 strstr(j.err.msg, "Resource temporarily unavailable"))
		printf("meanwhile: refused clearly\n");
	else
		fail("meanwhile: exit %d, '%s', '%s', %s", j.res.exit_code, j.out, j.errs, j.err.msg);
	job_free(&j);
	sproc_kill(bomb.proc);
	jobs_run(&bomb, 1);
	printf("bomb: %skilled, %s", bomb.res.killed ? "" : "not ", bomb.out);
	job_free(&bomb);
	expect_sh(b, "after the bomb", "echo works", "works\n", "", 0);
	run_sh(&j, b, ps_script, NULL, 0);
	printf("sleeps left after it: %s", j.out);
	job_free(&j);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void mode_bench(struct box *boxes, int k, bool hold)
{
	struct box *b = &boxes[0];
	double *t = xcalloc((size_t)k, sizeof(double));
	char *argv[] = { (char *)"/bin/true", NULL };
	int bad = 0;
	for (int i = 0; i < k; i++) {
		struct sandbox_proc *p = NULL;
		struct af_err err = { 0 };
		struct sproc_result res;
		struct sproc_spec sp = { .op = SPROC_EXEC, .argv = argv, .envp = b->env.v,
					 .fds = { -1, -1, -1 } };
		double t0 = now_sec();
		if (lc_spawn(b->lc, &sp, &p, &err) < 0)
			setup_failed(&err);
		int r;
		while ((r = sproc_step(p, &res, &err)) == 0) {
			struct pollfd pfd = { .fd = sproc_fd(p), .events = POLLIN };
			poll(&pfd, 1, -1);
		}
		t[i] = now_sec() - t0;
		bad += r < 0 || res.exit_code != 0;
		sproc_free(p);
	}
	qsort(t, (size_t)k, sizeof(double), cmp_double);
	printf("%d spawn+wait of true: p50 %.3f ms, p99 %.3f ms, max %.3f ms, %d failed\n", k,
	       t[k / 2] * 1e3, t[(k * 99) / 100] * 1e3, t[k - 1] * 1e3, bad);
	/* a file operation: no exec, the service's own cost and a stat */
	for (int i = 0; i < k; i++) {
		struct sandbox_proc *p = NULL;
		struct af_err err = { 0 };
		struct sproc_result res;
		struct sproc_spec sp = { .op = SPROC_STAT, .path = "/workspace/secret.txt",
					 .fds = { -1, -1, -1 } };
		double t0 = now_sec();
		if (lc_spawn(b->lc, &sp, &p, &err) < 0)
			setup_failed(&err);
		while (sproc_step(p, &res, &err) == 0) {
			struct pollfd pfd = { .fd = sproc_fd(p), .events = POLLIN };
			poll(&pfd, 1, -1);
		}
		t[i] = now_sec() - t0;
		sproc_free(p);
	}
	qsort(t, (size_t)k, sizeof(double), cmp_double);
	printf("%d spawn+wait of a stat: p50 %.3f ms, p99 %.3f ms\n", k, t[k / 2] * 1e3,
	       t[(k * 99) / 100] * 1e3);
	/* the same without a sandbox: what exec of true costs here anyway */
	for (int i = 0; i < k; i++) {
		double t0 = now_sec();
		pid_t pid = vfork();
		if (pid == 0) {
			execve(argv[0], argv, b->env.v);
			_exit(127);
		}
		waitpid(pid, NULL, 0);
		t[i] = now_sec() - t0;
	}
	qsort(t, (size_t)k, sizeof(double), cmp_double);
	printf("%d vfork+exec+wait of true outside: p50 %.3f ms, p99 %.3f ms\n", k,
	       t[k / 2] * 1e3, t[(k * 99) / 100] * 1e3);
	free(t);
	if (hold) {
		printf("pid1 %d\n", (int)sandbox_pid(lc_sandbox(b->lc)));
		fflush(stdout);
		char line[16];
		(void)!fgets(line, sizeof(line), stdin);
	}
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = { { "pids", required_argument, NULL, 'P' },
						  { "ballast", required_argument, NULL, 'B' },
						  { "opt-tmpfs", no_argument, NULL, 'T' },
						  { "hold", no_argument, NULL, 'H' },
						  { NULL, 0, NULL, 0 } };
	struct af_err err = { 0 };
	struct counts before;
	int n = 2, k = -1, c;
	bool hold = false;
	size_t ballast = 0;

	while ((c = getopt_long(argc, argv, "n:k:", longopts, NULL)) != -1) {
		if (c == 'n')
			n = atoi(optarg);
		else if (c == 'k')
			k = atoi(optarg);
		else if (c == 'P')
			limits.pids = (uint32_t)atoi(optarg);
		else if (c == 'H')
			hold = true;
		else if (c == 'B')
			ballast = (size_t)atoi(optarg) << 20;
		else if (c == 'T') {
			if (mounts_add(&mounts, MOUNT_TMPFS, "/opt", &err) < 0)
				setup_failed(&err);
		}
		else
			return 2;
	}
	if (optind + 2 != argc || n < 1 || n > MAX_BOXES) {
		fprintf(stderr, "usage: " H " [-n N] [-k K] [--pids N] [--hold] [--ballast MB] "
				"[--opt-tmpfs] MODE DIR\n");
		return 2;
	}
	const char *mode = argv[optind], *top = argv[optind + 1];
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(mode, "bomb") == 0 && !limits.pids)
		limits.pids = 32;

	policy = box_policy("ro/**=read@200");
	struct box *boxes = xcalloc((size_t)n, sizeof(*boxes));
	for (int i = 0; i < n; i++) {
		struct box *b = &boxes[i];
		b->dir = make_project(top, i);
		autofree char *ro = xasprintf("%s/ro", b->dir);
		autofree char *src = xasprintf("%s/src", b->dir);
		if (mkdir(ro, 0755) < 0 || mkdir(src, 0755) < 0) {
			fprintf(stderr, H ": cannot create '%s': %s\n", b->dir, strerror(errno));
			return 125;
		}
		autofree char *locked = xasprintf("%s/ro/locked.txt", b->dir);
		write_file(locked, "locked\n");
		autofree char *lib = xasprintf("%s/src/lib.c", b->dir);
		write_file(lib, "int x;\n");
	}
	/* a caller as big as a busy serve: PID 1 is its clone */
	char *heavy = ballast ? xmalloc(ballast) : NULL;
	if (heavy)
		memset(heavy, 1, ballast);
	take_counts(&before);
	for (int i = 0; i < n; i++)
		box_new(&boxes[i]);

	if (strcmp(mode, "exec") == 0)
		mode_exec(boxes, n, k < 0 ? 50 : k);
	else if (strcmp(mode, "kill") == 0)
		mode_kill(boxes);
	else if (strcmp(mode, "many") == 0)
		mode_many(boxes, n);
	else if (strcmp(mode, "files") == 0)
		mode_files(boxes);
	else if (strcmp(mode, "resume") == 0)
		mode_resume(boxes);
	else if (strcmp(mode, "attack") == 0)
		mode_attack(boxes, n);
	else if (strcmp(mode, "bomb") == 0)
		mode_bomb(boxes);
	else if (strcmp(mode, "pid1") == 0)
		mode_pid1(boxes, ballast);
	else if (strcmp(mode, "bench") == 0)
		mode_bench(boxes, k < 0 ? 1000 : k, hold);
	else
		fail("unknown mode '%s'", mode);

	for (int i = 0; i < n; i++) {
		struct box *b = &boxes[i];
		struct lc_finish fin;
		lc_stop(b->lc);
		if (lc_stuck(b->lc))
			fail("box %d: its view stopped answering", i);
		if (lc_finish(b->lc, LC_CHANGES_SYNC, &fin, &err) < 0)
			fail("box %d: %s", i, err.msg);
		if (fin.fate != LC_FATE_SYNCED)
			fail("box %d: delta fate %d", i, (int)fin.fate);
		lc_finish_free(&fin);
		if (strcmp(mode, "resume") == 0) {
			int r = lc_start(b->lc, &err);
			printf("start after finish: %s, %s\n", r == -EINVAL ? "EINVAL" : strerror(-r),
			       err.msg);
		}
		lc_free(b->lc);
		lc_project_close(&b->proj);
		env_free(&b->env);
	}
	if (strcmp(mode, "files") == 0 || strcmp(mode, "resume") == 0) {
		const char *names[] = { "src/new.txt", "ro/locked.txt", ".env", "first.txt", "rounds" };
		for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
			autofree char *s = slurp(boxes[0].dir, names[i]);
			printf("project %s: %s", names[i], *s ? s : "(none)\n");
		}
	}

	check_nothing_left(&before);
	for (int i = 0; i < n; i++)
		free(boxes[i].dir);
	free(boxes);
	free(heavy);
	mounts_free(&mounts);
	policy_free(policy);
	if (failures)
		return 1;
	printf(H ": %s done, nothing left\n", mode);
	return 0;
}
