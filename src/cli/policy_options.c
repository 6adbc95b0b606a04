/* policy_options.c - the -p/-r/--policy options shared by the
 * subcommands that take a policy, and the policy they build. */
#include <string.h>

#include "cli/cli.h"

#define DEFAULT_PRESET "agent-safe"

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
	struct policy *p = policy_new();
	struct af_err err = { 0 };
	const char *preset = po->preset ? po->preset : DEFAULT_PRESET;

	if (policy_add_preset(p, preset, &err) < 0)
		die_err(&err);
	for (int i = 0; i < po->n; i++) {
		const struct policy_opt *o = &po->items[i];
		int r;
		switch (o->kind) {
		case POPT_RULE:
			r = policy_add_spec(p, o->arg, "--rule", &err);
			break;
		case POPT_POLICY:
			r = policy_add_file(p, o->arg, &err);
			break;
		case POPT_PRESET:
		default:
			r = 0;
			break;
		}
		if (r < 0) {
			err.exit_code = AF_EXIT_USAGE;
			die_err(&err);
		}
	}
	policy_finalize(p);
	return p;
}

void policy_options_free(struct policy_options *po)
{
	free(po->items);
	po->items = NULL;
	po->n = 0;
	po->preset = NULL;
}
