/* ctx.h - what serve's route handlers share: the loop, the codebase
 * store, the sandboxes and the running execs and sessions.  One per
 * serve, passed to the HTTP handler as its argument. */
#ifndef AF_SERVE_CTX_H
#define AF_SERVE_CTX_H

struct ev_loop;
struct store;
struct sbx_table;
struct exe_table;

struct serve_ctx {
	struct ev_loop *loop;
	struct store *store;
	struct sbx_table *sandboxes;  /* sbx.h */
	struct exe_table *execs;      /* running execs and sessions */
};

#endif
