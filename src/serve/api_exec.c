/* api_exec.c - the routes of exec, exec stream and sessions (see
 * agentfense-api(7)):
 *   POST /v1/sandboxes/{id}/exec[/stream]
 *   POST|GET /v1/sandboxes/{id}/sessions
 *   GET|DELETE /v1/sessions/{id}
 *   POST /v1/sessions/{id}/exec[/stream]
 * Bodies are parsed here into a struct exec_req; exec.c and session.c
 * run them and answer when the command ends. */
#include "serve/exec.h"

#include <cJSON.h>
#include <errno.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/units.h"
#include "serve/api.h"
#include "serve/ctx.h"
#include "serve/http.h"
#include "serve/sbx.h"
#include "serve/session.h"

enum xroute {
	X_EXEC,          /* /v1/sandboxes/{id}/exec */
	X_EXEC_STREAM,   /* /v1/sandboxes/{id}/exec/stream */
	X_SESSIONS,      /* /v1/sandboxes/{id}/sessions */
	X_SESSION,       /* /v1/sessions/{id} */
	X_SS_EXEC,       /* /v1/sessions/{id}/exec */
	X_SS_STREAM,     /* /v1/sessions/{id}/exec/stream */
};

struct actx {
	enum xroute route;
	char id[80];
	struct xout *active;   /* the exec answering this request */
};

static void actx_on_close(struct http_req *r)
{
	struct actx *a = r->data;
	if (a && a->active)
		xout_client_gone(a->active);
}

static void actx_cleanup(struct http_req *r)
{
	struct actx *a = r->data;
	/* a reply given while an exec still held the request cannot
	 * happen; if it did, the exec must not write to a freed slot */
	if (a && a->active)
		xout_client_gone(a->active);
	free(a);
	r->data = NULL;
}

/* "/v1/sandboxes/ID/REST" or "/v1/sessions/ID/REST": true for ours. */
static bool parse(const char *path, struct actx *a)
{
	static const char sb[] = "/v1/sandboxes/", ss[] = "/v1/sessions/";
	bool sandbox = strncmp(path, sb, sizeof(sb) - 1) == 0;
	if (!sandbox && strncmp(path, ss, sizeof(ss) - 1) != 0)
		return false;
	const char *p = path + (sandbox ? sizeof(sb) : sizeof(ss)) - 1;
	const char *slash = strchrnul(p, '/');
	size_t idl = (size_t)(slash - p);
	if (idl == 0 || idl >= sizeof(a->id))
		return false;
	memcpy(a->id, p, idl);
	a->id[idl] = '\0';
	const char *rest = *slash ? slash + 1 : "";
	if (sandbox) {
		if (!strcmp(rest, "exec"))
			a->route = X_EXEC;
		else if (!strcmp(rest, "exec/stream"))
			a->route = X_EXEC_STREAM;
		else if (!strcmp(rest, "sessions") || !strcmp(rest, "sessions/"))
			a->route = X_SESSIONS;
		else
			return false;
		return true;
	}
	if (!*rest)
		a->route = X_SESSION;
	else if (!strcmp(rest, "exec"))
		a->route = X_SS_EXEC;
	else if (!strcmp(rest, "exec/stream"))
		a->route = X_SS_STREAM;
	else
		return false;
	return true;
}

bool api_exec_head(struct http_conn *c, struct http_req *r, struct serve_ctx *ctx AF_UNUSED)
{
	struct actx probe = { 0 };
	if (!parse(r->path, &probe))
		return false;
	struct actx *a = malloc(sizeof(*a));
	if (!a) {
		http_respond_error(c, 503, "resource_exhausted", "out of memory");
		return true;
	}
	*a = probe;
	r->data = a;
	r->cleanup = actx_cleanup;
	r->on_close = actx_on_close;
	bool ok;
	const char *allowed;
	switch (a->route) {
	case X_SESSIONS: ok = r->method == HTTP_GET || r->method == HTTP_POST; allowed = "GET, POST"; break;
	case X_SESSION: ok = r->method == HTTP_GET || r->method == HTTP_DELETE; allowed = "GET, DELETE"; break;
	case X_EXEC: case X_EXEC_STREAM: case X_SS_EXEC: case X_SS_STREAM:
	default: ok = r->method == HTTP_POST; allowed = "POST"; break;
	}
	if (!ok)
		http_respond_error(c, 405, "method_not_allowed", "%s is not allowed on '%s' (allowed: %s)",
				   http_method_str((enum http_method)r->method), r->path, allowed);
	return true;
}

