/* build.c - a policy from a preset and rule sources, as run and serve
 * make one: errors come back, nothing exits. */
#include "policy/policy.h"

/* The preset (NULL: none), then the sources.  Returns 0 with *out, or
 * -errno with *err filled. */
static int build(const char *preset, const struct policy_src *src, size_t n,
		 struct policy **out, struct af_err *err)
{
	struct policy *p = policy_new();
	int r = preset ? policy_add_preset(p, preset, err) : 0;
	for (size_t i = 0; r == 0 && i < n; i++) {
		const struct policy_src *s = &src[i];
		switch (s->kind) {
		case POLICY_SRC_SPEC:
			r = policy_add_spec(p, s->arg, s->origin, err);
			break;
		case POLICY_SRC_FILE:
			r = policy_add_file(p, s->arg, err);
			break;
		case POLICY_SRC_RULE:
			r = policy_add(p, s->arg, s->level, s->priority, s->origin, err);
			break;
		}
		if (r < 0)
			err->exit_code = AF_EXIT_USAGE;
	}
	if (r < 0) {
		policy_free(p);
		return r;
	}
	*out = p;
	return 0;
}

int policy_build(const char *preset, const struct policy_src *src, size_t n,
		 struct policy **out, struct af_err *err)
{
	struct policy *p;
	bool files = false;
	int r;

	for (size_t i = 0; i < n; i++)
		files |= src[i].kind == POLICY_SRC_FILE;
	if (preset || !files) {
		r = build(preset ? preset : POLICY_DEFAULT_PRESET, src, n, &p, err);
	} else {
		/* A policy file that names a preset chooses it instead of the
		 * default, as -p does: "preset = read-only" must not leave
		 * agent-safe's writable /output behind.  Files read twice
		 * when none does: they are small. */
		r = build(NULL, src, n, &p, err);
		if (r == 0 && policy_preset_count(p) == 0) {
			policy_free(p);
			r = build(POLICY_DEFAULT_PRESET, src, n, &p, err);
		}
	}
	if (r < 0)
		return r;
	policy_finalize(p);
	*out = p;
	return 0;
}
