/* cmd_run.c - `agentfense run` and `agentfense shell`: wire the policy,
 * the delta, the view and the sandbox together around one command.
 *
 *   parse and check every input (usage errors), open the project
 *   -> sandbox_begin (the child builds its root meanwhile) -> delta_create
 *   -> view_new -> sandbox_ready (FUSE fd)
 *   -> view_start(fd) -> sandbox_exec -> sandbox_wait
 *   -> sandbox_free (nothing left in the namespace) -> view_stop
 *   -> sync / discard / keep the delta; or, when the view stopped
 *   answering and was cut off, keep the delta and _exit.
 *
 * `shell` is the same with a pseudo-terminal for the command (an
 * interactive shell by default), relayed to the user's terminal by
 * ptyrelay_wait() in place of sandbox_wait().  `run` relays the same
 * way those of stdin, stdout and stderr that are terminals: the command
 * never holds the user's terminal, whose settings and flags it could
 * change for good, and a run in the background cannot read what is
 * typed for the foreground. */
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/units.h"
#include "delta/delta.h"
#include "sandbox/env.h"
#include "image/image.h"
#include "sandbox/mounts.h"
#include "sandbox/reslimits.h"
#include "policy/policy.h"
#include "sandbox/ptyrelay.h"
#include "sandbox/sandbox.h"
#include "view/view.h"

enum changes { CHANGES_SYNC, CHANGES_DISCARD, CHANGES_KEEP }; /* as --changes lists them */

struct run_opts {
	struct policy_options po;
	const char *workdir;
	const char **envs; /* --env specs, in order */
	size_t n_envs;
	double timeout;
	enum changes changes;
	bool net_host;
	bool seccomp_off;
	struct mount_list mounts;
	const char *rootfs;
	const char *image;
	struct limits_spec limits;
	uint64_t disk_limit; /* --disk-limit; 0: the default */
	const char *dir;
	char **argv;
	bool interactive; /* shell: a pty, and the command may be left out */
};

/* The subcommand being run ("run" or "shell"), for messages. */
static const char *subcmd = "run";

static void usage(FILE *f, bool interactive)
{
	if (interactive)
		fprintf(f, "usage: agentfense shell [OPTIONS] DIR [-- COMMAND [ARG...]]\n"
			   "\n"
			   "Start an interactive shell (/bin/bash, else /bin/sh), or COMMAND, on a\n"
			   "terminal of its own in a sandbox that shows DIR at /workspace through\n"
			   "a permissioned, copy-on-write view.  The options are those of run.\n");
	else
		fprintf(f, "usage: agentfense run [OPTIONS] DIR [--] COMMAND [ARG...]\n"
			   "\n"
			   "Run COMMAND in a sandbox that shows DIR at /workspace through a\n"
			   "permissioned, copy-on-write view.\n");
	fprintf(f,
		"\n"
		"  -p, --preset NAME          permission preset (default: agent-safe)\n"
		"  -r, --rule PATTERN=LEVEL[@PRIORITY]\n"
		"                             extra rule, repeatable, on top of the preset\n"
		"      --policy FILE          rules and presets from an INI file\n"
		"  -w, --workdir PATH         working directory inside the sandbox\n"
		"                             (default /workspace; a relative PATH stays\n"
		"                             under /workspace)\n"
		"  -e, --env KEY=VALUE        environment variable (repeatable); the host\n"
		"                             environment is NOT inherited\n"
		"  -e, --env KEY              pass KEY's value from agentfense's environment\n"
		"      --env-file FILE        variables from FILE: KEY=VALUE or KEY lines,\n"
		"                             '#' comments (repeatable; docker's format)\n"
		"  -t, --timeout DURATION     kill the whole sandbox after this long (exit\n"
		"                             124), e.g. 30, 1.5s, 5m, 1h\n"
		"      --changes sync|discard|keep\n"
		"                             what happens to the changes at exit (default: sync)\n"
		"      --net none|host        network: loopback only (default) or the host's\n"
		"      --seccomp on|off       system call filter (default: on; see\n"
		"                             agentfense(1), SECURITY)\n"
		"      --bind SRC[:DST]       show host path SRC at DST (default: SRC),\n"
		"                             writable: writes reach the host (repeatable)\n"
		"      --ro-bind SRC[:DST]    the same, read-only (repeatable)\n"
		"      --tmpfs DST            a fresh, empty, private tmpfs at DST (repeatable)\n"
		"      --rootfs DIR           use DIR (an unpacked image) as the root\n"
		"                             filesystem instead of the host's\n"
		"      --image OCI-DIR        unpack an OCI image layout (cached) and use it\n"
		"                             as the root filesystem\n"
		"      --memory SIZE          memory limit for the whole sandbox, e.g. 512m,\n"
		"                             1.5G, 1GiB (K, M, G, T: binary units)\n"
		"      --cpus N               CPU time limit in CPUs, e.g. 1 or 0.5\n"
		"      --pids N               at most N processes and threads (init included)\n"
		"      --disk-limit SIZE      bytes the changes may take on disk, e.g. 10G\n"
		"                             (default: half the free space there)\n"
		"  -h, --help                 show this help\n"
		"\n"
		"Limits use a writable cgroup, else rlimits with a warning: see\n"
		"agentfense(1), LIMITS.\n"
		"\n"
		"Exit status: the command's; 124 on timeout; 128+N if killed by signal N\n"
		"(137 when the memory limit killed it);\n"
		"126/127 if it cannot be executed / is not found; 125 for an error of\n"
		"agentfense itself, usage errors included.  See agentfense(1).\n");
}

