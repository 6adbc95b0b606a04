/* cmd_explain.c - agentfense explain: the level of paths of a project
 * under a policy, and the rule that decided each. */
#include <cJSON.h>
#include <fcntl.h>
#include <getopt.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <wchar.h>

#include "common/casefold.h"
#include "cli/cli.h"
#include "cli/config.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: agentfense explain [OPTIONS] DIR PATH...\n\n"
		   "Show the level of each PATH of the project DIR (a path inside the view,\n"
		   "like /src/a.c, or relative to DIR) and the rule that decided it.  A\n"
		   "trailing '/' treats PATH as a directory; otherwise DIR is consulted\n"
		   "(symlinks are not followed) and a missing path counts as a file.\n\n"
		   "options:\n"
		   "  -h, --help                 show this help\n"
		   "      --json                 print a JSON array for tools\n"
		   "      --policy FILE          rules and presets from an INI file\n"
		   "  -p, --preset NAME          permission preset (default: agent-safe)\n"
		   "  -r, --rule PATTERN=LEVEL[@PRIORITY]\n"
		   "                             extra rule, repeatable\n");
}

/* The policy form of a PATH argument ("src/a.c", "" for the root).
 * Returns the allocated path, or NULL if it leaves the project. */
static char *view_path(const char *arg, bool *force_dir)
{
	size_t len = strlen(arg);
	char *out = xmalloc(len + 1);
	size_t k = 0;

	*force_dir = len > 0 && arg[len - 1] == '/';
	for (const char *p = arg; *p;) {
		const char *e = strchrnul(p, '/');
		size_t n = (size_t)(e - p);
		if (n == 0 || (n == 1 && p[0] == '.')) {
			/* nothing */
		} else if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (k == 0) {
				free(out);
				return NULL;
			}
			while (k > 0 && out[k - 1] != '/')
				k--;
			if (k > 0)
				k--;
		} else {
			if (k)
				out[k++] = '/';
			memcpy(out + k, p, n);
			k += n;
		}
		p = *e ? e + 1 : e;
	}
	out[k] = '\0';
	return out;
}

/* Open the directory named by *p up to slash beneath *at, never following
 * a symlink, and move on to it: *fd holds it, *at names it, *p is what
 * follows slash.  Returns false if it cannot be opened. */
