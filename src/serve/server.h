/* server.h - agentfense serve: the socket, its directory and lock, the
 * event loop, signals and the idle exit, around http.c and api.c. */
#ifndef AF_SERVE_SERVER_H
#define AF_SERVE_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

struct serve_opts {
	const char *socket;      /* NULL: serve_default_socket() */
	const char *data_dir;    /* NULL: $XDG_DATA_HOME/agentfense */
	unsigned idle_exit;      /* seconds with no client; 0: never */
	unsigned max_conns;
	unsigned client_timeout; /* seconds */
	uint64_t max_upload;     /* bytes */
};

#define SERVE_MAX_CONNS 64
#define SERVE_CLIENT_TIMEOUT 60
#define SERVE_MAX_HEADER (16u << 10)
#define SERVE_MAX_BODY (1u << 20)
#define SERVE_MAX_UPLOAD (1ull << 30)
#define SERVE_MAX_OUTPUT (16u << 20)

/* The default socket, $XDG_RUNTIME_DIR/agentfense/agentfense.sock, or
 * /tmp/agentfense-UID/agentfense.sock when XDG_RUNTIME_DIR is unset; its
 * directory is created 0700 if create, and refused if another user owns
 * it or others may enter it.  Returns a malloc'd path, or NULL with
 * *err filled. */
char *serve_default_socket(bool create, struct af_err *err);

/* Check that the directory holding path is private to us (owner, no
 * group/other access).  Returns 0, or -errno with *err filled. */
int serve_check_dir(const char *dir, struct af_err *err);

/* Serve until SIGTERM/SIGINT or the idle exit.  Takes over the process's
 * handling of SIGTERM, SIGINT and SIGPIPE.  Returns 0, or -errno with
 * *err filled (another serve already listening: -EADDRINUSE). */
int serve_run(const struct serve_opts *o, struct af_err *err);

#endif
