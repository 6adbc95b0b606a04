/* api.h - the routes of serve's HTTP API (documented in
 * agentfense-api(7)): version and codebases.  Plugged into http.c as
 * its handler; the store does the work. */
#ifndef AF_SERVE_API_H
#define AF_SERVE_API_H

#include "serve/http.h"

struct store;

/* The protocol's feature list, as GET /v1/version gives it. */
extern const char *const api_features[];

/* The handler for http_server_new; arg is the store. */
void api_on_head(struct http_conn *c, struct http_req *r, void *store);
void api_on_request(struct http_conn *c, struct http_req *r, void *store);

#endif
