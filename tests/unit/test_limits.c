/* test_limits.c - unit tests for the --memory, --cpus and --pids parsers
 * and the size formatting of reslimits.h. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "sandbox/reslimits.h"
#include "tap.h"

struct mcase {
	const char *in;
	uint64_t want; /* 0: must be refused */
};

static const struct mcase mcases[] = {
	{ "128M", 128ULL << 20 },
	{ "128m", 128ULL << 20 },
	{ "1G", 1ULL << 30 },
	{ "2g", 2ULL << 30 },
	{ "4096K", 4ULL << 20 },
	{ "1T", 1ULL << 40 },
	{ "4194304", 4ULL << 20 },
	{ "8388608", 8ULL << 20 },
	{ "4M", 4ULL << 20 },
	{ "3M", 0 },       /* below the minimum */
	{ "4194303", 0 },  /* one byte below */
	{ "0", 0 },
	{ "", 0 },
	{ "abc", 0 },
	{ "M", 0 },
	{ "-1G", 0 },
	{ "+1G", 0 },
	{ "1.5G", 3ULL << 29 },  /* common/units.h: fractions, */
	{ "1GB", 1ULL << 30 },   /* docker's suffixes, */
	{ "1GiB", 1ULL << 30 },
	{ "1 G", 0 },
	{ " 1G", 0 },
	{ "1P", 1ULL << 50 },    /* and P */
	{ "1Q", 0 },
	{ "0x100000", 0 },
	{ "8388608T", 0 },             /* 2^63: past the kernel's counters */
	{ "99999999999999999999", 0 }, /* past 64 bits */
};

struct ccase {
	const char *in;
	uint32_t want; /* quota per 100 ms; 0: must be refused */
};

static const struct ccase ccases[] = {
	{ "1", 100000 },
	{ "0.5", 50000 },
	{ ".5", 50000 },
	{ "2.", 200000 },
	{ "1.25", 125000 },
	{ "0.01", 1000 },
	{ "1024", 102400000 },
	{ "0", 0 },
	{ "0.001", 0 },
	{ "1025", 0 },
	{ "-1", 0 },
	{ "", 0 },
	{ ".", 0 },
	{ "1.2.3", 0 },
	{ "abc", 0 },
	{ "1e2", 0 },
	{ "inf", 0 },
	{ "nan", 0 },
	{ "0x1", 0 },
	{ " 1", 0 },
};

struct pcase {
	const char *in;
	uint32_t want; /* 0: must be refused */
};

static const struct pcase pcases[] = {
	{ "64", 64 },
	{ "2", 2 },
	{ "4194304", 4194304 },
	{ "0", 0 },
	{ "1", 0 },
	{ "4194305", 0 },
	{ "-64", 0 },
	{ "64k", 0 },
	{ "", 0 },
	{ "99999999999999999999999", 0 },
};

int main(void)
{
	struct af_err err;

	for (size_t i = 0; i < ARRAY_SIZE(mcases); i++) {
		uint64_t v = 0;
		memset(&err, 0, sizeof(err));
		int r = limits_parse_memory(mcases[i].in, &v, &err);
		if (mcases[i].want)
			TAP_OK(r == 0 && v == mcases[i].want, "--memory '%s' is %" PRIu64,
			       mcases[i].in, mcases[i].want);
		else
			TAP_OK(r == -EINVAL && err.exit_code == AF_EXIT_USAGE &&
				       strstr(err.msg, "--memory") && strchr(err.msg, '\'') &&
				       v == 0,
			       "--memory '%s' is a usage error (%s)", mcases[i].in, err.msg);
	}
	for (size_t i = 0; i < ARRAY_SIZE(ccases); i++) {
		uint32_t v = 0;
		memset(&err, 0, sizeof(err));
		int r = limits_parse_cpus(ccases[i].in, &v, &err);
		if (ccases[i].want)
			TAP_OK(r == 0 && v == ccases[i].want, "--cpus '%s' is %" PRIu32 " us per 100 ms",
			       ccases[i].in, ccases[i].want);
		else
			TAP_OK(r == -EINVAL && err.exit_code == AF_EXIT_USAGE &&
				       strstr(err.msg, "--cpus") && v == 0,
			       "--cpus '%s' is a usage error (%s)", ccases[i].in, err.msg);
	}
	for (size_t i = 0; i < ARRAY_SIZE(pcases); i++) {
		uint32_t v = 0;
		memset(&err, 0, sizeof(err));
		int r = limits_parse_pids(pcases[i].in, &v, &err);
		if (pcases[i].want)
			TAP_OK(r == 0 && v == pcases[i].want, "--pids '%s' is %" PRIu32, pcases[i].in,
			       pcases[i].want);
		else
			TAP_OK(r == -EINVAL && err.exit_code == AF_EXIT_USAGE &&
				       strstr(err.msg, "--pids") && v == 0,
			       "--pids '%s' is a usage error (%s)", pcases[i].in, err.msg);
	}

	char buf[64];
	limits_format_size(128ULL << 20, buf, sizeof(buf));
	TAP_STREQ(buf, "128 MiB", "128M formats as MiB");
	limits_format_size(1ULL << 30, buf, sizeof(buf));
	TAP_STREQ(buf, "1 GiB", "1G formats as GiB");
	limits_format_size(1536ULL << 20, buf, sizeof(buf));
	TAP_STREQ(buf, "1536 MiB", "1.5G formats as MiB");
	limits_format_size(5000000, buf, sizeof(buf));
	TAP_STREQ(buf, "5000000 bytes", "an uneven size formats as bytes");

	/* nothing asked: no object, nothing to apply */
	struct limits_spec none = { 0 };
	struct limits *l = (struct limits *)&none;
	TAP_OK(limits_new(&none, &l, &err) == 0 && l == NULL, "no limits: no object");
	TAP_OK(limits_apply_rlimits(NULL) == 0 && limits_backend(NULL, LIMITS_MEMORY) == LIMITS_NONE,
	       "a NULL object applies nothing");
	return tap_done();
}