/* A usage error, with hint (if not NULL) before the pointer to --help. */
static AF_NORETURN AF_PRINTF(2, 3) void usage_error_hint(const char *hint, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, AF_PROG ": %s: ", subcmd);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	if (hint)
		hint_msg("%s", hint);
	hint_msg("see 'agentfense %s --help'", subcmd);
	exit(AF_EXIT_USAGE);
}
#define usage_error(...) usage_error_hint(NULL, __VA_ARGS__)

/* The index in names (NULL-terminated) of the value arg of option opt;
 * anything else is a usage error listing the values. */
static int parse_choice(const char *opt, const char *arg, const char *const *names)
{
	char expected[128] = "";
	size_t n = 0;
	for (; names[n]; n++)
		if (strcmp(arg, names[n]) == 0)
			return (int)n;
	for (size_t i = 0; i < n; i++) {
		const char *sep = i == 0 ? "" : i + 1 == n ? " or " : ", ";
		size_t len = strlen(expected);
		snprintf(expected + len, sizeof(expected) - len, "%s%s", sep, names[i]);
	}
	usage_error("invalid value '%s' for %s: expected %s", arg, opt, expected);
}

static double parse_timeout(const char *s)
{
	double t;
	if (parse_duration(s, &t) < 0 || t <= 0)
		usage_error("invalid timeout '%s': expected a duration such as 30, 30s, 1.5s, "
			    "5m or 1h (see agentfense(1), DURATIONS AND SIZES)", s);
	return t;
}

/* Whether relative path w stays inside the directory it is relative
 * to, '..' taken lexically ("a/../b" does, "../x" and "a/../.." do
 * not); symlinks are for the sandbox to resolve, beneath /workspace. */
static bool workdir_inside(const char *w)
{
	int depth = 0;
	for (const char *p = w; *p;) {
		size_t n = strcspn(p, "/");
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (--depth < 0)
				return false;
		} else if (n && !(n == 1 && p[0] == '.')) {
			depth++;
		}
		p += n;
		p += *p == '/';
	}
	return true;
}

/* The contents of the --env-file files, which o->envs points into:
 * held here until exit, as the option strings of argv are. */
static char **env_file_bufs;
static size_t n_env_file_bufs;

#define ENV_FILE_MAX (1 << 20)

/* Add the variables of an --env-file (docker's format: KEY=VALUE lines,
 * KEY alone to pass agentfense's own value, '#' comments and blank
 * lines skipped, the value taken as it is, quotes included) to o->envs.
 * Dies with a usage error naming the file and line. */
static void read_env_file(struct run_opts *o, const char *path)
{
	autoclose int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		die(AF_EXIT_USAGE, "cannot read env file '%s': %s", path, strerror(errno));
	if (S_ISDIR(st.st_mode))
		die(AF_EXIT_USAGE, "cannot read env file '%s': %s", path, strerror(EISDIR));
	char *buf = xmalloc(ENV_FILE_MAX + 1);
	ssize_t len = read_full(fd, buf, ENV_FILE_MAX + 1);
	if (len < 0) {
		free(buf);
		die(AF_EXIT_USAGE, "cannot read env file '%s': %s", path, strerror((int)-len));
	}
	if (len > ENV_FILE_MAX) {
		free(buf);
		die(AF_EXIT_USAGE, "cannot read env file '%s': larger than 1 MiB", path);
	}
	buf[len] = '\0';
	env_file_bufs = xrealloc(env_file_bufs, (n_env_file_bufs + 1) * sizeof(*env_file_bufs));
	env_file_bufs[n_env_file_bufs++] = buf;
	if (memchr(buf, '\0', (size_t)len))
		die(AF_EXIT_USAGE, "invalid env file '%s': it holds a NUL byte", path);

	unsigned lineno = 0;
	for (char *line = buf, *next; line && *line; line = next) {
		lineno++;
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		size_t n = strlen(line);
		if (n && line[n - 1] == '\r')
			line[--n] = '\0';
		line += strspn(line, " \t");
		if (!*line || *line == '#')
			continue;
		size_t key = strcspn(line, "=");
		if (!env_name_valid(line, key)) {
			/* the name only: the rest of the line may be a secret */
			die(AF_EXIT_USAGE, "%s:%u: invalid environment variable name '%.*s': use "
			    "letters, digits and '_', not starting with a digit", path, lineno,
			    (int)(key > 64 ? 64 : key), line);
		}
		o->envs = xrealloc(o->envs, (o->n_envs + 1) * sizeof(*o->envs));
		o->envs[o->n_envs++] = line;
	}
}

