/* service.c - service mode (see sandbox.h): PID 1 of a long-lived
 * sandbox starts processes on request, each in a PID namespace of its
 * own.
 *
 *   P (the caller)  sandbox_spawn(): one MSG_SPAWN packet on the control
 *                   socket (struct msg, struct spawn_req, the strings),
 *                   with the fds [ctl, stdin, stdout, stderr] attached
 *                   (those given); ctl is one end of a socketpair made
 *                   for this process, P keeps the other.
 *   PID 1           clone3(CLONE_NEWPID | CLONE_PIDFD) an exec init,
 *                   sends P its pidfd over ctl and keeps a copy of ctl
 *                   until it has reaped the exec init, so that P's EOF
 *                   on ctl means the whole namespace is gone.  It never
 *                   waits for one process.
 *   exec init       PID 1 of the new namespace: forks the process (the
 *                   command, or a file operation), forwards MSG_SIGNAL,
 *                   reports MSG_ERROR, MSG_EXEC_FAILED or MSG_EXIT over
 *                   ctl, then exits, and the kernel kills whatever is
 *                   left in its namespace.  P closing ctl ends it too,
 *                   and P's pidfd kills it whatever happens inside.
 *
 * On EXEC PID 1 executes the caller's program anew (service_start(); a
 * constructor here catches it before main()), so that it, and every
 * exec init cloned from it, is a small process rather than a copy of a
 * caller of any size; where it cannot (another root filesystem, a mount
 * in a system directory, an exec that fails) it serves as the clone it
 * is.  It keeps CAP_SYS_ADMIN (for CLONE_NEWPID) and CAP_SETPCAP in the
 * sandbox's user namespace; it and the exec inits are not dumpable, so
 * nothing in the sandbox can ptrace them or open their /proc files.
 * Processes drop everything as run's command does.  All of it runs on
 * static memory with system calls only (the clone may come from a
 * process with threads). */
#include <dirent.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/rootfs.h"
#include "sandbox/sandbox_int.h"
#include "sandbox/sysfilter.h"

/* The request after struct msg in a MSG_SPAWN packet; the strings
 * follow, each NUL-terminated: workdir (REQ_WORKDIR), path (REQ_PATH),
 * argv, envp. */
struct spawn_req {
	uint32_t op;    /* enum sproc_op */
	uint32_t flags; /* REQ_* */
	uint32_t mode;
	uint32_t argc, envc;
	uint32_t fds; /* bit n: fds[n] is attached (after ctl) */
	uint32_t len; /* bytes of strings */
};

enum { REQ_WORKDIR = 1, REQ_PATH = 2, REQ_BENEATH = 4, REQ_RECURSIVE = 8, REQ_SEALED = 16 };

#define REQ_STRINGS_MAX (SPROC_MAX_ARGS + 2 * PATH_MAX)
#define REQ_HEAD (sizeof(struct msg) + sizeof(struct spawn_req))
#define REQ_PACKET_MAX (REQ_HEAD + REQ_STRINGS_MAX)
/* Processes one service sandbox runs at once (PID 1 holds an fd each). */
#define SERVICE_MAX_PROCS 4096
/* Directory levels LIST descends. */
#define LIST_DEPTH 64

struct sandbox_proc {
	int ctl;   /* our end of its control socket, non-blocking */
	int pidfd; /* its exec init's, once MSG_PIDFD came; else -1 */
	enum sproc_op op;
	char *what; /* argv[0] or the path, for messages */
	bool sealed; /* sproc_spec's */
	bool eof;   /* ctl ended: the namespace is gone */
	bool killed;
	bool have_exit;
	int status;
	int exec_errno;
	bool failed; /* MSG_ERROR came */
	struct af_err failure;
};

/* --- in the sandbox: PID 1, exec inits, file operations -------------------- */

/* PID 1's request buffer; an exec init parses its copy. */
static union {
	char buf[REQ_PACKET_MAX];
	struct msg align;
} req;
/* An exec init's argv and envp, NULL-terminated, pointing into req. */
static char *req_vec[REQ_STRINGS_MAX + 2];
/* The exec inits PID 1 runs, with its copy of each one's ctl. */
static struct {
	pid_t pid;
	int ctl;
} procs[SERVICE_MAX_PROCS];
static size_t n_procs; /* high-water mark in procs */
/* LIST's directory buffers, one per level, and its path and output. */
static char list_dents[LIST_DEPTH][8192];
static char list_path[PATH_MAX];
static char out_buf[65536];
static size_t out_len;
/* The open-files limit PID 1 got, which its processes get back. */
static struct rlimit nofile;
/* The sandbox's fallback rlimits, for its processes. */
static struct limits_rlimits service_rl;
/* What exec inits take of a sandbox_config: nothing but defaults. */
static struct sandbox_config service_cfg;

