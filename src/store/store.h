/* store.h - codebases on disk: the source of truth behind serve.
 *
 * $XDG_DATA_HOME/agentfense/codebases/cb_<32 hex>/ holds meta.json
 * (written atomically: temp file, fsync, rename) and files/, the tree.
 * Every client path is taken relative to files/ and resolved one name
 * at a time from directory fds with O_NOFOLLOW: no '..', no absolute
 * path, never through a symbolic link.  Symbolic links in a codebase
 * are kept as links and never followed by the store.
 *
 * Library code: functions return 0 or -errno and fill a struct af_err;
 * nothing prints or exits.  Metadata and listings are cJSON objects
 * with the field names of the API (agentfense-api(7)). */
#ifndef AF_STORE_H
#define AF_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

struct cJSON;
struct store;

/* Default largest file an import copies. */
#define STORE_MAX_FILE_DEFAULT (50ull << 20)

/* Open (creating it 0700) the store at root, or at the default place if
 * root is NULL.  Returns 0, or -errno with *err filled. */
int store_open(struct store **out, const char *root, struct af_err *err);
void store_free(struct store *s);
const char *store_root(const struct store *s);

/* Who uses a codebase (sandboxes, later): delete refuses while fn says
 * true, unless forced. */
void store_set_in_use(struct store *s, bool (*fn)(const char *id, void *arg), void *arg);

struct cb_create {
	const char *name;         /* required */
	const char *owner_id;     /* may be NULL */
	const struct cJSON *labels; /* object of strings, or NULL */
	const char *source;       /* absolute host directory to import, or NULL */
	const char *const *ignore; /* extra gitignore patterns */
	size_t nignore;
	uint64_t max_file_size;   /* 0: STORE_MAX_FILE_DEFAULT */
};

/* Create a codebase, empty or imported from req->source (honouring
 * .gitignore and .sandboxignore).  *info: its metadata; *skipped: an
 * array of {path, size, reason} for what the import left out.  Returns
 * 0, or -errno with *err filled (nothing is left behind). */
int store_cb_create(struct store *s, const struct cb_create *req, struct cJSON **info,
		    struct cJSON **skipped, struct af_err *err);
/* Returns 0 with *info, or -errno (-ENOENT for an unknown id). */
int store_cb_get(struct store *s, const char *id, struct cJSON **info, struct af_err *err);
/* Every codebase, optionally only those of owner_id and/or having label
 * ("key" or "key=value").  Returns 0 with an array, or -errno. */
int store_cb_list(struct store *s, const char *owner_id, const char *label,
		  struct cJSON **list, struct af_err *err);
/* Returns 0, -ENOENT, -EBUSY (in use and not forced), or -errno. */
int store_cb_delete(struct store *s, const char *id, bool force, struct af_err *err);

/* Entries at path (a directory, or one file), recursively or not, as
 * an array of {name, path, size, mode, mtime, is_dir}.  Returns 0, or
 * -errno (-EINVAL for a bad path, -ELOOP through a symbolic link). */
int store_files_list(struct store *s, const char *id, const char *path, bool recursive,
		     struct cJSON **files, struct af_err *err);
/* Open the regular file at path for reading.  Returns 0 with *fd (the
 * caller's) and *size, or -errno (-EISDIR for a directory). */
int store_file_open(struct store *s, const char *id, const char *path, int *fd,
		    uint64_t *size, struct af_err *err);

/* Upload one file: begin gives an fd to write the data to (a temporary
 * file beside the target, missing directories created); commit puts it
 * in place atomically; abort removes it.  Begin returns 0, or -errno;
 * commit returns 0 with *info ({name, path, size, ...}), or -errno. */
struct store_upload;
int store_upload_begin(struct store *s, const char *id, const char *path, unsigned mode,
		       struct store_upload **up, int *fd, struct af_err *err);
int store_upload_commit(struct store_upload *up, struct cJSON **info, struct af_err *err);
void store_upload_abort(struct store_upload *up);

/* Recount the files and bytes of a codebase after an upload and write
 * its metadata.  Returns 0, or -errno. */
int store_touch(struct store *s, const char *id, struct af_err *err);

/* An unnamed temporary file in the store (for a tar upload).  Returns
 * an fd, or -errno. */
int store_tmpfile(struct store *s);
/* Unpack the tar stream on tar_fd into path of the codebase, with the
 * rules of tarx.h (no '..', no absolute names, never through a link).
 * Returns 0 with *entries, or -errno with *err filled. */
int store_tar_extract(struct store *s, const char *id, const char *path, int tar_fd,
		      unsigned long *entries, struct af_err *err);

/* Client path to the store's form ("a/b", "" for the root), malloc'd.
 * Returns 0, or -EINVAL with *err saying why, -ENOMEM. */
int store_clean_path(const char *path, char **out, struct af_err *err);

#endif
