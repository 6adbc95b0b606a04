/* api_sandbox.c - the sandbox and preset routes of serve (see
 * api_sandbox.h and agentfense-api(7)); the registry (sbx.h) does the
 * work. */
#include "serve/api_sandbox.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "policy/policy.h"
#include "serve/api.h"
#include "serve/ctx.h"
#include "serve/loop.h"
#include "serve/sbx.h"
#include "store/store.h"

/* A listing answers with at most this many entries, read from at most
 * this many bytes of records, in a reply of at most this many bytes (it
 * must pass the output limit, SERVE_MAX_OUTPUT); the rest is cut off
 * ("truncated": true), so that a sandbox full of files cannot make serve
 * hold unbounded memory or disk. */
#define LIST_MAX_ENTRIES 100000u
#define LIST_MAX_BYTES (16ull << 20)
#define LIST_MAX_REPLY (15u << 20)

enum sroute {
	S_SANDBOXES, /* /v1/sandboxes */
	S_SANDBOX,   /* /v1/sandboxes/{id} */
	S_START,     /* /v1/sandboxes/{id}/start */
	S_STOP,      /* /v1/sandboxes/{id}/stop */
	S_FILES,     /* /v1/sandboxes/{id}/files */
	S_FILE,      /* /v1/sandboxes/{id}/files/{path} */
	S_PRESETS,   /* /v1/presets */
	S_PRESET,    /* /v1/presets/{name} */
};

struct sreq {
	enum sroute route;
	char *id;       /* sandbox id, preset name (decoded) */
	char *fpath;    /* S_FILE: the path, decoded (NULL on a bad escape) */
	/* a file operation in the sandbox, answered when it ends */
	struct serve_ctx *sc;
	struct http_conn *c;
	struct sbx *s;
	struct sbx_watch w;     /* linked while the operation runs */
	struct sandbox_proc *p;
	int pfd;                /* sproc_fd(p), watched */
	int in, out;            /* temporary files: a PUT's body, the output */
	int rpipe;              /* the output comes through it into out, watched */
	uint64_t staged;        /* bytes of it in out so far */
	bool read_next;         /* a STAT that checks the size before the READ */
	bool op_waiting;        /* a stop or destroy of s answers it (sbx_op_detach) */
	bool truncated;         /* LIST: cut off at LIST_MAX_BYTES or LIST_MAX_ENTRIES */
	char *rel;              /* the path relative to /workspace ("" for it) */
	enum sproc_op op;
	bool recursive;
	unsigned mode;
};

/* End the file operation (killed if it still runs).  Idempotent. */
static void fop_end(struct sreq *x)
{
	if (x->w.next)
		sbx_watch_del(x->s, &x->w);
	if (x->pfd >= 0) {
		ev_fd_del(x->sc->loop, x->pfd);
		x->pfd = -1;
	}
	if (x->rpipe >= 0) {
		ev_fd_del(x->sc->loop, x->rpipe);
		close(x->rpipe);
		x->rpipe = -1;
	}
	sproc_free(steal_pointer(&x->p));
}

static void sreq_cleanup(struct http_req *r)
{
	struct sreq *x = r->data;
	if (!x)
		return;
	fop_end(x);
	if (x->in >= 0)
		close(x->in);
	if (x->out >= 0)
		close(x->out);
	free(x->rel);
	free(x->fpath);
	free(x->id);
	free(x);
	r->data = NULL;
}

/* The client left before the answer: stop working for it (a stop or
 * destroy runs to its end all the same, unanswered). */
