/* sysfilter.h - the seccomp filter every sandboxed command runs under.
 *
 * The filter allows by default and refuses, with EPERM, the system
 * calls a workload never needs and an escape often does (see the
 * SECURITY section of agentfense(1) for the list and the reasons);
 * system calls of any other architecture kill the process.
 *
 * sysfilter_build() runs in the parent (it allocates); the cloned child
 * only calls sysfilter_install(), a single system call. */
#ifndef AF_SYSFILTER_H
#define AF_SYSFILTER_H

#include <linux/filter.h>

#include "common/util.h"

/* Compile the filter into *prog (prog->filter is malloc'd: release it
 * with sysfilter_free()).  Returns 0, or -errno with *err filled. */
int sysfilter_build(struct sock_fprog *prog, struct af_err *err);

/* Install a built filter on the calling thread; no_new_privs must be
 * set already.  Async-signal-safe.  Returns 0 or -1 with errno. */
int sysfilter_install(const struct sock_fprog *prog);

void sysfilter_free(struct sock_fprog *prog);

/* Hand every wait4 and waitid of the calling thread and its descendants
 * to a supervisor before the kernel runs it (seccomp user notification,
 * a filter of its own next to the command's).  The supervisor must
 * answer each (SECCOMP_USER_NOTIF_FLAG_CONTINUE lets it run) and keep
 * the listener open: without one the calls fail with ENOSYS.
 * Async-signal-safe.  Returns the listener fd (close-on-exec), or -1
 * with errno (ENOTSUP: not on this architecture; EBUSY: a filter above
 * already has one; EINVAL: a kernel without user notification). */
int sysfilter_watch_reaps(void);

#endif
