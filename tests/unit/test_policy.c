/* test_policy.c - unit tests for the pattern matcher, rule precedence,
 * traversable directories, presets and policy parsing errors. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "policy/pattern.h"
#include "policy/policy.h"
#include "tap.h"

static char tmpdir[] = "/tmp/af-test-policy-XXXXXX";

/* --- patterns ------------------------------------------------------------ */

struct pcase {
	const char *pattern;
	const char *path;
	bool is_dir;
	bool covers;
};

static const struct pcase pcases[] = {
	/* anchored */
	{ "/a", "a", false, true },
	{ "/a", "b/a", false, false },
	{ "/a", "a/x/y", false, true }, /* a match covers the subtree */
	{ "/a/b", "a/b", false, true },
	{ "/a/b", "x/a/b", false, false },
	{ "a/b", "a/b", false, true }, /* a middle slash anchors */
	{ "a/b", "x/a/b", false, false },
	/* unanchored: a name at any depth */
	{ "a", "a", false, true },
	{ "a", "x/y/a", false, true },
	{ "a", "x/a/z", false, true },
	{ "a", "ab", false, false },
	{ "a", "xa/b", false, false },
	{ "*.key", "k.key", false, true },
	{ "*.key", "d/e/k.key", false, true },
	{ "*.key", "k.keys", false, false },
	{ "*.key", ".key", false, true },
	/* ** at the start */
	{ "**/secrets", "secrets", true, true },
	{ "**/secrets", "a/b/secrets", true, true },
	{ "**/secrets", "a/secretsx", true, false },
	/* ** in the middle: zero or more whole names */
	{ "/a/**/b", "a/b", false, true },
	{ "/a/**/b", "a/x/y/b", false, true },
	{ "/a/**/b", "a/x/y/c", false, false },
	{ "/a/**/b", "x/a/b", false, false },
	{ "/a/**/b/**/c", "a/1/b/2/3/c", false, true },
	{ "/a/**/b/**/c", "a/c/b", false, false },
	/* ** at the end: below, not the directory itself */
	{ "/out/**", "out", true, false },
	{ "/out/**", "out/x", false, true },
	{ "/out/**", "out/x/y", false, true },
	{ "/out/**", "outx/y", false, false },
	{ "**/secrets/**", "secrets/key.txt", false, true }, /* the old leak */
	{ "**/secrets/**", "a/b/secrets/c/d", false, true },
	{ "**/secrets/**", "secrets", true, false },
	{ "**", "", true, true },
	{ "**", "a/b", false, true },
	{ "**/**", "a", false, true },
	/* * and ? stay within one name */
	{ "/a/*.c", "a/x.c", false, true },
	{ "/a/*.c", "a/b/x.c", false, false },
	{ "/*", "a/b", false, true },
	{ "/*", "", true, false },
	{ "/a*b", "axxb", false, true },
	{ "/a**b", "a/x/b", false, false },
	{ "/?.txt", "a.txt", false, true },
	{ "/?.txt", "ab.txt", false, false },
	{ "/x*y*z", "xaybyz", false, true },
	{ "/x*y*z", "xaybz", false, true },
	{ "/x*y*z", "xazy", false, false },
	/* bracket expressions */
	{ "/[a-c].txt", "b.txt", false, true },
	{ "/[a-c].txt", "d.txt", false, false },
	{ "/[!x].txt", "y.txt", false, true },
	{ "/[!x].txt", "x.txt", false, false },
	{ "/[^x]y", "ay", false, true },
	{ "/[]]", "]", false, true },
	{ "[[:digit:]]*.log", "1a.log", false, true },
	{ "[[:digit:]]*.log", "a1.log", false, false },
	/* escapes */
	{ "/\\*.txt", "*.txt", false, true },
	{ "/\\*.txt", "a.txt", false, false },
	{ "\\!x", "d/!x", false, true },
	{ "\\#foo", "d/#foo", false, true },
	{ "/a\\?", "a?", false, true },
	{ "/a\\?", "ab", false, false },
	/* trailing slash: directories only (and what is below them) */
	{ "build/", "build", false, false },
	{ "build/", "build", true, true },
	{ "build/", "x/build/y.o", false, true },
	{ "build/", "x/build", false, false },
	{ "/a/*/", "a/f", false, false },
	{ "/a/*/", "a/d", true, true },
	{ "/a/*/", "a/d/f", false, true },
	/* case matters */
	{ "/A", "a", false, false },
};

