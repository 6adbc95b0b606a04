/* image.h - an OCI image layout (oci-layout, index.json, blobs/sha256/)
 * unpacked into a cached root filesystem, without a container engine.
 *
 * index.json leads to the image manifest (through an image index, to the
 * linux manifest of the host's architecture); its layers are unpacked in
 * order, OCI whiteouts applied (tarx.h), into
 * $XDG_CACHE_HOME/agentfense/images/<manifest digest>: first into a
 * temporary directory beside it, renamed into place when complete, so a
 * directory there is always a whole image and is reused as it is.  Every
 * blob's size and sha256 digest is checked before it is used.  Gzip and
 * zstd layers are decompressed by the host's gzip and zstd programs.
 *
 * Errors in the image (missing or malformed files, digest mismatch, an
 * unsupported media type, a layer entry with '..') are usage errors
 * (a usage error); failures of this machine (cache not writable, decompressor
 * missing) exit 125.  No global state. */
#ifndef AF_IMAGE_H
#define AF_IMAGE_H

#include <stdbool.h>

#include "image/tarx.h"
#include "common/util.h"

struct image_info {
	char *root;     /* the unpacked root filesystem (cache directory) */
	char *digest;   /* the manifest's digest, "sha256:..." */
	char **env;     /* the config's Env, "KEY=VALUE", NULL-terminated */
	char *workdir;  /* the config's WorkingDir, or NULL */
	bool unpacked;  /* unpacked now (false: reused from the cache) */
	struct tarx_stats stats; /* what unpacking did (if unpacked) */
};

/* The cache directory for unpacked images: $XDG_CACHE_HOME/agentfense/
 * images, default ~/.cache/agentfense/images.  Returns a malloc'd path,
 * or NULL with *err filled. */
char *image_cache_dir(struct af_err *err);

/* Find, check and (unless cached) unpack the image in the OCI layout
 * directory layout.  Returns 0 with *out filled (free it with
 * image_info_free), or -errno with *err filled. */
int image_prepare(const char *layout, struct image_info *out, struct af_err *err);

void image_info_free(struct image_info *info);

/* The OCI name of the host's architecture ("amd64", "arm64", ...). */
const char *image_host_arch(void);

#endif