static void parse_args(int argc, char **argv, struct run_opts *o)
{
	enum { OPT_POLICY = 256, OPT_CHANGES, OPT_NET, OPT_SECCOMP, OPT_BIND, OPT_RO_BIND,
	       OPT_TMPFS, OPT_ROOTFS, OPT_IMAGE, OPT_MEMORY, OPT_CPUS, OPT_PIDS,
	       OPT_DISK_LIMIT, OPT_ENV_FILE };
	struct af_err err = { 0 };
	static const struct option longopts[] = {
		{ "preset", required_argument, NULL, 'p' },
		{ "rule", required_argument, NULL, 'r' },
		{ "policy", required_argument, NULL, OPT_POLICY },
		{ "workdir", required_argument, NULL, 'w' },
		{ "env", required_argument, NULL, 'e' },
		{ "env-file", required_argument, NULL, OPT_ENV_FILE },
		{ "timeout", required_argument, NULL, 't' },
		{ "changes", required_argument, NULL, OPT_CHANGES },
		{ "net", required_argument, NULL, OPT_NET },
		{ "seccomp", required_argument, NULL, OPT_SECCOMP },
		{ "bind", required_argument, NULL, OPT_BIND },
		{ "ro-bind", required_argument, NULL, OPT_RO_BIND },
		{ "tmpfs", required_argument, NULL, OPT_TMPFS },
		{ "rootfs", required_argument, NULL, OPT_ROOTFS },
		{ "image", required_argument, NULL, OPT_IMAGE },
		{ "memory", required_argument, NULL, OPT_MEMORY },
		{ "cpus", required_argument, NULL, OPT_CPUS },
		{ "pids", required_argument, NULL, OPT_PIDS },
		{ "disk-limit", required_argument, NULL, OPT_DISK_LIMIT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	o->po.announce = true; /* run and shell: the user sees it at run time */
	opterr = 0;
	optind = 0;
	/* '+': options come before DIR; everything after is the command's */
	while ((c = getopt_long(argc, argv, "+:p:r:w:e:t:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			policy_options_add(&o->po, POPT_PRESET, optarg);
			break;
		case 'r':
			policy_options_add(&o->po, POPT_RULE, optarg);
			break;
		case OPT_POLICY:
			policy_options_add(&o->po, POPT_POLICY, optarg);
			break;
		case 'w':
			if (!*optarg)
				usage_error("empty working directory");
			if (optarg[0] != '/' && !workdir_inside(optarg))
				usage_error_hint("give an absolute path for a directory outside the "
						 "project", "invalid working directory '%s': it is outside "
						 "/workspace", optarg);
			o->workdir = optarg;
			break;
		case 'e':
			o->envs = xrealloc(o->envs, (o->n_envs + 1) * sizeof(*o->envs));
			o->envs[o->n_envs++] = optarg;
			break;
		case OPT_ENV_FILE:
			read_env_file(o, optarg);
			break;
		case 't':
			o->timeout = parse_timeout(optarg);
			break;
		case OPT_CHANGES: {
			/* in the order of enum changes */
			static const char *const changes[] = { "sync", "discard", "keep", NULL };
			o->changes = (enum changes)parse_choice("--changes", optarg, changes);
			break;
		}
		case OPT_NET: {
			static const char *const nets[] = { "none", "host", NULL };
			o->net_host = parse_choice("--net", optarg, nets) == 1;
			break;
		}
		case OPT_SECCOMP: {
			static const char *const onoff[] = { "on", "off", NULL };
			o->seccomp_off = parse_choice("--seccomp", optarg, onoff) == 1;
			break;
		}
		case OPT_BIND:
		case OPT_RO_BIND:
		case OPT_TMPFS:
			if (mounts_add(&o->mounts,
				       c == OPT_BIND	  ? MOUNT_BIND
				       : c == OPT_RO_BIND ? MOUNT_RO_BIND
							  : MOUNT_TMPFS,
				       optarg, &err) < 0)
				die_err(&err);
			break;
		case OPT_ROOTFS:
		case OPT_IMAGE:
			if (!*optarg)
				usage_error("empty value for %s", c == OPT_ROOTFS ? "--rootfs" : "--image");
			if (o->rootfs || o->image)
				usage_error("only one of --rootfs and --image, once: each names the "
					    "whole root filesystem");
			if (c == OPT_ROOTFS)
				o->rootfs = optarg;
			else
				o->image = optarg;
			break;
		case OPT_MEMORY:
			if (limits_parse_memory(optarg, &o->limits.memory, &err) < 0)
				usage_error("%s", err.msg);
			break;
		case OPT_CPUS:
			if (limits_parse_cpus(optarg, &o->limits.cpu_quota, &err) < 0)
				usage_error("%s", err.msg);
			break;
		case OPT_PIDS:
			if (limits_parse_pids(optarg, &o->limits.pids, &err) < 0)
				usage_error("%s", err.msg);
			break;
		case OPT_DISK_LIMIT:
			if (limits_parse_disk(optarg, &o->disk_limit, &err) < 0)
				usage_error("%s", err.msg);
			break;
		case 'h':
			usage(stdout, o->interactive);
			exit(0);
		case ':':
			usage_error("option '%s' requires a value", argv[optind - 1]);
		case '?':
		default: {
			if (optopt)
				usage_error("unknown option '-%c'", optopt);
			const char *near = suggest_option(argv[optind - 1], longopts);
			autofree char *hint = near ? xasprintf("did you mean '--%s'?", near) : NULL;
			usage_error_hint(hint, "unknown option '%s'", argv[optind - 1]);
		}
		}
	}
	if (optind >= argc)
		usage_error("missing project directory");
	o->dir = argv[optind++];
	/* "run DIR -p x -- cmd": the option would be run as the command */
	if (optind < argc && is_option_of(argv[optind], longopts, "prwteh")) {
		autofree char *hint = xasprintf("options go before DIR: 'agentfense %s [OPTIONS] "
						"DIR [--] COMMAND [ARG...]'", subcmd);
		usage_error_hint(hint, "option '%s' after the project directory '%s'",
				 argv[optind], o->dir);
	}
	if (optind < argc && strcmp(argv[optind], "--") == 0)
		optind++;
	if (optind >= argc && !o->interactive)
		usage_error("missing command to run");
	o->argv = optind < argc ? argv + optind : NULL;
}

/* True if path equals dir or lies below it (both canonical). */
static bool path_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	if (n == 1 && dir[0] == '/')
		return true;
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* Canonical form of a path that may not exist yet: resolve the longest
 * existing prefix, append the rest.  Returns a malloc'd string. */
static char *canonical_maybe(const char *path)
{
	autofree char *head = xstrdup(path);
	char *slash;
	while ((slash = strrchr(head, '/')) != NULL) {
		char *real = realpath(*head ? head : "/", NULL);
		if (real) {
			char *r = xasprintf("%s%s", strcmp(real, "/") == 0 ? "" : real,
					    path + strlen(head));
			free(real);
			return r;
		}
		*slash = '\0';
	}
	return xstrdup(path);
}

/* Open DIR and refuse topologies that would defeat the sandbox.
 * Returns the project fd; dies with a usage error on bad input. */
static int open_project(const char *dir, char **real_out, char **state_out)
{
	struct af_err err = { 0 };
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		die(AF_EXIT_USAGE, "cannot use '%s' as project: %s", dir, strerror(errno));
	char *real = realpath(dir, NULL);
	if (!real)
		die(AF_EXIT_USAGE, "cannot use '%s' as project: %s", dir, strerror(errno));
	if (sandbox_check_project(real, &err) < 0)
		die_err(&err);

	autofree char *state = delta_state_dir(&err);
	if (!state)
		die_err(&err);
	autofree char *state_real = canonical_maybe(state);
	char sys[PATH_MAX];
	if (sandbox_shows_path(state_real, sys, sizeof(sys))) {
		error_msg("cannot use '%s' as state directory: it is inside '%s', which every "
			  "sandbox shows read-only", state_real, sys);
		hint_msg("point XDG_STATE_HOME somewhere else");
		exit(AF_EXIT_USAGE);
	}
	if (path_under(real, state_real) || path_under(state_real, real))
		die(AF_EXIT_USAGE, "cannot use '%s' as project: it overlaps agentfense's state "
				   "directory '%s'", dir, state_real);
	*real_out = real;
	*state_out = steal_pointer(&state_real);
	return fd;
}

/* True if directory path has no entry (or cannot be read: the sandbox
 * then fails to use it and says why). */
static bool root_is_empty(const char *path)
{
	DIR *d = opendir(path);
	if (!d)
		return false;
	struct dirent *de;
	bool empty = true;
	while (empty && (de = readdir(d)) != NULL)
		empty = strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0;
	closedir(d);
	return empty;
}

/* Resolve the root filesystem (--rootfs, or an unpacked --image) and
 * refuse one that holds the project or agentfense's state, or lies in
 * the project: those would be shown whole, outside the view.  Returns
 * the canonical path; dies with a usage error. */
static char *check_root_dir(const char *opt, const char *dir, const char *real_project,
			    const char *state_real)
{
	struct stat st;
	char *real = realpath(dir, NULL);
	if (!real || stat(real, &st) < 0) {
		error_msg("cannot use '%s' as %s: %s", dir, opt, strerror(errno));
		goto bad;
	}
	if (!S_ISDIR(st.st_mode)) {
		error_msg("cannot use '%s' as %s: %s", dir, opt, strerror(ENOTDIR));
		goto bad;
	}
	if (root_is_empty(real)) {
		/* else the command is simply "not found" (127), which hides
		 * that nothing at all is there */
		error_msg("cannot use '%s' as %s: it is empty: a root filesystem needs the "
			  "command to run, its interpreter and libraries", dir, opt);
		hint_msg("unpack an image into it (e.g. 'tar -xf rootfs.tar -C %s'), or use "
			 "--image OCI-DIR", dir);
		goto bad;
	}
	if (mounts_on_procfs(real)) {
		error_msg("cannot use '%s' as %s: it is on the host's /proc", dir, opt);
		goto bad;
	}
	if (mounts_host_overlap(real, real_project)) {
		error_msg("cannot use '%s' as %s: it %s the project '%s', which the sandbox shows "
			  "only through the view", dir, opt,
			  mounts_host_under(real_project, real) ? "holds" : "is inside",
			  real_project);
		hint_msg("unpack the root filesystem outside the project");
		goto bad;
	}
	if (mounts_host_under(state_real, real)) {
		error_msg("cannot use '%s' as %s: it holds agentfense's state directory '%s'", dir,
			  opt, state_real);
		hint_msg("unpack the root filesystem in a directory of its own");
		goto bad;
	}
	/* the other way round too, as for binds: a run's directory there
	 * holds what another sandbox wrote */
	if (mounts_host_under(real, state_real)) {
		error_msg("cannot use '%s' as %s: it is inside agentfense's state directory '%s'",
			  dir, opt, state_real);
		hint_msg("the state directory holds the changes of every run; unpack the root "
			 "filesystem elsewhere");
		goto bad;
	}
	return real;
bad:
	free(real); /* exit() runs no cleanup: the leak checker would see it */
	exit(AF_EXIT_USAGE);
}

/* Fail early, with a hint, when FUSE cannot work at all. */
static void check_dev_fuse(void)
{
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		return;
	}
	int e = errno;
	error_msg("cannot open '/dev/fuse': %s", strerror(e));
	if (e == ENOENT || e == ENODEV || e == ENXIO)
		hint_msg("the FUSE kernel module is not loaded: run 'modprobe fuse'");
	else if (e == EACCES || e == EPERM)
		hint_msg("/dev/fuse must be readable and writable by everyone (mode 0666): "
			 "run 'chmod 0666 /dev/fuse'");
	exit(AF_EXIT_FAILURE);
}

/* A closed stdin/stdout/stderr would be reused by our own fds. */
static void ensure_stdio(void)
{
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0) {
			int n = open("/dev/null", O_RDWR);
			if (n >= 0 && n != fd)
				close(n);
		}
}

static char *make_workdir(const char *w)
{
	if (!w)
		return xstrdup("/workspace");
	if (w[0] == '/')
		return xstrdup(w);
	return xasprintf("/workspace/%s", w);
}

/* Apply --changes to the delta once the sandbox is gone.  Returns 0,
 * or the exit code to use when agentfense failed. */
static int finish_changes(enum changes ch, struct delta *d, int project_fd, const char *dir,
			  const struct policy *policy)
{
	struct af_err err = { 0 };
	struct sync_report rep = { 0 };

	switch (ch) {
	case CHANGES_DISCARD:
		if (delta_remove(d, &err) < 0) {
			print_err(&err);
			return AF_EXIT_FAILURE;
		}
		return 0;
	case CHANGES_KEEP:
		if (delta_save(d, &err) < 0) {
			print_err(&err);
			return AF_EXIT_FAILURE;
		}
		error_msg("changes kept in '%s'", delta_path(d));
		return 0;
	case CHANGES_SYNC:
		break;
	}
	if (delta_sync(d, project_fd, policy, &rep, &err) < 0) {
		print_err(&err);
		if (delta_save(d, &err) < 0)
			print_err(&err);
		else
			error_msg("changes not synced are kept in '%s'", delta_path(d));
		return AF_EXIT_FAILURE;
	}
	/* A person at a terminal is told what changed; scripts get silence
	 * unless there is something to act on (conflicts). */
	if ((rep.written || rep.deleted) && isatty(STDERR_FILENO))
		error_msg("synced to '%s': %lu written, %lu deleted", dir, rep.written, rep.deleted);
	if (rep.conflicts) {
		if (delta_save(d, &err) < 0) {
			print_err(&err);
			return AF_EXIT_FAILURE;
		}
		error_msg("%lu change%s not synced (conflicting or held): the sandbox's version%s "
			  "kept in '%s'",
			  rep.conflicts, rep.conflicts == 1 ? "" : "s",
			  rep.conflicts == 1 ? " is" : "s are", delta_path(d));
		return 0;
	}
	if (delta_remove(d, &err) < 0) {
		print_err(&err);
		return AF_EXIT_FAILURE;
	}
	return 0;
}

/* The view stopped answering and its connection was cut: what the
 * command did is kept for the user to look at, never synced (the run
 * did not finish as it should have), nor discarded (a thread of the
 * view may still be writing to it).  Returns 0, or the exit code of a
 * failure. */
static int keep_unsynced(struct delta *d)
{
	struct af_err err = { 0 };
	if (delta_save(d, &err) < 0) {
		print_err(&err);
		return AF_EXIT_FAILURE;
	}
	error_msg("the view stopped answering: changes kept in '%s', not synced", delta_path(d));
	return 0;
}

/* How long the view's threads may take to finish once the sandbox is
 * gone (the connection ended with it) before they count as blocked. */
#define VIEW_STOP_GRACE 2.0

/* End the view once the sandbox is gone.  Returns true if it is
 * stopped and freed; false if its threads are blocked (the connection
 * was cut, or they did not finish): they may hold the view, the delta
 * and the policy, so the caller frees none of them and leaves through
 * _exit().  *nodes_refused (if not NULL): view_nodes_refused(). */
static bool end_view(struct view *v, bool cut, size_t *nodes_refused)
{
	if (cut || view_stop_within(v, VIEW_STOP_GRACE) < 0)
		return false;
	if (nodes_refused)
		*nodes_refused = view_nodes_refused(v);
	view_free(v);
	return true;
}

static bool view_stuck_cb(void *arg, double secs)
{
	return view_stuck(arg, secs);
}

static int view_abort_cb(void *arg)
{
	return view_abort(arg);
}

/* Say how the command ended when agentfense ended it, or a limit
 * touched it (the exit status alone cannot tell). */
static void report_end(const struct run_opts *o, const struct sandbox_result *res)
{
	char mem[64];
	limits_format_size(o->limits.memory, mem, sizeof(mem));
	switch (res->end) {
	case SANDBOX_END_TIMEOUT:
		error_msg("command timed out after %gs", o->timeout);
		break;
	case SANDBOX_END_EXEC_FAILED:
		error_msg("cannot run '%s': %s", o->argv[0], strerror(res->exec_errno));
		break;
	case SANDBOX_END_OOM:
		error_msg("command was killed: out of memory (limit %s)", mem);
		break;
	case SANDBOX_END_EXITED:
	case SANDBOX_END_SIGNALED:
	case SANDBOX_END_PIDS:
		break;
	}
	if (res->end != SANDBOX_END_OOM && res->usage.oom_kills)
		error_msg("out of memory: %" PRIu64 " process%s in the sandbox killed (limit %s)",
			  res->usage.oom_kills, res->usage.oom_kills == 1 ? "" : "es", mem);
	if (res->usage.pids_refused)
		error_msg("command hit the pids limit (%" PRIu32 ")", o->limits.pids);
}

/* The delta's disk budget: --disk-limit, else half of what is free on
 * its file system now, so a sandbox never fills the user's disk by
 * default and the limit still scales with the machine.  Returns 0 or
 * -errno with *err filled. */
static int set_disk_limit(struct delta *d, uint64_t limit, struct af_err *err)
{
	if (!limit) {
		struct statvfs sv;
		if (fstatvfs(delta_upper_fd(d), &sv) < 0)
			return af_err_set(err, errno, "cannot read the free space of '%s': %s",
					  delta_path(d), strerror(errno));
		limit = (uint64_t)sv.f_bavail * sv.f_frsize / 2;
		if (limit < (1 << 20))
			limit = 1 << 20; /* the smallest --disk-limit: ENOSPC soon */
	}
	delta_set_disk_limit(d, limit);
	return 0;
}

/* The sandbox was refused writes by the disk budget: say so, once. */
static void report_disk(const struct delta *d)
{
	if (!delta_disk_full(d))
		return;
	char lim[64];
	limits_format_size(delta_disk_limit(d), lim, sizeof(lim));
	error_msg("the sandbox reached its disk limit (%s): writes past it failed with "
		  "'No space left on device'", lim);
	hint_msg("give it more with --disk-limit SIZE");
}

/* Create the limits' cgroups (or choose the fallback) and say what the
 * fallback does not enforce.  Dies with exit 125. */
static struct limits *setup_limits(const struct limits_spec *spec)
{
	struct af_err err = { 0 };
	struct limits *l;
	size_t n;

	if (limits_new(spec, &l, &err) < 0)
		die_err(&err);
	const struct limits_warning *w = limits_warnings(l, &n);
	for (size_t i = 0; i < n; i++)
		warn_msg("%s", w[i].msg);
	if (n)
		hint_msg("%s", w[0].hint);
	return l;
}

/* The shell `agentfense shell` starts without a command: bash without
 * start-up files (the sandbox has none of the user's, and Debian's
 * would replace the prompt), else sh.  The sandbox shows the host's
 * /bin, or root_dir's (--rootfs, --image), so looking there is looking
 * inside (an absolute symlink in root_dir would mislead this guess; the
 * shell then fails to start, with exit 127, and -- CMD names another).
 * The prompt says where the shell runs, unless --env set one. */
static char **default_shell(struct env *env, const struct run_opts *o, const char *root_dir)
{
	static char *bash[] = { (char *)"/bin/bash", (char *)"--norc", (char *)"-i", NULL };
	static char *sh[] = { (char *)"/bin/sh", (char *)"-i", NULL };
	autofree char *where = xasprintf("%s/bin/bash", root_dir ? root_dir : "");
	bool is_bash = access(where, X_OK) == 0;
	bool ps1_set = false;

	for (size_t i = 0; i < o->n_envs; i++)
		if (strncmp(o->envs[i], "PS1=", 4) == 0)
			ps1_set = true;
	if (!ps1_set)
		env_set(env, "PS1", is_bash ? "[agentfense] \\w\\$ " : "[agentfense] $ ");
	return is_bash ? bash : sh;
}

/* `run` and `shell`: the same options, the same sandbox; interactive
 * gives the command a terminal of its own. */
static int run_main(int argc, char **argv, bool interactive)
{
	struct run_opts o = { .changes = CHANGES_SYNC, .interactive = interactive };
	struct af_err err = { 0 };
	struct sandbox_result res = { 0 };
	struct env env;
	struct delta *delta = NULL;
	struct view *view = NULL;
	struct sandbox *sb = NULL;
	struct limits *limits = NULL;
	int fuse_fd = -1, pty = -1, code;
	bool ran = false, cut = false;
	unsigned tty_fds = 0; /* run: the standard streams that are terminals */

	subcmd = interactive ? "shell" : "run";
	ensure_stdio();
	for (int fd = 0; fd < 3 && !interactive; fd++)
		if (isatty(fd))
			tty_fds |= 1U << fd;
	bool relay = interactive || tty_fds;
	enum ptyrelay_mode mode = interactive ? PTYRELAY_SHELL : PTYRELAY_RUN;
	parse_args(argc, argv, &o);

	autofree char *real = NULL, *state_real = NULL, *root_dir = NULL;
	autoclose int project_fd = open_project(o.dir, &real, &state_real);
	/* without a home there is no cache to protect (--image fails) */
	struct af_err no_cache = { 0 };
	autofree char *cache = image_cache_dir(&no_cache);
	autofree char *cache_real = cache ? canonical_maybe(cache) : NULL;
	if (mounts_check(&o.mounts, real, state_real, cache_real, &err) < 0)
		die_err(&err);
	mounts_sort(&o.mounts);
	struct policy *policy = policy_options_build(&o.po);
	autofree char *workdir = make_workdir(o.workdir);
	env_init(&env);
	env_defaults(&env, workdir);
	if (o.rootfs) {
		root_dir = check_root_dir("--rootfs", o.rootfs, real, state_real);
	} else if (o.image) {
		struct image_info img = { 0 };
		if (image_prepare(o.image, &img, &err) < 0)
			die_err(&err);
		root_dir = check_root_dir("--image", img.root, real, state_real);
		/* said once, when the cache is filled: later runs reuse it */
		if (img.unpacked)
			error_msg("unpacked image '%s' (%s) into '%s'", o.image, img.digest, img.root);
		if (img.unpacked && img.stats.devices)
			error_msg("skipped %lu device node%s of the image: an ordinary user cannot "
				  "create them", img.stats.devices, img.stats.devices == 1 ? "" : "s");
		/* the image's environment, as its config says; --env wins */
		for (size_t i = 0; img.env && img.env[i]; i++)
			if (env_set_spec(&env, img.env[i], &err) < 0)
				warn_msg("ignoring the image's environment entry '%s'", img.env[i]);
		image_info_free(&img);
	}
	for (size_t i = 0; i < o.n_envs; i++)
		if (env_set_spec(&env, o.envs[i], &err) < 0)
			die_err(&err);
	if (interactive && !o.argv)
		o.argv = default_shell(&env, &o, root_dir);
	check_dev_fuse();
	if (o.seccomp_off)
		warn_msg("running without the seccomp filter (--seccomp off): the command "
			 "can reach kernel interfaces the sandbox normally refuses");
	/* the filter is what keeps the command from making a user and a
	 * cgroup namespace of its own and mounting its cgroup writable */
	if (o.seccomp_off && (o.limits.memory || o.limits.cpu_quota || o.limits.pids))
		warn_msg("with --seccomp off the command may lift its own --memory, --cpus "
			 "and --pids limits (new namespaces are not refused)");
	limits = setup_limits(&o.limits);

	/* Before any thread exists (the view's inherit the mask): these
	 * signals are read by sandbox_wait() and passed to the command. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	sigaddset(&set, SIGCHLD);
	if (relay)
		sigaddset(&set, SIGWINCH); /* read by ptyrelay_wait() */
	if (!interactive) {
		/* job control, done by sandbox_wait() or ptyrelay_wait()
		 * (in a shell the command gets Ctrl-Z as a byte) */
		sigaddset(&set, SIGTSTP);
		sigaddset(&set, SIGCONT);
	}
	sigprocmask(SIG_BLOCK, &set, NULL);

	struct sandbox_config sc = {
		.argv = o.argv,
		.envp = env.v,
		.workdir = workdir,
		.workdir_beneath = o.workdir && o.workdir[0] != '/',
		.net_host = o.net_host,
		.seccomp_off = o.seccomp_off,
		.fuse_options = "default_permissions",
		.pty = relay,
		.pty_fds = tty_fds, /* 0 for shell: all three */
		.root_dir = root_dir,
		.mounts = o.mounts.v,
		.n_mounts = o.mounts.n,
		.limits = limits,
	};
	/* the child builds its root while the delta and the view are made */
	autofree char *state = NULL;
	if (sandbox_begin(&sc, &sb, &err) < 0)
		goto fail;
	state = delta_state_dir(&err);
	if (!state || delta_create(state, real, &delta, &err) < 0 ||
	    set_disk_limit(delta, o.disk_limit, &err) < 0)
		goto fail;
	/* default_permissions lets the kernel refuse forbidden opens from
	 * the mode bits the view shows, sparing two round trips per file;
	 * the view still checks every read and write itself. */
	struct view_config vc = {
		.project_fd = project_fd,
		.delta = delta,
		.policy = policy,
		.kernel_permissions = true,
	};
	if (view_new(&vc, &view, &err) < 0)
		goto fail;
	if (sandbox_ready(sb, &fuse_fd, &err) < 0)
		goto fail;
	if (view_start(view, steal_fd(&fuse_fd), &err) < 0)
		goto fail;
	sandbox_set_server(sb, &(struct sandbox_server){ .stuck = view_stuck_cb,
							 .abort = view_abort_cb,
							 .arg = view });
	if (relay && ((pty = sandbox_pty(sb)) < 0 || ptyrelay_begin(pty, mode, &err) < 0))
		goto fail;
	if (sandbox_exec(sb, &err) < 0)
		goto fail;
	ran = true;
	if (relay) {
		if (ptyrelay_wait(sb, steal_fd(&pty), mode, o.timeout, &res, &err) < 0)
			goto fail;
	} else if (sandbox_wait(sb, o.timeout, &res, &err) < 0) {
		goto fail;
	}

	sandbox_kill(sb); /* nothing runs in the namespace now */
	cut = sandbox_server_cut(sb);
	sandbox_free(steal_pointer(&sb));
	size_t nodes = 0;
	if (!end_view(steal_pointer(&view), cut, &nodes)) {
		report_end(&o, &res);
		code = keep_unsynced(delta);
		goto stuck;
	}
	report_end(&o, &res);
	if (nodes)
		error_msg("the view reached its limit of %zu inodes held by the kernel: "
			  "lookups past it failed with 'Too many open files in system'", nodes);
	report_disk(delta);
	code = finish_changes(o.changes, delta, project_fd, o.dir, policy);
	if (code == 0)
		code = res.exit_code;
	goto out;

fail:
	ptyrelay_restore(); /* messages print on a terminal in its usual mode */
	print_err(&err);
	code = err.exit_code ? err.exit_code : AF_EXIT_FAILURE;
	sandbox_kill(sb);
	cut = sb && sandbox_server_cut(sb);
	sandbox_free(steal_pointer(&sb));
	if (fuse_fd >= 0)
		close(fuse_fd);
	if (pty >= 0)
		close(pty);
	if (view && !end_view(steal_pointer(&view), cut, NULL)) {
		if (delta && keep_unsynced(delta) != 0)
			code = AF_EXIT_FAILURE;
		goto stuck;
	}
	/* The command may have written before agentfense failed: honour
	 * --changes; if it never ran there is nothing to keep. */
	if (delta) {
		if (ran)
			finish_changes(o.changes, delta, project_fd, o.dir, policy);
		else if (delta_remove(delta, &err) < 0)
			print_err(&err);
	}
out:
	limits_free(limits); /* after sandbox_free: its cgroups are empty */
	delta_free(delta);
	policy_free(policy);
	policy_options_free(&o.po);
	env_free(&env);
	free(o.envs);
	mounts_free(&o.mounts);
	return code;

stuck:
	if (code == 0)
		code = res.exit_code;
	limits_free(limits); /* after sandbox_free: its cgroups are empty */
	fflush(NULL);
	_exit(code);
}

int cmd_run(int argc, char **argv)
{
	return run_main(argc, argv, false);
}

int cmd_shell(int argc, char **argv)
{
	return run_main(argc, argv, true);
}
