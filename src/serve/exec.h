/* exec.h - serve's exec and exec stream: one command started in a running
 * sandbox (sbx_spawn), its stdin fed and its stdout/stderr read through
 * non-blocking pipes in the event loop, the output either collected into
 * one ExecResult (capped per stream) or sent as ndjson events while it
 * comes.  The reply side (struct xout) is shared with sessions (session.h).
 * Everything is documented for clients in agentfense-api(7). */
#ifndef AF_SERVE_EXEC_H
#define AF_SERVE_EXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

#ifndef container_of
#define container_of(p, type, member) ((type *)(void *)((char *)(p) - offsetof(type, member)))
#endif

struct ev_loop;
struct http_conn;
struct sbx;
struct sbx_table;
struct session;
struct session_gone;
struct exec;

#define EXEC_MAX_OUTPUT (16u << 20)   /* per stream, when max_output is not given */
#define EXEC_MAX_OUTPUT_LIMIT (256u << 20)

/* Running execs and sessions of one serve. */
struct exe_table {
	struct ev_loop *loop;
	struct sbx_table *sandboxes;
	struct exec *execs;        /* running */
	struct session *sessions;  /* active and closed, newest first */
	unsigned nsessions;
	struct session_gone *gone; /* ids of forgotten sessions, per sandbox */
	struct exec *dead_execs;   /* freed once no caller can hold them */
	struct session *dead_sessions;
	int64_t reap_timer;
};

/* Returns 0, or -errno. */
int exe_table_new(struct exe_table **out, struct ev_loop *l, struct sbx_table *sandboxes);
/* Kill every exec and session (their clients get an error).  NULL is fine. */
void exe_table_free(struct exe_table *t);
/* Free what was ended, from the top of the loop (internal). */
void exe_table_reap_later(struct exe_table *t);

/* One exec request, parsed (api_exec.c); everything owned. */
struct exec_req {
	char **argv;           /* NULL-terminated; sessions: unused */
	char **env;            /* "K=V", NULL-terminated, or NULL */
	char *command;         /* as the result names it */
	char *workdir;         /* NULL: /workspace */
	bool workdir_beneath;
	bool has_stdin;
	char *stdin_data;
	size_t stdin_len;
	uint64_t timeout_ms;   /* 0: none */
	size_t max_output;     /* bytes per stream; 0: EXEC_MAX_OUTPUT, a stream unbounded */
};
void exec_req_clear(struct exec_req *rq);

/* How a command ended, for the result or the exit event. */
struct xend {
	int exit_code;
	int term_signal;
	bool timed_out;
};

/* The reply channel of one exec: the HTTP client, the output caps, the
 * collected output or the stream's state. */
struct xbuf {
	char *data;
	size_t len, cap;
	bool truncated;
};
struct xout {
	struct http_conn *conn;    /* NULL once replied or the client left */
	struct xout **slot;        /* the request's pointer to us, cleared with conn */
	void (*gone)(struct xout *o); /* the client left: stop the command */
	bool stream;
	size_t max_output;
	uint64_t t0_ns;
	struct xbuf buf[2];        /* collected stdout, stderr */
	uint64_t seen[2];          /* bytes read per stream */
	unsigned char carry[2][4]; /* stream: an unfinished UTF-8 sequence */
	size_t ncarry[2];
	const char *command;
};

/* Begin answering on conn: a stream's head now, a result later.
 * Returns 0, or -errno (the client was closed). */
int xout_begin(struct xout *o, struct http_conn *conn, struct xout **slot, bool stream);
/* Output of stream which (0 stdout, 1 stderr).  Returns 0, or -EPIPE
 * when the client is gone (o->gone has been called). */
int xout_data(struct xout *o, int which, const char *p, size_t n);
/* The command ended: the result, or the exit event and the stream's end. */
void xout_finish(struct xout *o, const struct xend *e);
/* It could not run or was cut short: an error reply, or an error event. */
void xout_error(struct xout *o, int status, const char *code, const char *fmt, ...)
	AF_PRINTF(4, 5);
/* Forget the client without replying (it left). */
void xout_detach(struct xout *o);
void xout_free(struct xout *o);

/* The client of xout left (the request's on_close). */
void xout_client_gone(struct xout *o);

/* Start rq->argv in sandbox sb and answer on conn when it ends (or
 * stream).  On success the exec owns rq's contents and the reply; slot
 * is the request's pointer that on_close hands to xout_client_gone.
 * Returns 0, or -errno with *err filled (nothing replied). */
int exec_start(struct exe_table *t, struct sbx *sb, struct exec_req *rq, struct http_conn *conn,
	       struct xout **slot, bool stream, struct af_err *err);

/* Text helpers (unit-tested): the length of the longest prefix of s that
 * does not end inside a UTF-8 sequence which could still be completed
 * by more bytes; whether s[0..n) is valid UTF-8. */
size_t utf8_complete_prefix(const unsigned char *s, size_t n);
bool utf8_valid(const unsigned char *s, size_t n);
/* Append s as a JSON string (quotes included) to b, bad UTF-8 bytes as
 * U+FFFD; sets *bad if there were any.  As base64 (quoted): b64.
 * Returns 0, or -ENOMEM. */
int xbuf_json_str(struct xbuf *b, const unsigned char *s, size_t n, bool *bad);
int xbuf_b64(struct xbuf *b, const unsigned char *s, size_t n);
int xbuf_add(struct xbuf *b, const void *p, size_t n);
int xbuf_printf(struct xbuf *b, const char *fmt, ...) AF_PRINTF(2, 3);

/* The routes of api_exec.c: exec, exec stream and sessions.  Each
 * returns true when the request is one of its own (then it has
 * answered, or will). */
struct http_req;
struct serve_ctx;
bool api_exec_head(struct http_conn *c, struct http_req *r, struct serve_ctx *ctx);
bool api_exec_request(struct http_conn *c, struct http_req *r, struct serve_ctx *ctx);

#endif
