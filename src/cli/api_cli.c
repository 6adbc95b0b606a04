/* api_cli.c - requests, output and the exec stream for the sandbox and
 * session commands (see api_cli.h). */
#include "cli/api_cli.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "common/suggest.h"
#include "common/units.h"
#include "sandbox/env.h"

#define ENV_FILE_MAX (1 << 20)

void api_usage_error(const struct api_cli *c, const char *near, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	api_usage_verror(c, near, fmt, ap);
}

void api_usage_verror(const struct api_cli *c, const char *near, const char *fmt, va_list ap)
{
	char msg[1024];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	error_msg("%s", msg);
	if (near)
		hint_msg("did you mean '%s'?", near);
	hint_msg("run 'agentfense %s --help' for the usage", c->cmd);
	exit(AF_EXIT_USAGE);
}

/* After getopt_long() returned ch (optstring starting with ':'): a usage
 * error on a missing value or an unknown option; else the option as
 * typed (before its value when apart) goes to typed[i] of each entry of
 * applies for ch not typed yet. */
static void api_getopt_note(const struct api_cli *c, int ch, char **argv,
			    const struct option *longopts, const struct api_applies *applies,
			    const char **typed, size_t n)
{
	if (ch == ':')
		api_usage_error(c, NULL, "option '%s' needs a value", argv[optind - 1]);
	if (ch == '?') {
		const char *near = suggest_option(argv[optind - 1], longopts);
		autofree char *dashed = near ? xasprintf("--%s", near) : NULL;
		api_usage_error(c, dashed, "unknown option '%s'", argv[optind - 1]);
	}
	/* the option as typed: before its value when apart */
	const char *as = optarg && optarg == argv[optind - 1] ? argv[optind - 2] : argv[optind - 1];
	for (size_t i = 0; i < n; i++)
		if (applies[i].opt == ch && !typed[i])
			typed[i] = as;
}

/* The index of subcommand name in names; dies with a usage error (the
 * closest name as a hint) when it is none of them. */
static int api_subcommand(const struct api_cli *c, const char *name, const char *const *names,
			  size_t nnames)
{
	int sub = -1;
	for (size_t i = 0; i < nnames; i++)
		if (!strcmp(name, names[i]))
			sub = (int)i;
	if (sub < 0)
		api_usage_error(c, suggest_name(name, names, nnames), "unknown subcommand '%s %s'",
				c->cmd, name);
	return sub;
}

/* Dies with a usage error when an option typed does not apply to
 * subcommand sub (named subname). */
static void api_check_applies(const struct api_cli *c, const struct api_applies *applies,
			      const char *const *typed, size_t n, int sub, const char *subname)
{
	for (size_t i = 0; i < n; i++)
		if (typed[i] && !(applies[i].subs & (1u << sub)))
			api_usage_error(c, NULL, "option '%.*s' does not apply to '%s %s'",
					(int)strcspn(typed[i], "="), typed[i], c->cmd, subname);
}

/* The long name of option ch in longopts, or NULL. */
static const char *long_name(const struct option *longopts, int ch)
{
	for (const struct option *lo = longopts; lo->name; lo++)
		if (lo->val == ch)
			return lo->name;
	return NULL;
}

int api_getopt(struct api_cli *c, struct api_getopt *g)
{
	if (!g->started) {
		opterr = 0;
		optind = 0;
		g->sub = -1;
		g->started = true;
	}
	for (;;) {
		/* "+": stop at the first argument, before the subcommand and
		 * in exec's */
		bool plus = g->sub < 0 || g->sub == g->exec_sub;
		int ch = getopt_long(g->argc, g->argv, g->shorts + !plus, g->longopts, NULL);
		if (ch != -1) {
			api_getopt_note(c, ch, g->argv, g->longopts, g->applies, g->typed, g->napplies);
			const char *name = long_name(g->longopts, ch);
			if (name && !strcmp(name, "socket")) {
				if (!*optarg)
					api_usage_error(c, NULL, "empty value for --socket");
				c->socket = optarg;
			} else if (name && (!strcmp(name, "env") || !strcmp(name, "env-file"))) {
				if (!*g->env)
					*g->env = cJSON_CreateObject();
				if (!strcmp(name, "env"))
					api_env_add(c, *g->env, optarg);
				else
					api_env_file(c, *g->env, optarg);
			} else {
				return ch;
			}
			continue;
		}
		if (g->sub >= 0)
			break;
		if (optind >= g->argc)
			api_usage_error(c, NULL, "%s", g->missing);
		g->subname = g->argv[optind];
		g->sub = api_subcommand(c, g->subname, g->subs, g->nsubs);
		/* go on after the subcommand's name */
		g->argc -= optind;
		g->argv += optind;
		optind = 0;
	}
	api_check_applies(c, g->applies, g->typed, g->napplies, g->sub, g->subname);
	g->nargs = g->argc - optind;
	g->args = g->argv + optind;
	return -1;
}