/* Report an error over ctl (errno + message, P appends strerror). */
static void ctl_error(int ctl, int errnum, const char *what)
{
	struct af_err e = { 0 };
	af_err_set(&e, errnum, "%s", what);
	send_msg(ctl, MSG_ERROR, 0, &e, -1);
}

/* Write out what out_record() gathered.  Returns 0 or -errno. */
static int out_flush(int fd)
{
	int r = write_all(fd, out_buf, out_len);
	out_len = 0;
	return r;
}

/* One LIST/STAT record (sandbox.h).  Returns 0 or -errno. */
static int out_record(int fd, const struct stat *st, const char *path)
{
	char type = S_ISREG(st->st_mode) ? 'f' : S_ISDIR(st->st_mode) ? 'd'
					  : S_ISLNK(st->st_mode) ? 'l' : 'o';
	char line[64];
	int n = snprintf(line, sizeof(line), "%c %o %lld %lld.%09ld ", type,
			 (unsigned)(st->st_mode & 07777), (long long)st->st_size,
			 (long long)st->st_mtim.tv_sec, (long)st->st_mtim.tv_nsec);
	size_t plen = strlen(path) + 1;
	if (n < 0 || (size_t)n + plen > sizeof(out_buf))
		return -ENAMETOOLONG;
	if (out_len + (size_t)n + plen > sizeof(out_buf)) {
		int r = out_flush(fd);
		if (r < 0)
			return r;
	}
	memcpy(out_buf + out_len, line, (size_t)n);
	memcpy(out_buf + out_len + n, path, plen);
	out_len += (size_t)n + plen;
	return 0;
}

/* List the entries of dfd, list_path[0..rlen) its path relative to the
 * listed directory; into subdirectories too if recursive.  What cannot
 * be read below the top is left out.  Returns 0 or -errno. */
static int list_dir(int dfd, size_t rlen, int depth, bool recursive, int out)
{
	char *buf = list_dents[depth];
	for (;;) {
		long n = syscall(SYS_getdents64, dfd, buf, sizeof(list_dents[0]));
		if (n < 0)
			return depth ? 0 : -errno;
		if (n == 0)
			return 0;
		for (long off = 0; off < n;) {
			struct dirent64 *de = (struct dirent64 *)(buf + off);
			off += de->d_reclen;
			const char *name = de->d_name;
			if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
				continue;
			size_t nlen = strlen(name), len = rlen + (rlen ? 1 : 0) + nlen;
			if (len >= sizeof(list_path))
				continue;
			if (rlen)
				list_path[rlen] = '/';
			memcpy(list_path + len - nlen, name, nlen + 1);
			struct stat st;
			if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
				continue; /* gone meanwhile */
			int r = out_record(out, &st, list_path);
			if (r < 0)
				return r;
			if (!recursive || !S_ISDIR(st.st_mode) || depth + 1 >= LIST_DEPTH)
				continue;
			int sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0)
				continue;
			r = list_dir(sub, len, depth + 1, recursive, out);
			close(sub);
			if (r < 0)
				return r;
			list_path[rlen] = '\0';
		}
	}
}

/* Copy in to out until EOF.  Returns 0 or -errno. */
static int copy_fd(int in, int out)
{
	for (;;) {
		ssize_t n = read(in, out_buf, sizeof(out_buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		int r = write_all(out, out_buf, (size_t)n);
		if (r < 0)
			return r;
	}
}

/* Open the path of a file operation.  One in /workspace is resolved
 * beneath it, as a relative working directory is: no '..', absolute
 * symbolic link or magic link leads out of the project (-EXDEV), so a
 * link the sandbox planted cannot turn a client's file request into one
 * for another file.  Returns an fd, or -errno. */
static int file_open(const char *path, int flags, mode_t mode)
{
	static const char ws[] = "/workspace";
	if (strncmp(path, ws, sizeof(ws) - 1) != 0 ||
	    (path[sizeof(ws) - 1] != '/' && path[sizeof(ws) - 1] != '\0')) {
		int fd = open(path, flags, mode);
		return fd < 0 ? -errno : fd;
	}
	const char *rel = path + sizeof(ws) - 1;
	rel += strspn(rel, "/");
	int dfd = open(ws, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	struct open_how how = { .flags = (uint64_t)flags,
				.mode = flags & O_CREAT ? mode : 0,
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS };
	int fd = (int)syscall(SYS_openat2, dfd, *rel ? rel : ".", &how, sizeof(how));
	int e = errno;
	close(dfd);
	return fd < 0 ? -e : fd;
}

/* Whether fd is a regular file: returns 0, -EISDIR for a directory,
 * -EINVAL for anything else, or -errno. */
static int regular_fd(int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	return 0;
}

/* The file operation, as the process running it (no capabilities) sees
 * the sandbox.  Returns 0 or -errno. */
static int file_op(enum sproc_op op, const char *path, unsigned mode, bool recursive)
{
	struct stat st;
	int fd, r;

	switch (op) {
	case SPROC_READ:
		fd = file_open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC, 0);
		if (fd < 0)
			return fd;
		r = regular_fd(fd);
		if (r < 0)
			return r;
		for (;;) {
			ssize_t n = sendfile(1, fd, NULL, 1 << 20);
			if (n == 0)
				return 0;
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return errno == EINVAL || errno == ENOSYS ? copy_fd(fd, 1) : -errno;
		}
	case SPROC_WRITE:
		/* non-blocking: a FIFO the sandbox planted would hang the
		 * request until a reader came, and hand the reader the data */
		fd = file_open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOCTTY | O_NONBLOCK | O_CLOEXEC,
			       mode ? mode : 0644);
		if (fd == -ENXIO)
			return -EINVAL; /* a FIFO without a reader, a socket */
		if (fd < 0)
			return fd;
		r = regular_fd(fd);
		if (r < 0)
			return r;
		if (fcntl(fd, F_SETFL, 0) < 0)
			return -errno;
		r = copy_fd(0, fd);
		if (r == 0 && close(fd) < 0)
			r = -errno;
		return r;
	case SPROC_LIST:
		fd = file_open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
		if (fd < 0)
			return fd;
		list_path[0] = '\0';
		r = list_dir(fd, 0, 0, recursive, 1);
		return r < 0 ? r : out_flush(1);
	case SPROC_STAT:
		/* the entry itself, a symbolic link as a link */
		fd = file_open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0);
		if (fd < 0)
			return fd;
		if (fstat(fd, &st) < 0)
			return -errno;
		r = out_record(1, &st, path);
		return r < 0 ? r : out_flush(1);
	case SPROC_EXEC:
		break;
	}
	return -EINVAL;
}

