/* client.c - talk to serve over its socket (see client.h). */
#include "cli/client.h"

#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "serve/server.h"

/* Largest reply kept in memory (JSON); downloads go to out_fd. */
#define REPLY_MAX (256u << 20)

static int try_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

/* Start `agentfense serve --socket path --idle-exit N` detached from us
 * (its own session, no terminal, stdio on /dev/null), and wait up to 5
 * seconds for it to answer.  Returns a connected fd, or -errno. */
static int autostart(const char *path)
{
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		/* a grandchild, so that serve is nobody's zombie */
		if (fork() != 0)
			_exit(0);
		setsid();
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
		}
		char idle[16];
		snprintf(idle, sizeof(idle), "%d", CLIENT_AUTOSTART_IDLE);
		char *argv[] = { (char *)"agentfense", (char *)"serve", (char *)"--socket",
				 (char *)path, (char *)"--idle-exit", idle, NULL };
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	waitpid(pid, NULL, 0);
	int fd = -ECONNREFUSED;
	for (int i = 0; i < 250; i++) {
		fd = try_connect(path);
		if (fd >= 0 || (fd != -ENOENT && fd != -ECONNREFUSED))
			break;
		struct timespec ts = { 0, 20 * 1000000 };
		nanosleep(&ts, NULL);
	}
	return fd;
}

static int connect_serve(const char *sock, struct af_err *err)
{
	autofree char *dflt = NULL;
	if (!sock) {
		dflt = serve_default_socket(true, err);
		if (!dflt)
			return -(err->errnum ? err->errnum : EINVAL);
		sock = dflt;
	}
	int fd = try_connect(sock);
	if (fd >= 0)
		return fd;
	if (fd == -ENOENT || fd == -ECONNREFUSED) {
		fd = autostart(sock);
		if (fd >= 0)
			return fd;
		af_err_set(err, -fd, "cannot start agentfense serve on '%s': %s", sock,
			   strerror(-fd));
		af_err_hint(err, "run 'agentfense serve --socket %s' to see why", sock);
		return fd;
	}
	return af_err_set(err, -fd, "cannot connect to agentfense serve on '%s': %s", sock,
			  strerror(-fd));
}

/* --- the reply ------------------------------------------------------------- */

struct rd {
	struct client_reply *rep;
	client_line_fn on_line;
	void *line_arg;
	int out_fd;
	bool done;
	int werr;
	int line_err;    /* on_line's result, or -E2BIG */
	char *line;      /* a record not yet ended by '\n' */
	size_t line_len;
};

int client_split_lines(char **buf, size_t *len, const char *data, size_t n, bool final,
		       size_t max, client_line_fn on_line, void *arg)
{
	char *b = realloc(*buf, *len + n + 1);
	if (!b)
		return -ENOMEM;
	*buf = b;
	memcpy(b + *len, data, n);
	*len += n;
	b[*len] = '\0';
	size_t start = 0;
	int r = 0;
	for (;;) {
		char *nl = memchr(b + start, '\n', *len - start);
		if (!nl)
			break;
		*nl = '\0';
		r = on_line(b + start, (size_t)(nl - (b + start)), arg);
		start = (size_t)(nl - b) + 1;
		if (r)
			break;
	}
	memmove(b, b + start, *len - start);
	*len -= start;
	b[*len] = '\0';
	if (r)
		return r;
	if (*len > max)
		return -E2BIG;
	if (final && *len) {
		*len = 0;
		return on_line(b, strlen(b), arg);
	}
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct rd *r = p->data;
	if (r->on_line && p->status_code / 100 == 2) {
		r->line_err = client_split_lines(&r->line, &r->line_len, at, len, false, REPLY_MAX,
						 r->on_line, r->line_arg);
		return r->line_err ? -1 : 0;
	}
	if (r->out_fd >= 0 && p->status_code / 100 == 2) {
		int e = write_all(r->out_fd, at, len);
		if (e < 0) {
			r->werr = e;
			return -1;
		}
		return 0;
	}
	if (r->rep->len + len > REPLY_MAX)
		return -1;
	char *b = realloc(r->rep->body, r->rep->len + len + 1);
	if (!b)
		return -1;
	memcpy(b + r->rep->len, at, len);
	r->rep->len += len;
	b[r->rep->len] = '\0';
	r->rep->body = b;
	return 0;
}

static int on_complete(http_parser *p)
{
	struct rd *r = p->data;
	if (r->on_line && p->status_code / 100 == 2) {
		r->line_err = client_split_lines(&r->line, &r->line_len, "", 0, true, REPLY_MAX,
						 r->on_line, r->line_arg);
		if (r->line_err)
			return -1;
	}
	r->done = true;
	r->rep->status = (int)p->status_code;
	return 0;
}

