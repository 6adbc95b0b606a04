/* api.c - routes of serve (see api.h and agentfense-api(7)).
 *
 * Paths and field names follow the published AgentFense REST API
 * (snake_case JSON, /v1/codebases...), plus routes of agentfense's own
 * for what that API lacks (file upload and download, tar upload,
 * version).  Errors are an HTTP status and {"code", "message"}, codes
 * from a fixed list. */
#include "serve/api.h"

#include <cJSON.h>
#include <errno.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "serve/api_sandbox.h"
#include "serve/ctx.h"
#include "serve/exec.h"
#include "serve/sbx.h"
#include "store/store.h"

const char *const api_features[] = {
	"codebases", "codebase_files", "file_upload", "file_download", "tar_upload",
	"ndjson_streams", "sandboxes", "sandbox_files", "presets", "exec", "exec_stream", "sessions",
	"session_stream", NULL,
};

enum route {
	R_NONE,
	R_VERSION,
	R_CODEBASES,      /* /v1/codebases */
	R_CODEBASE,       /* /v1/codebases/{id} */
	R_FILES,          /* /v1/codebases/{id}/files */
	R_FILE,           /* /v1/codebases/{id}/files/{path} */
	R_ARCHIVE,        /* /v1/codebases/{id}/archive */
};

struct ctx {
	enum route route;
	char id[64];
	char *fpath;      /* R_FILE: decoded path */
	struct store_upload *up;
	int tar_fd;
	int body_err;     /* set in on_head when the body sink failed */
};

static void ctx_cleanup(struct http_req *r)
{
	struct ctx *x = r->data;
	if (!x)
		return;
	store_upload_abort(x->up);
	if (x->tar_fd >= 0)
		close(x->tar_fd);
	free(x->fpath);
	free(x);
	r->data = NULL;
}

/* Decode %XX escapes (and '+' as a space in a query).  Returns a
 * malloc'd string, or NULL on a bad escape, an escaped NUL or ENOMEM. */
static char *pct_decode(const char *s, size_t len, bool query)
{
	char *o = malloc(len + 1);
	if (!o)
		return NULL;
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];
		if (ch == '%') {
			int v = 0;
			for (int k = 1; k <= 2; k++) {
				char h = i + (size_t)k < len ? s[i + (size_t)k] : 0;
				int d = h >= '0' && h <= '9' ? h - '0'
					: h >= 'a' && h <= 'f' ? h - 'a' + 10
					: h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
				if (d < 0) {
					free(o);
					return NULL;
				}
				v = v * 16 + d;
			}
			if (v == 0) {
				free(o);
				return NULL;
			}
			ch = (char)v;
			i += 2;
		} else if (ch == '+' && query) {
			ch = ' ';
		}
		o[n++] = ch;
	}
	o[n] = '\0';
	return o;
}

/* The value of key in the query, decoded (malloc'd), or NULL.  *bad is
 * set on a malformed escape. */
static char *query_get(const char *q, const char *key, bool *bad)
{
	size_t kl = strlen(key);
	for (const char *p = q; p && *p;) {
		const char *amp = strchrnul(p, '&');
		const char *eq = memchr(p, '=', (size_t)(amp - p));
		size_t nl = eq ? (size_t)(eq - p) : (size_t)(amp - p);
		if (nl == kl && strncmp(p, key, kl) == 0) {
			const char *v = eq ? eq + 1 : amp;
			char *d = pct_decode(v, (size_t)(amp - v), true);
			if (!d)
				*bad = true;
			return d;
		}
		p = *amp ? amp + 1 : amp;
	}
	return NULL;
}

/* "true"/"1"/"" (present without value) is true. */
static int query_bool(const char *q, const char *key, bool *out, bool *bad)
{
	autofree char *v = query_get(q, key, bad);
	if (!v)
		return 0;
	if (!strcmp(v, "true") || !strcmp(v, "1") || !*v)
		*out = true;
	else if (!strcmp(v, "false") || !strcmp(v, "0"))
		*out = false;
	else
		return -EINVAL;
	return 0;
}

static int status_of(int errnum, const char **code)
{
	switch (errnum) {
	case ENOENT: *code = "not_found"; return 404;
	case EINVAL: case ELOOP: case ENOTDIR: case EISDIR: case ENAMETOOLONG:
		*code = "invalid_argument"; return 400;
	case EBUSY: case EEXIST: case ENOTEMPTY: *code = "conflict"; return 409;
	case EACCES: case EPERM: *code = "permission_denied"; return 403;
	case ENOSPC: case EDQUOT: case EFBIG: case ENOMEM: case EMFILE: case ENFILE: case E2BIG:
		*code = "resource_exhausted"; return 507;
	default: *code = "internal"; return 500;
	}
}

