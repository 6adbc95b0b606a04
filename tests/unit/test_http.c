/* test_http.c - serve's HTTP layer over a socketpair: a chunked NDJSON
 * stream as a client parses it, a reader that never reads cut off at
 * the output cap instead of being buffered without bound, and a reply
 * given later (a long command): kept past the idle timeout, and the
 * handler told when its client leaves first. */
#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "serve/http.h"
#include "serve/loop.h"
#include "tap.h"
#include "common/util.h"

#define CAP (1u << 20)

static unsigned nconns;
static int flood_result;
static size_t flood_bytes;

static void on_head(struct http_conn *c AF_UNUSED, struct http_req *r AF_UNUSED, void *a AF_UNUSED)
{
}

static struct http_conn *deferred;
static int closed_calls, cleanup_calls;

static void deferred_closed(struct http_req *r AF_UNUSED)
{
	closed_calls++;
	deferred = NULL;
}

static void deferred_cleanup(struct http_req *r AF_UNUSED)
{
	cleanup_calls++;
}

static void answer_later(struct ev_loop *l AF_UNUSED, void *a AF_UNUSED)
{
	if (deferred)
		http_respond(deferred, 200, "text/plain", "late\n", 5);
	deferred = NULL;
}

static void on_request(struct http_conn *c, struct http_req *r, void *a AF_UNUSED)
{
	if (strcmp(r->path, "/defer") == 0) {
		http_defer(c);
		deferred = c;
		r->on_close = deferred_closed;
		r->cleanup = deferred_cleanup;
		return;
	}
	if (strcmp(r->path, "/stream") == 0) {
		http_stream_begin(c, 200, "application/x-ndjson");
		http_stream_write(c, "{\"a\":1}\n", 8);
		http_stream_write(c, "", 0); /* must not end the stream */
		http_stream_write(c, "{\"b\":2}\n", 8);
		http_stream_end(c);
		return;
	}
	static char chunk[65536];
	memset(chunk, 'x', sizeof(chunk));
	http_stream_begin(c, 200, "application/x-ndjson");
	for (int i = 0; i < 1000; i++) {
		flood_result = http_stream_write(c, chunk, sizeof(chunk));
		if (flood_result < 0)
			return; /* the connection is gone: stop producing */
		flood_bytes += sizeof(chunk);
	}
}

static void on_count(unsigned n, void *a AF_UNUSED)
{
	nconns = n;
}

static void stop(struct ev_loop *l, void *a AF_UNUSED)
{
	ev_loop_stop(l);
}

static void run_for(struct ev_loop *l, unsigned ms)
{
	ev_timer_add(l, ms, stop, NULL);
	ev_loop_run(l);
}

struct resp {
	char body[256];
	size_t len;
	bool chunked, done;
	int status;
};

static int r_body(http_parser *p, const char *at, size_t len)
{
	struct resp *r = p->data;
	if (r->len + len < sizeof(r->body)) {
		memcpy(r->body + r->len, at, len);
		r->len += len;
	}
	return 0;
}

static int r_headers(http_parser *p)
{
	struct resp *r = p->data;
	r->chunked = p->flags & F_CHUNKED;
	r->status = (int)p->status_code;
	return 0;
}

static int r_done(http_parser *p)
{
	((struct resp *)p->data)->done = true;
	return 0;
}

