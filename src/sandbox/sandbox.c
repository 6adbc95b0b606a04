/* sandbox.c - namespaces, the parent/child protocol, PID 1 and the exec
 * of the command (see sandbox.h).
 *
 * Three processes take part:
 *   the caller (P)  stays in the host namespaces and serves the view;
 *   the child (C)   cloned into new namespaces, builds the root
 *                   (rootfs.c), then stays as PID 1: reaps, forwards
 *                   signals, reports the command's wait status;
 *   the command     forked by C, capabilities dropped, no_new_privs,
 *                   seccomp filter (built by P while C builds the
 *                   root, sent with EXEC), in a session and process
 *                   group of its own.
 * P and C talk over a SOCK_SEQPACKET socketpair, one struct msg per
 * packet (and the filter's instructions, right after EXEC): GO (P: the id maps are written), PTY (C, with cfg.pty only:
 * the pseudo-terminal's master attached), READY (C: root built, the
 * FUSE fd attached), EXEC (P: the view serves, start the command; value
 * is the filter's length, its instructions follow in one packet), and
 * from C: ERROR (errno + message, P appends strerror), EXEC_FAILED,
 * EXIT (raw wait status).  EOF on either side means the other is gone.
 *
 * C is cloned without exec from a process that may have threads, so C
 * and the command use system calls only until execve: no malloc, no
 * stdio, no libcap (capabilities are dropped with prctl/capset). */
#include "sandbox/sandbox.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandbox/rootfs.h"
#include "sandbox/sandbox_int.h"
#include "sandbox/sysfilter.h"

#define DEFAULT_HOSTNAME "agentfense"
#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

/* Our own command line and environment, in memory the child inherits:
 * PID 1 blanks its copy, since /proc/1/cmdline is readable by anyone in
 * the sandbox and names the project's host path. */
struct proc_area {
	uintptr_t arg_start, arg_end, env_start, env_end;
};

struct sandbox {
	pid_t pid;  /* PID 1 of the sandbox, as seen by the caller */
	int sock;   /* our end of the control socket */
	bool reaped;
	int status; /* PID 1's wait status, once reaped */
	struct sandbox_config cfg; /* deep copy: nothing in the blanked areas */
	struct mount_list mounts;  /* cfg.mounts, owned */
	int *mount_fds;            /* scratch for rootfs_build, one per mount */
	struct proc_area area;
	struct sock_fprog filter; /* len 0: no seccomp filter */
	int pty; /* the pty master until sandbox_pty() hands it over, or -1 */
	struct sandbox_server server;
	bool server_cut; /* its connection was cut to end the sandbox */
	/* What the control socket said while the command ran */
	bool have_status; /* MSG_EXIT came: exit_status is the command's */
	int exit_status;
	int exec_errno;   /* MSG_EXEC_FAILED's errno, else 0 */
	bool failed;      /* MSG_ERROR came: failure */
	struct af_err failure;
	bool exec_sent;   /* sandbox_exec() done: a service sandbox takes requests */
	int exe_fd;       /* service mode: our executable, which PID 1 becomes, or -1 */
	double kill_after; /* the timeout's grace after SIGTERM; 0: SIGKILL at once */
	bool timing_out;   /* the timeout sent SIGTERM: the end counts as the timeout */
	bool nproc_hit;    /* MSG_NPROC came: the tasks reached RLIMIT_NPROC */
};

/* Signals PID 1 passes on to the command when they come from outside
 * the sandbox (the caller's kill(2)); to its whole process group when
 * they carry this sigqueue(3) value (the caller got them from the
 * terminal, which signals a whole group). */
#define FORWARD_TO_GROUP 0x4166
static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };

/* --- messages (both sides) ----------------------------------------------- */

/* Send one message, with fd attached if >= 0.  Returns 0 or -errno. */
int send_msg(int sock, int type, int value, const struct af_err *err, int fd)
{
	struct msg m = { .type = type, .value = value };
	if (err)
		m.err = *err;
	struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (fd >= 0) {
		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof(u.buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	while (sendmsg(sock, &mh, MSG_NOSIGNAL) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

/* Receive one packet of at most len bytes into buf; *fd gets an
 * attached fd or -1.  Returns its length (0 on EOF), or -errno (-EPROTO
 * for one truncated). */
static ssize_t recv_fd(int sock, void *buf, size_t len, int *fd)
{
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf) };
	ssize_t n;

	*fd = -1;
	while ((n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC)) < 0)
		if (errno != EINTR)
			return -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			int got;
			memcpy(&got, CMSG_DATA(c), sizeof(int));
			if (*fd < 0)
				*fd = got;
			else
				close(got);
		}
	}
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		return -EPROTO;
	return n;
}

/* Receive one message; *fd (if not NULL) gets an attached fd or -1.
 * Returns 1, 0 on EOF, or -errno (-EPROTO for a malformed packet). */
int recv_msg(int sock, struct msg *m, int *fd)
{
	int got;
	ssize_t n = recv_fd(sock, m, sizeof(*m), &got);

	if (n > 0 && (size_t)n != sizeof(*m))
		n = -EPROTO;
	if (fd && n > 0)
		*fd = got;
	else if (got >= 0)
		close(got);
	if (fd && n <= 0)
		*fd = -1;
	if (n <= 0)
		return (int)n;
	m->err.msg[sizeof(m->err.msg) - 1] = '\0';
	m->err.hint[sizeof(m->err.hint) - 1] = '\0';
	return 1;
}

/* fork()-like clone into new namespaces, without glibc's fork handlers
 * (the child never returns to code that needs them).  clone3 leaves
 * room for CLONE_INTO_CGROUP.  Returns the pid, 0 in the child, or -1. */
pid_t sb_clone(uint64_t flags)
{
	struct {
		uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
	} args = { .flags = flags, .exit_signal = SIGCHLD };
	long r = syscall(SYS_clone3, &args, sizeof(args));
	if (r < 0 && errno == ENOSYS)
		r = syscall(SYS_clone, (unsigned long)flags | SIGCHLD, NULL, NULL, NULL, NULL);
	return (pid_t)r;
}

/* --- the child: PID 1 and the command -------------------------------------- */

static AF_NORETURN void child_fail(int sock, const struct af_err *err)
{
	send_msg(sock, MSG_ERROR, 0, err, -1);
	_exit(AF_EXIT_FAILURE);
}

/* Find NAME's value in envp, or NULL. */
static const char *env_value(char *const *envp, const char *name)
{
	size_t n = strlen(name);
	for (; envp && *envp; envp++)
		if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
			return *envp + n + 1;
	return NULL;
}

/* Whether a PATH search goes on to the next directory after a candidate
 * failed with errno e, as execvp's does; an EACCES is noted in *eacces
 * (reported if nothing is found). */
static bool path_search_goes_on(int e, bool *eacces)
{
	switch (e) {
	case EACCES:
		*eacces = true;
		return true;
	case ENOENT:
	case ENOTDIR:
	case ESTALE:
	case ENODEV:
	case ETIMEDOUT:
	case ELOOP:
	case ENAMETOOLONG:
		return true;
	default:
		return false;
	}
}

/* Try file where execvp would find it: as it is when it has a slash,
 * else in each directory of envp's PATH (not ours), with execvp's rules
 * for which failures go on to the next.  try() returns >= 0 or -errno,
 * and sets *stop when its result ends the search whatever it is.
 * Returns try()'s last result, or -ENOENT/-EACCES when none ended it. */
