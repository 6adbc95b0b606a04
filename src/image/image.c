/* image.c - OCI image layouts unpacked into a cache (see image.h). */
#include "image/image.h"

#include <cJSON.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/sha256.h"

#define MAX_JSON (4u << 20) /* index, manifest and config are small */
#define MAX_DEPTH 4         /* nested image indexes */
#define MAX_INDEXES 64      /* image indexes read in all (a list may name one
			     * index many times: 4 levels of 1000 would be
			     * 10^12 reads) */

#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"

extern char **environ;

/* A content descriptor: what a blob must be. */
struct desc {
	char hex[SHA256_HEX_LEN + 1];
	uint64_t size;
	char *media; /* may be NULL */
};

static void desc_clear(struct desc *d)
{
	free(d->media);
	memset(d, 0, sizeof(*d));
}

const char *image_host_arch(void)
{
#if defined(__x86_64__)
	return "amd64";
#elif defined(__aarch64__)
	return "arm64";
#elif defined(__i386__)
	return "386";
#elif defined(__arm__)
	return "arm";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return "ppc64le";
#elif defined(__s390x__)
	return "s390x";
#elif defined(__riscv) && __riscv_xlen == 64
	return "riscv64";
#else
	return "unknown";
#endif
}

char *image_cache_dir(struct af_err *err)
{
	return xdg_dir("XDG_CACHE_HOME", ".cache", "agentfense/images", "image cache directory",
		       err);
}

/* Read a descriptor object.  Returns 0, or -EINVAL with *err filled. */
static int parse_desc(const cJSON *o, const char *where, const char *layout, struct desc *d,
		      struct af_err *err)
{
	const cJSON *dg = cJSON_GetObjectItemCaseSensitive(o, "digest");
	const cJSON *sz = cJSON_GetObjectItemCaseSensitive(o, "size");
	const cJSON *mt = cJSON_GetObjectItemCaseSensitive(o, "mediaType");

	memset(d, 0, sizeof(*d));
	if (!cJSON_IsString(dg) || !cJSON_IsNumber(sz) || sz->valuedouble < 0 ||
	    sz->valuedouble > 9007199254740992.0)
		return af_err_usage(err, EINVAL, "invalid image '%s': %s: a descriptor needs a "
				    "digest and a size", layout, where);
	const char *s = dg->valuestring;
	bool ok = strncmp(s, "sha256:", 7) == 0 && strlen(s + 7) == SHA256_HEX_LEN;
	for (size_t i = 7; ok && s[i]; i++)
		ok = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f');
	if (!ok) {
		int r = af_err_usage(err, EINVAL, "invalid image '%s': %s: unsupported digest '%s'",
				     layout, where, s);
		af_err_hint(err, "only sha256 digests (64 lowercase hex digits) are supported");
		return r;
	}
	memcpy(d->hex, s + 7, SHA256_HEX_LEN + 1);
	d->size = (uint64_t)sz->valuedouble;
	d->media = cJSON_IsString(mt) ? xstrdup(mt->valuestring) : NULL;
	return 0;
}

/* Open a blob and check its size and digest.  Returns the fd, at
 * offset 0, or -errno with *err filled. */
static int open_blob(int layout_fd, const char *layout, const struct desc *d, const char *what,
		     struct af_err *err)
{
	char path[96], buf[65536], hex[SHA256_HEX_LEN + 1];
	struct sha256 c;
	struct stat st;
	ssize_t n;

