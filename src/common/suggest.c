/* suggest.c - the closest known name to a mistyped one. */
#include <string.h>

#include "common/suggest.h"
#include "common/util.h"

/* Longer input is no typo of a name we know: skip the work. */
#define SUGGEST_MAX 64

/* Optimal string alignment distance between a and b (both at most
 * SUGGEST_MAX bytes). */
static size_t distance(const char *a, size_t la, const char *b, size_t lb)
{
	size_t d[SUGGEST_MAX + 1][SUGGEST_MAX + 1];

	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++)
		for (size_t j = 1; j <= lb; j++) {
			size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	return d[la][lb];
}

const char *suggest_name(const char *typed, const char *const *names, size_t n)
{
	size_t lt = strlen(typed);
	if (lt == 0 || lt > SUGGEST_MAX)
		return NULL;
	size_t limit = lt / 3 ? lt / 3 : 1;
	const char *best = NULL;
	size_t best_d = limit + 1;
	bool tie = false;

	for (size_t i = 0; i < n; i++) {
		size_t ln = strlen(names[i]);
		if (ln > SUGGEST_MAX || strcmp(names[i], typed) == 0)
			continue;
		size_t dd = distance(typed, lt, names[i], ln);
		if (dd < best_d) {
			best = names[i];
			best_d = dd;
			tie = false;
		} else if (dd == best_d && best && strcmp(best, names[i]) != 0) {
			tie = true;
		}
	}
	return tie ? NULL : best;
}
