/* viewharness - serve the view of a project to one command, without the
 * rest of the sandbox (a development and test tool; not installed).
 *
 *   viewharness [-k] [-r SPEC]... [-p PRESET] [--policy FILE] [--spin US] [--max-nodes N] [--disk-limit BYTES] PROJECT STATE_DIR -- CMD [ARG...]
 *
 * --spin sets view_config.spin_us (negative: never poll), to measure it.
 * --max-nodes sets view_config.max_nodes, to test the cap without a
 * million files; when it refused a lookup, "viewharness: node cap N
 * reached" is printed on stderr.  --disk-limit sets the delta's disk
 * budget (none by default).
 * -k mounts with default_permissions and sets the view's
 * kernel_permissions (the kernel checks opens against the level-carrying
 * mode bits; no FUSE open/release per file).
 *
 * As an ordinary user: a child enters a new user + mount namespace (own
 * uid/gid mapped), opens /dev/fuse there, mounts it on a fresh temporary
 * directory and hands the fd over (SCM_RIGHTS), exactly like the real
 * sandbox does; this process serves the view on it in the host
 * namespaces, the child runs CMD with the mountpoint as its working
 * directory (also in $VIEW).  When the child exits its mount namespace
 * dies, the kernel aborts the connection and the server stops.  The delta
 * is kept (a new run directory below STATE_DIR) and its path printed on
 * stderr as "viewharness: delta PATH".  Exit status: CMD's, 125 on a
 * failure of the harness. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "delta/delta.h"
#include "policy/policy.h"
#include "common/util.h"
#include "view/view.h"

#define H "viewharness"

static void hdie(const char *what)
{
	fprintf(stderr, H ": %s: %s\n", what, strerror(errno));
	_exit(125);
}

static void write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, s, strlen(s)) < 0)
		hdie(path);
	close(fd);
}

static int send_fd(int sock, int fd)
{
	char byte = 'F';
	struct iovec iov = { &byte, 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof(u));
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			      .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &msg, 0) == 1 ? 0 : -1;
}

static int recv_fd(int sock)
{
	char byte;
	struct iovec iov = { &byte, 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			      .msg_controllen = sizeof(u.buf) };
	if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != 1)
		return -1;
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_type != SCM_RIGHTS)
		return -1;
	int fd;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

/* The child: namespace, mount, hand over the fd, wait for "go", exec. */
static void child(int sock, const char *mnt, char **cmd, bool kperm)
{
	uid_t uid = getuid();
	gid_t gid = getgid();
	if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
		hdie("unshare");
	char map[64];
	write_file("/proc/self/setgroups", "deny");
	snprintf(map, sizeof(map), "%u %u 1\n", uid, uid);
	write_file("/proc/self/uid_map", map);
	snprintf(map, sizeof(map), "%u %u 1\n", gid, gid);
	write_file("/proc/self/gid_map", map);
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		hdie("make / private");
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		hdie("/dev/fuse");
	char opts[128];
	snprintf(opts, sizeof(opts), "fd=%d,rootmode=40000,user_id=%u,group_id=%u%s", fd, uid, gid,
		 kperm ? ",default_permissions" : "");
	if (mount("agentfense", mnt, "fuse.agentfense", MS_NOSUID | MS_NODEV, opts) < 0)
		hdie("mount fuse");
	if (send_fd(sock, fd) < 0)
		hdie("send fd");
	close(fd);
	char go;
	if (read(sock, &go, 1) != 1)
		_exit(125);
	close(sock);
	if (chdir(mnt) < 0)
		hdie(mnt);
	setenv("VIEW", mnt, 1);
	execvp(cmd[0], cmd);
	fprintf(stderr, H ": cannot run '%s': %s\n", cmd[0], strerror(errno));
	_exit(errno == ENOENT ? 127 : 126);
}

int main(int argc, char **argv)
{
	struct policy_options po = { 0 };
	static const struct option longopts[] = {
		{ "rule", required_argument, NULL, 'r' },
		{ "preset", required_argument, NULL, 'p' },
		{ "policy", required_argument, NULL, 'P' },
		{ "spin", required_argument, NULL, 'S' },
		{ "max-nodes", required_argument, NULL, 'N' },
		{ "disk-limit", required_argument, NULL, 'D' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	bool kperm = false;
	int spin_us = 0;
	size_t max_nodes = 0;
	uint64_t disk_limit = 0;
	while ((c = getopt_long(argc, argv, "+kr:p:", longopts, NULL)) != -1) {
		switch (c) {
		case 'k':
			kperm = true;
			break;
		case 'r':
			policy_options_add(&po, POPT_RULE, optarg);
			break;
		case 'p':
			policy_options_add(&po, POPT_PRESET, optarg);
			break;
		case 'P':
			policy_options_add(&po, POPT_POLICY, optarg);
			break;
		case 'S':
			spin_us = atoi(optarg);
			break;
		case 'N':
			max_nodes = strtoul(optarg, NULL, 10);
			break;
		case 'D':
			disk_limit = strtoull(optarg, NULL, 10);
			break;
		default:
			return 2;
		}
	}
	if (optind + 2 < argc && strcmp(argv[optind + 2], "--") == 0) {
		/* PROJECT STATE -- CMD */
	} else {
		fprintf(stderr, "usage: " H " [-r SPEC]... [-p PRESET] PROJECT STATE_DIR -- CMD...\n");
		return 2;
	}
	const char *project = argv[optind], *state = argv[optind + 1];
	char **cmd = argv + optind + 3;
	if (!*cmd) {
		fprintf(stderr, H ": no command\n");
		return 2;
	}
	struct policy *policy = policy_options_build(&po);
	struct af_err err = { 0 };
	struct delta *delta = NULL;
	autofree char *real = realpath(project, NULL);
	if (!real)
		hdie(project);
	if (delta_create(state, real, &delta, &err) < 0)
		die_err(&err);
	delta_set_disk_limit(delta, disk_limit);
	int pfd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0)
		hdie(real);
	struct view *view = NULL;
	struct view_config vc = { .project_fd = pfd, .delta = delta, .policy = policy,
				  .kernel_permissions = kperm, .spin_us = spin_us,
				  .max_nodes = max_nodes };
	if (view_new(&vc, &view, &err) < 0)
		die_err(&err);

	char mnt[] = "/tmp/viewharness.XXXXXX";
	if (!mkdtemp(mnt))
		hdie("mkdtemp");
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		hdie("socketpair");
	pid_t pid = fork();
	if (pid < 0)
		hdie("fork");
	if (pid == 0) {
		close(sv[0]);
		child(sv[1], mnt, cmd, kperm);
	}
	close(sv[1]);
	int fuse_fd = recv_fd(sv[0]);
	int status = 0;
	if (fuse_fd < 0) {
		waitpid(pid, &status, 0);
		fprintf(stderr, H ": the child did not hand over the FUSE fd\n");
		rmdir(mnt);
		return 125;
	}
	if (view_start(view, fuse_fd, &err) < 0) {
		print_err(&err);
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		rmdir(mnt);
		return 125;
	}
	if (write(sv[0], "g", 1) != 1)
		hdie("start the child");
	close(sv[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	view_stop(view);
	if (view_nodes_refused(view))
		fprintf(stderr, H ": node cap %zu reached\n", view_nodes_refused(view));
	view_free(view);
	rmdir(mnt);
	if (delta_save(delta, &err) < 0)
		print_err(&err);
	fprintf(stderr, H ": delta %s\n", delta_path(delta));
	delta_free(delta);
	close(pfd);
	policy_free(policy);
	policy_options_free(&po);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}
