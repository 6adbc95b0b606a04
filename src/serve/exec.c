/* exec.c - exec and exec stream in a running sandbox (see exec.h).
 *
 * A command is a sandbox_proc with three pipes.  Everything is
 * non-blocking and driven by the loop: stdin is written as the pipe
 * accepts it, stdout/stderr are read as they come and either collected
 * (each capped at max_output; past it the pipe is still drained, so the
 * command never blocks on a full pipe, and the result says truncated)
 * or sent on at once as ndjson events.  The result comes when the
 * process has ended and both pipes are at EOF: its whole process tree
 * dies with it (a PID namespace of its own), so EOF follows at once; a
 * short grace covers the rest.  Objects are freed from a timer, never
 * under a caller that may still hold them (an HTTP write that closes
 * the client calls back into us). */
#include "serve/exec.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "serve/http.h"
#include "serve/loop.h"
#include "serve/sbx.h"
#include "serve/session.h"

#define READ_CHUNK 65536
#define READS_PER_EVENT 8
#define EOF_GRACE_MS 1000

/* --- text ---------------------------------------------------------------------- */

/* The length of the valid UTF-8 sequence at s: 1-4, 0 if s[0] cannot
 * start one (or a later byte breaks it), -1 if the n bytes given are a
 * valid beginning of one that is cut off. */
static int utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	int len;
	unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f; /* no surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	for (int i = 1; i < len; i++) {
		if ((size_t)i >= n)
			return -1;
		unsigned char b = s[i];
		if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xbf))
			return 0;
	}
	return len;
}

size_t utf8_complete_prefix(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		int r = utf8_len(s + i, n - i);
		if (r < 0)
			return i;
		i += r ? (size_t)r : 1;
	}
	return n;
}

bool utf8_valid(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		int r = utf8_len(s + i, n - i);
		if (r <= 0)
			return false;
		i += (size_t)r;
	}
	return true;
}

int xbuf_add(struct xbuf *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t c = b->cap ? b->cap : 256;
		while (c < b->len + n + 1)
			c *= 2;
		char *d = realloc(b->data, c);
		if (!d)
			return -ENOMEM;
		b->data = d;
		b->cap = c;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int xbuf_printf(struct xbuf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -EOVERFLOW;
	return xbuf_add(b, tmp, (size_t)n);
}

int xbuf_json_str(struct xbuf *b, const unsigned char *s, size_t n, bool *bad)
{
	/* worst case: every byte a \u00XX escape */
	if (n > (SIZE_MAX - 3) / 6)
		return -ENOMEM;
	if (b->len + n * 6 + 3 > b->cap) {
		size_t want = b->len + n * 6 + 3;
		char *d = realloc(b->data, want);
		if (!d)
			return -ENOMEM;
		b->data = d;
		b->cap = want;
	}
	char *o = b->data + b->len;
	*o++ = '"';
	for (size_t i = 0; i < n;) {
		int r = utf8_len(s + i, n - i);
		if (r <= 0) {
			/* U+FFFD for a byte that is not (complete) UTF-8 */
			*o++ = (char)0xef;
			*o++ = (char)0xbf;
			*o++ = (char)0xbd;
			*bad = true;
			i++;
			continue;
		}
		unsigned char c = s[i];
		if (r > 1) {
			memcpy(o, s + i, (size_t)r);
			o += r;
		} else if (c == '"' || c == '\\') {
			*o++ = '\\';
			*o++ = (char)c;
		} else if (c == '\n') {
			*o++ = '\\';
			*o++ = 'n';
		} else if (c == '\t') {
			*o++ = '\\';
			*o++ = 't';
		} else if (c == '\r') {
			*o++ = '\\';
			*o++ = 'r';
		} else if (c < 0x20 || c == 0x7f) {
			o += sprintf(o, "\\u%04x", c);
		} else {
			*o++ = (char)c;
		}
		i += (size_t)r;
	}
	*o++ = '"';
	*o = '\0';
	b->len = (size_t)(o - b->data);
	return 0;
}

