/* test_units.c - the duration and size parsers, and "did you mean". */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>

#include "common/suggest.h"
#include "common/units.h"
#include "tap.h"

static void dur(const char *s, double want)
{
	double v = -1;
	int r = parse_duration(s, &v);
	TAP_OK(r == 0 && v == want, "duration '%s' is %g s (got %d, %g)", s, want, r, v);
}

static void dur_bad(const char *s, int err)
{
	double v = -1;
	TAP_OK(parse_duration(s, &v) == -err && v == -1, "duration '%s' is refused", s);
}

static void size(const char *s, uint64_t want)
{
	uint64_t v = 0;
	int r = parse_size(s, &v);
	TAP_OK(r == 0 && v == want, "size '%s' is %llu (got %d, %llu)", s,
	       (unsigned long long)want, r, (unsigned long long)v);
}

static void size_bad(const char *s, int err)
{
	uint64_t v = 7;
	TAP_OK(parse_size(s, &v) == -err && v == 7, "size '%s' is refused", s);
}

int main(void)
{
	dur("30", 30);
	dur("30s", 30);
	dur("1.5s", 1.5);
	dur("5m", 300);
	dur("1h", 3600);
	dur("2d", 172800);
	dur(".5", 0.5);
	dur("0", 0);
	dur_bad("", EINVAL);
	dur_bad("s", EINVAL);
	dur_bad(".", EINVAL);
	dur_bad("-1", EINVAL);
	dur_bad("+1", EINVAL);
	dur_bad("1e3", EINVAL);
	dur_bad("0x10", EINVAL);
	dur_bad("inf", EINVAL);
	dur_bad("nan", EINVAL);
	dur_bad("1.5.2", EINVAL);
	dur_bad("5 m", EINVAL);
	dur_bad("5ms", EINVAL);
	dur_bad("5M", EINVAL);
	dur_bad("99999999999d", ERANGE);

	size("512", 512);
	size("512b", 512);
	size("512B", 512);
	size("512k", 512 << 10);
	size("512m", 512ULL << 20);
	size("512M", 512ULL << 20);
	size("512MB", 512ULL << 20);
	size("512MiB", 512ULL << 20);
	size("1.5G", 3ULL << 29);
	size("1GiB", 1ULL << 30);
	size("1gib", 1ULL << 30);
	size("2T", 2ULL << 40);
	size("1P", 1ULL << 50);
	size("0.5k", 512);
	size("1.0009765625k", 1025);
	size("1.3", 1);
	size_bad("", EINVAL);
	size_bad("M", EINVAL);
	size_bad("1.5x", EINVAL);
	size_bad("2MBB", EINVAL);
	size_bad("2 GB", EINVAL);
	size_bad("-1m", EINVAL);
	size_bad("1e6", EINVAL);
	size_bad("0x100", EINVAL);
	size_bad("1iB", EINVAL);
	size_bad("8192P", ERANGE);
	size_bad("99999999999999999999", ERANGE);

	static const char *const cmds[] = { "run", "shell", "preset", "explain", "serve",
					    "codebase", "help", "version" };
	TAP_STREQ(suggest_name("rnu", cmds, 8), "run", "'rnu' suggests 'run'");
	TAP_STREQ(suggest_name("rn", cmds, 8), "run", "'rn' suggests 'run'");
	TAP_STREQ(suggest_name("srve", cmds, 8), "serve", "'srve' suggests 'serve'");
	TAP_STREQ(suggest_name("codbase", cmds, 8), "codebase", "'codbase' suggests 'codebase'");
	TAP_OK(suggest_name("zzzzzz", cmds, 8) == NULL, "nothing close: no suggestion");
	TAP_OK(suggest_name("run", cmds, 8) == NULL, "an exact name suggests nothing");
	TAP_OK(suggest_name("", cmds, 8) == NULL, "an empty name suggests nothing");
	static const char *const tie[] = { "ab", "ba" };
	TAP_OK(suggest_name("aa", tie, 2) == NULL, "two as close: no guess");
	return tap_done();
}
