/* http.c - HTTP/1.1 connections of serve (see http.h).
 *
 * One struct http_conn per client.  Input is parsed as it arrives; when
 * a request is complete the parser is paused and no more input is read
 * until its reply has been written, so pipelined requests are answered
 * in order and one client cannot queue work without bound.  Output goes
 * through one buffer per client, refilled from a file for downloads. */
#include "serve/http.h"

#include <cJSON.h>
#include <errno.h>
#include <http_parser.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"

#define IN_CHUNK 16384
#define FILE_CHUNK 65536
#define SWEEP_MS 200

struct http_conn {
	struct http_server *srv;
	struct http_conn *prev, *next;
	int fd;
	http_parser p;
	char in[IN_CHUNK];
	size_t in_len, in_off;
	/* the request being read */
	size_t head_bytes;
	char hname[32];
	size_t hname_len;
	char hval[160];
	size_t hval_len;
	bool in_value;
	bool in_req;       /* bytes of a request seen, reply not finished */
	bool head_too_big;
	bool req_ready;    /* complete: to be dispatched */
	bool keep_alive;
	struct http_req req;
	size_t url_len;
	size_t body_cap;
	uint64_t sink_limit;
	/* the reply */
	bool responded;
	bool close_after;
	bool body_unread;  /* a reply now leaves the request's body unread */
	bool peer_eof;
	bool streaming;
	bool deferred;     /* the handler answers later (http_defer) */
	bool large;        /* this reply may pass the output cap */
	char *out;
	size_t out_len, out_off, out_cap;
	int src_fd;
	uint64_t src_left;
	uint64_t deadline;
	/* a client we will not serve: its request is read, then answered
	 * with this error (a reply before the request confuses clients) */
	int refuse_status;
	const char *refuse_code, *refuse_msg;
};

/* Clients being refused may exceed max_conns by this many; past that
 * they are closed without a word. */
#define REFUSING_MAX 16

struct http_server {
	struct ev_loop *loop;
	int lfd;
	uid_t owner;
	struct http_limits lim;
	struct http_handler h;
	struct http_conn *conns;
	/* closed, freed once no caller up the stack can still hold them */
	struct http_conn *dead;
	int64_t reap_timer;
	unsigned nconns;
	int64_t sweep_timer;
};

static void conn_close(struct http_conn *c);
static void conn_parse(struct http_conn *c);
static void conn_update_events(struct http_conn *c);

const char *http_status_text(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 507: return "Insufficient Storage";
	default: return "Unknown";
	}
}

/* --- output ---------------------------------------------------------------- */

/* Queue bytes; returns 0, or -ENOMEM/-ENOBUFS (over the output cap). */
static int out_add(struct http_conn *c, const void *data, size_t len)
{
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (!c->large && c->out_len - c->out_off + len > c->srv->lim.max_output + 4096)
		return -ENOBUFS;
	if (c->out_len + len > c->out_cap) {
		if (c->out_off) {
			memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
			c->out_len -= c->out_off;
			c->out_off = 0;
		}
		if (c->out_len + len > c->out_cap) {
			size_t n = c->out_cap ? c->out_cap : 4096;
			while (n < c->out_len + len)
				n *= 2;
			char *o = realloc(c->out, n);
			if (!o)
				return -ENOMEM;
			c->out = o;
			c->out_cap = n;
		}
	}
	memcpy(c->out + c->out_len, data, len);
	c->out_len += len;
	return 0;
}

static int out_printf(struct http_conn *c, const char *fmt, ...) AF_PRINTF(2, 3);
static int out_printf(struct http_conn *c, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -EOVERFLOW;
	return out_add(c, buf, (size_t)n);
}

static int put_head(struct http_conn *c, int status, const char *ctype, const char *length_hdr)
{
	return out_printf(c, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n%s\r\nConnection: %s\r\n\r\n",
			  status, http_status_text(status), ctype, length_hdr,
			  c->close_after || c->body_unread || !c->keep_alive ? "close" : "keep-alive");
}

/* Begin a reply; false if one was already given (a handler bug: the
 * first reply stands). */
static bool reply_begin(struct http_conn *c)
{
	if (c->responded)
		return false;
	c->responded = true;
	return true;
}

