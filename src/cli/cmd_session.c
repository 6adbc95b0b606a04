/* cmd_session.c - agentfense session open|exec|close|ls|info: persistent
 * shells in a running sandbox of serve, whose state (current directory,
 * variables, background jobs) lasts from one exec to the next.
 *
 * Exit codes as sandbox's: 0, 1 not found, 3 conflict (a closed session,
 * a session busy with another exec), 125 for every other error; exec
 * exits with the command's status, 124 on --timeout, 125 for any failure
 * of agentfense. */
#include <cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/api_cli.h"
#include "cli/cli.h"
#include "common/suggest.h"

enum sub { SUB_OPEN, SUB_EXEC, SUB_CLOSE, SUB_LS, SUB_INFO, NSUB };
static const char *const sub_names[] = { "open", "exec", "close", "ls", "info" };
#define ALL ((1u << NSUB) - 1)
#define ON(s) (1u << (s))

struct ss_opts {
	struct api_cli c;
	bool json;
	const char *shell, *workdir, *timeout;
	cJSON *env;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: agentfense session open [--shell SH] [-e K=V]... [-w DIR] SANDBOX\n"
		"   or: agentfense session exec [--timeout DURATION] SESSION [--] COMMAND-TEXT...\n"
		"   or: agentfense session exec [--timeout DURATION] SESSION -\n"
		"   or: agentfense session close SESSION...\n"
		"   or: agentfense session ls SANDBOX\n"
		"   or: agentfense session info SESSION\n\n"
		"A session is a shell in a running sandbox of agentfense serve: each exec\n"
		"runs COMMAND-TEXT (its words joined by spaces, or standard input with '-')\n"
		"in the same shell, so 'cd', variables and background jobs carry over.\n"
		"SANDBOX may be a unique prefix of a sandbox id.  See agentfense-serve(1).\n\n"
		"options:\n"
		"  -e, --env KEY=VALUE|KEY   open: set a variable (KEY alone: our value)\n"
		"      --env-file FILE       open: variables from FILE (KEY=VALUE lines)\n"
		"  -h, --help                show this help\n"
		"      --json                print serve's JSON replies (exec: the whole\n"
		"                            result as one object once the command ended)\n"
		"      --shell SH            open: the shell (default /bin/sh)\n"
		"      --socket PATH         the socket of serve\n"
		"      --timeout DURATION    exec: kill the command after this long (exit 124)\n"
		"  -w, --workdir DIR         open: start in DIR (relative to /workspace)\n");
}

/* Die with a usage error unless id is a session id. */
static void check_session_id(const struct ss_opts *o, const char *id)
{
	if (api_is_id(id, "ss_"))
		return;
	if (!strncmp(id, "sb_", 3)) {
		error_msg("'%s' is a sandbox id, not a session id", id);
		hint_msg("open a session in it with 'agentfense session open %s'", id);
	} else {
		error_msg("invalid session id '%s'", id);
		hint_msg("session ids are 'ss_' and 32 hex digits; 'agentfense session ls SANDBOX' "
			 "lists them");
	}
	(void)o;
	exit(AF_EXIT_USAGE);
}

/* Print a not_found reply about a session with where to look, and exit. */
static AF_NORETURN void ss_fail(const struct ss_opts *o, const struct api_error *e)
{
	api_put_error(e->message);
	if (!strcmp(e->code, "not_found"))
		hint_msg("'agentfense session ls SANDBOX' lists the sessions of a sandbox");
	exit(api_exit_code(&o->c, e));
}

/* One request with a JSON body (freed); dies on an error reply. */
static cJSON *ss_call(const struct ss_opts *o, const char *method, const char *path, cJSON *body)
{
	autofree char *text = body ? api_json_text(body) : NULL;
	struct client_req req = { method, path, text, text ? strlen(text) : 0, -1, 0, -1 };
	cJSON *j;
	struct api_error e;
	if (api_request(&o->c, &req, &j, &e))
		ss_fail(o, &e);
	return j;
}

/* /v1/sessions/ID + suffix, malloc'd. */
static char *ss_path(const char *id, const char *suffix)
{
	autofree char *e = client_escape(id, false);
	return xasprintf("/v1/sessions/%s%s", e, suffix);
}