/* The process of a file operation: as little privilege as the command
 * has, so the view's permissions apply exactly as to it. */
static AF_NORETURN void file_main(const struct sandbox_config *cfg,
				  const struct sock_fprog *filter, enum sproc_op op,
				  const char *path, unsigned mode, bool recursive, int errfd)
{
	struct exec_fail ef = { 0 };
	struct sigaction sa = { .sa_handler = SIG_DFL };
	sigset_t none;

	/* no handler of the caller's may run here */
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (drop_caps() < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		ef.errnum = errno;
		ef.stage = STAGE_PRIVS;
	} else if (limits_apply_rlimits(cfg->limits) < 0) {
		ef.errnum = errno;
		ef.stage = STAGE_LIMITS;
	} else if (filter->len && sysfilter_install(filter) < 0) {
		ef.errnum = errno;
		ef.stage = STAGE_SECCOMP;
	} else {
		int r = file_op(op, path, mode, recursive);
		if (r == 0)
			_exit(0);
		ef.errnum = -r;
		ef.stage = STAGE_FILE;
	}
	(void)!write(errfd, &ef, sizeof(ef));
	_exit(1);
}

/* Point req_vec at n strings of s (len bytes).  Returns the next
 * string, or NULL if s does not hold them. */
static char *take_strings(char *s, char *end, char **vec, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		char *nul = memchr(s, '\0', (size_t)(end - s));
		if (!nul)
			return NULL;
		vec[i] = s;
		s = nul + 1;
	}
	vec[n] = NULL;
	return s;
}

/* The exec init: PID 1 of the process's own namespace.  fds: ctl and
 * stdin, stdout, stderr; len: bytes of req. */