static void test_patterns(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(pcases); i++) {
		const struct pcase *c = &pcases[i];
		struct pattern pat;
		const char *why = NULL;
		bool ok = pattern_compile(&pat, c->pattern, &why) == 0;
		bool got = ok && pattern_covers(&pat, c->path, c->is_dir);
		TAP_OK(ok && got == c->covers, "pattern '%s' %s '%s'%s", c->pattern,
		       c->covers ? "covers" : "does not cover", c->path, c->is_dir ? " (dir)" : "");
		if (ok)
			pattern_clear(&pat);
	}

	static const struct {
		const char *pattern, *why;
	} bad[] = {
		{ "", "empty pattern" },
		{ "/", "empty pattern" },
		{ "a//b", "empty name" },
		{ "../x", "not allowed" },
		{ "a/./b", "not allowed" },
		{ "a/..", "not allowed" },
		{ "foo\\", "trailing backslash" },
		{ "[abc", "unterminated" },
		{ "[[:foo:]]", "unknown character class" },
		{ "[z-a]", "reversed range" },
		{ "a\\/b", "cannot be escaped" },
		{ "!foo", "negation ('!') is not supported" },
		{ "!/a/", "negation ('!') is not supported" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct pattern pat;
		const char *why = "";
		int r = pattern_compile(&pat, bad[i].pattern, &why);
		TAP_OK(r == -EINVAL && strstr(why, bad[i].why), "pattern '%s' is refused: %s",
		       bad[i].pattern, why);
	}
	char *big = malloc(PATTERN_MAX_LEN + 2);
	memset(big, 'a', PATTERN_MAX_LEN + 1);
	big[PATTERN_MAX_LEN + 1] = '\0';
	struct pattern pat;
	const char *why = "";
	TAP_OK(pattern_compile(&pat, big, &why) == -EINVAL && strstr(why, "longer"),
	       "a pattern longer than 4096 bytes is refused");
	big[PATTERN_MAX_LEN] = '\0';
	TAP_OK(pattern_compile(&pat, big, &why) == 0, "a pattern of 4096 bytes is accepted");
	pattern_clear(&pat);
	/* a deep "**" pattern stays linear: no backtracking blow-up */
	for (int i = 0; i < PATTERN_MAX_LEN - 1; i += 3)
		memcpy(big + i, "**/", 3);
	big[PATTERN_MAX_LEN - 1] = 'z';
	big[PATTERN_MAX_LEN] = '\0';
	TAP_OK(pattern_compile(&pat, big, &why) == 0 && pattern_covers(&pat, "a/b/c/z", false) &&
		       !pattern_covers(&pat, "a/b/c/y", false),
	       "many '**' names match correctly");
	pattern_clear(&pat);
	free(big);

	/* more than 64 tokens: the multi-word NFA */
	char *lp = xstrdup("/");
	char *path_in = xstrdup(""), *path_short = xstrdup("");
	for (int i = 0; i < 70; i++) {
		char *t = xasprintf("%sd/**/", lp);
		free(lp);
		lp = t;
		t = xasprintf("%sd/x/", path_in);
		free(path_in);
		path_in = t;
		if (i < 69) {
			t = xasprintf("%sd/", path_short);
			free(path_short);
			path_short = t;
		}
	}
	char *lpz = xasprintf("%sz", lp), *pin = xasprintf("%sz", path_in),
	     *pshort = xasprintf("%sz", path_short);
	TAP_OK(pattern_compile(&pat, lpz, &why) == 0 && pat.ntok > 64, "a 141-token pattern compiles");
	TAP_OK(pattern_covers(&pat, pin, false), "a 141-token pattern covers a matching path");
	TAP_OK(!pattern_covers(&pat, pshort, false), "a 141-token pattern skips a short path");
	struct pattern_match pm;
	pattern_eval(&pat, "d/d/d", true, true, &pm);
	TAP_OK(!pm.covers && pm.descendant && !pm.all_children,
	       "a 141-token pattern could match below d/d/d");
	pattern_eval(&pat, "e", true, true, &pm);
	TAP_OK(!pm.covers && !pm.descendant, "a 141-token pattern matches nothing below e");
	pattern_clear(&pat);
	free(lpz);
	lpz = xasprintf("%s**", lp);
	TAP_OK(pattern_compile(&pat, lpz, &why) == 0, "a long pattern ending in '**' compiles");
	char *d70 = xasprintf("%sd", path_short);
	pattern_eval(&pat, d70, true, true, &pm);
	TAP_OK(!pm.covers && pm.all_children, "a long 'X/**' covers every child of X, not X");
	pattern_eval(&pat, path_short, true, true, &pm);
	TAP_OK(!pm.covers && !pm.all_children && pm.descendant,
	       "a long 'X/**' could match below X's parent");
	free(d70);
	pattern_clear(&pat);
	free(lp);
	free(lpz);
	free(pin);
	free(pshort);
	free(path_in);
	free(path_short);

	static const struct {
		const char *pattern;
		enum pattern_class klass;
		unsigned literal;
	} cls[] = {
		{ "/a/b", PATTERN_EXACT, 4 },
		{ ".env", PATTERN_EXACT, 4 },
		{ "a/", PATTERN_DIR, 2 },
		{ "*.c", PATTERN_GLOB, 2 },
		{ "/a/**", PATTERN_GLOB, 3 },
		{ "\\*", PATTERN_EXACT, 1 },
		{ "[ab]x", PATTERN_GLOB, 1 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cls); i++) {
		TAP_OK(pattern_compile(&pat, cls[i].pattern, &why) == 0 &&
			       pat.klass == cls[i].klass && pat.literal == cls[i].literal,
		       "pattern '%s': class %d, %u literal characters", cls[i].pattern,
		       cls[i].klass, cls[i].literal);
		pattern_clear(&pat);
	}
}