static int path_search(const char *file, char *const *envp,
		       int (*try)(const char *path, void *arg, bool *stop), void *arg)
{
	char buf[PATH_MAX];
	bool eacces = false, stop = false;

	if (!file || !*file)
		return -ENOENT;
	if (strchr(file, '/'))
		return try(file, arg, &stop);
	const char *path = env_value(envp, "PATH");
	if (!path)
		path = DEFAULT_PATH;
	for (const char *p = path;; p++) {
		const char *end = strchrnul(p, ':');
		int dlen = (int)(end - p);
		/* an empty PATH element means the current directory */
		int n = dlen ? snprintf(buf, sizeof(buf), "%.*s/%s", dlen, p, file)
			     : snprintf(buf, sizeof(buf), "%s", file);
		if (n > 0 && (size_t)n < sizeof(buf)) {
			int r = try(buf, arg, &stop);
			if (stop || r >= 0 || !path_search_goes_on(-r, &eacces))
				return r;
		}
		if (!*end)
			break;
		p = end;
	}
	return eacces ? -EACCES : -ENOENT;
}

struct exec_args {
	char *const *argv, *const *envp;
};

static int try_exec(const char *path, void *arg, bool *stop AF_UNUSED)
{
	const struct exec_args *a = arg;
	execve(path, a->argv, a->envp);
	return -errno;
}

/* execve argv[0], searched in the PATH of envp (not ours) when it has no
 * slash, with execvp's error rules.  Returns the errno to report. */
int exec_command(char *const *argv, char *const *envp)
{
	struct exec_args a = { argv, envp };
	return -path_search(argv[0], envp, try_exec, &a);
}

/* memfd_create's MFD_EXEC (Linux 6.3), missing from older headers */
#ifdef MFD_EXEC
#define MFD_EXEC_FLAG MFD_EXEC
#else
#define MFD_EXEC_FLAG 0x0010U
#endif

/* Open path for sealed execution: an fd to execveat(), like execve's
 * own checks (EACCES when not an executable regular file).  *as_is: it
 * cannot be read, so it is executed as it is.  Returns the fd or -errno. */
static int open_sealable(const char *path, bool *as_is)
{
	struct stat st;

	if (access(path, X_OK) < 0)
		return -errno;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	*as_is = fd < 0 && errno == EACCES;
	if (*as_is)
		fd = open(path, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int e = fstat(fd, &st) < 0 ? errno : !S_ISREG(st.st_mode) ? EACCES : 0;
	if (e) {
		close(fd);
		return -e;
	}
	return fd;
}

/* Copy the ELF binary in fd into a new execute-only memfd.  Returns it,
 * or -errno with *stage set (STAGE_EXEC: not ELF; STAGE_SEAL). */
static int seal_copy(int fd, const char *file, int *stage)
{
	char magic[4];
	struct stat st;

	*stage = STAGE_EXEC;
	/* a #! script would need its fd open across the exec, for its
	 * interpreter to read it by /dev/fd/N: refused */
	if (pread(fd, magic, sizeof(magic), 0) != (ssize_t)sizeof(magic) ||
	    memcmp(magic, "\177ELF", 4) != 0)
		return -ENOEXEC;
	*stage = STAGE_SEAL;
	if (fstat(fd, &st) < 0)
		return -errno;
	/* the name shows in /proc/PID/exe and comm; memfd_create takes
	 * 249 bytes at most */
	const char *base = strrchr(file, '/');
	char name[64];
	snprintf(name, sizeof(name), "%s", base ? base + 1 : file);
	/* MFD_EXEC (Linux 6.3) says so where vm.memfd_noexec would seal it
	 * non-executable; older kernels refuse the flag */
	autoclose int mfd = memfd_create(name, MFD_CLOEXEC | MFD_EXEC_FLAG);
	if (mfd < 0 && errno == EINVAL)
		mfd = memfd_create(name, MFD_CLOEXEC);
	if (mfd < 0)
		return -errno;
	for (off_t off = 0; off < st.st_size;) {
		ssize_t n = sendfile(mfd, fd, &off, (size_t)(st.st_size - off));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* it shrank under us */
	}
	if (fchmod(mfd, 0111) < 0)
		return -errno;
	return steal_fd(&mfd);
}

/* A sealed copy of path (seal_command()): a file found ends the search,
 * whether its copy is made or fails. */
static int try_seal(const char *path, void *arg, bool *stop)
{
	bool as_is = false;
	int fd = open_sealable(path, &as_is);
	if (fd < 0)
		return fd;
	*stop = true;
	if (as_is)
		return fd;
	autoclose int src = fd;
	return seal_copy(src, path, arg);
}

/* The fd sandbox_config's sealed command is executed from: argv[0]
 * searched as exec_command() does, copied by seal_copy() (or opened as
 * it is when unreadable).  Returns the fd, or -errno with *stage set. */
int seal_command(char *const *argv, char *const *envp, int *stage)
{
	*stage = STAGE_EXEC;
	return path_search(argv[0], envp, try_seal, stage);
}

/* Drop every capability for good: ambient, bounding, then the
 * effective/permitted/inheritable sets.  Returns 0 or -1 with errno. */
int drop_caps(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];

	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return -1;
	for (unsigned long cap = 0; cap < 64; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
			if (errno == EINVAL) /* past the last capability */
				break;
			return -1;
		}
	memset(data, 0, sizeof(data));
	return (int)syscall(SYS_capset, &hdr, data);
}

/* Make the slave of pty_master (allocated by PID 1 in the sandbox's
 * devpts) our controlling terminal, and those of fds 0-2 in the mask
 * fds (0: all) our stdin, stdout, stderr; we lead a new session.
 * TIOCGPTPEER opens the slave without a path lookup.  Returns 0 or -1
 * with errno. */
static int attach_pty(int pty_master, unsigned fds)
{
	int fd = ioctl(pty_master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
	if (fd < 0)
		return -1;
	if (ioctl(fd, TIOCSCTTY, 0) < 0)
		return -1;
	for (int i = 0; i < 3; i++)
		if ((!fds || (fds & (1U << i))) && dup2(fd, i) < 0)
			return -1;
	if (fd > 2)
		close(fd);
	close(pty_master); /* only agentfense keeps the master */
	return 0;
}

/* In the command's process: hand the listener of our waits to PID 1
 * through sock (see struct nproc_watch).  A filter above ours that has
 * a listener already (a container supervising its own) leaves PID 1 to
 * its samples.  Returns 0 or -1 with errno. */
static int give_reaps(int sock)
{
	int fd = sysfilter_watch_reaps();
	if (fd < 0)
		return errno == EBUSY || errno == ENOTSUP || errno == EINVAL ? 0 : -1;
	int r = send_msg(sock, MSG_REAPS, 0, NULL, fd);
	close(fd);
	if (r < 0) {
		errno = -r;
		return -1;
	}
	return 0;
}

/* In the command's process: restore default signal handling, drop all
 * privileges, leave the terminal's session (for the sandbox's own
 * terminal with cfg->pty), install the seccomp filter (last: it refuses
 * calls the steps before make), exec.  Failures go to errfd. */
AF_NORETURN void command_main(const struct sandbox_config *cfg, const struct sock_fprog *filter,
			      int pty_master, int errfd, bool watch_reaps)
{
	struct exec_fail ef = { 0 };
	struct sigaction sa = { .sa_handler = SIG_DFL };
	sigset_t none;
	int sealed = -1;

	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &sa, NULL); /* ignored dispositions survive execve */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	if (drop_caps() < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		ef.errnum = errno;
		ef.stage = STAGE_PRIVS;
	} else if (setsid() < 0) {
		ef.errnum = errno;
		ef.stage = STAGE_SETSID;
	} else if (pty_master >= 0 && attach_pty(pty_master, cfg->pty_fds) < 0) {
		ef.errnum = errno;
		ef.stage = STAGE_TTY;
	} else if (cfg->sealed && (sealed = seal_command(cfg->argv, cfg->envp, &ef.stage)) < 0) {
		/* before the rlimits (RLIMIT_FSIZE applies to the copy) and
		 * the filter (which may refuse memfd_create one day) */
		ef.errnum = -sealed;
	} else if (limits_apply_rlimits(cfg->limits) < 0) {
		ef.errnum = errno;
		ef.stage = STAGE_LIMITS;
	} else if (filter->len && sysfilter_install(filter) < 0) {
		ef.errnum = errno;
		ef.stage = STAGE_SECCOMP;
	} else if (filter->len && watch_reaps && give_reaps(errfd) < 0) {
		ef.errnum = errno;
		ef.stage = STAGE_SECCOMP;
	} else if (sealed >= 0) {
		/* close-on-exec: the memfd is gone once the program runs */
		syscall(SYS_execveat, sealed, "", cfg->argv, cfg->envp, AT_EMPTY_PATH);
		ef.errnum = errno;
	} else {
		ef.errnum = exec_command(cfg->argv, cfg->envp);
	}
	(void)!write(errfd, &ef, sizeof(ef));
	_exit(AF_EXIT_NOTFOUND);
}

