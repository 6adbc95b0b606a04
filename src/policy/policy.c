/* policy.c - rules, their precedence, and the per-path decision.
 *
 * Rules are compiled when added (pattern.c) and sorted once by
 * policy_finalize() into their total precedence order.  A decision then
 * walks that order and stops at the first rule covering the path, so
 * policy_decide() costs O(R * n * t) for R rules, n names in the path
 * and t tokens per pattern (t is 2-4 for ordinary patterns), allocates
 * nothing and takes no lock.  Only a directory that resolves to none
 * pays for a second walk, bounded by the same figure, to find out
 * whether it is traversable. */
#include "policy/policy.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/casefold.h"
#include "policy/pattern.h"

#define PRIORITY_MIN (-1000000)
#define PRIORITY_MAX 1000000
#define LEVELS_HINT "levels are none, view, read, write"

struct rule {
	struct pattern pat;
	struct pattern fpat; /* pat case-folded (casefold_dup), if has_fpat */
	bool has_fpat;
	char *pattern;
	char *origin;
	enum level level;
	int priority;
	unsigned seq; /* order of addition: the last given wins a tie */
};

struct policy {
	struct rule **rules;
	size_t n, cap;
	unsigned seq;
	bool finalized;
	bool any_visible; /* some rule grants view or more */
	/* the presets added, by -p or a policy file, and where each came
	 * from ("built-in" or a user preset's path) */
	char **preset_names, **preset_sources;
	unsigned presets;
};

static const char *const level_names[] = { "none", "view", "read", "write" };

const char *level_name(enum level l)
{
	if ((unsigned)l < ARRAY_SIZE(level_names))
		return level_names[l];
	return "?";
}

int level_parse(const char *s, enum level *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(level_names); i++)
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (enum level)i;
			return 0;
		}
	return -EINVAL;
}

const char *policy_quote(char *buf, size_t n, const char *s)
{
	size_t k = 0, limit = n > 4 ? n - 4 : 0;
	for (; *s && k < limit; s++)
		buf[k++] = ((unsigned char)*s < ' ' || *s == 0x7f) ? '?' : *s;
	if (*s && n >= 4) {
		memcpy(buf + k, "...", 3);
		k += 3;
	}
	if (n)
		buf[k < n ? k : n - 1] = '\0';
	return buf;
}

struct policy *policy_new(void)
{
	return xcalloc(1, sizeof(struct policy));
}

static void rule_free(struct rule *r)
{
	if (!r)
		return;
	pattern_clear(&r->pat);
	if (r->has_fpat)
		pattern_clear(&r->fpat);
	free(r->pattern);
	free(r->origin);
	free(r);
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++)
		rule_free(p->rules[i]);
	free(p->rules);
	for (unsigned i = 0; i < p->presets; i++) {
		free(p->preset_names[i]);
		free(p->preset_sources[i]);
	}
	free(p->preset_names);
	free(p->preset_sources);
	free(p);
}

/* Add a rule; on a bad pattern *why gets the reason.  Returns 0 or -EINVAL. */
static int rule_add(struct policy *p, const char *pattern, enum level level, int priority,
		    const char *origin, const char **why)
{
	if (p->finalized) {
		*why = "the policy is already finalized";
		return -EINVAL;
	}
	if ((unsigned)level > LEVEL_WRITE) {
		*why = "unknown level";
		return -EINVAL;
	}
	if (priority < PRIORITY_MIN || priority > PRIORITY_MAX) {
		*why = "priority out of range (-1000000 to 1000000)";
		return -EINVAL;
	}
	struct rule *r = xcalloc(1, sizeof(*r));
	int ret = pattern_compile(&r->pat, pattern, why);
	if (ret < 0) {
		free(r);
		return ret;
	}
	/* for names on case-insensitive file systems: a folded pattern that
	 * does not compile (a range turned backwards) matches as written */
	autofree char *folded = casefold_dup(pattern);
	const char *fwhy;
	if (strcmp(folded, pattern) != 0 && pattern_compile(&r->fpat, folded, &fwhy) == 0)
		r->has_fpat = true;
	r->pattern = xstrdup(pattern);
	r->origin = xstrdup(origin ? origin : "");
	r->level = level;
	r->priority = priority;
	r->seq = p->seq++;
	if (p->n == p->cap) {
		p->cap = p->cap ? 2 * p->cap : 16;
		p->rules = xrealloc(p->rules, p->cap * sizeof(*p->rules));
	}
	p->rules[p->n++] = r;
	return 0;
}