	snprintf(path, sizeof(path), "blobs/sha256/%s", d->hex);
	/* O_NONBLOCK: a FIFO in the image's place would block the open
	 * until a writer came; the type check below refuses it */
	int fd = openat(layout_fd, path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return af_err_usage(err, errno, "invalid image '%s': cannot open %s '%s': %s",
				    layout, what, path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != d->size) {
		close(fd);
		return af_err_usage(err, EINVAL, "invalid image '%s': %s '%s' is not a regular "
				    "file of %llu bytes", layout, what, path,
				    (unsigned long long)d->size);
	}
	sha256_init(&c);
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			close(fd);
			return af_err_set(err, e, "cannot read '%s/%s': %s", layout, path,
					  strerror(e));
		}
		sha256_update(&c, buf, (size_t)n);
	}
	sha256_final_hex(&c, hex);
	if (strcmp(hex, d->hex) != 0) {
		close(fd);
		int r = af_err_usage(err, EINVAL, "invalid image '%s': %s '%s' does not match its "
				     "digest (sha256:%s)", layout, what, path, hex);
		af_err_hint(err, "the image is corrupt or was changed; fetch it again");
		return r;
	}
	if (lseek(fd, 0, SEEK_SET) < 0) {
		int e = errno;
		close(fd);
		return af_err_set(err, e, "cannot read '%s/%s': %s", layout, path, strerror(e));
	}
	return fd;
}

/* Parse a JSON file of fd (at most MAX_JSON bytes).  Returns the tree or
 * NULL with *err filled. */
static cJSON *read_json_fd(int fd, const char *layout, const char *what, struct af_err *err)
{
	autofree char *buf = xmalloc(MAX_JSON + 1);
	ssize_t n = read_full(fd, buf, MAX_JSON + 1);
	if (n < 0) {
		af_err_set(err, (int)-n, "cannot read %s of image '%s': %s", what, layout,
			   strerror((int)-n));
		return NULL;
	}
	if ((size_t)n > MAX_JSON) {
		af_err_usage(err, EFBIG, "invalid image '%s': %s is too large", layout, what);
		return NULL;
	}
	buf[n] = '\0';
	cJSON *j = cJSON_ParseWithLength(buf, (size_t)n);
	if (!j || !cJSON_IsObject(j)) {
		cJSON_Delete(j);
		af_err_usage(err, EINVAL, "invalid image '%s': %s is not a JSON object", layout,
			     what);
		return NULL;
	}
	return j;
}

static cJSON *read_json_blob(int layout_fd, const char *layout, const struct desc *d,
			     const char *what, struct af_err *err)
{
	int fd = open_blob(layout_fd, layout, d, what, err);
	if (fd < 0)
		return NULL;
	cJSON *j = read_json_fd(fd, layout, what, err);
	close(fd);
	return j;
}

static bool is_index_type(const char *mt)
{
	return mt && (strcmp(mt, MT_OCI_INDEX) == 0 || strcmp(mt, MT_DOCKER_LIST) == 0);
}

static bool is_manifest_type(const char *mt)
{
	return !mt || strcmp(mt, MT_OCI_MANIFEST) == 0 || strcmp(mt, MT_DOCKER_MANIFEST) == 0;
}

/* True if a descriptor's platform (if it has one) is linux on the host's
 * architecture. */
static bool platform_fits(const cJSON *o)
{
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "platform");
	if (!cJSON_IsObject(p))
		return true;
	const cJSON *os = cJSON_GetObjectItemCaseSensitive(p, "os");
	const cJSON *arch = cJSON_GetObjectItemCaseSensitive(p, "architecture");
	if (cJSON_IsString(os) && strcmp(os->valuestring, "linux") != 0)
		return false;
	if (cJSON_IsString(arch) && strcmp(arch->valuestring, image_host_arch()) != 0)
		return false;
	return true;
}

struct found {
	struct desc d;
	unsigned n;       /* how many manifests fit */
	unsigned indexes; /* image indexes read so far */
};

/* Collect the manifests of an index that fit this host, following
 * nested indexes.  Returns 0 or -errno with *err filled. */
static int find_manifests(int layout_fd, const char *layout, const cJSON *index, int depth,
			  struct found *f, struct af_err *err)
{
	const cJSON *ms = cJSON_GetObjectItemCaseSensitive(index, "manifests");
	const cJSON *m;
	int r;

