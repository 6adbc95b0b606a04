/* sandbox_int.h - what sandbox.c (set-up, PID 1, run's command) and
 * service.c (service mode: processes started on request) share: the
 * control protocol and the steps that start a process in the sandbox.
 * Everything here that runs in the sandbox uses system calls on memory
 * prepared beforehand only (see sandbox.h). */
#ifndef AF_SANDBOX_INT_H
#define AF_SANDBOX_INT_H

#include <linux/filter.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "sandbox/sandbox.h"

enum msg_type {
	MSG_GO = 1,      /* P -> C: uid/gid maps written, build the root */
	MSG_READY,       /* C -> P: root built; carries the FUSE fd */
	MSG_PTY,         /* C -> P: carries the pty master (before READY) */
	MSG_EXEC,        /* P -> C: the view serves; start the command */
	MSG_ERROR,       /* C -> P: set-up failed: err */
	MSG_EXEC_FAILED, /* C -> P: execve failed with errno value */
	MSG_EXIT,        /* C -> P: the command's raw wait status in value */
	MSG_NPROC,       /* C -> P: the tasks reached the RLIMIT_NPROC fallback */
	MSG_REAPS,       /* command -> PID 1: the listener of its waits */
	/* service mode (service.c) */
	MSG_SPAWN,        /* P -> C: start a process; request and fds follow */
	MSG_PIDFD,        /* C -> P over the process's ctl: its exec init's pidfd */
	MSG_SIGNAL,       /* P -> exec init: send value to the process */
	MSG_SIGNAL_GROUP, /* P -> exec init: send value to its process group */
};

struct msg {
	int type;
	int value;
	struct af_err err;
};

/* What the command's child reports through its close-on-exec pipe. */
struct exec_fail {
	int errnum;
	int stage; /* enum exec_stage */
};

enum exec_stage {
	STAGE_EXEC,
	STAGE_PRIVS,
	STAGE_SETSID,
	STAGE_TTY,
	STAGE_SECCOMP,
	STAGE_LIMITS,
	STAGE_FILE, /* a service file operation failed: errnum */
	STAGE_SEAL, /* the execute-only copy of a sealed command failed */
};

/* Send one message, with fd attached if >= 0.  Returns 0 or -errno. */
int send_msg(int sock, int type, int value, const struct af_err *err, int fd);
/* Receive one message; *fd (if not NULL) gets an attached fd or -1.
 * Returns 1, 0 on EOF, or -errno (-EPROTO for a malformed packet). */
int recv_msg(int sock, struct msg *m, int *fd);
/* fork()-like clone3 without glibc's fork handlers.  Returns the pid,
 * 0 in the child, or -1 with errno. */
pid_t sb_clone(uint64_t flags);
/* execve argv[0] in envp's PATH.  Returns the errno to report. */
int exec_command(char *const *argv, char *const *envp);
/* For sandbox_config's sealed: the fd to execveat() argv[0] from (an
 * execute-only memfd copy).  Returns it, or -errno with *stage
 * STAGE_EXEC (the command's own failure: 126/127) or STAGE_SEAL. */
int seal_command(char *const *argv, char *const *envp, int *stage);
/* Drop every capability for good.  Returns 0 or -1 with errno. */
int drop_caps(void);
/* In the command's process: drop everything, exec; failures to errfd.
 * With watch_reaps (and a filter), the listener of the command's waits
 * (sysfilter_watch_reaps) goes to errfd, a socket, as MSG_REAPS first. */
AF_NORETURN void command_main(const struct sandbox_config *cfg, const struct sock_fprog *filter,
			      int pty_master, int errfd, bool watch_reaps);
/* chdir to cfg->workdir.  Returns 0 or -errno (-EXDEV: a link led out). */
int enter_workdir(const struct sandbox_config *cfg);
/* Fill *err for a set-up stage that failed; false for an exec failure. */
bool exec_fail_error(const struct exec_fail *ef, struct af_err *err);
/* In P: an error message from the sandbox, strerror appended.  Returns -errno. */
int child_error(const struct msg *m, struct af_err *err);

/* In C: the filter that follows an EXEC of len instructions (len 0:
 * none), into static memory.  Returns 0 or -errno. */
int recv_filter(int sock, unsigned len, struct sock_fprog *prog);

/* service.c: PID 1 of a service sandbox after EXEC (filter_len: its
 * value): executes exe_fd (our own program) anew if it can, then takes
 * the filter and the rlimits and serves requests.  Never returns. */
AF_NORETURN void service_start(int sock, int exe_fd, unsigned filter_len);
/* In P, after EXEC and the filter: size the control socket for
 * requests and send the rlimits of l.  Returns 0 or -errno. */
int service_prepare(int sock, const struct limits *l);
/* In P: send a request to start sp.  Returns 0 with *out, or -errno
 * with *err filled. */
int service_spawn(int sock, const struct sproc_spec *sp, struct sandbox_proc **out,
		  struct af_err *err);

#endif