static bool step_dir(int *at, int *fd, const char **p, const char *slash)
{
	autofree char *name = xstrndup(*p, (size_t)(slash - *p));
	int nfd = openat(*at, name, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
	if (nfd < 0)
		return false;
	af_closep(fd);
	*fd = nfd;
	*at = *fd;
	*p = slash + 1;
	return true;
}

/* Whether path is a directory under dirfd, never following a symlink:
 * a symlink or a missing path is not one. */
static bool is_dir_at(int dirfd, const char *path)
{
	autoclose int fd = -1;
	struct stat st;
	int at = dirfd;
	const char *p = path;

	if (!*path)
		return true;
	for (;;) {
		const char *slash = strchr(p, '/');
		if (!slash)
			return fstatat(at, p, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
		if (!step_dir(&at, &fd, &p, slash))
			return false;
	}
}

/* Does a directory on the way to path (the project's root included) fold
 * case?  Then the view decides path as policy_decide_folded() does. */
static bool folds_at(int dirfd, const char *path)
{
	autoclose int fd = -1;
	int at = dirfd;
	const char *p = path;

	for (;;) {
		if (casefold_dir_may_fold(at))
			return true;
		const char *slash = strchr(p, '/');
		if (!slash)
			return false;
		if (!step_dir(&at, &fd, &p, slash))
			return false;
	}
}

struct line {
	char *path;  /* quoted for the terminal */
	int width;   /* of path on a terminal, in columns */
	char *level;
	char *rule;
};

/* Columns s takes on a terminal: UTF-8 decoded whatever the locale
 * (paths are bytes; UTF-8 is what terminals show them as), each
 * character as wcwidth() says, a byte that is not UTF-8 or a character
 * without a width as one column, as terminals draw a replacement. */
static int display_width(const char *s)
{
	locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	locale_t old = utf8 ? uselocale(utf8) : (locale_t)0;
	mbstate_t st = { 0 };
	size_t left = strlen(s);
	int w = 0;

	while (left) {
		wchar_t wc;
		size_t n = utf8 ? mbrtowc(&wc, s, left, &st) : (size_t)-1;
		if (n == (size_t)-1 || n == (size_t)-2 || n == 0) {
			memset(&st, 0, sizeof(st));
			n = 1;
			w++;
		} else {
			int cw = wcwidth(wc);
			w += cw < 0 ? 1 : cw;
		}
		s += n;
		left -= n;
	}
	if (utf8) {
		uselocale(old);
		freelocale(utf8);
	}
	return w;
}

static char *rule_text(const struct rule *r)
{
	char q[4200];
	return xasprintf("%s = %s @%d (%s)", policy_quote(q, sizeof(q), rule_pattern(r)),
			 level_name(rule_level(r)), rule_priority(r), rule_origin(r));
}

int cmd_explain(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "json", no_argument, NULL, 'J' },
		{ "policy", required_argument, NULL, 'P' },
		{ "preset", required_argument, NULL, 'p' },
		{ "rule", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	struct policy_options po = { 0 };
	bool json = false;
	int c;

	optind = 0; /* glibc: full re-initialisation */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hp:r:", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return 0;
		case 'J':
			json = true;
			break;
		case 'p':
			policy_options_add(&po, POPT_PRESET, optarg);
			break;
		case 'r':
			policy_options_add(&po, POPT_RULE, optarg);
			break;
		case 'P':
			policy_options_add(&po, POPT_POLICY, optarg);
			break;
		case ':':
			die(AF_EXIT_USAGE, "explain: option '%s' needs an argument", argv[optind - 1]);
		default:
			error_msg("explain: unknown option '%s'", argv[optind - 1]);
			hint_unknown_option(argv[optind - 1], opts);
			hint_msg("run 'agentfense explain --help'");
			return AF_EXIT_USAGE;
		}
	}
	if (argc - optind < 2) {
		error_msg("explain: %s", argc - optind ? "missing PATH" : "missing DIR and PATH");
		hint_msg("usage: agentfense explain [OPTIONS] DIR PATH...");
		return AF_EXIT_USAGE;
	}
	const char *dir = argv[optind++];
	autoclose int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		die(AF_EXIT_USAGE, "cannot use '%s' as project: %s", dir, strerror(errno));

	/* the same defaults as run's, so explain says what a run does */
	struct config cfg;
	struct af_err err = { 0 };
	if (config_load(&cfg, &err) < 0)
		die_err(&err);
	config_policy_options(&cfg, &po);
	struct policy *p = policy_options_build(&po);
	int n = argc - optind;
	struct line *lines = xcalloc((size_t)n, sizeof(*lines));
	cJSON *arr = json ? cJSON_CreateArray() : NULL;
	int wpath = 0, wlevel = 0;

	for (int i = 0; i < n; i++) {
		const char *arg = argv[optind + i];
		bool force_dir;
		autofree char *path = view_path(arg, &force_dir);
		if (!path)
			die(AF_EXIT_USAGE, "invalid path '%s': outside the project", arg);
		bool is_dir = force_dir || is_dir_at(dirfd, path);
		struct decision d;
		if (folds_at(dirfd, path))
			policy_decide_folded(p, path, is_dir, &d);
		else
			policy_decide(p, path, is_dir, &d);

		struct line *l = &lines[i];
		char q[4200];
		autofree char *slashed = xasprintf("/%s", path);
		l->path = xstrdup(policy_quote(q, sizeof(q), slashed));
		l->width = display_width(l->path);
		l->level = xasprintf("%s%s", level_name(d.level), d.traversable ? " (traversable)" : "");
		l->rule = d.rule ? rule_text(d.rule) : xstrdup("(no rule matched)");
		int a = l->width, b = (int)strlen(l->level);
		wpath = a > wpath ? a : wpath;
		wlevel = b > wlevel ? b : wlevel;
		if (json) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "path", slashed);
			cJSON_AddStringToObject(o, "level", level_name(d.level));
			cJSON_AddBoolToObject(o, "traversable", d.traversable);
			if (d.rule) {
				cJSON *r = cJSON_AddObjectToObject(o, "rule");
				cJSON_AddStringToObject(r, "pattern", rule_pattern(d.rule));
				cJSON_AddStringToObject(r, "level", level_name(rule_level(d.rule)));
				cJSON_AddNumberToObject(r, "priority", rule_priority(d.rule));
				cJSON_AddStringToObject(r, "origin", rule_origin(d.rule));
			} else {
				cJSON_AddNullToObject(o, "rule");
			}
			cJSON_AddItemToArray(arr, o);
		}
	}

	if (json) {
		char *s = cJSON_Print(arr);
		if (!s)
			die(AF_EXIT_FAILURE, "cannot format JSON: out of memory");
		printf("%s\n", s);
		cJSON_free(s);
		cJSON_Delete(arr);
	}
	for (int i = 0; i < n; i++) {
		if (!json) /* padded by columns, not bytes: paths may be any script */
			printf("%s%*s  %-*s  %s\n", lines[i].path, wpath - lines[i].width, "", wlevel,
			       lines[i].level, lines[i].rule);
		free(lines[i].path);
		free(lines[i].level);
		free(lines[i].rule);
	}
	free(lines);
	policy_free(p);
	policy_options_free(&po);
	config_free(&cfg);
	return 0;
}