int xbuf_b64(struct xbuf *b, const unsigned char *s, size_t n)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t want = b->len + (n + 2) / 3 * 4 + 3;
	if (want > b->cap) {
		char *d = realloc(b->data, want);
		if (!d)
			return -ENOMEM;
		b->data = d;
		b->cap = want;
	}
	char *o = b->data + b->len;
	*o++ = '"';
	size_t i = 0;
	for (; i + 3 <= n; i += 3) {
		unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 | s[i + 2];
		*o++ = tab[v >> 18];
		*o++ = tab[(v >> 12) & 63];
		*o++ = tab[(v >> 6) & 63];
		*o++ = tab[v & 63];
	}
	if (i < n) {
		unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0);
		*o++ = tab[v >> 18];
		*o++ = tab[(v >> 12) & 63];
		*o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		*o++ = '=';
	}
	*o++ = '"';
	*o = '\0';
	b->len = (size_t)(o - b->data);
	return 0;
}

/* --- the reply channel ------------------------------------------------------------ */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int xout_begin(struct xout *o, struct http_conn *conn, struct xout **slot, bool stream)
{
	o->conn = conn;
	o->slot = slot;
	*slot = o;
	o->stream = stream;
	/* a stream's output is not held, so it is not capped unless asked:
	 * a reader too slow for it is cut off instead */
	if (!o->max_output)
		o->max_output = stream ? SIZE_MAX : EXEC_MAX_OUTPUT;
	o->t0_ns = now_ns();
	if (!stream) {
		http_defer(conn);
		return 0;
	}
	/* a failure closes the client, which calls o->gone */
	return http_stream_begin(conn, 200, "application/x-ndjson");
}

void xout_detach(struct xout *o)
{
	if (o->slot)
		*o->slot = NULL;
	o->slot = NULL;
	o->conn = NULL;
}

void xout_client_gone(struct xout *o)
{
	xout_detach(o);
	if (o->gone)
		o->gone(o);
}

void xout_free(struct xout *o)
{
	xout_detach(o);
	free(o->buf[0].data);
	free(o->buf[1].data);
	o->buf[0] = o->buf[1] = (struct xbuf){ 0 };
}

static const char *const stream_name[2] = { "stdout", "stderr" };

/* One output event of stream which; returns 0, or -errno (the client
 * is gone: o->gone ran). */
static int stream_event(struct xout *o, int which, const unsigned char *p, size_t n)
{
	struct xbuf ev = { 0 };
	bool bad = false;
	int r = xbuf_printf(&ev, "{\"type\":\"%s\",", stream_name[which]);
	if (r == 0 && utf8_valid(p, n))
		r = xbuf_add(&ev, "\"data\":", 7) ?: xbuf_json_str(&ev, p, n, &bad);
	else if (r == 0)
		r = xbuf_add(&ev, "\"data_base64\":", 14) ?: xbuf_b64(&ev, p, n);
	if (r == 0)
		r = xbuf_add(&ev, "}\n", 2);
	if (r == 0)
		r = http_stream_write(o->conn, ev.data, ev.len);
	else {
		/* no memory for the event: the client cannot get its output
		 * whole, so it is dropped rather than misled */
		struct http_conn *c = o->conn;
		xout_detach(o);
		http_close(c);
		if (o->gone)
			o->gone(o);
	}
	free(ev.data);
	return r < 0 ? -EPIPE : 0;
}

int xout_data(struct xout *o, int which, const char *data, size_t n)
{
	if (!o->conn)
		return -EPIPE;
	uint64_t room = o->seen[which] < o->max_output ? o->max_output - o->seen[which] : 0;
	o->seen[which] += n;
	if (n > room) {
		o->buf[which].truncated = true;
		n = (size_t)room;
	}
	if (n == 0)
		return 0;
	if (!o->stream) {
		if (xbuf_add(&o->buf[which], data, n) < 0) {
			xout_error(o, 503, "resource_exhausted", "out of memory for the output");
			if (o->gone)
				o->gone(o); /* nobody will get the result: stop it */
			return -EPIPE;
		}
		return 0;
	}
	/* never split a UTF-8 sequence across events: its start waits in
	 * carry for the rest */
	unsigned char tmp[READ_CHUNK + 4];
	const unsigned char *p = (const unsigned char *)data;
	while (n > 0) {
		size_t nc = o->ncarry[which];
		size_t take = n < READ_CHUNK ? n : READ_CHUNK;
		memcpy(tmp, o->carry[which], nc);
		memcpy(tmp + nc, p, take);
		p += take;
		n -= take;
		size_t all = nc + take;
		size_t k = utf8_complete_prefix(tmp, all);
		o->ncarry[which] = all - k;
		memcpy(o->carry[which], tmp + k, all - k);
		if (k > 0 && stream_event(o, which, tmp, k) < 0)
			return -EPIPE;
	}
	return 0;
}

