/* api_sandbox.h - serve's routes for sandboxes (/v1/sandboxes...,
 * files through a sandbox's view) and presets (/v1/presets...), as
 * agentfense-api(7) documents them.  api.c hands every request to
 * these first. */
#ifndef AF_SERVE_API_SANDBOX_H
#define AF_SERVE_API_SANDBOX_H

#include <stdbool.h>

#include "serve/http.h"

struct serve_ctx;

/* At a request's head: true if the route is one of these (answered, or
 * a body sink chosen), false to leave it to api.c. */
bool api_sandbox_head(struct http_conn *c, struct http_req *r, struct serve_ctx *sc);
/* With its body: true if the request was claimed at its head (and is
 * now answered), false if it is not one of these. */
bool api_sandbox_request(struct http_conn *c, struct http_req *r, struct serve_ctx *sc);

#endif
