/* client.h - the CLI's side of serve: one HTTP request per connection
 * over the Unix socket, replies parsed with http-parser, and serve
 * started in the background when nobody answers. */
#ifndef AF_CLI_CLIENT_H
#define AF_CLI_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

struct cJSON;

/* Seconds an automatically started serve waits for clients before it
 * exits. */
#define CLIENT_AUTOSTART_IDLE 300

struct client_req {
	const char *method;
	const char *path;      /* with its query, already escaped */
	const char *body;      /* a body in memory, or */
	size_t body_len;
	int body_fd;           /* -1, or a body read from this fd: */
	int64_t body_size;     /* its length, or -1 to send it chunked */
	int out_fd;            /* -1, or where a 2xx reply's body goes */
};

struct client_reply {
	int status;
	char *body;            /* NUL-terminated; empty if sent to out_fd */
	size_t len;
};

/* Send req to the serve at sock (NULL: the default socket; started in
 * the background if nobody answers there) and read the reply.  Returns
 * 0 (any HTTP status), or -errno with *err filled when serve cannot be
 * reached or the reply is broken. */
int client_call(const char *sock, const struct client_req *req, struct client_reply *rep,
		struct af_err *err);
void client_reply_free(struct client_reply *rep);

/* A line of a streamed reply (ndjson), NUL-terminated in place of its
 * '\n'.  Returns 0, or -errno to stop reading. */
typedef int (*client_line_fn)(char *line, size_t len, void *arg);

/* client_call() for a 2xx reply read as newline-delimited records:
 * on_line is called for each as soon as it arrives (an error reply is
 * kept in rep as ever).  Returns as client_call(); -errno from on_line
 * ends the read with *err filled. */
int client_call_lines(const char *sock, const struct client_req *req, client_line_fn on_line,
		      void *arg, struct client_reply *rep, struct af_err *err);

/* Split data into lines for on_line, keeping a partial last line in
 * *buf and *len for the next call; final: data ends the stream, so a last
 * line without a newline counts too.  Returns 0, on_line's nonzero result, or
 * -E2BIG for a line over max bytes. */
int client_split_lines(char **buf, size_t *len, const char *data, size_t n, bool final,
		       size_t max, client_line_fn on_line, void *arg);

/* Percent-escape s for a URL path (keep_slash) or a query value;
 * malloc'd. */
char *client_escape(const char *s, bool keep_slash);

#endif