static int add_end_fields(struct xbuf *b, const struct xout *o, const struct xend *e)
{
	double ms = (double)(now_ns() - o->t0_ns) / 1e6;
	return xbuf_printf(b, "\"exit_code\":%d,\"duration\":\"%.6fs\",\"duration_ms\":%.3f,"
			   "\"timed_out\":%s,\"signal\":%d,\"stdout_truncated\":%s,"
			   "\"stderr_truncated\":%s",
			   e->exit_code, ms / 1000, ms, e->timed_out ? "true" : "false",
			   e->term_signal, o->buf[0].truncated ? "true" : "false",
			   o->buf[1].truncated ? "true" : "false");
}

void xout_finish(struct xout *o, const struct xend *e)
{
	struct http_conn *c = o->conn;
	if (!c)
		return;
	xout_detach(o);
	struct xbuf b = { 0 };
	int r = 0;
	if (o->stream) {
		/* a sequence left unfinished at the end is bytes, not text */
		for (int w = 0; w < 2; w++) {
			if (!o->ncarry[w])
				continue;
			r = xbuf_printf(&b, "{\"type\":\"%s\",\"data_base64\":", stream_name[w]) ?:
			    xbuf_b64(&b, o->carry[w], o->ncarry[w]) ?: xbuf_add(&b, "}\n", 2);
		}
		if (r == 0)
			r = xbuf_add(&b, "{\"type\":\"exit\",", 15) ?: add_end_fields(&b, o, e) ?:
			    xbuf_add(&b, "}\n", 2);
		if (r < 0 || http_stream_write(c, b.data, b.len) == 0)
			http_stream_end(c);
		free(b.data);
		return;
	}
	bool bad[2] = { false, false }, nbad = false;
	r = xbuf_add(&b, "{\"stdout\":", 10) ?:
	    xbuf_json_str(&b, (unsigned char *)o->buf[0].data, o->buf[0].len, &bad[0]) ?:
	    xbuf_add(&b, ",\"stderr\":", 10) ?:
	    xbuf_json_str(&b, (unsigned char *)o->buf[1].data, o->buf[1].len, &bad[1]) ?:
	    xbuf_add(&b, ",", 1) ?: add_end_fields(&b, o, e) ?: xbuf_add(&b, ",\"command\":", 11) ?:
	    xbuf_json_str(&b, (const unsigned char *)(o->command ? o->command : ""),
			  o->command ? strlen(o->command) : 0, &nbad);
	for (int w = 0; w < 2 && r == 0; w++)
		if (bad[w])
			r = xbuf_printf(&b, ",\"%s_base64\":", stream_name[w]) ?:
			    xbuf_b64(&b, (unsigned char *)o->buf[w].data, o->buf[w].len);
	if (r == 0)
		r = xbuf_add(&b, "}\n", 2);
	if (r < 0) {
		o->conn = c;
		xout_error(o, 503, "resource_exhausted", "out of memory for the result");
	} else {
		http_respond_large(c, 200, "application/json", b.data, b.len);
	}
	free(b.data);
}

void xout_error(struct xout *o, int status, const char *code, const char *fmt, ...)
{
	struct http_conn *c = o->conn;
	if (!c)
		return;
	xout_detach(o);
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!o->stream) {
		http_respond_error(c, status, code, "%s", msg);
		return;
	}
	struct xbuf b = { 0 };
	bool bad = false;
	int r = xbuf_printf(&b, "{\"type\":\"error\",\"code\":\"%s\",\"message\":", code) ?:
		xbuf_json_str(&b, (unsigned char *)msg, strlen(msg), &bad) ?: xbuf_add(&b, "}\n", 2);
	if (r < 0 || http_stream_write(c, b.data, b.len) == 0)
		http_stream_end(c);
	free(b.data);
}