/* --- request bodies ---------------------------------------------------------------- */

#define bad(c, fmt, field) http_respond_error(c, 400, "invalid_argument", fmt, field)

/* The same checks as every route's body (api_json_body). */
static cJSON *body_json(struct http_conn *c, const struct http_req *r)
{
	return api_json_body(c, r);
}

/* Optional string field; false after replying. */
static bool get_str(struct http_conn *c, const cJSON *j, const char *name, const char **out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
	*out = NULL;
	if (!v || cJSON_IsNull(v))
		return true;
	if (!cJSON_IsString(v)) {
		bad(c, "field '%s' must be a string", name);
		return false;
	}
	*out = v->valuestring;
	return true;
}

static int b64_val(char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+' || ch == '-')
		return 62;
	if (ch == '/' || ch == '_')
		return 63;
	return -1;
}

/* Decode base64 (standard or URL alphabet, padding optional).  Returns
 * a malloc'd buffer, or NULL (*len = 0 on bad input, SIZE_MAX on ENOMEM). */
static char *b64_decode(const char *s, size_t *len)
{
	size_t n = strlen(s);
	char *o = malloc(n / 4 * 3 + 3);
	if (!o) {
		*len = SIZE_MAX;
		return NULL;
	}
	size_t k = 0;
	unsigned acc = 0;
	int bits = 0;
	size_t i = 0;
	for (; i < n && s[i] != '='; i++) {
		int v = b64_val(s[i]);
		if (v < 0)
			goto bad;
		acc = acc << 6 | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			o[k++] = (char)(acc >> bits & 0xff);
		}
	}
	for (; i < n; i++)
		if (s[i] != '=')
			goto bad;
	if (bits >= 6)
		goto bad;
	*len = k;
	return o;
bad:
	free(o);
	*len = 0;
	return NULL;
}

/* An array of "K=V" from an object of strings; false after replying. */
static bool get_env(struct http_conn *c, const cJSON *j, char ***out)
{
	const cJSON *env = cJSON_GetObjectItemCaseSensitive(j, "env");
	*out = NULL;
	if (!env || cJSON_IsNull(env))
		return true;
	if (!cJSON_IsObject(env)) {
		bad(c, "field '%s' must be an object of strings", "env");
		return false;
	}
	int n = cJSON_GetArraySize(env);
	char **v = calloc((size_t)n + 1, sizeof(*v));
	if (!v)
		goto nomem;
	int k = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, env) {
		if (!cJSON_IsString(it) || !it->string[0] || strchr(it->string, '=')) {
			for (int i = 0; i < k; i++)
				free(v[i]);
			free(v);
			bad(c, "field '%s' must map names (without '=') to strings", "env");
			return false;
		}
		if (asprintf(&v[k], "%s=%s", it->string, it->valuestring) < 0) {
			v[k] = NULL;
			for (int i = 0; i < k; i++)
				free(v[i]);
			free(v);
			goto nomem;
		}
		k++;
	}
	*out = v;
	return true;
nomem:
	http_respond_error(c, 503, "resource_exhausted", "out of memory");
	return false;
}

