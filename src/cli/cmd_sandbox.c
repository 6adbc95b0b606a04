/* cmd_sandbox.c - agentfense sandbox create|start|stop|rm|ls|info|exec:
 * long-lived sandboxes through serve (started in the background when
 * needed).
 *
 * Quiet on success but for what was asked (an id, a table, the output of
 * a command); --json prints serve's JSON.  Exit codes as codebase's: 0,
 * 1 not found, 3 conflict (not running, running), 125 for every other
 * error; exec exits with the command's status, 124 when its --timeout
 * fired and 125 for any failure of agentfense (a missing sandbox too). */
#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/api_cli.h"
#include "cli/cli.h"
#include "common/suggest.h"
#include "common/units.h"
#include "policy/policy.h"
#include "sandbox/reslimits.h"

enum sub { SUB_CREATE, SUB_START, SUB_STOP, SUB_RM, SUB_LS, SUB_INFO, SUB_EXEC, SUB_CP, NSUB };
static const char *const sub_names[] = { "create", "start", "stop", "rm", "ls", "info", "exec",
					 "cp" };
#define ALL ((1u << NSUB) - 1)
#define ON(s) (1u << (s))

struct sb_opts {
	struct api_cli c;
	bool json, force, start, interactive;
	const char *preset, *codebase, *status, *expires, *net, *memory, *cpus, *pids, *image,
		*changes, *workdir, *timeout;
	const char **rules, **labels;
	int nrules, nlabels;
	cJSON *env; /* exec: -e and --env-file, in order */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: agentfense sandbox create [OPTIONS] CODEBASE\n"
		"   or: agentfense sandbox start|stop ID...\n"
		"   or: agentfense sandbox rm [-f] ID...\n"
		"   or: agentfense sandbox ls [--codebase ID] [--status S] [--label K[=V]]...\n"
		"   or: agentfense sandbox info ID\n"
		"   or: agentfense sandbox exec [OPTIONS] ID [--] COMMAND [ARG...]\n"
		"   or: agentfense sandbox cp ID:PATH LOCAL|-\n"
		"   or: agentfense sandbox cp LOCAL|- ID:PATH\n\n"
		"Manage long-lived sandboxes through agentfense serve, which is started in\n"
		"the background when nothing answers on the socket.  CODEBASE is a codebase\n"
		"id or name; an ID may be shortened to a unique prefix (sb_3f2a).  cp copies\n"
		"one file out of or into a running sandbox through its view; PATH is\n"
		"relative to /workspace.\n"
		"See agentfense-serve(1).\n\n"
		"options:\n"
		"      --changes sync|keep|discard\n"
		"                            create: what rm does with the changes\n"
		"                            (default: sync them to the codebase)\n"
		"      --codebase ID         ls: only the sandboxes of this codebase\n"
		"      --cpus N              create: CPU time limit in CPUs, e.g. 1 or 0.5\n"
		"  -e, --env KEY=VALUE|KEY   exec: set a variable (KEY alone: our value)\n"
		"      --env-file FILE       exec: variables from FILE (KEY=VALUE lines)\n"
		"      --expires DURATION    create: remove the sandbox after this long\n"
		"  -f, --force               rm: remove a running sandbox too\n"
		"  -h, --help                show this help\n"
		"  -i, --interactive         exec: send our standard input to the command\n"
		"                            (read to its end first; else /dev/null)\n"
		"      --image DIR           create: run on this OCI layout or root file system\n"
		"      --json                print serve's JSON replies (exec: the whole\n"
		"                            result as one object once the command ended)\n"
		"      --label K=V           create: add a label; ls: only with this label\n"
		"      --memory SIZE         create: memory limit, e.g. 512m\n"
		"      --net none|host       create: network (default none: loopback only)\n"
		"  -p, --preset NAME         create: the preset (default agent-safe)\n"
		"      --pids N              create: at most N processes and threads\n"
		"  -r, --rule PATTERN=LEVEL[@PRIORITY]\n"
		"                            create: extra rule on top of the preset, repeatable\n"
		"      --socket PATH         the socket of serve\n"
		"      --start               create: start it at once\n"
		"      --status S            ls: only pending, running, stopped or error ones\n"
		"      --timeout DURATION    exec: kill the command after this long (exit 124)\n"
		"  -w, --workdir DIR         exec: run in DIR (relative to /workspace)\n"
		"\n"
		"Durations are 30, 30s, 5m, 1h; sizes 512M, 1.5G: see agentfense(1).\n");
}