/* --- policies ------------------------------------------------------------ */

static struct policy *mk(const char *preset, const char *const *specs)
{
	struct policy *p = policy_new();
	struct af_err err = { 0 };
	if (preset && policy_add_preset(p, preset, &err) < 0) {
		printf("# preset %s: %s\n", preset, err.msg);
		abort();
	}
	for (; specs && *specs; specs++)
		if (policy_add_spec(p, *specs, "--rule", &err) < 0) {
			printf("# %s\n", err.msg);
			abort();
		}
	policy_finalize(p);
	return p;
}

/* "none", "view", "read", "write", or "trav" for a traversable none. */
static const char *lv(const struct policy *p, const char *path, bool is_dir)
{
	struct decision d;
	policy_decide(p, path, is_dir, &d);
	if (d.traversable)
		return d.level == LEVEL_NONE ? "trav" : "BAD-traversable";
	return level_name(d.level);
}

#define LV(p, path, dir, want)                                                   \
	TAP_STREQ(lv(p, path, dir), want, "%s: '%s'%s is %s", name, path, dir ? "/" : "", want)

static void test_precedence(void)
{
	const char *name;
	struct policy *p;

	name = "priority";
	p = mk(NULL, (const char *[]){ "**=write", "/a=none@1", "/b=none@-1", NULL });
	LV(p, "a", false, "none");
	LV(p, "b", false, "write");
	LV(p, "c", false, "write");
	policy_free(p);

	name = "class";
	p = mk(NULL, (const char *[]){ "/a/b=read", "/a/=none", "/a/*.c=write", "**=view", NULL });
	LV(p, "a/b", false, "read"); /* exact beats directory */
	LV(p, "a/x.c", false, "none"); /* directory beats glob */
	LV(p, "x.c", false, "view");
	policy_free(p);

	name = "literal";
	p = mk(NULL, (const char *[]){ "src/*.c=write", "*.c=read", NULL });
	LV(p, "src/x.c", false, "write");
	LV(p, "lib/x.c", false, "read");
	policy_free(p);

	name = "last given";
	p = mk(NULL, (const char *[]){ "/a=read", "/a=write", NULL });
	LV(p, "a", false, "write");
	policy_free(p);
	p = mk(NULL, (const char *[]){ "/a=write", "/a=read", NULL });
	LV(p, "a", false, "read");
	TAP_STREQ(rule_level(policy_rule_at(p, 0)) == LEVEL_READ ? "read" : "write", "read",
		  "last given: the later rule comes first in precedence order");
	policy_free(p);

	name = "no rule";
	p = mk(NULL, (const char *[]){ "/a=read", NULL });
	LV(p, "b", false, "none");
	struct decision d;
	policy_decide(p, "b", false, &d);
	TAP_OK(d.rule == NULL, "no rule: decision names no rule");
	policy_free(p);
}