/* workdir: absolute, or relative to /workspace and resolved beneath it. */
static bool get_workdir(struct http_conn *c, const cJSON *j, char **out, bool *beneath)
{
	const char *w;
	*out = NULL;
	*beneath = false;
	if (!get_str(c, j, "workdir", &w))
		return false;
	if (!w || !*w)
		return true;
	bool abs = w[0] == '/';
	autofree char *clean = path_clean(w, abs, true);
	if (!clean) {
		http_respond_error(c, 400, "invalid_argument",
				   "workdir '%s' must not contain '..': a relative one is resolved "
				   "beneath /workspace", w);
		return false;
	}
	if (abs) {
		*beneath = !strcmp(clean, "/workspace") || !strncmp(clean, "/workspace/", 11);
		*out = strdup(*clean ? clean : "/");
	} else {
		*beneath = true;
		if (asprintf(out, "/workspace%s%s", *clean ? "/" : "", clean) < 0)
			*out = NULL;
	}
	if (!*out) {
		http_respond_error(c, 503, "resource_exhausted", "out of memory");
		return false;
	}
	return true;
}

/* timeout (seconds, or "30s") and max_output (bytes, or "1M"). */
static bool get_limits(struct http_conn *c, const cJSON *j, struct exec_req *rq)
{
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "timeout");
	if (t && !cJSON_IsNull(t)) {
		double secs = -1;
		if (cJSON_IsNumber(t))
			secs = t->valuedouble;
		else if (!cJSON_IsString(t) || parse_duration(t->valuestring, &secs) < 0)
			secs = -1;
		if (!(secs >= 0 && secs <= 1e7)) {
			bad(c, "field '%s' must be a duration: seconds, or a string like \"30s\" or \"5m\"",
			    "timeout");
			return false;
		}
		rq->timeout_ms = (uint64_t)(secs * 1000 + 0.5);
		if (secs > 0 && !rq->timeout_ms)
			rq->timeout_ms = 1;
	}
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "max_output");
	if (m && !cJSON_IsNull(m)) {
		uint64_t bytes = 0;
		bool ok;
		if (cJSON_IsNumber(m))
			/* in range before the cast: out of it the cast is undefined */
			ok = m->valuedouble >= 0 && m->valuedouble <= EXEC_MAX_OUTPUT_LIMIT &&
			     m->valuedouble == (double)(uint64_t)m->valuedouble &&
			     (bytes = (uint64_t)m->valuedouble, true);
		else
			ok = cJSON_IsString(m) && parse_size(m->valuestring, &bytes) == 0;
		if (!ok || bytes > EXEC_MAX_OUTPUT_LIMIT) {
			http_respond_error(c, 400, "invalid_argument",
					   "field 'max_output' must be a size in bytes up to %u",
					   EXEC_MAX_OUTPUT_LIMIT);
			return false;
		}
		if (bytes)
			rq->max_output = (size_t)bytes;
	}
	return true;
}

static bool get_stdin(struct http_conn *c, const cJSON *j, struct exec_req *rq)
{
	const char *in, *in64;
	if (!get_str(c, j, "stdin", &in) || !get_str(c, j, "stdin_base64", &in64))
		return false;
	if (in && in64) {
		bad(c, "give '%s' or 'stdin_base64', not both", "stdin");
		return false;
	}
	if (in) {
		rq->stdin_data = strdup(in);
		rq->stdin_len = strlen(in);
	} else if (in64) {
		rq->stdin_data = b64_decode(in64, &rq->stdin_len);
		if (!rq->stdin_data && rq->stdin_len == 0) {
			bad(c, "field '%s' is not valid base64", "stdin_base64");
			return false;
		}
	} else {
		return true;
	}
	if (!rq->stdin_data) {
		http_respond_error(c, 503, "resource_exhausted", "out of memory");
		return false;
	}
	rq->has_stdin = true;
	return true;
}