/* /v1/sandboxes/ID + suffix, malloc'd. */
static char *sb_path(const char *id, const char *suffix)
{
	autofree char *e = client_escape(id, false);
	return xasprintf("/v1/sandboxes/%s%s", e, suffix);
}

/* One request about sandbox id; a not_found reply names the closest id. */
static cJSON *sb_call(const struct sb_opts *o, const char *id, struct client_req *req)
{
	cJSON *j;
	struct api_error e;
	if (api_request(&o->c, req, &j, &e)) {
		if (!strcmp(e.code, "not_found"))
			api_no_sandbox(&o->c, id, e.message);
		api_fail(&o->c, &e);
	}
	return j;
}

/* sb_call() with a JSON body (or NULL), which is freed. */
static cJSON *sb_call_json(const struct sb_opts *o, const char *id, const char *method,
			   const char *suffix, cJSON *body)
{
	autofree char *path = sb_path(id, suffix);
	autofree char *text = body ? api_json_text(body) : NULL;
	struct client_req req = { method, path, text, text ? strlen(text) : 0, -1, 0, -1 };
	return sb_call(o, id, &req);
}

/* --- create ------------------------------------------------------------------ */

/* The codebase id for arg: an id as it is, else the one codebase of that
 * name. */
static char *codebase_id(const struct sb_opts *o, const char *arg)
{
	if (!strncmp(arg, "cb_", 3))
		return xstrdup(arg);
	if (!strncmp(arg, "sb_", 3) || !strncmp(arg, "ss_", 3)) {
		error_msg("'%s' is a %s id, not a codebase", arg, arg[1] == 'b' ? "sandbox" : "session");
		hint_msg("run 'agentfense codebase ls' for the codebases");
		exit(AF_EXIT_USAGE);
	}
	struct client_req req = { "GET", "/v1/codebases", NULL, 0, -1, 0, -1 };
	cJSON *all = api_call(&o->c, &req);
	const cJSON *it;
	char *found = NULL;
	int n = 0;
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(all, "codebases")) {
		if (!strcmp(api_str(it, "name"), arg)) {
			if (!found)
				found = xstrdup(api_str(it, "id"));
			n++;
		}
	}
	cJSON_Delete(all);
	if (n > 1) {
		free(found);
		error_msg("%d codebases are named '%s'", n, arg);
		hint_msg("give its id; run 'agentfense codebase ls' for them");
		exit(AF_EXIT_USAGE);
	}
	if (!found) {
		error_msg("no codebase '%s'", arg);
		hint_msg("run 'agentfense codebase ls' for the codebases");
		exit(API_EXIT_NOT_FOUND);
	}
	return found;
}

/* --rule PATTERN=LEVEL[@PRIORITY] as a permission object, checked as run
 * checks it. */
static cJSON *rule_json(const struct sb_opts *o, const char *spec)
{
	struct policy *p = policy_new();
	struct af_err err = { 0 };
	if (policy_add_spec(p, spec, "--rule", &err) < 0) {
		policy_free(p);
		error_msg("%s", err.msg);
		if (err.hint[0])
			hint_msg("%s", err.hint);
		exit(AF_EXIT_USAGE);
	}
	const struct rule *r = policy_rule_at(p, policy_rule_count(p) - 1);
	cJSON *j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "pattern", rule_pattern(r));
	cJSON_AddStringToObject(j, "permission", level_name(rule_level(r)));
	cJSON_AddStringToObject(j, "type", "glob");
	cJSON_AddNumberToObject(j, "priority", rule_priority(r));
	policy_free(p);
	(void)o;
	return j;
}

/* One of names, or a usage error listing them. */
static const char *choice(const struct sb_opts *o, const char *opt, const char *arg,
			  const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(arg, names[i]))
			return names[i];
	char list[256] = "";
	for (size_t i = 0; i < n; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
			 i == 0 ? "" : i + 1 == n ? " or " : ", ", names[i]);
	api_usage_error(&o->c, suggest_name(arg, names, n), "invalid value '%s' for %s: expected %s",
			arg, opt, list);
}

static void add_labels(const struct sb_opts *o, cJSON *body)
{
	cJSON *labels = cJSON_AddObjectToObject(body, "labels");
	for (int i = 0; i < o->nlabels; i++) {
		const char *eq = strchr(o->labels[i], '=');
		if (!eq || eq == o->labels[i])
			api_usage_error(&o->c, NULL, "invalid label '%s': expected KEY=VALUE",
					o->labels[i]);
		autofree char *k = xstrndup(o->labels[i], (size_t)(eq - o->labels[i]));
		cJSON_DeleteItemFromObjectCaseSensitive(labels, k);
		cJSON_AddStringToObject(labels, k, eq + 1);
	}
}