void api_nargs(const struct api_cli *c, const char *subname, int n, int lo, int hi,
	       const char *what)
{
	if (n < lo || n > hi)
		api_usage_error(c, NULL, "wrong number of arguments for '%s %s': expected %s", c->cmd,
				subname, what);
}

const char *api_exec_args(const struct api_cli *c, int *n, char ***a, const char *what,
			  const char *more)
{
	api_nargs(c, "exec", *n, 1, INT_MAX, what);
	const char *id = (*a)[0];
	(*a)++;
	(*n)--;
	if (*n && !strcmp((*a)[0], "--")) {
		(*a)++;
		(*n)--;
	}
	if (*n < 1)
		api_usage_error(c, NULL, "missing command for '%s exec %s'%s", c->cmd, id, more);
	return id;
}

void api_put_safe(FILE *f, const char *s)
{
	for (; *s; s++)
		fputc((unsigned char)*s < ' ' || *s == 0x7f ? '?' : *s, f);
}

void api_put_error(const char *msg)
{
	fputs(AF_PROG ": ", stderr);
	api_put_safe(stderr, msg);
	fputc('\n', stderr);
}

void api_put_pad(const char *s, size_t w)
{
	api_put_safe(stdout, s);
	for (size_t n = strlen(s); n < w + 2; n++)
		putchar(' ');
}

const char *api_str(const cJSON *j, const char *k)
{
	const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(j, k));
	return s ? s : "";
}