	if (!cJSON_IsArray(ms))
		return af_err_usage(err, EINVAL, "invalid image '%s': %s has no 'manifests' list",
				    layout, depth ? "an image index" : "index.json");
	cJSON_ArrayForEach(m, ms)
	{
		struct desc d;
		if ((r = parse_desc(m, "index.json", layout, &d, err)) < 0)
			return r;
		if (!platform_fits(m)) {
			desc_clear(&d);
			continue;
		}
		if (is_index_type(d.media)) {
			if (depth >= MAX_DEPTH) {
				desc_clear(&d);
				return af_err_usage(err, ELOOP, "invalid image '%s': image indexes "
						    "nested too deeply", layout);
			}
			if (++f->indexes > MAX_INDEXES) {
				desc_clear(&d);
				return af_err_usage(err, E2BIG, "invalid image '%s': more than %d "
						    "image indexes", layout, MAX_INDEXES);
			}
			cJSON *sub = read_json_blob(layout_fd, layout, &d, "image index", err);
			desc_clear(&d);
			if (!sub)
				return -err->errnum;
			r = find_manifests(layout_fd, layout, sub, depth + 1, f, err);
			cJSON_Delete(sub);
			if (r < 0)
				return r;
		} else if (is_manifest_type(d.media)) {
			if (f->n++ == 0)
				f->d = d;
			else
				desc_clear(&d);
		} else {
			desc_clear(&d); /* attestations, signatures, ... */
		}
	}
	return 0;
}

/* The layer's decompressor, from its media type: "" for none, or NULL
 * for an unsupported type. */
static const char *decompressor(const char *mt)
{
	size_t n = mt ? strlen(mt) : 0;
	if (!mt)
		return "";
#define ENDS(s) (n >= sizeof(s) - 1 && strcmp(mt + n - (sizeof(s) - 1), s) == 0)
	if (strstr(mt, "layer") == NULL && strstr(mt, "rootfs") == NULL)
		return NULL;
	if (ENDS("+gzip") || ENDS(".gzip"))
		return "gzip";
	if (ENDS("+zstd") || ENDS(".zstd"))
		return "zstd";
	if (ENDS(".tar") || ENDS("tar"))
		return "";
#undef ENDS
	return NULL;
}

/* One pass over a layer: its tar stream (decompressed by prog if not
 * "") fed to fn.  Returns 0 or -errno with *err filled. */
typedef int (*layer_fn)(int in_fd, int root_fd, const char *what, struct tarx_stats *st,
			struct af_err *err);

