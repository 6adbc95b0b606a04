/* run_plan.c - `run --dry-run` and `run -v`: the policy, mounts, limits
 * and delta of a run, said before it starts (see run_plan.h). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/run_plan.h"
#include "sandbox/rootfs.h"

static void print_rules(FILE *f, const char *pfx, const struct policy *pol)
{
	unsigned np = policy_preset_count(pol);
	for (unsigned i = 0; i < np; i++)
		fprintf(f, "%spreset %s (%s)\n", pfx, policy_preset_name(pol, i),
			policy_preset_source(pol, i));
	size_t n = policy_rule_count(pol);
	fprintf(f, "%srules, in precedence order:\n", pfx);
	for (size_t i = 0; i < n; i++) {
		const struct rule *r = policy_rule_at(pol, i);
		fprintf(f, "%s  %-28s %-5s @%-3d %s\n", pfx, rule_pattern(r),
			level_name(rule_level(r)), rule_priority(r), rule_origin(r));
	}
}

static void print_mounts(FILE *f, const char *pfx, const struct run_plan *p)
{
	fprintf(f, "%smounts:\n", pfx);
	if (p->root_dir) {
		fprintf(f, "%s  %-14s the top-level entries of '%s', read-only\n", pfx, "/",
			p->root_dir);
	} else if (p->image) {
		fprintf(f, "%s  %-14s the top-level entries of the image '%s', read-only "
			   "(unpacked at run time)\n", pfx, "/", p->image);
	} else {
		for (size_t i = 0; rootfs_system_dirs[i]; i++) {
			char path[64];
			struct stat st;
			snprintf(path, sizeof(path), "/%s", rootfs_system_dirs[i]);
			if (lstat(path, &st) < 0)
				continue;
			char target[256];
			ssize_t n = S_ISLNK(st.st_mode)
					    ? readlink(path, target, sizeof(target) - 1) : -1;
			if (n >= 0) {
				target[n] = '\0';
				fprintf(f, "%s  %-14s a symbolic link to '%s', as on the host\n", pfx,
					path, target);
			} else if (S_ISLNK(st.st_mode))
				fprintf(f, "%s  %-14s a symbolic link, as on the host\n", pfx, path);
			else
				fprintf(f, "%s  %-14s the host's, read-only\n", pfx, path);
		}
	}
	fprintf(f, "%s  %-14s fresh, for the sandbox's own processes only\n", pfx, "/proc");
	fprintf(f, "%s  %-14s null, zero, full, random, urandom, tty and a pty instance\n", pfx,
		"/dev");
	fprintf(f, "%s  %-14s a private tmpfs\n", pfx, "/tmp");
	fprintf(f, "%s  %-14s '%s' through the permissioned, copy-on-write view\n", pfx,
		p->workspace, p->project);
	for (size_t i = 0; i < p->mounts->n; i++) {
		const struct mount_spec *m = &p->mounts->v[i];
		switch (m->kind) {
		case MOUNT_BIND:
			fprintf(f, "%s  %-14s '%s', writable: writes reach the host (--bind)\n", pfx,
				m->dst, m->src);
			break;
		case MOUNT_RO_BIND:
			if (p->resolv && strcmp(m->dst, p->resolv) == 0)
				fprintf(f, "%s  %-14s '%s', read-only: /etc/resolv.conf leads there "
					   "(--net host)\n", pfx, m->dst, m->src);
			else
				fprintf(f, "%s  %-14s '%s', read-only (--ro-bind)\n", pfx, m->dst,
					m->src);
			break;
		case MOUNT_TMPFS:
			fprintf(f, "%s  %-14s a private tmpfs (--tmpfs)\n", pfx, m->dst);
			break;
		}
	}
}

/* How limit ctl is enforced, in words. */
static const char *backend_name(const struct limits *l, enum limits_ctl ctl)
{
	switch (limits_backend(l, ctl)) {
	case LIMITS_CGROUP2:
		return "cgroup v2, the sandbox as a whole";
	case LIMITS_CGROUP1:
		return "cgroup v1, the sandbox as a whole";
	case LIMITS_RLIMIT:
		return ctl == LIMITS_PIDS ? "RLIMIT_NPROC, per sandbox (its user namespace)"
					  : "RLIMIT_AS, per process";
	case LIMITS_UNENFORCED:
		return "NOT enforced (no writable cgroup)";
	case LIMITS_NONE:
		break;
	}
	return "none";
}

static void print_limits(FILE *f, const char *pfx, const struct run_plan *p)
{
	const struct limits_spec *s = p->limits;
	char buf[64];
	fprintf(f, "%slimits:\n", pfx);
	if (s->memory) {
		limits_format_size(s->memory, buf, sizeof(buf));
		fprintf(f, "%s  memory %s: %s\n", pfx, buf,
			p->lim ? backend_name(p->lim, LIMITS_MEMORY) : "requested");
	} else {
		fprintf(f, "%s  memory: none\n", pfx);
	}
	if (s->cpu_quota)
		fprintf(f, "%s  cpus %g: %s\n", pfx, (double)s->cpu_quota / LIMITS_CPU_PERIOD_US,
			p->lim ? backend_name(p->lim, LIMITS_CPU) : "requested");
	else
		fprintf(f, "%s  cpus: none\n", pfx);
	if (s->pids)
		fprintf(f, "%s  pids %" PRIu32 ": %s\n", pfx, s->pids,
			p->lim ? backend_name(p->lim, LIMITS_PIDS) : "requested");
	else
		fprintf(f, "%s  pids: none\n", pfx);
	if (p->disk_limit) {
		limits_format_size(p->disk_limit, buf, sizeof(buf));
		fprintf(f, "%s  disk %s: counted by the view as the changes are written\n", pfx,
			buf);
	} else {
		fprintf(f, "%s  disk: half the free space of the state directory, counted by "
			   "the view\n", pfx);
	}
}

void run_plan_print(FILE *f, const char *pfx, const struct run_plan *p, bool full)
{
	print_rules(f, pfx, p->policy);
	print_mounts(f, pfx, p);
	if (p->delta)
		fprintf(f, "%sdelta: '%s'\n", pfx, p->delta);
	else
		fprintf(f, "%sdelta: a new run directory in '%s'\n", pfx, p->state_dir);
	if (!full)
		return;
	fprintf(f, "%snetwork: %s\n", pfx,
		p->net_host ? "host (the host's network namespace)"
			    : "none (loopback only, a network namespace of its own)");
	fprintf(f, "%sseccomp: %s\n", pfx, p->seccomp_off ? "off" : "on");
	print_limits(f, pfx, p);
	if (p->timeout > 0 && p->kill_after > 0)
		fprintf(f, "%stimeout: %gs, then SIGTERM to the command's process group, "
			   "SIGKILL of the sandbox %gs later\n", pfx, p->timeout, p->kill_after);
	else if (p->timeout > 0)
		fprintf(f, "%stimeout: %gs, then SIGKILL of the sandbox\n", pfx, p->timeout);
	else
		fprintf(f, "%stimeout: none\n", pfx);
	fprintf(f, "%schanges: %s\n", pfx, p->changes);
	fprintf(f, "%sworkdir: %s\n", pfx, p->workdir);
	fprintf(f, "%scommand:", pfx);
	if (!p->argv)
		fprintf(f, " an interactive shell");
	for (char *const *a = p->argv; a && *a; a++)
		fprintf(f, " %s", *a);
	fputc('\n', f);
}
