/* multibox - many sandboxes, each with its own view and delta, in one
 * process at once, driven by one event loop through lifecycle.h (a test
 * tool; not installed).
 *
 *   multibox [-n N] [--hang] [--leak-fd] DIR
 *
 * Makes N projects (default 20) below DIR, DIR/p0 ... DIR/pN-1, each with
 * its own secret.txt and a .env the policy (the development preset)
 * hides, and runs one sandbox on each, all at once: box i copies
 * /workspace/secret.txt to /workspace/seen, writes its number to
 * /workspace/out, tries to read its own .env and every other project's
 * secret.txt and .env by their host paths (creating /workspace/leak if
 * one can be read) and exits with i % 7.  The loop polls every box's lc_fd() and steps it with
 * lc_step().  Even boxes sync, odd ones keep their delta.  With --hang
 * box 0 sleeps instead, and the loop's own 1 s timeout ends it
 * (lc_time_up()) while the others go on.  --leak-fd leaves an fd open
 * on purpose, to show the leak check works.
 *
 * Then it checks each box's end and delta (a synced project holds its
 * own two files, a kept delta has them in upper/ and the project none;
 * no leak anywhere) and that, once everything is freed, this process has
 * the fds, threads, mounts and children it had before, and the
 * RLIMIT_NOFILE: nothing in the library changes process-wide state.  Prints
 * "multibox: N boxes isolated, nothing left" and exits 0, else one
 * line per problem and exits 1 (125 if the set-up failed). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
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

#define H "multibox"
#include "boxtool.h"

#define MAX_BOXES 1000
#define HANG_TIMEOUT 1.0

struct box {
	char *dir;
	struct lc_project proj;
	struct env env;
	char *script;
	struct lifecycle *lc;
	bool ended;
	struct lc_finish fin;
	char *kept; /* the kept delta's path */
};