static void test_traversable(void)
{
	const char *name;
	struct policy *p;

	name = "none parent";
	p = mk(NULL, (const char *[]){ "/secret/=none", "/secret/public.txt=read", NULL });
	LV(p, "secret", true, "trav");
	LV(p, "secret/public.txt", false, "read");
	LV(p, "secret/other.txt", false, "none");
	LV(p, "secret/sub", true, "none");
	LV(p, "", true, "trav");
	policy_free(p);

	name = "**/secrets/**";
	p = mk(NULL, (const char *[]){ "**=read", "**/secrets/**=none@1", NULL });
	LV(p, "secrets/key.txt", false, "none");
	LV(p, "a/b/secrets/c/d", false, "none");
	LV(p, "secrets", true, "read");
	LV(p, "secretsx/a", false, "read");
	policy_free(p);

	name = "deep none parent";
	p = mk(NULL, (const char *[]){ "/a/=none@5", "/a/b/c=read@5", NULL });
	LV(p, "a", true, "trav");
	LV(p, "a/b", true, "trav");
	LV(p, "a/b/c", false, "read");
	LV(p, "a/b/d", false, "none");
	LV(p, "a/x", true, "none");
	policy_free(p);

	name = "hidden by a higher rule";
	p = mk(NULL, (const char *[]){ "/a/=none@10", "/a/b=read", NULL });
	LV(p, "a", true, "none");
	LV(p, "a/b", false, "none");
	policy_free(p);

	name = "unanchored below a none dir";
	p = mk(NULL, (const char *[]){ "/a/=none", "*.md=read@1", NULL });
	LV(p, "a", true, "trav");
	LV(p, "a/x.md", false, "read");
	LV(p, "a/x.c", false, "none");
	LV(p, "a/d", true, "trav");
	policy_free(p);
	p = mk(NULL, (const char *[]){ "/a/=none", "*.md=read", NULL });
	LV(p, "a", true, "none");
	policy_free(p);

	name = "X/** decides the subtree";
	p = mk(NULL, (const char *[]){ "/a/**=none@5", "/a/b=read@1", NULL });
	LV(p, "a", true, "none");
	policy_free(p);
	p = mk(NULL, (const char *[]){ "/a/**=none@5", "/a/b=read@6", NULL });
	LV(p, "a", true, "trav");
	LV(p, "a/b", false, "read");
	policy_free(p);

	name = "root";
	p = mk(NULL, (const char *[]){ "**=none", "/a=read@1", NULL });
	LV(p, "", true, "trav");
	LV(p, "a", false, "read");
	policy_free(p);
	p = mk(NULL, (const char *[]){ "**=none", NULL });
	LV(p, "", true, "none");
	policy_free(p);
	p = mk(NULL, NULL);
	LV(p, "", true, "none");
	LV(p, "a", false, "none");
	policy_free(p);

	name = "a file is never traversable";
	p = mk(NULL, (const char *[]){ "/a=none", "/a/b=read@1", NULL });
	LV(p, "a", false, "none");
	policy_free(p);
}