static void respond_err(struct http_conn *c, const struct af_err *e)
{
	const char *code;
	int status = status_of(e->errnum, &code);
	if (e->errnum == ENOMEM || e->errnum == EMFILE || e->errnum == ENFILE)
		status = 503;
	http_respond_error(c, status, code, "%s", e->msg[0] ? e->msg : strerror(e->errnum));
}

static void bad_request(struct http_conn *c, const char *msg)
{
	http_respond_error(c, 400, "invalid_argument", "%s", msg);
}

static bool parse_route(const char *path, struct ctx *x)
{
	static const char pre[] = "/v1/codebases";
	if (strcmp(path, "/v1/version") == 0) {
		x->route = R_VERSION;
		return true;
	}
	if (strncmp(path, pre, sizeof(pre) - 1) != 0)
		return false;
	const char *p = path + sizeof(pre) - 1;
	if (!*p || (p[0] == '/' && !p[1])) {
		x->route = R_CODEBASES;
		return true;
	}
	if (*p != '/')
		return false;
	p++;
	const char *slash = strchrnul(p, '/');
	size_t idl = (size_t)(slash - p);
	if (idl == 0)
		return false;
	if (idl >= sizeof(x->id))
		idl = sizeof(x->id) - 1; /* no valid id is that long: not_found */
	memcpy(x->id, p, idl);
	x->id[idl] = '\0';
	if (!*slash || !slash[1]) {
		x->route = R_CODEBASE;
		return true;
	}
	const char *rest = slash + 1;
	if (strcmp(rest, "files") == 0 || strcmp(rest, "files/") == 0) {
		x->route = R_FILES;
		return true;
	}
	if (strncmp(rest, "files/", 6) == 0) {
		x->route = R_FILE;
		x->fpath = pct_decode(rest + 6, strlen(rest + 6), false);
		return true; /* NULL fpath: reported as a bad path */
	}
	if (strcmp(rest, "archive") == 0) {
		x->route = R_ARCHIVE;
		return true;
	}
	return false;
}

static bool method_ok(struct http_conn *c, const struct http_req *r, const struct ctx *x)
{
	const char *allowed;
	bool ok;
	switch (x->route) {
	case R_VERSION: ok = r->method == HTTP_GET; allowed = "GET"; break;
	case R_CODEBASES: ok = r->method == HTTP_GET || r->method == HTTP_POST; allowed = "GET, POST"; break;
	case R_CODEBASE: ok = r->method == HTTP_GET || r->method == HTTP_DELETE; allowed = "GET, DELETE"; break;
	case R_FILES: ok = r->method == HTTP_GET; allowed = "GET"; break;
	case R_FILE: ok = r->method == HTTP_GET || r->method == HTTP_PUT; allowed = "GET, PUT"; break;
	case R_ARCHIVE: ok = r->method == HTTP_PUT || r->method == HTTP_POST; allowed = "POST, PUT"; break;
	case R_NONE:
	default: ok = false; allowed = ""; break;
	}
	if (!ok)
		http_respond_error(c, 405, "method_not_allowed", "%s is not allowed on '%s' (allowed: %s)",
				   http_method_str((enum http_method)r->method), r->path, allowed);
	return ok;
}