double api_num(const cJSON *j, const char *k)
{
	const cJSON *v = cJSON_GetObjectItem(j, k);
	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

char *api_json_text(cJSON *body)
{
	char *text = body ? cJSON_PrintUnformatted(body) : NULL;
	cJSON_Delete(body);
	if (!text) /* no body: its cJSON_CreateObject() failed */
		die(AF_EXIT_FAILURE, "out of memory");
	return text;
}

void api_print_json(const cJSON *j)
{
	char *s = cJSON_Print(j);
	if (!s)
		die(AF_EXIT_FAILURE, "cannot format JSON: out of memory");
	printf("%s\n", s);
	cJSON_free(s);
}

/* api_request(), a 2xx body given line by line to on_line when it is
 * not NULL.  Returns 0 or the error status with *e filled; dies when
 * serve cannot be reached. */
static int request(const struct api_cli *c, struct client_req *req, client_line_fn on_line,
		   void *arg, cJSON **out, struct api_error *e)
{
	struct client_reply rep;
	struct af_err err = { 0 };
	*out = NULL;
	if (client_call_lines(c->socket, req, on_line, arg, &rep, &err) < 0)
		die_err(&err);
	if (rep.status / 100 != 2) {
		cJSON *j = cJSON_Parse(rep.body);
		memset(e, 0, sizeof(*e));
		e->status = rep.status;
		snprintf(e->code, sizeof(e->code), "%s", api_str(j, "code"));
		const char *msg = api_str(j, "message");
		if (*msg)
			snprintf(e->message, sizeof(e->message), "%s", msg);
		else
			snprintf(e->message, sizeof(e->message), "agentfense serve answered %d",
				 rep.status);
		cJSON_Delete(j);
		client_reply_free(&rep);
		return e->status;
	}
	if (req->out_fd < 0 && !on_line) {
		*out = cJSON_Parse(rep.body);
		if (!*out)
			die(AF_EXIT_FAILURE, "agentfense serve sent a reply that is not JSON");
	}
	client_reply_free(&rep);
	return 0;
}

int api_request(const struct api_cli *c, struct client_req *req, cJSON **out, struct api_error *e)
{
	return request(c, req, NULL, NULL, out, e);
}

int api_request_lines(const struct api_cli *c, struct client_req *req, client_line_fn on_line,
		      void *arg, struct api_error *e)
{
	cJSON *unused;
	return request(c, req, on_line, arg, &unused, e);
}

int api_exit_code(const struct api_cli *c, const struct api_error *e)
{
	if (c->exec)
		return AF_EXIT_FAILURE;
	if (!strcmp(e->code, "not_found"))
		return API_EXIT_NOT_FOUND;
	if (!strcmp(e->code, "conflict") || !strcmp(e->code, "not_running"))
		return API_EXIT_CONFLICT;
	return AF_EXIT_FAILURE;
}

void api_fail(const struct api_cli *c, const struct api_error *e)
{
	api_put_error(e->message);
	exit(api_exit_code(c, e));
}

cJSON *api_call(const struct api_cli *c, struct client_req *req)
{
	cJSON *j;
	struct api_error e;
	if (api_request(c, req, &j, &e))
		api_fail(c, &e);
	return j;
}

cJSON *api_call_json(const struct api_cli *c, const char *method, const char *path, cJSON *body)
{
	autofree char *text = body ? api_json_text(body) : NULL;
	struct client_req req = { method, path, text, text ? strlen(text) : 0, -1, 0, -1 };
	return api_call(c, &req);
}

double api_duration(const struct api_cli *c, const char *opt, const char *arg)
{
	double t;
	if (parse_duration(arg, &t) < 0 || t <= 0)
		api_usage_error(c, NULL, "invalid value '%s' for %s: expected a duration such as 30, "
				"30s, 1.5s, 5m or 1h", arg, opt);
	return t;
}

void api_env_add(const struct api_cli *c, cJSON *env, const char *spec)
{
	const char *eq = strchr(spec, '=');
	size_t klen = eq ? (size_t)(eq - spec) : strlen(spec);
	if (!env_name_valid(spec, klen)) {
		if (!eq)
			api_usage_error(c, NULL, "invalid environment variable '%s': expected "
					"KEY=VALUE, or KEY to pass agentfense's own", spec);
		/* the name only: the value may be a secret */
		api_usage_error(c, NULL, "invalid environment variable name '%.*s': use letters, "
				"digits and '_', not starting with a digit", (int)klen, spec);
	}
	autofree char *key = xstrndup(spec, klen);
	const char *val = eq ? eq + 1 : getenv(key);
	if (!val)
		return; /* KEY alone and unset here: not passed, as docker does */
	cJSON_DeleteItemFromObjectCaseSensitive(env, key);
	cJSON_AddStringToObject(env, key, val);
}

char *api_env_file_lines(const char *path, void (*add)(char *line, void *arg), void *arg)
{
	autoclose int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		die(AF_EXIT_USAGE, "cannot read env file '%s': %s", path, strerror(errno));
	if (S_ISDIR(st.st_mode))
		die(AF_EXIT_USAGE, "cannot read env file '%s': %s", path, strerror(EISDIR));
	char *buf = xmalloc(ENV_FILE_MAX + 1);
	ssize_t len = read_full(fd, buf, ENV_FILE_MAX + 1);
	if (len < 0) {
		free(buf);
		die(AF_EXIT_USAGE, "cannot read env file '%s': %s", path, strerror((int)-len));
	}
	if (len > ENV_FILE_MAX) {
		free(buf);
		die(AF_EXIT_USAGE, "cannot read env file '%s': larger than 1 MiB", path);
	}
	buf[len] = '\0';
	if (memchr(buf, '\0', (size_t)len))
		die(AF_EXIT_USAGE, "invalid env file '%s': it holds a NUL byte", path);
	/* docker's format: KEY=VALUE or KEY lines, '#' comments and blank
	 * lines skipped, values taken as they are */
	unsigned lineno = 0;
	for (char *line = buf, *next; line && *line; line = next) {
		lineno++;
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		size_t n = strlen(line);
		if (n && line[n - 1] == '\r')
			line[--n] = '\0';
		line += strspn(line, " \t");
		if (!*line || *line == '#')
			continue;
		size_t key = strcspn(line, "=");
		/* the name only: the rest of the line may be a secret */
		if (!env_name_valid(line, key))
			die(AF_EXIT_USAGE, "%s:%u: invalid environment variable name '%.*s': use "
			    "letters, digits and '_', not starting with a digit", path, lineno,
			    (int)(key > 64 ? 64 : key), line);
		add(line, arg);
	}
	return buf;
}

struct env_json {
	const struct api_cli *c;
	cJSON *env;
};

static void env_json_add(char *line, void *arg)
{
	struct env_json *ej = arg;
	api_env_add(ej->c, ej->env, line);
}

void api_env_file(const struct api_cli *c, cJSON *env, const char *path)
{
	struct env_json ej = { c, env };
	free(api_env_file_lines(path, env_json_add, &ej));
}

/* The value of a base64 digit, or -1. */
static int b64_value(unsigned char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+')
		return 62;
	if (ch == '/')
		return 63;
	return -1;
}

unsigned char *api_base64_decode(const char *s, size_t *len)
{
	size_t n = strlen(s);
	while (n && s[n - 1] == '=')
		n--;
	if (n % 4 == 1)
		return NULL;
	unsigned char *out = xmalloc(n / 4 * 3 + 3), *w = out;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		int v = b64_value((unsigned char)s[i]);
		if (v < 0) {
			free(out);
			return NULL;
		}
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			*w++ = (unsigned char)(acc >> bits);
		}
	}
	*len = (size_t)(w - out);
	return out;
}