static void test_agent_safe(void)
{
	const char *name = "agent-safe";
	struct policy *p = mk("agent-safe", NULL);

	LV(p, "", true, "read");
	LV(p, ".env", false, "none");
	LV(p, "a/.env", false, "none");
	LV(p, "a/b/c/.env.local", false, "none");
	LV(p, ".envdir/x", false, "none");
	LV(p, "secrets", true, "none");
	LV(p, "secrets/key.txt", false, "none");
	LV(p, "a/secrets", true, "none");
	LV(p, "a/b/c/secrets/d/e", false, "none");
	LV(p, "secrets", false, "read"); /* a file named secrets is no directory */
	LV(p, "server.key", false, "none");
	LV(p, "d/e/cert.pem", false, "none");
	LV(p, "a/credentials.json", false, "none");
	LV(p, ".git", true, "read");
	LV(p, ".git/HEAD", false, "read");
	LV(p, ".git/config", false, "none");
	LV(p, ".git/hooks", true, "none");
	LV(p, ".git/hooks/pre-commit", false, "none");
	LV(p, "sub/.git/config", false, "none");
	LV(p, ".git/modules/lib/config", false, "none");
	LV(p, ".git/modules/lib/hooks/x", false, "none");
	LV(p, "output", true, "read");
	LV(p, "output/x", false, "write");
	LV(p, "output/a/b", false, "write");
	LV(p, "tmp/x", false, "write");
	LV(p, "src/main.c", false, "read");
	LV(p, "output/.env", false, "none");
	struct decision d;
	policy_decide(p, "secrets/key.txt", false, &d);
	TAP_OK(d.rule && strcmp(rule_pattern(d.rule), "secrets/") == 0 &&
		       rule_priority(d.rule) == 100 &&
		       strcmp(rule_origin(d.rule), "preset agent-safe") == 0,
	       "agent-safe: secrets/key.txt decided by 'secrets/' @100 from the preset");
	policy_free(p);

	name = "agent-safe + plain user rule";
	p = mk("agent-safe", (const char *[]){ "/secrets/public.txt=read", "*.key=write", NULL });
	LV(p, "secrets/public.txt", false, "none");
	LV(p, "secrets", true, "none");
	LV(p, "a.key", false, "none");
	policy_free(p);

	name = "agent-safe + priority 100 rule";
	p = mk("agent-safe", (const char *[]){ "/secrets/public.txt=read@100", NULL });
	LV(p, "secrets/public.txt", false, "read");
	LV(p, "secrets", true, "trav");
	LV(p, "secrets/other", false, "none");
	policy_free(p);
}

/* Like lv(), for a path on a file system that may fold case. */
static const char *lvf(const struct policy *p, const char *path, bool is_dir)
{
	struct decision d;
	policy_decide_folded(p, path, is_dir, &d);
	if (d.traversable)
		return d.level == LEVEL_NONE ? "trav" : "BAD-traversable";
	return level_name(d.level);
}

#define LVF(p, path, dir, want)                                                  \
	TAP_STREQ(lvf(p, path, dir), want, "%s: folded '%s'%s is %s", name, path, \
		  dir ? "/" : "", want)

static void test_folded(void)
{
	const char *name = "folded agent-safe";
	struct policy *p = mk("agent-safe", NULL);

	LVF(p, ".ENV", false, "none");
	LVF(p, "SECRETS", true, "none");
	LVF(p, "Secrets/token.txt", false, "none");
	LVF(p, "server.KEY", false, "none");
	LVF(p, "Credentials.json", false, "none");
	LVF(p, ".GIT/Hooks/pre-commit", false, "none");
	LVF(p, "\xc5\xbf" "ecrets/x", false, "none");    /* LONG S */
	LVF(p, "server.\xe2\x84\xaa" "ey", false, "none"); /* KELVIN SIGN */
	LVF(p, "output/x", false, "write");
	LVF(p, "OUTPUT/x", false, "read"); /* not the write of output/ */
	LVF(p, "README.md", false, "read");
	LV(p, "Secrets/token.txt", false, "read"); /* byte for byte where nothing folds */
	policy_free(p);

	name = "folded: the more restrictive decision";
	p = mk(NULL, (const char *[]){ "**=write", "/Build/=read", "/build/=none", NULL });
	LVF(p, "Build/x", false, "none"); /* exact says read, folded none */
	LVF(p, "BUILD", true, "none");
	LVF(p, "src/x", false, "write");
	LV(p, "Build/x", false, "read");
	policy_free(p);

	name = "folded: rules written in capitals";
	p = mk(NULL, (const char *[]){ "**=read", "Makefile=none", "/Docs/[A-Z]*=none", NULL });
	LVF(p, "makefile", false, "none");
	LVF(p, "MAKEFILE", false, "none");
	LVF(p, "docs/readme", false, "none");
	LVF(p, "docs/1", false, "read");
	LV(p, "makefile", false, "read");
	policy_free(p);

	name = "folded: traversable";
	p = mk(NULL, (const char *[]){ "/a/=none", "/a/pub=read@1", "/A/PUB/x=none@2", NULL });
	LVF(p, "a", true, "trav");
	LVF(p, "a/pub", false, "read");
	LVF(p, "a/pub/y", false, "read");
	LVF(p, "a/pub/x", false, "none"); /* the capitals' rule */
	LV(p, "a/pub/x", false, "read");
	policy_free(p);
}

