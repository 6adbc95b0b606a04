/* tarx.h - unpack one image layer (a tar stream) into a directory,
 * safely, as an ordinary user.
 *
 * Reads ustar, pax ('x' path/linkpath/size) and GNU long names ('L',
 * 'K').  Every entry is placed from the root directory fd one component
 * at a time, never through a symbolic link; absolute names lose their
 * leading '/', a name with a '..' component is refused.  Owners are not
 * kept (everything belongs to the invoking user), set-id bits are
 * dropped, directories get u+rwx so later layers and cache removal can
 * work in them.  Device nodes cannot be created without privilege and
 * are skipped (counted).  No global state. */
#ifndef AF_TARX_H
#define AF_TARX_H

#include <stddef.h>

#include "common/util.h"

struct tarx_stats {
	unsigned long entries;  /* entries written */
	unsigned long devices;  /* device nodes skipped */
	unsigned long whiteouts; /* whiteouts applied */
};

/* OCI whiteouts, pass 1: read the layer on in_fd and, for each
 * '.wh.NAME' entry, delete NAME from root_fd (the layers below); for
 * each '.wh..wh..opq', empty the directory holding it.  Nothing else is
 * written.  what names the layer in messages.  Returns 0, or -errno with
 * *err filled (a usage error for a malformed layer). */
int tarx_whiteouts(int in_fd, int root_fd, const char *what, struct tarx_stats *st,
		   struct af_err *err);

/* Pass 2: extract every entry but the whiteouts into root_fd, replacing
 * what the layers below have at the same name (a directory over a
 * directory merges).  Returns 0, or -errno with *err filled. */
int tarx_extract(int in_fd, int root_fd, const char *what, struct tarx_stats *st,
		 struct af_err *err);

/* Remove name in dirfd and everything below it (making directories
 * writable first).  Returns 0 or -errno (ENOENT is not an error). */
int tarx_remove_tree(int dirfd, const char *name);

#endif