/* --- the table -------------------------------------------------------------------- */

struct exec {
	struct exe_table *t;
	struct exec *prev, *next;
	struct sbx *sb;
	struct sbx_watch watch;
	bool watching;
	struct sandbox_proc *proc;
	int pfd;
	int in_fd, out_fd[2];
	size_t in_off;
	struct exec_req rq;
	struct xout out;
	int64_t timer, grace;
	bool ended, timed_out, dead;
	struct sproc_result res;
	struct af_err end_err;     /* why it could not run */
};

void exec_req_clear(struct exec_req *rq)
{
	for (size_t i = 0; rq->argv && rq->argv[i]; i++)
		free(rq->argv[i]);
	for (size_t i = 0; rq->env && rq->env[i]; i++)
		free(rq->env[i]);
	free(rq->argv);
	free(rq->env);
	free(rq->command);
	free(rq->workdir);
	free(rq->stdin_data);
	memset(rq, 0, sizeof(*rq));
}

static void reap(struct ev_loop *l AF_UNUSED, void *arg)
{
	struct exe_table *t = arg;
	t->reap_timer = 0;
	while (t->dead_execs) {
		struct exec *x = t->dead_execs;
		t->dead_execs = x->next;
		xout_free(&x->out);
		exec_req_clear(&x->rq);
		free(x);
	}
	session_reap(t);
}

void exe_table_reap_later(struct exe_table *t)
{
	if (t->reap_timer <= 0)
		t->reap_timer = ev_timer_add(t->loop, 0, reap, t);
	/* no timer (no memory): the next one, or exe_table_free, reaps */
}

int exe_table_new(struct exe_table **out, struct ev_loop *l, struct sbx_table *sandboxes)
{
	struct exe_table *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->loop = l;
	t->sandboxes = sandboxes;
	*out = t;
	return 0;
}

static void exec_end(struct exec *x);

void exe_table_free(struct exe_table *t)
{
	if (!t)
		return;
	while (t->execs) {
		struct exec *x = t->execs;
		xout_error(&x->out, 503, "unavailable", "agentfense serve is stopping");
		exec_end(x);
	}
	sessions_end_all(t);
	if (t->reap_timer > 0)
		ev_timer_del(t->loop, t->reap_timer);
	reap(t->loop, t);
	free(t);
}

/* --- one exec ------------------------------------------------------------------ */

static void close_fd(struct exec *x, int *fd)
{
	if (*fd < 0)
		return;
	ev_fd_del(x->t->loop, *fd);
	close(*fd);
	*fd = -1;
}

/* Stop everything of x now (its process tree killed) and free it later.
 * Idempotent. */
static void exec_end(struct exec *x)
{
	struct exe_table *t = x->t;
	if (x->dead)
		return;
	x->dead = true;
	xout_detach(&x->out);
	if (x->pfd >= 0)
		ev_fd_del(t->loop, x->pfd);
	x->pfd = -1;
	close_fd(x, &x->in_fd);
	close_fd(x, &x->out_fd[0]);
	close_fd(x, &x->out_fd[1]);
	ev_timer_del(t->loop, x->timer);
	ev_timer_del(t->loop, x->grace);
	if (x->watching)
		sbx_watch_del(x->sb, &x->watch);
	x->watching = false;
	sproc_free(x->proc); /* kills its PID namespace if still running */
	x->proc = NULL;
	if (x->prev)
		x->prev->next = x->next;
	else
		t->execs = x->next;
	if (x->next)
		x->next->prev = x->prev;
	x->prev = NULL;
	x->next = t->dead_execs;
	t->dead_execs = x;
	exe_table_reap_later(t);
}

static void exec_gone(struct xout *o)
{
	exec_end(container_of(o, struct exec, out));
}