int policy_add(struct policy *p, const char *pattern, enum level level, int priority,
	       const char *origin, struct af_err *err)
{
	const char *why = NULL;
	char q[256];
	if (rule_add(p, pattern, level, priority, origin, &why) < 0)
		return af_err_usage(err, EINVAL, "invalid pattern '%s': %s",
				    policy_quote(q, sizeof(q), pattern), why);
	return 0;
}

/* A copy of s[0..n) without surrounding blanks.  As in gitignore a
 * trailing blank is kept when escaped with '\'. */
static char *trim_dup(const char *s, size_t n)
{
	while (n && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) {
		size_t bs = 0;
		while (bs + 1 < n && s[n - 2 - bs] == '\\')
			bs++;
		if (bs % 2)
			break;
		n--;
	}
	return xstrndup(s, n);
}

int policy_add_value(struct policy *p, const char *pattern, const char *value,
		     const char *origin, struct af_err *err)
{
	char q[256];
	autofree char *pat = trim_dup(pattern, strlen(pattern));
	const char *at = strchr(value, '@');
	autofree char *lvl = trim_dup(value, at ? (size_t)(at - value) : strlen(value));
	enum level level;
	long prio = POLICY_DEFAULT_PRIORITY;

	if (!*lvl) {
		af_err_usage(err, EINVAL, "missing level");
		af_err_hint(err, LEVELS_HINT);
		return -EINVAL;
	}
	if (level_parse(lvl, &level) < 0) {
		af_err_usage(err, EINVAL, "unknown level '%s'", policy_quote(q, sizeof(q), lvl));
		af_err_hint(err, LEVELS_HINT);
		return -EINVAL;
	}
	if (at) {
		autofree char *num = trim_dup(at + 1, strlen(at + 1));
		char *end;
		errno = 0;
		prio = strtol(num, &end, 10);
		if (!*num || *end || errno || prio < PRIORITY_MIN || prio > PRIORITY_MAX) {
			af_err_usage(err, EINVAL, "invalid priority '%s'",
				     policy_quote(q, sizeof(q), num));
			af_err_hint(err, "a priority is an integer from %d to %d", PRIORITY_MIN,
				    PRIORITY_MAX);
			return -EINVAL;
		}
	}
	const char *why = NULL;
	if (rule_add(p, pat, level, (int)prio, origin, &why) < 0) {
		af_err_usage(err, EINVAL, "%s", why);
		if (strstr(why, "empty pattern"))
			af_err_hint(err, "write PATTERN=LEVEL[@PRIORITY], e.g. '/output/**=write'");
		return -EINVAL;
	}
	return 0;
}

int policy_add_spec(struct policy *p, const char *spec, const char *origin, struct af_err *err)
{
	char q[256];
	const char *eq = strrchr(spec, '=');
	if (!eq) {
		af_err_usage(err, EINVAL, "invalid rule '%s': expected PATTERN=LEVEL[@PRIORITY]",
			     policy_quote(q, sizeof(q), spec));
		af_err_hint(err, "for example --rule '/output/**=write' or --rule '*.log=none@10'");
		return -EINVAL;
	}
	autofree char *pattern = xstrndup(spec, (size_t)(eq - spec));
	struct af_err e = { 0 };
	if (policy_add_value(p, pattern, eq + 1, origin, &e) < 0) {
		af_err_usage(err, EINVAL, "invalid rule '%s': %s", policy_quote(q, sizeof(q), spec),
			     e.msg);
		if (err)
			memcpy(err->hint, e.hint, sizeof(err->hint));
		return -EINVAL;
	}
	return 0;
}

/* Total precedence order: priority, then class (exact > directory >
 * glob), then literal characters, then the later rule first. */
