/* policy_options.c - the -p/-r/--policy options shared by the
 * subcommands that take a policy, and the policy they build. */
#include <string.h>

#include "cli/cli.h"

void policy_options_add(struct policy_options *po, int kind, const char *arg)
{
	if (kind == POPT_PRESET) {
		po->preset = arg; /* the last -p wins */
		return;
	}
	po->items = xrealloc(po->items, (size_t)(po->n + 1) * sizeof(*po->items));
	po->items[po->n].kind = kind == POPT_RULE ? POPT_RULE : POPT_POLICY;
	po->items[po->n].arg = arg;
	po->n++;
}

struct policy *policy_options_build(const struct policy_options *po)
{
	struct policy *p;
	struct af_err err = { 0 };
	struct policy_src *srcs = xcalloc((size_t)po->n + 1, sizeof(*srcs));

	for (int i = 0; i < po->n; i++)
		srcs[i] = (struct policy_src){
			.kind = po->items[i].kind == POPT_RULE ? POLICY_SRC_SPEC : POLICY_SRC_FILE,
			.arg = po->items[i].arg,
			.origin = "--rule",
		};
	int r = policy_build(po->preset, srcs, (size_t)po->n, &p, &err);
	free(srcs);
	if (r < 0)
		die_err(&err);
	if (po->announce) {
		/* a user file in place of a built-in preset: say it once */
		for (unsigned i = 0; i < policy_preset_count(p); i++) {
			const char *name = policy_preset_name(p, i);
			const char *src = policy_preset_source(p, i);
			bool seen = false;
			for (unsigned j = 0; j < i; j++)
				seen |= strcmp(policy_preset_name(p, j), name) == 0;
			if (!seen && strcmp(src, "built-in") != 0 && preset_is_builtin(name))
				error_msg("using the user preset '%s' from '%s' in place of the built-in "
					  "one", name, src);
		}
	}
	return p;
}

void policy_options_free(struct policy_options *po)
{
	free(po->items);
	po->items = NULL;
	po->n = 0;
	po->preset = NULL;
}
