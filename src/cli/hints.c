/* hints.c - "did you mean" for the subcommands' option parsers. */
#include <getopt.h>
#include <string.h>

#include "cli/cli.h"
#include "common/suggest.h"

const char *suggest_option(const char *arg, const struct option *longopts)
{
	const char *names[64];
	size_t n = 0;

	if (strncmp(arg, "--", 2) != 0)
		return NULL;
	autofree char *typed = xstrndup(arg + 2, strcspn(arg + 2, "="));
	for (const struct option *o = longopts; o->name && n < ARRAY_SIZE(names); o++)
		names[n++] = o->name;
	return suggest_name(typed, names, n);
}

bool is_option_of(const char *arg, const struct option *longopts, const char *shorts)
{
	if (arg[0] != '-' || arg[1] == '\0')
		return false;
	if (arg[1] != '-')
		return arg[1] != ':' && strchr(shorts, arg[1]) != NULL;
	size_t len = strcspn(arg + 2, "=");
	for (const struct option *o = longopts; o->name; o++)
		if (len && strlen(o->name) == len && strncmp(o->name, arg + 2, len) == 0)
			return true;
	return false;
}

void hint_unknown_option(const char *arg, const struct option *longopts)
{
	const char *s = suggest_option(arg, longopts);
	if (s)
		hint_msg("did you mean '--%s'?", s);
}