/* The signals PID 1 handles: blocked from the start (blocked signals
 * are queued even for an init process, which ignores unhandled ones),
 * read from a signalfd once the command runs. */
static void pid1_sigset(sigset_t *set)
{
	sigemptyset(set);
	for (size_t i = 0; i < ARRAY_SIZE(forwarded); i++)
		sigaddset(set, forwarded[i]);
	sigaddset(set, SIGTSTP);
	sigaddset(set, SIGCONT);
	sigaddset(set, SIGCHLD);
}

/* chdir to the working directory.  A relative --workdir (workdir_beneath)
 * is resolved beneath /workspace, symbolic links included, so no link in
 * the project can take it elsewhere.  Returns 0 or -errno (-EXDEV: a
 * link led out). */
int enter_workdir(const struct sandbox_config *cfg)
{
	if (!cfg->workdir_beneath)
		return chdir(cfg->workdir) < 0 ? -errno : 0;
	const char *rel = cfg->workdir + strlen(cfg->workspace);
	rel += strspn(rel, "/");
	autoclose int ws = open(cfg->workspace, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (ws < 0)
		return -errno;
	struct open_how how = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS };
	autoclose int fd = (int)syscall(SYS_openat2, ws, *rel ? rel : ".", &how, sizeof(how));
	if (fd < 0)
		return -errno;
	return fchdir(fd) < 0 ? -errno : 0;
}

/* Fill *err for a set-up stage of the command that failed; false for a
 * failed exec (or file operation), which is the command's result. */
bool exec_fail_error(const struct exec_fail *ef, struct af_err *err)
{
	switch ((enum exec_stage)ef->stage) {
	case STAGE_PRIVS:
		af_err_set(err, ef->errnum, "cannot drop privileges");
		return true;
	case STAGE_SETSID:
		af_err_set(err, ef->errnum, "cannot start a new session for the command");
		return true;
	case STAGE_TTY:
		af_err_set(err, ef->errnum, "cannot give the command its terminal");
		return true;
	case STAGE_SECCOMP:
		af_err_set(err, ef->errnum, "cannot install the seccomp filter");
		af_err_hint(err, "'--seccomp off' runs without it (less isolation)");
		return true;
	case STAGE_LIMITS:
		af_err_set(err, ef->errnum, "cannot set the resource limits");
		return true;
	case STAGE_SEAL:
		/* said in the message itself: serve's clients see no hints */
		if (ef->errnum == EACCES)
			af_err_set(err, EACCES, "cannot make an execute-only copy of the program: "
					      "executable memfds are forbidden here (vm.memfd_noexec=2)");
		else
			af_err_set(err, ef->errnum, "cannot make an execute-only copy of the program");
		return true;
	case STAGE_EXEC:
	case STAGE_FILE:
		break;
	}
	return false;
}

static double now_sec(void);

/* How often PID 1 counts the sandbox's tasks under the RLIMIT_NPROC
 * fallback of --pids (see struct nproc_watch), in ms. */
#define NPROC_TICK_MS 150

/* The tasks in the sandbox (its PID namespace, our own /proc): processes,
 * their threads and unreaped zombies, all of which count against
 * RLIMIT_NPROC, we included; counted up to max at most.  -1 if /proc
 * cannot be read. */
static long count_tasks(uint64_t max)
{
	struct stat st;
	long n = 0;
	DIR *d = opendir("/proc");
	if (!d)
		return -1;
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		/* a task directory links once more per thread */
		char task[sizeof(e->d_name) + 8];
		snprintf(task, sizeof(task), "%s/task", e->d_name);
		if (fstatat(dirfd(d), task, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_nlink > 3)
			n += (long)st.st_nlink - 2;
		else
			n++;
		if ((uint64_t)n >= max)
			break; /* enough: a count costs at most the limit */
	}
	closedir(d);
	return n;
}

/* Under the RLIMIT_NPROC fallback of --pids the kernel refuses a fork
 * at the limit without counting the refusal anywhere.  So PID 1 counts
 * the sandbox's tasks itself, says once (MSG_NPROC) that they reached
 * the limit, and the end of the run reports it as a cgroup's refusal.
 *
 * A count must see the peak.  Once a fork was refused, the tasks stay
 * at the limit until one is released, and a process is released when
 * it is reaped: by its parent's wait, or by us (orphans), each counted
 * just before.  The command's wait4 and waitid calls come to us first
 * (a seccomp user notification; we count and let the call go on), and
 * so does our own SIGCHLD.  Waiting for us, a wait may fail with EINTR
 * when a signal comes, as any wait may; a fork must not (dash says
 * "Cannot fork"), which is why forks are not watched.  Released without
 * a reap, and seen only by the count every NPROC_TICK_MS: threads that
 * end, and children whose parent ignores SIGCHLD.  Without a listener
 * (--seccomp off, or one above ours), the ticks and our SIGCHLD only. */
struct nproc_watch {
	uint64_t max;   /* the limit; 0 once reached (or none) */
	int reaps;      /* the listener of the command's waits, or -1 */
	int last_pid;   /* /proc/sys/kernel/ns_last_pid, or -1 */
	long tasks;     /* the last count, */
	long counted_at; /* and the namespace's last pid then (-1: none) */
};

/* The last pid our PID namespace gave, -1 if unknown.  Pids are given
 * in increasing order until they wrap at pid_max. */
static long read_last_pid(int fd)
{
	char buf[24];
	ssize_t n = fd >= 0 ? pread(fd, buf, sizeof(buf) - 1, 0) : -1;
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return strtol(buf, NULL, 10);
}

/* Count the tasks; send MSG_NPROC once they reach the limit.  A count
 * costs a stat per process: skipped while the last count plus every
 * pid given since (each new task takes one) is still below the limit. */
static void count_nproc(struct nproc_watch *w, int sock)
{
	if (!w->max)
		return;
	long pid = read_last_pid(w->last_pid);
	if (pid >= 0 && w->counted_at >= 0 && pid >= w->counted_at &&
	    (uint64_t)(w->tasks + (pid - w->counted_at)) < w->max)
		return;
	long tasks = count_tasks(w->max);
	w->tasks = tasks;
	w->counted_at = tasks < 0 ? -1 : pid;
	if (tasks < 0 || (uint64_t)tasks < w->max)
		return;
	send_msg(sock, MSG_NPROC, 0, NULL, -1);
	w->max = 0;
}

