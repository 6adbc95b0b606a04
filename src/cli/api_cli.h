/* api_cli.h - what the sandbox and session commands share on top of
 * client.h: one request that dies on failure with serve's message and
 * the documented exit code, printing helpers, ids, durations and the
 * exec stream. */
#ifndef AF_CLI_API_CLI_H
#define AF_CLI_API_CLI_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cli/client.h"
#include "common/util.h"

struct cJSON;
struct option;

/* Results a script branches on (as codebase's); everything else is 125.
 * An exec's own exit status is the command's, so there every failure of
 * agentfense is 125. */
enum { API_EXIT_NOT_FOUND = 1, API_EXIT_CONFLICT = 3 };

/* An error reply of serve: the HTTP status and its {"code","message"}. */
struct api_error {
	int status;
	char code[64];
	char message[1024];
};

/* The command a usage error points to ("sandbox", "session"). */
struct api_cli {
	const char *cmd;
	const char *socket; /* NULL: the default socket */
	bool exec;          /* every failure exits 125 (an exec's own status) */
};

/* A usage error: the message, "did you mean 'near'?" when near is not
 * NULL, a pointer to --help; exits 125. */
AF_NORETURN AF_PRINTF(3, 4) void api_usage_error(const struct api_cli *c, const char *near,
						 const char *fmt, ...);
/* api_usage_error() with a va_list, as verr() is to err(). */
AF_NORETURN void api_usage_verror(const struct api_cli *c, const char *near, const char *fmt,
				  va_list ap);

/* One request.  Returns 0 with *out (the reply's JSON; NULL when the body
 * went to req->out_fd), or the HTTP status of an error
 * reply with *e filled.  Dies when serve cannot be reached or answers
 * nonsense. */
int api_request(const struct api_cli *c, struct client_req *req, struct cJSON **out,
		struct api_error *e);
/* api_request() for a streamed reply, each line given to on_line. */
int api_request_lines(const struct api_cli *c, struct client_req *req, client_line_fn on_line,
		      void *arg, struct api_error *e);
/* Print serve's error as ours and exit with its exit code: 1 not found,
 * 3 conflict or not running, else 125 (always 125 for an exec). */
AF_NORETURN void api_fail(const struct api_cli *c, const struct api_error *e);
/* The exit code api_fail() would use. */
int api_exit_code(const struct api_cli *c, const struct api_error *e);
/* api_request() that dies on an error reply. */
struct cJSON *api_call(const struct api_cli *c, struct client_req *req);

/* A JSON request body (method, path, object), which is freed. */
struct cJSON *api_call_json(const struct api_cli *c, const char *method, const char *path,
			    struct cJSON *body);

/* body as unformatted JSON text, malloc'd; body is freed.  Dies when out
 * of memory, a NULL body included (the object could not be made). */
char *api_json_text(struct cJSON *body);

void api_print_json(const struct cJSON *j);
/* String field, "" when missing or not a string. */
const char *api_str(const struct cJSON *j, const char *k);
/* Number field, 0 when missing. */
double api_num(const struct cJSON *j, const char *k);
/* Print s with control characters shown as '?'. */
void api_put_safe(FILE *f, const char *s);
/* Print msg as our error line, safe. */
void api_put_error(const char *msg);
/* s, safe, then spaces to width w and two more. */
void api_put_pad(const char *s, size_t w);

/* A duration option (30, 1.5s, 5m) in seconds, > 0; dies with a usage
 * error naming opt. */
double api_duration(const struct api_cli *c, const char *opt, const char *arg);

/* Append one --env/-e value (K=V, or K taken from our environment when
 * set) or the lines of an --env-file to the JSON object env; dies with a
 * usage error on bad input. */
void api_env_add(const struct api_cli *c, struct cJSON *env, const char *spec);
void api_env_file(const struct api_cli *c, struct cJSON *env, const char *path);
/* Read the env file at path (docker's format: KEY=VALUE lines, KEY alone,
 * '#' comments and blank lines skipped, values as they are) and give each
 * variable's line to add.  Returns the malloc'd contents, which the lines
 * point into; dies with a usage error naming the file and line. */
