/* policy.h - the permission policy engine.
 *
 * A policy is an ordered set of rules (pattern, level, priority).  It is
 * built once (presets, policy files, --rule), then frozen with
 * policy_finalize() and after that is immutable: any number of threads
 * and views may query one policy at once.  No global state.
 *
 * Paths given to queries are relative to the project root, without a
 * leading slash, components separated by single '/', "" for the root
 * itself ("src/main.c", "a/b/secrets").  Semantics are documented in
 * agentfense-policy(5). */
#ifndef AF_POLICY_H
#define AF_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "common/util.h"

enum level {
	LEVEL_NONE = 0,  /* does not exist */
	LEVEL_VIEW = 1,  /* listed, stat works, content unreadable */
	LEVEL_READ = 2,  /* content readable, unchangeable */
	LEVEL_WRITE = 3, /* everything */
};

/* Default priority of a rule given without @PRIORITY. */
#define POLICY_DEFAULT_PRIORITY 0

struct policy;
struct rule;

/* The outcome of a query. */
struct decision {
	enum level level;        /* level of the path itself */
	bool traversable;        /* level is NONE, but a descendant is visible:
	                            the directory is shown and listable, only
	                            its visible children appear (treat as VIEW
	                            for lookup/getattr/readdir, NONE otherwise) */
	const struct rule *rule; /* rule that decided, NULL if none matched */
};

/* Returns a new empty policy (never NULL). */
struct policy *policy_new(void);
void policy_free(struct policy *p);

/* Add one rule.  origin says where it came from, for explain ("--rule",
 * "preset agent-safe", "policy.ini:12"); it is copied.
 * Returns 0, or -EINVAL with *err filled (a usage error). */
int policy_add(struct policy *p, const char *pattern, enum level level, int priority,
	       const char *origin, struct af_err *err);

/* Parse and add "PATTERN=LEVEL[@PRIORITY]" (split at the LAST '=').
 * Returns 0, or -EINVAL with *err filled (a usage error). */
int policy_add_spec(struct policy *p, const char *spec, const char *origin, struct af_err *err);

/* Add the rules of a preset: a user preset
 * ($XDG_CONFIG_HOME/agentfense/presets/NAME.ini, else
 * ~/.config/agentfense/presets/NAME.ini) shadows a built-in one.
 * Returns 0, -ENOENT (unknown preset, a usage error, hint lists presets),
 * or -EINVAL (malformed file). */
int policy_add_preset(struct policy *p, const char *name, struct af_err *err);

/* The presets added, in order (policy_add_preset notes each): how many,
 * and the name and source ("built-in" or a user preset file's path) of
 * the i-th, so a caller can tell whether a policy file chose one and
 * whether a user preset shadowed a built-in one. */
void policy_note_preset(struct policy *p, const char *name, const char *source);
unsigned policy_preset_count(const struct policy *p);
const char *policy_preset_name(const struct policy *p, unsigned i);
const char *policy_preset_source(const struct policy *p, unsigned i);
/* True if a preset of that name is built into agentfense. */
bool preset_is_builtin(const char *name);

/* Add rules from an INI policy file (format in agentfense-policy(5)).
 * Returns 0 or -errno with *err filled naming the file and line. */
int policy_add_file(struct policy *p, const char *path, struct af_err *err);

/* The preset a policy starts from when none is named. */
#define POLICY_DEFAULT_PRESET "agent-safe"

/* One source of rules for policy_build(), applied in order. */
enum policy_src_kind {
	POLICY_SRC_SPEC, /* arg: "PATTERN=LEVEL[@PRIORITY]" (--rule) */
	POLICY_SRC_FILE, /* arg: the path of a policy file (--policy) */
	POLICY_SRC_RULE, /* arg: the pattern, with level and priority */
};
struct policy_src {
	enum policy_src_kind kind;
	const char *arg;
	enum level level;   /* RULE */
	int priority;       /* RULE */
	const char *origin; /* SPEC and RULE: where it came from ("--rule") */
};

