/* sbx.c - serve's sandboxes (see sbx.h).
 *
 * A sandbox is a record (its Sandbox object of agentfense-api(7), plus
 * private fields whose names start with '_') and, while it runs or is
 * stopped, a lifecycle: service sandbox, view and delta.  The record is
 * rewritten atomically at every change of status, so a serve that dies
 * leaves the truth behind: "_live" marks a record whose lifecycle (and
 * delta) lived in a serve, and the next serve turns it into status
 * error with the path of the changes. */
#include "serve/sbx.h"

#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/units.h"
#include "image/image.h"
#include "lifecycle/lifecycle.h"
#include "policy/policy.h"
#include "sandbox/env.h"
#include "sandbox/gitident.h"
#include "sandbox/mounts.h"
#include "serve/loop.h"
#include "store/store.h"

#define SBX_PREFIX "sb_"
#define SBX_HEX 32
#define REC_MAX (1 << 20)

/* Small per-sandbox budgets, so 200 sandboxes fit one serve: the view's
 * fd cache and threads (serve raises RLIMIT_NOFILE at start). */
#define SBX_VIEW_FDS 32
#define SBX_VIEW_THREADS 4

enum sbx_status { SBX_PENDING, SBX_RUNNING, SBX_STOPPED, SBX_ERROR };
static const char *const status_names[] = { "pending", "running", "stopped", "error" };

struct sbx {
	struct sbx_table *t;
	struct sbx *prev, *next;
	char id[40];
	cJSON *rec;
	enum sbx_status status;
	enum lc_changes on_destroy;
	struct policy *policy;
	struct lc_project proj;
	char *root_dir;
	struct env env;
	bool env_ready;
	struct lifecycle *lc;
	int sb_fd;           /* the sandbox's control socket, watched for its end */
	int64_t expire_timer;
	struct sbx_watch watches; /* list head */
	struct sbx_op *op;   /* a stop or destroy under way, or NULL */
};

struct sbx_table {
	struct ev_loop *loop;
	struct store *st;
	char *socket_dir;    /* canonical: no sandbox may show it */
	char *store_real;    /* the data directory, canonical: neither */
	int dirfd;           /* sandboxes/ */
	struct sbx *head;
	unsigned n, running;
	void (*on_count)(unsigned n, void *arg);
	void *count_arg;
	unsigned busy;            /* sandboxes with an operation */
	unsigned ops_running;     /* of those, on a worker thread (SBX_OPS_MAX) */
	struct sbx_op *queue, *queue_tail; /* the others, oldest first */
};

static int oom(struct af_err *err)
{
	return af_err_set(err, ENOMEM, "out of memory");
}

/* Now in RFC 3339, UTC, with microseconds (as codebases have it). */
static void rfc3339(const struct timespec *ts, char *buf, size_t len)
{
	struct tm tm;
	gmtime_r(&ts->tv_sec, &tm);
	size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%06uZ", (unsigned)(ts->tv_nsec / 1000) % 1000000u);
}

static void now_rfc3339(char *buf, size_t len)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	rfc3339(&ts, buf, len);
}