static int rule_cmp(const void *a, const void *b)
{
	const struct rule *x = *(struct rule *const *)a, *y = *(struct rule *const *)b;
	if (x->priority != y->priority)
		return x->priority > y->priority ? -1 : 1;
	if (x->pat.klass != y->pat.klass)
		return x->pat.klass > y->pat.klass ? -1 : 1;
	if (x->pat.literal != y->pat.literal)
		return x->pat.literal > y->pat.literal ? -1 : 1;
	return x->seq > y->seq ? -1 : x->seq < y->seq;
}

int policy_finalize(struct policy *p)
{
	if (p->n > 1)
		qsort(p->rules, p->n, sizeof(*p->rules), rule_cmp);
	p->any_visible = false;
	for (size_t i = 0; i < p->n; i++)
		if (p->rules[i]->level >= LEVEL_VIEW)
			p->any_visible = true;
	p->finalized = true;
	return 0;
}

static const struct pattern *rule_pat(const struct rule *r, bool folded)
{
	return folded && r->has_fpat ? &r->fpat : &r->pat;
}

/* The decision for path, with the rules' folded patterns if folded. */
static void decide(const struct policy *p, const char *path, bool is_dir, bool folded,
		   struct decision *out)
{
	size_t d;

	while (*path == '/')
		path++;
	if (!*path)
		is_dir = true; /* the root */
	out->level = LEVEL_NONE;
	out->traversable = false;
	out->rule = NULL;
	for (d = 0; d < p->n; d++)
		if (pattern_covers(rule_pat(p->rules[d], folded), path, is_dir))
			break;
	if (d < p->n) {
		out->rule = p->rules[d];
		out->level = p->rules[d]->level;
	}
	if (out->level != LEVEL_NONE || !is_dir)
		return;
	if (!*path) {
		/* the root always shows when anything is visible */
		out->traversable = p->any_visible;
		return;
	}
	/* A hidden directory is traversable when a visible rule could
	 * match something below it before (in precedence order) the first
	 * rule that decides its whole subtree: a rule covering the
	 * directory (at the latest, the deciding rule d) or every child of
	 * it ("X/" followed by "**"). */
	for (size_t i = 0; i <= d && i < p->n; i++) {
		const struct rule *r = p->rules[i];
		struct pattern_match m;
		pattern_eval(rule_pat(r, folded), path, true, true, &m);
		if (r->level >= LEVEL_VIEW && m.descendant) {
			out->traversable = true;
			return;
		}
		if (m.covers || m.all_children)
			return;
	}
}

void policy_decide(const struct policy *p, const char *path, bool is_dir, struct decision *out)
{
	decide(p, path, is_dir, false, out);
}

/* none < none but traversable < view < read < write */
static int rank(const struct decision *d)
{
	return 2 * (int)d->level + (d->level == LEVEL_NONE && d->traversable);
}

void policy_decide_folded(const struct policy *p, const char *path, bool is_dir,
			  struct decision *out)
{
	struct decision f;
	decide(p, path, is_dir, false, out);
	autofree char *folded = casefold_dup(path);
	decide(p, folded, is_dir, true, &f);
	if (rank(&f) < rank(out))
		*out = f;
}

void policy_note_preset(struct policy *p, const char *name, const char *source)
{
	p->preset_names = xrealloc(p->preset_names, (p->presets + 1) * sizeof(char *));
	p->preset_sources = xrealloc(p->preset_sources, (p->presets + 1) * sizeof(char *));
	p->preset_names[p->presets] = xstrdup(name);
	p->preset_sources[p->presets] = xstrdup(source);
	p->presets++;
}

unsigned policy_preset_count(const struct policy *p)
{
	return p->presets;
}

const char *policy_preset_name(const struct policy *p, unsigned i)
{
	return p->preset_names[i];
}

const char *policy_preset_source(const struct policy *p, unsigned i)
{
	return p->preset_sources[i];
}

size_t policy_rule_count(const struct policy *p)
{
	return p->n;
}

const struct rule *policy_rule_at(const struct policy *p, size_t i)
{
	return i < p->n ? p->rules[i] : NULL;
}

const char *rule_pattern(const struct rule *r)
{
	return r->pattern;
}

enum level rule_level(const struct rule *r)
{
	return r->level;
}

int rule_priority(const struct rule *r)
{
	return r->priority;
}

const char *rule_origin(const struct rule *r)
{
	return r->origin;
}