static AF_NORETURN void exec_init_main(const struct sandbox_config *cfg,
				       const struct sock_fprog *filter, const int fds[4],
				       size_t len)
{
	struct spawn_req r;
	int high[4], ep[2];

	/* stdio as 0-2, ctl as 3, nothing of PID 1's (its socket, the other
	 * processes' ctl) */
	for (int i = 0; i < 4; i++)
		if ((high[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 10)) < 0)
			_exit(AF_EXIT_FAILURE);
	for (int i = 0; i < 3; i++)
		if (dup2(high[i], i) < 0)
			_exit(AF_EXIT_FAILURE);
	if (dup3(high[3], 3, O_CLOEXEC) < 0)
		_exit(AF_EXIT_FAILURE);
	if (close_range(4, ~0U, 0) < 0)
		_exit(AF_EXIT_FAILURE);
	const int ctl = 3;
	setrlimit(RLIMIT_NOFILE, &nofile);

	memcpy(&r, req.buf + sizeof(struct msg), sizeof(r));
	char *s = req.buf + REQ_HEAD, *end = req.buf + len;
	const char *workdir = NULL, *path = NULL;
	if ((r.flags & REQ_WORKDIR) && (s = take_strings(s, end, req_vec, 1)))
		workdir = req_vec[0];
	if (s && (r.flags & REQ_PATH) && (s = take_strings(s, end, req_vec, 1)))
		path = req_vec[0];
	char **argv = req_vec, **envp = NULL;
	if (s && (uint64_t)r.argc + r.envc > REQ_STRINGS_MAX)
		s = NULL;
	if (s && (s = take_strings(s, end, argv, r.argc))) {
		envp = req_vec + r.argc + 1;
		s = take_strings(s, end, envp, r.envc);
	}
	if (!s || (r.op == SPROC_EXEC && r.argc == 0) || (r.op != SPROC_EXEC && !path)) {
		ctl_error(ctl, EPROTO, "malformed request");
		_exit(AF_EXIT_FAILURE);
	}

	struct sandbox_config c = *cfg;
	c.argv = argv;
	c.envp = envp;
	/* a service sandbox shows the project at /workspace (PID 1 executed
	 * anew has no --workspace to carry) */
	c.workspace = "/workspace";
	c.workdir = workdir ? workdir : "/workspace";
	c.workdir_beneath = workdir && (r.flags & REQ_BENEATH);
	c.sealed = (r.flags & REQ_SEALED) != 0;
	c.pty = false;

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		ctl_error(ctl, errno, "cannot create a signalfd");
		_exit(AF_EXIT_FAILURE);
	}
	if (r.op == SPROC_EXEC) {
		/* Each exec sees its own processes only: a /proc of its PID
		 * namespace, in a mount namespace of its own.  The sandbox's
		 * /proc shows every exec's processes, and the same user may
		 * open another's /proc/PID/fd and mem: a job a session left
		 * behind could write into a later exec's output, or memory. */
		struct af_err perr = { 0 };
		if (unshare(CLONE_NEWNS) < 0)
			af_err_set(&perr, errno, "cannot make the process's mount namespace");
		if (perr.errnum || rootfs_mount_proc("/proc", &perr) < 0) {
			send_msg(ctl, MSG_ERROR, 0, &perr, -1);
			_exit(AF_EXIT_FAILURE);
		}
		int e = enter_workdir(&c);
		if (e < 0) {
			struct af_err err = { 0 };
			af_err_set(&err, -e, "cannot change to working directory '%s'", c.workdir);
			if (e == -EXDEV)
				af_err_hint(&err, "a symbolic link on the way leads outside /workspace; "
						  "give an absolute path to work there");
			send_msg(ctl, MSG_ERROR, 0, &err, -1);
			_exit(AF_EXIT_FAILURE);
		}
	}
	if (pipe2(ep, O_CLOEXEC) < 0) {
		ctl_error(ctl, errno, "cannot create a pipe");
		_exit(AF_EXIT_FAILURE);
	}
	pid_t pid = sb_clone(0);
	if (pid < 0) {
		ctl_error(ctl, errno, "cannot start the process");
		_exit(AF_EXIT_FAILURE);
	}
	if (pid == 0) {
		close(ctl);
		close(sfd);
		close(ep[0]);
		if (limits_set_rlimits(&service_rl) < 0) {
			struct exec_fail ef = { .errnum = errno, .stage = STAGE_LIMITS };
			(void)!write(ep[1], &ef, sizeof(ef));
			_exit(1);
		}
		if (r.op == SPROC_EXEC)
			command_main(&c, filter, -1, ep[1], false);
		file_main(&c, filter, (enum sproc_op)r.op, path, r.mode,
			  (r.flags & REQ_RECURSIVE) != 0, ep[1]);
	}
	close(ep[1]);
	/* read once the process is reaped: whatever it wrote is there, and
	 * a pipe some other process still held open must not hang us */
	fcntl(ep[0], F_SETFL, O_NONBLOCK);
	close(0);
	close(1);
	close(2);

	for (;;) {
		struct pollfd pfd[2] = { { .fd = ctl, .events = POLLIN }, { .fd = sfd, .events = POLLIN } };
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			_exit(AF_EXIT_FAILURE);
		}
		if (pfd[1].revents) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) > 0)
				;
			int st;
			pid_t w;
			while ((w = waitpid(-1, &st, WNOHANG)) > 0) {
				if (w != pid)
					continue; /* an orphan of the process's */
				struct exec_fail ef;
				struct af_err err = { 0 };
				ssize_t n = read(ep[0], &ef, sizeof(ef)); /* written before it exited */
				if (n != (ssize_t)sizeof(ef))
					send_msg(ctl, MSG_EXIT, st, NULL, -1);
				else if (exec_fail_error(&ef, &err))
					send_msg(ctl, MSG_ERROR, 0, &err, -1);
				else
					send_msg(ctl, MSG_EXEC_FAILED, ef.errnum, NULL, -1);
				/* exiting kills whatever is left in the namespace */
				_exit(0);
			}
		}
		if (pfd[0].revents) {
			struct msg m;
			int got = recv_msg(ctl, &m, NULL);
			if (got == 0 || (got < 0 && got != -EINTR && got != -EAGAIN && got != -EPROTO))
				_exit(0); /* the caller let go of it */
			if (got < 0)
				continue;
			/* before its setsid() the group does not exist yet */
			if (m.type == MSG_SIGNAL_GROUP && kill(-pid, m.value) == 0)
				continue;
			if (m.type == MSG_SIGNAL || m.type == MSG_SIGNAL_GROUP)
				kill(pid, m.value);
		}
	}
}