char *api_base64_encode(const unsigned char *p, size_t len)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = xmalloc((len + 2) / 3 * 4 + 1), *w = out;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		*w++ = tab[v >> 18];
		*w++ = tab[(v >> 12) & 63];
		*w++ = i + 1 < len ? tab[(v >> 6) & 63] : '=';
		*w++ = i + 2 < len ? tab[v & 63] : '=';
	}
	*w = '\0';
	return out;
}

/* Write an event's data ("data" text or "data_base64" bytes) to fd. */
static int write_data(int fd, const cJSON *ev)
{
	const char *text = cJSON_GetStringValue(cJSON_GetObjectItem(ev, "data"));
	if (text)
		return write_all(fd, text, strlen(text));
	const char *b64 = cJSON_GetStringValue(cJSON_GetObjectItem(ev, "data_base64"));
	if (!b64)
		return -EPROTO;
	size_t n;
	autofree unsigned char *bytes = api_base64_decode(b64, &n);
	if (!bytes)
		return -EPROTO;
	return write_all(fd, bytes, n);
}

int api_exec_line(char *line, size_t len, void *arg)
{
	struct api_exec_end *end = arg;
	if (len == 0)
		return 0;
	cJSON *ev = cJSON_ParseWithLength(line, len);
	if (!ev)
		return -EPROTO;
	const char *type = api_str(ev, "type");
	int r = 0;
	if (!strcmp(type, "stdout") || !strcmp(type, "stderr")) {
		r = write_data(type[3] == 'o' ? STDOUT_FILENO : STDERR_FILENO, ev);
		/* a reader that went away (| head) is not our failure: the
		 * command's status still counts, as with a local command */
		if (r == -EPIPE)
			r = 0;
	} else if (!strcmp(type, "exit")) {
		end->ended = true;
		end->exit_code = (int)api_num(ev, "exit_code");
		end->timed_out = cJSON_IsTrue(cJSON_GetObjectItem(ev, "timed_out"));
		end->signal = (int)api_num(ev, "signal");
	} else if (!strcmp(type, "error")) {
		end->ended = true;
		end->exit_code = AF_EXIT_FAILURE;
		snprintf(end->error.code, sizeof(end->error.code), "%s", api_str(ev, "code"));
		snprintf(end->error.message, sizeof(end->error.message), "%s",
			 api_str(ev, "message"));
		if (!end->error.code[0])
			snprintf(end->error.code, sizeof(end->error.code), "internal");
	}
	/* other types: later additions to the stream, skipped */
	cJSON_Delete(ev);
	return r;
}

int api_exec_status(const struct api_cli *c, const struct api_exec_end *end)
{
	(void)c;
	if (!end->ended) {
		error_msg("the output of the command ended without its exit status");
		hint_msg("agentfense serve may have stopped; see its log");
		return AF_EXIT_FAILURE;
	}
	if (end->error.code[0]) {
		api_put_error(end->error.message[0] ? end->error.message : end->error.code);
		return AF_EXIT_FAILURE;
	}
	if (end->timed_out)
		return AF_EXIT_TIMEOUT;
	return end->exit_code;
}