static int layer_pass(int blob_fd, const char *prog, int root_fd, const char *what,
		      layer_fn fn, struct tarx_stats *st, struct af_err *err)
{
	if (lseek(blob_fd, 0, SEEK_SET) < 0)
		return af_err_set(err, errno, "cannot read layer %s: %s", what, strerror(errno));
	if (!*prog)
		return fn(blob_fd, root_fd, what, st, err);

	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return af_err_set(err, errno, "cannot create a pipe: %s", strerror(errno));
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, blob_fd, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	/* its complaints would break our one-line errors: we report its
	 * exit status instead */
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	char *argv[] = { (char *)prog, (char *)"-d", (char *)"-c", (char *)"-q", NULL };
	pid_t pid;
	int e = posix_spawnp(&pid, prog, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (e) {
		close(p[0]);
		int r = af_err_set(err, e, "cannot decompress layer %s: cannot run '%s': %s", what,
				   prog, strerror(e));
		if (e == ENOENT)
			af_err_hint(err, "install %s (Debian package '%s')", prog, prog);
		return r;
	}
	int r = fn(p[0], root_fd, what, st, err);
	if (r == 0) {
		/* drain what follows the archive's end, so the decompressor
		 * finishes and its status tells whether the data was whole */
		char buf[4096];
		while (read(p[0], buf, sizeof(buf)) > 0)
			;
	}
	close(p[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (r == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		r = af_err_usage(err, EINVAL, "cannot decompress layer %s: %s failed (%s %d)",
				 what, prog, WIFEXITED(status) ? "exit status" : "signal",
				 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	return r;
}

/* Unpack every layer of manifest into root_fd.  Returns 0 or -errno. */
static int unpack_layers(int layout_fd, const char *layout, const cJSON *manifest, int root_fd,
			 struct tarx_stats *st, struct af_err *err)
{
	const cJSON *layers = cJSON_GetObjectItemCaseSensitive(manifest, "layers");
	const cJSON *l;
	int i = 0, r = 0;

	if (!cJSON_IsArray(layers))
		return af_err_usage(err, EINVAL, "invalid image '%s': the manifest has no 'layers' "
				    "list", layout);
	cJSON_ArrayForEach(l, layers)
	{
		struct desc d;
		char what[96];
		i++;
		snprintf(what, sizeof(what), "%d", i);
		if ((r = parse_desc(l, "a layer", layout, &d, err)) < 0)
			return r;
		const char *prog = decompressor(d.media);
		if (!prog) {
			r = af_err_usage(err, EINVAL, "invalid image '%s': layer %d has the "
					 "unsupported media type '%s'", layout, i, d.media);
			desc_clear(&d);
			return r;
		}
		snprintf(what, sizeof(what), "%d (sha256:%.12s)", i, d.hex);
		int fd = open_blob(layout_fd, layout, &d, "layer", err);
		desc_clear(&d);
		if (fd < 0)
			return fd;
		/* whiteouts hide what the layers below have: apply them
		 * before this layer adds its own entries */
		r = layer_pass(fd, prog, root_fd, what, tarx_whiteouts, st, err);
		if (r == 0)
			r = layer_pass(fd, prog, root_fd, what, tarx_extract, st, err);
		close(fd);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The config's Env and WorkingDir.  Returns 0 or -errno. */
static int read_config(int layout_fd, const char *layout, const cJSON *manifest,
		       struct image_info *out, struct af_err *err)
{
	const cJSON *cd = cJSON_GetObjectItemCaseSensitive(manifest, "config");
	struct desc d;
	int r;

	if (!cJSON_IsObject(cd))
		return af_err_usage(err, EINVAL, "invalid image '%s': the manifest has no 'config'",
				    layout);
	if ((r = parse_desc(cd, "the config", layout, &d, err)) < 0)
		return r;
	cJSON *cfg = read_json_blob(layout_fd, layout, &d, "config", err);
	desc_clear(&d);
	if (!cfg)
		return -err->errnum;
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(cfg, "config");
	const cJSON *env = cJSON_GetObjectItemCaseSensitive(c, "Env");
	const cJSON *wd = cJSON_GetObjectItemCaseSensitive(c, "WorkingDir");
	size_t n = 0;
	const cJSON *e;
	out->env = xcalloc((size_t)cJSON_GetArraySize(env) + 1, sizeof(char *));
	cJSON_ArrayForEach(e, env)
		if (cJSON_IsString(e))
			out->env[n++] = xstrdup(e->valuestring);
	if (cJSON_IsString(wd) && *wd->valuestring)
		out->workdir = xstrdup(wd->valuestring);
	cJSON_Delete(cfg);
	return 0;
}

/* Unpack into a temporary directory beside final, then rename it into
 * place.  Returns 0 or -errno with *err filled. */
static int unpack_into_cache(int layout_fd, const char *layout, const cJSON *manifest,
			     const char *cache, const char *hex, struct image_info *out,
			     struct af_err *err)
{
	autofree char *tmp = xasprintf("%s/.unpack-%.12s-XXXXXX", cache, hex);
	autofree char *final = xasprintf("%s/%s", cache, hex);
	autoclose int cache_fd = open(cache, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cache_fd < 0)
		return af_err_set(err, errno, "cannot open the image cache '%s': %s", cache,
				  strerror(errno));
	if (!mkdtemp(tmp))
		return af_err_set(err, errno, "cannot create a directory in the image cache '%s': %s",
				  cache, strerror(errno));
	const char *tmpname = tmp + strlen(cache) + 1;
	int root_fd = open(tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int r = root_fd < 0 ? af_err_set(err, errno, "cannot open '%s': %s", tmp, strerror(errno))
			    : unpack_layers(layout_fd, layout, manifest, root_fd, &out->stats, err);
	if (root_fd >= 0) {
		/* the root of the tree, as an image root is */
		if (r == 0 && fchmod(root_fd, 0755) < 0)
			r = af_err_set(err, errno, "cannot change the mode of '%s': %s", tmp,
				       strerror(errno));
		close(root_fd);
	}
	if (r == 0 && rename(tmp, final) < 0) {
		if (errno == EEXIST || errno == ENOTEMPTY) {
			/* another run unpacked it first: use theirs */
			tarx_remove_tree(cache_fd, tmpname);
			return 0;
		}
		r = af_err_set(err, errno, "cannot move the unpacked image to '%s': %s", final,
			       strerror(errno));
	}
	if (r < 0) {
		tarx_remove_tree(cache_fd, tmpname);
		return r;
	}
	out->unpacked = true;
	return 0;
}

int image_prepare(const char *layout, struct image_info *out, struct af_err *err)
{
	struct found f = { 0 };
	autofree char *cache = NULL;
	struct stat st;
	int r;

	memset(out, 0, sizeof(*out));
	autoclose int layout_fd = open(layout, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (layout_fd < 0)
		return af_err_usage(err, errno, "cannot use '%s' as image: %s", layout,
				    strerror(errno));
	if (fstatat(layout_fd, "oci-layout", &st, 0) < 0) {
		r = af_err_usage(err, errno, "cannot use '%s' as image: no 'oci-layout' file: %s",
				 layout, strerror(errno));
		af_err_hint(err, "--image takes an OCI image layout directory (e.g. from "
				 "'skopeo copy docker://IMAGE oci:DIR'); an unpacked tree goes "
				 "to --rootfs");
		return r;
	}
	/* O_NONBLOCK, then a type check: a FIFO would block the open or
	 * the read for ever */
	autoclose int index_fd = openat(layout_fd, "index.json", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (index_fd < 0)
		return af_err_usage(err, errno, "invalid image '%s': cannot open 'index.json': %s",
				    layout, strerror(errno));
	if (fstat(index_fd, &st) < 0 || !S_ISREG(st.st_mode))
		return af_err_usage(err, EINVAL, "invalid image '%s': 'index.json' is not a "
				    "regular file", layout);
	cJSON *index = read_json_fd(index_fd, layout, "index.json", err);
	if (!index)
		return -err->errnum;
	r = find_manifests(layout_fd, layout, index, 0, &f, err);
	cJSON_Delete(index);
	if (r < 0) {
		desc_clear(&f.d);
		return r;
	}
	if (f.n != 1) {
		desc_clear(&f.d);
		r = af_err_usage(err, EINVAL, "invalid image '%s': %s linux/%s", layout,
				 f.n ? "more than one image for" : "no image for", image_host_arch());
		af_err_hint(err, "the layout must hold exactly one image for this machine");
		return r;
	}
	cJSON *manifest = read_json_blob(layout_fd, layout, &f.d, "manifest", err);
	if (!manifest) {
		desc_clear(&f.d);
		return -err->errnum;
	}
	out->digest = xasprintf("sha256:%s", f.d.hex);
	if ((r = read_config(layout_fd, layout, manifest, out, err)) < 0)
		goto out;

	cache = image_cache_dir(err);
	if (!cache) {
		r = -err->errnum;
		goto out;
	}
	if ((r = mkdir_p(cache)) < 0) {
		af_err_set(err, -r, "cannot create the image cache '%s': %s", cache, strerror(-r));
		af_err_hint(err, "set XDG_CACHE_HOME to a directory of your own");
		goto out;
	}
	out->root = xasprintf("%s/%s", cache, f.d.hex);
	if (stat(out->root, &st) == 0 && S_ISDIR(st.st_mode)) {
		r = 0; /* only whole images are ever renamed into place */
		goto out;
	}
	r = unpack_into_cache(layout_fd, layout, manifest, cache, f.d.hex, out, err);
out:
	cJSON_Delete(manifest);
	desc_clear(&f.d);
	if (r < 0)
		image_info_free(out);
	return r;
}

void image_info_free(struct image_info *info)
{
	free(info->root);
	free(info->digest);
	for (size_t i = 0; info->env && info->env[i]; i++)
		free(info->env[i]);
	free(info->env);
	free(info->workdir);
	memset(info, 0, sizeof(*info));
}