/* Reap the exec inits that ended and let go of their ctl: the caller
 * sees EOF once the namespace is gone. */
static void reap_inits(int sfd)
{
	struct signalfd_siginfo si;
	pid_t w;

	while (read(sfd, &si, sizeof(si)) > 0)
		;
	while ((w = waitpid(-1, NULL, WNOHANG)) > 0) {
		for (size_t i = 0; i < n_procs; i++) {
			if (procs[i].pid != w)
				continue;
			close(procs[i].ctl);
			procs[i].pid = 0;
			procs[i].ctl = -1;
			while (n_procs && procs[n_procs - 1].pid == 0)
				n_procs--;
			break;
		}
	}
}

/* Take one request from sock and start its exec init.  Returns 1, 0
 * when the caller is gone. */
static int take_request(const struct sandbox_config *cfg, const struct sock_fprog *filter,
			int sock, int devnull)
{
	struct iovec iov = { .iov_base = req.buf, .iov_len = sizeof(req.buf) };
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf) };
	int fds[4] = { -1, -1, -1, -1 }, got[4], n_got = 0;
	struct spawn_req r;

	ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 1 : 0;
	if (n == 0)
		return 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (n_got < 4)
				got[n_got++] = fd;
			else
				close(fd);
		}
	}
	if (n_got == 0)
		return 1; /* nowhere to answer */
	if (mh.msg_flags & MSG_CTRUNC) { /* out of fds; ctl came first */
		ctl_error(got[0], EMFILE, "too many processes in the sandbox");
		for (int i = 0; i < n_got; i++)
			close(got[i]);
		return 1;
	}
	int ctl = got[0];
	memcpy(&r, req.buf + sizeof(struct msg), sizeof(r));
	int want = 1 + !!(r.fds & 1) + !!(r.fds & 2) + !!(r.fds & 4);
	const char *bad = NULL;
	int e = EPROTO;
	if ((size_t)n < REQ_HEAD || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
	    ((struct msg *)req.buf)->type != MSG_SPAWN || r.len != (size_t)n - REQ_HEAD ||
	    want != n_got)
		bad = "malformed request";
	size_t slot = 0;
	while (slot < n_procs && procs[slot].pid)
		slot++;
	if (!bad && slot == SERVICE_MAX_PROCS) {
		bad = "too many processes in the sandbox";
		e = EAGAIN;
	}
	if (!bad) {
		for (int i = 0, k = 1; i < 3; i++)
			fds[i] = r.fds & (1u << i) ? got[k++] : devnull;
		fds[3] = ctl;
		int pidfd = -1;
		struct {
			uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size,
				tls;
		} args = { .flags = CLONE_NEWPID | CLONE_PIDFD,
			   .pidfd = (uint64_t)(uintptr_t)&pidfd,
			   .exit_signal = SIGCHLD };
		pid_t pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
		if (pid == 0)
			exec_init_main(cfg, filter, fds, (size_t)n);
		if (pid < 0) {
			e = errno;
			struct af_err err = { 0 };
			af_err_set(&err, e, "cannot start the process");
			if (e == EAGAIN)
				af_err_hint(&err, "the sandbox's process limit may be reached");
			send_msg(ctl, MSG_ERROR, 0, &err, -1);
		} else {
			if (send_msg(ctl, MSG_PIDFD, 0, NULL, pidfd) < 0)
				syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
			close(pidfd);
			procs[slot].pid = pid;
			procs[slot].ctl = ctl;
			ctl = -1; /* until the exec init is reaped */
			if (slot == n_procs)
				n_procs++;
		}
	} else {
		ctl_error(ctl, e, bad);
	}
	for (int i = 1; i < n_got; i++)
		close(got[i]);
	if (ctl >= 0)
		close(ctl);
	return 1;
}

/* PID 1's loop: start what is asked, reap what ended. */
static AF_NORETURN void service_main(const struct sandbox_config *cfg,
				     const struct sock_fprog *filter, int sock)
{
	struct af_err err = { 0 };
	sigset_t set;

	/* everything pid1_sigset() holds stays blocked: nothing here is
	 * forwarded; SIGCHLD says an exec init ended */
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (sfd < 0 || devnull < 0) {
		af_err_set(&err, errno, "cannot start the service");
		send_msg(sock, MSG_ERROR, 0, &err, -1);
		_exit(AF_EXIT_FAILURE);
	}
	for (size_t i = 0; i < SERVICE_MAX_PROCS; i++)
		procs[i].ctl = -1;
	/* PID 1 holds an fd for each running process */
	getrlimit(RLIMIT_NOFILE, &nofile);
	struct rlimit raised = { .rlim_cur = nofile.rlim_max, .rlim_max = nofile.rlim_max };
	setrlimit(RLIMIT_NOFILE, &raised);
	for (;;) {
		struct pollfd pfd[2] = { { .fd = sock, .events = POLLIN },
					 { .fd = sfd, .events = POLLIN } };
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			_exit(AF_EXIT_FAILURE);
		}
		if (pfd[1].revents)
			reap_inits(sfd);
		/* the caller gone: exiting ends the sandbox */
		if (pfd[0].revents && take_request(cfg, filter, sock, devnull) == 0)
			_exit(0);
	}
}