/* Is what box i left where it should be, and nothing else? */
static void check_box(struct box *b, int i, bool hang)
{
	const struct lc_end *end = lc_end(b->lc);
	bool sync = i % 2 == 0;
	autofree char *want_seen = xasprintf("secret-%d\n", i);
	autofree char *want_out = xasprintf("%d\n", i);

	if (hang && i == 0) {
		if (end->res.end != SANDBOX_END_TIMEOUT || end->res.exit_code != AF_EXIT_TIMEOUT)
			fail("box 0: ended %d with %d, not by its timeout (124)", (int)end->res.end,
			     end->res.exit_code);
		return;
	}
	if (end->res.end != SANDBOX_END_EXITED || end->res.exit_code != i % 7)
		fail("box %d: ended %d with %d, expected exit %d", i, (int)end->res.end,
		     end->res.exit_code, i % 7);
	if (b->fin.fate != (sync ? LC_FATE_SYNCED : LC_FATE_KEPT))
		fail("box %d: delta fate %d", i, (int)b->fin.fate);
	autofree char *upper = b->kept ? xasprintf("%s/upper", b->kept) : NULL;
	const char *where = sync ? b->dir : upper;
	if (!where)
		return;
	autofree char *seen = slurp(where, "seen");
	autofree char *out = slurp(where, "out");
	autofree char *leak = slurp(where, "leak");
	if (strcmp(seen, want_seen) != 0)
		fail("box %d: /workspace/secret.txt read '%s'", i, seen);
	if (strcmp(out, want_out) != 0)
		fail("box %d: out holds '%s'", i, out);
	autofree char *leak_path = xasprintf("%s/leak", where);
	if (strcmp(leak, "") != 0 || access(leak_path, F_OK) == 0)
		fail("box %d: read its hidden .env or another project's files", i);
	if (!sync) {
		autofree char *proj_out = slurp(b->dir, "out");
		if (*proj_out)
			fail("box %d: a kept delta reached the project", i);
	}
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = { { "hang", no_argument, NULL, 'H' },
						  { "leak-fd", no_argument, NULL, 'L' },
						  { NULL, 0, NULL, 0 } };
	struct af_err err = { 0 };
	struct counts before;
	bool hang = false, leak_fd = false;
	int n = 20, c;

	while ((c = getopt_long(argc, argv, "n:", longopts, NULL)) != -1) {
		if (c == 'n')
			n = atoi(optarg);
		else if (c == 'H')
			hang = true;
		else if (c == 'L')
			leak_fd = true;
		else
			return 2;
	}
	if (optind + 1 != argc || n < 1 || n > MAX_BOXES) {
		fprintf(stderr, "usage: " H " [-n N] [--hang] [--leak-fd] DIR\n");
		return 2;
	}
	const char *top = argv[optind];

	struct policy *policy = box_policy(NULL);
	struct box *boxes = xcalloc((size_t)n, sizeof(*boxes));
	for (int i = 0; i < n; i++)
		boxes[i].dir = make_project(top, i);
	take_counts(&before);
	struct rlimit nofile_before, nofile_after;
	getrlimit(RLIMIT_NOFILE, &nofile_before);

	for (int i = 0; i < n; i++)
		if (lc_project_open(boxes[i].dir, &boxes[i].proj, &err) < 0)
			setup_failed(&err);
	for (int i = 0; i < n; i++) {
		struct box *b = &boxes[i];
		autofree char *others = xstrdup("");
		for (int j = 0; j < n; j++) {
			if (j == i)
				continue;
			char *more = xasprintf("%s %s/secret.txt %s/.env", others,
					       boxes[j].proj.real, boxes[j].proj.real);
			free(others);
			others = more;
		}
		if (hang && i == 0)
			b->script = xstrdup("exec sleep 100");
		else
			b->script = xasprintf("cat /workspace/secret.txt >/workspace/seen; "
					      "echo %d >/workspace/out; "
					      "for f in /workspace/.env %s; do cat \"$f\" >/dev/null 2>&1 && "
					      ": >/workspace/leak; done; exit %d",
					      i, others, i % 7);
		char *cmd[] = { (char *)"/bin/sh", (char *)"-c", b->script, NULL };
		env_init(&b->env);
		env_defaults(&b->env, "/workspace");
		struct lc_config cfg = {
			.project = &b->proj,
			.policy = policy,
			.sandbox = { .argv = cmd, .envp = b->env.v, .workdir = "/workspace" },
		};
		if (lc_new(&cfg, &b->lc, &err) < 0 || lc_start(b->lc, &err) < 0 ||
		    lc_exec(b->lc, &err) < 0)
			setup_failed(&err);
	}

	getrlimit(RLIMIT_NOFILE, &nofile_after);
	if (nofile_after.rlim_cur != nofile_before.rlim_cur)
		fail("RLIMIT_NOFILE changed from %llu to %llu",
		     (unsigned long long)nofile_before.rlim_cur,
		     (unsigned long long)nofile_after.rlim_cur);
	int leaked = leak_fd ? open("/dev/null", O_RDONLY | O_CLOEXEC) : -1;

	/* one loop for them all: nothing here waits on one box */
	struct pollfd *pfd = xcalloc((size_t)n, sizeof(*pfd));
	double deadline = now_sec() + HANG_TIMEOUT, give_up = now_sec() + 60;
	for (int left = n; left > 0;) {
		for (int i = 0; i < n; i++)
			pfd[i] = (struct pollfd){ .fd = boxes[i].ended ? -1 : lc_fd(boxes[i].lc),
						  .events = POLLIN };
		if (poll(pfd, (nfds_t)n, 100) < 0 && errno != EINTR) {
			perror(H ": poll");
			return 125;
		}
		for (int i = 0; i < n; i++) {
			struct box *b = &boxes[i];
			int r = 0;
			if (b->ended)
				continue;
			if (hang && i == 0 && now_sec() >= deadline) {
				lc_time_up(b->lc);
				r = 1;
			} else if (pfd[i].revents) {
				r = lc_step(b->lc, &err);
			}
			if (r < 0) {
				fail("box %d: %s", i, err.msg);
				r = 1;
			}
			if (r == 1) {
				b->ended = true;
				left--;
			}
		}
		if (now_sec() > give_up) {
			fail("the boxes did not end within 60 s");
			break;
		}
	}
	free(pfd);

	for (int i = 0; i < n; i++) {
		struct box *b = &boxes[i];
		lc_stop(b->lc);
		if (lc_stuck(b->lc))
			fail("box %d: its view stopped answering", i);
		if (lc_finish(b->lc, i % 2 == 0 ? LC_CHANGES_SYNC : LC_CHANGES_KEEP, &b->fin,
			      &err) < 0)
			fail("box %d: %s", i, err.msg);
		if (b->fin.kept)
			b->kept = xstrdup(b->fin.delta_path);
		check_box(b, i, hang);
		lc_finish_free(&b->fin);
		lc_free(b->lc);
		lc_project_close(&b->proj);
		env_free(&b->env);
		free(b->script);
	}

	check_nothing_left(&before);

	if (leaked >= 0)
		close(leaked);
	for (int i = 0; i < n; i++) {
		free(boxes[i].dir);
		free(boxes[i].kept);
	}
	free(boxes);
	policy_free(policy);
	if (failures)
		return 1;
	printf(H ": %d boxes isolated, nothing left\n", n);
	return 0;
}