void api_on_head(struct http_conn *c, struct http_req *r, void *arg)
{
	struct serve_ctx *sc = arg;
	struct store *st = sc->store;
	if (api_exec_head(c, r, sc) || api_sandbox_head(c, r, sc))
		return;
	struct ctx *x = calloc(1, sizeof(*x));
	if (!x) {
		http_respond_error(c, 503, "resource_exhausted", "out of memory");
		return;
	}
	x->tar_fd = -1;
	r->data = x;
	r->cleanup = ctx_cleanup;
	if (!parse_route(r->path, x)) {
		http_respond_error(c, 404, "not_found", "no route '%s'", r->path);
		return;
	}
	if (!method_ok(c, r, x))
		return;
	struct af_err e = { 0 };
	if (x->route == R_FILE && r->method == HTTP_PUT) {
		if (!x->fpath) {
			bad_request(c, "malformed path in the URL");
			return;
		}
		bool bad = false;
		autofree char *m = query_get(r->query, "mode", &bad);
		char *end = NULL;
		unsigned long mode = m ? strtoul(m, &end, 8) : 0644;
		if (bad || (m && (!*m || *end || mode > 0777))) {
			bad_request(c, "mode must be octal permission bits, like 0644");
			return;
		}
		int fd;
		if (store_upload_begin(st, x->id, x->fpath, (unsigned)mode, &x->up, &fd, &e) < 0) {
			respond_err(c, &e);
			return;
		}
		http_body_to_fd(c, fd, UINT64_MAX);
	} else if (x->route == R_ARCHIVE) {
		/* check the codebase before taking a large body */
		cJSON *meta;
		if (store_cb_get(st, x->id, &meta, &e) < 0) {
			respond_err(c, &e);
			return;
		}
		cJSON_Delete(meta);
		x->tar_fd = store_tmpfile(st);
		if (x->tar_fd < 0) {
			af_err_set(&e, -x->tar_fd, "cannot store the upload: %s", strerror(-x->tar_fd));
			respond_err(c, &e);
			return;
		}
		http_body_to_fd(c, x->tar_fd, UINT64_MAX);
	}
}

/* --- handlers ----------------------------------------------------------------- */

static void get_version(struct http_conn *c)
{
	cJSON *j = cJSON_CreateObject(), *f = cJSON_CreateArray();
	bool ok = j && f && cJSON_AddStringToObject(j, "version", AF_VERSION) &&
		  cJSON_AddStringToObject(j, "api_version", "v1");
	for (size_t i = 0; ok && api_features[i]; i++) {
		cJSON *s = cJSON_CreateString(api_features[i]);
		ok = s && cJSON_AddItemToArray(f, s);
		if (!s)
			ok = false;
	}
	if (ok && cJSON_AddItemToObject(j, "features", f))
		f = NULL;
	else
		ok = false;
	cJSON_Delete(f);
	if (!ok) {
		cJSON_Delete(j);
		http_respond_error(c, 503, "resource_exhausted", "out of memory");
		return;
	}
	http_respond_json(c, 200, j);
}

/* The request body as a JSON object ("" is {}); NULL after replying. */
static cJSON *json_body(struct http_conn *c, const struct http_req *r)
{
	const char *b = r->body ? r->body : "";
	while (*b == ' ' || *b == '\n' || *b == '\r' || *b == '\t')
		b++;
	cJSON *j = *b ? cJSON_ParseWithLength(b, r->body_len - (size_t)(b - (r->body ? r->body : b)))
		      : cJSON_CreateObject();
	if (!j) {
		bad_request(c, "the body is not valid JSON");
		return NULL;
	}
	if (!cJSON_IsObject(j)) {
		cJSON_Delete(j);
		bad_request(c, "the body must be a JSON object");
		return NULL;
	}
	return j;
}

/* Optional string field; false after replying on a wrong type. */
static bool field_str(struct http_conn *c, const cJSON *j, const char *name, const char **out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
	*out = NULL;
	if (!v || cJSON_IsNull(v))
		return true;
	if (!cJSON_IsString(v)) {
		http_respond_error(c, 400, "invalid_argument", "field '%s' must be a string", name);
		return false;
	}
	*out = v->valuestring;
	return true;
}