void http_respond(struct http_conn *c, int status, const char *ctype, const void *body,
		  size_t len)
{
	if (!reply_begin(c))
		return;
	if (len > c->srv->lim.max_output) {
		c->responded = false;
		http_respond_error(c, 500, "resource_exhausted",
				   "the reply (%zu bytes) is larger than the output limit (%zu bytes)",
				   len, c->srv->lim.max_output);
		return;
	}
	char lh[64];
	snprintf(lh, sizeof(lh), "Content-Length: %zu", len);
	if (put_head(c, status, ctype, lh) < 0 || out_add(c, body, len) < 0) {
		conn_close(c);
		return;
	}
	conn_update_events(c);
}

void http_respond_large(struct http_conn *c, int status, const char *ctype, const void *body,
			size_t len)
{
	if (!reply_begin(c))
		return;
	char lh[64];
	snprintf(lh, sizeof(lh), "Content-Length: %zu", len);
	c->large = true;
	int r = put_head(c, status, ctype, lh);
	if (r == 0)
		r = out_add(c, body, len);
	c->large = false;
	if (r < 0) {
		conn_close(c);
		return;
	}
	conn_update_events(c);
}

void http_defer(struct http_conn *c)
{
	c->deferred = true;
}

void http_respond_json(struct http_conn *c, int status, cJSON *j)
{
	char *s = j ? cJSON_PrintUnformatted(j) : NULL;
	cJSON_Delete(j);
	if (!s) {
		http_respond_error(c, 500, "internal", "out of memory");
		return;
	}
	size_t n = strlen(s);
	s[n] = '\n'; /* replaces the NUL: a reply ends with a newline for shells */
	http_respond(c, status, "application/json", s, n + 1);
	free(s);
}

/* The length of the valid UTF-8 sequence at s[0..n), or 0 if it is not
 * one (overlong, a surrogate, past U+10FFFF, cut short). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	if (s[0] < 0x80)
		return 1;
	size_t len = s[0] >= 0xc2 && s[0] <= 0xdf ? 2 : s[0] >= 0xe0 && s[0] <= 0xef ? 3
		   : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : 0;
	if (!len || len > n)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
	    (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
		return 0;
	return len;
}

/* in as valid UTF-8 in out (3 * strlen(in) + 1 bytes), each bad byte
 * U+FFFD: a message may quote what a client sent (a path, an id), and
 * the JSON that carries it must stay valid. */
static void utf8_clean(const char *in, char *out)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t n = strlen(in);
	while (n) {
		size_t k = utf8_seq(p, n);
		if (k) {
			memcpy(out, p, k);
			out += k;
		} else {
			memcpy(out, "\xef\xbf\xbd", 3);
			out += 3;
			k = 1;
		}
		p += k;
		n -= k;
	}
	*out = '\0';
}

