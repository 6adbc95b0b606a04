/* api.h - the routes of serve's HTTP API (documented in
 * agentfense-api(7)): version and codebases here, sandboxes and
 * presets in api_sandbox.c.  Plugged into http.c as its handler; the
 * store and the sandbox registry do the work. */
#ifndef AF_SERVE_API_H
#define AF_SERVE_API_H

#include "serve/http.h"

struct store;

/* The protocol's feature list, as GET /v1/version gives it. */
extern const char *const api_features[];

/* The handler for http_server_new; arg is the struct serve_ctx. */
void api_on_head(struct http_conn *c, struct http_req *r, void *ctx);
void api_on_request(struct http_conn *c, struct http_req *r, void *ctx);

/* For the other route files (api_sandbox.c, ...): an error as its HTTP
 * status and {"code", "message"}; a query value decoded (malloc'd, NULL
 * if absent; *bad set on a malformed escape); a boolean query value
 * (-EINVAL if neither true nor false); a path segment decoded (NULL on
 * a bad escape); the body as a JSON object (NULL after replying). */
struct af_err;
struct cJSON;
void api_respond_err(struct http_conn *c, const struct af_err *e);
char *api_query_get(const char *q, const char *key, bool *bad);
int api_query_bool(const char *q, const char *key, bool *out, bool *bad);
char *api_pct_decode(const char *s, size_t len);
struct cJSON *api_json_body(struct http_conn *c, const struct http_req *r);

#endif
