/* import.h - copy a host directory into a new codebase, honouring its
 * .gitignore and .sandboxignore files (internal to the store). */
#ifndef AF_STORE_IMPORT_H
#define AF_STORE_IMPORT_H

#include <stdint.h>

#include "store/store.h"

struct import_result {
	uint64_t files, bytes;
	uint64_t ignored;       /* entries left out by an ignore pattern */
	struct cJSON *skipped;  /* array of {path, size, reason} */
};

/* Copy the tree of src_fd into dst_fd (an empty directory), leaving out
 * the directory store (the store itself, when the source holds it).
 * res->skipped must be an array the import appends to.  Returns 0, or
 * -errno with *err filled. */
struct stat;
int store_import(int src_fd, int dst_fd, const struct stat *store, const struct cb_create *req,
		 struct import_result *res, struct af_err *err);

#endif