/* Exit 125 with err (a usage error of a parser of the library). */
static void die_usage_err(const struct af_err *err)
{
	error_msg("%s", err->msg);
	if (err->hint[0])
		hint_msg("%s", err->hint);
	exit(AF_EXIT_USAGE);
}

/* The subcommands: each returns the exit status, or dies with it. */
static int sb_create(const struct sb_opts *o, const char *cb)
{
	cJSON *body = cJSON_CreateObject();
	if (o->preset)
		cJSON_AddStringToObject(body, "preset", o->preset);
	cJSON *perms = cJSON_AddArrayToObject(body, "permissions");
	for (int i = 0; i < o->nrules; i++)
		cJSON_AddItemToArray(perms, rule_json(o, o->rules[i]));
	add_labels(o, body);
	if (o->expires)
		cJSON_AddNumberToObject(body, "expires_in", api_duration(&o->c, "--expires",
									 o->expires));
	if (o->net) {
		static const char *const nets[] = { "none", "host" };
		cJSON_AddStringToObject(body, "network", choice(o, "--net", o->net, nets, 2));
	}
	if (o->changes) {
		static const char *const ch[] = { "sync", "keep", "discard" };
		cJSON_AddStringToObject(body, "on_destroy", choice(o, "--changes", o->changes, ch, 3));
	}
	struct af_err err = { 0 };
	if (o->memory || o->cpus || o->pids) {
		cJSON *res = cJSON_AddObjectToObject(body, "resources");
		uint64_t mem;
		uint32_t v;
		if (o->memory) {
			if (limits_parse_memory(o->memory, &mem, &err) < 0)
				die_usage_err(&err);
			cJSON_AddNumberToObject(res, "memory_bytes", (double)mem);
		}
		if (o->cpus) {
			if (limits_parse_cpus(o->cpus, &v, &err) < 0)
				die_usage_err(&err);
			cJSON_AddNumberToObject(res, "cpu_quota", v);
		}
		if (o->pids) {
			if (limits_parse_pids(o->pids, &v, &err) < 0)
				die_usage_err(&err);
			cJSON_AddNumberToObject(res, "pids_limit", v);
		}
	}
	if (o->image) {
		char *abs = realpath(o->image, NULL);
		if (!abs)
			die(errno == ENOENT ? API_EXIT_NOT_FOUND : AF_EXIT_FAILURE,
			    "cannot use image '%s': %s", o->image, strerror(errno));
		cJSON_AddStringToObject(body, "image", abs);
		free(abs);
	}
	if (o->start)
		cJSON_AddBoolToObject(body, "start", true);
	/* asked last: the options are checked before serve is started */
	autofree char *id = codebase_id(o, cb);
	cJSON_AddStringToObject(body, "codebase_id", id);
	cJSON *j = api_call_json(&o->c, "POST", "/v1/sandboxes", body);
	if (o->json)
		api_print_json(j);
	else
		printf("%s\n", api_str(j, "id"));
	cJSON_Delete(j);
	return 0;
}

/* --- start, stop, rm ----------------------------------------------------------- */

static int sb_startstop(const struct sb_opts *o, const char *what, int n, char **ids)
{
	autofree char *suffix = xasprintf("/%s", what);
	for (int i = 0; i < n; i++) {
		autofree char *id = api_sandbox_id(&o->c, ids[i]);
		cJSON *j = sb_call_json(o, id, "POST", suffix, NULL);
		if (o->json)
			api_print_json(j);
		cJSON_Delete(j);
	}
	return 0;
}

/* What rm did with the changes, as run reports a sync: conflicts and
 * errors always, the counts at a terminal.  Returns the exit status. */