static void sreq_on_close(struct http_req *r)
{
	struct sreq *x = r->data;
	if (!x)
		return;
	if (x->op_waiting) {
		sbx_op_detach(x->s);
		x->op_waiting = false;
	}
	fop_end(x);
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
	else if (strcmp(rest, "files") == 0 || strcmp(rest, "files/") == 0)
		route = S_FILES;
	else if (strncmp(rest, "files/", 6) == 0)
		route = S_FILE;
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
	case S_FILE:
		ok = r->method == HTTP_GET || r->method == HTTP_PUT;
		allowed = "GET, PUT";
		break;
	case S_FILES:
	case S_PRESETS:
	case S_PRESET:
		break;
	}
	if (!ok)
		http_respond_error(c, 405, "method_not_allowed", "%s is not allowed on '%s' (allowed: %s)",
				   http_method_str((enum http_method)r->method), r->path, allowed);
	return ok;
}

static bool file_head(struct http_conn *c, struct http_req *r, struct sreq *x);

bool api_sandbox_head(struct http_conn *c, struct http_req *r, struct serve_ctx *sc)
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
	x->sc = sc;
	x->c = c;
	x->pfd = x->in = x->out = x->rpipe = -1;
	r->data = x;
	r->cleanup = sreq_cleanup;
	if (x->route == S_FILE) {
		const char *f = strstr(r->path + strlen("/v1/sandboxes/"), "/files/") + 7;
		x->fpath = api_pct_decode(f, strlen(f));
	}
	if (method_ok(c, r, x->route) && (x->route == S_FILE || x->route == S_FILES))
		file_head(c, r, x);
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

/* {"delta": delta} (taken) as the answer. */
static void destroy_reply(struct http_conn *c, cJSON *delta)
{
	cJSON *j = cJSON_CreateObject();
	if (!delta || !j || !cJSON_AddItemToObject(j, "delta", delta)) {
		cJSON_Delete(delta);
		cJSON_Delete(j);
		oom_reply(c);
		return;
	}
	http_respond_json(c, 200, j);
}

/* A stop or destroy that ran off the loop ended: answer with what it
 * did (the Sandbox, or the delta report). */
static void op_done(void *arg, int r, cJSON *result, const struct af_err *e)
{
	struct sreq *x = arg;
	x->op_waiting = false;
	if (r < 0) {
		cJSON_Delete(result);
		sbx_error(x->c, e);
	} else if (x->route == S_SANDBOX) {
		destroy_reply(x->c, result);
	} else {
		http_respond_json(x->c, 200, result);
	}
}

/* Start the stop or destroy of x->s; its answer deferred until it ends
 * off the loop, or given now. */