/* The command: "command" (run by /bin/sh -c) or "argv". */
static bool get_command(struct http_conn *c, const cJSON *j, struct exec_req *rq, bool session)
{
	const char *cmd;
	if (!get_str(c, j, "command", &cmd))
		return false;
	const cJSON *av = cJSON_GetObjectItemCaseSensitive(j, "argv");
	if (av && cJSON_IsNull(av))
		av = NULL;
	if (session && av) {
		bad(c, "a session runs a '%s' string, not argv", "command");
		return false;
	}
	if (cmd && av) {
		bad(c, "give '%s' or 'argv', not both", "command");
		return false;
	}
	if (!cmd && !av) {
		bad(c, "field '%s' is required (or argv)", "command");
		return false;
	}
	if (cmd) {
		rq->command = strdup(cmd);
		if (!session) {
			rq->argv = calloc(4, sizeof(*rq->argv));
			if (rq->argv) {
				rq->argv[0] = strdup("/bin/sh");
				rq->argv[1] = strdup("-c");
				rq->argv[2] = strdup(cmd);
			}
			if (!rq->argv || !rq->argv[0] || !rq->argv[1] || !rq->argv[2])
				goto nomem;
		}
		if (!rq->command)
			goto nomem;
		return true;
	}
	int n = cJSON_IsArray(av) ? cJSON_GetArraySize(av) : 0;
	if (n <= 0) {
		bad(c, "field '%s' must be a non-empty array of strings", "argv");
		return false;
	}
	rq->argv = calloc((size_t)n + 1, sizeof(*rq->argv));
	if (!rq->argv)
		goto nomem;
	struct xbuf joined = { 0 };
	int k = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, av) {
		if (!cJSON_IsString(it)) {
			free(joined.data);
			bad(c, "field '%s' must be a non-empty array of strings", "argv");
			return false;
		}
		rq->argv[k] = strdup(it->valuestring);
		if (!rq->argv[k] || (k && xbuf_add(&joined, " ", 1) < 0) ||
		    xbuf_add(&joined, it->valuestring, strlen(it->valuestring)) < 0) {
			free(joined.data);
			goto nomem;
		}
		k++;
	}
	rq->command = joined.data;
	return true;
nomem:
	http_respond_error(c, 503, "resource_exhausted", "out of memory");
	return false;
}

/* --- answers ------------------------------------------------------------------------ */

static void respond_err(struct http_conn *c, const struct af_err *e)
{
	int status = 500;
	const char *code = "internal";
	switch (e->errnum) {
	case ESRCH: status = 409; code = "not_running"; break;
	case EBUSY: status = 409; code = "conflict"; break;
	case ENOENT: status = 404; code = "not_found"; break;
	case EINVAL: status = 400; code = "invalid_argument"; break;
	case E2BIG: status = 413; code = "payload_too_large"; break;
	case EMFILE: case ENFILE: case EAGAIN: status = 429; code = "resource_exhausted"; break;
	case ENOMEM: status = 503; code = "resource_exhausted"; break;
	default: break;
	}
	http_respond_error(c, status, code, "%s", e->msg[0] ? e->msg : strerror(e->errnum));
}

/* The sandbox of the route, running; NULL after replying. */
static struct sbx *running_sandbox(struct http_conn *c, struct serve_ctx *ctx, const char *id,
				   bool must_run)
{
	struct sbx *s = sbx_get(ctx->sandboxes, id);
	if (!s) {
		http_respond_error(c, 404, "not_found", "no sandbox '%s'", id);
		return NULL;
	}
	if (must_run && !sbx_running(s)) {
		http_respond_error(c, 409, "not_running", "sandbox '%s' is not running", id);
		return NULL;
	}
	return s;
}

static struct session *find_session(struct http_conn *c, struct serve_ctx *ctx, const char *id)
{
	struct session *s = session_get(ctx->execs, id);
	if (!s)
		http_respond_error(c, 404, "not_found", "no session '%s'", id);
	return s;
}