/* The subcommands: each returns the exit status, or dies with it. */
static int ss_open(struct ss_opts *o, const char *arg)
{
	cJSON *body = cJSON_CreateObject();
	if (o->shell) {
		if (!*o->shell)
			api_usage_error(&o->c, NULL, "empty value for --shell");
		cJSON_AddStringToObject(body, "shell", o->shell);
	}
	if (o->env)
		cJSON_AddItemToObject(body, "env", steal_pointer(&o->env));
	if (o->workdir) {
		if (!*o->workdir)
			api_usage_error(&o->c, NULL, "empty value for --workdir");
		cJSON_AddStringToObject(body, "workdir", o->workdir);
	}
	autofree char *id = api_sandbox_id(&o->c, arg);
	autofree char *e = client_escape(id, false);
	autofree char *path = xasprintf("/v1/sandboxes/%s/sessions", e);
	autofree char *text = api_json_text(body);
	struct client_req req = { "POST", path, text, strlen(text), -1, 0, -1 };
	cJSON *j;
	struct api_error err;
	if (api_request(&o->c, &req, &j, &err)) {
		if (!strcmp(err.code, "not_found"))
			api_no_sandbox(&o->c, id, err.message);
		api_put_error(err.message);
		if (!strcmp(err.code, "not_running"))
			hint_msg("start it with 'agentfense sandbox start %s'", id);
		exit(api_exit_code(&o->c, &err));
	}
	if (o->json)
		api_print_json(j);
	else
		printf("%s\n", api_str(j, "id"));
	cJSON_Delete(j);
	return 0;
}

static int ss_exec(struct ss_opts *o, const char *id, int n, char **words)
{
	double timeout = o->timeout ? api_duration(&o->c, "--timeout", o->timeout) : 0;
	check_session_id(o, id);
	autofree char *text = NULL;
	if (n == 1 && !strcmp(words[0], "-")) {
		size_t len;
		text = api_read_all(STDIN_FILENO, &len);
		if (strlen(text) != len)
			api_usage_error(&o->c, NULL, "the command on standard input holds a NUL byte");
	} else {
		/* words joined as ssh joins them: the shell parses the text */
		size_t len = 0;
		for (int i = 0; i < n; i++)
			len += strlen(words[i]) + 1;
		text = xmalloc(len + 1);
		text[0] = '\0';
		for (int i = 0; i < n; i++) {
			if (i)
				strcat(text, " ");
			strcat(text, words[i]);
		}
	}
	cJSON *body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "command", text);
	if (timeout > 0)
		cJSON_AddNumberToObject(body, "timeout", timeout);
	autofree char *json = api_json_text(body);
	/* --json: the whole result at the end, as one ExecResult object */
	autofree char *path = ss_path(id, o->json ? "/exec" : "/exec/stream");
	struct api_exec_end end = { 0 };
	struct client_req req = { "POST", path, json, strlen(json), -1, 0, -1 };
	struct api_error e;
	cJSON *res = NULL;
	if (o->json ? api_request(&o->c, &req, &res, &e)
		    : api_request_lines(&o->c, &req, api_exec_line, &end, &e))
		ss_fail(o, &e);
	return api_exec_result(&o->c, res, &end);
}

static int ss_close(const struct ss_opts *o, int n, char **ids)
{
	for (int i = 0; i < n; i++)
		check_session_id(o, ids[i]);
	for (int i = 0; i < n; i++) {
		autofree char *path = ss_path(ids[i], "");
		cJSON_Delete(ss_call(o, "DELETE", path, NULL));
	}
	return 0;
}

/* One row of the ls table. */
static void print_session_row(const cJSON *it)
{
	api_put_pad(api_str(it, "id"), 35);
	api_put_pad(api_str(it, "status"), 7);
	api_put_pad(api_str(it, "shell"), 12);
	api_put_safe(stdout, api_str(it, "created_at"));
	putchar('\n');
}

static int ss_ls(const struct ss_opts *o, const char *arg)
{
	autofree char *id = api_sandbox_id(&o->c, arg);
	autofree char *e = client_escape(id, false);
	autofree char *path = xasprintf("/v1/sandboxes/%s/sessions", e);
	struct client_req req = { "GET", path, NULL, 0, -1, 0, -1 };
	cJSON *j;
	struct api_error err;
	if (api_request(&o->c, &req, &j, &err)) {
		if (!strcmp(err.code, "not_found"))
			api_no_sandbox(&o->c, id, err.message);
		api_fail(&o->c, &err);
	}
	if (o->json) {
		api_print_json(cJSON_GetObjectItem(j, "sessions"));
		cJSON_Delete(j);
		return 0;
	}
	printf("%-35s  %-7s  %-12s  %s\n", "ID", "STATUS", "SHELL", "CREATED");
	const cJSON *it;
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "sessions"))
		print_session_row(it);
	cJSON_Delete(j);
	return 0;
}

