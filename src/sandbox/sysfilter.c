/* sysfilter.c - build and install the command's seccomp filter (see
 * sysfilter.h and agentfense(1), SECURITY).
 *
 * libseccomp compiles the rules; the result is exported as classic BPF
 * into memory so the child, cloned from a multithreaded process, can
 * install it with one system call and no allocation. */
#include "sandbox/sysfilter.h"

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Refused outright: keyrings (shared with the host user's sessions),
 * kernel attack surface (bpf, perf, userfaultfd, io_uring, whose
 * operations never pass through this filter: a rule here could be
 * sidestepped through it), kernel code and state
 * (modules, kexec, reboot, swap, accounting, quotas, the kernel log),
 * namespaces and mounts (the root the sandbox built must stay as it is),
 * file handles (open_by_handle_at reaches files by inode number,
 * around every path check), and taking another process's fds or
 * writing its memory (pidfd_getfd, process_vm_writev: what an attacker
 * does to a neighbour; debuggers use ptrace, which stays, as does
 * process_vm_readv for profilers). */
static const char *const refused[] = {
	"acct", "add_key", "bpf", "delete_module", "finit_module", "fsconfig", "fsmount",
	"fsopen", "fspick", "init_module", "io_uring_enter", "io_uring_register",
	"io_uring_setup", "kexec_file_load", "kexec_load", "keyctl",
	"lookup_dcookie", "mount", "mount_setattr", "move_mount", "nfsservctl",
	"open_by_handle_at", "open_tree", "perf_event_open", "pidfd_getfd", "pivot_root",
	"process_vm_writev", "quotactl", "quotactl_fd", "reboot", "request_key", "setns",
	"swapoff", "swapon", "syslog", "umount2", "userfaultfd", NULL,
};

/* clone's flags argument: the second one on s390, the first elsewhere. */
#if defined(__s390__) || defined(__s390x__)
#define CLONE_FLAGS_ARG 1
#else
#define CLONE_FLAGS_ARG 0
#endif

/* Add one rule; a system call this kernel/libseccomp does not know is
 * skipped (nothing to refuse).  Returns 0 or -errno. */
static int add_rule(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned n,
		    const struct scmp_arg_cmp *cmp)
{
	int nr = seccomp_syscall_resolve_name(name);
	if (nr == __NR_SCMP_ERROR)
		return 0;
	return seccomp_rule_add_array(ctx, action, nr, n, cmp);
}

/* Fill ctx with the rules.  Returns 0, or -errno with *what naming the
 * rule that failed. */
static int add_rules(scmp_filter_ctx ctx, const char **what)
{
	const uint32_t eperm = SCMP_ACT_ERRNO(EPERM);
	int r;

	for (const char *const *p = refused; *p; p++) {
		*what = *p;
		if ((r = add_rule(ctx, eperm, *p, 0, NULL)) < 0)
			return r;
	}
	/* New user namespaces would give the command a full set of
	 * capabilities over new mount/net namespaces: the kernel's largest
	 * unprivileged attack surface.  clone3 passes its flags in memory,
	 * which a filter cannot read: ENOSYS makes libc fall back to clone. */
	struct scmp_arg_cmp newuser[] = {
		SCMP_CMP(CLONE_FLAGS_ARG, SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER),
	};
	*what = "clone";
	if ((r = add_rule(ctx, eperm, "clone", 1, newuser)) < 0)
		return r;
	struct scmp_arg_cmp unshare_newuser[] = {
		SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER),
	};
	*what = "unshare";
	if ((r = add_rule(ctx, eperm, "unshare", 1, unshare_newuser)) < 0)
		return r;
	*what = "clone3";
	if ((r = add_rule(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NULL)) < 0)
		return r;
	/* Terminal injection: TIOCSTI pushes input into a terminal, and
	 * TIOCLINUX can paste the console selection.  ioctl's request is an
	 * int: compare the low 32 bits only, so garbage in the high half
	 * cannot slip past. */
	static const unsigned long ioctls[] = { TIOCSTI, TIOCLINUX };
	for (size_t i = 0; i < ARRAY_SIZE(ioctls); i++) {
		struct scmp_arg_cmp req[] = {
			SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffUL, ioctls[i]),
		};
		*what = "ioctl";
		if ((r = add_rule(ctx, eperm, "ioctl", 1, req)) < 0)
			return r;
	}
	/* AF_ALG sockets reach the kernel's crypto code, and since Linux 6.2
	 * can load a key of the user's keyrings (shared with the host's
	 * sessions) by its serial: refused, like the keyring calls.  The
	 * family is an int: the low 32 bits only. */
	static const char *const alg_calls[] = { "socket", "socketpair" };
	for (size_t i = 0; i < ARRAY_SIZE(alg_calls); i++) {
		struct scmp_arg_cmp family[] = {
			SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffUL, AF_ALG),
		};
		*what = alg_calls[i];
		if ((r = add_rule(ctx, eperm, alg_calls[i], 1, family)) < 0)
			return r;
	}
	/* personality flags turn off address randomisation
	 * (ADDR_NO_RANDOMIZE) or make all readable memory executable
	 * (READ_IMPLIES_EXEC) for what the command execs next: allow only
	 * PER_LINUX (0) and the 0xffffffff query, i.e. the 32 bits the
	 * kernel reads all equal.  libseccomp takes one comparison per
	 * argument and rule, and rules OR: refuse when some bit is 1 and
	 * the next one (cyclically) 0, which happens exactly when the bits
	 * are not all equal. */
	for (unsigned i = 0; i < 32; i++) {
		scmp_datum_t bit = 1UL << i, next = 1UL << ((i + 1) % 32);
		struct scmp_arg_cmp persona[] = {
			SCMP_A0(SCMP_CMP_MASKED_EQ, bit | next, bit),
		};
		*what = "personality";
		if ((r = add_rule(ctx, eperm, "personality", 1, persona)) < 0)
			return r;
	}
	return 0;
}