void http_respond_error(struct http_conn *c, int status, const char *code, const char *fmt, ...)
{
	char raw[1024], msg[3 * sizeof(raw)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	utf8_clean(raw, msg);
	cJSON *j = cJSON_CreateObject();
	if (j && cJSON_AddStringToObject(j, "code", code) &&
	    cJSON_AddStringToObject(j, "message", msg)) {
		char *s = cJSON_PrintUnformatted(j);
		cJSON_Delete(j);
		if (s) {
			size_t n = strlen(s);
			s[n] = '\n';
			http_respond(c, status, "application/json", s, n + 1);
			free(s);
			return;
		}
	} else {
		cJSON_Delete(j);
	}
	/* no memory even for that: a fixed reply */
	static const char fixed[] = "{\"code\":\"internal\",\"message\":\"out of memory\"}\n";
	http_respond(c, 500, "application/json", fixed, sizeof(fixed) - 1);
}

void http_respond_fd(struct http_conn *c, int status, const char *ctype, int fd, uint64_t size)
{
	if (!reply_begin(c)) {
		close(fd);
		return;
	}
	char lh[64];
	snprintf(lh, sizeof(lh), "Content-Length: %llu", (unsigned long long)size);
	if (put_head(c, status, ctype, lh) < 0) {
		close(fd);
		conn_close(c);
		return;
	}
	c->src_fd = fd; /* owned by the connection now */
	c->src_left = size;
	conn_update_events(c);
}

int http_stream_begin(struct http_conn *c, int status, const char *ctype)
{
	if (!reply_begin(c))
		return -EALREADY;
	c->streaming = true;
	if (put_head(c, status, ctype, "Transfer-Encoding: chunked") < 0) {
		conn_close(c);
		return -ENOMEM;
	}
	conn_update_events(c);
	return 0;
}

int http_stream_write(struct http_conn *c, const void *data, size_t len)
{
	if (!c->streaming)
		return -EINVAL;
	if (len == 0)
		return 0; /* a zero-length chunk would end the stream */
	int r = out_printf(c, "%zx\r\n", len);
	if (r == 0)
		r = out_add(c, data, len);
	if (r == 0)
		r = out_add(c, "\r\n", 2);
	if (r < 0) {
		/* a reader too slow for what we produce: drop it rather than
		 * buffer without bound */
		conn_close(c);
		return r;
	}
	conn_update_events(c);
	return 0;
}

int http_stream_end(struct http_conn *c)
{
	if (!c->streaming)
		return -EINVAL;
	c->streaming = false;
	if (out_add(c, "0\r\n\r\n", 5) < 0) {
		conn_close(c);
		return -ENOBUFS;
	}
	conn_update_events(c);
	return 0;
}

/* --- connection life ----------------------------------------------------- */

static void req_clear(struct http_conn *c)
{
	struct http_req *r = &c->req;
	if (r->cleanup)
		r->cleanup(r);
	free(r->path);
	free(r->body);
	memset(r, 0, sizeof(*r));
	r->body_fd = -1;
	c->url_len = 0;
	c->head_bytes = 0;
	c->hname_len = c->hval_len = 0;
	c->in_value = false;
	c->in_req = false;
	c->head_too_big = false;
	c->req_ready = false;
	c->responded = false;
	c->streaming = false;
	c->deferred = false;
	c->body_cap = 0;
	c->sink_limit = 0;
}

static void reap(struct ev_loop *l AF_UNUSED, void *arg)
{
	struct http_server *s = arg;
	s->reap_timer = 0;
	while (s->dead) {
		struct http_conn *c = s->dead;
		s->dead = c->next;
		free(c->out);
		free(c);
	}
}

/* A request dispatched whose reply the handler has not finished giving
 * (it answers later, or streams). */
static bool request_busy(const struct http_conn *c)
{
	return (c->deferred && !c->responded) || c->streaming;
}

/* Close the client.  Its memory stays valid (fd -1) until the loop is
 * back at the top: a handler may close the connection it was given. */
static void conn_close(struct http_conn *c)
{
	struct http_server *s = c->srv;
	if (c->fd < 0)
		return;
	ev_fd_del(s->loop, c->fd);
	close(c->fd);
	c->fd = -1;
	/* the handler still works for this request: tell it to stop */
	if (request_busy(c) && c->req.on_close) {
		void (*fn)(struct http_req *) = c->req.on_close;
		c->req.on_close = NULL;
		fn(&c->req);
	}
	req_clear(c);
	if (c->src_fd >= 0)
		close(c->src_fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = c->out_cap = 0;
	c->src_fd = -1;
	c->next = s->dead;
	s->dead = c;
	if (!s->reap_timer)
		s->reap_timer = ev_timer_add(s->loop, 0, reap, s);
	s->nconns--;
	if (s->h.on_count)
		s->h.on_count(s->nconns, s->h.count_arg);
}

void http_close(struct http_conn *c)
{
	conn_close(c);
}

static bool reply_pending(const struct http_conn *c)
{
	return c->out_off < c->out_len || c->src_fd >= 0 || c->streaming;
}

static void conn_update_events(struct http_conn *c)
{
	uint32_t ev = 0;
	if (reply_pending(c))
		ev |= EPOLLOUT;
	/* read only while no request waits for its reply */
	if (!c->req_ready && !c->responded && !c->peer_eof && !c->close_after)
		ev |= EPOLLIN | EPOLLRDHUP;
	ev_fd_mod(c->srv->loop, c->fd, ev);
}

/* Write what is queued.  Returns false if the connection was closed. */
static bool conn_flush(struct http_conn *c)
{
	for (;;) {
		if (c->out_off == c->out_len && c->src_fd >= 0) {
			if (c->src_left == 0) {
				close(c->src_fd);
				c->src_fd = -1;
				break;
			}
			char buf[FILE_CHUNK];
			size_t want = c->src_left < sizeof(buf) ? (size_t)c->src_left : sizeof(buf);
			ssize_t n = read(c->src_fd, buf, want);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				/* the file shrank or failed under us: the length
				 * promised cannot be kept, so the client must see
				 * the reply cut */
				conn_close(c);
				return false;
			}
			c->src_left -= (uint64_t)n;
			if (out_add(c, buf, (size_t)n) < 0) {
				conn_close(c);
				return false;
			}
		}
		if (c->out_off == c->out_len)
			break;
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return true;
			conn_close(c);
			return false;
		}
		c->out_off += (size_t)n;
		c->deadline = ev_now_ms() + c->srv->lim.idle_ms;
	}
	if (c->streaming || !c->responded)
		return true;
	/* the reply is out */
	bool again = c->keep_alive && !c->close_after;
	req_clear(c);
	if (!again) {
		conn_close(c);
		return false;
	}
	http_parser_pause(&c->p, 0);
	return true;
}

