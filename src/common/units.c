/* units.c - durations and sizes as people type them. */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "common/units.h"

/* The number at the start of s: digits with at most one '.' and a digit
 * on at least one side of it.  *whole and *frac (numerator) over
 * *scale (a power of ten) hold it exactly for up to 18 digits on each
 * side.  Returns the length of the number, -EINVAL if there is none,
 * or -ERANGE if it is too long to hold. */
static int parse_number(const char *s, uint64_t *whole, uint64_t *frac, uint64_t *scale)
{
	const char *p = s;
	int wdigits = 0, fdigits = 0;

	*whole = 0;
	*frac = 0;
	*scale = 1;
	for (; *p >= '0' && *p <= '9'; p++, wdigits++) {
		if (*whole > (UINT64_MAX - 9) / 10)
			return -ERANGE;
		*whole = *whole * 10 + (uint64_t)(*p - '0');
	}
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, fdigits++) {
			/* digits past the 18th cannot change the result by a
			 * byte of anything we accept: drop them */
			if (fdigits >= 18)
				continue;
			*frac = *frac * 10 + (uint64_t)(*p - '0');
			*scale *= 10;
		}
		if (!wdigits && !fdigits)
			return -EINVAL;
	}
	return wdigits || fdigits ? (int)(p - s) : -EINVAL;
}

int parse_duration(const char *s, double *secs)
{
	uint64_t whole, frac, scale;
	int n = parse_number(s, &whole, &frac, &scale);
	if (n < 0)
		return n;
	double mult;
	const char *u = s + n;
	if (!*u || !strcmp(u, "s"))
		mult = 1;
	else if (!strcmp(u, "m"))
		mult = 60;
	else if (!strcmp(u, "h"))
		mult = 3600;
	else if (!strcmp(u, "d"))
		mult = 86400;
	else
		return -EINVAL;
	double v = ((double)whole + (double)frac / (double)scale) * mult;
	if (v > 1e9)
		return -ERANGE;
	*secs = v;
	return 0;
}

int parse_size(const char *s, uint64_t *bytes)
{
	static const char units[] = "kmgtp";
	uint64_t whole, frac, scale;
	int n = parse_number(s, &whole, &frac, &scale);
	if (n < 0)
		return n;
	const char *u = s + n;
	unsigned shift = 0;
	const char *hit = *u ? strchr(units, tolower((unsigned char)*u)) : NULL;
	if (hit) {
		shift = 10 * (unsigned)(hit - units + 1);
		u++;
		if (!strcmp(u, "iB") || !strcmp(u, "ib") || !strcmp(u, "IB") || !strcmp(u, "Ib"))
			u += 2;
	}
	if (!strcmp(u, "B") || !strcmp(u, "b"))
		u++;
	if (*u)
		return -EINVAL;
	if (whole > ((uint64_t)INT64_MAX >> shift))
		return -ERANGE;
	unsigned __int128 v = ((unsigned __int128)whole << shift) +
			      (((unsigned __int128)frac << shift) / scale);
	if (v > INT64_MAX)
		return -ERANGE;
	*bytes = (uint64_t)v;
	return 0;
}