static int report_delta(const cJSON *d, const char *codebase)
{
	const cJSON *it;
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(d, "notes")) {
		const char *kind = api_str(it, "kind");
		const char *msg = api_str(it, "message");
		fprintf(stderr, AF_PROG ": %s", !strcmp(kind, "conflict") || !strcmp(kind, "held")
							? "" : "warning: ");
		api_put_safe(stderr, *msg ? msg : api_str(it, "path"));
		fputc('\n', stderr);
	}
	const char *fate = api_str(d, "fate");
	const char *path = api_str(d, "path");
	double w = api_num(d, "written"), del = api_num(d, "deleted"), c = api_num(d, "conflicts");
	if (!strcmp(fate, "kept")) {
		error_msg("changes kept in '%s'", path);
	} else if (!strcmp(fate, "unsynced")) {
		error_msg("the view stopped answering: changes kept in '%s', not synced", path);
	} else if (!strcmp(fate, "sync_failed")) {
		error_msg("cannot sync the changes to codebase '%s'%s%s%s", codebase,
			  *path ? ": they are kept in '" : "", path, *path ? "'" : "");
		return AF_EXIT_FAILURE;
	} else if (!strcmp(fate, "synced") || !strcmp(fate, "conflicts")) {
		if ((w || del) && isatty(STDERR_FILENO))
			error_msg("synced to codebase '%s': %.0f written, %.0f deleted", codebase, w,
				  del);
		if (!strcmp(fate, "conflicts"))
			error_msg("%.0f change%s not synced (conflicting or held): the sandbox's "
				  "version%s kept in '%s'", c, c == 1 ? "" : "s",
				  c == 1 ? " is" : "s are", path);
	}
	return 0;
}

static int sb_rm(const struct sb_opts *o, int n, char **ids)
{
	int rc = 0;
	for (int i = 0; i < n; i++) {
		autofree char *id = api_sandbox_id(&o->c, ids[i]);
		cJSON *sb = sb_call_json(o, id, "GET", "", NULL);
		if (!o->force && !strcmp(api_str(sb, "status"), "running")) {
			cJSON_Delete(sb);
			error_msg("sandbox '%s' is running", id);
			hint_msg("stop it first with 'agentfense sandbox stop %s', or remove it "
				 "with 'rm -f'", id);
			exit(API_EXIT_CONFLICT);
		}
		autofree char *cb = xstrdup(api_str(sb, "codebase_id"));
		cJSON_Delete(sb);
		cJSON *j = sb_call_json(o, id, "DELETE", "", NULL);
		if (o->json)
			api_print_json(j);
		else if (report_delta(cJSON_GetObjectItem(j, "delta"), cb))
			rc = AF_EXIT_FAILURE;
		cJSON_Delete(j);
	}
	return rc;
}

/* --- ls, info ------------------------------------------------------------------ */

/* Whether labels (a sandbox's object) has every --label K=V, or K. */
static bool labels_match(const struct sb_opts *o, const cJSON *labels)
{
	for (int i = 0; i < o->nlabels; i++) {
		const char *eq = strchr(o->labels[i], '=');
		autofree char *k = eq ? xstrndup(o->labels[i], (size_t)(eq - o->labels[i]))
				      : xstrdup(o->labels[i]);
		const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(labels, k));
		if (!v || (eq && strcmp(v, eq + 1)))
			return false;
	}
	return true;
}

static int sb_ls(const struct sb_opts *o)
{
	autofree char *path = xstrdup("/v1/sandboxes");
	char sep = '?';
	const char *keys[2] = { "codebase_id", "status" };
	const char *vals[2] = { o->codebase, o->status };
	for (int i = 0; i < 2 + (o->nlabels > 0); i++) {
		const char *k = i < 2 ? keys[i] : "label", *v = i < 2 ? vals[i] : o->labels[i - 2];
		if (!v)
			continue;
		autofree char *e = client_escape(v, false);
		char *p2 = xasprintf("%s%c%s=%s", path, sep, k, e);
		free(path);
		path = p2;
		sep = '&';
	}
	if (o->status) {
		static const char *const st[] = { "pending", "running", "stopped", "error" };
		choice(o, "--status", o->status, st, 4);
	}
	struct client_req req = { "GET", path, NULL, 0, -1, 0, -1 };
	cJSON *j = api_call(&o->c, &req);
	/* serve filters by one label: the others are matched here, all of
	 * them (the first again costs nothing and keeps one rule) */
	cJSON *arr = cJSON_GetObjectItem(j, "sandboxes");
	for (int i = cJSON_GetArraySize(arr) - 1; i >= 0; i--)
		if (!labels_match(o, cJSON_GetObjectItem(cJSON_GetArrayItem(arr, i), "labels")))
			cJSON_DeleteItemFromArray(arr, i);
	if (o->json) {
		api_print_json(cJSON_GetObjectItem(j, "sandboxes"));
		cJSON_Delete(j);
		return 0;
	}
	printf("%-35s  %-35s  %-8s  %-12s  %s\n", "ID", "CODEBASE", "STATUS", "PRESET", "CREATED");
	const cJSON *it;
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "sandboxes")) {
		api_put_pad(api_str(it, "id"), 35);
		api_put_pad(api_str(it, "codebase_id"), 35);
		api_put_pad(api_str(it, "status"), 8);
		api_put_pad(api_str(it, "preset"), 12);
		api_put_safe(stdout, api_str(it, "created_at"));
		putchar('\n');
	}
	cJSON_Delete(j);
	return 0;
}