#define SERVICE_INIT_ARG "--agentfense-service-init"

/* Take the filter and the rlimits that follow EXEC, then serve. */
static AF_NORETURN void service_run(int sock, unsigned filter_len)
{
	struct af_err err = { 0 };
	struct sock_fprog filter;
	int r = recv_filter(sock, filter_len, &filter);
	if (r < 0) {
		af_err_set(&err, -r, "cannot receive the seccomp filter");
		send_msg(sock, MSG_ERROR, 0, &err, -1);
		_exit(AF_EXIT_FAILURE);
	}
	ssize_t n;
	while ((n = recv(sock, &service_rl, sizeof(service_rl), 0)) < 0 && errno == EINTR)
		;
	if (n != (ssize_t)sizeof(service_rl)) {
		af_err_set(&err, n < 0 ? errno : EPROTO, "cannot receive the resource limits");
		send_msg(sock, MSG_ERROR, 0, &err, -1);
		_exit(AF_EXIT_FAILURE);
	}
	service_main(&service_cfg, &filter, sock);
}

AF_NORETURN void service_start(int sock, int exe_fd, unsigned filter_len)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];
	char num[16];

	/* Executed anew, PID 1 is a small process of its own: a clone of
	 * the caller would keep a copy of all its memory, and every clone
	 * of that (one per process started) would copy its page tables,
	 * milliseconds for a caller of a few hundred MB.  The capabilities
	 * it needs here survive the exec as ambient ones: CAP_SYS_ADMIN
	 * for PID namespaces, CAP_SETPCAP for the processes to empty their
	 * bounding set, as they drop everything. */
	if (exe_fd >= 0 && sock == 3 && syscall(SYS_capget, &hdr, data) == 0) {
		data[0].inheritable |= 1u << CAP_SYS_ADMIN | 1u << CAP_SETPCAP;
		snprintf(num, sizeof(num), "%u", filter_len);
		char *argv[] = { (char *)AF_PROG, (char *)SERVICE_INIT_ARG, num, NULL };
		char *envp[] = { NULL };
		if (syscall(SYS_capset, &hdr, data) == 0 &&
		    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_SYS_ADMIN, 0, 0) == 0 &&
		    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_SETPCAP, 0, 0) == 0 &&
		    fcntl(sock, F_SETFD, 0) == 0)
			syscall(SYS_execveat, exe_fd, "", argv, envp, AT_EMPTY_PATH);
		fcntl(sock, F_SETFD, FD_CLOEXEC);
	}
	/* it could not: serve from this copy */
	if (exe_fd >= 0)
		close(exe_fd);
	service_run(sock, filter_len);
}

/* In a program that links this library: is this process PID 1 of a
 * service sandbox, executed anew by service_start()?  Then it must not
 * get to main().  The check costs a string comparison elsewhere. */