static void dispatch(struct http_conn *c)
{
	struct http_server *s = c->srv;
	c->req.body_size = c->req.body_fd >= 0 ? c->req.body_size : c->req.body_len;
	s->h.on_request(c, &c->req, s->h.arg);
	if (c->fd >= 0 && !c->responded && !c->deferred)
		http_respond_error(c, 500, "internal", "no reply for this request");
}

/* Reply with an error from the connection layer and close after it. */
static void proto_error(struct http_conn *c, int status, const char *code, const char *msg)
{
	c->close_after = true;
	c->keep_alive = false;
	if (!c->responded)
		http_respond_error(c, status, code, "%s", msg);
}

/* --- parser callbacks ------------------------------------------------------ */

static struct http_conn *conn_of(http_parser *p)
{
	return p->data;
}

static bool head_add(struct http_conn *c, size_t n)
{
	c->head_bytes += n;
	if (c->head_bytes > c->srv->lim.max_header) {
		c->head_too_big = true;
		return false;
	}
	return true;
}

static int on_message_begin(http_parser *p)
{
	struct http_conn *c = conn_of(p);
	c->in_req = true;
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = conn_of(p);
	if (!head_add(c, len))
		return -1;
	char *u = realloc(c->req.path, c->url_len + len + 1);
	if (!u)
		return -1;
	memcpy(u + c->url_len, at, len);
	c->url_len += len;
	u[c->url_len] = '\0';
	c->req.path = u;
	return 0;
}

/* A header is complete: keep the few this server reads. */
static void header_done(struct http_conn *c)
{
	if (!c->hname_len)
		return;
	c->hname[c->hname_len < sizeof(c->hname) ? c->hname_len : sizeof(c->hname) - 1] = '\0';
	c->hval[c->hval_len < sizeof(c->hval) ? c->hval_len : sizeof(c->hval) - 1] = '\0';
	if (strcasecmp(c->hname, "content-type") == 0)
		snprintf(c->req.content_type, sizeof(c->req.content_type), "%.127s", c->hval);
	else if (strcasecmp(c->hname, "expect") == 0 && strcasecmp(c->hval, "100-continue") == 0)
		c->req.expect_continue = true;
	c->hname_len = c->hval_len = 0;
}

static void append_bounded(char *buf, size_t cap, size_t *len, const char *at, size_t n)
{
	size_t room = *len < cap - 1 ? cap - 1 - *len : 0;
	memcpy(buf + *len, at, n < room ? n : room);
	*len += n < room ? n : room;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = conn_of(p);
	if (!head_add(c, len))
		return -1;
	if (c->in_value) {
		header_done(c);
		c->in_value = false;
	}
	append_bounded(c->hname, sizeof(c->hname), &c->hname_len, at, len);
	return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = conn_of(p);
	if (!head_add(c, len))
		return -1;
	c->in_value = true;
	append_bounded(c->hval, sizeof(c->hval), &c->hval_len, at, len);
	return 0;
}

