/* cmd_run.c - `agentfense run` and `agentfense shell`: wire the policy,
 * the delta, the view and the sandbox together around one command.
 *
 *   parse and check every input (usage errors), open the project
 *   -> lc_new -> lc_start (sandbox, delta, view: lifecycle.h)
 *   -> lc_exec -> lc_wait -> lc_stop (nothing left in the namespace,
 *   the view stopped) -> lc_finish: sync / discard / keep the delta;
 *   or, when the view stopped answering and was cut off, keep the delta
 *   and _exit.  This file parses and prints; lifecycle.c does the rest.
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
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/api_cli.h"
#include "cli/cli.h"
#include "cli/config.h"
#include "cli/run_plan.h"
#include "common/units.h"
#include "delta/delta.h"
#include "sandbox/env.h"
#include "sandbox/gitident.h"
#include "image/image.h"
#include "lifecycle/lifecycle.h"
#include "sandbox/mounts.h"
#include "sandbox/reslimits.h"
#include "policy/policy.h"
#include "sandbox/ptyrelay.h"
#include "sandbox/rootfs.h"
#include "sandbox/sandbox.h"

enum changes { CHANGES_SYNC, CHANGES_DISCARD, CHANGES_KEEP }; /* as --changes lists them */

struct run_opts {
	struct policy_options po;
	const char *workdir;
	const char *workspace; /* --workspace; NULL: /workspace */
	bool host_path;        /* --host-path: the project at its own host path */
	const char **envs; /* --env specs, in order */
	size_t n_envs;
	double timeout;
	double kill_after;   /* --kill-after: the timeout's grace after SIGTERM */
	bool kill_after_set;
	enum changes changes;
	bool changes_set;    /* --changes given: honoured even after a timeout */
	bool quiet;          /* -q: no summary of what was synced */
	bool verbose;        /* -v: the rules' sources, the mounts, the delta */
	bool dry_run;        /* --dry-run: say what would run, start nothing */
	bool net_host;
	bool net_set;        /* --net given: over the configuration's */
	bool seccomp_off;
	bool git_identity_off; /* --git-identity off */
	struct mount_list mounts;
	char *resolv;        /* --net host: where /etc/resolv.conf leads, shown read-only */
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
		"      --workspace PATH       show the project at PATH instead of /workspace\n"
		"      --host-path            show the project at its own host path (the\n"
		"                             directories above it stay hidden)\n"
		"  -e, --env KEY=VALUE        environment variable (repeatable); the host\n"
		"                             environment is NOT inherited\n"
		"  -e, --env KEY              pass KEY's value from agentfense's environment\n"
		"      --env-file FILE        variables from FILE: KEY=VALUE or KEY lines,\n"
		"                             '#' comments (repeatable; docker's format)\n"
		"      --git-identity on|off  the host's git user.name and user.email as\n"
		"                             GIT_AUTHOR_* and GIT_COMMITTER_* (default: on)\n"
		"  -t, --timeout DURATION     after this long (e.g. 30, 1.5s, 5m, 1h), SIGTERM\n"
		"                             to the command's process group, then SIGKILL\n"
		"                             of the whole sandbox (exit 124)\n"
		"      --kill-after DURATION  the grace between the two (default: 10s; 0:\n"
		"                             SIGKILL at once)\n"
		"      --changes sync|discard|keep\n"
		"                             what happens to the changes at exit (default:\n"
		"                             sync, but keep after a timeout or a signal)\n"
		"  -q, --quiet                no summary line of the changes synced\n"
		"  -v, --verbose              say where the rules come from, the mounts and\n"
		"                             the delta directory before the command starts\n"
		"      --dry-run              say what would run (rules, mounts, limits and\n"
		"                             how each is enforced, ...) and start nothing\n"
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
		"agentfense(1), LIMITS.  Defaults come from ~/.config/agentfense/config.ini\n"
		"and AGENTFENSE_* variables: see 'agentfense config'.\n"
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

/* A duration for opt (the timeout, a positive one; its grace, 0 allowed). */
static double parse_timeout(const char *opt, const char *s, bool zero_ok)
{
	double t;
	if (parse_duration(s, &t) < 0 || t < 0 || (t == 0 && !zero_ok))
		usage_error("invalid %s '%s': expected a duration such as 30, 30s, 1.5s, "
			    "5m or 1h (see agentfense(1), DURATIONS AND SIZES)", opt, s);
	return t;
}

/* The grace --kill-after gives when not told: as long as `docker stop`
 * waits, enough for make to remove a half-written target. */
#define DEFAULT_KILL_AFTER 10.0

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

static void env_line_add(char *line, void *arg)
{
	struct run_opts *o = arg;
	o->envs = xrealloc(o->envs, (o->n_envs + 1) * sizeof(*o->envs));
	o->envs[o->n_envs++] = line;
}

/* Add the variables of an --env-file (docker's format: KEY=VALUE lines,
 * KEY alone to pass agentfense's own value, '#' comments and blank
 * lines skipped, the value taken as it is, quotes included) to o->envs.
 * Dies with a usage error naming the file and line. */
static void read_env_file(struct run_opts *o, const char *path)
{
	char *buf = api_env_file_lines(path, env_line_add, o);
	env_file_bufs = xrealloc(env_file_bufs, (n_env_file_bufs + 1) * sizeof(*env_file_bufs));
	env_file_bufs[n_env_file_bufs++] = buf;
}

static void parse_args(int argc, char **argv, struct run_opts *o)
{
	enum { OPT_POLICY = 256, OPT_CHANGES, OPT_NET, OPT_SECCOMP, OPT_BIND, OPT_RO_BIND,
	       OPT_TMPFS, OPT_ROOTFS, OPT_IMAGE, OPT_MEMORY, OPT_CPUS, OPT_PIDS,
	       OPT_DISK_LIMIT, OPT_ENV_FILE, OPT_GIT_IDENTITY, OPT_KILL_AFTER, OPT_DRY_RUN,
	       OPT_WORKSPACE, OPT_HOST_PATH };
	struct af_err err = { 0 };
	static const struct option longopts[] = {
		{ "preset", required_argument, NULL, 'p' },
		{ "rule", required_argument, NULL, 'r' },
		{ "policy", required_argument, NULL, OPT_POLICY },
		{ "workdir", required_argument, NULL, 'w' },
		{ "workspace", required_argument, NULL, OPT_WORKSPACE },
		{ "host-path", no_argument, NULL, OPT_HOST_PATH },
		{ "env", required_argument, NULL, 'e' },
		{ "env-file", required_argument, NULL, OPT_ENV_FILE },
		{ "git-identity", required_argument, NULL, OPT_GIT_IDENTITY },
		{ "timeout", required_argument, NULL, 't' },
		{ "kill-after", required_argument, NULL, OPT_KILL_AFTER },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
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
	while ((c = getopt_long(argc, argv, "+:p:r:w:e:t:qvh", longopts, NULL)) != -1) {
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
		case OPT_GIT_IDENTITY: {
			static const char *const onoff[] = { "on", "off", NULL };
			o->git_identity_off = parse_choice("--git-identity", optarg, onoff) == 1;
			break;
		}
		case 't':
			o->timeout = parse_timeout("timeout", optarg, false);
			break;
		case OPT_KILL_AFTER:
			o->kill_after = parse_timeout("--kill-after value", optarg, true);
			o->kill_after_set = true;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'v':
			o->verbose = true;
			break;
		case OPT_DRY_RUN:
			o->dry_run = true;
			break;
		case OPT_WORKSPACE:
		case OPT_HOST_PATH:
			if (o->workspace || o->host_path)
				usage_error("only one of --workspace and --host-path, once");
			o->workspace = c == OPT_WORKSPACE ? optarg : NULL;
			o->host_path = c == OPT_HOST_PATH;
			break;
		case OPT_CHANGES: {
			/* in the order of enum changes */
			static const char *const changes[] = { "sync", "discard", "keep", NULL };
			o->changes = (enum changes)parse_choice("--changes", optarg, changes);
			o->changes_set = true;
			break;
		}
		case OPT_NET: {
			static const char *const nets[] = { "none", "host", NULL };
			o->net_host = parse_choice("--net", optarg, nets) == 1;
			o->net_set = true;
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
	if (optind < argc && is_option_of(argv[optind], longopts, "prwteqvh")) {
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

/* Fill in what the command line left unsaid from the configuration
 * (config.h): a value given on the command line wins; the
 * configuration's rules come before the command line's, its binds
 * beside them. */
static void apply_config(struct run_opts *o, const struct config *c)
{
	struct af_err err = { 0 };
	const struct config_value *v = c->scalar;
	double d;
	uint32_t u32;
	uint64_t u64;

	config_policy_options(c, &o->po);
	if (v[CONFIG_NET].value && !o->net_set)
		o->net_host = strcmp(v[CONFIG_NET].value, "host") == 0;
	if (v[CONFIG_CHANGES].value && !o->changes_set) {
		static const char *const changes[] = { "sync", "discard", "keep" };
		for (size_t i = 0; i < ARRAY_SIZE(changes); i++)
			if (strcmp(v[CONFIG_CHANGES].value, changes[i]) == 0)
				o->changes = (enum changes)i;
		o->changes_set = true; /* told, as --changes is */
	}
	/* the values were checked by config_load() */
	if (v[CONFIG_TIMEOUT].value && o->timeout == 0 &&
	    parse_duration(v[CONFIG_TIMEOUT].value, &d) == 0)
		o->timeout = d;
	if (v[CONFIG_KILL_AFTER].value && !o->kill_after_set &&
	    parse_duration(v[CONFIG_KILL_AFTER].value, &d) == 0)
		o->kill_after = d;
	if (v[CONFIG_MEMORY].value && !o->limits.memory &&
	    limits_parse_memory(v[CONFIG_MEMORY].value, &u64, &err) == 0)
		o->limits.memory = u64;
	if (v[CONFIG_CPUS].value && !o->limits.cpu_quota &&
	    limits_parse_cpus(v[CONFIG_CPUS].value, &u32, &err) == 0)
		o->limits.cpu_quota = u32;
	if (v[CONFIG_PIDS].value && !o->limits.pids &&
	    limits_parse_pids(v[CONFIG_PIDS].value, &u32, &err) == 0)
		o->limits.pids = u32;
	if (v[CONFIG_DISK_LIMIT].value && !o->disk_limit &&
	    limits_parse_disk(v[CONFIG_DISK_LIMIT].value, &u64, &err) == 0)
		o->disk_limit = u64;

	static const struct {
		enum config_key key;
		enum mount_kind kind;
	} binds[] = { { CONFIG_BIND, MOUNT_BIND },
		      { CONFIG_RO_BIND, MOUNT_RO_BIND },
		      { CONFIG_TMPFS, MOUNT_TMPFS } };
	for (size_t b = 0; b < ARRAY_SIZE(binds); b++)
		for (size_t i = 0; i < c->n[binds[b].key]; i++)
			if (mounts_add(&o->mounts, binds[b].kind, c->list[binds[b].key][i].value,
				       &err) < 0)
				config_error(&err, &c->list[binds[b].key][i]);
}

/* Absolute path target of a symbolic link found at link (absolute),
 * '..' and '.' taken lexically, as the kernel walks it in the sandbox,
 * malloc'd; NULL if it climbs above '/'. */
static char *link_target(const char *link, const char *target)
{
	autofree char *joined = target[0] == '/' ? xstrdup(target) : xasprintf("%s/../%s", link,
										 target);
	char *out = xmalloc(strlen(joined) + 2);
	size_t n = 0;
	for (const char *p = joined; *p;) {
		size_t len = strcspn(p, "/");
		if (len == 2 && p[0] == '.' && p[1] == '.') {
			while (n > 0 && out[n - 1] != '/')
				n--;
			if (n == 0) {
				free(out);
				return NULL;
			}
			n--;
		} else if (len && !(len == 1 && p[0] == '.')) {
			out[n++] = '/';
			memcpy(out + n, p, len);
			n += len;
		}
		p += len;
		p += *p == '/';
	}
	out[n] = '\0';
	if (n == 0) {
		free(out);
		return NULL;
	}
	return out;
}

/* --net host on the host's root: /etc/resolv.conf is often a symbolic
 * link into /run (systemd-resolved, resolvconf), which the sandbox does
 * not show, and without it there is no DNS.  Show the file it leads to,
 * read-only, where the link leads in the sandbox; nothing else of /run.
 * Sets o->resolv to that path. */
static void show_resolv_conf(struct run_opts *o)
{
	static const char link[] = "/etc/resolv.conf";
	char target[PATH_MAX];
	struct stat st;

	if (!o->net_host || o->rootfs || o->image)
		return;
	ssize_t n = readlink(link, target, sizeof(target) - 1);
	if (n <= 0)
		return; /* no link: /etc, shown, holds the file */
	target[n] = '\0';
	autofree char *dst = link_target(link, target);
	autofree char *real = realpath(link, NULL);
	if (!dst || !real || stat(real, &st) < 0 || !S_ISREG(st.st_mode))
		return; /* dangling on the host too: nothing to show */
	/* a link within the system directories resolves as on the host */
	size_t first = strcspn(dst + 1, "/");
	for (size_t i = 0; rootfs_system_dirs[i]; i++)
		if (strlen(rootfs_system_dirs[i]) == first &&
		    strncmp(dst + 1, rootfs_system_dirs[i], first) == 0)
			return;
	for (size_t i = 0; i < o->mounts.n; i++)
		if (mounts_path_under(dst, o->mounts.v[i].dst))
			return; /* shown by the user's own mount */
	struct af_err err = { 0 };
	autofree char *spec = xasprintf("%s:%s", real, dst);
	if (mounts_add(&o->mounts, MOUNT_RO_BIND, spec, &err) < 0) {
		warn_msg("--net host: cannot show '%s', where '%s' leads, in the sandbox: %s", real,
			 link, err.msg);
		return;
	}
	o->resolv = steal_pointer(&dst);
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

static char *make_workdir(const char *w, const char *ws)
{
	if (!w)
		return xstrdup(ws);
	if (w[0] == '/')
		return xstrdup(w);
	return xasprintf("%s/%s", ws, w);
}

/* The first component of absolute path p is one of list's. */
static bool first_component_in(const char *p, const char *const *list)
{
	size_t n = strcspn(p + 1, "/");
	for (size_t i = 0; list[i]; i++)
		if (strlen(list[i]) == n && strncmp(p + 1, list[i], n) == 0)
			return true;
	return false;
}

/* Where the view is shown: --workspace, the project's host path
 * (--host-path), or /workspace; absolute and clean, clear of the extra
 * mounts.  Returns it malloc'd; dies on a bad one. */
static char *make_workspace(const struct run_opts *o, const char *project)
{
	const char *opt = o->host_path ? "--host-path" : "--workspace";
	const char *ws = o->host_path ? project : o->workspace;
	if (!ws)
		return xstrdup("/workspace");
	if (ws[0] != '/')
		usage_error("invalid %s '%s': expected an absolute path", opt, ws);
	char *clean = path_clean(ws, true, false);
	if (!clean || !*clean) {
		free(clean);
		usage_error("invalid %s '%s': expected an absolute path below '/', without '.' or "
			    "'..'", opt, ws);
	}
	for (size_t i = 0; i < o->mounts.n; i++)
		if (mounts_paths_overlap(o->mounts.v[i].dst, clean)) {
			const char *dst = o->mounts.v[i].dst;
			const char *mopt = mount_kind_option(o->mounts.v[i].kind);
			free(clean);
			usage_error("cannot show the project at '%s' (%s): it overlaps the %s at '%s'",
				    ws, opt, mopt, dst);
		}
	return clean;
}

/* The workspace must be made in the new root, not in what it shows
 * read-only as it is: the system directories (or root_dir's entries),
 * /proc, /dev.  Dies if it would be. */
static void check_workspace_root(const struct run_opts *o, const char *ws, const char *root_dir)
{
	static const char *const own[] = { "proc", "dev", NULL };
	char top[PATH_MAX];
	size_t n = strcspn(ws + 1, "/");
	if (!o->workspace && !o->host_path)
		return;
	snprintf(top, sizeof(top), "%s/%.*s", root_dir ? root_dir : "", (int)n, ws + 1);
	bool taken = first_component_in(ws, own) ||
		     (root_dir ? !first_component_in(ws, rootfs_own_dirs) && access(top, F_OK) == 0
			       : first_component_in(ws, rootfs_system_dirs));
	if (!taken)
		return;
	autofree char *hint = xasprintf("the sandbox shows '/%.*s' as it is, read-only; choose "
					"a path outside it", (int)n, ws + 1);
	usage_error_hint(hint, "cannot show the project at '%s' (%s)", ws,
			 o->host_path ? "--host-path" : "--workspace");
}

/* Why the changes are kept for review rather than synced (the command
 * did not finish as it should have), or NULL: they are not. */
static const char *review_reason(const struct run_opts *o, const struct sandbox_result *res)
{
	if (o->changes_set || o->changes != CHANGES_SYNC)
		return NULL;
	if (res->timed_out)
		return "the command timed out";
	if (res->term_signal)
		return "the command was killed by a signal";
	return NULL;
}

/* Say what became of the delta (lc_finish()'s *f, its return r and
 * error), as the user expects to read it; review: why it was kept
 * instead of synced, or NULL.  Returns 0, or the exit code to use when
 * agentfense failed. */
static int report_changes(const struct lc_finish *f, int r, const struct af_err *err,
			  const char *dir, const char *review, bool quiet)
{
	const struct sync_report *rep = &f->sync;

	/* what sync left, in its order: the first I/O error comes last */
	for (size_t i = 0; i < rep->n_notes; i++) {
		const struct sync_note *n = &rep->notes[i];
		switch (n->kind) {
		case SYNC_NOTE_CONFLICT:
		case SYNC_NOTE_HELD:
			error_msg("%s", n->text);
			break;
		case SYNC_NOTE_ERROR:
		case SYNC_NOTE_SKIPPED:
			warn_msg("%s", n->text);
			break;
		}
		if (n->hint)
			hint_msg("%s", n->hint);
	}
	if (rep->notes_dropped)
		warn_msg("%lu more entries not synced are not listed", rep->notes_dropped);
	switch (f->fate) {
	case LC_FATE_NONE:
	case LC_FATE_DISCARDED:
		break;
	case LC_FATE_KEPT:
		if (r == 0 && review)
			error_msg("%s: changes kept in '%s' for review, not synced "
				  "('--changes sync' syncs them even then)", review, f->delta_path);
		else if (r == 0)
			error_msg("changes kept in '%s'", f->delta_path);
		break;
	case LC_FATE_UNSYNCED:
		if (r == 0)
			error_msg("the view stopped answering: changes kept in '%s', not synced",
				  f->delta_path);
		break;
	case LC_FATE_SYNC_FAILED:
		print_err(err);
		if (!f->kept)
			print_err(&f->save_err);
		else
			error_msg("changes not synced are kept in '%s'", f->delta_path);
		return AF_EXIT_FAILURE;
	case LC_FATE_SYNCED:
	case LC_FATE_CONFLICTS:
		/* on stderr, so a script's output stays the command's */
		if ((rep->written || rep->deleted || rep->conflicts) && !quiet)
			error_msg("synced changes to '%s': %lu written, %lu deleted, %lu conflict%s",
				  dir, rep->written, rep->deleted, rep->conflicts,
				  rep->conflicts == 1 ? "" : "s");
		if (f->fate == LC_FATE_CONFLICTS && r == 0)
			error_msg("%lu change%s not synced (conflicting or held): the sandbox's "
				  "version%s kept in '%s'",
				  rep->conflicts, rep->conflicts == 1 ? "" : "s",
				  rep->conflicts == 1 ? " is" : "s are", f->delta_path);
		break;
	}
	if (r < 0) {
		print_err(err);
		return AF_EXIT_FAILURE;
	}
	return 0;
}

/* Apply --changes to the delta once the sandbox is gone (kept unsynced
 * if the view was cut; kept for review if the command timed out or was
 * killed, unless --changes was given), and say what became of it.
 * Returns 0, or the exit code to use when agentfense failed. */
static int finish_changes(struct lifecycle *lc, const struct run_opts *o)
{
	static const enum lc_changes fates[] = { [CHANGES_SYNC] = LC_CHANGES_SYNC,
						 [CHANGES_DISCARD] = LC_CHANGES_DISCARD,
						 [CHANGES_KEEP] = LC_CHANGES_KEEP };
	struct af_err err = { 0 };
	struct lc_finish f;
	const char *review = review_reason(o, &lc_end(lc)->res);
	enum changes ch = review ? CHANGES_KEEP : o->changes;
	int r = lc_finish(lc, fates[ch], &f, &err);
	int code = report_changes(&f, r, &err, o->dir, review, o->quiet);
	lc_finish_free(&f);
	return code;
}

/* Say how the command ended when agentfense ended it, or a limit
 * touched it (the exit status alone cannot tell). */
static void report_end(const struct run_opts *o, const struct sandbox_result *res,
		       const struct run_plan *plan, char *const *envp)
{
	char mem[64];
	limits_format_size(o->limits.memory, mem, sizeof(mem));
	switch (res->end) {
	case SANDBOX_END_TIMEOUT:
		error_msg("command timed out after %gs", o->timeout);
		break;
	case SANDBOX_END_EXEC_FAILED:
		run_plan_exec_failed(plan, envp, res->exec_errno);
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

/* The sandbox was refused writes by the disk budget: say so, once. */
static void report_disk(const struct lc_end *end)
{
	if (!end->disk_full)
		return;
	char lim[64];
	limits_format_size(end->disk_limit, lim, sizeof(lim));
	error_msg("the sandbox reached its disk limit (%s): writes past it failed with "
		  "'No space left on device'", lim);
	hint_msg("give it more with --disk-limit SIZE");
}

/* Say what the limits' fallback does not enforce. */
static void report_limits(const struct lifecycle *lc)
{
	size_t n;
	const struct limits_warning *w = lc_limits_warnings(lc, &n);
	for (size_t i = 0; i < n; i++)
		warn_msg("%s", w[i].msg);
	if (n)
		hint_msg("%s", w[0].hint);
}

/* The view's fd cache: an eighth of the hard RLIMIT_NOFILE, within
 * [16, 1024]; raise_nofile() lets this process use it once the sandbox
 * (which keeps the usual soft limit) is cloned. */
static unsigned view_fds(void)
{
	struct rlimit rl;
	rlim_t n = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_max / 8 : 128;
	return n < 16 ? 16 : n > 1024 ? 1024 : (unsigned)n;
}

static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
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

/* What becomes of the changes, in words, for run_plan_print(). */
static const char *changes_words(const struct run_opts *o)
{
	switch (o->changes) {
	case CHANGES_DISCARD:
		return "discard";
	case CHANGES_KEEP:
		return "keep";
	case CHANGES_SYNC:
		break;
	}
	return o->changes_set ? "sync" : "sync (kept instead after a timeout or a signal)";
}

/* The run as o and the checked inputs describe it; lim and delta are
 * what is known so far (NULL: not yet). */
static void fill_plan(struct run_plan *p, const struct run_opts *o, const struct policy *policy,
		      const char *project, const char *root_dir, const char *workspace,
		      const char *workdir,
		      const char *state_dir)
{
	*p = (struct run_plan){
		.policy = policy,
		.project = project,
		.root_dir = root_dir,
		.mounts = &o->mounts,
		.resolv = o->resolv,
		.net_host = o->net_host,
		.seccomp_off = o->seccomp_off,
		.limits = &o->limits,
		.disk_limit = o->disk_limit,
		.timeout = o->timeout,
		.kill_after = o->timeout > 0 ? o->kill_after : 0,
		.changes = changes_words(o),
		.workspace = workspace,
		.workdir = workdir,
		.argv = o->argv,
		.state_dir = state_dir,
	};
}

/* --dry-run: say it all on stdout and start nothing.  The limits are
 * chosen as the run would (their cgroups made and removed again), so
 * what is said of them holds.  Exits 0, or dies as the run would. */
static AF_NORETURN void dry_run(const struct run_opts *o, const struct policy *policy,
				const char *project, const char *root_dir, const char *workspace,
				const char *workdir)
{
	struct af_err err = { 0 };
	struct limits *lim = NULL;
	autofree char *state = delta_state_dir(&err);
	if (!state)
		die_err(&err);
	if (limits_new(&o->limits, &lim, &err) < 0)
		die_err(&err);
	struct run_plan p;
	fill_plan(&p, o, policy, project, root_dir, workspace, workdir, state);
	p.lim = lim;
	p.image = root_dir ? NULL : o->image;
	run_plan_print(stdout, "", &p, true);
	limits_free(lim);
	fflush(stdout);
	exit(ferror(stdout) ? AF_EXIT_FAILURE : 0);
}

/* `run` and `shell`: the same options, the same sandbox; interactive
 * gives the command a terminal of its own. */
static int run_main(int argc, char **argv, bool interactive)
{
	struct run_opts o = { .changes = CHANGES_SYNC, .kill_after = DEFAULT_KILL_AFTER,
			      .interactive = interactive };
	struct af_err err = { 0 };
	struct sandbox_result res = { 0 };
	struct env env;
	struct lc_project proj;
	struct lifecycle *lc = NULL;
	int pty = -1, code;
	unsigned tty_fds = 0; /* run: the standard streams that are terminals */

	subcmd = interactive ? "shell" : "run";
	ensure_stdio();
	for (int fd = 0; fd < 3 && !interactive; fd++)
		if (isatty(fd))
			tty_fds |= 1U << fd;
	bool relay = interactive || tty_fds;
	enum ptyrelay_mode mode = interactive ? PTYRELAY_SHELL : PTYRELAY_RUN;
	parse_args(argc, argv, &o);
	struct config cfg;
	if (config_load(&cfg, &err) < 0)
		die_err(&err);
	apply_config(&o, &cfg);
	if (o.kill_after_set && o.timeout == 0)
		usage_error("--kill-after without --timeout: it is the timeout's grace");

	show_resolv_conf(&o);
	autofree char *root_dir = NULL;
	if (lc_project_open(o.dir, &proj, &err) < 0)
		die_err(&err);
	/* without a home there is no cache to protect (--image fails) */
	struct af_err no_cache = { 0 };
	autofree char *cache = image_cache_dir(&no_cache);
	autofree char *cache_real = cache ? lc_canonical(cache) : NULL;
	if (mounts_check(&o.mounts, proj.real, proj.state_real, cache_real, &err) < 0)
		die_err(&err);
	mounts_sort(&o.mounts);
	struct policy *policy = policy_options_build(&o.po);
	autofree char *workspace = make_workspace(&o, proj.real);
	autofree char *workdir = make_workdir(o.workdir, workspace);
	env_init(&env);
	env_defaults(&env, workdir);
	if (!o.git_identity_off)
		git_identity_env(&env, proj.real); /* --env and the image's win */
	if (o.rootfs) {
		root_dir = lc_check_root_dir("--rootfs", o.rootfs, &proj, &err);
		if (!root_dir)
			die_err(&err);
	} else if (o.image && !o.dry_run) { /* a dry run unpacks nothing */
		struct image_info img = { 0 };
		if (image_prepare(o.image, &img, &err) < 0)
			die_err(&err);
		root_dir = lc_check_root_dir("--image", img.root, &proj, &err);
		if (!root_dir) {
			image_info_free(&img);
			die_err(&err);
		}
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
	check_workspace_root(&o, workspace, root_dir);
	for (size_t i = 0; i < o.n_envs; i++)
		if (env_set_spec(&env, o.envs[i], &err) < 0)
			die_err(&err);
	if (interactive && !o.argv)
		o.argv = default_shell(&env, &o, root_dir);
	if (lc_check_dev_fuse(&err) < 0)
		die_err(&err);
	if (o.dry_run)
		dry_run(&o, policy, proj.real, root_dir, workspace, workdir);
	if (o.seccomp_off)
		warn_msg("running without the seccomp filter (--seccomp off): the command "
			 "can reach kernel interfaces the sandbox normally refuses");
	/* the filter is what keeps the command from making a user and a
	 * cgroup namespace of its own and mounting its cgroup writable */
	if (o.seccomp_off && (o.limits.memory || o.limits.cpu_quota || o.limits.pids))
		warn_msg("with --seccomp off the command may lift its own --memory, --cpus "
			 "and --pids limits (new namespaces are not refused)%s",
			 o.limits.pids ? "; whether --pids was reached is only sampled without a "
					 "pids cgroup" : "");
	struct lc_config lcc = {
		.project = &proj,
		.policy = policy,
		.sandbox = {
			.argv = o.argv,
			.envp = env.v,
			.workdir = workdir,
			.workdir_beneath = o.workdir && o.workdir[0] != '/',
			.workspace = workspace,
			.net_host = o.net_host,
			.seccomp_off = o.seccomp_off,
			.pty = relay,
			.pty_fds = tty_fds, /* 0 for shell: all three */
			.root_dir = root_dir,
			.mounts = o.mounts.v,
			.n_mounts = o.mounts.n,
		},
		.limits = o.limits,
		.disk_limit = o.disk_limit,
		.view_fds = view_fds(),
	};
	if (lc_new(&lcc, &lc, &err) < 0)
		die_err(&err);
	report_limits(lc);

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

	if (lc_start(lc, &err) < 0)
		goto fail;
	raise_nofile();
	sandbox_set_kill_after(lc_sandbox(lc), o.timeout > 0 ? o.kill_after : 0);
	/* before a terminal relay puts the terminal in raw mode */
	if (o.verbose) {
		struct run_plan p;
		fill_plan(&p, &o, policy, proj.real, root_dir, workspace, workdir, NULL);
		p.delta = lc_delta_path(lc);
		run_plan_print(stderr, AF_PROG ": ", &p, false);
	}
	if (relay &&
	    ((pty = sandbox_pty(lc_sandbox(lc))) < 0 || ptyrelay_begin(pty, mode, &err) < 0))
		goto fail;
	if (lc_exec(lc, &err) < 0)
		goto fail;
	if (relay) {
		if (ptyrelay_wait(lc_sandbox(lc), steal_fd(&pty), mode, o.timeout, &res, &err) < 0)
			goto fail;
		lc_set_result(lc, &res);
	} else if (lc_wait(lc, o.timeout, &err) < 0) {
		goto fail;
	}

	lc_stop(lc); /* nothing runs in the namespace, the view is done */
	const struct lc_end *end = lc_end(lc);
	struct run_plan plan;
	fill_plan(&plan, &o, policy, proj.real, root_dir, workspace, workdir, NULL);
	report_end(&o, &end->res, &plan, env.v);
	if (lc_stuck(lc)) {
		code = finish_changes(lc, &o);
		goto stuck;
	}
	if (end->nodes_refused)
		error_msg("the view reached its limit of %zu inodes held by the kernel: "
			  "lookups past it failed with 'Too many open files in system'",
			  end->nodes_refused);
	report_disk(end);
	code = finish_changes(lc, &o);
	if (code == 0)
		code = end->res.exit_code;
	goto out;

fail:
	ptyrelay_restore(); /* messages print on a terminal in its usual mode */
	print_err(&err);
	code = err.exit_code ? err.exit_code : AF_EXIT_FAILURE;
	lc_stop(lc);
	if (pty >= 0)
		close(pty);
	/* The command may have written before agentfense failed: honour
	 * --changes (lc_finish() removes the delta if it never ran, keeps
	 * it if the view was cut). */
	if (finish_changes(lc, &o) != 0 && lc_stuck(lc))
		code = AF_EXIT_FAILURE;
	if (lc_stuck(lc))
		goto stuck;
out:
	lc_free(lc); /* the limits after the sandbox: its cgroups are empty */
	lc_project_close(&proj);
	policy_free(policy);
	policy_options_free(&o.po);
	config_free(&cfg);
	env_free(&env);
	free(o.envs);
	mounts_free(&o.mounts);
	free(o.resolv);
	return code;

stuck:
	/* the view's threads may hold the view, the delta and the policy:
	 * they are left to the exit */
	if (code == 0)
		code = lc_end(lc)->res.exit_code;
	lc_free(lc);
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