/* Take one wait of the command from the listener, count, and let it go
 * on.  A wait whose process was killed meanwhile is gone (ENOENT):
 * nothing to answer. */
static void answer_reap(struct nproc_watch *w, int sock)
{
	struct seccomp_notif req;
	memset(&req, 0, sizeof(req)); /* the kernel wants it zeroed */
	if (ioctl(w->reaps, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0)
		return;
	count_nproc(w, sock);
	struct seccomp_notif_resp resp = { .id = req.id, .flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE };
	while (ioctl(w->reaps, SECCOMP_IOCTL_NOTIF_SEND, &resp) < 0 && errno == EINTR)
		;
}

/* In PID 1: wait for the command's execve through its close-on-exec
 * socket; a listener of its waits may come first (into w->reaps).
 * Returns true with *ef filled if it failed. */
static bool wait_exec(int sock, struct nproc_watch *w, struct exec_fail *ef)
{
	for (;;) {
		union {
			struct exec_fail ef;
			struct msg m;
		} u;
		int fd;
		ssize_t n = recv_fd(sock, &u, sizeof(u), &fd);
		if (fd >= 0) {
			if (w->reaps < 0 && n == (ssize_t)sizeof(u.m) && u.m.type == MSG_REAPS)
				w->reaps = fd;
			else
				close(fd);
			continue;
		}
		if (n != (ssize_t)sizeof(*ef))
			return false; /* end of file: it runs */
		*ef = u.ef;
		return true;
	}
}

/* PID 1 of the sandbox: start the command, then reap and forward
 * signals until it exits, and report its wait status.  pty_master (or
 * -1) is handed to the command. */
static AF_NORETURN void pid1_main(const struct sandbox_config *cfg,
				  const struct sock_fprog *filter, int pty_master, int sock)
{
	struct af_err err = { 0 };
	struct nproc_watch nproc = { .max = limits_nproc_fallback(cfg->limits), .reaps = -1,
				     .last_pid = -1, .counted_at = -1 };
	sigset_t set;
	int ep[2];

	pid1_sigset(&set);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0) {
		af_err_set(&err, errno, "cannot create a signalfd");
		child_fail(sock, &err);
	}
	int r = enter_workdir(cfg);
	if (r < 0) {
		af_err_set(&err, -r, "cannot change to working directory '%s'", cfg->workdir);
		if (r == -EXDEV)
			af_err_hint(&err, "a symbolic link on the way leads outside /workspace; give "
					  "an absolute path to work there");
		child_fail(sock, &err);
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ep) < 0) {
		af_err_set(&err, errno, "cannot create a socket pair");
		child_fail(sock, &err);
	}
	if (nproc.max)
		nproc.last_pid = open("/proc/sys/kernel/ns_last_pid", O_RDONLY | O_CLOEXEC);
	pid_t pid = sb_clone(0);
	if (pid < 0) {
		af_err_set(&err, errno, "cannot start the command");
		child_fail(sock, &err);
	}
	if (pid == 0) {
		close(ep[0]);
		command_main(cfg, filter, pty_master, ep[1], nproc.max != 0);
	}
	close(ep[1]);
	if (pty_master >= 0)
		close(pty_master); /* a hang-up must reach the command */
	struct exec_fail ef;
	ssize_t n;
	bool failed = wait_exec(ep[0], &nproc, &ef);
	close(ep[0]);
	if (failed) {
		if (exec_fail_error(&ef, &err))
			child_fail(sock, &err);
		send_msg(sock, MSG_EXEC_FAILED, ef.errnum, NULL, -1);
	}

	for (;;) {
		struct signalfd_siginfo si;
		if (nproc.reaps >= 0 || nproc.max) {
			/* a wait waits for its answer: give it before reading
			 * a signal */
			struct pollfd pfd[2] = { { .fd = sfd, .events = POLLIN },
						 { .fd = nproc.reaps, .events = POLLIN } };
			int ready = poll(pfd, 2, nproc.max ? NPROC_TICK_MS : -1);
			if (ready == 0)
				count_nproc(&nproc, sock);
			if (ready > 0 && (pfd[1].revents & POLLIN))
				answer_reap(&nproc, sock);
			if (ready <= 0 || !(pfd[0].revents & POLLIN))
				continue;
		}
		n = read(sfd, &si, sizeof(si));
		if (n != (ssize_t)sizeof(si)) {
			if (n < 0 && errno == EINTR)
				continue;
			_exit(AF_EXIT_FAILURE);
		}
		if (si.ssi_signo == SIGCHLD) {
			int st;
			/* count before our reaping lowers it */
			count_nproc(&nproc, sock);
			pid_t w;
			while ((w = waitpid(-1, &st, WNOHANG)) > 0)
				if (w == pid) {
					/* exiting kills whatever is left in the namespace */
					send_msg(sock, MSG_EXIT, st, NULL, -1);
					_exit(0);
				}
			continue;
		}
		/* Only signals from outside the namespace (pid 0 here): the
		 * command's own kill(1, ...) is not ours to pass on.  Before
		 * the command's setsid() its group does not exist yet. */
		int code = si.ssi_code;
		if (!((code == SI_USER || code == SI_QUEUE || code == SI_TKILL) && si.ssi_pid == 0))
			continue;
		/* Job control from the caller's terminal.  The command's
		 * group is orphaned (a session without a terminal, its
		 * parent, us, outside it), and the kernel discards SIGTSTP
		 * there: stop it with SIGSTOP, and continue it. */
		if (si.ssi_signo == SIGTSTP || si.ssi_signo == SIGCONT) {
			int sig = si.ssi_signo == SIGTSTP ? SIGSTOP : SIGCONT;
			if (kill(-pid, sig) < 0)
				kill(pid, sig);
			continue;
		}
		if (code == SI_QUEUE && si.ssi_int == FORWARD_TO_GROUP && kill(-pid, (int)si.ssi_signo) == 0)
			continue;
		kill(pid, (int)si.ssi_signo);
	}
}

/* Overwrite our command line and environment strings (the child's copy
 * only).  Everything the child still needs was copied elsewhere. */
static void blank_proc_area(const struct proc_area *a)
{
	static const char name[] = AF_PROG;
	if (a->arg_start && a->arg_end > a->arg_start + sizeof(name)) {
		memset((void *)a->arg_start, 0, a->arg_end - a->arg_start);
		memcpy((void *)a->arg_start, name, sizeof(name));
	}
	if (a->env_start && a->env_end > a->env_start)
		memset((void *)a->env_start, 0, a->env_end - a->env_start);
}

/* The seccomp filter C receives with EXEC (it cannot malloc). */
static struct sock_filter child_filter[BPF_MAXINSNS];

/* In C: the filter that follows an EXEC of len instructions, into
 * child_filter (len 0: none).  Returns 0 or -errno (-EPROTO: not one
 * packet of exactly len instructions). */
int recv_filter(int sock, unsigned len, struct sock_fprog *prog)
{
	prog->len = 0;
	prog->filter = child_filter;
	if (len == 0)
		return 0;
	if (len > BPF_MAXINSNS)
		return -EPROTO;
	ssize_t n;
	while ((n = recv(sock, child_filter, sizeof(child_filter), MSG_TRUNC)) < 0)
		if (errno != EINTR)
			return -errno;
	if ((size_t)n != len * sizeof(struct sock_filter))
		return -EPROTO;
	prog->len = (unsigned short)len;
	return 0;
}

/* The sandbox child: wait for the id maps, build the root, hand over
 * the FUSE fd, wait for the go and the seccomp filter, become PID 1. */