char *api_env_file_lines(const char *path, void (*add)(char *line, void *arg), void *arg);

/* Decode standard base64 (padding optional) into a malloc'd buffer;
 * NULL if s is not base64. */
unsigned char *api_base64_decode(const char *s, size_t *len);
/* Encode; malloc'd, NUL-terminated. */
char *api_base64_encode(const unsigned char *p, size_t len);

/* The outcome of a streamed exec. */
struct api_exec_end {
	bool ended;       /* an exit or error event arrived */
	int exit_code;
	bool timed_out;
	int signal;
	struct api_error error; /* an error event (code set) */
};
/* The on_line callback of an exec/stream request: writes stdout and
 * stderr events to fds 1 and 2 as they come, records the end in
 * arg (a struct api_exec_end).  Returns 0 or -errno. */
int api_exec_line(char *line, size_t len, void *arg);

/* Exit status of an exec from its end, after printing why agentfense
 * failed (an error event, a stream cut short). */
int api_exec_status(const struct api_cli *c, const struct api_exec_end *end);

/* api_exec_status() of an exec, first taking its end from res when it
 * is not NULL: the ExecResult of --json, which is printed and freed. */
int api_exec_result(const struct api_cli *c, struct cJSON *res, struct api_exec_end *end);

/* Whether s is a full id of its kind: prefix ("sb_", "ss_") and 32
 * lowercase hex digits. */
bool api_is_id(const char *s, const char *prefix);
/* The full id of the sandbox arg names: a full id as it is, else the one
 * sandbox whose id starts with arg (sb_3f2a).  Dies with a usage error
 * on what cannot be a sandbox id (a session's or codebase's among them)
 * and with not found when none matches. */
char *api_sandbox_id(const struct api_cli *c, const char *arg);
/* Exit for "no sandbox ID" (serve's msg, or NULL): 1 (125 for an exec),
 * with the closest id as a hint, or where to look. */
AF_NORETURN void api_no_sandbox(const struct api_cli *c, const char *id, const char *msg);

/* The subcommands an option applies to, a bit each (1u << sub). */
struct api_applies {
	int opt;
	unsigned subs;
};
/* The command line of a command with subcommands (sandbox, session):
 * the options before the subcommand, then the subcommand's own; those of
 * exec_sub end at its first argument, as docker exec's do, so that the
 * command's options stay the command's.  api_getopt() takes --socket
 * (into c->socket), -e/--env and --env-file (into *env) itself. */
struct api_getopt {
	int argc;
	char **argv;
	const char *shorts; /* getopt's, starting with "+:" */
	const struct option *longopts;
	const struct api_applies *applies;
	const char **typed; /* napplies, zeroed: each option as typed */
	size_t napplies;
	const char *const *subs;
	size_t nsubs;
	int exec_sub;
	const char *missing; /* the usage error for no subcommand */
	struct cJSON **env;
	bool started; /* api_getopt()'s own */
	/* at the end: the subcommand and its arguments */
	int sub; /* -1 until the subcommand's name was read */
	const char *subname;
	int nargs;
	char **args;
};
/* The next option of g's command line, as getopt_long() returns it,
 * going on after the subcommand's name; dies with a usage error on a
 * missing value, an unknown option or subcommand.  Returns -1 at the
 * end, with g's subcommand and arguments set once every option typed
 * was checked to apply to it. */
int api_getopt(struct api_cli *c, struct api_getopt *g);
/* Dies with a usage error unless lo <= n <= hi for the arguments of
 * subcommand subname: what says which are expected. */
void api_nargs(const struct api_cli *c, const char *subname, int n, int lo, int hi,
	       const char *what);
/* The id of an exec: the first of the *n arguments at *a, then a "--"
 * that only ends the options, leaving the command.  Dies with a usage
 * error when there is no id (what: the arguments expected) or no command
 * (more: what the message adds, or ""). */
const char *api_exec_args(const struct api_cli *c, int *n, char ***a, const char *what,
			  const char *more);

/* Read all of fd (standard input for -i) into memory; dies on failure. */
char *api_read_all(int fd, size_t *len);

#endif