static void create_codebase(struct http_conn *c, const struct http_req *r, struct store *st)
{
	cJSON *j = json_body(c, r);
	if (!j)
		return;
	struct cb_create req = { 0 };
	const char **ign = NULL;
	cJSON *info = NULL, *skipped = NULL;
	const cJSON *labels = cJSON_GetObjectItemCaseSensitive(j, "labels");
	const cJSON *pats = cJSON_GetObjectItemCaseSensitive(j, "ignore_patterns");
	const cJSON *max = cJSON_GetObjectItemCaseSensitive(j, "max_file_size");
	if (!field_str(c, j, "name", &req.name) || !field_str(c, j, "owner_id", &req.owner_id) ||
	    !field_str(c, j, "source_path", &req.source))
		goto out;
	if (!req.name || !*req.name) {
		bad_request(c, "field 'name' is required");
		goto out;
	}
	if (labels && !cJSON_IsNull(labels)) {
		const cJSON *it;
		bool ok = cJSON_IsObject(labels);
		cJSON_ArrayForEach(it, labels)
			ok = ok && cJSON_IsString(it);
		if (!ok) {
			bad_request(c, "field 'labels' must be an object of strings");
			goto out;
		}
		req.labels = labels;
	}
	if (pats && !cJSON_IsNull(pats)) {
		int n = cJSON_IsArray(pats) ? cJSON_GetArraySize(pats) : -1;
		ign = n > 0 ? calloc((size_t)n, sizeof(*ign)) : NULL;
		if (n < 0) {
			bad_request(c, "field 'ignore_patterns' must be an array of strings");
			goto out;
		}
		if (n > 0 && !ign) {
			http_respond_error(c, 503, "resource_exhausted", "out of memory");
			goto out;
		}
		const cJSON *it;
		cJSON_ArrayForEach(it, pats) {
			if (!cJSON_IsString(it)) {
				bad_request(c, "field 'ignore_patterns' must be an array of strings");
				goto out;
			}
			ign[req.nignore++] = it->valuestring;
		}
		req.ignore = ign;
	}
	if (max && !cJSON_IsNull(max)) {
		double d = cJSON_IsNumber(max) ? max->valuedouble : -1;
		if (cJSON_IsString(max)) {
			char *end;
			d = strtod(max->valuestring, &end);
			if (end == max->valuestring || *end)
				d = -1;
		}
		if (d < 1 || d > 9.0e15 || d != (double)(uint64_t)d) {
			bad_request(c, "field 'max_file_size' must be a positive whole number of bytes");
			goto out;
		}
		req.max_file_size = (uint64_t)d;
	}
	if (req.source && req.source[0] != '/') {
		bad_request(c, "field 'source_path' must be an absolute path on the host");
		goto out;
	}
	struct af_err e = { 0 };
	if (store_cb_create(st, &req, &info, &skipped, &e) < 0) {
		respond_err(c, &e);
		goto out;
	}
	if (req.source && !cJSON_AddItemToObject(info, "skipped", skipped)) {
		http_respond_error(c, 503, "resource_exhausted", "out of memory");
		goto out;
	}
	if (req.source)
		skipped = NULL;
	http_respond_json(c, 200, info);
	info = NULL;
out:
	cJSON_Delete(info);
	cJSON_Delete(skipped);
	free(ign);
	cJSON_Delete(j);
}

static void list_codebases(struct http_conn *c, const struct http_req *r, struct store *st)
{
	bool bad = false;
	autofree char *owner = query_get(r->query, "owner_id", &bad);
	autofree char *label = query_get(r->query, "label", &bad);
	if (bad) {
		bad_request(c, "malformed query string");
		return;
	}
	cJSON *list;
	struct af_err e = { 0 };
	if (store_cb_list(st, owner, label, &list, &e) < 0) {
		respond_err(c, &e);
		return;
	}
	cJSON *j = cJSON_CreateObject();
	if (!j || !cJSON_AddItemToObject(j, "codebases", list)) {
		cJSON_Delete(j);
		cJSON_Delete(list);
		http_respond_error(c, 503, "resource_exhausted", "out of memory");
		return;
	}
	cJSON_AddStringToObject(j, "next_page_token", "");
	http_respond_json(c, 200, j);
}

static void codebase(struct http_conn *c, const struct http_req *r, struct serve_ctx *sc,
		     const struct ctx *x)
{
	struct store *st = sc->store;
	struct af_err e = { 0 };
	if (r->method == HTTP_GET) {
		cJSON *info;
		if (store_cb_get(st, x->id, &info, &e) < 0)
			respond_err(c, &e);
		else
			http_respond_json(c, 200, info);
		return;
	}
	bool bad = false, force = false;
	if (query_bool(r->query, "force", &force, &bad) < 0 || bad) {
		bad_request(c, "force must be true or false");
		return;
	}
	cJSON *meta;
	if (force && store_cb_get(st, x->id, &meta, &e) == 0) {
		cJSON_Delete(meta);
		/* its sandboxes first, their changes discarded */
		sbx_destroy_codebase(sc->sandboxes, x->id);
	}
	if (store_cb_delete(st, x->id, force, &e) < 0) {
		respond_err(c, &e);
		return;
	}
	http_respond_json(c, 200, cJSON_CreateObject());
}