/* One "field value" line of info. */
static void kv(const char *k, const char *v)
{
	printf("%-12s ", k);
	api_put_safe(stdout, v);
	putchar('\n');
}

/* qsort() of strings. */
static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int sb_info(const struct sb_opts *o, const char *arg)
{
	autofree char *id = api_sandbox_id(&o->c, arg);
	cJSON *j = sb_call_json(o, id, "GET", "", NULL);
	if (o->json) {
		api_print_json(j);
		cJSON_Delete(j);
		return 0;
	}
	static const char *const keys[] = { "id", "codebase_id", "status", "error", "preset",
					    "network", "image", "on_destroy", "created_at",
					    "started_at", "stopped_at", "expires_at", "delta_path",
					    NULL };
	for (const char *const *k = keys; *k; k++)
		if (*api_str(j, *k) || !strcmp(*k, "status"))
			kv(*k, api_str(j, *k));
	const cJSON *res = cJSON_GetObjectItem(j, "resources");
	char buf[64];
	if (api_num(res, "memory_bytes") > 0) {
		limits_format_size((uint64_t)api_num(res, "memory_bytes"), buf, sizeof(buf));
		kv("memory", buf);
	}
	if (api_num(res, "cpu_quota") > 0) {
		snprintf(buf, sizeof(buf), "%g", api_num(res, "cpu_quota") / LIMITS_CPU_PERIOD_US);
		kv("cpus", buf);
	}
	if (api_num(res, "pids_limit") > 0) {
		snprintf(buf, sizeof(buf), "%.0f", api_num(res, "pids_limit"));
		kv("pids", buf);
	}
	/* labels sorted: serve keeps no order */
	const cJSON *it;
	size_t nl = 0;
	char **labels = xcalloc((size_t)cJSON_GetArraySize(cJSON_GetObjectItem(j, "labels")) + 1,
				sizeof(*labels));
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "labels"))
		labels[nl++] = xasprintf("%s=%s", it->string,
					 cJSON_GetStringValue(it) ? it->valuestring : "");
	qsort(labels, nl, sizeof(*labels), cmp_str);
	for (size_t i = 0; i < nl; i++) {
		kv("label", labels[i]);
		free(labels[i]);
	}
	free(labels);
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "permissions")) {
		autofree char *r = xasprintf("%s=%s@%.0f", api_str(it, "pattern"),
					     api_str(it, "permission"), api_num(it, "priority"));
		kv("rule", r);
	}
	cJSON_Delete(j);
	return 0;
}

/* --- exec ------------------------------------------------------------------------ */

static int sb_exec(struct sb_opts *o, const char *arg, int argc, char **argv)
{
	cJSON *body = cJSON_CreateObject();
	cJSON *a = cJSON_AddArrayToObject(body, "argv");
	for (int i = 0; i < argc; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(argv[i]));
	if (o->env)
		cJSON_AddItemToObject(body, "env", steal_pointer(&o->env));
	if (o->workdir) {
		if (!*o->workdir)
			api_usage_error(&o->c, NULL, "empty value for --workdir");
		cJSON_AddStringToObject(body, "workdir", o->workdir);
	}
	if (o->timeout)
		cJSON_AddNumberToObject(body, "timeout", api_duration(&o->c, "--timeout", o->timeout));
	if (o->interactive) {
		size_t n;
		autofree char *in = api_read_all(STDIN_FILENO, &n);
		autofree char *b64 = api_base64_encode((const unsigned char *)in, n);
		cJSON_AddStringToObject(body, "stdin_base64", b64);
	}
	autofree char *id = api_sandbox_id(&o->c, arg);
	autofree char *path = sb_path(id, "/exec/stream");
	autofree char *text = api_json_text(body);
	struct api_exec_end end = { 0 };
	struct client_req req = { "POST", path, text, strlen(text), -1, 0, -1 };
	struct api_error e;
	cJSON *res = NULL;
	/* --json: the whole result at the end, as one ExecResult object */
	if (o->json)
		path[strlen(path) - strlen("/stream")] = '\0';
	if (o->json ? api_request(&o->c, &req, &res, &e)
		    : api_request_lines(&o->c, &req, api_exec_line, &end, &e)) {
		if (!strcmp(e.code, "not_found"))
			api_no_sandbox(&o->c, id, e.message);
		if (!strcmp(e.code, "not_running")) {
			error_msg("%s", e.message);
			hint_msg("start it with 'agentfense sandbox start %s'", id);
			exit(AF_EXIT_FAILURE);
		}
		api_fail(&o->c, &e);
	}
	return api_exec_result(&o->c, res, &end);
}