static int send_body(int fd, const struct client_req *req)
{
	if (req->body_fd < 0)
		return req->body_len ? write_all(fd, req->body, req->body_len) : 0;
	char buf[65536];
	for (;;) {
		ssize_t n = read(req->body_fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		int r = 0;
		if (req->body_size < 0) {
			char head[32];
			int hl = snprintf(head, sizeof(head), "%zx\r\n", (size_t)n);
			r = write_all(fd, head, (size_t)hl);
			if (r == 0 && n)
				r = write_all(fd, buf, (size_t)n);
			if (r == 0)
				r = write_all(fd, "\r\n", 2);
		} else if (n) {
			r = write_all(fd, buf, (size_t)n);
		}
		if (r < 0)
			return r;
		if (n == 0)
			return 0;
	}
}

int client_call(const char *sock, const struct client_req *req, struct client_reply *rep,
		struct af_err *err)
{
	return client_call_lines(sock, req, NULL, NULL, rep, err);
}

int client_call_lines(const char *sock, const struct client_req *req, client_line_fn on_line,
		      void *arg, struct client_reply *rep, struct af_err *err)
{
	memset(rep, 0, sizeof(*rep));
	autoclose int fd = connect_serve(sock, err);
	if (fd < 0)
		return fd;
	char head[4096];
	char len[64] = "";
	if (req->body_fd >= 0 && req->body_size < 0)
		snprintf(len, sizeof(len), "Transfer-Encoding: chunked\r\n");
	else if (req->body_fd >= 0 || req->body)
		snprintf(len, sizeof(len), "Content-Length: %lld\r\n",
			 req->body_fd >= 0 ? (long long)req->body_size : (long long)req->body_len);
	int hl = snprintf(head, sizeof(head),
			  "%s %s HTTP/1.1\r\nHost: agentfense\r\nUser-Agent: agentfense/%s\r\n"
			  "Connection: close\r\n%s%s\r\n",
			  req->method, req->path, AF_VERSION, len,
			  req->body && req->body_fd < 0 ? "Content-Type: application/json\r\n" : "");
	if (hl < 0 || (size_t)hl >= sizeof(head))
		return af_err_usage(err, ENAMETOOLONG, "request path too long");
	/* a serve that closes early (an error) must not kill us */
	signal(SIGPIPE, SIG_IGN);
	int r = write_all(fd, head, (size_t)hl);
	if (r == 0)
		r = send_body(fd, req);
	/* on a failed send, read on: serve may have replied why (413...) */
	int send_err = r;
	http_parser p;
	http_parser_init(&p, HTTP_RESPONSE);
	struct rd rd = { rep, on_line, arg, req->out_fd, false, 0, 0, NULL, 0 };
	p.data = &rd;
	http_parser_settings s = { 0 };
	s.on_body = on_body;
	s.on_message_complete = on_complete;
	char buf[65536];
	while (!rd.done) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		size_t got = http_parser_execute(&p, &s, buf, (size_t)n);
		if (rd.done)
			break;
		if (HTTP_PARSER_ERRNO(&p) != HPE_OK || got != (size_t)n || n == 0) {
			free(steal_pointer(&rd.line));
			if (rd.line_err)
				return af_err_set(err, rd.line_err < 0 ? -rd.line_err : EPROTO,
						  "cannot read the reply of agentfense serve: %s",
						  strerror(rd.line_err < 0 ? -rd.line_err : EPROTO));
			if (rd.werr)
				return af_err_set(err, -rd.werr, "cannot write the download: %s",
						  strerror(-rd.werr));
			r = -EPROTO;
			break;
		}
	}
	free(rd.line);
	if (!rd.done) {
		client_reply_free(rep);
		if (send_err < 0)
			r = send_err;
		return af_err_set(err, r < 0 ? -r : EPROTO, "no valid reply from agentfense serve: %s",
				  strerror(r < 0 ? -r : EPROTO));
	}
	if (!rep->body) {
		rep->body = calloc(1, 1);
		if (!rep->body)
			return af_err_set(err, ENOMEM, "out of memory");
	}
	return 0;
}

void client_reply_free(struct client_reply *rep)
{
	free(rep->body);
	rep->body = NULL;
	rep->len = 0;
}

char *client_escape(const char *s, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	char *o = xmalloc(strlen(s) * 3 + 1), *w = o;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '_' || *p == '.' || *p == '~' || (keep_slash && *p == '/')) {
			*w++ = (char)*p;
		} else {
			*w++ = '%';
			*w++ = hex[*p >> 4];
			*w++ = hex[*p & 15];
		}
	}
	*w = '\0';
	return o;
}