int main(void)
{
	struct ev_loop *l = ev_loop_new();
	struct http_limits lim = { 16384, 1 << 20, 1 << 20, CAP, 8, 5000 };
	struct http_handler h = { on_head, on_request, on_count, NULL, NULL };
	struct http_server *s;
	TAP_OK(l && http_server_new(&s, l, -1, getuid(), &lim, &h) == 0, "server without a listener");

	/* a chunked stream, read by a client that keeps up */
	int sv[2];
	socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
	TAP_OK(http_server_adopt(s, sv[0]) == 0, "adopt a connection");
	const char req[] = "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n";
	TAP_OK(write(sv[1], req, sizeof(req) - 1) == (ssize_t)sizeof(req) - 1, "send a request");
	run_for(l, 100);
	char buf[4096];
	ssize_t n = read(sv[1], buf, sizeof(buf));
	struct resp r = { 0 };
	http_parser p;
	http_parser_init(&p, HTTP_RESPONSE);
	p.data = &r;
	http_parser_settings st = { 0 };
	st.on_body = r_body;
	st.on_headers_complete = r_headers;
	st.on_message_complete = r_done;
	http_parser_execute(&p, &st, buf, n > 0 ? (size_t)n : 0);
	TAP_OK(r.done && r.status == 200 && r.chunked, "a complete chunked 200 reply");
	r.body[r.len] = '\0';
	TAP_STREQ(r.body, "{\"a\":1}\n{\"b\":2}\n", "the chunks, in order, an empty write skipped");
	TAP_OK(nconns == 1, "keep-alive: the connection stays after a stream");
	close(sv[1]);
	run_for(l, 50);
	TAP_OK(nconns == 0, "a client that hangs up is closed");

	/* a reader that never reads: cut at the cap */
	socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
	http_server_adopt(s, sv[0]);
	const char req2[] = "GET /flood HTTP/1.1\r\nHost: x\r\n\r\n";
	TAP_OK(write(sv[1], req2, sizeof(req2) - 1) == (ssize_t)sizeof(req2) - 1, "ask for a flood");
	run_for(l, 100);
	TAP_OK(flood_result == -ENOBUFS, "a write past the output cap fails with ENOBUFS (got %d)",
	       flood_result);
	TAP_OK(flood_bytes <= CAP + (4u << 20), "the producer stopped near the cap (%zu bytes)",
	       flood_bytes);
	TAP_OK(nconns == 0, "the slow reader was disconnected");
	size_t got = 0;
	while ((n = read(sv[1], buf, sizeof(buf))) > 0)
		got += (size_t)n;
	TAP_OK(n == 0 && got < flood_bytes + 4096, "it sees the reply cut and the end (%zu bytes)", got);
	close(sv[1]);

	http_server_free(s);

	/* a deferred reply outlives the idle timeout (100 ms here) */
	struct http_limits quick = lim;
	quick.idle_ms = 100;
	TAP_OK(http_server_new(&s, l, -1, getuid(), &quick, &h) == 0, "a server with a short idle time");
	socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
	http_server_adopt(s, sv[0]);
	const char req3[] = "GET /defer HTTP/1.1\r\nHost: x\r\n\r\n";
	TAP_OK(write(sv[1], req3, sizeof(req3) - 1) == (ssize_t)sizeof(req3) - 1, "ask for a late reply");
	run_for(l, 50);
	TAP_OK(deferred != NULL && nconns == 1, "the handler holds the request");
	ev_timer_add(l, 400, answer_later, NULL);
	run_for(l, 500);
	n = read(sv[1], buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	TAP_OK(n > 0 && strstr(buf, "200 OK") && strstr(buf, "\r\n\r\nlate\n"),
	       "the reply given 400 ms later arrives (%zd bytes)", n);
	TAP_OK(closed_calls == 0 && cleanup_calls == 1, "answered: cleanup ran, on_close did not");
	close(sv[1]);
	run_for(l, 50);

	/* the client leaves before the reply: the handler hears of it once */
	socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
	http_server_adopt(s, sv[0]);
	TAP_OK(write(sv[1], req3, sizeof(req3) - 1) == (ssize_t)sizeof(req3) - 1, "ask again");
	run_for(l, 50);
	close(sv[1]);
	run_for(l, 50);
	TAP_OK(closed_calls == 1 && cleanup_calls == 2 && !deferred && nconns == 0,
	       "a client gone before its reply: on_close once, then cleanup (%d, %d)", closed_calls,
	       cleanup_calls);
	http_server_free(s);
	ev_loop_free(l);
	return tap_done();
}