/* --- cp ---------------------------------------------------------------------------- */

/* Whether a cp argument is ID:PATH: a colon before any slash, as docker
 * cp has it. */
static bool looks_remote(const char *arg)
{
	const char *colon = strchr(arg, ':');
	return colon && colon != arg && !memchr(arg, '/', (size_t)(colon - arg));
}

/* Split "ID:PATH" into a resolved id and a path relative to /workspace;
 * false for a local path.  Dies on a path outside /workspace. */
static bool remote_arg(const struct sb_opts *o, const char *arg, char **id, char **path)
{
	if (!looks_remote(arg))
		return false;
	const char *colon = strchr(arg, ':');
	autofree char *want = xstrndup(arg, (size_t)(colon - arg));
	const char *p = colon + 1;
	if (*p == '/') {
		if (strncmp(p, "/workspace", 10) != 0 || (p[10] && p[10] != '/'))
			api_usage_error(&o->c, NULL, "cannot copy '%s': only files under /workspace "
					"can be copied", arg);
		p += 10;
		p += strspn(p, "/");
	}
	*path = xstrdup(p);
	*id = api_sandbox_id(&o->c, want);
	return true;
}

/* The route of a file of the sandbox, with ?mode= unless 0; malloc'd. */
static char *file_route(const char *id, const char *path, unsigned mode)
{
	autofree char *e = client_escape(path, true);
	autofree char *suffix = mode ? xasprintf("/files/%s?mode=%04o", e, mode)
				     : xasprintf("/files/%s", e);
	return sb_path(id, suffix);
}

/* A failed file request: not found is 1 (125 for an unknown sandbox is
 * api_no_sandbox's), not running 3 with how to start it. */
static AF_NORETURN void cp_fail(const struct sb_opts *o, const char *id, struct api_error *e)
{
	if (!strcmp(e->code, "not_found") && strstr(e->message, "no sandbox"))
		api_no_sandbox(&o->c, id, e->message);
	api_put_error(e->message);
	if (!strcmp(e->code, "not_running"))
		hint_msg("start it with 'agentfense sandbox start %s'", id);
	exit(api_exit_code(&o->c, e));
}

/* Download path to local (a file, a directory, or - for stdout). */
static int cp_out(const struct sb_opts *o, const char *id, const char *path, const char *local)
{
	if (!*path || path[strlen(path) - 1] == '/')
		api_usage_error(&o->c, NULL, "cannot copy '%s': cp copies one file", path);
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	bool to_stdout = strcmp(local, "-") == 0;
	autofree char *target = NULL;
	struct stat st;
	if (!to_stdout)
		target = stat(local, &st) == 0 && S_ISDIR(st.st_mode) ? xasprintf("%s/%s", local, base)
								       : xstrdup(local);
	/* written beside the target and renamed: a failed copy leaves no
	 * half file under the name */
	autofree char *tmp = to_stdout ? NULL : xasprintf("%s.agentfense-XXXXXX", target);
	autoclose int fd = to_stdout ? dup(STDOUT_FILENO) : mkstemp(tmp);
	if (fd < 0)
		die(AF_EXIT_FAILURE, "cannot create '%s': %s", to_stdout ? "-" : target,
		    strerror(errno));
	autofree char *route = file_route(id, path, 0);
	struct client_req req = { "GET", route, NULL, 0, -1, 0, fd };
	cJSON *j;
	struct api_error e;
	if (api_request(&o->c, &req, &j, &e)) {
		if (tmp)
			unlink(tmp);
		cp_fail(o, id, &e);
	}
	if (tmp) {
		fchmod(fd, 0644 & ~umask(umask(0)));
		if (rename(tmp, target) < 0) {
			int en = errno;
			unlink(tmp);
			die(AF_EXIT_FAILURE, "cannot write '%s': %s", target, strerror(en));
		}
	}
	return 0;
}

/* Upload local (a file, or - for stdin) to path (a directory if it
 * ends in '/'). */
