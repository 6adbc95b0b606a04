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
	po->items[po->n].origin = NULL;
	po->n++;
}

void policy_options_add_rule(struct policy_options *po, const char *spec, const char *origin)
{
	policy_options_add(po, POPT_RULE, spec);
	po->items[po->n - 1].origin = origin;
}

/* The preset (NULL: none), then the items; dies on bad input. */
static struct policy *build(const struct policy_options *po, const char *preset)
{
	struct policy *p = policy_new();
	struct af_err err = { 0 };

	if (preset && policy_add_preset(p, preset, &err) < 0)
		die_err(&err);
	for (int i = 0; i < po->n; i++) {
		const struct policy_opt *o = &po->items[i];
		int r;
		switch (o->kind) {
		case POPT_RULE:
			r = policy_add_spec(p, o->arg, o->origin ? o->origin : "--rule", &err);
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
	return p;
}

struct policy *policy_options_build(const struct policy_options *po)
{
	struct policy *p;
	bool files = false;

	for (int i = 0; i < po->n; i++)
		files |= po->items[i].kind == POPT_POLICY;
	const char *dflt = po->default_preset ? po->default_preset : DEFAULT_PRESET;
	if (po->preset || !files) {
		p = build(po, po->preset ? po->preset : dflt);
	} else {
		/* A policy file that names a preset chooses it instead of the
		 * default, as -p does: "preset = read-only" must not leave
		 * agent-safe's writable /output behind.  Files read twice
		 * when none does: they are small. */
		p = build(po, NULL);
		if (policy_preset_count(p) == 0) {
			policy_free(p);
			p = build(po, dflt);
		}
	}
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
