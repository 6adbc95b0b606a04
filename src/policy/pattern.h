/* pattern.h - gitignore-style path patterns, compiled once, matched
 * without allocation.
 *
 * A pattern is compiled into a sequence of segment tokens: a literal
 * name, a glob within one name (* ? [...] and \ escapes), "any one name",
 * or "**" (zero or more whole names).  A slash-less pattern gets an
 * implicit leading "**" (it matches a name at any depth); a trailing
 * "**" name means "one or more names below" (it covers what is below a
 * directory, not the directory itself).  Matching runs the token
 * sequence as a small NFA over the path's names, one bit per token.
 *
 * Paths are in the policy form: relative to the project root, names
 * separated by single '/', "" for the root (see policy.h). */
#ifndef AF_PATTERN_H
#define AF_PATTERN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest pattern accepted, in bytes. */
#define PATTERN_MAX_LEN 4096

/* Specificity class, higher is more specific (see agentfense-policy(5)). */
enum pattern_class {
	PATTERN_GLOB = 0,  /* has a wildcard */
	PATTERN_DIR = 1,   /* no wildcard, trailing '/' */
	PATTERN_EXACT = 2, /* no wildcard, no trailing '/' */
};

struct pattern_tok;

struct pattern {
	struct pattern_tok *tok; /* owned */
	size_t ntok;
	char *strings;           /* owned: the tokens' texts */
	bool dir_only;           /* trailing '/': matches directories only */
	enum pattern_class klass;
	unsigned literal;        /* count of non-wildcard characters */
	uint64_t star_mask;      /* patterns of < 64 tokens: the "**" tokens */
	uint64_t any_mask;       /* ... and the tokens matching any one name */
};

/* Compile text into *pat.  Returns 0, or -EINVAL with *why set to a
 * static one-line reason ("empty pattern", "'..' is not allowed", ...). */
int pattern_compile(struct pattern *pat, const char *text, const char **why);
void pattern_clear(struct pattern *pat);

/* What one pattern says about one path. */
struct pattern_match {
	bool covers;       /* matches the path itself or one of its ancestors */
	bool descendant;   /* could match some path strictly below it */
	bool all_children; /* matches every child of it (so covers the subtree) */
};

/* Evaluate pat against path.  is_dir applies to the path itself.  With
 * below == false only .covers is computed (the cheap, common query).
 * O(n * t) for n names in path and t tokens, no allocation; globs inside
 * one name cost O(len * glob length) in the worst case. */
void pattern_eval(const struct pattern *pat, const char *path, bool is_dir, bool below,
		  struct pattern_match *out);

/* Shorthand for pattern_eval(...).covers. */
bool pattern_covers(const struct pattern *pat, const char *path, bool is_dir);

#endif