__attribute__((constructor)) static void service_init_hook(int argc, char **argv)
{
	int type = 0;
	socklen_t len = sizeof(type);

	if (argc != 3 || strcmp(argv[1], SERVICE_INIT_ARG) != 0)
		return;
	if (getsockopt(3, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_SEQPACKET)
		return;
	/* first of all: the processes it starts must not ptrace it or
	 * open its /proc files (none runs yet) */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	fcntl(3, F_SETFD, FD_CLOEXEC);
	service_run(3, (unsigned)strtoul(argv[2], NULL, 10));
}

/* --- the caller's side ------------------------------------------------------ */

int service_prepare(int sock, const struct limits *l)
{
	struct limits_rlimits rl;

	/* one request is one packet; the kernel caps this at
	 * net.core.wmem_max, and a larger request fails with E2BIG */
	int size = (int)REQ_PACKET_MAX + (64 << 10);
	setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	limits_get_rlimits(l, &rl);
	while (send(sock, &rl, sizeof(rl), MSG_NOSIGNAL) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

/* Bytes of the strings of v, NULs included; *count gets how many. */
static size_t strv_bytes(char *const *v, uint32_t *count)
{
	size_t n = 0;
	*count = 0;
	for (; v && *v; v++, (*count)++)
		n += strlen(*v) + 1;
	return n;
}

static char *put_str(char *p, const char *s)
{
	size_t n = strlen(s) + 1;
	memcpy(p, s, n);
	return p + n;
}

int service_spawn(int sock, const struct sproc_spec *sp, struct sandbox_proc **out,
		  struct af_err *err)
{
	struct spawn_req r = { .op = (uint32_t)sp->op, .mode = sp->mode & 07777 };
	int sv[2];

	switch (sp->op) {
	case SPROC_EXEC:
		if (!sp->argv || !sp->argv[0])
			return af_err_set(err, EINVAL, "cannot start a process: no command");
		break;
	case SPROC_READ:
	case SPROC_WRITE:
	case SPROC_LIST:
	case SPROC_STAT:
		if (!sp->path || sp->path[0] != '/')
			return af_err_set(err, EINVAL, "cannot use '%s' as path in the sandbox: "
					  "not absolute", sp->path ? sp->path : "");
		break;
	default:
		return af_err_set(err, EINVAL, "cannot start a process: unknown operation %d",
				  (int)sp->op);
	}
	if (sp->workdir && sp->workdir[0] != '/')
		return af_err_set(err, EINVAL, "cannot use '%s' as working directory: not absolute",
				  sp->workdir);
	if ((sp->workdir && strlen(sp->workdir) >= PATH_MAX) ||
	    (sp->path && strlen(sp->path) >= PATH_MAX))
		return af_err_set(err, ENAMETOOLONG, "cannot start a process: %s",
				  strerror(ENAMETOOLONG));
	size_t args = 0;
	if (sp->op == SPROC_EXEC)
		args = strv_bytes(sp->argv, &r.argc) + strv_bytes(sp->envp, &r.envc);
	if (args > SPROC_MAX_ARGS)
		return af_err_set(err, E2BIG, "cannot start '%s': its arguments and environment "
				  "take %zu bytes, more than %u", sp->argv[0], args,
				  SPROC_MAX_ARGS);
	if (sp->workdir)
		r.flags |= REQ_WORKDIR | (sp->workdir_beneath ? REQ_BENEATH : 0);
	if (sp->op != SPROC_EXEC)
		r.flags |= REQ_PATH | (sp->recursive ? REQ_RECURSIVE : 0);
	else if (sp->sealed)
		r.flags |= REQ_SEALED;
	r.len = (uint32_t)(args + (sp->workdir ? strlen(sp->workdir) + 1 : 0) +
			   (sp->op != SPROC_EXEC ? strlen(sp->path) + 1 : 0));

	int fds[4], n_fds = 1;
	for (int i = 0; i < 3; i++)
		if (sp->fds[i] >= 0) {
			r.fds |= 1u << i;
			fds[n_fds++] = sp->fds[i];
		}
	autofree char *buf = xmalloc(REQ_HEAD + r.len);
	struct msg m = { .type = MSG_SPAWN };
	memcpy(buf, &m, sizeof(m));
	memcpy(buf + sizeof(m), &r, sizeof(r));
	char *p = buf + REQ_HEAD;
	if (sp->workdir)
		p = put_str(p, sp->workdir);
	if (sp->op != SPROC_EXEC)
		p = put_str(p, sp->path);
	for (char *const *v = sp->argv; sp->op == SPROC_EXEC && *v; v++)
		p = put_str(p, *v);
	for (char *const *v = sp->envp; sp->op == SPROC_EXEC && v && *v; v++)
		p = put_str(p, *v);

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return af_err_set(err, errno, "cannot create a socket pair: %s", strerror(errno));
	fds[0] = sv[1];
	struct iovec iov = { .iov_base = buf, .iov_len = REQ_HEAD + r.len };
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof(u));
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			     .msg_controllen = CMSG_SPACE((size_t)n_fds * sizeof(int)) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN((size_t)n_fds * sizeof(int));
	memcpy(CMSG_DATA(c), fds, (size_t)n_fds * sizeof(int));
	int e = 0;
	while (sendmsg(sock, &mh, MSG_NOSIGNAL) < 0)
		if (errno != EINTR) {
			e = errno;
			break;
		}
	close(sv[1]); /* PID 1 has it now */
	if (e) {
		close(sv[0]);
		if (e == EPIPE || e == ECONNRESET || e == ECONNREFUSED)
			return af_err_set(err, ESRCH, "cannot start a process: the sandbox is "
					  "not running");
		if (e == EMSGSIZE)
			return af_err_set(err, E2BIG, "cannot start a process: its request of %zu "
					  "bytes is larger than the control socket takes",
					  REQ_HEAD + (size_t)r.len);
		return af_err_set(err, e, "cannot start a process: %s", strerror(e));
	}
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	struct sandbox_proc *proc = xcalloc(1, sizeof(*proc));
	proc->ctl = sv[0];
	proc->pidfd = -1;
	proc->op = sp->op;
	proc->what = xstrdup(sp->op == SPROC_EXEC ? sp->argv[0] : sp->path);
	proc->sealed = sp->op == SPROC_EXEC && sp->sealed;
	*out = proc;
	return 0;
}

int sproc_fd(const struct sandbox_proc *p)
{
	return p->ctl;
}

/* Take one message from ctl.  Returns 1, 0 when there is none now
 * (or at EOF: p->eof), or -errno. */
static int proc_take(struct sandbox_proc *p)
{
	struct msg m;
	int fd;
	if (p->eof)
		return 0;
	int r = recv_msg(p->ctl, &m, &fd);
	if (r == -EAGAIN || r == -EINTR)
		return 0;
	if (r == 0) {
		p->eof = true;
		return 0;
	}
	if (r < 0)
		return r;
	switch (m.type) {
	case MSG_PIDFD:
		if (p->pidfd < 0 && fd >= 0)
			p->pidfd = steal_fd(&fd);
		break;
	case MSG_EXIT:
		p->have_exit = true;
		p->status = m.value;
		break;
	case MSG_EXEC_FAILED:
		p->exec_errno = m.value ? m.value : EIO;
		break;
	case MSG_ERROR:
		child_error(&m, &p->failure);
		p->failed = true;
		break;
	default:
		break;
	}
	if (fd >= 0)
		close(fd);
	return 1;
}

/* How it ended, once ctl is at EOF. */
static void proc_result(struct sandbox_proc *p, struct sproc_result *res, struct af_err *err)
{
	memset(res, 0, sizeof(*res));
	if (p->failed) {
		res->exec_errno = p->failure.errnum ? p->failure.errnum : EIO;
		res->exit_code = AF_EXIT_FAILURE;
		if (err)
			*err = p->failure;
	} else if (p->exec_errno) {
		int e = p->exec_errno;
		res->exec_errno = e;
		if (p->op == SPROC_EXEC) {
			res->exit_code = e == ENOENT ? AF_EXIT_NOTFOUND : AF_EXIT_NOEXEC;
			if (e == ENOEXEC && p->sealed)
				af_err_set(err, e, "cannot run '%s': not an ELF binary (a sealed "
					   "program cannot be a #! script)", p->what);
			else
				af_err_set(err, e, "cannot run '%s': %s", p->what, strerror(e));
		} else {
			res->exit_code = 1;
			af_err_set(err, e, "cannot %s '%s': %s",
				   p->op == SPROC_READ	  ? "read"
				   : p->op == SPROC_WRITE ? "write"
				   : p->op == SPROC_LIST  ? "list"
							  : "stat",
				   p->what, strerror(e));
		}
	} else if (p->have_exit) {
		if (WIFSIGNALED(p->status)) {
			res->term_signal = WTERMSIG(p->status);
			res->exit_code = 128 + res->term_signal;
		} else {
			res->exit_code = WEXITSTATUS(p->status);
		}
	} else if (p->pidfd < 0 && !p->killed) {
		res->exec_errno = ESRCH;
		res->exit_code = AF_EXIT_FAILURE;
		af_err_set(err, ESRCH, "cannot start '%s': the sandbox ended first", p->what);
	} else {
		/* killed: by sproc_kill(), or with the whole sandbox */
		res->killed = p->killed;
		res->term_signal = SIGKILL;
		res->exit_code = 128 + SIGKILL;
	}
}

int sproc_step(struct sandbox_proc *p, struct sproc_result *res, struct af_err *err)
{
	int r;
	while ((r = proc_take(p)) == 1)
		;
	if (r < 0)
		return af_err_set(err, -r, "cannot read from the sandbox: %s", strerror(-r));
	if (!p->eof)
		return 0;
	proc_result(p, res, err);
	return 1;
}

int sproc_signal(struct sandbox_proc *p, int sig, bool group)
{
	if (p->eof || p->have_exit || p->exec_errno || p->failed)
		return -ESRCH;
	int r = send_msg(p->ctl, group ? MSG_SIGNAL_GROUP : MSG_SIGNAL, sig, NULL, -1);
	return r == -EPIPE || r == -ECONNRESET ? -ESRCH : r;
}

void sproc_kill(struct sandbox_proc *p)
{
	if (!p || p->eof)
		return;
	p->killed = true;
	/* its pidfd may still be on the way (PID 1 sends it right after
	 * the clone), messages of the process before it */
	for (int tries = 0; p->pidfd < 0 && !p->eof && tries < 100;) {
		struct pollfd pfd = { .fd = p->ctl, .events = POLLIN };
		int n = poll(&pfd, 1, 20);
		if (n == 0)
			tries++;
		else if (n > 0 && proc_take(p) < 0)
			break;
	}
	if (p->pidfd >= 0)
		syscall(SYS_pidfd_send_signal, p->pidfd, SIGKILL, NULL, 0);
	else
		shutdown(p->ctl, SHUT_RDWR); /* the exec init ends at EOF */
}

void sproc_free(struct sandbox_proc *p)
{
	if (!p)
		return;
	sproc_kill(p);
	close(p->ctl);
	if (p->pidfd >= 0)
		close(p->pidfd);
	free(p->what);
	free(p);
}