static AF_NORETURN void child_main(const struct sandbox_config *cfg, const struct proc_area *area,
				   int *mount_fds, int sock, int exe_fd,
				   uid_t uid, gid_t gid)
{
	struct af_err err = { 0 };
	struct msg m;
	sigset_t set;
	int fuse_fd, pty_master = -1;

	pid1_sigset(&set);
	sigprocmask(SIG_BLOCK, &set, NULL);
	/* Out of the terminal's foreground process group: the caller
	 * forwards the terminal's signals, so each reaches the command
	 * once, not once from the terminal and again through the caller. */
	setpgid(0, 0);
	/* die with the caller; the GO below tells us it did not die first */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	/* keep stdio and the socket (as fd 3), and in service mode our own
	 * executable (as fd 4), nothing else of the caller's */
	if (exe_fd >= 0 && (exe_fd = fcntl(exe_fd, F_DUPFD_CLOEXEC, 5)) < 0)
		_exit(AF_EXIT_FAILURE);
	if (sock != 3) {
		if (dup3(sock, 3, O_CLOEXEC) < 0)
			_exit(AF_EXIT_FAILURE);
		if (sock < 3)
			close(sock);
		sock = 3;
	}
	if (exe_fd >= 0) {
		if (dup3(exe_fd, 4, O_CLOEXEC) < 0)
			_exit(AF_EXIT_FAILURE);
		exe_fd = 4;
	}
	int keep = exe_fd >= 0 ? 5 : 4;
	if (close_range((unsigned)keep, ~0U, 0) < 0)
		for (int fd = keep; fd < 1024; fd++)
			close(fd);
	if (recv_msg(sock, &m, NULL) <= 0 || m.type != MSG_GO)
		_exit(AF_EXIT_FAILURE);
	/* the command (same uid, no capabilities) must not ptrace us or
	 * open our /proc files; cmdline stays readable, so blank it */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	blank_proc_area(area);

	const char *host = cfg->hostname ? cfg->hostname : DEFAULT_HOSTNAME;
	if (sethostname(host, strlen(host)) < 0) {
		af_err_set(&err, errno, "cannot set the hostname '%s'", host);
		child_fail(sock, &err);
	}
	if (!cfg->net_host && rootfs_loopback_up(&err) < 0)
		child_fail(sock, &err);
	struct rootfs_config rc = { .uid = uid,
				    .gid = gid,
				    .fuse_options = cfg->fuse_options,
				    .root_dir = cfg->root_dir,
				    .workspace = cfg->workspace,
				    .mounts = cfg->mounts,
				    .n_mounts = cfg->n_mounts,
				    .mount_fds = mount_fds };
	if (rootfs_build(&rc, &fuse_fd, &err) < 0)
		child_fail(sock, &err);
	if (cfg->pty) {
		/* in our own devpts instance: the host's is never involved,
		 * and the name the command sees exists in the sandbox */
		int unlock = 0;
		pty_master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (pty_master < 0 || ioctl(pty_master, TIOCSPTLCK, &unlock) < 0) {
			af_err_set(&err, errno, "cannot open a pseudo-terminal '/dev/ptmx'");
			child_fail(sock, &err);
		}
		if (send_msg(sock, MSG_PTY, 0, NULL, pty_master) < 0)
			_exit(AF_EXIT_FAILURE);
	}
	if (send_msg(sock, MSG_READY, 0, NULL, fuse_fd) < 0)
		_exit(AF_EXIT_FAILURE);
	close(fuse_fd); /* owned by the caller now */
	struct sock_fprog filter;
	if (recv_msg(sock, &m, NULL) <= 0 || m.type != MSG_EXEC)
		_exit(AF_EXIT_FAILURE); /* the caller is gone */
	if (cfg->service)
		service_start(sock, exe_fd, (unsigned)m.value);
	int r = recv_filter(sock, (unsigned)m.value, &filter);
	if (r < 0) {
		af_err_set(&err, -r, "cannot receive the seccomp filter");
		child_fail(sock, &err);
	}
	pid1_main(cfg, &filter, pty_master, sock);
}

/* --- the caller's side ------------------------------------------------------ */

