/* api_sandbox.c - the sandbox and preset routes of serve (see
 * api_sandbox.h and agentfense-api(7)); the registry (sbx.h) does the
 * work. */
#include "serve/api_sandbox.h"

#include <cJSON.h>
#include <errno.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "serve/api.h"
#include "serve/ctx.h"
#include "serve/sbx.h"

enum sroute {
	S_SANDBOXES, /* /v1/sandboxes */
	S_SANDBOX,   /* /v1/sandboxes/{id} */
	S_START,     /* /v1/sandboxes/{id}/start */
	S_STOP,      /* /v1/sandboxes/{id}/stop */
	S_PRESETS,   /* /v1/presets */
	S_PRESET,    /* /v1/presets/{name} */
};

struct sreq {
	enum sroute route;
	char *id;       /* sandbox id, preset name (decoded) */
};

static void sreq_cleanup(struct http_req *r)
{
	struct sreq *x = r->data;
	if (!x)
		return;
	free(x->id);
	free(x);
	r->data = NULL;
}

static void oom_reply(struct http_conn *c)
{
	http_respond_error(c, 503, "resource_exhausted", "out of memory");
}

/* The route of path, or -1 if it is none of these.  *id: its id
 * segment, decoded (NULL on a bad escape). */
static int parse(const char *path, char **id)
{
	static const char sb[] = "/v1/sandboxes", pr[] = "/v1/presets";
	const char *p;
	bool presets = false;
	*id = NULL;
	if (strncmp(path, sb, sizeof(sb) - 1) == 0) {
		p = path + sizeof(sb) - 1;
	} else if (strncmp(path, pr, sizeof(pr) - 1) == 0) {
		p = path + sizeof(pr) - 1;
		presets = true;
	} else {
		return -1;
	}
	if (!*p || (p[0] == '/' && !p[1]))
		return presets ? S_PRESETS : S_SANDBOXES;
	if (*p != '/')
		return -1;
	p++;
	const char *slash = strchrnul(p, '/');
	if (slash == p)
		return -1;
	const char *rest = *slash ? slash + 1 : slash;
	int route;
	if (!*rest)
		route = presets ? S_PRESET : S_SANDBOX;
	else if (presets)
		return -1;
	else if (strcmp(rest, "start") == 0)
		route = S_START;
	else if (strcmp(rest, "stop") == 0)
		route = S_STOP;
	else
		return -1; /* exec, sessions, ...: other route files' */
	*id = api_pct_decode(p, (size_t)(slash - p));
	return route;
}

static bool method_ok(struct http_conn *c, const struct http_req *r, enum sroute route)
{
	const char *allowed = "GET";
	bool ok = r->method == HTTP_GET;
	switch (route) {
	case S_SANDBOXES:
		ok = r->method == HTTP_GET || r->method == HTTP_POST;
		allowed = "GET, POST";
		break;
	case S_SANDBOX:
		ok = r->method == HTTP_GET || r->method == HTTP_DELETE;
		allowed = "DELETE, GET";
		break;
	case S_START:
	case S_STOP:
		ok = r->method == HTTP_POST;
		allowed = "POST";
		break;
	case S_PRESETS:
	case S_PRESET:
		break;
	}
	if (!ok)
		http_respond_error(c, 405, "method_not_allowed", "%s is not allowed on '%s' (allowed: %s)",
				   http_method_str((enum http_method)r->method), r->path, allowed);
	return ok;
}

bool api_sandbox_head(struct http_conn *c, struct http_req *r, struct serve_ctx *sc AF_UNUSED)
{
	char *id;
	int route = parse(r->path, &id);
	if (route < 0)
		return false;
	struct sreq *x = calloc(1, sizeof(*x));
	if (!x) {
		free(id);
		oom_reply(c);
		return true;
	}
	x->route = (enum sroute)route;
	x->id = id;
	r->data = x;
	r->cleanup = sreq_cleanup;
	method_ok(c, r, x->route);
	return true;
}

/* An error of the registry as its status and code. */
static void sbx_error(struct http_conn *c, const struct af_err *e)
{
	const char *m = e->msg[0] ? e->msg : strerror(e->errnum);
	switch (e->errnum) {
	case ESRCH:
		http_respond_error(c, 409, "not_running", "%s", m);
		break;
	case EBUSY:
		http_respond_error(c, 409, "conflict", "%s", m);
		break;
	case EMFILE:
		http_respond_error(c, 429, "resource_exhausted", "%s", m);
		break;
	default:
		api_respond_err(c, e);
		break;
	}
}

static struct sbx *find(struct http_conn *c, struct serve_ctx *sc, const struct sreq *x)
{
	struct sbx *s = x->id ? sbx_get(sc->sandboxes, x->id) : NULL;
	if (!s)
		http_respond_error(c, 404, "not_found", "no sandbox '%s'",
				   x->id ? x->id : "(malformed)");
	return s;
}

static void reply_sandbox(struct http_conn *c, int status, const struct sbx *s)
{
	cJSON *j = sbx_json(s);
	if (!j)
		oom_reply(c);
	else
		http_respond_json(c, status, j);
}

static void create(struct http_conn *c, const struct http_req *r, struct serve_ctx *sc)
{
	cJSON *req = api_json_body(c, r), *out;
	struct af_err e = { 0 };
	if (!req)
		return;
	if (sbx_create(sc->sandboxes, req, &out, &e) < 0)
		sbx_error(c, &e);
	else
		http_respond_json(c, 201, out);
	cJSON_Delete(req);
}