int api_exec_result(const struct api_cli *c, cJSON *res, struct api_exec_end *end)
{
	if (res) {
		api_print_json(res);
		end->ended = true;
		end->exit_code = (int)api_num(res, "exit_code");
		end->timed_out = cJSON_IsTrue(cJSON_GetObjectItem(res, "timed_out"));
		cJSON_Delete(res);
	}
	return api_exec_status(c, end);
}

char *api_read_all(int fd, size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = xmalloc(cap + 1);
	for (;;) {
		if (n == cap) {
			cap *= 2;
			buf = xrealloc(buf, cap + 1);
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die(AF_EXIT_FAILURE, "cannot read standard input: %s", strerror(errno));
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* --- sandbox ids ------------------------------------------------------------------- */

bool api_is_id(const char *s, const char *prefix)
{
	if (strncmp(s, prefix, 3) != 0 || strlen(s) != 35)
		return false;
	for (const char *p = s + 3; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

/* All sandboxes (GET /v1/sandboxes); the caller deletes it. */
static cJSON *list_all(const struct api_cli *c)
{
	struct client_req req = { "GET", "/v1/sandboxes", NULL, 0, -1, 0, -1 };
	return api_call(c, &req);
}

/* Exit for "no sandbox ID": 1 (125 for exec), with the closest id as a
 * hint, or where to look. */
void api_no_sandbox(const struct api_cli *c, const char *id, const char *msg)
{
	struct api_error e = { 404, "not_found", "" };
	if (msg)
		snprintf(e.message, sizeof(e.message), "%s", msg);
	else
		snprintf(e.message, sizeof(e.message), "no sandbox '%s'", id);
	api_put_error(e.message);
	cJSON *all = list_all(c);
	const cJSON *it;
	int n = 0;
	const char **ids = xcalloc((size_t)cJSON_GetArraySize(cJSON_GetObjectItem(all, "sandboxes")) + 1,
				   sizeof(*ids));
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(all, "sandboxes"))
		ids[n++] = api_str(it, "id");
	const char *near = suggest_name(id, ids, (size_t)n);
	if (near)
		hint_msg("did you mean '%s'?", near);
	else
		hint_msg("run 'agentfense sandbox ls' for the sandboxes");
	free(ids);
	cJSON_Delete(all);
	exit(api_exit_code(c, &e));
}

/* The full id of the sandbox arg names: a full id as it is, a prefix of
 * exactly one.  Dies with a usage error on what cannot be a sandbox id
 * (a session's or codebase's id among them), or not found. */
char *api_sandbox_id(const struct api_cli *c, const char *arg)
{
	if (api_is_id(arg, "sb_"))
		return xstrdup(arg);
	if (!strncmp(arg, "ss_", 3)) {
		error_msg("'%s' is a session id, not a sandbox id", arg);
		hint_msg("use 'agentfense session' for sessions");
		exit(AF_EXIT_USAGE);
	}
	if (!strncmp(arg, "cb_", 3)) {
		error_msg("'%s' is a codebase id, not a sandbox id", arg);
		hint_msg("create a sandbox on it with 'agentfense sandbox create %s'", arg);
		exit(AF_EXIT_USAGE);
	}
	if (strncmp(arg, "sb_", 3) != 0 || strlen(arg) > 35 || !arg[3]) {
		error_msg("invalid sandbox id '%s'", arg);
		hint_msg("sandbox ids are 'sb_' and 32 hex digits, or a unique prefix of one "
			 "(sb_3f2a); run 'agentfense sandbox ls' for them");
		exit(AF_EXIT_USAGE);
	}
	cJSON *all = list_all(c);
	const cJSON *it;
	char *found = NULL;
	int n = 0;
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(all, "sandboxes")) {
		const char *id = api_str(it, "id");
		if (!strncmp(id, arg, strlen(arg))) {
			if (!found)
				found = xstrdup(id);
			n++;
		}
	}
	cJSON_Delete(all);
	if (n > 1) {
		free(found);
		error_msg("sandbox id prefix '%s' is ambiguous: %d sandboxes start with it", arg, n);
		hint_msg("give more of the id");
		exit(AF_EXIT_USAGE);
	}
	if (!found)
		api_no_sandbox(c, arg, NULL);
	return found;
}