static void list_files(struct http_conn *c, const struct http_req *r, struct store *st,
		       const struct ctx *x)
{
	bool bad = false, recursive = false, stream = false;
	autofree char *path = query_get(r->query, "path", &bad);
	if (query_bool(r->query, "recursive", &recursive, &bad) < 0 ||
	    query_bool(r->query, "stream", &stream, &bad) < 0 || bad) {
		bad_request(c, "malformed query: path is a string, recursive and stream true or false");
		return;
	}
	cJSON *files;
	struct af_err e = { 0 };
	if (store_files_list(st, x->id, path, recursive, &files, &e) < 0) {
		respond_err(c, &e);
		return;
	}
	if (stream) {
		/* one entry per line, as it would come from a long listing */
		if (http_stream_begin(c, 200, "application/x-ndjson") == 0) {
			cJSON *it;
			cJSON_ArrayForEach(it, files) {
				char *s = cJSON_PrintUnformatted(it);
				if (!s)
					break;
				size_t n = strlen(s);
				s[n] = '\n';
				int w = http_stream_write(c, s, n + 1);
				free(s);
				if (w < 0)
					break;
			}
			if (!it)
				http_stream_end(c);
		}
		cJSON_Delete(files);
		return;
	}
	cJSON *j = cJSON_CreateObject();
	if (!j || !cJSON_AddItemToObject(j, "files", files)) {
		cJSON_Delete(j);
		cJSON_Delete(files);
		http_respond_error(c, 503, "resource_exhausted", "out of memory");
		return;
	}
	http_respond_json(c, 200, j);
}

static void file(struct http_conn *c, const struct http_req *r, struct store *st, struct ctx *x)
{
	struct af_err e = { 0 };
	if (!x->fpath) {
		bad_request(c, "malformed path in the URL");
		return;
	}
	if (r->method == HTTP_GET) {
		int fd;
		uint64_t size;
		if (store_file_open(st, x->id, x->fpath, &fd, &size, &e) < 0)
			respond_err(c, &e);
		else
			http_respond_fd(c, 200, "application/octet-stream", fd, size);
		return;
	}
	cJSON *info;
	struct store_upload *up = steal_pointer(&x->up);
	if (store_upload_commit(up, &info, &e) < 0 || store_touch(st, x->id, &e) < 0) {
		respond_err(c, &e);
		return;
	}
	http_respond_json(c, 200, info);
}

static void archive(struct http_conn *c, const struct http_req *r, struct store *st,
		    struct ctx *x)
{
	struct af_err e = { 0 };
	unsigned long n;
	bool bad = false;
	autofree char *path = query_get(r->query, "path", &bad);
	if (bad) {
		bad_request(c, "malformed query string");
		return;
	}
	if (store_tar_extract(st, x->id, path ? path : "", x->tar_fd, &n, &e) < 0) {
		respond_err(c, &e);
		return;
	}
	cJSON *j = cJSON_CreateObject();
	if (j && !cJSON_AddNumberToObject(j, "entries", (double)n)) {
		cJSON_Delete(j);
		j = NULL;
	}
	http_respond_json(c, 200, j);
}

void api_on_request(struct http_conn *c, struct http_req *r, void *arg)
{
	struct serve_ctx *sc = arg;
	struct store *st = sc->store;
	if (api_exec_request(c, r, sc) || api_sandbox_request(c, r, sc))
		return;
	struct ctx *x = r->data;
	switch (x->route) {
	case R_VERSION:
		get_version(c);
		break;
	case R_CODEBASES:
		if (r->method == HTTP_POST)
			create_codebase(c, r, st);
		else
			list_codebases(c, r, st);
		break;
	case R_CODEBASE:
		codebase(c, r, sc, x);
		break;
	case R_FILES:
		list_files(c, r, st, x);
		break;
	case R_FILE:
		file(c, r, st, x);
		break;
	case R_ARCHIVE:
		archive(c, r, st, x);
		break;
	case R_NONE:
	default:
		http_respond_error(c, 404, "not_found", "no route '%s'", r->path);
		break;
	}
}

/* --- for the other route files ------------------------------------------------ */

void api_respond_err(struct http_conn *c, const struct af_err *e)
{
	respond_err(c, e);
}

char *api_query_get(const char *q, const char *key, bool *bad)
{
	return query_get(q, key, bad);
}

int api_query_bool(const char *q, const char *key, bool *out, bool *bad)
{
	return query_bool(q, key, out, bad);
}

char *api_pct_decode(const char *s, size_t len)
{
	return pct_decode(s, len, false);
}

cJSON *api_json_body(struct http_conn *c, const struct http_req *r)
{
	return json_body(c, r);
}