static void exec_finish(struct exec *x)
{
	struct xend e = {
		.exit_code = x->res.exit_code,
		.term_signal = x->res.term_signal,
		.timed_out = x->timed_out,
	};
	if (x->timed_out) {
		e.exit_code = 124;
	} else if (x->res.exec_errno) {
		/* nothing ran, so nothing said why: say it on stderr as a
		 * shell would (exit codes as run's: 127 not found, 126 not
		 * executable, 125 could not be started, e.g. no workdir) */
		int en = x->res.exec_errno;
		e.exit_code = x->res.exit_code ? x->res.exit_code : en == ENOENT ? 127 : 126;
		char msg[1200];
		if (e.exit_code == 127)
			snprintf(msg, sizeof(msg), "agentfense: '%.256s': command not found\n",
				 x->rq.argv[0]);
		else if (x->end_err.msg[0])
			snprintf(msg, sizeof(msg), "agentfense: %s\n", x->end_err.msg);
		else
			snprintf(msg, sizeof(msg), "agentfense: cannot run '%.256s': %s\n",
				 x->rq.argv[0], strerror(en));
		xbuf_add(&x->out.buf[1], msg, strlen(msg));
	}
	xout_finish(&x->out, &e);
	exec_end(x);
}

static void check_done(struct exec *x)
{
	if (!x->dead && x->ended && x->out_fd[0] < 0 && x->out_fd[1] < 0)
		exec_finish(x);
}

/* Read what fd has; returns false if x ended meanwhile. */
static bool drain(struct exec *x, int which, int max_reads)
{
	char buf[READ_CHUNK];
	for (int i = 0; i < max_reads && x->out_fd[which] >= 0; i++) {
		ssize_t n = read(x->out_fd[which], buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			close_fd(x, &x->out_fd[which]);
			break;
		}
		if (xout_data(&x->out, which, buf, (size_t)n) < 0 || x->dead)
			return false;
	}
	return !x->dead;
}

static void on_output(struct ev_loop *l AF_UNUSED, int fd, uint32_t events AF_UNUSED, void *arg)
{
	struct exec *x = arg;
	int which = fd == x->out_fd[0] ? 0 : 1;
	if (drain(x, which, READS_PER_EVENT))
		check_done(x);
}

static void on_input(struct ev_loop *l AF_UNUSED, int fd AF_UNUSED, uint32_t events AF_UNUSED,
		     void *arg)
{
	struct exec *x = arg;
	while (x->in_off < x->rq.stdin_len) {
		ssize_t n = write(x->in_fd, x->rq.stdin_data + x->in_off, x->rq.stdin_len - x->in_off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0)
			break; /* EPIPE: the command does not read it all; fine */
		x->in_off += (size_t)n;
	}
	close_fd(x, &x->in_fd); /* EOF for the command */
}

static void on_grace(struct ev_loop *l AF_UNUSED, void *arg)
{
	struct exec *x = arg;
	x->grace = 0;
	/* the process is gone but something still holds a pipe: take what
	 * is buffered and answer */
	for (int w = 0; w < 2; w++) {
		if (!drain(x, w, 64))
			return;
		close_fd(x, &x->out_fd[w]);
	}
	check_done(x);
}

static void on_proc(struct ev_loop *l, int fd AF_UNUSED, uint32_t events AF_UNUSED, void *arg)
{
	struct exec *x = arg;
	struct af_err *e = &x->end_err;
	int r = sproc_step(x->proc, &x->res, e);
	if (r == 0)
		return;
	if (r < 0) {
		xout_error(&x->out, 500, "internal", "%s", e->msg[0] ? e->msg : strerror(-r));
		exec_end(x);
		return;
	}
	x->ended = true;
	ev_fd_del(l, x->pfd);
	x->pfd = -1;
	close_fd(x, &x->in_fd);
	x->grace = ev_timer_add(l, EOF_GRACE_MS, on_grace, x);
	if (x->grace < 0)
		x->grace = 0;
	check_done(x);
}

static void on_timeout(struct ev_loop *l AF_UNUSED, void *arg)
{
	struct exec *x = arg;
	x->timer = 0;
	if (x->ended)
		return;
	x->timed_out = true;
	sproc_kill(x->proc); /* the whole tree, never the sandbox */
}