static int cp_in(const struct sb_opts *o, const char *local, const char *id, const char *path)
{
	bool from_stdin = strcmp(local, "-") == 0;
	autoclose int fd = from_stdin ? dup(STDIN_FILENO) : open(local, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die(errno == ENOENT ? API_EXIT_NOT_FOUND : AF_EXIT_FAILURE, "cannot open '%s': %s",
		    local, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0)
		die(AF_EXIT_FAILURE, "cannot stat '%s': %s", local, strerror(errno));
	if (S_ISDIR(st.st_mode))
		api_usage_error(&o->c, NULL, "cannot copy '%s': it is a directory; cp copies one file",
				local);
	autofree char *dest = NULL;
	if (!*path || path[strlen(path) - 1] == '/') {
		if (from_stdin)
			api_usage_error(&o->c, NULL, "a copy from standard input needs a file name "
					"in the sandbox");
		const char *base = strrchr(local, '/') ? strrchr(local, '/') + 1 : local;
		dest = xasprintf("%s%s", path, base);
	} else {
		dest = xstrdup(path);
	}
	unsigned mode = S_ISREG(st.st_mode) ? (unsigned)(st.st_mode & 0777) : 0;
	autofree char *route = file_route(id, dest, mode);
	struct client_req req = { "PUT", route, NULL, 0, fd,
				  S_ISREG(st.st_mode) ? (int64_t)st.st_size : -1, -1 };
	cJSON *j;
	struct api_error e;
	if (api_request(&o->c, &req, &j, &e))
		cp_fail(o, id, &e);
	if (o->json)
		api_print_json(j);
	cJSON_Delete(j);
	return 0;
}

/* cp SRC DST: exactly one of them in a sandbox. */
static int sb_cp(const struct sb_opts *o, const char *src, const char *dst)
{
	autofree char *sid = NULL, *spath = NULL, *did = NULL, *dpath = NULL;
	if (looks_remote(src) && looks_remote(dst))
		api_usage_error(&o->c, NULL, "cannot copy from one sandbox to another: copy to a "
				"local file first");
	if (!looks_remote(src) && !looks_remote(dst))
		api_usage_error(&o->c, NULL, "one of '%s' and '%s' must be ID:PATH in a sandbox",
				src, dst);
	bool sr = remote_arg(o, src, &sid, &spath);
	if (!sr)
		remote_arg(o, dst, &did, &dpath);
	return sr ? cp_out(o, sid, spath, dst) : cp_in(o, src, did, dpath);
}

/* --- the command line ---------------------------------------------------------- */

int cmd_sandbox(int argc, char **argv)
{
	enum { OPT_SOCKET = 256, OPT_JSON, OPT_CHANGES, OPT_CODEBASE, OPT_CPUS, OPT_ENV_FILE,
	       OPT_EXPIRES, OPT_IMAGE, OPT_LABEL, OPT_MEMORY, OPT_NET, OPT_PIDS, OPT_START,
	       OPT_STATUS, OPT_TIMEOUT };
	static const struct option longopts[] = {
		{ "changes", required_argument, NULL, OPT_CHANGES },
		{ "codebase", required_argument, NULL, OPT_CODEBASE },
		{ "cpus", required_argument, NULL, OPT_CPUS },
		{ "env", required_argument, NULL, 'e' },
		{ "env-file", required_argument, NULL, OPT_ENV_FILE },
		{ "expires", required_argument, NULL, OPT_EXPIRES },
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ "image", required_argument, NULL, OPT_IMAGE },
		{ "interactive", no_argument, NULL, 'i' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "label", required_argument, NULL, OPT_LABEL },
		{ "memory", required_argument, NULL, OPT_MEMORY },
		{ "net", required_argument, NULL, OPT_NET },
		{ "pids", required_argument, NULL, OPT_PIDS },
		{ "preset", required_argument, NULL, 'p' },
		{ "rule", required_argument, NULL, 'r' },
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "start", no_argument, NULL, OPT_START },
		{ "status", required_argument, NULL, OPT_STATUS },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "workdir", required_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 },
	};
	struct sb_opts o = { .c = { "sandbox", NULL, false } };
	/* the subcommands each option applies to, and the option as typed */
	const struct api_applies applies[] = {
		{ OPT_SOCKET, ALL }, { 'h', ALL },
		{ OPT_JSON, ALL },
		{ 'p', ON(SUB_CREATE) }, { 'r', ON(SUB_CREATE) }, { OPT_EXPIRES, ON(SUB_CREATE) },
		{ OPT_NET, ON(SUB_CREATE) }, { OPT_MEMORY, ON(SUB_CREATE) },
		{ OPT_CPUS, ON(SUB_CREATE) }, { OPT_PIDS, ON(SUB_CREATE) },
		{ OPT_IMAGE, ON(SUB_CREATE) }, { OPT_CHANGES, ON(SUB_CREATE) },
		{ OPT_START, ON(SUB_CREATE) }, { OPT_LABEL, ON(SUB_CREATE) | ON(SUB_LS) },
		{ OPT_CODEBASE, ON(SUB_LS) }, { OPT_STATUS, ON(SUB_LS) }, { 'f', ON(SUB_RM) },
		{ 'e', ON(SUB_EXEC) }, { OPT_ENV_FILE, ON(SUB_EXEC) }, { 'w', ON(SUB_EXEC) },
		{ OPT_TIMEOUT, ON(SUB_EXEC) }, { 'i', ON(SUB_EXEC) },
	};
	const char *typed[ARRAY_SIZE(applies)] = { 0 };

	struct api_getopt g = {
		.argc = argc, .argv = argv, .shorts = "+:hfie:p:r:w:", .longopts = longopts,
		.applies = applies, .typed = typed, .napplies = ARRAY_SIZE(applies),
		.subs = sub_names, .nsubs = NSUB, .exec_sub = SUB_EXEC, .env = &o.env,
		.missing = "missing subcommand: create, start, stop, rm, ls, info, exec or cp",
	};
	int c;
	while ((c = api_getopt(&o.c, &g)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return 0;
		case OPT_JSON: o.json = true; break;
		case 'f': o.force = true; break;
		case 'i': o.interactive = true; break;
		case OPT_START: o.start = true; break;
		case 'p': o.preset = optarg; break;
		case OPT_CODEBASE: o.codebase = optarg; break;
		case OPT_STATUS: o.status = optarg; break;
		case OPT_EXPIRES: o.expires = optarg; break;
		case OPT_NET: o.net = optarg; break;
		case OPT_MEMORY: o.memory = optarg; break;
		case OPT_CPUS: o.cpus = optarg; break;
		case OPT_PIDS: o.pids = optarg; break;
		case OPT_IMAGE: o.image = optarg; break;
		case OPT_CHANGES: o.changes = optarg; break;
		case 'w': o.workdir = optarg; break;
		case OPT_TIMEOUT: o.timeout = optarg; break;
		case 'r':
			o.rules = xrealloc(o.rules, (size_t)(o.nrules + 1) * sizeof(*o.rules));
			o.rules[o.nrules++] = optarg;
			break;
		case OPT_LABEL:
			o.labels = xrealloc(o.labels, (size_t)(o.nlabels + 1) * sizeof(*o.labels));
			o.labels[o.nlabels++] = optarg;
			break;
		default:
			break;
		}
	}
	int sub = g.sub;
	const char *subname = g.subname;
	int n = g.nargs;
	char **a = g.args;
	if (sub == SUB_EXEC) {
		o.c.exec = true;
		const char *id = api_exec_args(&o.c, &n, &a, "ID [--] COMMAND [ARG...]", "");
		return sb_exec(&o, id, n, a);
	}
	/* a "--" before the arguments only ends the options */
#define NARGS(lo, hi, what) api_nargs(&o.c, subname, n, lo, hi, what)
	int r = 0;
	switch ((enum sub)sub) {
	case SUB_CREATE:
		NARGS(1, 1, "CODEBASE");
		r = sb_create(&o, a[0]);
		break;
	case SUB_START:
	case SUB_STOP:
		NARGS(1, 1 << 20, "ID...");
		r = sb_startstop(&o, subname, n, a);
		break;
	case SUB_RM:
		NARGS(1, 1 << 20, "ID...");
		r = sb_rm(&o, n, a);
		break;
	case SUB_LS:
		NARGS(0, 0, "no arguments");
		r = sb_ls(&o);
		break;
	case SUB_INFO:
		NARGS(1, 1, "ID");
		r = sb_info(&o, a[0]);
		break;
	case SUB_CP:
		NARGS(2, 2, "ID:PATH LOCAL, or LOCAL ID:PATH");
		r = sb_cp(&o, a[0], a[1]);
		break;
	case SUB_EXEC:
	case NSUB:
		break;
	}
#undef NARGS
	free(o.rules);
	free(o.labels);
	cJSON_Delete(o.env);
	return r;
}