/* Build a finalized policy: the preset, then the sources.  Without a
 * preset, a policy file that names one chooses it (as -p would), else
 * POLICY_DEFAULT_PRESET applies.  Returns 0 with *out, or -errno with
 * *err filled (an error in a source is a usage error). */
int policy_build(const char *preset, const struct policy_src *src, size_t n,
		 struct policy **out, struct af_err *err);

/* Freeze: sort rules by precedence.  Must be called once, before any
 * query.  Returns 0. */
int policy_finalize(struct policy *p);

/* Decide the level of path (see above for the path form).  is_dir says
 * whether the path is a directory (patterns with a trailing '/' only
 * match directories).  Thread-safe on a finalized policy; never fails. */
void policy_decide(const struct policy *p, const char *path, bool is_dir, struct decision *out);

/* The decision for path where the file system may resolve names without
 * regard to case (casefold.h): the more restrictive of policy_decide()
 * and the decision for the folded path (casefold_dup) under the rules'
 * folded patterns, so "SECRETS/x" gets what a rule for "secrets/" says
 * wherever the two may be one entry.  Thread-safe; never fails. */
void policy_decide_folded(const struct policy *p, const char *path, bool is_dir,
			  struct decision *out);

/* Number of rules, and the i-th rule in precedence order (highest first). */
size_t policy_rule_count(const struct policy *p);
const struct rule *policy_rule_at(const struct policy *p, size_t i);

const char *rule_pattern(const struct rule *r);
enum level rule_level(const struct rule *r);
int rule_priority(const struct rule *r);
const char *rule_origin(const struct rule *r);

/* "none", "view", "read", "write". */
const char *level_name(enum level l);
/* Parse a level name; returns 0 or -EINVAL. */
int level_parse(const char *s, enum level *out);

/* Presets: built-ins (compiled in from the presets directory) and user ones. */
struct preset_info {
	char *name;
	char *description;
	char *source; /* "built-in" or the file path */
};
/* Fill *out with every known preset, sorted by name, user presets
 * shadowing built-ins.  Returns the count (>= 0) or -errno.  Free with
 * preset_list_free(). */
int preset_list(struct preset_info **out, struct af_err *err);
void preset_list_free(struct preset_info *list, int n);

/* --- for the policy modules themselves (policy.c, policyfile.c, preset.c)
 * and their tests; other modules use the functions above. */

/* Add the rule pattern = value, value being "LEVEL[@PRIORITY]" (blanks
 * around the parts allowed).  On error err->msg holds the bare reason
 * ("unknown level 'rw'"), which the caller prefixes with its context.
 * Returns 0 or -EINVAL.  On any failure of the functions above the
 * policy may hold part of the rules: throw it away. */
int policy_add_value(struct policy *p, const char *pattern, const char *value,
		     const char *origin, struct af_err *err);

/* Parse INI text (a policy file when is_preset is false, else a preset)
 * and add its rules.  label names the source in messages and origins
 * ("p.ini", "agent-safe").  *description (may be NULL) receives the
 * description, or NULL.  Returns 0 or -errno with *err filled. */
int policy_parse_ini(struct policy *p, const char *text, const char *label, bool is_preset,
		     char **description, struct af_err *err);

/* Read a whole small text file (at most max bytes, no NUL byte); kind
 * ("policy", "preset") names it in messages.
 * Returns 0 or -errno with *err filled (a usage error). */
int policy_read_file(const char *path, const char *kind, size_t max, char **out,
		     struct af_err *err);

/* Copy s into buf (size n) for an error message: control characters
 * become '?', long strings are cut with "...".  Returns buf. */
const char *policy_quote(char *buf, size_t n, const char *s);

/* The preset named name: its INI text and source ("built-in" or the
 * file path), both allocated.  Returns 0, -ENOENT (unknown, err lists
 * the presets) or -errno. */
int preset_load(const char *name, char **text, char **source, struct af_err *err);

#endif