static double now_unix(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Replace field name of o with a string (NULL: null).  Returns false
 * without memory. */
static bool set_str(cJSON *o, const char *name, const char *v)
{
	cJSON *n = v ? cJSON_CreateString(v) : cJSON_CreateNull();
	if (!n)
		return false;
	if (cJSON_GetObjectItemCaseSensitive(o, name))
		return cJSON_ReplaceItemInObjectCaseSensitive(o, name, n);
	return cJSON_AddItemToObject(o, name, n);
}

static bool set_now(cJSON *o, const char *name)
{
	char ts[40];
	now_rfc3339(ts, sizeof(ts));
	return set_str(o, name, ts);
}

static const char *rec_str(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool valid_id(const char *id)
{
	if (!id || strncmp(id, SBX_PREFIX, 3) != 0 || strlen(id) != 3 + SBX_HEX)
		return false;
	for (const char *p = id + 3; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

/* Write the record of s atomically: temp file, fsync, rename, fsync of
 * the directory.  Returns 0, or -errno with *err filled. */
static int rec_write(struct sbx *s, struct af_err *err)
{
	autofree char *text = cJSON_PrintUnformatted(s->rec);
	if (!text)
		return oom(err);
	char name[64], tmp[72];
	snprintf(name, sizeof(name), "%s.json", s->id);
	snprintf(tmp, sizeof(tmp), ".%s.tmp", s->id);
	int dfd = s->t->dirfd;
	autoclose int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
				  0600);
	if (fd < 0)
		return af_err_set(err, errno, "cannot write the record of sandbox '%s': %s", s->id,
				  strerror(errno));
	int r = write_all(fd, text, strlen(text));
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (r == 0 && renameat(dfd, tmp, dfd, name) < 0)
		r = -errno;
	if (r == 0)
		fsync(dfd);
	if (r < 0) {
		unlinkat(dfd, tmp, 0);
		return af_err_set(err, -r, "cannot write the record of sandbox '%s': %s", s->id,
				  strerror(-r));
	}
	return 0;
}

/* Tell serve what keeps it from its idle exit: running sandboxes and
 * operations under way. */
static void count_changed(struct sbx_table *t)
{
	if (t->on_count)
		t->on_count(t->running + t->busy, t->count_arg);
}

/* Set the status (and its record field). */
static void set_status(struct sbx *s, enum sbx_status st)
{
	bool was = s->status == SBX_RUNNING, is = st == SBX_RUNNING;
	s->status = st;
	set_str(s->rec, "status", status_names[st]);
	if (was != is) {
		s->t->running += is ? 1 : (unsigned)-1;
		count_changed(s->t);
	}
}

/* --- request parsing ---------------------------------------------------------- */

/* An enum value in either spelling ("read", "PERMISSION_READ"): the
 * prefix dropped, lowercased into out.  Returns false if too long. */
static bool enum_norm(const char *v, const char *prefix, char *out, size_t len)
{
	size_t pl = strlen(prefix);
	if (strncasecmp(v, prefix, pl) == 0 && v[pl])
		v += pl;
	size_t n = strlen(v);
	if (n >= len)
		return false;
	for (size_t i = 0; i <= n; i++)
		out[i] = (char)(v[i] >= 'A' && v[i] <= 'Z' ? v[i] - 'A' + 'a' : v[i]);
	return true;
}

/* One of names (lowercase) for field, in either spelling.  Returns its
 * index, or -EINVAL with *err naming the field. */
static int field_enum(const cJSON *v, const char *field, const char *prefix,
		      const char *const *names, struct af_err *err)
{
	char buf[64];
	if (!cJSON_IsString(v))
		return af_err_usage(err, EINVAL, "field '%s' must be a string", field);
	if (enum_norm(v->valuestring, prefix, buf, sizeof(buf)))
		for (int i = 0; names[i]; i++)
			if (strcmp(buf, names[i]) == 0)
				return i;
	char list[256] = "";
	for (int i = 0; names[i]; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
			 names[i]);
	char q[96];
	return af_err_usage(err, EINVAL, "field '%s': unknown value '%s' (one of: %s)", field,
			    policy_quote(q, sizeof(q), v->valuestring), list);
}

/* A whole number within [min, max] (a number, or a string of digits). */
static int field_uint(const cJSON *v, const char *field, double min, double max, uint64_t *out,
		      struct af_err *err)
{
	double d = -1;
	if (cJSON_IsNumber(v)) {
		d = v->valuedouble;
	} else if (cJSON_IsString(v) && *v->valuestring) {
		char *end;
		d = strtod(v->valuestring, &end);
		if (*end)
			d = -1;
	}
	if (!(d >= min && d <= max) || d != (double)(uint64_t)d)
		return af_err_usage(err, EINVAL, "field '%s' must be a whole number from %.0f to %.0f",
				    field, min, max);
	*out = (uint64_t)d;
	return 0;
}

/* A duration: seconds as a number, or "30s", "1.5s", "5m". */
static int field_duration(const cJSON *v, const char *field, double *out, struct af_err *err)
{
	double d = -1;
	if (cJSON_IsNumber(v))
		d = v->valuedouble;
	else if (cJSON_IsString(v) && parse_duration(v->valuestring, &d) < 0)
		d = -1;
	if (!(d > 0 && d <= 1e9))
		return af_err_usage(err, EINVAL, "field '%s' must be a positive duration: seconds, "
				    "or a string like \"30s\", \"1.5s\", \"5m\"", field);
	*out = d;
	return 0;
}

static const char *const level_names[] = { "none", "view", "read", "write", NULL };
static const char *const type_names[] = { "glob", "directory", "file", NULL };

/* The pattern of agentfense-policy(5) for a published rule: a glob as
 * it is; a directory, anchored, with its whole subtree; a file,
 * anchored, its wildcard characters made literal.  Returns 0 with *out
 * (malloc'd), -EINVAL for a pattern that names no path, -ENOMEM. */
static int rule_pattern_of(const char *pat, int type, char **out)
{
	size_t n = strlen(pat);
	char *o;
	if (type == 0) {
		o = strdup(pat);
		goto done;
	}
	while (n && pat[n - 1] == '/')
		n--;
	const char *p = pat;
	while (n && *p == '/')
		p++, n--;
	if (!n) {
		if (type != 1)
			return -EINVAL;
		o = strdup("**");
		goto done;
	}
	if (type == 1) {
		if (asprintf(&o, "/%.*s/", (int)n, p) < 0)
			o = NULL;
		goto done;
	}
	o = malloc(2 * n + 2);
	if (!o)
		return -ENOMEM;
	char *q = o;
	*q++ = '/';
	for (size_t i = 0; i < n; i++) {
		if (strchr("*?[]\\", p[i]))
			*q++ = '\\';
		*q++ = p[i];
	}
	*q = '\0';
done:
	if (!o)
		return -ENOMEM;
	*out = o;
	return 0;
}

/* Check the permissions of a request and normalize them into *norm (an
 * array of {pattern, permission, type, priority}); the policy they make
 * with preset into *policy.  Returns 0, or -errno with *err naming the
 * field. */
static int parse_rules(const char *preset, const cJSON *perms, cJSON **norm,
		       struct policy **policy, struct af_err *err)
{
	int n = perms && !cJSON_IsNull(perms) ? (cJSON_IsArray(perms) ? cJSON_GetArraySize(perms)
								     : -1)
					      : 0;
	if (n < 0)
		return af_err_usage(err, EINVAL, "field 'permissions' must be an array of rules");
	cJSON *out = cJSON_CreateArray();
	struct policy_src *src = calloc((size_t)n + 1, sizeof(*src));
	char **pats = calloc((size_t)n + 1, sizeof(*pats));
	char **origins = calloc((size_t)n + 1, sizeof(*origins));
	int r = out && src && pats && origins ? 0 : oom(err), i = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, perms) {
		if (r < 0)
			break;
		char f[64];
		const cJSON *pat = cJSON_GetObjectItemCaseSensitive(it, "pattern");
		const cJSON *perm = cJSON_GetObjectItemCaseSensitive(it, "permission");
		const cJSON *type = cJSON_GetObjectItemCaseSensitive(it, "type");
		const cJSON *prio = cJSON_GetObjectItemCaseSensitive(it, "priority");
		int lv = 0, ty = 0;
		uint64_t pr = 0;
		bool neg = false;
		if (!cJSON_IsObject(it)) {
			r = af_err_usage(err, EINVAL, "field 'permissions[%d]' must be an object", i);
			break;
		}
		if (!cJSON_IsString(pat) || !*pat->valuestring) {
			r = af_err_usage(err, EINVAL, "field 'permissions[%d].pattern' must be a "
					 "non-empty string", i);
			break;
		}
		snprintf(f, sizeof(f), "permissions[%d].permission", i);
		lv = field_enum(perm, f, "PERMISSION_", level_names, err);
		if (lv < 0) {
			r = lv;
			break;
		}
		if (type && !cJSON_IsNull(type)) {
			snprintf(f, sizeof(f), "permissions[%d].type", i);
			ty = field_enum(type, f, "PATTERN_TYPE_", type_names, err);
			if (ty < 0) {
				r = ty;
				break;
			}
		}
		if (prio && !cJSON_IsNull(prio)) {
			double d = cJSON_IsNumber(prio) ? prio->valuedouble : 1e99;
			neg = d < 0;
			snprintf(f, sizeof(f), "permissions[%d].priority", i);
			/* in range before the cast: out of it the cast is undefined */
			if (!(d >= -1000000 && d <= 1000000) || d != (double)(int)d) {
				r = af_err_usage(err, EINVAL, "field '%s' must be a whole number from "
						 "-1000000 to 1000000", f);
				break;
			}
			pr = (uint64_t)(neg ? -d : d);
		}
		r = rule_pattern_of(pat->valuestring, ty, &pats[i]);
		if (r < 0) {
			r = r == -EINVAL ? af_err_usage(err, EINVAL, "field 'permissions[%d].pattern' "
							"names no path", i)
					 : oom(err);
			break;
		}
		/* each rule alone first, so an error names its field */
		struct policy *one = policy_new();
		r = policy_add(one, pats[i], (enum level)lv, 0, "rule", err);
		policy_free(one);
		if (r < 0) {
			char msg[sizeof(err->msg)];
			memcpy(msg, err->msg, sizeof(msg));
			af_err_usage(err, EINVAL, "field 'permissions[%d].pattern': %.900s", i, msg);
			break;
		}
		if (asprintf(&origins[i], "permissions[%d]", i) < 0) {
			origins[i] = NULL;
			r = oom(err);
			break;
		}
		src[i] = (struct policy_src){ .kind = POLICY_SRC_RULE, .arg = pats[i],
					      .level = (enum level)lv,
					      .priority = neg ? -(int)pr : (int)pr,
					      .origin = origins[i] };
		cJSON *o = cJSON_CreateObject();
		if (!o || !cJSON_AddItemToArray(out, o) ||
		    !cJSON_AddStringToObject(o, "pattern", pat->valuestring) ||
		    !cJSON_AddStringToObject(o, "permission", level_names[lv]) ||
		    !cJSON_AddStringToObject(o, "type", type_names[ty]) ||
		    !cJSON_AddNumberToObject(o, "priority", src[i].priority))
			r = oom(err);
		i++;
	}
	if (r == 0) {
		r = policy_build(preset, src, (size_t)n, policy, err);
		if (r < 0) {
			/* the rules passed alone: the preset failed */
			char msg[sizeof(err->msg)];
			memcpy(msg, err->msg, sizeof(msg));
			r = af_err_usage(err, EINVAL, "field 'preset': %.900s", msg);
		}
	}
	for (int k = 0; k < n && pats && origins; k++) {
		free(pats[k]);
		free(origins[k]);
	}
	free(pats);
	free(origins);
	free(src);
	if (r < 0) {
		cJSON_Delete(out);
		return r;
	}
	*norm = out;
	return 0;
}

static const char *const net_names[] = { "none", "host", NULL };
static const char *const runtime_names[] = { "bwrap", "docker", NULL };
static const char *const fate_names[] = { "sync", "discard", "keep", NULL };
static const enum lc_changes fate_of[] = { LC_CHANGES_SYNC, LC_CHANGES_DISCARD, LC_CHANGES_KEEP };

/* The limits of the record's resources; what agentfense cannot enforce
 * here goes to warnings.  Returns 0, or -EINVAL with *err filled. */
static int parse_resources(const cJSON *res, struct limits_spec *ls, cJSON *norm, cJSON *warnings,
			   struct af_err *err)
{
	static const struct { const char *name; double min, max; } f[] = {
		{ "memory_bytes", 0, 9.0e15 },
		{ "cpu_quota", 0, 102400000 },
		{ "cpu_shares", 0, 262144 },
		{ "pids_limit", 0, 4194304 },
	};
	uint64_t v[4] = { 0 };
	if (res && !cJSON_IsNull(res) && !cJSON_IsObject(res))
		return af_err_usage(err, EINVAL, "field 'resources' must be an object");
	for (size_t i = 0; i < 4; i++) {
		char name[40];
		const cJSON *x = res ? cJSON_GetObjectItemCaseSensitive(res, f[i].name) : NULL;
		snprintf(name, sizeof(name), "resources.%s", f[i].name);
		if (x && !cJSON_IsNull(x) && field_uint(x, name, f[i].min, f[i].max, &v[i], err) < 0)
			return -EINVAL;
		if (!cJSON_AddNumberToObject(norm, f[i].name, (double)v[i]))
			return oom(err);
	}
	if (v[0] && v[0] < (4u << 20))
		return af_err_usage(err, EINVAL, "field 'resources.memory_bytes' must be at least "
				    "4194304 (4 MiB), or 0 for no limit");
	if (v[3] == 1)
		return af_err_usage(err, EINVAL, "field 'resources.pids_limit' must be at least 2 "
				    "(the sandbox's init counts), or 0 for no limit");
	ls->memory = v[0];
	ls->cpu_quota = (uint32_t)v[1];
	ls->pids = (uint32_t)v[3];
	if (v[2]) {
		cJSON *w = cJSON_CreateString("resources.cpu_shares is not enforced: agentfense "
					      "limits CPU time with cpu_quota only");
		if (!w || !cJSON_AddItemToArray(warnings, w))
			return oom(err);
	}
	return 0;
}

/* --- the sandbox's life ---------------------------------------------------------- */

/* The codebase's tree, malloc'd, or NULL without memory. */
static char *codebase_dir(struct sbx *s)
{
	char *d;
	if (asprintf(&d, "%s/codebases/%s/files", store_root(s->t->st),
		     rec_str(s->rec, "codebase_id")) < 0)
		return NULL;
	return d;
}

/* A sandbox's root (s->root_dir) must not show serve's socket, which
 * would let the sandbox ask serve for anything (its peer has the
 * user's uid), nor the data directory with every codebase.  Returns 0,
 * or -EINVAL with *err filled. */
static int check_root_private(struct sbx *s, const char *image, struct af_err *err)
{
	const char *what = NULL, *path = NULL;
	if (s->t->socket_dir && mounts_host_under(s->t->socket_dir, s->root_dir))
		what = "serve's socket", path = s->t->socket_dir;
	else if (s->t->store_real && mounts_host_overlap(s->t->store_real, s->root_dir))
		what = "serve's data directory", path = s->t->store_real;
	if (!what)
		return 0;
	int r = af_err_usage(err, EINVAL, "cannot use '%s' as image: it %s %s '%s'", image,
			     mounts_host_under(path, s->root_dir) ? "holds" : "is inside", what, path);
	af_err_hint(err, "unpack the root filesystem in a directory of its own");
	return r;
}

/* The root filesystem the record names: an OCI layout (it has an
 * oci-layout file) unpacked to the image cache, else a directory.
 * Returns 0, or -errno with *err filled. */
static int resolve_image(struct sbx *s, struct af_err *err)
{
	const char *image = rec_str(s->rec, "image");
	if (!image || s->root_dir)
		return 0;
	autofree char *marker = NULL;
	if (asprintf(&marker, "%s/oci-layout", image) < 0)
		return oom(err);
	if (access(marker, F_OK) != 0) {
		s->root_dir = lc_check_root_dir("image", image, &s->proj, err);
		if (s->root_dir && check_root_private(s, image, err) < 0)
			free(steal_pointer(&s->root_dir));
		return s->root_dir ? 0 : -(err->errnum ? err->errnum : EINVAL);
	}
	struct image_info img = { 0 };
	int r = image_prepare(image, &img, err);
	if (r < 0)
		return r;
	s->root_dir = lc_check_root_dir("image", img.root, &s->proj, err);
	if (s->root_dir && (r = check_root_private(s, img.root, err)) < 0)
		free(steal_pointer(&s->root_dir));
	if (!s->env_ready) {
		env_init(&s->env);
		env_defaults(&s->env, "/workspace");
		s->env_ready = true;
	}
	for (size_t i = 0; img.env && img.env[i]; i++)
		(void)env_set_spec(&s->env, img.env[i], NULL);
	image_info_free(&img);
	return s->root_dir ? 0 : -(err->errnum ? err->errnum : EINVAL);
}

/* The policy and the project of s, made from its record if a serve
 * has not yet (they do not outlive its restart).  Returns 0, or -errno
 * with *err filled. */
static int open_policy_project(struct sbx *s, struct af_err *err)
{
	int r;
	if (!s->policy) {
		cJSON *norm = NULL;
		r = parse_rules(rec_str(s->rec, "preset"),
				cJSON_GetObjectItemCaseSensitive(s->rec, "permissions"), &norm,
				&s->policy, err);
		cJSON_Delete(norm);
		if (r < 0)
			return r;
	}
	if (s->proj.fd < 0) {
		autofree char *dir = codebase_dir(s);
		if (!dir)
			return oom(err);
		return lc_project_open(dir, &s->proj, err);
	}
	return 0;
}

/* What a start needs and a serve does not keep across its restart: the
 * policy, the project, the root, the environment.  Returns 0, or -errno
 * with *err filled. */
static int prepare(struct sbx *s, struct af_err *err)
{
	int r = open_policy_project(s, err);
	if (r < 0)
		return r;
	if (!s->env_ready) {
		env_init(&s->env);
		env_defaults(&s->env, "/workspace");
		/* as run has it: the image's environment, an exec's and a
		 * session's win over it; a record without the field is older
		 * than it, and had the default */
		if (!cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(s->rec, "git_identity")))
			git_identity_env(&s->env, s->proj.real);
		s->env_ready = true;
	}
	/* a missing or unusable image is a bad field, not a missing object */
	r = resolve_image(s, err);
	if (r < 0 && err) {
		err->errnum = EINVAL;
		r = -EINVAL;
	}
	return r;
}

static void watches_end(struct sbx *s)
{
	/* ending() unlinks its watch (sbx_watch_del) */
	while (s->watches.next != &s->watches) {
		struct sbx_watch *w = s->watches.next;
		sbx_watch_del(s, w);
		w->ending(w);
	}
}

static void unwatch_fd(struct sbx *s)
{
	if (s->sb_fd >= 0) {
		ev_fd_del(s->t->loop, s->sb_fd);
		s->sb_fd = -1;
	}
}

/* Kill what runs (the lifecycle and its delta stay). */
static void halt(struct sbx *s)
{
	watches_end(s);
	unwatch_fd(s);
	if (s->lc)
		lc_stop(s->lc);
}

/* The sandbox's PID 1 ended by itself (its control socket hung up):
 * nothing can run there any more. */
static void on_sandbox_end(struct ev_loop *l AF_UNUSED, int fd AF_UNUSED, uint32_t events,
			   void *arg)
{
	struct sbx *s = arg;
	if (!(events & (EPOLLHUP | EPOLLERR)))
		return;
	halt(s);
	set_status(s, SBX_ERROR);
	set_str(s->rec, "error", "the sandbox ended by itself (killed, or out of memory); its "
		"changes are kept until it is destroyed");
	set_now(s->rec, "stopped_at");
	rec_write(s, NULL);
}

int sbx_start(struct sbx *s, struct af_err *err)
{
	int r;
	if (s->op)
		return af_err_set(err, EBUSY, "sandbox '%s' is %s", s->id, sbx_operation(s));
	if (s->status == SBX_RUNNING)
		return 0;
	if (s->status == SBX_ERROR)
		return af_err_set(err, EBUSY, "sandbox '%s' is in status error (%s): destroy it",
				  s->id, rec_str(s->rec, "error") ? rec_str(s->rec, "error") : "");
	r = prepare(s, err);
	if (r < 0)
		return r;
	if (!s->lc) {
		const cJSON *res = cJSON_GetObjectItemCaseSensitive(s->rec, "resources");
		struct limits_spec ls = { 0 };
		cJSON *scratch = cJSON_CreateObject(), *warn = cJSON_CreateArray();
		r = scratch && warn ? parse_resources(res, &ls, scratch, warn, err) : oom(err);
		cJSON_Delete(scratch);
		cJSON_Delete(warn);
		if (r < 0)
			return r;
		struct lc_config lcc = {
			.project = &s->proj,
			.policy = s->policy,
			.sandbox = {
				.envp = s->env.v,
				.workdir = "/workspace",
				.net_host = rec_str(s->rec, "network") &&
					    strcmp(rec_str(s->rec, "network"), "host") == 0,
				.root_dir = s->root_dir,
				.service = true,
			},
			.limits = ls,
			.view_fds = SBX_VIEW_FDS,
			.view_threads = SBX_VIEW_THREADS,
			.service = true,
		};
		r = lc_new(&lcc, &s->lc, err);
		if (r < 0)
			return r;
		/* what the limits' fallback does not enforce is said, not dropped */
		size_t nw;
		const struct limits_warning *w = lc_limits_warnings(s->lc, &nw);
		cJSON *warnings = cJSON_GetObjectItemCaseSensitive(s->rec, "warnings");
		for (size_t i = 0; i < nw && warnings; i++) {
			bool seen = false;
			const cJSON *it;
			cJSON_ArrayForEach(it, warnings)
				seen |= cJSON_IsString(it) && strcmp(it->valuestring, w[i].msg) == 0;
			if (!seen)
				cJSON_AddItemToArray(warnings, cJSON_CreateString(w[i].msg));
		}
	}
	r = lc_start(s->lc, err);
	if (r == 0)
		r = lc_exec(s->lc, err);
	if (r < 0) {
		lc_stop(s->lc);
		return r;
	}
	if (ev_fd_add(s->t->loop, lc_fd(s->lc), 0, on_sandbox_end, s) == 0)
		s->sb_fd = lc_fd(s->lc);
	set_status(s, SBX_RUNNING);
	set_now(s->rec, "started_at");
	set_str(s->rec, "stopped_at", NULL);
	set_str(s->rec, "delta_path", lc_delta_path(s->lc));
	cJSON_DeleteItemFromObjectCaseSensitive(s->rec, "_live");
	cJSON_AddTrueToObject(s->rec, "_live");
	return rec_write(s, err);
}

static const char *fate_name(enum lc_fate f)
{
	switch (f) {
	case LC_FATE_NONE: return "none";
	case LC_FATE_DISCARDED: return "discarded";
	case LC_FATE_KEPT: return "kept";
	case LC_FATE_SYNCED: return "synced";
	case LC_FATE_CONFLICTS: return "conflicts";
	case LC_FATE_SYNC_FAILED: return "sync_failed";
	case LC_FATE_UNSYNCED: return "unsynced";
	}
	return "none";
}

static const char *note_kind(enum sync_note_kind k)
{
	switch (k) {
	case SYNC_NOTE_CONFLICT: return "conflict";
	case SYNC_NOTE_HELD: return "held";
	case SYNC_NOTE_ERROR: return "error";
	case SYNC_NOTE_SKIPPED: return "skipped";
	}
	return "error";
}

/* The delta report of agentfense-api(7).  NULL without memory. */
static cJSON *delta_report(const char *fate, const char *path, const struct sync_report *rep,
			   const char *error)
{
	cJSON *d = cJSON_CreateObject(), *notes = cJSON_CreateArray();
	bool ok = d && notes && cJSON_AddStringToObject(d, "fate", fate) &&
		  (path ? cJSON_AddStringToObject(d, "path", path) : cJSON_AddNullToObject(d, "path")) &&
		  cJSON_AddNumberToObject(d, "written", rep ? (double)rep->written : 0) &&
		  cJSON_AddNumberToObject(d, "deleted", rep ? (double)rep->deleted : 0) &&
		  cJSON_AddNumberToObject(d, "conflicts", rep ? (double)rep->conflicts : 0);
	for (size_t i = 0; ok && rep && i < rep->n_notes; i++) {
		const struct sync_note *n = &rep->notes[i];
		cJSON *o = cJSON_CreateObject();
		ok = o && cJSON_AddItemToArray(notes, o) && cJSON_AddStringToObject(o, "path", n->path) &&
		     cJSON_AddStringToObject(o, "kind", note_kind(n->kind)) &&
		     cJSON_AddStringToObject(o, "message", n->text);
		if (!o)
			ok = false;
	}
	if (ok && error)
		ok = cJSON_AddStringToObject(d, "error", error) != NULL;
	if (ok && cJSON_AddItemToObject(d, "notes", notes))
		return d;
	cJSON_Delete(notes);
	cJSON_Delete(d);
	return NULL;
}

/* Give the delta its fate (ch) and free the lifecycle: *delta says what
 * was done.  Returns 0, or -errno with *err filled. */
static int finish(struct sbx *s, enum lc_changes ch, cJSON **delta, struct af_err *err)
{
	if (!s->lc) {
		/* a sandbox that never ran, or one an earlier serve left (its
		 * changes stay where the record says) */
		const char *kept = s->status == SBX_ERROR ? rec_str(s->rec, "delta_path") : NULL;
		*delta = delta_report(kept ? "kept" : "none", kept, NULL, NULL);
		return *delta ? 0 : oom(err);
	}
	halt(s);
	struct lc_finish f;
	struct af_err ferr = { 0 };
	int r = lc_finish(s->lc, ch, &f, &ferr);
	*delta = delta_report(fate_name(f.fate), f.kept ? f.delta_path : NULL, &f.sync,
			      r < 0 ? ferr.msg : NULL);
	set_str(s->rec, "delta_path", f.kept ? f.delta_path : NULL);
	lc_finish_free(&f);
	bool stuck = lc_stuck(s->lc);
	lc_free(steal_pointer(&s->lc));
	if (stuck)
		s->policy = NULL; /* the view's blocked threads may hold it */
	if (r < 0 && err)
		*err = ferr;
	return *delta ? r : oom(err);
}

/* --- stops and destroys off the loop ----------------------------------------------
 *
 * A destroy syncs the delta back to the codebase, which takes seconds
 * for a large one; a stop waits for the sandbox's processes and view
 * to end (up to about 2 s each when they hang); freeing a lifecycle
 * may wait for the kernel to let go of its cgroups.  None of that may
 * hold up the other clients, so it runs on a worker thread, one per
 * operation, at most SBX_OPS_MAX at once (the rest queue, one per
 * sandbox at most).
 *
 * What runs off the loop is the lifecycle alone (lc_stop, lc_finish,
 * lc_free), which the worker owns while it runs: s->lc is NULL
 * meanwhile, so nothing on the loop reaches it.  The registry, the
 * records, cJSON and HTTP stay on the loop thread: before the hand-over
 * the loop ends what lives on the sandbox (execs, sessions, file
 * operations: their watches) and stops watching its control socket;
 * after it, the worker's eventfd wakes the loop, which joins the
 * thread, writes the record and answers.
 *
 * Why a thread is safe here: lc_stop() kills and reaps the sandbox's
 * PID 1 by its pid (waitpid works from any thread of the process, and
 * serve reaps no child with waitpid(-1) nor handles SIGCHLD), and joins
 * the view's threads; lc_finish() works from the project's and the
 * delta's directory fds, touching no cwd, umask or signal disposition.
 * The worker blocks every signal, so serve's SIGTERM and SIGINT still
 * reach its signalfd.  Starting is not done here: a sandbox dies with
 * the thread that cloned it (PR_SET_PDEATHSIG), so lc_start() stays on
 * the loop thread, which lives as long as serve.
 *
 * While an operation is under way the sandbox is not running (status
 * stopped, "operation" says which): execs and file operations on it
 * are refused as on a stopped one, a start, stop or destroy is refused
 * with EBUSY (409 conflict).  A client that leaves does not cut the
 * operation short: it ends, the record is written (or removed), and
 * only the answer is dropped. */

enum sbx_opkind { OP_STOP, OP_DESTROY };

struct sbx_op {
	struct sbx *s;
	enum sbx_opkind kind;
	enum lc_changes ch;       /* a destroy's fate for the delta */
	struct lifecycle *lc;     /* the worker's while it runs */
	/* or, for a sandbox an earlier serve left (status error), the delta
	 * it kept, with what its sync needs (s's, unchanged meanwhile) */
	struct delta *delta;
	int project_fd;
	const struct policy *policy;
	sbx_done_fn done;         /* NULL: nobody waits for the answer */
	void *done_arg;
	struct sbx_op *next;      /* in the queue */
	pthread_t th;
	bool started;
	int efd;                  /* written by the worker when it is done */
	/* the worker's results (a destroy's) */
	int r;
	struct af_err err;
	struct lc_finish f;
	bool stuck;
	char delta_path[PATH_MAX]; /* f.delta_path, which lc_free() frees */
};

static void sbx_release(struct sbx *s);

const char *sbx_operation(const struct sbx *s)
{
	if (!s->op)
		return NULL;
	return s->op->kind == OP_STOP ? "stopping" : "destroying";
}

void sbx_op_detach(struct sbx *s)
{
	if (s->op)
		s->op->done = NULL;
}

/* The fate of a delta an earlier serve kept, as lc_finish() gives one. */
static void op_work_delta(struct sbx_op *op)
{
	struct delta *d = op->delta;
	struct lc_finish *f = &op->f;
	if (op->ch == LC_CHANGES_DISCARD) {
		f->fate = LC_FATE_DISCARDED;
		op->r = delta_remove(d, &op->err);
	} else {
		op->r = delta_sync(d, op->project_fd, op->policy, &f->sync, &op->err);
		if (op->r < 0) {
			f->fate = LC_FATE_SYNC_FAILED;
			f->kept = delta_save(d, &f->save_err) == 0;
		} else if (f->sync.conflicts) {
			f->fate = LC_FATE_CONFLICTS;
			f->kept = true;
		} else {
			f->fate = LC_FATE_SYNCED;
		}
	}
	if (f->kept)
		snprintf(op->delta_path, sizeof(op->delta_path), "%s", delta_path(d));
	delta_free(steal_pointer(&op->delta));
}

/* The part that runs off the loop. */
static void op_work(struct sbx_op *op)
{
	if (op->delta) {
		op_work_delta(op);
		return;
	}
	lc_stop(op->lc);
	if (op->kind == OP_STOP)
		return;
	op->r = lc_finish(op->lc, op->ch, &op->f, &op->err);
	if (op->f.kept && op->f.delta_path)
		snprintf(op->delta_path, sizeof(op->delta_path), "%s", op->f.delta_path);
	op->f.delta_path = NULL;
	op->stuck = lc_stuck(op->lc);
	lc_free(steal_pointer(&op->lc));
}

static void *op_thread(void *arg)
{
	struct sbx_op *op = arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	op_work(op);
	uint64_t one = 1;
	/* an eventfd's counter cannot overflow from one write */
	while (write(op->efd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
	return NULL;
}

/* Back on the loop: the record, the answer.  Frees op (and, after a
 * destroy, the sandbox). */
static void op_complete(struct sbx_op *op)
{
	struct sbx *s = op->s;
	struct sbx_table *t = s->t;
	sbx_done_fn done = op->done;
	void *arg = op->done_arg;
	struct af_err err = { 0 };
	cJSON *result = NULL;
	int r = 0;
	s->op = NULL;
	t->busy--;
	if (op->kind == OP_STOP) {
		s->lc = op->lc;
		r = rec_write(s, &err);
		if (r == 0 && done && !(result = sbx_json(s)))
			r = oom(&err);
	} else {
		/* a failed sync is reported in the delta (fate sync_failed,
		 * error), as a destroy on the loop reports it */
		const char *kept = op->delta_path[0] ? op->delta_path : NULL;
		result = delta_report(fate_name(op->f.fate), kept, &op->f.sync,
				      op->r < 0 ? op->err.msg : NULL);
		lc_finish_free(&op->f);
		if (op->stuck)
			s->policy = NULL; /* the view's blocked threads may hold it */
		char name[64];
		snprintf(name, sizeof(name), "%s.json", s->id);
		if (unlinkat(t->dirfd, name, 0) < 0 && errno != ENOENT)
			af_err_set(&err, errno, "cannot remove the record of sandbox '%s': %s",
				   s->id, strerror(errno));
		sbx_release(s);
		if (!result)
			r = oom(&err);
	}
	free(op);
	count_changed(t);
	if (done)
		done(arg, r, steal_pointer(&result), &err);
	cJSON_Delete(result);
}

static void op_start_queued(struct sbx_table *t);

/* The worker is done. */
static void on_op_done(struct ev_loop *l, int fd, uint32_t events AF_UNUSED, void *arg)
{
	struct sbx_op *op = arg;
	struct sbx_table *t = op->s->t;
	ev_fd_del(l, fd);
	pthread_join(op->th, NULL);
	close(op->efd);
	t->ops_running--;
	op_complete(op);
	op_start_queued(t);
}

/* Start op on a worker thread.  Returns 0, or -errno. */
static int op_launch(struct sbx_op *op)
{
	struct sbx_table *t = op->s->t;
	op->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (op->efd < 0)
		return -errno;
	int r = ev_fd_add(t->loop, op->efd, EPOLLIN, on_op_done, op);
	if (r == 0) {
		r = -pthread_create(&op->th, NULL, op_thread, op);
		if (r < 0)
			ev_fd_del(t->loop, op->efd);
	}
	if (r < 0) {
		close(op->efd);
		return r;
	}
	op->started = true;
	t->ops_running++;
	return 0;
}

/* Run op here and now (no thread or fd to spare for it, or serve
 * ends). */
static void op_inline(struct sbx_op *op)
{
	op_work(op);
	op_complete(op);
}

/* Start what the queue holds, as far as the cap lets. */
static void op_start_queued(struct sbx_table *t)
{
	while (t->queue && t->ops_running < SBX_OPS_MAX) {
		struct sbx_op *op = t->queue;
		t->queue = op->next;
		if (!t->queue)
			t->queue_tail = NULL;
		if (op_launch(op) < 0)
			op_inline(op);
	}
}

/* Hand the lifecycle of s (or d, a delta an earlier serve kept; taken
 * on success) to a new operation, queued or started.  Returns 0, or
 * -ENOMEM with *err filled. */
static int op_begin(struct sbx *s, enum sbx_opkind kind, enum lc_changes ch, struct delta *d,
		    sbx_done_fn done, void *arg, struct af_err *err)
{
	struct sbx_table *t = s->t;
	struct sbx_op *op = calloc(1, sizeof(*op));
	if (!op)
		return oom(err);
	*op = (struct sbx_op){ .s = s, .kind = kind, .ch = ch, .done = done, .done_arg = arg,
			       .efd = -1, .delta = d, .project_fd = s->proj.fd,
			       .policy = s->policy };
	/* what lives on the loop ends here, the lifecycle goes to the worker */
	watches_end(s);
	unwatch_fd(s);
	op->lc = steal_pointer(&s->lc);
	if (s->status == SBX_RUNNING) {
		set_status(s, SBX_STOPPED);
		set_now(s->rec, "stopped_at");
	}
	s->op = op;
	t->busy++;
	count_changed(t);
	if (t->queue_tail)
		t->queue_tail->next = op;
	else
		t->queue = op;
	t->queue_tail = op;
	op_start_queued(t);
	return 0;
}

/* Finish the operation on s now, on the loop (codebase delete, serve's
 * end): its worker joined, or a queued one run here. */
static void op_wait(struct sbx *s)
{
	struct sbx_op *op = s->op;
	struct sbx_table *t = s->t;
	if (!op)
		return;
	if (op->started) {
		uint64_t n;
		pthread_join(op->th, NULL);
		while (read(op->efd, &n, sizeof(n)) < 0 && errno == EINTR)
			;
		ev_fd_del(t->loop, op->efd);
		close(op->efd);
		t->ops_running--;
		op_complete(op);
		op_start_queued(t);
		return;
	}
	for (struct sbx_op **pp = &t->queue, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->next)
		if (*pp == op) {
			*pp = op->next;
			if (t->queue_tail == op)
				t->queue_tail = prev;
			break;
		}
	op_inline(op);
}

int sbx_stop(struct sbx *s, sbx_done_fn done, void *arg, struct af_err *err)
{
	if (s->op)
		return af_err_set(err, EBUSY, "sandbox '%s' is %s", s->id, sbx_operation(s));
	if (s->status != SBX_RUNNING)
		return 0;
	int r = op_begin(s, OP_STOP, LC_CHANGES_KEEP, NULL, done, arg, err);
	return r < 0 ? r : 1;
}

/* The delta an earlier serve kept for s (status error), opened for its
 * on_destroy fate: the codebase and the rules as s has them.  Returns
 * 0 with *out, or -errno with *err filled. */
static int open_kept(struct sbx *s, const char *path, struct delta **out, struct af_err *err)
{
	int r = open_policy_project(s, err);
	if (r < 0)
		return r;
	return delta_open(s->proj.state_real, path, s->proj.real, out, err);
}

int sbx_destroy_begin(struct sbx *s, sbx_done_fn done, void *arg, cJSON **delta,
		      struct af_err *err)
{
	if (s->op)
		return af_err_set(err, EBUSY, "sandbox '%s' is %s", s->id, sbx_operation(s));
	const char *kept = s->status == SBX_ERROR ? rec_str(s->rec, "delta_path") : NULL;
	if (!s->lc && kept && s->on_destroy != LC_CHANGES_KEEP) {
		/* what an earlier serve left gets its fate now, as a destroy
		 * there would have given it */
		struct delta *d = NULL;
		struct af_err oerr = { 0 };
		if (open_kept(s, kept, &d, &oerr) < 0) {
			/* left where it is, the sandbox forgotten all the same */
			*delta = delta_report("sync_failed", kept, NULL, oerr.msg);
			struct af_err ign = { 0 };
			cJSON *none = NULL;
			sbx_destroy(s->t, s, false, &none, &ign);
			cJSON_Delete(none);
			return *delta ? 0 : oom(err);
		}
		int r = op_begin(s, OP_DESTROY, s->on_destroy, d, done, arg, err);
		if (r < 0) {
			delta_free(d);
			return r;
		}
		return 1;
	}
	if (!s->lc)
		return sbx_destroy(s->t, s, false, delta, err);
	int r = op_begin(s, OP_DESTROY, s->on_destroy, NULL, done, arg, err);
	return r < 0 ? r : 1;
}

/* --- the table ------------------------------------------------------------------ */

/* A sandbox for rec (taken on success) in the table, or NULL without
 * memory. */
static struct sbx *sbx_alloc(struct sbx_table *t, cJSON *rec, const char *id)
{
	struct sbx *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->t = t;
	s->rec = rec;
	snprintf(s->id, sizeof(s->id), "%s", id);
	s->proj.fd = -1;
	s->sb_fd = -1;
	s->watches.next = s->watches.prev = &s->watches;
	const char *od = rec_str(rec, "on_destroy");
	s->on_destroy = LC_CHANGES_SYNC;
	for (int i = 0; od && fate_names[i]; i++)
		if (strcmp(od, fate_names[i]) == 0)
			s->on_destroy = fate_of[i];
	const char *st = rec_str(rec, "status");
	for (int i = 0; st && i < 4; i++)
		if (strcmp(st, status_names[i]) == 0)
			s->status = (enum sbx_status)i;
	s->next = t->head;
	if (t->head)
		t->head->prev = s;
	t->head = s;
	t->n++;
	return s;
}

static void sbx_release(struct sbx *s)
{
	struct sbx_table *t = s->t;
	if (s->expire_timer > 0)
		ev_timer_del(t->loop, s->expire_timer);
	if (s->status == SBX_RUNNING)
		set_status(s, SBX_STOPPED);
	if (s->prev)
		s->prev->next = s->next;
	else
		t->head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	t->n--;
	lc_free(s->lc);
	policy_free(s->policy);
	lc_project_close(&s->proj);
	free(s->root_dir);
	if (s->env_ready)
		env_free(&s->env);
	cJSON_Delete(s->rec);
	free(s);
}

static void on_expire(struct ev_loop *l, void *arg)
{
	struct sbx *s = arg;
	s->expire_timer = 0;
	cJSON *delta = NULL;
	if (s->op) {
		/* a destroy under way ends it; after a stop, try again */
		if (s->op->kind == OP_STOP)
			s->expire_timer = ev_timer_add(l, 1000, on_expire, s);
		return;
	}
	/* one an earlier serve left keeps its changes where they are: only
	 * a request gives them a fate */
	if (!s->lc)
		sbx_destroy(s->t, s, false, &delta, NULL);
	else if (sbx_destroy_begin(s, NULL, NULL, &delta, NULL) != 0)
		return;
	cJSON_Delete(delta);
}

static void arm_expiry(struct sbx *s)
{
	const cJSON *at = cJSON_GetObjectItemCaseSensitive(s->rec, "_expires_unix");
	if (!cJSON_IsNumber(at))
		return;
	double left = at->valuedouble - now_unix();
	if (!(left < 1e12)) /* a damaged record: far enough, and a defined cast */
		left = 1e12;
	s->expire_timer = ev_timer_add(s->t->loop, left > 0 ? (uint64_t)(left * 1000) : 0,
				       on_expire, s);
}

/* Read one record; an earlier serve's live sandbox becomes status error.
 * Damaged records are left alone (an operator may look at them). */
static int load_entry(int dirfd, const struct dirent *de, void *arg)
{
	struct sbx_table *t = arg;
	size_t len = strlen(de->d_name);
	if (de->d_name[0] == '.' && strstr(de->d_name, ".tmp")) {
		unlinkat(dirfd, de->d_name, 0); /* a write cut short */
		return 0;
	}
	if (len != 3 + SBX_HEX + 5 || strcmp(de->d_name + 3 + SBX_HEX, ".json") != 0)
		return 0;
	char id[40];
	snprintf(id, sizeof(id), "%.*s", 3 + SBX_HEX, de->d_name);
	if (!valid_id(id) || t->n >= SBX_MAX)
		return 0;
	autoclose int fd = openat(dirfd, de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0;
	autofree char *buf = malloc(REC_MAX + 1);
	ssize_t n = buf ? read_full(fd, buf, REC_MAX) : -1;
	if (n < 0)
		return 0;
	buf[n] = '\0';
	cJSON *rec = cJSON_Parse(buf);
	if (!cJSON_IsObject(rec) || !rec_str(rec, "codebase_id") || !rec_str(rec, "id") ||
	    strcmp(rec_str(rec, "id"), id) != 0) {
		cJSON_Delete(rec);
		return 0;
	}
	struct sbx *s = sbx_alloc(t, rec, id);
	if (!s) {
		cJSON_Delete(rec);
		return -ENOMEM;
	}
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rec, "_live"))) {
		const char *dp = rec_str(rec, "delta_path");
		autofree char *why = dp ? xasprintf("agentfense serve ended while it ran; its "
						    "changes are kept at %s", dp)
					: xstrdup("agentfense serve ended while it ran");
		s->status = SBX_ERROR;
		set_str(rec, "status", "error");
		set_str(rec, "error", why);
		if (!rec_str(rec, "stopped_at"))
			set_now(rec, "stopped_at");
		cJSON_DeleteItemFromObjectCaseSensitive(rec, "_live");
		rec_write(s, NULL);
	}
	arm_expiry(s);
	return 0;
}

int sbx_table_new(struct ev_loop *loop, struct store *st, const char *socket_path,
		  struct sbx_table **out, struct af_err *err)
{
	autofree char *dir = xasprintf("%s/sandboxes", store_root(st));
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return af_err_set(err, errno, "cannot create '%s': %s", dir, strerror(errno));
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return af_err_set(err, errno, "cannot open '%s': %s", dir, strerror(errno));
	struct sbx_table *t = xcalloc(1, sizeof(*t));
	t->loop = loop;
	t->st = st;
	t->dirfd = fd;
	t->store_real = realpath(store_root(st), NULL);
	if (socket_path) {
		autofree char *sd = xstrdup(socket_path);
		char *slash = strrchr(sd, '/');
		if (slash)
			*slash = '\0';
		t->socket_dir = realpath(slash && *sd ? sd : slash ? "/" : ".", NULL);
	}
	int r = for_each_dir_entry(fd, load_entry, t);
	if (r < 0) {
		sbx_table_free(t);
		return af_err_set(err, -r, "cannot read '%s': %s", dir, strerror(-r));
	}
	*out = t;
	return 0;
}

void sbx_table_on_count(struct sbx_table *t, void (*fn)(unsigned n, void *arg), void *arg)
{
	t->on_count = fn;
	t->count_arg = arg;
}

unsigned sbx_table_running(const struct sbx_table *t)
{
	return t->running;
}

/* Wait for the operations under way, at most SBX_OPS_GRACE seconds in
 * all; those still running after it are left to the process's exit
 * (their records say _live: the next serve reports them as status
 * error, changes kept).  Queued ones are called off: their sandboxes
 * get serve's SIGTERM fates with the others. */
static void ops_drain(struct sbx_table *t)
{
	while (t->queue) {
		struct sbx_op *op = t->queue;
		struct sbx *s = op->s;
		t->queue = op->next;
		s->lc = op->lc;
		delta_free(op->delta); /* still kept where the record says */
		s->op = NULL;
		t->busy--;
		free(op);
	}
	t->queue_tail = NULL;
	uint64_t deadline = ev_now_ms() + SBX_OPS_GRACE * 1000ull;
	for (struct sbx *s = t->head, *next; s; s = next) {
		next = s->next;
		if (!s->op)
			continue;
		uint64_t now = ev_now_ms();
		struct pollfd pfd = { .fd = s->op->efd, .events = POLLIN };
		int r = poll(&pfd, 1, now < deadline ? (int)(deadline - now) : 0);
		if (r == 1) {
			/* may free s, and a queued operation started in its
			 * place may end (and free its sandbox) at once */
			op_wait(s);
			next = t->head;
		}
	}
}

void sbx_table_shutdown(struct sbx_table *t)
{
	ops_drain(t);
	for (struct sbx *s = t->head; s; s = s->next) {
		if (!s->lc)
			continue;
		cJSON *delta = NULL;
		finish(s, s->on_destroy, &delta, NULL);
		cJSON_Delete(delta);
		if (s->status == SBX_RUNNING || s->status == SBX_STOPPED) {
			set_status(s, SBX_STOPPED);
			if (!rec_str(s->rec, "stopped_at"))
				set_now(s->rec, "stopped_at");
		}
		cJSON_DeleteItemFromObjectCaseSensitive(s->rec, "_live");
		rec_write(s, NULL);
	}
}

void sbx_table_free(struct sbx_table *t)
{
	if (!t)
		return;
	t->on_count = NULL;
	while (t->head) {
		if (t->head->op) {
			/* its worker still runs (ops_drain): left to the exit */
			t->head = t->head->next;
			if (t->head)
				t->head->prev = NULL;
			continue;
		}
		sbx_release(t->head);
	}
	close(t->dirfd);
	free(t->socket_dir);
	free(t->store_real);
	free(t);
}

struct sbx *sbx_get(struct sbx_table *t, const char *id)
{
	for (struct sbx *s = t->head; s; s = s->next)
		if (strcmp(s->id, id) == 0)
			return s;
	return NULL;
}

const char *sbx_id(const struct sbx *s)
{
	return s->id;
}

bool sbx_running(const struct sbx *s)
{
	return s->status == SBX_RUNNING;
}

void sbx_watch_add(struct sbx *s, struct sbx_watch *w)
{
	w->next = &s->watches;
	w->prev = s->watches.prev;
	s->watches.prev->next = w;
	s->watches.prev = w;
}

void sbx_watch_del(struct sbx *s AF_UNUSED, struct sbx_watch *w)
{
	if (!w->next)
		return;
	w->prev->next = w->next;
	w->next->prev = w->prev;
	w->next = w->prev = NULL;
}

int sbx_spawn(struct sbx *s, const struct sproc_spec *sp, char *const *env,
	      struct sandbox_proc **out, struct af_err *err)
{
	if (s->status != SBX_RUNNING || !s->lc)
		return af_err_set(err, ESRCH, "sandbox '%s' is not running", s->id);
	struct env e;
	env_init(&e);
	for (size_t i = 0; s->env.v && s->env.v[i]; i++) {
		const char *eq = strchr(s->env.v[i], '=');
		autofree char *k = xstrndup(s->env.v[i], (size_t)(eq - s->env.v[i]));
		env_set(&e, k, eq + 1);
	}
	for (size_t i = 0; env && env[i]; i++) {
		const char *eq = strchr(env[i], '=');
		if (!eq || !env_name_valid(env[i], (size_t)(eq - env[i]))) {
			env_free(&e);
			return af_err_usage(err, EINVAL, "'%s' is not a valid NAME=VALUE", env[i]);
		}
		autofree char *k = xstrndup(env[i], (size_t)(eq - env[i]));
		env_set(&e, k, eq + 1);
	}
	struct sproc_spec spec = *sp;
	spec.envp = e.v;
	int r = lc_spawn(s->lc, &spec, out, err);
	env_free(&e);
	return r;
}

/* --- the API's operations ----------------------------------------------------- */

cJSON *sbx_json(const struct sbx *s)
{
	cJSON *j = cJSON_Duplicate(s->rec, true);
	if (!j)
		return NULL;
	for (cJSON *it = j->child, *next; it; it = next) {
		next = it->next;
		if (it->string && it->string[0] == '_')
			cJSON_Delete(cJSON_DetachItemViaPointer(j, it));
	}
	/* not in the record: an operation ends with the serve that ran it */
	const char *op = sbx_operation(s);
	if (!(op ? cJSON_AddStringToObject(j, "operation", op) : cJSON_AddNullToObject(j, "operation"))) {
		cJSON_Delete(j);
		return NULL;
	}
	return j;
}

static bool label_match(const cJSON *rec, const char *label)
{
	const cJSON *labels = cJSON_GetObjectItemCaseSensitive(rec, "labels");
	const char *eq = strchr(label, '=');
	size_t kl = eq ? (size_t)(eq - label) : strlen(label);
	const cJSON *v;
	cJSON_ArrayForEach(v, labels)
		if (v->string && strlen(v->string) == kl && strncmp(v->string, label, kl) == 0)
			return cJSON_IsString(v) && (!eq || strcmp(v->valuestring, eq + 1) == 0);
	return false;
}

static int cmp_created(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
	const char *cx = rec_str(x, "created_at"), *cy = rec_str(y, "created_at");
	int c = strcmp(cx ? cx : "", cy ? cy : "");
	return c ? c : strcmp(rec_str(x, "id"), rec_str(y, "id"));
}

int sbx_list(struct sbx_table *t, const char *codebase_id, const char *status,
	     const char *label, cJSON **out, struct af_err *err)
{
	char st[32] = "";
	if (status && *status) {
		int i;
		if (!enum_norm(status, "SANDBOX_STATUS_", st, sizeof(st)))
			st[0] = '?';
		for (i = 0; i < 4 && strcmp(st, status_names[i]) != 0; i++)
			;
		if (i == 4) {
			char q[96];
			return af_err_usage(err, EINVAL, "unknown status '%s' (one of: pending, "
					    "running, stopped, error)",
					    policy_quote(q, sizeof(q), status));
		}
	}
	cJSON **v = calloc(t->n + 1, sizeof(*v));
	size_t n = 0;
	if (!v)
		return oom(err);
	for (struct sbx *s = t->head; s; s = s->next) {
		if (codebase_id && *codebase_id &&
		    strcmp(rec_str(s->rec, "codebase_id"), codebase_id) != 0)
			continue;
		if (st[0] && strcmp(status_names[s->status], st) != 0)
			continue;
		if (label && *label && !label_match(s->rec, label))
			continue;
		v[n++] = s->rec;
	}
	qsort(v, n, sizeof(*v), cmp_created);
	cJSON *arr = cJSON_CreateArray();
	for (size_t i = 0; arr && i < n; i++) {
		cJSON *o = sbx_json(sbx_get(t, rec_str(v[i], "id")));
		if (!o || !cJSON_AddItemToArray(arr, o)) {
			cJSON_Delete(o);
			cJSON_Delete(arr);
			arr = NULL;
		}
	}
	free(v);
	if (!arr)
		return oom(err);
	*out = arr;
	return 0;
}

int sbx_create(struct sbx_table *t, const cJSON *req, cJSON **out, struct af_err *err)
{
	const cJSON *f;
	int r;
	if (t->n >= SBX_MAX)
		return af_err_set(err, EMFILE, "serve holds %d sandboxes already: destroy some first",
				  SBX_MAX);
	const char *cb = NULL, *preset = POLICY_DEFAULT_PRESET, *image = NULL;
	f = cJSON_GetObjectItemCaseSensitive(req, "codebase_id");
	if (!cJSON_IsString(f) || !*f->valuestring)
		return af_err_usage(err, EINVAL, "field 'codebase_id' is required (a string)");
	cb = f->valuestring;
	f = cJSON_GetObjectItemCaseSensitive(req, "preset");
	if (f && !cJSON_IsNull(f)) {
		if (!cJSON_IsString(f) || !*f->valuestring)
			return af_err_usage(err, EINVAL, "field 'preset' must be a preset's name");
		preset = f->valuestring;
	}
	cJSON *meta = NULL;
	r = store_cb_get(t->st, cb, &meta, err);
	if (r < 0)
		return r;
	cJSON_Delete(meta);

	int net = 0, runtime = 0, fate = 0;
	double expires = 0;
	bool start = false, git_identity = true;
	const cJSON *labels = cJSON_GetObjectItemCaseSensitive(req, "labels");
	if (labels && !cJSON_IsNull(labels)) {
		const cJSON *it;
		bool ok = cJSON_IsObject(labels);
		cJSON_ArrayForEach(it, labels)
			ok = ok && cJSON_IsString(it);
		if (!ok)
			return af_err_usage(err, EINVAL, "field 'labels' must be an object of strings");
	}
	if ((f = cJSON_GetObjectItemCaseSensitive(req, "network")) && !cJSON_IsNull(f) &&
	    (net = field_enum(f, "network", "NETWORK_MODE_", net_names, err)) < 0)
		return net;
	if ((f = cJSON_GetObjectItemCaseSensitive(req, "runtime")) && !cJSON_IsNull(f) &&
	    (runtime = field_enum(f, "runtime", "RUNTIME_TYPE_", runtime_names, err)) < 0)
		return runtime;
	if ((f = cJSON_GetObjectItemCaseSensitive(req, "on_destroy")) && !cJSON_IsNull(f) &&
	    (fate = field_enum(f, "on_destroy", "ON_DESTROY_", fate_names, err)) < 0)
		return fate;
	if ((f = cJSON_GetObjectItemCaseSensitive(req, "expires_in")) && !cJSON_IsNull(f) &&
	    field_duration(f, "expires_in", &expires, err) < 0)
		return -EINVAL;
	if ((f = cJSON_GetObjectItemCaseSensitive(req, "start")) && !cJSON_IsNull(f)) {
		if (!cJSON_IsBool(f))
			return af_err_usage(err, EINVAL, "field 'start' must be true or false");
		start = cJSON_IsTrue(f);
	}
	if ((f = cJSON_GetObjectItemCaseSensitive(req, "git_identity")) && !cJSON_IsNull(f)) {
		if (!cJSON_IsBool(f))
			return af_err_usage(err, EINVAL, "field 'git_identity' must be true or false");
		git_identity = cJSON_IsTrue(f);
	}
	if ((f = cJSON_GetObjectItemCaseSensitive(req, "image")) && !cJSON_IsNull(f)) {
		if (!cJSON_IsString(f) || f->valuestring[0] != '/')
			return af_err_usage(err, EINVAL, "field 'image' must be an absolute path on the "
					    "host: an OCI layout or a root filesystem directory");
		image = f->valuestring;
	}
	if (runtime == 1 && !image)
		return af_err_usage(err, EINVAL, "field 'runtime' is docker, which needs field "
				    "'image' (an OCI layout or a root filesystem directory)");

	cJSON *rec = cJSON_CreateObject(), *warnings = cJSON_CreateArray();
	cJSON *res = cJSON_CreateObject(), *perms = NULL;
	struct limits_spec ls = { 0 };
	struct policy *policy = NULL;
	if (!rec || !warnings || !res) {
		r = oom(err);
		goto fail;
	}
	r = parse_resources(cJSON_GetObjectItemCaseSensitive(req, "resources"), &ls, res, warnings,
			    err);
	if (r < 0)
		goto fail;
	r = parse_rules(preset, cJSON_GetObjectItemCaseSensitive(req, "permissions"), &perms,
			&policy, err);
	if (r < 0)
		goto fail;
	if (runtime == 1 && !cJSON_AddItemToArray(warnings, cJSON_CreateString(
		    "runtime docker: agentfense runs the image in its own sandbox, no Docker daemon"))) {
		r = oom(err);
		goto fail;
	}

	unsigned char rnd[SBX_HEX / 2];
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		r = af_err_set(err, errno ? errno : EIO, "cannot get random bytes: %s",
			       strerror(errno ? errno : EIO));
		goto fail;
	}
	char id[40] = SBX_PREFIX;
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(id + 3 + 2 * i, 3, "%02x", rnd[i]);
	char now[40], exp_at[40];
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	rfc3339(&ts, now, sizeof(now));
	double exp_unix = 0;
	if (expires > 0) {
		exp_unix = (double)ts.tv_sec + ts.tv_nsec / 1e9 + expires;
		struct timespec e = { .tv_sec = (time_t)exp_unix,
				      .tv_nsec = (long)((exp_unix - (double)(time_t)exp_unix) * 1e9) };
		rfc3339(&e, exp_at, sizeof(exp_at));
	}
	cJSON *lab = labels && !cJSON_IsNull(labels) ? cJSON_Duplicate(labels, true)
						      : cJSON_CreateObject();
	bool ok = cJSON_AddStringToObject(rec, "id", id) &&
		  cJSON_AddStringToObject(rec, "codebase_id", cb) &&
		  cJSON_AddStringToObject(rec, "status", "pending") &&
		  cJSON_AddStringToObject(rec, "preset", preset) &&
		  cJSON_AddItemToObject(rec, "permissions", perms) && (perms = NULL, true) &&
		  lab && cJSON_AddItemToObject(rec, "labels", lab) && (lab = NULL, true) &&
		  cJSON_AddStringToObject(rec, "network", net_names[net]) &&
		  cJSON_AddStringToObject(rec, "runtime", runtime_names[runtime]) &&
		  cJSON_AddItemToObject(rec, "resources", res) && (res = NULL, true) &&
		  (image ? cJSON_AddStringToObject(rec, "image", image)
			 : cJSON_AddNullToObject(rec, "image")) &&
		  cJSON_AddStringToObject(rec, "on_destroy", fate_names[fate]) &&
		  cJSON_AddBoolToObject(rec, "git_identity", git_identity) &&
		  cJSON_AddStringToObject(rec, "created_at", now) &&
		  cJSON_AddNullToObject(rec, "started_at") &&
		  cJSON_AddNullToObject(rec, "stopped_at") &&
		  (exp_unix > 0 ? cJSON_AddStringToObject(rec, "expires_at", exp_at)
				: cJSON_AddNullToObject(rec, "expires_at")) &&
		  cJSON_AddNullToObject(rec, "delta_path") &&
		  cJSON_AddItemToObject(rec, "warnings", warnings) && (warnings = NULL, true) &&
		  (exp_unix <= 0 || cJSON_AddNumberToObject(rec, "_expires_unix", exp_unix));
	cJSON_Delete(lab);
	if (!ok) {
		r = oom(err);
		goto fail;
	}
	struct sbx *s = sbx_alloc(t, rec, id);
	if (!s) {
		r = oom(err);
		goto fail;
	}
	rec = NULL;
	s->policy = steal_pointer(&policy);
	/* the project and the image are checked now, not at the first start */
	r = prepare(s, err);
	if (r == 0)
		r = rec_write(s, err);
	if (r < 0) {
		sbx_release(s);
		goto fail;
	}
	arm_expiry(s);
	if (start && (r = sbx_start(s, err)) < 0) {
		/* nothing of it is left: a create that fails leaves no sandbox */
		cJSON *delta = NULL;
		struct af_err ign = { 0 };
		int e = r;
		sbx_destroy(t, s, true, &delta, &ign);
		cJSON_Delete(delta);
		r = e;
		goto fail;
	}
	*out = sbx_json(s);
	return *out ? 0 : oom(err);
fail:
	policy_free(policy);
	cJSON_Delete(perms);
	cJSON_Delete(res);
	cJSON_Delete(warnings);
	cJSON_Delete(rec);
	return r;
}

