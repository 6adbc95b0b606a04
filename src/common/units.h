/* units.h - the one parser of durations and the one parser of sizes
 * every option uses (--timeout, --memory, --disk-limit, serve's and
 * codebase's), so "5m" and "1.5G" mean the same everywhere.  The forms
 * are documented once, in agentfense(1), DURATIONS AND SIZES. */
#ifndef AF_UNITS_H
#define AF_UNITS_H

#include <stdint.h>

/* "30", "30s", "1.5s", "5m", "1h", "2d": a number (digits, at most one
 * '.'; no sign, exponent, hex, inf or nan) with an optional unit s, m, h
 * or d, the number alone meaning seconds (timeout(1), systemd).  Returns
 * 0 with *secs set, -EINVAL if s is not of that form, -ERANGE past 1e9
 * seconds. */
int parse_duration(const char *s, double *secs);

/* "512", "512k", "512m", "512M", "512MB", "1.5G", "1GiB", "2T": a number
 * (as for durations) with an optional unit K, M, G, T or P in either
 * case, optionally followed by "B" or "iB"; every unit is binary (K is
 * 1024), as docker's sizes are, and a plain number or "B" is bytes.
 * Fractions round down to a whole byte.  Returns 0 with *bytes set,
 * -EINVAL if s is not of that form, -ERANGE if it does not fit in
 * INT64_MAX bytes. */
int parse_size(const char *s, uint64_t *bytes);

#endif