static int on_headers_complete(http_parser *p)
{
	struct http_conn *c = conn_of(p);
	struct http_server *s = c->srv;
	header_done(c);
	c->req.method = p->method;
	if (!c->req.path) {
		c->req.path = strdup("");
		if (!c->req.path)
			return -1;
	}
	char *q = strchr(c->req.path, '?');
	if (q)
		*q++ = '\0';
	c->req.query = q ? q : c->req.path + strlen(c->req.path);
	c->keep_alive = http_should_keep_alive(p);
	c->body_cap = s->lim.max_body;
	/* answered from the headers alone, a body is not wanted, so a
	 * request that has one ends the connection: the reply must say so,
	 * or the client sends its next request into a closed socket */
	c->body_unread = (p->flags & F_CHUNKED) ||
			 (p->content_length != 0 && p->content_length != ULLONG_MAX);
	if (c->refuse_status) {
		c->keep_alive = false;
		http_respond_error(c, c->refuse_status, c->refuse_code, "%s", c->refuse_msg);
	} else {
		s->h.on_head(c, &c->req, s->h.arg);
	}
	bool unread = c->body_unread;
	c->body_unread = false;
	if (c->responded) {
		if (unread) {
			c->close_after = true;
			http_parser_pause(p, 1);
		}
		return 0;
	}
	uint64_t cap = c->req.body_fd >= 0 ? c->sink_limit : c->body_cap;
	if (p->content_length != ULLONG_MAX && p->content_length > cap) {
		proto_error(c, 413, "resource_exhausted", "request body too large");
		http_parser_pause(p, 1);
		return 0;
	}
	if (c->req.expect_continue) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		if (out_add(c, cont, sizeof(cont) - 1) < 0)
			return -1;
		conn_update_events(c);
	}
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = conn_of(p);
	struct http_req *r = &c->req;
	if (r->body_fd >= 0) {
		if (r->body_size + len > c->sink_limit) {
			proto_error(c, 413, "resource_exhausted", "upload too large");
			http_parser_pause(p, 1);
			return 0;
		}
		int e = write_all(r->body_fd, at, len);
		if (e < 0) {
			proto_error(c, e == -ENOSPC || e == -EDQUOT ? 507 : 500,
				    e == -ENOSPC || e == -EDQUOT ? "resource_exhausted" : "internal",
				    "cannot store the upload");
			http_parser_pause(p, 1);
			return 0;
		}
		r->body_size += len;
		return 0;
	}
	if (r->body_len + len > c->body_cap) {
		proto_error(c, 413, "resource_exhausted", "request body too large");
		http_parser_pause(p, 1);
		return 0;
	}
	char *b = realloc(r->body, r->body_len + len + 1);
	if (!b)
		return -1;
	memcpy(b + r->body_len, at, len);
	r->body_len += len;
	b[r->body_len] = '\0';
	r->body = b;
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct http_conn *c = conn_of(p);
	c->keep_alive = http_should_keep_alive(p);
	c->req_ready = true;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

int http_body_to_fd(struct http_conn *c, int fd, uint64_t limit)
{
	c->req.body_fd = fd;
	c->sink_limit = limit < c->srv->lim.max_upload ? limit : c->srv->lim.max_upload;
	return 0;
}

/* Parse what is buffered, dispatch a complete request, flush. */
static void conn_parse(struct http_conn *c)
{
	while (c->fd >= 0 && c->in_off < c->in_len && !c->req_ready && !c->responded) {
		size_t n = http_parser_execute(&c->p, &settings, c->in + c->in_off,
					       c->in_len - c->in_off);
		c->in_off += n;
		enum http_errno e = HTTP_PARSER_ERRNO(&c->p);
		if (e == HPE_PAUSED)
			break;
		if (e != HPE_OK) {
			if (c->head_too_big)
				proto_error(c, 431, "resource_exhausted",
					    "request header too large");
			else if (e >= HPE_CB_message_begin && e <= HPE_CB_chunk_complete)
				proto_error(c, 500, "internal", "out of memory");
			else
				proto_error(c, 400, "invalid_argument",
					    http_errno_description(e));
			break;
		}
		if (c->p.upgrade) {
			proto_error(c, 400, "invalid_argument", "protocol upgrade is not supported");
			break;
		}
	}
	if (c->fd < 0)
		return;
	if (c->req_ready && !c->responded)
		dispatch(c);
	if (c->fd < 0)
		return;
	if (c->in_off == c->in_len)
		c->in_off = c->in_len = 0;
	if (reply_pending(c) || c->responded) {
		if (!conn_flush(c))
			return;
		/* a reply fully written resumes the parser: maybe another
		 * request is already buffered (pipelining) */
		if (!c->responded && !c->req_ready && c->in_off < c->in_len) {
			conn_parse(c);
			return;
		}
	}
	if (!c->responded && !c->in_req && c->peer_eof) {
		conn_close(c);
		return;
	}
	if (!c->responded && c->in_req && c->peer_eof) {
		proto_error(c, 400, "invalid_argument", "incomplete request");
		if (!conn_flush(c))
			return;
	}
	conn_update_events(c);
}

static void conn_read(struct http_conn *c)
{
	if (c->in_len == sizeof(c->in))
		return; /* parse first */
	ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		conn_close(c);
		return;
	}
	if (n == 0) {
		c->peer_eof = true;
		return;
	}
	c->in_len += (size_t)n;
	c->deadline = ev_now_ms() + c->srv->lim.idle_ms;
}