static void exec_sandbox_ending(struct sbx_watch *w)
{
	struct exec *x = container_of(w, struct exec, watch);
	sbx_watch_del(x->sb, &x->watch);
	x->watching = false;
	xout_error(&x->out, 409, "not_running", "sandbox '%s' stopped while the command ran",
		   sbx_id(x->sb));
	exec_end(x);
}

/* A pipe for the child's side child_end (0: it reads) and ours,
 * non-blocking.  Returns 0, or -errno. */
static int make_pipe(int *ours, int *theirs, bool child_reads)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	*ours = child_reads ? p[1] : p[0];
	*theirs = child_reads ? p[0] : p[1];
	if (fcntl(*ours, F_SETFL, O_NONBLOCK) < 0) {
		int e = -errno;
		close(p[0]);
		close(p[1]);
		return e;
	}
	return 0;
}

int exec_start(struct exe_table *t, struct sbx *sb, struct exec_req *rq, struct http_conn *conn,
	       struct xout **slot, bool stream, struct af_err *err)
{
	struct exec *x = calloc(1, sizeof(*x));
	if (!x)
		return af_err_set(err, ENOMEM, "out of memory");
	x->t = t;
	x->sb = sb;
	x->pfd = x->in_fd = x->out_fd[0] = x->out_fd[1] = -1;
	int child[3] = { -1, -1, -1 };
	int r = 0;
	if (rq->has_stdin)
		r = make_pipe(&x->in_fd, &child[0], true);
	if (r == 0)
		r = make_pipe(&x->out_fd[0], &child[1], false);
	if (r == 0)
		r = make_pipe(&x->out_fd[1], &child[2], false);
	if (r < 0) {
		af_err_set(err, -r, "cannot make the command's pipes: %s", strerror(-r));
		goto fail;
	}
	struct sproc_spec sp = {
		.op = SPROC_EXEC,
		.argv = rq->argv,
		.workdir = rq->workdir,
		.workdir_beneath = rq->workdir_beneath,
		.fds = { child[0], child[1], child[2] },
	};
	r = sbx_spawn(sb, &sp, rq->env, &x->proc, err);
	for (int i = 0; i < 3; i++)
		if (child[i] >= 0)
			close(child[i]);
	if (r < 0)
		goto fail;
	x->rq = *rq; /* owned from now on */
	memset(rq, 0, sizeof(*rq));
	x->out.max_output = x->rq.max_output;
	x->out.command = x->rq.command;
	x->out.gone = exec_gone;
	x->pfd = sproc_fd(x->proc);
	r = ev_fd_add(t->loop, x->pfd, EPOLLIN, on_proc, x);
	for (int w = 0; w < 2 && r == 0; w++)
		r = ev_fd_add(t->loop, x->out_fd[w], EPOLLIN, on_output, x);
	if (r == 0 && x->in_fd >= 0)
		r = ev_fd_add(t->loop, x->in_fd, EPOLLOUT, on_input, x);
	if (r == 0 && x->rq.timeout_ms) {
		int64_t id = ev_timer_add(t->loop, x->rq.timeout_ms, on_timeout, x);
		r = id < 0 ? (int)id : 0;
		x->timer = id > 0 ? id : 0;
	}
	if (r < 0) {
		af_err_set(err, -r, "cannot watch the command: %s", strerror(-r));
		/* x owns rq's contents now: give them back for the caller */
		*rq = x->rq;
		memset(&x->rq, 0, sizeof(x->rq));
		x->next = t->execs;
		if (t->execs)
			t->execs->prev = x;
		t->execs = x;
		exec_end(x);
		return r;
	}
	x->watch.ending = exec_sandbox_ending;
	sbx_watch_add(sb, &x->watch);
	x->watching = true;
	x->next = t->execs;
	if (t->execs)
		t->execs->prev = x;
	t->execs = x;
	/* a stream's head that cannot be queued closes the client, whose
	 * on_close ends x */
	xout_begin(&x->out, conn, slot, stream);
	return 0;
fail:
	close_fd(x, &x->in_fd);
	close_fd(x, &x->out_fd[0]);
	close_fd(x, &x->out_fd[1]);
	free(x);
	return r;
}