/* Read a small integer sysctl; returns its value or -1. */
static long read_sysctl(const char *path)
{
	char buf[32];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read_full(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return strtol(buf, NULL, 10);
}

/* Explain why user namespaces may be unavailable, naming the sysctl
 * that blocks them. */
static void userns_hint(struct af_err *err)
{
	if (read_sysctl("/proc/sys/kernel/unprivileged_userns_clone") == 0)
		af_err_hint(err, "unprivileged user namespaces are disabled by "
				 "kernel.unprivileged_userns_clone=0\n"
				 "enable them with 'sysctl kernel.unprivileged_userns_clone=1'");
	else if (read_sysctl("/proc/sys/user/max_user_namespaces") == 0)
		af_err_hint(err, "user namespaces are disabled by user.max_user_namespaces=0\n"
				 "enable them with 'sysctl user.max_user_namespaces=15000'");
	else if (read_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == 1)
		af_err_hint(err, "AppArmor restricts unprivileged user namespaces "
				 "(kernel.apparmor_restrict_unprivileged_userns=1)\n"
				 "allow them with 'sysctl kernel.apparmor_restrict_unprivileged_userns=0' "
				 "or an AppArmor profile for agentfense");
	else
		af_err_hint(err, "if user namespaces are restricted here, check the sysctls "
				 "kernel.unprivileged_userns_clone, user.max_user_namespaces and "
				 "kernel.apparmor_restrict_unprivileged_userns");
}

/* Where our command line and environment strings live, from fields
 * 48-51 of /proc/self/stat; zeros if unknown. */
static void read_proc_area(struct proc_area *a)
{
	char buf[4096];
	memset(a, 0, sizeof(*a));
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read_full(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	char *p = strrchr(buf, ')'); /* the command name may hold anything */
	if (!p)
		return;
	unsigned long long v[4];
	int field = 2, got = 0;
	char *save = NULL;
	for (char *tok = strtok_r(p + 1, " \n", &save); tok && got < 4;
	     tok = strtok_r(NULL, " \n", &save)) {
		field++;
		if (field >= 48)
			v[got++] = strtoull(tok, NULL, 10);
	}
	if (got == 4 && v[0] < v[1] && v[2] <= v[3]) {
		a->arg_start = (uintptr_t)v[0];
		a->arg_end = (uintptr_t)v[1];
		a->env_start = (uintptr_t)v[2];
		a->env_end = (uintptr_t)v[3];
	}
}

static char **strv_dup(char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	char **r = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		r[i] = xstrdup(v[i]);
	return r;
}

static void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* Write text to /proc/PID/name.  Returns 0 or -errno with *err filled. */
static int write_proc(pid_t pid, const char *name, const char *text, struct af_err *err)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	int r = fd < 0 ? -errno : write_all(fd, text, strlen(text));
	if (fd >= 0)
		close(fd);
	if (r < 0) {
		af_err_set(err, -r, "cannot write '%s': %s", path, strerror(-r));
		userns_hint(err);
	}
	return r;
}

/* How long PID 1 may take to die once killed (or once it ended the
 * command) before its processes count as hanging on the view: a process
 * waiting for a request the view has read does not die even of SIGKILL
 * until the request ends. */
#define KILL_GRACE 2.0
/* How long the command may take to end after a terminating signal
 * before agentfense looks whether the view still answers. */
#define TERM_GRACE 5.0
/* In the timeout's grace: how long the view may go without answering
 * before the command counts as waiting on it, past SIGTERM's reach, and
 * the sandbox is killed without waiting for the rest of the grace. */
#define TIMEOUT_STUCK 1.0

/* Reap PID 1 if it ends within secs.  Returns true once it is reaped. */
static bool reap_within(struct sandbox *sb, double secs)
{
	double end = now_sec() + secs;
	while (!sb->reaped) {
		pid_t p = waitpid(sb->pid, &sb->status, WNOHANG);
		if (p == sb->pid || (p < 0 && errno != EINTR)) {
			if (p < 0)
				sb->status = 0;
			sb->reaped = true;
			break;
		}
		if (now_sec() >= end)
			return false;
		struct timespec ts = { .tv_nsec = 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return true;
}

/* PID 1 does not die: its processes wait for requests the view does
 * not answer, and only ending the connection ends those waits. */
static void cut_server(struct sandbox *sb)
{
	if (!sb->server.abort)
		return;
	(void)sb->server.abort(sb->server.arg);
	sb->server_cut = true;
}

static void reap(struct sandbox *sb)
{
	if (sb->reaped)
		return;
	while (waitpid(sb->pid, &sb->status, 0) < 0) {
		if (errno != EINTR) {
			sb->status = 0;
			break;
		}
	}
	sb->reaped = true;
}

/* An error from the child: its message gets our strerror appended. */
int child_error(const struct msg *m, struct af_err *err)
{
	int e = m->err.errnum ? m->err.errnum : EIO;
	af_err_set(err, e, "%s: %s", m->err.msg, strerror(e));
	if (m->err.exit_code == AF_EXIT_USAGE) /* e.g. an impossible mount point */
		err->exit_code = AF_EXIT_USAGE;
	if (m->err.hint[0])
		af_err_hint(err, "%s", m->err.hint);
	else if (e == EPERM || e == EACCES)
		userns_hint(err);
	return -e;
}

/* PID 1 is gone without a word: say how it ended. */
static int child_vanished(struct sandbox *sb, const char *when, struct af_err *err)
{
	reap(sb);
	if (WIFSIGNALED(sb->status))
		return af_err_set(err, EIO, "the sandbox died %s: killed by signal %d (%s)", when,
				  WTERMSIG(sb->status), strsignal(WTERMSIG(sb->status)));
	return af_err_set(err, EIO, "the sandbox died %s (exit status %d)", when,
			  WEXITSTATUS(sb->status));
}

/* Does an extra mount of cfg land in a system directory (/usr, /lib, ...)? */
static bool touches_system_dirs(const struct sandbox_config *cfg)
{
	for (size_t i = 0; i < cfg->n_mounts; i++)
		for (const char *const *p = rootfs_system_dirs; *p; p++) {
			const char *d = cfg->mounts[i].dst + 1;
			size_t n = strlen(*p);
			if (strncmp(d, *p, n) == 0 && (d[n] == '\0' || d[n] == '/'))
				return true;
		}
	return false;
}

int sandbox_begin(const struct sandbox_config *cfg, struct sandbox **out, struct af_err *err)
{
	uid_t uid = getuid();
	gid_t gid = getgid();
	char map[64];
	int sv[2], r;

	*out = NULL;
	/* The child must not read our argv/environ memory (it blanks it):
	 * give it copies, allocated now since it cannot malloc. */
	struct sandbox *sb = xcalloc(1, sizeof(*sb));
	sb->sock = -1;
	sb->pty = -1;
	/* PID 1 of a service sandbox executes this program anew, so that
	 * it and every process it starts are small copies of a fresh
	 * process rather than of this one, however big (service.c).  Only
	 * where the sandbox's system directories are the host's: else the
	 * program's libraries could be an image's, or a bind's, loaded into
	 * a process that keeps capabilities.  Nor when this program found
	 * its libraries through the environment: the sandbox may not show
	 * them, and PID 1 would die in the dynamic loader. */
	bool reexec = cfg->service && !cfg->root_dir && !touches_system_dirs(cfg) &&
		      !getenv("LD_LIBRARY_PATH") && !getenv("LD_PRELOAD");
	sb->exe_fd = reexec ? open("/proc/self/exe", O_RDONLY | O_CLOEXEC) : -1;
	sb->reaped = true; /* nothing to reap yet */
	sb->cfg.argv = strv_dup(cfg->argv);
	sb->cfg.envp = strv_dup(cfg->envp);
	sb->cfg.workspace = xstrdup(cfg->workspace ? cfg->workspace : "/workspace");
	sb->cfg.workdir = xstrdup(cfg->workdir ? cfg->workdir : sb->cfg.workspace);
	sb->cfg.workdir_beneath = cfg->workdir && cfg->workdir_beneath;
	sb->cfg.hostname = xstrdup(cfg->hostname ? cfg->hostname : DEFAULT_HOSTNAME);
	sb->cfg.fuse_options = cfg->fuse_options ? xstrdup(cfg->fuse_options) : NULL;
	sb->cfg.net_host = cfg->net_host;
	sb->cfg.seccomp_off = cfg->seccomp_off;
	sb->cfg.pty = cfg->pty;
	sb->cfg.pty_fds = cfg->pty_fds;
	sb->cfg.root_dir = cfg->root_dir ? xstrdup(cfg->root_dir) : NULL;
	mounts_copy(&sb->mounts, cfg->mounts, cfg->n_mounts);
	sb->cfg.mounts = sb->mounts.v;
	sb->cfg.n_mounts = sb->mounts.n;
	sb->mount_fds = xcalloc(sb->mounts.n + 1, sizeof(int));
	sb->cfg.limits = cfg->limits;
	sb->cfg.service = cfg->service;
	read_proc_area(&sb->area);

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		r = af_err_set(err, errno, "cannot create a socket pair: %s", strerror(errno));
		sandbox_free(sb);
		return r;
	}

	uint64_t flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS;
	if (!cfg->net_host)
		flags |= CLONE_NEWNET;
	pid_t pid = sb_clone(flags);
	if (pid < 0) {
		int e = errno;
		close(sv[0]);
		close(sv[1]);
		af_err_set(err, e, "cannot create the sandbox's namespaces: %s", strerror(e));
		userns_hint(err);
		sandbox_free(sb);
		return -e;
	}
	if (pid == 0) {
		close(sv[0]);
		child_main(&sb->cfg, &sb->area, sb->mount_fds, sv[1], sb->exe_fd, uid, gid);
	}
	close(sv[1]);
	if (sb->exe_fd >= 0)
		close(steal_fd(&sb->exe_fd)); /* the child's now */
	sb->pid = pid;
	sb->sock = sv[0];
	sb->reaped = false;

	snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)uid, (unsigned)uid);
	if ((r = write_proc(pid, "setgroups", "deny", err)) < 0 ||
	    (r = write_proc(pid, "uid_map", map, err)) < 0)
		goto fail;
	snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)gid, (unsigned)gid);
	if ((r = write_proc(pid, "gid_map", map, err)) < 0)
		goto fail;
	/* into the limits' cgroups before it does anything: all it and
	 * the command start is charged there */
	if ((r = limits_attach(cfg->limits, pid, err)) < 0)
		goto fail;
	if ((r = send_msg(sb->sock, MSG_GO, 0, NULL, -1)) < 0) {
		af_err_set(err, -r, "cannot start the sandbox: %s", strerror(-r));
		goto fail;
	}
	/* while the child builds the root: compiling the filter costs a
	 * few milliseconds the first time in a process (libseccomp probes
	 * the kernel), which would otherwise delay every start-up */
	if (!cfg->seccomp_off && (r = sysfilter_build(&sb->filter, err)) < 0)
		goto fail;
	*out = sb;
	return 0;
