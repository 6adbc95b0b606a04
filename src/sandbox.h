/* sandbox.h - an unprivileged namespace sandbox around one command.
 *
 * sandbox_start() clones a child in new user, mount, PID, IPC, UTS and
 * (unless net_host) network namespaces, with the caller's uid/gid mapped
 * to themselves.  The child builds a minimal read-only root (system
 * directories bound read-only, fresh /proc, minimal /dev, private /tmp),
 * opens /dev/fuse inside its user namespace, mounts it at /workspace and
 * passes the fd back: the caller serves the view on it from outside the
 * sandbox's PID namespace.  sandbox_exec() then lets the command run,
 * with all capabilities dropped and no_new_privs set; the child stays as
 * PID 1 of the namespace, reaping and forwarding signals.  If the calling
 * process dies, even by SIGKILL, the whole sandbox dies with it.
 *
 * Not thread-safe per sandbox; any number of sandboxes may exist. */
#ifndef AF_SANDBOX_H
#define AF_SANDBOX_H

#include <stdbool.h>
#include <sys/types.h>

#include "util.h"

struct sandbox_config {
	char *const *argv;  /* command and arguments; argv[0] looked up in PATH */
	char *const *envp;  /* the command's whole environment */
	const char *workdir; /* absolute path inside the sandbox */
	bool net_host;      /* share the host network namespace */
	const char *hostname; /* NULL: "agentfense" */
};

struct sandbox;

struct sandbox_result {
	int exit_code;   /* what `run` should exit with (see agentfense(1)) */
	bool timed_out;  /* killed by the timeout */
	int term_signal; /* the command died of this signal, else 0 */
	int exec_errno;  /* the command could not be executed: errno, else 0 */
};

/* Returns 0 with *fuse_fd set (ownership passes to the caller), or
 * -errno with *err filled (the child's own set-up error arrives verbatim,
 * with a hint when the cause is known, e.g. user namespaces disabled). */
int sandbox_start(const struct sandbox_config *cfg, struct sandbox **out, int *fuse_fd,
		  struct af_err *err);

/* Let the command start. Returns 0 or -errno. */
int sandbox_exec(struct sandbox *sb, struct af_err *err);

/* Wait for the command.  SIGINT/SIGTERM/SIGHUP/SIGQUIT sent to this
 * process are forwarded to the command (signals from the terminal reach
 * it directly).  timeout > 0 kills the whole sandbox after that many
 * seconds.  Returns 0 with *res filled, or -errno. */
int sandbox_wait(struct sandbox *sb, double timeout, struct sandbox_result *res,
		 struct af_err *err);

/* Kill everything in the sandbox now (SIGKILL to its PID 1) and reap. */
void sandbox_kill(struct sandbox *sb);
void sandbox_free(struct sandbox *sb);

#endif