static int ss_info(const struct ss_opts *o, const char *id)
{
	check_session_id(o, id);
	autofree char *path = ss_path(id, "");
	cJSON *j = ss_call(o, "GET", path, NULL);
	if (o->json) {
		api_print_json(j);
	} else {
		static const char *const keys[] = { "id", "sandbox_id", "status", "shell", "error",
						    "created_at", "closed_at", NULL };
		for (const char *const *k = keys; *k; k++) {
			if (!*api_str(j, *k))
				continue;
			printf("%-11s ", *k);
			api_put_safe(stdout, api_str(j, *k));
			putchar('\n');
		}
	}
	cJSON_Delete(j);
	return 0;
}

int cmd_session(int argc, char **argv)
{
	enum { OPT_SOCKET = 256, OPT_JSON, OPT_ENV_FILE, OPT_SHELL, OPT_TIMEOUT };
	static const struct option longopts[] = {
		{ "env", required_argument, NULL, 'e' },
		{ "env-file", required_argument, NULL, OPT_ENV_FILE },
		{ "help", no_argument, NULL, 'h' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "shell", required_argument, NULL, OPT_SHELL },
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "workdir", required_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 },
	};
	struct ss_opts o = { .c = { "session", NULL, false } };
	const struct api_applies applies[] = {
		{ OPT_SOCKET, ALL }, { 'h', ALL },
		{ OPT_JSON, ON(SUB_OPEN) | ON(SUB_EXEC) | ON(SUB_LS) | ON(SUB_INFO) },
		{ 'e', ON(SUB_OPEN) }, { OPT_ENV_FILE, ON(SUB_OPEN) }, { OPT_SHELL, ON(SUB_OPEN) },
		{ 'w', ON(SUB_OPEN) }, { OPT_TIMEOUT, ON(SUB_EXEC) },
	};
	const char *typed[ARRAY_SIZE(applies)] = { 0 };
	/* exec stops at its SESSION, so that the command text keeps its
	 * dashes */
	struct api_getopt g = {
		.argc = argc, .argv = argv, .shorts = "+:he:w:", .longopts = longopts,
		.applies = applies, .typed = typed, .napplies = ARRAY_SIZE(applies),
		.subs = sub_names, .nsubs = NSUB, .exec_sub = SUB_EXEC, .env = &o.env,
		.missing = "missing subcommand: open, exec, close, ls or info",
	};
	int c;
	while ((c = api_getopt(&o.c, &g)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return 0;
		case OPT_JSON: o.json = true; break;
		case OPT_SHELL: o.shell = optarg; break;
		case 'w': o.workdir = optarg; break;
		case OPT_TIMEOUT: o.timeout = optarg; break;
		default:
			break;
		}
	}
	const char *subname = g.subname;
	int n = g.nargs;
	char **a = g.args;
#define NARGS(lo, hi, what) api_nargs(&o.c, subname, n, lo, hi, what)
	int r = 0;
	switch ((enum sub)g.sub) {
	case SUB_OPEN:
		NARGS(1, 1, "SANDBOX");
		r = ss_open(&o, a[0]);
		break;
	case SUB_EXEC: {
		o.c.exec = true;
		const char *id = api_exec_args(&o.c, &n, &a, "SESSION [--] COMMAND-TEXT, or SESSION -",
					       " (give '-' to read it from standard input)");
		r = ss_exec(&o, id, n, a);
		break;
	}
	case SUB_CLOSE:
		NARGS(1, 1 << 20, "SESSION...");
		r = ss_close(&o, n, a);
		break;
	case SUB_LS:
		NARGS(1, 1, "SANDBOX");
		r = ss_ls(&o, a[0]);
		break;
	case SUB_INFO:
		NARGS(1, 1, "SESSION");
		r = ss_info(&o, a[0]);
		break;
	case NSUB:
		break;
	}
#undef NARGS
	cJSON_Delete(o.env);
	return r;
}
