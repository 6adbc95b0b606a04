/* delta_int.h - helpers shared by delta.c and sync.c only. */
#ifndef AF_DELTA_INT_H
#define AF_DELTA_INT_H

#include <sys/stat.h>

/* Sorted names of directory fd, NULL-terminated (fd is not consumed).
 * Returns 0 or -errno. */
int delta_list_dir(int fd, char ***out);
void delta_free_names(char **names);
int delta_cmp_names(const void *a, const void *b);

/* Give the owner rwx on directory NAME in fd if it lacks any of them.
 * Returns the previous permission bits, or -errno. */
int delta_make_writable(int fd, const char *name, const struct stat *st);

/* Remove NAME in fd recursively, never following symlinks, making
 * read-only directories writable.  Returns 0 or -errno. */
int delta_rm_rf_at(int fd, const char *name);

#endif