fail:
	sandbox_free(sb);
	return r;
}

int sandbox_ready(struct sandbox *sb, int *fuse_fd, struct af_err *err)
{
	struct msg m;
	int fd, r;

	*fuse_fd = -1;
	r = recv_msg(sb->sock, &m, &fd);
	if (r > 0 && m.type == MSG_PTY && fd >= 0 && sb->cfg.pty && sb->pty < 0) {
		sb->pty = fd; /* owned by sb now */
		r = recv_msg(sb->sock, &m, &fd);
	}
	if (r > 0 && m.type == MSG_READY && fd >= 0 && (!sb->cfg.pty || sb->pty >= 0)) {
		*fuse_fd = fd;
		return 0;
	}
	if (fd >= 0)
		close(fd);
	if (r > 0 && m.type == MSG_ERROR)
		r = child_error(&m, err);
	else if (r == 0)
		r = child_vanished(sb, "while setting up", err);
	else
		r = af_err_set(err, r < 0 ? -r : EPROTO, "unexpected message from the sandbox");
	sandbox_kill(sb);
	return r;
}

int sandbox_start(const struct sandbox_config *cfg, struct sandbox **out, int *fuse_fd,
		  struct af_err *err)
{
	*fuse_fd = -1;
	int r = sandbox_begin(cfg, out, err);
	if (r == 0 && (r = sandbox_ready(*out, fuse_fd, err)) < 0) {
		sandbox_free(*out);
		*out = NULL;
	}
	return r;
}

int sandbox_pty(struct sandbox *sb)
{
	return steal_fd(&sb->pty);
}

int sandbox_exec(struct sandbox *sb, struct af_err *err)
{
	int r = send_msg(sb->sock, MSG_EXEC, sb->filter.len, NULL, -1);
	if (r == 0 && sb->filter.len) {
		size_t n = sb->filter.len * sizeof(struct sock_filter);
		while (send(sb->sock, sb->filter.filter, n, MSG_NOSIGNAL) < 0)
			if (errno != EINTR) {
				r = -errno;
				break;
			}
	}
	if (r == 0 && sb->cfg.service)
		r = service_prepare(sb->sock, sb->cfg.limits);
	if (r < 0)
		return af_err_set(err, -r, "cannot start the command: %s", strerror(-r));
	sb->exec_sent = true;
	return 0;
}

int sandbox_spawn(struct sandbox *sb, const struct sproc_spec *sp, struct sandbox_proc **out,
		  struct af_err *err)
{
	*out = NULL;
	if (!sb->cfg.service || !sb->exec_sent)
		return af_err_set(err, EINVAL, "cannot start a process: %s",
				  sb->cfg.service ? "the sandbox has not been started"
						  : "not a service sandbox");
	if (sb->reaped)
		return af_err_set(err, ESRCH, "cannot start a process: the sandbox is not running");
	return service_spawn(sb->sock, sp, out, err);
}

static double now_sec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Forward what the caller was sent (nothing inside the sandbox can
 * signal it): kill(2)'s to the command, as before it had a session of
 * its own; the terminal's (SI_KERNEL: Ctrl-C, hang-up) to the command's
 * whole process group, as the terminal would if it could still reach
 * it. */
void sandbox_forward_signal(struct sandbox *sb, int sig, int si_code)
{
	if (si_code == SI_KERNEL && !sb->reaped) {
		union sigval v = { .sival_int = FORWARD_TO_GROUP };
		sigqueue(sb->pid, sig, v);
	} else {
		sandbox_signal(sb, sig);
	}
}

/* Pass on the signals waiting in sfd.  Returns the last of them that
 * asks to end (SIGINT, SIGTERM, SIGHUP), or 0. */
static int forward_signals(struct sandbox *sb, int sfd)
{
	struct signalfd_siginfo si;
	int term = 0;
	while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		int sig = (int)si.ssi_signo;
		if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP)
			term = sig;
		sandbox_forward_signal(sb, sig, si.ssi_code);
		/* Ctrl-Z: the command's whole group is stopped (by PID 1);
		 * now stop ourselves, as the shell expects of its job.  Its
		 * fg or bg continues us, and the SIGCONT that comes with it
		 * is passed on the same way. */
		if (si.ssi_signo == SIGTSTP)
			raise(SIGSTOP);
	}
	return term;
}

/* Once PID 1 is reaped (the PID namespace, and so the cgroups, are
 * empty): what the limits saw, and how the command ended.  An OOM kill
 * is the command's end only if the command died of it; a refused fork
 * only if the command then failed. */
static void set_end(const struct sandbox *sb, struct sandbox_result *res)
{
	limits_usage(sb->cfg.limits, &res->usage);
	/* the RLIMIT_NPROC fallback counts no refusal: a sample at the
	 * limit stands for one (no fork could succeed then) */
	if (sb->nproc_hit && !res->usage.pids_refused)
		res->usage.pids_refused = 1;
	if (res->timed_out)
		res->end = SANDBOX_END_TIMEOUT;
	else if (res->exec_errno)
		res->end = SANDBOX_END_EXEC_FAILED;
	else if (res->term_signal == SIGKILL && res->usage.oom_kills)
		res->end = SANDBOX_END_OOM;
	else if (res->exit_code != 0 && res->usage.pids_refused)
		res->end = SANDBOX_END_PIDS;
	else if (res->term_signal)
		res->end = SANDBOX_END_SIGNALED;
	else
		res->end = SANDBOX_END_EXITED;
}

void sandbox_set_kill_after(struct sandbox *sb, double secs)
{
	sb->kill_after = secs > 0 ? secs : 0;
}

double sandbox_kill_after(const struct sandbox *sb)
{
	return sb->kill_after;
}

/* Whether the view has been serving a request without answering any
 * for secs: the command may be waiting on it. */
static bool server_stuck(const struct sandbox *sb, double secs)
{
	return sb->server.stuck && sb->server.stuck(sb->server.arg, secs);
}

bool sandbox_time_term(struct sandbox *sb)
{
	if (sb->reaped || sb->timing_out || sb->kill_after <= 0 ||
	    server_stuck(sb, TIMEOUT_STUCK))
		return false;
	sb->timing_out = true;
	/* as the terminal's signals: PID 1 sends it to the whole group */
	union sigval v = { .sival_int = FORWARD_TO_GROUP };
	sigqueue(sb->pid, SIGTERM, v);
	return true;
}

void sandbox_time_up(struct sandbox *sb, struct sandbox_result *res)
{
	sandbox_kill(sb);
	res->timed_out = true;
	res->exit_code = AF_EXIT_TIMEOUT;
	set_end(sb, res);
}

/* Take one message from the control socket (readable).  Returns 1 once
 * PID 1 closed its end (the command ended), 0, or -errno with *err
 * filled, the sandbox then killed. */
static int take_msg(struct sandbox *sb, struct af_err *err)
{
	struct msg m;
	int r = recv_msg(sb->sock, &m, NULL);
	if (r == 0)
		return 1;
	if (r < 0) {
		r = af_err_set(err, -r, "cannot read from the sandbox: %s", strerror(-r));
		sandbox_kill(sb);
		return r;
	}
	switch (m.type) {
	case MSG_EXIT:
		sb->have_status = true;
		sb->exit_status = m.value;
		break;
	case MSG_EXEC_FAILED:
		sb->exec_errno = m.value;
		break;
	case MSG_NPROC:
		sb->nproc_hit = true;
		break;
	case MSG_ERROR:
		child_error(&m, &sb->failure);
		sb->failed = true;
		break;
	default:
		break;
	}
	return 0;
}

