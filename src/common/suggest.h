/* suggest.h - "did you mean": the known name closest to a mistyped one,
 * for subcommands, options and presets (git's help.autocorrect idea,
 * without the running). */
#ifndef AF_SUGGEST_H
#define AF_SUGGEST_H

#include <stddef.h>

/* The name in names[0..n) closest to typed by edit distance (insert,
 * delete, substitute, swap two neighbours), if it is close enough to be
 * a likely typo: at most a third of typed's length, and at least 1.
 * NULL if none is, or if two are equally close.  Cannot fail. */
const char *suggest_name(const char *typed, const char *const *names, size_t n);

#endif