int sbx_destroy(struct sbx_table *t, struct sbx *s, bool discard, cJSON **delta,
		struct af_err *err)
{
	int r = finish(s, discard ? LC_CHANGES_DISCARD : s->on_destroy, delta, err);
	char name[64];
	snprintf(name, sizeof(name), "%s.json", s->id);
	if (unlinkat(t->dirfd, name, 0) < 0 && errno != ENOENT && r == 0)
		r = af_err_set(err, errno, "cannot remove the record of sandbox '%s': %s", s->id,
			       strerror(errno));
	sbx_release(s);
	return r;
}

void sbx_destroy_codebase(struct sbx_table *t, const char *codebase_id)
{
	struct sbx *s = t->head, *next;
	for (; s; s = next) {
		next = s->next;
		if (strcmp(rec_str(s->rec, "codebase_id"), codebase_id) != 0)
			continue;
		if (s->op) {
			/* not while a worker writes to the codebase */
			op_wait(s);
			next = t->head; /* s and others may be gone (see ops_drain) */
			continue;
		}
		cJSON *delta = NULL;
		sbx_destroy(t, s, true, &delta, NULL);
		cJSON_Delete(delta);
	}
}

bool sbx_codebase_in_use(struct sbx_table *t, const char *codebase_id)
{
	for (struct sbx *s = t->head; s; s = s->next)
		if (strcmp(rec_str(s->rec, "codebase_id"), codebase_id) == 0)
			return true;
	return false;
}