/* PID 1 closed the control socket: reap it (waiting at most KILL_GRACE,
 * then cutting the server) and say how the command ended.  Returns 0
 * with *res filled, or -errno with *err filled. */
static int end_wait(struct sandbox *sb, struct sandbox_result *res, struct af_err *err)
{
	int status;

	/* PID 1 is ending; whatever still hangs in it on the view ends
	 * with the view's connection */
	if (!reap_within(sb, KILL_GRACE)) {
		kill(sb->pid, SIGKILL);
		cut_server(sb);
	}
	reap(sb);
	if (sb->failed) {
		*err = sb->failure;
		return -err->errnum;
	}
	status = sb->exit_status;
	if (!sb->have_status) {
		/* PID 1 was killed from outside (or the OOM killer) */
		status = sb->status;
		if (!WIFSIGNALED(status))
			return child_vanished(sb, "while the command ran", err);
	}
	res->exec_errno = sb->exec_errno;
	if (res->exec_errno) {
		res->exit_code = res->exec_errno == ENOENT ? AF_EXIT_NOTFOUND : AF_EXIT_NOEXEC;
	} else if (WIFSIGNALED(status)) {
		res->term_signal = WTERMSIG(status);
		res->exit_code = 128 + res->term_signal;
	} else {
		res->exit_code = WEXITSTATUS(status);
	}
	/* ended in the timeout's grace, however it ended: as timeout(1) */
	if (sb->timing_out) {
		res->timed_out = true;
		res->exit_code = AF_EXIT_TIMEOUT;
	}
	set_end(sb, res);
	return 0;
}

int sandbox_step(struct sandbox *sb, struct sandbox_result *res, struct af_err *err)
{
	for (;;) {
		struct pollfd pfd = { .fd = sb->sock, .events = POLLIN };
		int n = poll(&pfd, 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return af_err_set(err, errno, "cannot wait for the sandbox: %s",
					  strerror(errno));
		if (n == 0)
			return 0;
		int r = take_msg(sb, err);
		if (r < 0)
			return r;
		if (r == 1) {
			memset(res, 0, sizeof(*res));
			r = end_wait(sb, res, err);
			return r < 0 ? r : 1;
		}
	}
}

int sandbox_wait(struct sandbox *sb, double timeout, struct sandbox_result *res,
		 struct af_err *err)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP, SIGCONT };
	sigset_t set;

	memset(res, 0, sizeof(*res));
	sigemptyset(&set);
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		sigaddset(&set, sigs[i]);
	autoclose int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		return af_err_set(err, errno, "cannot create a signalfd: %s", strerror(errno));

	double deadline = timeout > 0 ? now_sec() + timeout : 0;
	/* after a terminating signal: when to look whether the view hangs */
	double term_check = 0;
	int term = 0;
	for (;;) {
		struct pollfd pfd[2] = { { .fd = sb->sock, .events = POLLIN },
					 { .fd = sfd, .events = POLLIN } };
		int ms = -1;
		double next = deadline > 0 && (term_check == 0 || deadline < term_check) ? deadline
											: term_check;
		if (next > 0) {
			double left = next - now_sec();
			ms = left <= 0 ? 0 : (int)(left * 1000) + 1;
		}
		int n = poll(pfd, 2, ms);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return af_err_set(err, errno, "cannot wait for the sandbox: %s", strerror(errno));
		}
		if (n == 0 && deadline > 0 && now_sec() >= deadline) {
			/* SIGTERM first, SIGKILL when the grace is over */
			if (sandbox_time_term(sb)) {
				deadline = now_sec() + sb->kill_after;
				if (sb->server.stuck)
					term_check = now_sec() + TIMEOUT_STUCK;
				continue;
			}
			res->exec_errno = sb->exec_errno;
			sandbox_time_up(sb, res);
			return 0;
		}
		/* The command got the signal and has not ended: if the view
		 * has been serving a request without answering any all the
		 * while, the command may be waiting for it and unable to
		 * end, so end the sandbox as the timeout does. */
		if (term_check > 0 && now_sec() >= term_check) {
			if (sb->timing_out && server_stuck(sb, TIMEOUT_STUCK)) {
				res->exec_errno = sb->exec_errno;
				sandbox_time_up(sb, res);
				return 0;
			}
			if (!sb->timing_out && sb->server.stuck(sb->server.arg, TERM_GRACE)) {
				sandbox_kill(sb);
				res->exec_errno = sb->exec_errno;
				res->term_signal = term;
				res->exit_code = 128 + term;
				set_end(sb, res);
				return 0;
			}
			term_check = now_sec() + 1;
		}
		if (pfd[1].revents & POLLIN) {
			int sig = forward_signals(sb, sfd);
			if (sig && sb->server.stuck && !term) {
				term = sig;
				term_check = now_sec() + TERM_GRACE;
			}
		}
		if (!(pfd[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		int r = take_msg(sb, err);
		if (r < 0)
			return r;
		if (r == 1)
			break;
	}
	return end_wait(sb, res, err);
}

pid_t sandbox_pid(const struct sandbox *sb)
{
	return sb->pid;
}

int sandbox_fd(const struct sandbox *sb)
{
	return sb->sock;
}

int sandbox_signal(struct sandbox *sb, int sig)
{
	if (sb->reaped)
		return -ESRCH;
	return kill(sb->pid, sig) < 0 ? -errno : 0;
}

void sandbox_kill(struct sandbox *sb)
{
	if (!sb || sb->reaped)
		return;
	/* PID 1 dying takes the whole PID namespace with it */
	kill(sb->pid, SIGKILL);
	if (!reap_within(sb, KILL_GRACE))
		cut_server(sb);
	reap(sb);
}

void sandbox_set_server(struct sandbox *sb, const struct sandbox_server *srv)
{
	sb->server = *srv;
}

bool sandbox_server_cut(const struct sandbox *sb)
{
	return sb->server_cut;
}

void sandbox_free(struct sandbox *sb)
{
	if (!sb)
		return;
	sandbox_kill(sb);
	if (sb->sock >= 0)
		close(sb->sock);
	if (sb->pty >= 0)
		close(sb->pty);
	if (sb->exe_fd >= 0)
		close(sb->exe_fd);
	strv_free((char **)sb->cfg.argv);
	strv_free((char **)sb->cfg.envp);
	free((char *)sb->cfg.workdir);
	free((char *)sb->cfg.workspace);
	free((char *)sb->cfg.hostname);
	free((char *)sb->cfg.fuse_options);
	free((char *)sb->cfg.root_dir);
	mounts_free(&sb->mounts);
	free(sb->mount_fds);
	sysfilter_free(&sb->filter);
	free(sb);
}

bool sandbox_shows_path(const char *real_path, char *out, size_t len)
{
	char dir[PATH_MAX];

	for (const char *const *p = rootfs_system_dirs; *p; p++) {
		snprintf(dir, sizeof(dir), "/%s", *p);
		autofree char *real = realpath(dir, NULL);
		if (!real)
			continue;
		size_t n = strlen(real);
		if (strncmp(real_path, real, n) == 0 && (real_path[n] == '\0' || real_path[n] == '/')) {
			snprintf(out, len, "%s", real);
			return true;
		}
	}
	return false;
}

int sandbox_check_project(const char *real_path, struct af_err *err)
{
	char dir[PATH_MAX];

	if (sandbox_shows_path(real_path, dir, sizeof(dir)))
		return af_err_usage(err, EINVAL,
				    "cannot use '%s' as project: it is inside '%s', which every "
				    "sandbox shows read-only",
				    real_path, dir);
	return 0;
}