static void do_exec(struct http_conn *c, const struct http_req *r, struct serve_ctx *ctx,
		    struct actx *a, bool session)
{
	struct exec_req rq = { 0 };
	cJSON *j = body_json(c, r);
	if (!j)
		return;
	bool ok = get_command(c, j, &rq, session) && get_stdin(c, j, &rq) && get_limits(c, j, &rq);
	if (ok && !session)
		ok = get_env(c, j, &rq.env) && get_workdir(c, j, &rq.workdir, &rq.workdir_beneath);
	cJSON_Delete(j);
	if (!ok) {
		exec_req_clear(&rq);
		return;
	}
	bool stream = a->route == X_EXEC_STREAM || a->route == X_SS_STREAM;
	struct af_err e = { 0 };
	int res;
	if (session) {
		struct session *s = session_get(ctx->execs, a->id);
		const char *why = s ? NULL : session_gone_why(ctx->execs, a->id);
		if (why)
			http_respond_error(c, 409, "not_running", "session '%s' is closed: %s",
					   a->id, why);
		else if (!s)
			find_session(c, ctx, a->id);
		if (!s) {
			exec_req_clear(&rq);
			return;
		}
		res = session_exec(s, &rq, c, &a->active, stream, &e);
	} else {
		struct sbx *sb = running_sandbox(c, ctx, a->id, true);
		if (!sb) {
			exec_req_clear(&rq);
			return;
		}
		res = exec_start(ctx->execs, sb, &rq, c, &a->active, stream, &e);
	}
	exec_req_clear(&rq);
	if (res < 0)
		respond_err(c, &e);
}

static void sessions(struct http_conn *c, const struct http_req *r, struct serve_ctx *ctx,
		     struct actx *a)
{
	struct sbx *sb = running_sandbox(c, ctx, a->id, r->method == HTTP_POST);
	if (!sb)
		return;
	if (r->method == HTTP_GET) {
		cJSON *list = session_list(ctx->execs, sbx_id(sb)), *j = cJSON_CreateObject();
		if (!list || !j || !cJSON_AddItemToObject(j, "sessions", list)) {
			cJSON_Delete(list);
			cJSON_Delete(j);
			http_respond_error(c, 503, "resource_exhausted", "out of memory");
			return;
		}
		http_respond_json(c, 200, j);
		return;
	}
	cJSON *j = body_json(c, r);
	if (!j)
		return;
	const char *shell;
	char **env = NULL, *workdir = NULL;
	bool beneath = false;
	bool ok = get_str(c, j, "shell", &shell) && get_env(c, j, &env) &&
		  get_workdir(c, j, &workdir, &beneath);
	if (ok && shell && shell[0] != '/') {
		bad(c, "field '%s' must be an absolute path, like /bin/sh", "shell");
		ok = false;
	}
	struct af_err e = { 0 };
	if (ok && session_create(ctx->execs, sb, shell, env, workdir, beneath, c, &a->active, &e) < 0)
		respond_err(c, &e);
	cJSON_Delete(j);
	for (size_t i = 0; env && env[i]; i++)
		free(env[i]);
	free(env);
	free(workdir);
}

bool api_exec_request(struct http_conn *c, struct http_req *r, struct serve_ctx *ctx)
{
	if (r->cleanup != actx_cleanup)
		return false;
	struct actx *a = r->data;
	switch (a->route) {
	case X_EXEC:
	case X_EXEC_STREAM:
		do_exec(c, r, ctx, a, false);
		break;
	case X_SS_EXEC:
	case X_SS_STREAM:
		do_exec(c, r, ctx, a, true);
		break;
	case X_SESSIONS:
		sessions(c, r, ctx, a);
		break;
	case X_SESSION: {
		struct session *s = find_session(c, ctx, a->id);
		if (!s)
			break;
		if (r->method == HTTP_GET) {
			http_respond_json(c, 200, session_json(s));
		} else {
			session_delete(s);
			http_respond_json(c, 200, cJSON_CreateObject());
		}
		break;
	}
	default:
		http_respond_error(c, 404, "not_found", "no route '%s'", r->path);
		break;
	}
	return true;
}
