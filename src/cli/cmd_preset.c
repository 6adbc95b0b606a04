/* cmd_preset.c - agentfense preset list | show NAME [--json] */
#include <cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/suggest.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: agentfense preset list [--json]\n"
		   "   or: agentfense preset show [--json] NAME\n\n"
		   "List the permission presets (built-in ones and the user's own in\n"
		   "$XDG_CONFIG_HOME/agentfense/presets/NAME.ini), or show the rules of one\n"
		   "in precedence order.  See agentfense-policy(5).\n\n"
		   "options:\n"
		   "  -h, --help    show this help\n"
		   "      --json    print JSON for tools\n");
}

/* Print s with control characters shown as '?'. */
static void put_safe(const char *s, int width)
{
	int n = 0;
	for (; *s; s++, n++)
		putchar((unsigned char)*s < ' ' || *s == 0x7f ? '?' : *s);
	for (; n < width; n++)
		putchar(' ');
}

static void json_print(cJSON *j)
{
	char *s = j ? cJSON_Print(j) : NULL;
	if (!s)
		die(AF_EXIT_FAILURE, "cannot format JSON: out of memory");
	printf("%s\n", s);
	cJSON_free(s);
	cJSON_Delete(j);
}

static int preset_list_cmd(bool json)
{
	struct af_err err = { 0 };
	struct preset_info *list = NULL;
	int n = preset_list(&list, &err);
	if (n < 0)
		die_err(&err);
	if (json) {
		cJSON *arr = cJSON_CreateArray();
		for (int i = 0; i < n; i++) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "name", list[i].name);
			cJSON_AddStringToObject(o, "source", list[i].source);
			cJSON_AddStringToObject(o, "description", list[i].description);
			cJSON_AddItemToArray(arr, o);
		}
		json_print(arr);
	} else {
		int wn = 4, ws = 6;
		for (int i = 0; i < n; i++) {
			int a = (int)strlen(list[i].name), b = (int)strlen(list[i].source);
			wn = a > wn ? a : wn;
			ws = b > ws ? b : ws;
		}
		printf("%-*s  %-*s  %s\n", wn, "NAME", ws, "SOURCE", "DESCRIPTION");
		for (int i = 0; i < n; i++) {
			put_safe(list[i].name, wn);
			fputs("  ", stdout);
			put_safe(list[i].source, ws);
			fputs("  ", stdout);
			put_safe(list[i].description, 0);
			putchar('\n');
		}
	}
	preset_list_free(list, n);
	return 0;
}

static int preset_show_cmd(const char *name, bool json)
{
	struct af_err err = { 0 };
	struct policy *p = policy_new();
	if (policy_add_preset(p, name, &err) < 0)
		die_err(&err);
	policy_finalize(p);

	/* description and source come from the same lookup the list uses */
	struct preset_info *list = NULL;
	int n = preset_list(&list, &err);
	const char *desc = "", *source = "";
	for (int i = 0; i < n; i++)
		if (strcmp(list[i].name, name) == 0) {
			desc = list[i].description;
			source = list[i].source;
		}

	size_t count = policy_rule_count(p);
	if (json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", name);
		cJSON_AddStringToObject(o, "source", source);
		cJSON_AddStringToObject(o, "description", desc);
		cJSON *rules = cJSON_AddArrayToObject(o, "rules");
		for (size_t i = 0; i < count; i++) {
			const struct rule *r = policy_rule_at(p, i);
			cJSON *jr = cJSON_CreateObject();
			cJSON_AddStringToObject(jr, "pattern", rule_pattern(r));
			cJSON_AddStringToObject(jr, "level", level_name(rule_level(r)));
			cJSON_AddNumberToObject(jr, "priority", rule_priority(r));
			cJSON_AddItemToArray(rules, jr);
		}
		json_print(o);
	} else {
		int wp = 7;
		for (size_t i = 0; i < count; i++) {
			int l = (int)strlen(rule_pattern(policy_rule_at(p, i)));
			wp = l > wp ? l : wp;
		}
		printf("preset:      ");
		put_safe(name, 0);
		printf("\nsource:      ");
		put_safe(source, 0);
		printf("\ndescription: ");
		put_safe(desc, 0);
		printf("\n\n%-*s  %-5s  %s\n", wp, "PATTERN", "LEVEL", "PRIORITY");
		for (size_t i = 0; i < count; i++) {
			const struct rule *r = policy_rule_at(p, i);
			put_safe(rule_pattern(r), wp);
			printf("  %-5s  %d\n", level_name(rule_level(r)), rule_priority(r));
		}
	}
	preset_list_free(list, n);
	policy_free(p);
	return 0;
}

int cmd_preset(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "json", no_argument, NULL, 'J' },
		{ NULL, 0, NULL, 0 },
	};
	bool json = false;
	int c;

	optind = 0; /* glibc: full re-initialisation */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return 0;
		case 'J':
			json = true;
			break;
		default:
			error_msg("preset: unknown option '%s'", argv[optind - 1]);
			hint_unknown_option(argv[optind - 1], opts);
			hint_msg("run 'agentfense preset --help'");
			return AF_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		error_msg("preset: missing command");
		usage(stderr);
		return AF_EXIT_USAGE;
	}
	const char *sub = argv[optind];
	int rest = argc - optind - 1;
	if (strcmp(sub, "list") == 0) {
		if (rest) {
			error_msg("preset list: unexpected argument '%s'", argv[optind + 1]);
			return AF_EXIT_USAGE;
		}
		return preset_list_cmd(json);
	}
	if (strcmp(sub, "show") == 0) {
		if (rest != 1) {
			error_msg(rest ? "preset show: too many arguments" : "preset show: missing NAME");
			hint_msg("usage: agentfense preset show [--json] NAME");
			return AF_EXIT_USAGE;
		}
		return preset_show_cmd(argv[optind + 1], json);
	}
	error_msg("preset: unknown command '%s'", sub);
	static const char *const subs[] = { "list", "show" };
	const char *near = suggest_name(sub, subs, ARRAY_SIZE(subs));
	if (near)
		hint_msg("did you mean '%s'?", near);
	hint_msg("use 'agentfense preset list' or 'agentfense preset show NAME'");
	return AF_EXIT_USAGE;
}
