/* session.h - serve's sessions: one long-lived shell in a running
 * sandbox, whose state (cwd, variables, functions, aliases, background
 * jobs) persists between execs.  How an exec's end and status are
 * framed so that nothing the command does can forge them is explained
 * in session.c and agentfense-api(7). */
#ifndef AF_SERVE_SESSION_H
#define AF_SERVE_SESSION_H

#include <stdbool.h>

#include "common/util.h"
#include "serve/exec.h"

struct cJSON;
struct http_conn;
struct sbx;

/* Sessions one serve keeps (closed ones are forgotten first past it). */
#define SESSION_MAX 1024
/* Ids of forgotten sessions (deleted, or closed and pushed out past
 * SESSION_MAX) a sandbox remembers, newest kept: an exec on one is
 * "closed", not "no such session", while the sandbox exists. */
#define SESSION_GONE_MAX 256
/* How long an interrupted command has to stop before its session is
 * killed. */
#define SESSION_GRACE_MS 2000

/* Start shell (NULL: /bin/sh) in sb and answer 201 with the Session on
 * conn once it runs (or an error if it cannot).  Returns 0 (the reply
 * is the session's now), or -errno with *err filled (nothing replied;
 * -EMFILE: too many sessions). */
int session_create(struct exe_table *t, struct sbx *sb, const char *shell, char **env,
		   const char *workdir, bool workdir_beneath, struct http_conn *conn,
		   struct xout **slot, struct af_err *err);
/* NULL: no such session. */
struct session *session_get(struct exe_table *t, const char *id);
/* Why session id was closed, if it is one a sandbox that still exists
 * remembers (SESSION_GONE_MAX); NULL otherwise. */
const char *session_gone_why(struct exe_table *t, const char *id);
/* The Session object; NULL only without memory. */
struct cJSON *session_json(const struct session *s);
/* The sessions of a sandbox, as an array.  NULL without memory. */
struct cJSON *session_list(struct exe_table *t, const char *sandbox_id);
/* Kill its shell and every job of it, and forget it.  Cannot fail. */
void session_delete(struct session *s);
/* Run rq->command in the session's shell and answer on conn.  On
 * success the session owns rq's contents and the reply.  Returns 0, or
 * -errno with *err filled: -EBUSY (an exec runs), -ESRCH (closed). */
int session_exec(struct session *s, struct exec_req *rq, struct http_conn *conn,
		 struct xout **slot, bool stream, struct af_err *err);

/* For exec.c's table. */
void session_reap(struct exe_table *t);
void sessions_end_all(struct exe_table *t);

#endif