static void test_presets(void)
{
	static const struct {
		const char *preset, *path, *want;
	} cases[] = {
		{ "read-only", "a/b", "read" },
		{ "read-only", ".env", "read" },
		{ "full-access", ".env", "write" },
		{ "full-access", "x", "write" },
		{ "development", "src/x.c", "write" },
		{ "development", ".env", "none" },
		{ "development", "a/secrets/k", "none" },
		{ "view-only", "a/b", "view" },
		{ "agent-safe", "README", "read" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct policy *p = mk(cases[i].preset, NULL);
		const char *name = cases[i].preset;
		LV(p, cases[i].path, false, cases[i].want);
		policy_free(p);
	}

	struct preset_info *list = NULL;
	int n = preset_list(&list, NULL);
	int found = 0;
	for (int i = 0; i < n; i++)
		if (strcmp(list[i].source, "built-in") == 0 && list[i].description[0])
			found++;
	TAP_OK(n == 5 && found == 5, "preset list: five built-ins, each with a description");
	TAP_OK(n > 1 && strcmp(list[0].name, "agent-safe") == 0, "preset list is sorted by name");
	preset_list_free(list, n);

	/* user presets: added, and shadowing a built-in */
	char *dir = xasprintf("%s/agentfense/presets", tmpdir);
	char *cmd = xasprintf("mkdir -p '%s'", dir);
	TAP_OK(system(cmd) == 0, "user preset directory created");
	free(cmd);
	char *f = xasprintf("%s/mine.ini", dir);
	FILE *fp = fopen(f, "w");
	fputs("[preset]\ndescription = mine\n[rules]\n** = view\n/w/** = write\n", fp);
	fclose(fp);
	free(f);
	f = xasprintf("%s/read-only.ini", dir);
	fp = fopen(f, "w");
	fputs("[preset]\ndescription = shadowed\n[rules]\n** = none\n", fp);
	fclose(fp);
	free(f);
	setenv("XDG_CONFIG_HOME", tmpdir, 1);
	struct policy *p = mk("mine", NULL);
	const char *name = "user preset";
	LV(p, "w/x", false, "write");
	LV(p, "x", false, "view");
	policy_free(p);
	p = mk("read-only", NULL);
	LV(p, "x", false, "none");
	policy_free(p);
	n = preset_list(&list, NULL);
	bool mine = false, shadow = false;
	for (int i = 0; i < n; i++) {
		if (strcmp(list[i].name, "mine") == 0)
			mine = strstr(list[i].source, "mine.ini") != NULL;
		if (strcmp(list[i].name, "read-only") == 0)
			shadow = strcmp(list[i].description, "shadowed") == 0;
	}
	TAP_OK(n == 6 && mine && shadow, "preset list shows the user preset and the shadowing");
	preset_list_free(list, n);
	unsetenv("XDG_CONFIG_HOME");
	free(dir);
}

/* --- errors -------------------------------------------------------------- */

static void spec_err(const char *spec, const char *msg, const char *hint)
{
	const char *raw = spec;
	char shown[256];
	policy_quote(shown, sizeof(shown), spec); /* keep TAP lines whole */
	spec = shown;
	struct policy *p = policy_new();
	struct af_err err = { 0 };
	int r = policy_add_spec(p, raw, "--rule", &err);
	TAP_OK(r == -EINVAL && err.exit_code == AF_EXIT_USAGE, "rule '%s' is refused with exit 2",
	       spec);
	TAP_STREQ(err.msg, msg, "rule '%s': message", spec);
	if (hint)
		TAP_STREQ(err.hint, hint, "rule '%s': hint", spec);
	policy_free(p);
}

static void test_specs(void)
{
	spec_err("foo=wrtie", "invalid rule 'foo=wrtie': unknown level 'wrtie'",
		 "levels are none, view, read, write");
	spec_err("foo", "invalid rule 'foo': expected PATTERN=LEVEL[@PRIORITY]", NULL);
	spec_err("=read", "invalid rule '=read': empty pattern", NULL);
	spec_err("a=", "invalid rule 'a=': missing level", NULL);
	spec_err("a=read@x", "invalid rule 'a=read@x': invalid priority 'x'",
		 "a priority is an integer from -1000000 to 1000000");
	spec_err("a=read@99999999", "invalid rule 'a=read@99999999': invalid priority '99999999'",
		 NULL);
	spec_err("a=read@", "invalid rule 'a=read@': invalid priority ''", NULL);
	spec_err("../a=read", "invalid rule '../a=read': '.' and '..' are not allowed in a pattern",
		 NULL);
	spec_err("!.env=read",
		 "invalid rule '!.env=read': negation ('!') is not supported: give the path a rule "
		 "of its own (write '\\!' for a name starting with '!')",
		 NULL);
	spec_err("a\nb=rea\nd", "invalid rule 'a?b=rea?d': unknown level 'rea?d'", NULL);

	struct policy *p = policy_new();
	struct af_err err = { 0 };
	TAP_OK(policy_add_spec(p, " a b = READ @ -5 ", "--rule", &err) == 0,
	       "blanks around the parts and an upper-case level are accepted");
	TAP_OK(policy_add_spec(p, "x=y=write", "--rule", &err) == 0, "a pattern may hold '='");
	TAP_OK(policy_add_spec(p, "trail\\ =view", "--rule", &err) == 0,
	       "an escaped trailing blank is kept");
	policy_finalize(p);
	const struct rule *r = NULL;
	for (size_t i = 0; i < policy_rule_count(p); i++)
		if (rule_priority(policy_rule_at(p, i)) == -5)
			r = policy_rule_at(p, i);
	TAP_OK(r && strcmp(rule_pattern(r), "a b") == 0 && rule_level(r) == LEVEL_READ &&
		       strcmp(rule_origin(r), "--rule") == 0,
	       "rule ' a b = READ @ -5 ' is pattern 'a b', read, -5");
	const char *name = "specs";
	LV(p, "x=y", false, "write");
	LV(p, "trail ", false, "view");
	policy_free(p);

	p = policy_new();
	TAP_OK(policy_add(p, "ok", (enum level)7, 0, "t", &err) == -EINVAL,
	       "policy_add refuses a bad level");
	TAP_OK(policy_add(p, "ok", LEVEL_READ, 2000000, "t", &err) == -EINVAL,
	       "policy_add refuses an out-of-range priority");
	TAP_OK(policy_add(p, "a//b", LEVEL_READ, 0, "t", &err) == -EINVAL &&
		       strstr(err.msg, "invalid pattern 'a//b'"),
	       "policy_add names the bad pattern: %s", err.msg);
	policy_free(p);

	enum level l;
	TAP_OK(level_parse("Write", &l) == 0 && l == LEVEL_WRITE, "level 'Write' parses");
	TAP_OK(level_parse("rw", &l) == -EINVAL, "level 'rw' is refused");
	TAP_STREQ(level_name(LEVEL_VIEW), "view", "level_name(view)");

	p = policy_new();
	TAP_OK(policy_add_preset(p, "nope", &err) == -ENOENT && err.exit_code == AF_EXIT_USAGE,
	       "unknown preset: -ENOENT, exit 2");
	TAP_STREQ(err.msg, "unknown preset 'nope'", "unknown preset: message");
	TAP_OK(strstr(err.hint, "agent-safe") && strstr(err.hint, "view-only"),
	       "unknown preset: the hint lists the presets (%s)", err.hint);
	TAP_OK(policy_add_preset(p, "../x", &err) == -EINVAL && strstr(err.msg, "invalid preset name"),
	       "a preset name cannot be a path");
	policy_free(p);

	struct policy_options po = { 0 };
	policy_options_add(&po, POPT_PRESET, "read-only");
	policy_options_add(&po, POPT_RULE, "/a=write");
	policy_options_add(&po, POPT_PRESET, "view-only");
	TAP_OK(po.preset && strcmp(po.preset, "view-only") == 0 && po.n == 1,
	       "policy options: the last -p wins, rules are kept in order");
	p = policy_options_build(&po);
	name = "policy options";
	LV(p, "b", false, "view");
	LV(p, "a", false, "write");
	policy_free(p);
	policy_options_free(&po);
}

/* Write a policy file and add it; returns the error message or "". */
static const char *file_try(struct policy *p, const char *text, size_t len)
{
	static struct af_err err;
	char *path = xasprintf("%s/p.ini", tmpdir);
	FILE *fp = fopen(path, "w");
	fwrite(text, 1, len, fp);
	fclose(fp);
	memset(&err, 0, sizeof(err));
	if (policy_add_file(p, path, &err) == 0)
		err.msg[0] = '\0';
	free(path);
	return err.msg;
}

static void file_err(const char *text, const char *want)
{
	struct policy *p = policy_new();
	char *full = xasprintf("invalid policy '%s/p.ini' %s", tmpdir, want);
	TAP_STREQ(file_try(p, text, strlen(text)), full, "policy file error: %s", want);
	free(full);
	policy_free(p);
}

static void test_files(void)
{
	file_err("[rules]\n** = read\nfoo = rw\n", "line 3: unknown level 'rw'");
	file_err("; c\n[rule]\n** = read\n", "line 2: unknown section '[rule]'");
	file_err("x = read\n", "line 1: 'x' is outside any section");
	file_err("[rules]\n\njunk\n", "line 3: expected '[SECTION]' or 'KEY = VALUE'");
	file_err("[rules]\n[Bb]uild/ = none\n",
		 "line 2: a line starting with '[' must be a section header");
	file_err("[policy]\ncolour = red\n", "line 2: unknown key 'colour' in [policy]");
	file_err("[policy]\npreset = zzz\n", "line 2: unknown preset 'zzz'");
	file_err("[rules]\na = read @ 1e3\n", "line 2: invalid priority '1e3'");
	file_err("[rules]\na//b = read\n", "line 2: empty name in pattern (doubled '/')");
	file_err("[preset]\ndescription = x\n", "line 1: unknown section '[preset]'");
	char longline[400];
	memset(longline, 'a', sizeof(longline));
	memcpy(longline, "[rules]\n", 8);
	memcpy(longline + sizeof(longline) - 9, " = none\n", 9);
	longline[sizeof(longline) - 1] = '\0';
	struct policy *p = policy_new();
	const char *m = file_try(p, longline, strlen(longline));
	TAP_OK(strstr(m, "line 2: line longer than") != NULL, "an over-long line is refused: %s", m);
	TAP_OK(policy_rule_count(p) == 0, "an over-long line adds no rule");
	policy_free(p);
	p = policy_new();
	m = file_try(p, "[rules]\n** = read\0\n", 19);
	TAP_OK(strstr(m, "NUL byte on line 2") != NULL, "a NUL byte is refused: %s", m);
	policy_free(p);
	p = policy_new();
	struct af_err err = { 0 };
	TAP_OK(policy_add_file(p, "/nonexistent/p.ini", &err) == -ENOENT &&
		       strstr(err.msg, "cannot read policy '/nonexistent/p.ini'") &&
		       err.exit_code == AF_EXIT_USAGE,
	       "a missing policy file: %s", err.msg);
	policy_free(p);

	/* a good file: ':' in a pattern, inline comments, preset first */
	p = policy_new();
	const char *good = "# comment\n[rules]\n** = write\n"
			   "a:b = none ; no access\n"
			   "  /x = none @ 5\n"
			   "[policy]\ndescription = test\npreset = read-only\n";
	m = file_try(p, good, strlen(good));
	TAP_STREQ(m, "", "a good policy file loads");
	policy_finalize(p);
	const char *name = "policy file";
	LV(p, "a:b", false, "none");
	LV(p, "x", false, "none");
	LV(p, "y", false, "write"); /* the file's rule is given after its preset */
	struct decision d;
	policy_decide(p, "a:b", false, &d);
	char *origin = xasprintf("%s/p.ini:4", tmpdir);
	TAP_STREQ(d.rule ? rule_origin(d.rule) : NULL, origin, "policy file: origin FILE:LINE");
	free(origin);
	size_t n = policy_rule_count(p);
	TAP_OK(n == 4 && strcmp(rule_origin(policy_rule_at(p, n - 1)), "--rule") != 0,
	       "policy file: preset rule and file rules all present");
	policy_free(p);
}

int main(void)
{
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	unsetenv("XDG_CONFIG_HOME");
	setenv("HOME", tmpdir, 1); /* no user presets of the caller's */
	test_patterns();
	test_precedence();
	test_traversable();
	test_agent_safe();
	test_folded();
	test_presets();
	test_specs();
	test_files();
	char *cmd = xasprintf("rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		printf("# cannot remove %s\n", tmpdir);
	free(cmd);
	return tap_done();
}
