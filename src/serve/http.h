/* http.h - HTTP/1.1 over the serve socket: accept, per-connection
 * parsing with http-parser, keep-alive, request bodies to memory or a
 * file, and the response writer (fixed bodies, files, chunked streams).
 *
 * Everything a client can make the server hold is capped: header bytes,
 * body bytes, unsent output, connections, idle time.  A client that
 * breaks a limit or the protocol gets one 4xx reply and is closed; no
 * other client notices.  Routes live elsewhere (api.c): this module
 * calls the handler's on_head when a request's headers are complete and
 * on_request when its body is, and the handler answers with exactly one
 * http_respond* (or a stream), at once or later (http_defer). */
#ifndef AF_SERVE_HTTP_H
#define AF_SERVE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "serve/loop.h"

struct cJSON;
struct http_conn;
struct http_server;

struct http_limits {
	size_t max_header;      /* request line + header bytes */
	size_t max_body;        /* a body held in memory (JSON) */
	uint64_t max_upload;    /* a body streamed to a file */
	size_t max_output;      /* unsent response bytes, streams included */
	unsigned max_conns;     /* clients at once; more get 503 */
	unsigned idle_ms;       /* a client silent this long is closed */
};

struct http_req {
	int method;             /* enum http_method of http_parser.h */
	char *path;             /* decoded-free raw path, without the query */
	char *query;            /* raw query string, "" if none */
	char content_type[128];
	bool expect_continue;
	/* body: in memory (body, body_len; NUL-terminated), or streamed to
	 * body_fd when on_head called http_body_to_fd */
	char *body;
	size_t body_len;
	int body_fd;
	uint64_t body_size;
	/* set by the handler in on_head, freed by cleanup after the reply */
	void *data;
	void (*cleanup)(struct http_req *r);
	/* set by a handler that answers later (http_defer) or streams: the
	 * client went away before the reply was complete, so whatever works
	 * for it (a command) should stop.  Called once, before cleanup; the
	 * connection is closed by then and takes no more replies. */
	void (*on_close)(struct http_req *r);
};

struct http_handler {
	/* Headers complete.  May answer at once (the body is then not read
	 * and the connection closes after the reply) or pick a body sink. */
	void (*on_head)(struct http_conn *c, struct http_req *r, void *arg);
	/* Body complete: answer. */
	void (*on_request)(struct http_conn *c, struct http_req *r, void *arg);
	/* Client count changed (for serve's idle exit). */
	void (*on_count)(unsigned nconns, void *count_arg);
	void *arg;
	void *count_arg;
};

/* Serve the listening socket lfd (non-blocking) in loop l, letting in
 * only peers whose uid is owner_uid.  Returns 0, or -errno. */
int http_server_new(struct http_server **out, struct ev_loop *l, int lfd, uid_t owner_uid,
		    const struct http_limits *lim, const struct http_handler *h);
/* Close every client.  NULL is fine. */
void http_server_free(struct http_server *s);
/* Serve one already-connected socket (tests, socketpair).  Returns 0,
 * or -errno. */
int http_server_adopt(struct http_server *s, int fd);

/* Stream the request body of up to limit bytes to fd (not owned; the
 * handler keeps it in r->data or similar).  Returns 0, or -errno. */
int http_body_to_fd(struct http_conn *c, int fd, uint64_t limit);

/* The handler answers later, from another event (a command's end): the
 * connection waits without reading further requests, its idle timeout
 * does not run meanwhile, and r->on_close tells the handler if the
 * client goes away first. */
void http_defer(struct http_conn *c);

/* The answers.  All of them queue output; none blocks.  On an
 * allocation failure the client is closed, the server lives on. */
void http_respond(struct http_conn *c, int status, const char *ctype, const void *body,
		  size_t len);
/* Like http_respond, for a body the handler has bounded itself (an
 * exec's result: its own caps), which may pass the output limit. */
void http_respond_large(struct http_conn *c, int status, const char *ctype, const void *body,
			size_t len);
/* Takes ownership of j. */
void http_respond_json(struct http_conn *c, int status, struct cJSON *j);
/* {"code": code, "message": ...} */
void http_respond_error(struct http_conn *c, int status, const char *code, const char *fmt,
			...) __attribute__((format(printf, 4, 5)));
/* size bytes of fd (owned from now on) from its offset. */
void http_respond_fd(struct http_conn *c, int status, const char *ctype, int fd, uint64_t size);

/* Chunked streaming: begin, any number of writes, end.  A write that
 * would put more than max_output bytes in the queue closes the client
 * (a reader too slow to keep up) and returns -ENOBUFS; the caller stops
 * producing.  Returns 0, or -errno. */
int http_stream_begin(struct http_conn *c, int status, const char *ctype);
int http_stream_write(struct http_conn *c, const void *data, size_t len);
int http_stream_end(struct http_conn *c);

/* Close the client now (a reply that cannot be completed). */
void http_close(struct http_conn *c);

/* The reason phrase of a status. */
const char *http_status_text(int status);

#endif