static void stop_or_destroy(struct http_conn *c, struct http_req *r, struct sreq *x)
{
	cJSON *delta = NULL;
	struct af_err e = { 0 };
	/* a failed sync is reported in the delta (fate sync_failed, error) */
	int rc = x->route == S_SANDBOX ? sbx_destroy_begin(x->s, op_done, x, &delta, &e)
				       : sbx_stop(x->s, op_done, x, &e);
	if (rc == 1) {
		x->op_waiting = true;
		r->on_close = sreq_on_close;
		http_defer(c);
	} else if (rc < 0 && e.errnum != EBUSY && x->route == S_SANDBOX) {
		/* the sandbox is forgotten all the same */
		destroy_reply(c, delta);
	} else if (rc < 0) {
		sbx_error(c, &e);
	} else if (x->route == S_SANDBOX) {
		destroy_reply(c, delta);
	} else {
		reply_sandbox(c, 200, x->s);
	}
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


/* --- files through the view ---------------------------------------------------- */

/* A file operation's errno as the answer: what the view refused is what
 * a process in the sandbox would have met. */
static void file_error(struct http_conn *c, int e, const char *rel)
{
	switch (e) {
	case ENOENT:
		http_respond_error(c, 404, "not_found", "no file '%s' in the sandbox", rel);
		break;
	case EACCES:
	case EPERM:
	case EROFS:
		http_respond_error(c, 403, "permission_denied", "'%s': %s", rel, strerror(e));
		break;
	case EXDEV:
	case ELOOP:
		http_respond_error(c, 400, "invalid_argument",
				   "'%s' leads out of /workspace through a symbolic link", rel);
		break;
	case EISDIR:
		http_respond_error(c, 400, "invalid_argument", "'%s' is a directory", rel);
		break;
	case ENOTDIR:
	case EINVAL:
		http_respond_error(c, 400, "invalid_argument", "'%s' is not a regular file", rel);
		break;
	case ENOSPC:
	case EDQUOT:
		http_respond_error(c, 507, "resource_exhausted", "'%s': %s", rel, strerror(e));
		break;
	default:
		http_respond_error(c, 500, "internal", "'%s': %s", rel, strerror(e));
		break;
	}
}

/* The sandbox stops or goes: the operation ends with it. */
static void fop_ending(struct sbx_watch *w)
{
	struct sreq *x = (struct sreq *)((char *)w - offsetof(struct sreq, w));
	fop_end(x);
	http_respond_error(x->c, 409, "not_running", "sandbox '%s' stopped", x->id);
}

/* A FileInfo (as for codebases) from one LIST/STAT record, or NULL. */
static cJSON *record_info(char *rec, const char *base)
{
	char type;
	unsigned mode;
	unsigned long long size;
	long long sec;
	long nsec;
	int n = 0;
	if (sscanf(rec, "%c %o %llu %lld.%ld %n", &type, &mode, &size, &sec, &nsec, &n) < 5 || !n)
		return NULL;
	const char *p = rec + n;
	autofree char *path = NULL;
	if (asprintf(&path, "%s%s%s", base, *base ? "/" : "", p) < 0)
		return NULL;
	const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	char mt[32], ms[8];
	struct tm tm;
	time_t t = (time_t)sec;
	if (!gmtime_r(&t, &tm)) /* a year past what struct tm holds */
		memset(&tm, 0, sizeof(tm));
	strftime(mt, sizeof(mt), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(ms, sizeof(ms), "%04o", mode & 07777);
	cJSON *o = cJSON_CreateObject();
	if (!o || !cJSON_AddStringToObject(o, "name", name) ||
	    !cJSON_AddStringToObject(o, "path", path) ||
	    !cJSON_AddNumberToObject(o, "size", type == 'f' ? (double)size : 0) ||
	    !cJSON_AddStringToObject(o, "mode", ms) || !cJSON_AddStringToObject(o, "mtime", mt) ||
	    !cJSON_AddBoolToObject(o, "is_dir", type == 'd') ||
	    !cJSON_AddStringToObject(o, "type", type == 'd' ? "dir" : type == 'l' ? "symlink"
							     : type == 'f' ? "file" : "other")) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* The bytes s takes in JSON, quotes and escapes included (at most:
 * cJSON may print some of them shorter). */
static size_t json_str_len(const char *s)
{
	size_t n = 2;
	for (; *s; s++)
		n += (unsigned char)*s < 0x20 || *s == '"' || *s == '\\' ? 6 : 1;
	return n;
}

/* The bytes one FileInfo takes in the reply, at most. */
static size_t info_len(const cJSON *o)
{
	size_t n = 3; /* braces, the separator */
	for (const cJSON *f = o->child; f; f = f->next) {
		n += json_str_len(f->string) + 2;
		if (cJSON_IsString(f))
			n += json_str_len(f->valuestring);
		else if (cJSON_IsNumber(f))
			n += (size_t)snprintf(NULL, 0, "%1.17g", f->valuedouble);
		else
			n += 5;
	}
	return n;
}

static int cmp_path(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
	return strcmp(cJSON_GetObjectItemCaseSensitive(x, "path")->valuestring,
		      cJSON_GetObjectItemCaseSensitive(y, "path")->valuestring);
}

/* The listing in x->out as {"files": [...]}, sorted by path; NULL
 * without memory. */
static cJSON *listing(struct sreq *x)
{
	off_t size = lseek(x->out, 0, SEEK_END);
	if (size < 0 || lseek(x->out, 0, SEEK_SET) < 0)
		return NULL;
	autofree char *buf = malloc((size_t)size + 1);
	if (!buf || read_full(x->out, buf, (size_t)size) != (ssize_t)size)
		return NULL;
	buf[size] = '\0';
	/* a listing cut off mid-record: the partial one is dropped */
	while (size > 0 && buf[size - 1] != '\0')
		size--;
	size_t n = 0, cap = 64;
	cJSON **v = malloc(cap * sizeof(*v));
	bool ok = v != NULL;
	for (char *p = buf; ok && p < buf + size; p += strlen(p) + 1) {
		if (n == LIST_MAX_ENTRIES) {
			x->truncated = true;
			break;
		}
		if (n == cap) {
			cJSON **nv = realloc(v, (cap *= 2) * sizeof(*v));
			if (!nv) {
				ok = false;
				break;
			}
			v = nv;
		}
		/* STAT names the entry by its whole path: the base is its own */
		cJSON *o = record_info(p, x->op == SPROC_STAT ? "" : x->rel);
		if (o && x->op == SPROC_STAT) {
			cJSON_ReplaceItemInObjectCaseSensitive(o, "path", cJSON_CreateString(x->rel));
			const char *nm = strrchr(x->rel, '/') ? strrchr(x->rel, '/') + 1 : x->rel;
			cJSON_ReplaceItemInObjectCaseSensitive(o, "name", cJSON_CreateString(nm));
		}
		if (!o) {
			ok = false;
			break;
		}
		v[n++] = o;
	}
	cJSON *j = ok ? cJSON_CreateObject() : NULL, *arr = j ? cJSON_AddArrayToObject(j, "files")
							     : NULL;
	if (ok)
		qsort(v, n, sizeof(*v), cmp_path);
	size_t reply = 64;
	bool cut = false;
	for (size_t i = 0; i < n; i++) {
		if (arr && !cut && (reply += info_len(v[i])) > LIST_MAX_REPLY)
			cut = x->truncated = true;
		if (!arr || cut || !cJSON_AddItemToArray(arr, v[i]))
			cJSON_Delete(v[i]);
	}
	free(v);
	if (!arr || (x->truncated && !cJSON_AddBoolToObject(j, "truncated", true))) {
		cJSON_Delete(j);
		return NULL;
	}
	return j;
}

/* Answer a LIST or STAT with what x->out holds; truncated: cut off. */
static void list_reply(struct sreq *x, bool truncated)
{
	x->truncated = truncated;
	cJSON *j = listing(x);
	if (!j)
		http_respond_error(x->c, 503, "resource_exhausted", "out of memory");
	else
		http_respond_json(x->c, 200, j);
}

static int fop_spawn(struct sreq *x, struct af_err *err);

/* size: the file's by its STAT; 0: it grew past the cap while read. */
static void too_big(struct sreq *x, unsigned long long size)
{
	unsigned long long cap = x->sc->max_read;
	if (size)
		http_respond_error(x->c, 413, "payload_too_large",
				   "'%s' is %llu bytes, over the %llu bytes one read may return",
				   x->rel, size, cap);
	else
		http_respond_error(x->c, 413, "payload_too_large",
				   "'%s' grew past the %llu bytes one read may return while it "
				   "was read", x->rel, cap);
}

/* Move what the operation wrote to the pipe into x->out, at most 1 MiB
 * per call so that one read does not hold up the loop.  A file in the
 * sandbox may grow while it is read (or after the STAT that checked it):
 * what is staged is capped here, not by the STAT.  Returns 1 at end of
 * file, 0 when the pipe is empty, 2 after 1 MiB, -EFBIG over max_read
 * (LIST_MAX_BYTES for a listing), or -errno. */
static int read_drain(struct sreq *x)
{
	char buf[64 << 10];
	for (int i = 0; i < 16; i++) {
		ssize_t n = read(x->rpipe, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? 0 : -errno;
		if (n == 0)
			return 1;
		uint64_t cap = x->op == SPROC_READ ? x->sc->max_read : LIST_MAX_BYTES;
		if ((uint64_t)n > cap - x->staged)
			return -EFBIG;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(x->out, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return -errno;
			off += w;
		}
		x->staged += (uint64_t)n;
	}
	return 2;
}

/* The READ's pipe is readable: stage what came, refuse past the cap. */
static void on_rpipe(struct ev_loop *l AF_UNUSED, int fd AF_UNUSED, uint32_t ev AF_UNUSED,
		     void *arg)
{
	struct sreq *x = arg;
	int r = read_drain(x);
	if (r == 0 || r == 2)
		return;
	if (r == 1) {
		/* the answer waits for the process's end (its errno) */
		ev_fd_del(x->sc->loop, x->rpipe);
		close(x->rpipe);
		x->rpipe = -1;
		return;
	}
	fop_end(x);
	if (r == -EFBIG && x->op != SPROC_READ)
		list_reply(x, true);
	else if (r == -EFBIG)
		too_big(x, 0);
	else
		file_error(x->c, -r, x->rel);
}

/* The size of the one STAT record in x->out; false if it is no regular
 * file or unreadable (the READ then says why). */
static bool stat_size(struct sreq *x, unsigned long long *size)
{
	char rec[64], type = 0;
	unsigned mode;
	ssize_t n = pread(x->out, rec, sizeof(rec) - 1, 0);
	if (n <= 0)
		return false;
	rec[n] = '\0';
	return sscanf(rec, "%c %o %llu", &type, &mode, size) == 3 && type == 'f';
}

/* The operation ended (or made progress): answer when it did. */
static void on_fop(struct ev_loop *l AF_UNUSED, int fd AF_UNUSED, uint32_t ev AF_UNUSED, void *arg)
{
	struct sreq *x = arg;
	struct sproc_result res = { 0 };
	struct af_err e = { 0 };
	int r = sproc_step(x->p, &res, &e);
	if (r == 0)
		return;
	/* the READ's writer is gone: what is left in the pipe is bounded by
	 * its buffer */
	int d = 1;
	if (r == 1 && x->rpipe >= 0)
		while ((d = read_drain(x)) == 2)
			;
	fop_end(x);
	if (r < 0) {
		api_respond_err(x->c, &e);
		return;
	}
	if (d == -EFBIG && x->op != SPROC_READ) {
		list_reply(x, true);
		return;
	}
	int fe = res.exec_errno ? res.exec_errno : res.exit_code ? EIO : 0;
	if (fe == ENOTDIR && x->op == SPROC_LIST) {
		/* the path is a file: it alone is the listing */
		x->op = SPROC_STAT;
		if (ftruncate(x->out, 0) < 0 || lseek(x->out, 0, SEEK_SET) < 0 ||
		    fop_spawn(x, &e) < 0)
			api_respond_err(x->c, &e);
		return;
	}
	if (fe) {
		file_error(x->c, fe, x->rel);
		return;
	}
	if (x->op == SPROC_STAT && x->read_next) {
		/* refuse a file over the cap before staging any of it */
		unsigned long long size = 0;
		if (stat_size(x, &size) && size > x->sc->max_read) {
			too_big(x, size);
			return;
		}
		x->op = SPROC_READ;
		x->read_next = false;
		if (ftruncate(x->out, 0) < 0 || lseek(x->out, 0, SEEK_SET) < 0) {
			file_error(x->c, errno, x->rel);
			return;
		}
		if (fop_spawn(x, &e) < 0)
			api_respond_err(x->c, &e);
		return;
	}
	switch (x->op) {
	case SPROC_READ: {
		if (d == -EFBIG) {
			too_big(x, 0);
			return;
		}
		if (d < 0) {
			file_error(x->c, -d, x->rel);
			return;
		}
		off_t size = lseek(x->out, 0, SEEK_END);
		if (size < 0 || lseek(x->out, 0, SEEK_SET) < 0) {
			file_error(x->c, errno, x->rel);
			return;
		}
		int out = x->out;
		x->out = -1; /* owned by the reply now */
		http_respond_fd(x->c, 200, "application/octet-stream", out, (uint64_t)size);
		return;
	}
	case SPROC_WRITE: {
		struct stat st;
		cJSON *j = cJSON_CreateObject();
		if (fstat(x->in, &st) < 0 || !j || !cJSON_AddStringToObject(j, "path", x->rel) ||
		    !cJSON_AddNumberToObject(j, "size", (double)st.st_size)) {
			cJSON_Delete(j);
			http_respond_error(x->c, 503, "resource_exhausted", "out of memory");
			return;
		}
		http_respond_json(x->c, 200, j);
		return;
	}
	case SPROC_LIST:
	case SPROC_STAT:
		list_reply(x, false);
		return;
	case SPROC_EXEC:
		break;
	}
	http_respond_error(x->c, 500, "internal", "unexpected file operation");
}

/* Start x->op in the sandbox, its answer deferred.  Returns 0, or
 * -errno with *err filled. */
static int fop_spawn(struct sreq *x, struct af_err *err)
{
	autofree char *path = NULL;
	if (asprintf(&path, "/workspace%s%s", *x->rel ? "/" : "", x->rel) < 0)
		return af_err_set(err, ENOMEM, "out of memory");
	struct sproc_spec sp = {
		.op = x->op,
		.path = path,
		.recursive = x->recursive,
		.mode = x->mode,
		.fds = { x->op == SPROC_WRITE ? x->in : -1, x->op == SPROC_WRITE ? -1 : x->out, -1 },
	};
	/* the output passes through serve, which caps what it stages */
	autoclose int wpipe = -1;
	if (x->op != SPROC_WRITE) {
		/* only serve's end is non-blocking: the writer waits for it */
		int p[2];
		if (pipe2(p, O_CLOEXEC) < 0)
			return af_err_set(err, errno, "cannot create a pipe: %s", strerror(errno));
		x->rpipe = p[0];
		wpipe = p[1];
		if (fcntl(x->rpipe, F_SETFL, O_NONBLOCK) < 0) {
			int e = errno;
			fop_end(x);
			return af_err_set(err, e, "cannot create a pipe: %s", strerror(e));
		}
		sp.fds[1] = wpipe;
		x->staged = 0;
	}
	int r = sbx_spawn(x->s, &sp, NULL, &x->p, err);
	if (r < 0) {
		fop_end(x);
		return r;
	}
	if (x->rpipe >= 0 && (r = ev_fd_add(x->sc->loop, x->rpipe, EPOLLIN, on_rpipe, x)) < 0) {
		fop_end(x);
		return af_err_set(err, -r, "cannot watch the file operation: %s", strerror(-r));
	}
	x->pfd = sproc_fd(x->p);
	r = ev_fd_add(x->sc->loop, x->pfd, EPOLLIN, on_fop, x);
	if (r < 0) {
		x->pfd = -1;
		fop_end(x);
		return af_err_set(err, -r, "cannot watch the file operation: %s", strerror(-r));
	}
	x->w = (struct sbx_watch){ .ending = fop_ending };
	sbx_watch_add(x->s, &x->w);
	http_defer(x->c);
	return 0;
}

/* The path of a file route, relative to /workspace: no '..', not
 * absolute.  Returns false after answering. */
static bool file_path(struct http_conn *c, const char *path, bool file, char **rel)
{
	struct af_err e = { 0 };
	if (!path) {
		http_respond_error(c, 400, "invalid_argument", "malformed path in the URL");
		return false;
	}
	if (store_clean_path(path, rel, &e) < 0) {
		/* "relative to the codebase": here, to /workspace */
		char *at = strstr(e.msg, "the codebase");
		if (at)
			snprintf(at, sizeof(e.msg) - (size_t)(at - e.msg), "/workspace");
		http_respond_error(c, 400, "invalid_argument", "%s", e.msg);
		return false;
	}
	if (file && !**rel) {
		free(steal_pointer(rel));
		http_respond_error(c, 400, "invalid_argument", "a file path is required");
		return false;
	}
	return true;
}

/* At the head of a files request: the sandbox must run; a PUT's body
 * goes to a temporary file.  Returns false after answering. */
static bool file_head(struct http_conn *c, struct http_req *r, struct sreq *x)
{
	x->s = x->id ? sbx_get(x->sc->sandboxes, x->id) : NULL;
	if (!x->s) {
		http_respond_error(c, 404, "not_found", "no sandbox '%s'",
				   x->id ? x->id : "(malformed)");
		return false;
	}
	if (!sbx_running(x->s)) {
		http_respond_error(c, 409, "not_running", "sandbox '%s' is not running", x->id);
		return false;
	}
	if (x->route == S_FILES || r->method != HTTP_PUT)
		return true;
	if (!file_path(c, x->fpath, true, &x->rel))
		return false;
	bool bad = false;
	autofree char *m = api_query_get(r->query, "mode", &bad);
	char *end = NULL;
	unsigned long mode = m ? strtoul(m, &end, 8) : 0644;
	if (bad || (m && (!*m || *end || mode > 0777))) {
		http_respond_error(c, 400, "invalid_argument",
				   "mode must be octal permission bits, like 0644");
		return false;
	}
	x->mode = (unsigned)mode;
	x->in = store_tmpfile(x->sc->store);
	if (x->in < 0) {
		http_respond_error(c, 507, "resource_exhausted", "cannot store the upload: %s",
				   strerror(-x->in));
		return false;
	}
	http_body_to_fd(c, x->in, UINT64_MAX);
	return true;
}

static void files(struct http_conn *c, struct http_req *r, struct sreq *x)
{
	struct af_err e = { 0 };
	bool bad = false;
	/* the sandbox may have stopped while a body came */
	x->s = x->id ? sbx_get(x->sc->sandboxes, x->id) : NULL;
	if (!x->s || !sbx_running(x->s)) {
		http_respond_error(c, x->s ? 409 : 404, x->s ? "not_running" : "not_found",
				   x->s ? "sandbox '%s' is not running" : "no sandbox '%s'", x->id);
		return;
	}
	if (x->route == S_FILES) {
		autofree char *path = api_query_get(r->query, "path", &bad);
		if (api_query_bool(r->query, "recursive", &x->recursive, &bad) < 0 || bad) {
			http_respond_error(c, 400, "invalid_argument",
					   "malformed query: path is a string, recursive true or false");
			return;
		}
		if (!file_path(c, path ? path : "", false, &x->rel))
			return;
		x->op = SPROC_LIST;
	} else if (r->method == HTTP_GET) {
		if (!file_path(c, x->fpath, true, &x->rel))
			return;
		x->op = SPROC_STAT;
		x->read_next = true;
	} else {
		x->op = SPROC_WRITE;
		if (lseek(x->in, 0, SEEK_SET) < 0) {
			file_error(c, errno, x->rel);
			return;
		}
	}
	if (x->op != SPROC_WRITE) {
		x->out = store_tmpfile(x->sc->store);
		if (x->out < 0) {
			file_error(c, -x->out, x->rel);
			return;
		}
	}
	r->on_close = sreq_on_close;
	if (fop_spawn(x, &e) < 0)
		sbx_error(c, &e);
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
		x->s = s;
		if (r->method == HTTP_DELETE)
			stop_or_destroy(c, r, x);
		else
			reply_sandbox(c, 200, s);
		break;
	case S_START:
		if (!(s = find(c, sc, x)))
			break;
		if (sbx_start(s, &e) < 0)
			sbx_error(c, &e);
		else
			reply_sandbox(c, 200, s);
		break;
	case S_STOP:
		if (!(x->s = find(c, sc, x)))
			break;
		stop_or_destroy(c, r, x);
		break;
	case S_FILES:
	case S_FILE:
		files(c, r, x);
		break;
	case S_PRESETS:
	case S_PRESET:
		presets(c, x);
		break;
	}
	return true;
}
