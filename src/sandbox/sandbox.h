/* sandbox.h - an unprivileged namespace sandbox around one command.
 *
 * sandbox_start() clones a child in new user, mount, PID, IPC, UTS and
 * (unless net_host) network namespaces, with the caller's uid/gid mapped
 * to themselves.  The child builds a minimal read-only root (system
 * directories bound read-only, fresh /proc, minimal /dev, private /tmp,
 * the extra mounts),
 * opens /dev/fuse inside its user namespace, mounts it at /workspace and
 * passes the fd back: the caller serves the view on it from outside the
 * sandbox's PID namespace.  sandbox_exec() then lets the command run,
 * with all capabilities dropped, no_new_privs set, the seccomp filter
 * of sysfilter.h installed, in a session of its own (setsid: it has no
 * controlling terminal, so it cannot push keystrokes into the one that
 * started it; stdin, stdout and stderr stay whatever they were, unless
 * cfg->pty gives those of cfg->pty_fds a terminal of the sandbox's
 * own); the child stays as
 * PID 1 of the namespace, reaping and forwarding signals.  If the calling
 * process dies, even by SIGKILL, the whole sandbox dies with it.
 *
 * The child is cloned from a process that may run other threads (FUSE
 * servers), so everything it does before exec is system calls on
 * memory prepared by the caller: no malloc, no locks.
 *
 * The sandbox dies with the THREAD that called sandbox_start()
 * (PR_SET_PDEATHSIG follows the creating thread): call it from a thread
 * that outlives the sandbox.
 *
 * Not thread-safe per sandbox; any number of sandboxes may exist. */
#ifndef AF_SANDBOX_H
#define AF_SANDBOX_H

#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>

#include "sandbox/mounts.h"
#include "sandbox/reslimits.h"
#include "common/util.h"

struct sandbox_config {
	char *const *argv;  /* command and arguments; argv[0] looked up in PATH */
	char *const *envp;  /* the command's whole environment (PATH from here) */
	const char *workdir; /* absolute path inside the sandbox */
	bool workdir_beneath; /* workdir is /workspace/REL: resolve REL beneath
			       * /workspace, no symbolic link leading out */
	bool net_host;      /* share the host network namespace */
	const char *hostname; /* NULL: "agentfense" */
	const char *fuse_options; /* extra /workspace mount options, or NULL */
	bool seccomp_off;   /* no seccomp filter (--seccomp off; see sysfilter.h) */
	bool pty;           /* give the command a pseudo-terminal (see sandbox_pty) */
	/* With pty: which of fds 0-2 (bit n for fd n) become its slave;
	 * the others stay as they were.  0: all three. */
	unsigned pty_fds;
	/* Another root filesystem, a canonical host directory (--rootfs,
	 * --image): its top-level entries are shown read-only instead of
	 * the host's system directories; NULL for the host's. */
	const char *root_dir;
	/* Extra mounts (--bind, --ro-bind, --tmpfs), checked by the caller
	 * (mounts_add, mounts_check); applied parents first. */
	const struct mount_spec *mounts;
	size_t n_mounts;
	/* resource limits, or NULL; borrowed: must outlive the sandbox */
	const struct limits *limits;
	/* A service sandbox: no command (argv NULL); after sandbox_exec()
	 * PID 1 waits for sandbox_spawn() requests until the sandbox is
	 * killed (see "Service mode" below). */
	bool service;
};

struct sandbox;

/* How the command ended; one value, for a caller that reports it. */
enum sandbox_end {
	SANDBOX_END_EXITED,      /* exited by itself: exit_code is its status */
	SANDBOX_END_SIGNALED,    /* died of term_signal */
	SANDBOX_END_TIMEOUT,     /* killed by the timeout, with everything in the sandbox */
	SANDBOX_END_OOM,         /* killed (SIGKILL) by the memory limit's OOM killer */
	SANDBOX_END_PIDS,        /* failed (non-zero, or a signal) after the pids
				  * limit refused a fork */
	SANDBOX_END_EXEC_FAILED, /* could not be executed: exec_errno */
};

struct sandbox_result {
	int exit_code;   /* what `run` should exit with (see agentfense(1)) */
	enum sandbox_end end;
	bool timed_out;  /* killed by the timeout */
	int term_signal; /* the command died of this signal, else 0 */
	int exec_errno;  /* the command could not be executed: errno, else 0 */
	struct limits_usage usage; /* what the limits did (zeros without) */
};

/* Start the sandbox: sandbox_begin() clones the child and lets it build
 * its root, which it does while the caller prepares the view (the two
 * run side by side on different CPUs); sandbox_ready() then waits for
 * the FUSE fd (ownership passes to the caller).  sandbox_start() is
 * both.  Each returns 0, or -errno with *err filled (the child's own
 * set-up error arrives verbatim, with a hint when the cause is known,
 * e.g. user namespaces disabled).  sandbox_begin() and sandbox_start()
 * leave nothing behind on failure; after a failed sandbox_ready() the
 * sandbox is dead, still to be sandbox_free()d. */