static void list(struct http_conn *c, const struct http_req *r, struct serve_ctx *sc)
{
	bool bad = false;
	autofree char *cb = api_query_get(r->query, "codebase_id", &bad);
	autofree char *status = api_query_get(r->query, "status", &bad);
	autofree char *label = api_query_get(r->query, "label", &bad);
	if (bad) {
		http_respond_error(c, 400, "invalid_argument", "malformed query string");
		return;
	}
	cJSON *arr, *j;
	struct af_err e = { 0 };
	if (sbx_list(sc->sandboxes, cb, status, label, &arr, &e) < 0) {
		sbx_error(c, &e);
		return;
	}
	j = cJSON_CreateObject();
	if (!j || !cJSON_AddItemToObject(j, "sandboxes", arr)) {
		cJSON_Delete(j);
		cJSON_Delete(arr);
		oom_reply(c);
		return;
	}
	cJSON_AddStringToObject(j, "next_page_token", "");
	http_respond_json(c, 200, j);
}

static void destroy(struct http_conn *c, struct serve_ctx *sc, struct sbx *s)
{
	cJSON *delta = NULL, *j;
	struct af_err e = { 0 };
	/* a failed sync is reported in the delta (fate sync_failed, error) */
	sbx_destroy(sc->sandboxes, s, false, &delta, &e);
	j = cJSON_CreateObject();
	if (!delta || !j || !cJSON_AddItemToObject(j, "delta", delta)) {
		cJSON_Delete(delta);
		cJSON_Delete(j);
		oom_reply(c);
		return;
	}
	http_respond_json(c, 200, j);
}

static cJSON *preset_json(const struct preset_info *pi, struct af_err *err)
{
	struct policy *p = policy_new();
	cJSON *o = NULL;
	if (policy_add_preset(p, pi->name, err) < 0)
		goto out;
	policy_finalize(p);
	o = cJSON_CreateObject();
	cJSON *rules = NULL;
	bool ok = o && cJSON_AddStringToObject(o, "name", pi->name) &&
		  cJSON_AddStringToObject(o, "description", pi->description ? pi->description : "") &&
		  cJSON_AddStringToObject(o, "source", pi->source) &&
		  (rules = cJSON_AddArrayToObject(o, "rules"));
	for (size_t i = 0; ok && i < policy_rule_count(p); i++) {
		const struct rule *ru = policy_rule_at(p, i);
		cJSON *jr = cJSON_CreateObject();
		ok = jr && cJSON_AddItemToArray(rules, jr) &&
		     cJSON_AddStringToObject(jr, "pattern", rule_pattern(ru)) &&
		     cJSON_AddStringToObject(jr, "permission", level_name(rule_level(ru))) &&
		     cJSON_AddStringToObject(jr, "type", "glob") &&
		     cJSON_AddNumberToObject(jr, "priority", rule_priority(ru));
		if (!jr)
			ok = false;
	}
	if (!ok) {
		cJSON_Delete(o);
		o = NULL;
		af_err_set(err, ENOMEM, "out of memory");
	}
out:
	policy_free(p);
	return o;
}

static void presets(struct http_conn *c, const struct sreq *x)
{
	struct af_err e = { 0 };
	struct preset_info *pl = NULL;
	int n = preset_list(&pl, &e);
	if (n < 0) {
		api_respond_err(c, &e);
		return;
	}
	cJSON *j = NULL;
	if (x->route == S_PRESET) {
		int i;
		for (i = 0; x->id && i < n && strcmp(pl[i].name, x->id) != 0; i++)
			;
		if (!x->id || i == n)
			af_err_set(&e, ENOENT, "no preset '%s'", x->id ? x->id : "(malformed)");
		else
			j = preset_json(&pl[i], &e);
	} else {
		cJSON *arr = cJSON_CreateArray();
		j = cJSON_CreateObject();
		bool ok = j && arr && cJSON_AddItemToObject(j, "presets", arr);
		if (!ok)
			cJSON_Delete(arr);
		for (int i = 0; ok && i < n; i++) {
			cJSON *o = preset_json(&pl[i], &e);
			ok = o && cJSON_AddItemToArray(arr, o);
		}
		if (!ok) {
			cJSON_Delete(j);
			j = NULL;
		}
	}
	preset_list_free(pl, n);
	if (j)
		http_respond_json(c, 200, j);
	else
		api_respond_err(c, &e);
}

bool api_sandbox_request(struct http_conn *c, struct http_req *r, struct serve_ctx *sc)
{
	if (r->cleanup != sreq_cleanup)
		return false;
	struct sreq *x = r->data;
	struct af_err e = { 0 };
	struct sbx *s;
	switch (x->route) {
	case S_SANDBOXES:
		if (r->method == HTTP_POST)
			create(c, r, sc);
		else
			list(c, r, sc);
		break;
	case S_SANDBOX:
		if (!(s = find(c, sc, x)))
			break;
		if (r->method == HTTP_DELETE)
			destroy(c, sc, s);
		else
			reply_sandbox(c, 200, s);
		break;
	case S_START:
	case S_STOP:
		if (!(s = find(c, sc, x)))
			break;
		if ((x->route == S_START ? sbx_start(s, &e) : sbx_stop(s, &e)) < 0)
			sbx_error(c, &e);
		else
			reply_sandbox(c, 200, s);
		break;
	case S_PRESETS:
	case S_PRESET:
		presets(c, x);
		break;
	}
	return true;
}
