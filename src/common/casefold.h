/* casefold.h - names on file systems that may resolve them without
 * regard to case.
 *
 * On vfat, exfat, SMB shares or ext4/f2fs/tmpfs directories with the
 * casefold attribute, "Secrets" opens "secrets": a rule decided on the
 * spelling the sandbox used would not be about the entry the host
 * resolves.  These helpers tell such directories apart (once per
 * directory), fold a name the way rules are then matched, and tell an
 * entry's real spelling from an alias of it. */
#ifndef AF_CASEFOLD_H
#define AF_CASEFOLD_H

#include <stdbool.h>

/* s with ASCII letters lowered, and the two non-ASCII characters that
 * Unicode casefolding turns into ASCII letters (KELVIN SIGN U+212A -> k,
 * LONG S U+017F -> s) replaced by them, malloc'd.  Cannot fail. */
char *casefold_dup(const char *s);

/* May names in directory fd (O_PATH is enough) resolve to an entry of
 * another spelling?  True for file system types known to fold case, for
 * ext4, f2fs, tmpfs and overlayfs directories with the casefold
 * attribute, and for any other type unless a probe of an entry shows
 * that this directory tells case apart; also true when the answer cannot
 * be found (fail closed), but for a directory of the former types that
 * the caller may not read, which has its parent's attribute as far as
 * anyone can tell.  Callers treat every directory below one that may fold
 * as folding too.  Cannot fail. */
bool casefold_dir_may_fold(int fd);

/* Does directory fd, which the caller may write, find an entry under a
 * spelling of another case?  A probe entry is made and removed.  Returns
 * 1, 0, or -errno. */
int casefold_dir_probe(int fd);

/* The names of one directory, kept while its times say it is unchanged,
 * for casefold_names_has(); any number of threads may share one. */
struct casefold_names;
struct casefold_names *casefold_names_new(void);
void casefold_names_free(struct casefold_names *c);
/* Has directory fd an entry spelled exactly name?  Answered from c while
 * the directory fd is (by inode, change and modification time) the one c
 * last read: one fstat instead of a directory read per name.  A file system that
 * keeps coarse directory times (vfat: two seconds) can thus answer from
 * a listing up to that much older than a change.  Returns 1, 0 or
 * -errno. */
int casefold_names_has(struct casefold_names *c, int fd, const char *name);

/* Has directory fd an entry whose name differs from name but folds
 * (casefold_dup) to the same?  Returns 1, 0, or -errno. */
int casefold_dir_has_clash(int fd, const char *name);

#endif