int sandbox_begin(const struct sandbox_config *cfg, struct sandbox **out, struct af_err *err);
int sandbox_ready(struct sandbox *sb, int *fuse_fd, struct af_err *err);
int sandbox_start(const struct sandbox_config *cfg, struct sandbox **out, int *fuse_fd,
		  struct af_err *err);

/* With cfg->pty: the master side of the command's pseudo-terminal,
 * allocated in the sandbox's own devpts instance; its slave is the
 * command's controlling terminal and its stdin, stdout and stderr (those
 * of cfg->pty_fds), the command
 * leading the session (job control works).  Ownership passes to the
 * caller: closing it hangs the terminal up.  Returns the fd once, then
 * -1 (and always -1 without cfg->pty). */
int sandbox_pty(struct sandbox *sb);

/* Let the command start (the view must be serving the FUSE fd by now).
 * Returns 0 or -errno. */
int sandbox_exec(struct sandbox *sb, struct af_err *err);

/* Wait for the command: for a process with one sandbox (the CLI), since
 * it reads the process's signals through a signalfd of its own and stops
 * the process on SIGTSTP; an event loop holding many uses sandbox_step().
 * SIGINT/SIGTERM/SIGHUP/SIGQUIT sent to this
 * process are forwarded: with kill(2), to the command; by the terminal
 * (the command, in its own session, is out of its reach), to the
 * command's whole process group.  SIGTSTP (Ctrl-Z) stops the command's
 * whole group with SIGSTOP, then this process; SIGCONT continues the
 * group.  The caller must block all six in every thread beforehand, or
 * they keep their default action.  timeout > 0
 * kills the whole sandbox after that many seconds (see also
 * sandbox_set_server() for a command that hangs on the view).  Returns 0 with *res
 * filled, or -errno with *err filled (e.g. the working directory does
 * not exist; exit code 125). */
int sandbox_wait(struct sandbox *sb, double timeout, struct sandbox_result *res,
		 struct af_err *err);

/* sandbox_wait() for an event loop: take what the control socket
 * (sandbox_fd()) holds without blocking.  Signals are the caller's to
 * pass on (sandbox_forward_signal()), timeouts too (sandbox_time_up()).
 * Returns 1 when the command ended, with *res filled, after reaping PID
 * 1 (which may take up to 2 s if processes hang on the view: it is then
 * cut off); 0 while it runs; or -errno with *err filled. */
int sandbox_step(struct sandbox *sb, struct sandbox_result *res, struct af_err *err);

/* The caller's own timeout fired (an event loop waiting without
 * sandbox_wait()): kill the whole sandbox and fill *res as
 * sandbox_wait() does for its timeout. */
void sandbox_time_up(struct sandbox *sb, struct sandbox_result *res);

/* Building blocks for event loops holding many sandboxes (serve): the
 * sandbox's PID 1, and its control socket, readable when sandbox_wait()
 * would make progress. */
pid_t sandbox_pid(const struct sandbox *sb);
int sandbox_fd(const struct sandbox *sb);
/* Send sig to the command (through PID 1).  Returns 0 or -errno. */
int sandbox_signal(struct sandbox *sb, int sig);
/* Pass on a signal this process got, as sandbox_wait() does: from the
 * terminal (si_code SI_KERNEL) to the command's process group, else to
 * the command. */
void sandbox_forward_signal(struct sandbox *sb, int sig, int si_code);

/* What serves the sandbox's FUSE mount (the view), which its processes
 * may hang on. */
struct sandbox_server {
	bool (*stuck)(void *arg, double secs); /* as view_stuck() */
	int (*abort)(void *arg);  /* as view_abort(): 0 or -errno */
	void *arg;
};
/* Tell the sandbox what serves its mount.  Then a sandbox whose PID 1
 * does not die within a grace of SIGKILL (its processes wait for
 * requests in vain) gets its server's connection cut, and a command
 * that has not ended a grace after SIGINT, SIGTERM or SIGHUP while the
 * server answered nothing is killed like that (exit 128+N). */
void sandbox_set_server(struct sandbox *sb, const struct sandbox_server *srv);
/* Did ending the sandbox take cutting its server's connection? */
bool sandbox_server_cut(const struct sandbox *sb);

/* Kill everything in the sandbox now (SIGKILL to its PID 1) and reap. */
void sandbox_kill(struct sandbox *sb);
void sandbox_free(struct sandbox *sb);

