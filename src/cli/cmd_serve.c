/* cmd_serve.c - agentfense serve [--socket PATH] [--idle-exit DURATION] ... */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/units.h"
#include "serve/server.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: agentfense serve [options]\n\n"
		   "Serve the agentfense API (codebases) over HTTP on a Unix socket that only\n"
		   "the invoking user may use.  See agentfense-serve(1) and agentfense-api(7).\n\n"
		   "options:\n"
		   "      --client-timeout DURATION close a client silent this long (default %us)\n"
		   "  -h, --help                    show this help\n"
		   "      --idle-exit DURATION      exit after this long without clients\n"
		   "      --max-connections N       clients at once (default %u)\n"
		   "      --max-upload SIZE         largest upload (default %llu bytes)\n"
		   "\n"
		   "Durations are 30, 30s, 5m, 1h; sizes 512M, 1.5G, 1GiB: see agentfense(1).\n"
		   "      --socket PATH             listen on PATH (default\n"
		   "                                $XDG_RUNTIME_DIR/agentfense/agentfense.sock)\n",
		SERVE_CLIENT_TIMEOUT, SERVE_MAX_CONNS, (unsigned long long)SERVE_MAX_UPLOAD);
}

/* A whole number in [1, max] or die with a usage error. */
static unsigned long long number(const char *opt, const char *arg, unsigned long long max)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(arg, &end, 10);
	if (errno || end == arg || *end || v < 1 || v > max || arg[0] == '-')
		die(AF_EXIT_USAGE, "invalid value '%s' for %s: expected a whole number from 1 to %llu",
		    arg, opt, max);
	return v;
}

/* A duration in whole seconds (rounded up) in [1, max], or die with a
 * usage error. */
static unsigned seconds(const char *opt, const char *arg, unsigned max)
{
	double t;
	if (parse_duration(arg, &t) < 0 || t <= 0 || t > max)
		die(AF_EXIT_USAGE, "invalid value '%s' for %s: expected a duration from 1s to %us, "
		    "such as 30, 30s, 5m or 1h", arg, opt, max);
	double whole = (double)(unsigned)t;
	return (unsigned)whole + (t > whole);
}

/* A size in [1, max] bytes, or die with a usage error. */
static uint64_t bytes(const char *opt, const char *arg, uint64_t max)
{
	uint64_t v;
	if (parse_size(arg, &v) < 0 || v < 1 || v > max)
		die(AF_EXIT_USAGE, "invalid value '%s' for %s: expected a size from 1 byte to "
		    "%" PRIu64 ", such as 512M or 1.5G", arg, opt, max);
	return v;
}

int cmd_serve(int argc, char **argv)
{
	enum { OPT_SOCKET = 256, OPT_IDLE, OPT_CONNS, OPT_CTIMEOUT, OPT_UPLOAD };
	static const struct option longopts[] = {
		{ "client-timeout", required_argument, NULL, OPT_CTIMEOUT },
		{ "help", no_argument, NULL, 'h' },
		{ "idle-exit", required_argument, NULL, OPT_IDLE },
		{ "max-connections", required_argument, NULL, OPT_CONNS },
		{ "max-upload", required_argument, NULL, OPT_UPLOAD },
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ NULL, 0, NULL, 0 },
	};
	struct serve_opts o = { 0 };
	int c;

	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return 0;
		case OPT_SOCKET:
			if (!*optarg)
				die(AF_EXIT_USAGE, "empty value for --socket");
			o.socket = optarg;
			break;
		case OPT_IDLE:
			o.idle_exit = seconds("--idle-exit", optarg, 86400 * 365);
			break;
		case OPT_CONNS:
			o.max_conns = (unsigned)number("--max-connections", optarg, 4096);
			break;
		case OPT_CTIMEOUT:
			o.client_timeout = seconds("--client-timeout", optarg, 86400);
			break;
		case OPT_UPLOAD:
			o.max_upload = bytes("--max-upload", optarg, 1ull << 50);
			break;
		case ':':
			die(AF_EXIT_USAGE, "option '%s' needs a value", argv[optind - 1]);
		default:
			error_msg("unknown option '%s'", argv[optind - 1]);
			hint_unknown_option(argv[optind - 1], longopts);
			hint_msg("run 'agentfense serve --help' for the options");
			return AF_EXIT_USAGE;
		}
	}
	if (optind < argc)
		die(AF_EXIT_USAGE, "unexpected argument '%s'", argv[optind]);
	struct af_err err = { 0 };
	if (serve_run(&o, &err) < 0)
		die_err(&err);
	return 0;
}