int sysfilter_build(struct sock_fprog *prog, struct af_err *err)
{
	const char *what = "init";
	int r;

	memset(prog, 0, sizeof(*prog));
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		return af_err_set(err, ENOMEM, "cannot build the seccomp filter: %s",
				  strerror(ENOMEM));
	/* Only the native architecture (libseccomp's default; on x86_64 it
	 * also refuses x32 system calls): a foreign one could name the
	 * refused calls by other numbers.  Kill rather than fail them. */
	if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS)) < 0 ||
	    (r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)) < 0 ||
	    (r = add_rules(ctx, &what)) < 0) {
		seccomp_release(ctx);
		return af_err_set(err, -r, "cannot build the seccomp filter (%s): %s", what,
				  strerror(-r));
	}
	/* libseccomp 2.5 exports to an fd only */
	autoclose int fd = memfd_create("agentfense-seccomp", MFD_CLOEXEC);
	struct stat st;
	if (fd < 0) {
		r = -errno;
	} else if ((r = seccomp_export_bpf(ctx, fd)) == 0) {
		if (fstat(fd, &st) < 0)
			r = -errno;
		else if (st.st_size <= 0 || st.st_size % sizeof(struct sock_filter) ||
			 st.st_size / sizeof(struct sock_filter) > BPF_MAXINSNS)
			r = -EPROTO;
	}
	seccomp_release(ctx);
	if (r < 0)
		return af_err_set(err, -r, "cannot export the seccomp filter: %s", strerror(-r));
	size_t n = (size_t)st.st_size;
	struct sock_filter *insns = xmalloc(n);
	ssize_t got = pread(fd, insns, n, 0);
	if (got != (ssize_t)n) {
		r = got < 0 ? -errno : -EIO;
		free(insns);
		return af_err_set(err, -r, "cannot read the seccomp filter: %s", strerror(-r));
	}
	prog->len = (unsigned short)(n / sizeof(struct sock_filter));
	prog->filter = insns;
	return 0;
}

int sysfilter_install(const struct sock_fprog *prog)
{
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, prog) == 0)
		return 0;
	if (errno != ENOSYS)
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog, 0, 0);
}

void sysfilter_free(struct sock_fprog *prog)
{
	free(prog->filter);
	prog->filter = NULL;
	prog->len = 0;
}

/* The native architecture in seccomp_data, for the waits filter (the
 * command's filter kills every other one). */
#if defined(__x86_64__)
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_AARCH64
#elif defined(__riscv) && __riscv_xlen == 64
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_RISCV64
#endif

#ifdef NATIVE_AUDIT_ARCH
/* Written by hand rather than by libseccomp: the child installs it
 * without receiving it, and it never changes. */
static struct sock_filter reaps_insns[] = {
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NATIVE_AUDIT_ARCH, 0, 3),
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_wait4, 2, 0),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_waitid, 1, 0),
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
};

int sysfilter_watch_reaps(void)
{
	const struct sock_fprog prog = { .len = ARRAY_SIZE(reaps_insns), .filter = reaps_insns };
	return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
			    &prog);
}
#else
int sysfilter_watch_reaps(void)
{
	errno = ENOTSUP;
	return -1;
}
#endif