/* Service mode.  PID 1 of a service sandbox keeps its capabilities in
 * the sandbox's user namespace (it creates a PID namespace per process)
 * and starts one process per sandbox_spawn() request, in a PID
 * namespace of its own under an "exec init" that forwards signals and
 * reports the end: when the process ends, or is killed, its whole tree
 * ends with it (background jobs, setsid'd and double-forked ones
 * included); the sandbox lives on.  The process itself runs exactly as
 * run's command: capabilities dropped, no_new_privs, the sandbox's
 * seccomp filter and rlimits, a session of its own.  PID 1 and the exec
 * inits are not dumpable, so nothing in the sandbox can ptrace them or
 * open their /proc files, and the control socket is reachable from
 * this process only.  PID 1 executes this program anew when the sandbox
 * starts (argv[1] "--agentfense-service-init"; the library catches it
 * before main()), so it stays small however big this process is,
 * unless the sandbox has another root filesystem or a mount in a system
 * directory, or LD_LIBRARY_PATH or LD_PRELOAD is set here. */
struct sandbox_proc;

enum sproc_op { SPROC_EXEC = 0, SPROC_READ, SPROC_WRITE, SPROC_LIST, SPROC_STAT };

struct sproc_spec {
	enum sproc_op op;
	char *const *argv;       /* SPROC_EXEC: argv[0] looked up in envp's PATH */
	char *const *envp;       /* SPROC_EXEC: the whole environment */
	const char *workdir;     /* absolute in the sandbox; NULL: /workspace */
	bool workdir_beneath;    /* as sandbox_config */
	const char *path;        /* READ/WRITE/LIST/STAT: absolute path in the sandbox */
	bool recursive;          /* LIST */
	unsigned mode;           /* WRITE: mode of a new file (0644 when 0) */
	/* The process's stdin, stdout, stderr (borrowed: sent across, the
	 * caller closes its own); -1: /dev/null.  READ writes the file's
	 * bytes to fds[1]; WRITE reads the new content from fds[0] to EOF
	 * (O_TRUNC|O_CREAT); LIST/STAT write records to fds[1] (below). */
	int fds[3];
};

/* Most bytes of argv + envp (and the paths) one request may carry. */
#define SPROC_MAX_ARGS (256u << 10)

/* Start a process in a service sandbox.  Non-blocking apart from one
 * sendmsg.  Returns 0 with *out, or -errno with *err filled: -E2BIG
 * (argv+envp over SPROC_MAX_ARGS bytes), -EINVAL (not a service
 * sandbox, or not started by sandbox_exec()), -ESRCH (the sandbox is
 * gone). */
int sandbox_spawn(struct sandbox *sb, const struct sproc_spec *sp,
		  struct sandbox_proc **out, struct af_err *err);

/* Readable when sproc_step() has work. */
int sproc_fd(const struct sandbox_proc *p);

struct sproc_result {
	int exit_code;    /* as run: status, 128+signal, 126/127 when it could not be
			   * executed, 125 when its working directory is missing
			   * (or it could not be started); a file operation: 0, or
			   * 1 when it failed (exec_errno) */
	int term_signal;  /* died of this signal, else 0 */
	int exec_errno;   /* could not be executed (or the file op failed): errno, else 0 */
	bool killed;      /* ended by sproc_kill() (a timeout, a disconnect) */
};

/* Non-blocking.  Returns 1 when it ended (*res filled; *err says why
 * when exec_errno is set), 0 while it runs, or -errno. */
int sproc_step(struct sandbox_proc *p, struct sproc_result *res, struct af_err *err);
/* Signal the process (group: its whole process group).  Returns 0 or
 * -errno (-ESRCH: it ended). */
int sproc_signal(struct sandbox_proc *p, int sig, bool group);
/* Kill its whole PID namespace now (pidfd).  Cannot fail. */
void sproc_kill(struct sandbox_proc *p);
/* Free it; kills it if still running. */
void sproc_free(struct sandbox_proc *p);

/* LIST/STAT records on fds[1], one per entry, text fields separated by
 * a space, each record ended by a NUL:
 *   "<type> <mode-octal> <size> <mtime-sec>.<nsec> <path>\0"
 * (nsec in 9 digits), type: f regular, d directory, l symlink, o other;
 * mode the permission bits; path relative to
 * sp->path for LIST ("." is not listed), the path itself for STAT.
 * Everything as a capability-less process in the sandbox sees it: a
 * hidden entry is ENOENT in exec_errno, an unreadable one EACCES; a
 * recursive LIST shows a subdirectory it cannot read, or one more than
 * 64 levels down, without its entries, and follows no symbolic link. */

/* If real_path (canonical) lies in a host directory every sandbox shows
 * read-only (/usr, /etc, /opt, ...), copy that directory's canonical
 * path to out and return true.  A project there would be readable
 * outside the view, and so would a delta. */
bool sandbox_shows_path(const char *real_path, char *out, size_t len);

/* Refuse a project the sandbox would show anyway, outside the view.
 * real_path must be canonical.  Returns 0, or -EINVAL with *err filled
 * (a usage error). */
int sandbox_check_project(const char *real_path, struct af_err *err);

#endif
