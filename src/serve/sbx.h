/* sbx.h - serve's sandboxes: a registry of long-lived service
 * sandboxes over the store's codebases, each with its own rules, delta
 * and lifecycle, its record kept in the data directory
 * (sandboxes/sb_<32 hex>.json, written atomically) so a later serve
 * knows what an earlier one left.
 *
 * The registry lives on serve's one thread: lc_start() (some 10-20 ms)
 * is done inline; a stop and a destroy (the sync of the delta, which
 * may take seconds) run on a worker thread and end back on the loop
 * (sbx_op_* below).  Objects living on a
 * running sandbox (execs, sessions) register a struct sbx_watch and
 * are told before it stops or is destroyed.  Library code: errors come
 * back in a struct af_err; nothing prints or exits. */
#ifndef AF_SERVE_SBX_H
#define AF_SERVE_SBX_H

#include <stdbool.h>
#include <stddef.h>

#include "common/util.h"
#include "sandbox/sandbox.h"

struct cJSON;
struct ev_loop;
struct store;
struct sbx_table;
struct sbx;

/* Sandboxes one serve holds at most (resource_exhausted past it). */
#define SBX_MAX 1024
/* Stops and destroys that run at once; more wait in a queue (one per
 * sandbox at most, so it is bounded by SBX_MAX). */
#define SBX_OPS_MAX 4
/* How long serve's SIGTERM waits for them, seconds. */
#define SBX_OPS_GRACE 60

/* Open the registry: read the records left in the store's data
 * directory (a sandbox's root filesystem may hold neither it nor the
 * directory of socket_path, serve's socket); those an earlier serve left running or stopped (its
 * processes died with it) become status "error", their deltas kept.
 * Returns 0, or -errno with *err filled. */
int sbx_table_new(struct ev_loop *loop, struct store *st, const char *socket_path,
		  struct sbx_table **out, struct af_err *err);
/* Wait for the stops and destroys under way (at most SBX_OPS_GRACE
 * seconds), then stop every running sandbox and give its delta its
 * on_destroy fate (records kept, status stopped): serve's SIGTERM.
 * Cannot fail. */
void sbx_table_shutdown(struct sbx_table *t);
void sbx_table_free(struct sbx_table *t);
/* How many sandboxes run (serve never idles out while one does). */
unsigned sbx_table_running(const struct sbx_table *t);
/* Called with the number of running sandboxes whenever it changes. */
void sbx_table_on_count(struct sbx_table *t, void (*fn)(unsigned n, void *arg), void *arg);

struct sbx *sbx_get(struct sbx_table *t, const char *id);   /* NULL: no such sandbox */
const char *sbx_id(const struct sbx *s);
bool sbx_running(const struct sbx *s);

/* Start a process in the running sandbox: env ("K=V" strings, NULL
 * ended) is merged over the sandbox's own environment (PATH, HOME, ...
 * as run gives it) and may be NULL; sp->envp is ignored.  Returns 0 or
 * -errno with *err filled (-ESRCH: not running). */
int sbx_spawn(struct sbx *s, const struct sproc_spec *sp, char *const *env,
	      struct sandbox_proc **out, struct af_err *err);

/* Objects living on a running sandbox (execs, sessions) are told before
 * it stops or is destroyed, and must then end (free their procs)
 * synchronously; ending() may call sbx_watch_del(). */
struct sbx_watch {
	void (*ending)(struct sbx_watch *w);
	struct sbx_watch *prev, *next;
};
void sbx_watch_add(struct sbx *s, struct sbx_watch *w);
void sbx_watch_del(struct sbx *s, struct sbx_watch *w);

/* Create a sandbox from a request body of POST /v1/sandboxes
 * (agentfense-api(7)); started too if it asks.  Returns 0 with *out
 * (the Sandbox object), or -errno with *err filled: -EINVAL naming the
 * bad field, -ENOENT (no such codebase), -EMFILE past SBX_MAX. */
int sbx_create(struct sbx_table *t, const struct cJSON *req, struct cJSON **out,
	       struct af_err *err);
/* The Sandbox object of s.  Returns NULL only without memory. */
struct cJSON *sbx_json(const struct sbx *s);
/* Every sandbox, filtered by codebase, status and label ("k" or "k=v");
 * NULL filters nothing.  Returns 0 with an array, or -errno. */
int sbx_list(struct sbx_table *t, const char *codebase_id, const char *status,
	     const char *label, struct cJSON **out, struct af_err *err);
/* A stop or destroy that runs off the loop ended, on the loop: r is 0
 * with result (the Sandbox after a stop, the delta report after a
 * destroy; the callee's), or -errno with *err filled. */
typedef void (*sbx_done_fn)(void *arg, int r, struct cJSON *result, const struct af_err *err);
/* The operation under way on s: "stopping", "destroying", or NULL. */
const char *sbx_operation(const struct sbx *s);
/* The client of the operation on s left: it runs to its end all the
 * same, unanswered. */
void sbx_op_detach(struct sbx *s);

/* Start (resume on its delta).  Idempotent.  Returns 0, or -errno with
 * *err filled (-EBUSY: a sandbox in status error, or one being stopped
 * or destroyed). */
int sbx_start(struct sbx *s, struct af_err *err);
/* Stop (processes killed at once, delta kept).  Returns 0 when done (it
 * did not run), 1 when the rest runs off the loop and done(arg) will be
 * called, or -errno with *err filled (-EBUSY: being stopped or
 * destroyed). */
int sbx_stop(struct sbx *s, sbx_done_fn done, void *arg, struct af_err *err);
/* Destroy as sbx_destroy() does, the stop and the delta's fate off the
 * loop: returns 0 with *delta when done at once (nothing ran), 1 when
 * done(arg) will be called, or -EBUSY with *err filled (being stopped
 * or destroyed). */
int sbx_destroy_begin(struct sbx *s, sbx_done_fn done, void *arg, struct cJSON **delta,
		      struct af_err *err);
/* Stop it, give its delta its on_destroy fate (discard instead when
 * discard) and forget it, on the loop; not while an operation is under
 * way on it (sbx_operation()).  *delta: the delta report.  Returns 0, or -errno
 * with *err filled (the sandbox is forgotten all the same). */
int sbx_destroy(struct sbx_table *t, struct sbx *s, bool discard, struct cJSON **delta,
		struct af_err *err);
/* The sandboxes over a codebase, destroyed with their changes
 * discarded (codebase delete ?force=true).  Cannot fail. */
void sbx_destroy_codebase(struct sbx_table *t, const char *codebase_id);
/* Any sandbox over the codebase? */
bool sbx_codebase_in_use(struct sbx_table *t, const char *codebase_id);

#endif