static void conn_event(struct ev_loop *l AF_UNUSED, int fd AF_UNUSED, uint32_t events, void *arg)
{
	struct http_conn *c = arg;
	if (events & EPOLLOUT) {
		if (!conn_flush(c))
			return;
	}
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
		bool reading = !c->req_ready && !c->responded && !c->close_after;
		if (reading)
			conn_read(c);
		else if (events & (EPOLLHUP | EPOLLERR)) {
			/* gone while its reply was pending: nothing to finish */
			conn_close(c);
			return;
		}
		if (c->fd < 0)
			return;
	}
	conn_parse(c);
}

/* --- accepting ----------------------------------------------------------- */

static int adopt(struct http_server *s, int fd, int status, const char *code, const char *msg)
{
	struct http_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->srv = s;
	c->fd = fd;
	c->src_fd = -1;
	c->req.body_fd = -1;
	http_parser_init(&c->p, HTTP_REQUEST);
	c->p.data = c;
	c->deadline = ev_now_ms() + s->lim.idle_ms;
	c->refuse_status = status;
	c->refuse_code = code;
	c->refuse_msg = msg;
	int r = ev_fd_add(s->loop, fd, EPOLLIN | EPOLLRDHUP, conn_event, c);
	if (r < 0) {
		free(c);
		return r;
	}
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->nconns++;
	if (s->h.on_count)
		s->h.on_count(s->nconns, s->h.count_arg);
	return 0;
}

int http_server_adopt(struct http_server *s, int fd)
{
	return adopt(s, fd, 0, NULL, NULL);
}

static void relisten(struct ev_loop *l, void *arg)
{
	struct http_server *s = arg;
	ev_fd_mod(l, s->lfd, EPOLLIN);
}

static void on_accept(struct ev_loop *l AF_UNUSED, int lfd, uint32_t events AF_UNUSED, void *arg)
{
	struct http_server *s = arg;
	for (int i = 0; i < 64; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			/* out of fds: the pending client would wake us again
			 * at once, so stop listening for a moment */
			if ((errno == EMFILE || errno == ENFILE) &&
			    ev_fd_mod(s->loop, lfd, 0) == 0 &&
			    ev_timer_add(s->loop, 100, relisten, s) < 0)
				ev_fd_mod(s->loop, lfd, EPOLLIN);
			return;
		}
		struct ucred cr;
		socklen_t len = sizeof(cr);
		int status = 0;
		const char *code = NULL, *msg = NULL;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 || cr.uid != s->owner) {
			status = 403;
			code = "permission_denied";
			msg = "this agentfense serve belongs to another user";
		} else if (s->nconns >= s->lim.max_conns) {
			status = 503;
			code = "resource_exhausted";
			msg = "too many connections";
		}
		if ((status && s->nconns >= s->lim.max_conns + REFUSING_MAX) ||
		    adopt(s, fd, status, code, msg) < 0)
			close(fd);
	}
}

static void sweep(struct ev_loop *l, void *arg)
{
	struct http_server *s = arg;
	uint64_t now = ev_now_ms();
	struct http_conn *next;
	for (struct http_conn *c = s->conns; c; c = next) {
		next = c->next;
		/* a long command is not an idle client; a stream's reader
		 * that stops reading is cut off by the output cap instead */
		if (request_busy(c))
			c->deadline = now + s->lim.idle_ms;
		else if (c->deadline <= now)
			conn_close(c);
	}
	s->sweep_timer = ev_timer_add(l, SWEEP_MS, sweep, s);
}

int http_server_new(struct http_server **out, struct ev_loop *l, int lfd, uid_t owner_uid,
		    const struct http_limits *lim, const struct http_handler *h)
{
	struct http_server *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->loop = l;
	s->lfd = lfd;
	s->owner = owner_uid;
	s->lim = *lim;
	s->h = *h;
	int r = lfd >= 0 ? ev_fd_add(l, lfd, EPOLLIN, on_accept, s) : 0;
	if (r < 0) {
		free(s);
		return r;
	}
	s->sweep_timer = ev_timer_add(l, SWEEP_MS, sweep, s);
	if (s->sweep_timer < 0) {
		r = (int)s->sweep_timer;
		if (lfd >= 0)
			ev_fd_del(l, lfd);
		free(s);
		return r;
	}
	*out = s;
	return 0;
}

void http_server_free(struct http_server *s)
{
	if (!s)
		return;
	while (s->conns)
		conn_close(s->conns);
	if (s->reap_timer > 0)
		ev_timer_del(s->loop, s->reap_timer);
	reap(s->loop, s);
	if (s->lfd >= 0)
		ev_fd_del(s->loop, s->lfd);
	ev_timer_del(s->loop, s->sweep_timer);
	free(s);
}
