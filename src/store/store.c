/* store.c - codebases on disk (see store.h). */
#include "store/store.h"

#include <cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "store/import.h"
#include "image/tarx.h"

#define ID_PREFIX "cb_"
#define ID_HEX 32
#define LIST_MAX 1000000
#define META_MAX 60000

struct store {
	char *root;
	int cbfd; /* root/codebases */
	bool (*in_use)(const char *id, void *arg);
	void *in_use_arg;
};

struct store_upload {
	int dirfd;
	char *tmpname, *name, *path;
	int fd;
};

static int oom(struct af_err *err)
{
	return af_err_set(err, ENOMEM, "out of memory");
}

int store_open(struct store **out, const char *root, struct af_err *err)
{
	autofree char *dflt = NULL;
	if (!root) {
		dflt = xdg_dir("XDG_DATA_HOME", ".local/share", "agentfense", "data directory", err);
		if (!dflt)
			return -ENOENT;
		root = dflt;
	}
	autofree char *cbdir = NULL;
	if (asprintf(&cbdir, "%s/codebases", root) < 0)
		return oom(err);
	int r = mkdir_p(cbdir);
	if (r < 0)
		return af_err_set(err, -r, "cannot create the store '%s': %s", cbdir, strerror(-r));
	int fd = open(cbdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return af_err_set(err, errno, "cannot open the store '%s': %s", cbdir, strerror(errno));
	struct store *s = calloc(1, sizeof(*s));
	if (!s || !(s->root = strdup(root))) {
		free(s);
		close(fd);
		return oom(err);
	}
	s->cbfd = fd;
	*out = s;
	return 0;
}

void store_free(struct store *s)
{
	if (!s)
		return;
	close(s->cbfd);
	free(s->root);
	free(s);
}

const char *store_root(const struct store *s)
{
	return s->root;
}

void store_set_in_use(struct store *s, bool (*fn)(const char *id, void *arg), void *arg)
{
	s->in_use = fn;
	s->in_use_arg = arg;
}

static bool valid_id(const char *id)
{
	if (!id || strncmp(id, ID_PREFIX, 3) != 0 || strlen(id) != 3 + ID_HEX)
		return false;
	for (const char *p = id + 3; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

/* Now in RFC 3339, UTC, with microseconds: creation times order the
 * codebases created within one second too. */
static void now_rfc3339(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%06uZ", (unsigned)(ts.tv_nsec / 1000) % 1000000u);
}

int store_clean_path(const char *path, char **out, struct af_err *err)
{
	if (!path)
		path = "";
	if (path[0] == '/' && strcmp(path, "/") != 0)
		return af_err_usage(err, EINVAL, "path '%s' is absolute: paths are relative to "
				    "the codebase", path);
	size_t len = strlen(path);
	if (len >= PATH_MAX)
		return af_err_usage(err, ENAMETOOLONG, "path too long");
	char *o = malloc(len + 1);
	if (!o)
		return oom(err);
	size_t n = 0;
	for (const char *p = path; *p;) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *e = strchrnul(p, '/');
		size_t l = (size_t)(e - p);
		if (l == 2 && p[0] == '.' && p[1] == '.') {
			free(o);
			return af_err_usage(err, EINVAL, "path '%s' has a '..' component", path);
		}
		if (!(l == 1 && p[0] == '.')) {
			if (n)
				o[n++] = '/';
			memcpy(o + n, p, l);
			n += l;
		}
		p = e;
	}
	o[n] = '\0';
	*out = o;
	return 0;
}

/* Open the directory named rel below dirfd, one name at a time, never
 * through a symbolic link; create missing ones if mkdirs.  Returns an
 * fd, or -errno (-ELOOP if a name is a symbolic link). */
static int open_dir_beneath(int dirfd, const char *rel, bool mkdirs)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (const char *p = rel; *p;) {
		const char *e = strchrnul(p, '/');
		char name[NAME_MAX + 1];
		size_t l = (size_t)(e - p);
		if (l > NAME_MAX) {
			close(fd);
			return -ENAMETOOLONG;
		}
		memcpy(name, p, l);
		name[l] = '\0';
		if (mkdirs && mkdirat(fd, name, 0755) < 0 && errno != EEXIST) {
			int e2 = -errno;
			close(fd);
			return e2;
		}
		int n = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (n < 0) {
			int e2 = -errno;
			struct stat st;
			if (e2 == -ENOTDIR && fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISLNK(st.st_mode))
				e2 = -ELOOP;
			close(fd);
			return e2;
		}
		close(fd);
		fd = n;
		p = *e ? e + 1 : e;
	}
	return fd;
}

/* Split a clean path into its parent and last name (rel is modified). */
static const char *split_last(char *rel, const char **parent)
{
	char *slash = strrchr(rel, '/');
	if (!slash) {
		*parent = "";
		return rel;
	}
	*slash = '\0';
	*parent = rel;
	return slash + 1;
}

static int path_error(struct af_err *err, int e, const char *path)
{
	switch (e) {
	case ENOENT:
		return af_err_set(err, ENOENT, "'%s' does not exist in the codebase", path);
	case ELOOP:
		return af_err_usage(err, ELOOP, "'%s' goes through a symbolic link, which the store "
				    "never follows", path);
	case ENOTDIR:
		return af_err_usage(err, ENOTDIR, "a component of '%s' is not a directory", path);
	default:
		return af_err_set(err, e, "cannot open '%s': %s", path, strerror(e));
	}
}

/* Open files/ of codebase id.  Returns an fd, or -errno. */
static int open_files(struct store *s, const char *id, struct af_err *err)
{
	if (!valid_id(id))
		return af_err_set(err, ENOENT, "no codebase '%s'", id ? id : "");
	char rel[64];
	snprintf(rel, sizeof(rel), "%s/files", id);
	int fd = openat(s->cbfd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? af_err_set(err, ENOENT, "no codebase '%s'", id)
				       : af_err_set(err, errno, "cannot open codebase '%s': %s", id,
						    strerror(errno));
	return fd;
}

/* Open files/ of codebase id and clean path into *rel, in that order, so
 * an unknown codebase is reported before a bad path.  Returns an fd, or
 * -errno. */
static int open_files_path(struct store *s, const char *id, const char *path, char **rel,
			   struct af_err *err)
{
	autoclose int root = open_files(s, id, err);
	if (root < 0)
		return root;
	int r = store_clean_path(path, rel, err);
	if (r < 0)
		return r;
	return steal_fd(&root);
}

/* --- metadata ---------------------------------------------------------------- */

static int meta_read(struct store *s, const char *id, cJSON **out, struct af_err *err)
{
	if (!valid_id(id))
		return af_err_set(err, ENOENT, "no codebase '%s'", id ? id : "");
	char rel[64];
	snprintf(rel, sizeof(rel), "%s/meta.json", id);
	autoclose int fd = openat(s->cbfd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? af_err_set(err, ENOENT, "no codebase '%s'", id)
				       : af_err_set(err, errno, "cannot read codebase '%s': %s", id,
						    strerror(errno));
	char buf[1 << 16];
	ssize_t n = read_full(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		return af_err_set(err, (int)-n, "cannot read codebase '%s': %s", id,
				  strerror((int)-n));
	buf[n] = '\0';
	cJSON *j = cJSON_Parse(buf);
	if (!j || !cJSON_IsObject(j)) {
		cJSON_Delete(j);
		return af_err_set(err, EIO, "the metadata of codebase '%s' is damaged", id);
	}
	*out = j;
	return 0;
}

/* Write meta.json of id atomically: temp file, fsync, rename, fsync of
 * the directory.  Returns 0, or -errno. */
static int meta_write(struct store *s, const char *dir, const cJSON *meta, struct af_err *err)
{
	autofree char *text = cJSON_PrintUnformatted(meta);
	if (!text)
		return oom(err);
	/* meta_read reads at most 64 KiB */
	if (strlen(text) > META_MAX)
		return af_err_usage(err, EINVAL, "the name and labels take %zu bytes; at most %d",
				    strlen(text), META_MAX);
	autoclose int dfd = openat(s->cbfd, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return af_err_set(err, errno, "cannot open codebase '%s': %s", dir, strerror(errno));
	autoclose int fd = openat(dfd, "meta.json.tmp",
				  O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return af_err_set(err, errno, "cannot write the metadata of '%s': %s", dir,
				  strerror(errno));
	int r = write_all(fd, text, strlen(text));
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (r == 0 && renameat(dfd, "meta.json.tmp", dfd, "meta.json") < 0)
		r = -errno;
	if (r == 0)
		fsync(dfd);
	if (r < 0) {
		unlinkat(dfd, "meta.json.tmp", 0);
		return af_err_set(err, -r, "cannot write the metadata of '%s': %s", dir,
				  strerror(-r));
	}
	return 0;
}

struct tally {
	uint64_t files, bytes;
	unsigned depth;
};

static int tally_entry(int dirfd, const struct dirent *de, void *arg)
{
	struct tally *t = arg;
	struct stat st;
	if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	if (S_ISDIR(st.st_mode)) {
		if (t->depth > 256)
			return 0;
		int fd = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return 0;
		t->depth++;
		int r = for_each_dir_entry(fd, tally_entry, t);
		t->depth--;
		close(fd);
		return r;
	}
	t->files++;
	if (S_ISREG(st.st_mode))
		t->bytes += (uint64_t)st.st_size;
	return 0;
}

/* Recount files and bytes of id and write its metadata. */
static int meta_refresh(struct store *s, const char *id, struct af_err *err)
{
	cJSON *meta = NULL;
	int r = meta_read(s, id, &meta, err);
	if (r < 0)
		return r;
	autoclose int fd = open_files(s, id, err);
	if (fd < 0) {
		cJSON_Delete(meta);
		return fd;
	}
	struct tally t = { 0 };
	for_each_dir_entry(fd, tally_entry, &t);
	char now[64];
	now_rfc3339(now, sizeof(now));
	cJSON_DeleteItemFromObject(meta, "file_count");
	cJSON_DeleteItemFromObject(meta, "size");
	cJSON_DeleteItemFromObject(meta, "updated_at");
	if (!cJSON_AddNumberToObject(meta, "file_count", (double)t.files) ||
	    !cJSON_AddNumberToObject(meta, "size", (double)t.bytes) ||
	    !cJSON_AddStringToObject(meta, "updated_at", now))
		r = oom(err);
	else
		r = meta_write(s, id, meta, err);
	cJSON_Delete(meta);
	return r;
}

/* --- codebases ------------------------------------------------------------- */

int store_cb_create(struct store *s, const struct cb_create *req, cJSON **info,
		    cJSON **skipped, struct af_err *err)
{
	if (!req->name || !*req->name)
		return af_err_usage(err, EINVAL, "a codebase needs a name");
	if (req->labels && !cJSON_IsObject(req->labels))
		return af_err_usage(err, EINVAL, "labels must be an object of strings");
	const cJSON *it;
	cJSON_ArrayForEach(it, req->labels)
		if (!cJSON_IsString(it))
			return af_err_usage(err, EINVAL, "label '%s' is not a string", it->string);
	autoclose int src = -1;
	if (req->source) {
		if (req->source[0] != '/')
			return af_err_usage(err, EINVAL, "source path '%s' is not absolute",
					    req->source);
		src = open(req->source, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (src < 0)
			return af_err_set(err, errno, "cannot open '%s': %s", req->source,
					  strerror(errno));
	}

	unsigned char rnd[ID_HEX / 2];
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return af_err_set(err, errno ? errno : EIO, "cannot get random bytes: %s",
				  strerror(errno));
	char id[3 + ID_HEX + 1] = ID_PREFIX, tmp[64];
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(id + 3 + 2 * i, 3, "%02x", rnd[i]);
	snprintf(tmp, sizeof(tmp), ".new-%s", id);

	/* built under a temporary name and renamed into place: a crash
	 * leaves no half codebase under a real id */
	if (mkdirat(s->cbfd, tmp, 0700) < 0)
		return af_err_set(err, errno, "cannot create a codebase in '%s': %s", s->root,
				  strerror(errno));
	int r = 0;
	cJSON *meta = NULL, *skip = cJSON_CreateArray();
	struct import_result res = { .skipped = skip };
	autoclose int dir = openat(s->cbfd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	autoclose int files = -1;
	if (!skip) {
		r = oom(err);
		goto fail;
	}
	if (dir < 0 || mkdirat(dir, "files", 0700) < 0 ||
	    (files = openat(dir, "files", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		r = af_err_set(err, errno, "cannot create a codebase in '%s': %s", s->root,
			       strerror(errno));
		goto fail;
	}
	if (src >= 0) {
		struct cb_create rq = *req;
		if (!rq.max_file_size)
			rq.max_file_size = STORE_MAX_FILE_DEFAULT;
		struct stat self;
		if (fstat(s->cbfd, &self) < 0) {
			r = af_err_set(err, errno, "cannot stat the store: %s", strerror(errno));
			goto fail;
		}
		r = store_import(src, files, &self, &rq, &res, err);
		if (r < 0)
			goto fail;
	}
	char now[64];
	now_rfc3339(now, sizeof(now));
	meta = cJSON_CreateObject();
	cJSON *labels = req->labels ? cJSON_Duplicate(req->labels, 1) : cJSON_CreateObject();
	if (!meta || !labels || !cJSON_AddStringToObject(meta, "id", id) ||
	    !cJSON_AddStringToObject(meta, "name", req->name) ||
	    !cJSON_AddStringToObject(meta, "owner_id", req->owner_id ? req->owner_id : "") ||
	    !cJSON_AddItemToObject(meta, "labels", labels) ||
	    !cJSON_AddNumberToObject(meta, "file_count", (double)res.files) ||
	    !cJSON_AddNumberToObject(meta, "size", (double)res.bytes) ||
	    !cJSON_AddStringToObject(meta, "created_at", now) ||
	    !cJSON_AddStringToObject(meta, "updated_at", now)) {
		if (!cJSON_IsObject(labels) || !cJSON_GetObjectItem(meta, "labels"))
			cJSON_Delete(labels);
		r = oom(err);
		goto fail;
	}
	if ((r = meta_write(s, tmp, meta, err)) < 0)
		goto fail;
	if (renameat(s->cbfd, tmp, s->cbfd, id) < 0) {
		r = af_err_set(err, errno, "cannot create codebase '%s': %s", id, strerror(errno));
		goto fail;
	}
	fsync(s->cbfd);
	if (res.ignored && !cJSON_AddNumberToObject(meta, "ignored_count", (double)res.ignored)) {
		r = oom(err);
		cJSON_Delete(meta);
		cJSON_Delete(skip);
		store_cb_delete(s, id, true, NULL);
		return r;
	}
	*info = meta;
	*skipped = skip;
	return 0;
fail:
	cJSON_Delete(meta);
	cJSON_Delete(skip);
	tarx_remove_tree(s->cbfd, tmp);
	return r;
}

int store_cb_get(struct store *s, const char *id, cJSON **info, struct af_err *err)
{
	return meta_read(s, id, info, err);
}

static bool label_match(const cJSON *meta, const char *label)
{
	const cJSON *labels = cJSON_GetObjectItemCaseSensitive(meta, "labels");
	const char *eq = strchr(label, '=');
	size_t kl = eq ? (size_t)(eq - label) : strlen(label);
	const cJSON *it;
	cJSON_ArrayForEach(it, labels)
		if (it->string && strlen(it->string) == kl && strncmp(it->string, label, kl) == 0)
			return !eq || (cJSON_IsString(it) && strcmp(it->valuestring, eq + 1) == 0);
	return false;
}

static int cmp_created(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
	const char *cx = cJSON_GetStringValue(cJSON_GetObjectItem(x, "created_at"));
	const char *cy = cJSON_GetStringValue(cJSON_GetObjectItem(y, "created_at"));
	int c = strcmp(cx ? cx : "", cy ? cy : "");
	if (c)
		return c;
	return strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(x, "id")),
		      cJSON_GetStringValue(cJSON_GetObjectItem(y, "id")));
}

struct list_arg {
	struct store *s;
	const char *owner, *label;
	cJSON **items;
	size_t n, cap;
};

static int list_entry(int dirfd AF_UNUSED, const struct dirent *de, void *arg)
{
	struct list_arg *la = arg;
	if (!valid_id(de->d_name))
		return 0;
	cJSON *meta;
	struct af_err e;
	if (meta_read(la->s, de->d_name, &meta, &e) < 0)
		return e.errnum == ENOMEM ? -ENOMEM : 0; /* vanished or damaged: not listed */
	const char *owner = cJSON_GetStringValue(cJSON_GetObjectItem(meta, "owner_id"));
	if ((la->owner && (!owner || strcmp(owner, la->owner) != 0)) ||
	    (la->label && !label_match(meta, la->label)) || la->n >= LIST_MAX) {
		cJSON_Delete(meta);
		return 0;
	}
	if (la->n == la->cap) {
		size_t c = la->cap * 2 + 16;
		cJSON **it = realloc(la->items, c * sizeof(*it));
		if (!it) {
			cJSON_Delete(meta);
			return -ENOMEM;
		}
		la->items = it;
		la->cap = c;
	}
	la->items[la->n++] = meta;
	return 0;
}

int store_cb_list(struct store *s, const char *owner_id, const char *label, cJSON **list,
		  struct af_err *err)
{
	struct list_arg la = { s, owner_id, label, NULL, 0, 0 };
	int r = for_each_dir_entry(s->cbfd, list_entry, &la);
	cJSON *arr = r < 0 ? NULL : cJSON_CreateArray();
	if (arr) {
		/* oldest first: a stable order for scripts */
		if (la.n)
			qsort(la.items, la.n, sizeof(*la.items), cmp_created);
		for (size_t i = 0; i < la.n; i++) {
			cJSON_AddItemToArray(arr, la.items[i]);
			la.items[i] = NULL;
		}
	}
	for (size_t i = 0; i < la.n; i++)
		cJSON_Delete(la.items[i]);
	free(la.items);
	if (!arr)
		return r < 0 && r != -ENOMEM
			       ? af_err_set(err, -r, "cannot list the store: %s", strerror(-r))
			       : oom(err);
	*list = arr;
	return 0;
}

int store_cb_delete(struct store *s, const char *id, bool force, struct af_err *err)
{
	cJSON *meta;
	int r = meta_read(s, id, &meta, err);
	if (r < 0)
		return r;
	cJSON_Delete(meta);
	if (!force && s->in_use && s->in_use(id, s->in_use_arg))
		return af_err_set(err, EBUSY, "codebase '%s' is in use by a sandbox", id);
	/* renamed away first: the id is gone at once even if removing a
	 * large tree takes a while or fails half-way */
	char trash[64];
	snprintf(trash, sizeof(trash), ".del-%s", id);
	if (renameat(s->cbfd, id, s->cbfd, trash) < 0)
		return af_err_set(err, errno, "cannot delete codebase '%s': %s", id,
				  strerror(errno));
	r = tarx_remove_tree(s->cbfd, trash);
	if (r < 0)
		return af_err_set(err, -r, "cannot remove the files of codebase '%s': %s", id,
				  strerror(-r));
	return 0;
}

/* --- files ------------------------------------------------------------------ */

static cJSON *file_info(const char *name, const char *path, const struct stat *st)
{
	char mt[32];
	struct tm tm;
	gmtime_r(&st->st_mtim.tv_sec, &tm);
	strftime(mt, sizeof(mt), "%Y-%m-%dT%H:%M:%SZ", &tm);
	char mode[8];
	snprintf(mode, sizeof(mode), "%04o", (unsigned)(st->st_mode & 07777));
	const char *type = S_ISDIR(st->st_mode) ? "dir" : S_ISLNK(st->st_mode) ? "symlink" : "file";
	cJSON *o = cJSON_CreateObject();
	if (!o || !cJSON_AddStringToObject(o, "name", name) ||
	    !cJSON_AddStringToObject(o, "path", path) ||
	    !cJSON_AddNumberToObject(o, "size", S_ISREG(st->st_mode) ? (double)st->st_size : 0) ||
	    !cJSON_AddStringToObject(o, "mode", mode) ||
	    !cJSON_AddStringToObject(o, "mtime", mt) ||
	    !cJSON_AddBoolToObject(o, "is_dir", S_ISDIR(st->st_mode)) ||
	    !cJSON_AddStringToObject(o, "type", type)) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

struct flist {
	cJSON *arr;
	bool recursive;
	char path[PATH_MAX];
	unsigned depth;
	size_t count;
};

static int flist_entry(int dirfd, const struct dirent *de, void *arg)
{
	struct flist *fl = arg;
	struct stat st;
	if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	size_t plen = strlen(fl->path), nl = strlen(de->d_name);
	if (plen + nl + 2 > sizeof(fl->path))
		return -ENAMETOOLONG;
	if (plen)
		fl->path[plen] = '/';
	memcpy(fl->path + plen + (plen ? 1 : 0), de->d_name, nl + 1);
	int r = 0;
	cJSON *o = file_info(de->d_name, fl->path, &st);
	if (!o || !cJSON_AddItemToArray(fl->arr, o)) {
		cJSON_Delete(o);
		r = -ENOMEM;
	} else if (++fl->count > LIST_MAX) {
		r = -E2BIG;
	} else if (fl->recursive && S_ISDIR(st.st_mode) && fl->depth < 256) {
		int fd = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0) {
			fl->depth++;
			r = for_each_dir_entry(fd, flist_entry, fl);
			fl->depth--;
			close(fd);
		}
	}
	fl->path[plen] = '\0';
	return r;
}

static int cmp_path(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
	return strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(x, "path")),
		      cJSON_GetStringValue(cJSON_GetObjectItem(y, "path")));
}

/* Sort the entries of arr by path, in place. */
static int sort_by_path(cJSON *arr)
{
	int n = cJSON_GetArraySize(arr);
	if (n < 2)
		return 0;
	cJSON **v = malloc((size_t)n * sizeof(*v));
	if (!v)
		return -ENOMEM;
	int i = 0;
	while (arr->child) {
		v[i++] = cJSON_DetachItemViaPointer(arr, arr->child);
	}
	qsort(v, (size_t)n, sizeof(*v), cmp_path);
	for (i = 0; i < n; i++)
		cJSON_AddItemToArray(arr, v[i]);
	free(v);
	return 0;
}

int store_files_list(struct store *s, const char *id, const char *path, bool recursive,
		     cJSON **files, struct af_err *err)
{
	autofree char *rel = NULL;
	autoclose int root = open_files_path(s, id, path, &rel, err);
	if (root < 0)
		return root;
	int r = 0;
	autoclose int pfd = -1;
	autoclose int dfd = -1;
	autofree char *copy = NULL;
	struct stat st;
	struct flist *fl = calloc(1, sizeof(*fl));
	if (!fl)
		return oom(err);
	fl->arr = cJSON_CreateArray();
	fl->recursive = recursive;
	if (!fl->arr) {
		free(fl);
		return oom(err);
	}
	/* a file: itself; a directory: what is in it */
	const char *parent;
	copy = strdup(rel);
	if (!copy) {
		r = oom(err);
		goto out;
	}
	const char *last = split_last(copy, &parent);
	if (*rel)
		pfd = open_dir_beneath(root, parent, false);
	if (*rel && pfd < 0) {
		r = path_error(err, -pfd, rel);
		goto out;
	}
	if (*rel && fstatat(pfd, last, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		r = path_error(err, errno, rel);
		goto out;
	}
	if (*rel && !S_ISDIR(st.st_mode)) {
		cJSON *o = file_info(last, rel, &st);
		if (!o || !cJSON_AddItemToArray(fl->arr, o)) {
			cJSON_Delete(o);
			r = oom(err);
		}
		goto out;
	}
	dfd = open_dir_beneath(root, rel, false);
	if (dfd < 0) {
		r = path_error(err, -dfd, rel);
		goto out;
	}
	snprintf(fl->path, sizeof(fl->path), "%s", rel);
	r = for_each_dir_entry(dfd, flist_entry, fl);
	if (r == -E2BIG)
		r = af_err_set(err, E2BIG, "more than %d entries under '%s': list a narrower path",
			       LIST_MAX, *rel ? rel : "/");
	else if (r < 0)
		r = af_err_set(err, -r, "cannot list '%s': %s", *rel ? rel : "/", strerror(-r));
	else if (sort_by_path(fl->arr) < 0)
		r = oom(err);
out:
	if (r < 0)
		cJSON_Delete(fl->arr);
	else
		*files = fl->arr;
	free(fl);
	return r;
}

int store_file_open(struct store *s, const char *id, const char *path, int *fdp,
		    uint64_t *size, struct af_err *err)
{
	autofree char *rel = NULL;
	autoclose int root = open_files_path(s, id, path, &rel, err);
	if (root < 0)
		return root;
	if (!*rel)
		return af_err_usage(err, EISDIR, "'/' is a directory");
	const char *parent;
	const char *last = split_last(rel, &parent);
	autoclose int pfd = open_dir_beneath(root, parent, false);
	if (pfd < 0)
		return path_error(err, -pfd, path);
	autoclose int fd = openat(pfd, last, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return path_error(err, errno, path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return af_err_set(err, errno, "cannot stat '%s': %s", path, strerror(errno));
	if (S_ISDIR(st.st_mode))
		return af_err_usage(err, EISDIR, "'%s' is a directory", path);
	if (!S_ISREG(st.st_mode))
		return af_err_usage(err, EINVAL, "'%s' is not a regular file", path);
	*size = (uint64_t)st.st_size;
	*fdp = steal_fd(&fd);
	return 0;
}

void store_upload_abort(struct store_upload *up)
{
	if (!up)
		return;
	if (up->fd >= 0)
		close(up->fd);
	if (up->dirfd >= 0) {
		if (up->tmpname)
			unlinkat(up->dirfd, up->tmpname, 0);
		close(up->dirfd);
	}
	free(up->tmpname);
	free(up->name);
	free(up->path);
	free(up);
}

int store_upload_begin(struct store *s, const char *id, const char *path, unsigned mode,
		       struct store_upload **out, int *fdp, struct af_err *err)
{
	autofree char *rel = NULL;
	autoclose int root = open_files_path(s, id, path, &rel, err);
	if (root < 0)
		return root;
	int r = 0;
	if (!*rel)
		return af_err_usage(err, EISDIR, "cannot upload over '/', the codebase's root");
	struct store_upload *up = calloc(1, sizeof(*up));
	if (!up)
		return oom(err);
	up->dirfd = up->fd = -1;
	up->path = strdup(rel);
	const char *parent;
	const char *last = split_last(rel, &parent);
	up->name = strdup(last);
	if (!up->path || !up->name) {
		store_upload_abort(up);
		return oom(err);
	}
	up->dirfd = open_dir_beneath(root, parent, true);
	if (up->dirfd < 0) {
		r = path_error(err, -up->dirfd, up->path);
		store_upload_abort(up);
		return r;
	}
	/* up->path stays for messages; s is not needed after this */
	(void)s;
	for (int tries = 0; tries < 16; tries++) {
		unsigned rnd;
		if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
			rnd = (unsigned)tries;
		char tmp[64];
		snprintf(tmp, sizeof(tmp), ".af-upload-%08x", rnd);
		up->fd = openat(up->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
				mode & 0777);
		if (up->fd >= 0) {
			up->tmpname = strdup(tmp);
			if (!up->tmpname) {
				unlinkat(up->dirfd, tmp, 0);
				store_upload_abort(up);
				return oom(err);
			}
			break;
		}
		if (errno != EEXIST)
			break;
	}
	if (up->fd < 0) {
		r = af_err_set(err, errno, "cannot create '%s': %s", up->path, strerror(errno));
		store_upload_abort(up);
		return r;
	}
	fchmod(up->fd, mode & 0777);
	*fdp = up->fd;
	*out = up;
	return 0;
}

int store_upload_commit(struct store_upload *up, cJSON **info, struct af_err *err)
{
	int r = 0;
	struct stat st;
	if (fsync(up->fd) < 0 || fstat(up->fd, &st) < 0) {
		r = af_err_set(err, errno, "cannot store '%s': %s", up->path, strerror(errno));
		goto out;
	}
	/* renameat replaces a file or a symbolic link at the name (the
	 * link itself, never its target); over a directory it fails */
	if (renameat(up->dirfd, up->tmpname, up->dirfd, up->name) < 0) {
		r = errno == EISDIR || errno == ENOTEMPTY || errno == EEXIST
			    ? af_err_set(err, EEXIST, "'%s' is a directory", up->path)
			    : af_err_set(err, errno, "cannot store '%s': %s", up->path,
					 strerror(errno));
		goto out;
	}
	free(up->tmpname);
	up->tmpname = NULL;
	*info = file_info(up->name, up->path, &st);
	if (!*info)
		r = oom(err);
out:
	store_upload_abort(up);
	return r;
}

int store_tmpfile(struct store *s)
{
	int fd = openat(s->cbfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	return fd < 0 ? -errno : fd;
}

int store_tar_extract(struct store *s, const char *id, const char *path, int tar_fd,
		      unsigned long *entries, struct af_err *err)
{
	autofree char *rel = NULL;
	autoclose int root = open_files_path(s, id, path, &rel, err);
	if (root < 0)
		return root;
	autoclose int dfd = open_dir_beneath(root, rel, true);
	if (dfd < 0)
		return path_error(err, -dfd, *rel ? rel : "/");
	if (lseek(tar_fd, 0, SEEK_SET) < 0)
		return af_err_set(err, errno, "cannot read the upload: %s", strerror(errno));
	struct tarx_stats st = { 0 };
	int r = tarx_extract(tar_fd, dfd, "upload", &st, err);
	int r2 = meta_refresh(s, id, r < 0 ? NULL : err);
	if (r < 0)
		return r;
	if (r2 < 0)
		return r2;
	*entries = st.entries;
	return 0;
}

int store_touch(struct store *s, const char *id, struct af_err *err)
{
	return meta_refresh(s, id, err);
}
