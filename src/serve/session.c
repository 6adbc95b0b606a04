/* session.c - persistent shells in a running sandbox (see session.h).
 *
 * The shell is one sandbox_proc.  Its stdout and stderr are pipes serve
 * reads; its stdin is one end of a UNIX socket pair: serve writes each
 * exec into it as one line, and the shell writes each exec's status back
 * into it.  For exec number SEQ the line is
 *
 *   __agentfense_run() { __agentfense_busy=1; [rm -f -- 'F';]
 *       command eval 'TEXT'; ...; return $status; };
 *   __agentfense_run "$@" <'F'; printf '%d %s\n' "$status" SEQ >&0
 *
 * F being the exec's stdin data (or /dev/null) and TEXT the command
 * with every ' written as '\''.  So:
 * - TEXT can be anything (comments, heredocs, several lines, & jobs);
 *   a syntax error in it is eval's status, and `command` keeps eval from
 *   ending the shell on one.  It runs in a function, so `set --` and
 *   `return` act on that function's scope;
 * - the command and everything it starts get F as fd 0, never the
 *   socket: the shell keeps its own copy of the socket in a
 *   close-on-exec fd while the redirection lasts, and a socket, unlike a
 *   pipe, cannot be opened again through /proc/PID/fd; and the shell
 *   runs sealed (sproc_spec), non-dumpable, so no process the command
 *   starts can take the socket with pidfd_getfd, ptrace the shell or
 *   write its memory: none can write a status;
 * - the status is read from the socket only, and only the line with the
 *   current SEQ ends the exec: nothing written to stdout or stderr
 *   (binary, without a newline, or imitating a status line) can end a
 *   command early or change its status.  When it arrives, what the
 *   pipes hold is drained and the result given.
 * The limit: TEXT is run by the shell itself, so a command that writes
 * to the shell's saved descriptor with a builtin (printf ... >&10) is
 * the client forging its own result.
 *
 * Stdin data is written first to F (a private file in the sandbox's
 * /tmp, mode 0600, by an SPROC_WRITE request) and removed by the line.
 * A timeout sends SIGINT to the shell's process group: the foreground
 * command dies of it, and the shell's INT trap returns from the
 * function while one runs (so the rest of TEXT is skipped too), then
 * the shell writes the status; background jobs ignore SIGINT as POSIX
 * has it for non-interactive shells.  If no status comes within
 * SESSION_GRACE_MS the session is killed and says so.  A shell that ends (the command ran `exit 3`)
 * closes the session: that exec gets the shell's status, later ones
 * not_running. */
#include "serve/session.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "serve/http.h"
#include "serve/loop.h"
#include "serve/sbx.h"

#define READ_CHUNK 65536
/* the names the framing gives the shell */
#define RUN_FN "__agentfense_run"
#define BUSY "__agentfense_busy"
#define STATUS "__agentfense_status"

enum ss_state {
	SS_BOOT,      /* started, waiting for the shell's first status */
	SS_IDLE,
	SS_STDIN,     /* writing the exec's stdin file */
	SS_RUNNING,   /* the line is sent; waiting for its status */
	SS_CLOSED,
};

struct session {
	struct exe_table *t;
	struct session *prev, *next;
	char id[40];
	char sandbox_id[80];
	char shell[256];
	time_t created, closed_at;
	char error[256];
	enum ss_state state;
	struct sbx *sb;
	struct sbx_watch watch;
	bool watching;
	struct sandbox_proc *proc;
	int pfd, ctl_fd, out_fd[2];
	struct xbuf wbuf;          /* script bytes not yet written */
	size_t woff;
	char rbuf[128];            /* a status line being read */
	size_t rlen;
	unsigned long long seq;
	/* the exec (or, in SS_BOOT, the create) in progress */
	bool busy;
	bool out_paused;           /* out_fd not watched: no exec reads them */
	bool abandoned;            /* its client left: finish it quietly */
	bool timed_out;
	struct xout out;
	struct exec_req rq;
	int64_t timer, grace;
	/* SS_STDIN */
	struct sandbox_proc *wproc;
	int wpfd, win_fd;
	size_t win_off;
	char stdin_path[128];
	bool dead;
};

/* --- small things ------------------------------------------------------------ */

static void rfc3339(time_t t, char *buf, size_t len)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void close_fd(struct session *s, int *fd)
{
	if (*fd < 0)
		return;
	ev_fd_del(s->t->loop, *fd);
	close(*fd);
	*fd = -1;
}

static void ctl_events(struct session *s)
{
	if (s->ctl_fd >= 0)
		ev_fd_mod(s->t->loop, s->ctl_fd,
			  EPOLLIN | (s->woff < s->wbuf.len ? EPOLLOUT : 0u));
}

/* Quote text for the shell between '...'.  Returns 0, or -ENOMEM. */
static int add_quoted(struct xbuf *b, const char *text)
{
	int r = xbuf_add(b, "'", 1);
	for (const char *p = text; r == 0 && *p; p++)
		r = *p == '\'' ? xbuf_add(b, "'\\''", 4) : xbuf_add(b, p, 1);
	return r ?: xbuf_add(b, "'", 1);
}

/* Queue text for the shell's stdin.  Returns 0, or -ENOMEM. */
static int send_script(struct session *s, const char *text, size_t len)
{
	if (s->woff == s->wbuf.len)
		s->woff = s->wbuf.len = 0;
	int r = xbuf_add(&s->wbuf, text, len);
	if (r == 0)
		ctl_events(s);
	return r;
}

/* --- ending ------------------------------------------------------------------ */

static void stop_stdin(struct session *s)
{
	if (s->wpfd >= 0)
		ev_fd_del(s->t->loop, s->wpfd);
	s->wpfd = -1;
	close_fd(s, &s->win_fd);
	sproc_free(s->wproc);
	s->wproc = NULL;
}

/* Between execs nobody reads the output pipes: stop watching them.  A
 * background job that writes on fills the pipe and then waits, as at a
 * terminal nobody reads, instead of serve spending a core on reading
 * and dropping its output. */
static void pause_output(struct session *s)
{
	for (int i = 0; i < 2; i++)
		if (s->out_fd[i] >= 0)
			ev_fd_del(s->t->loop, s->out_fd[i]);
	s->out_paused = true;
}

static bool drain(struct session *s, int which, int max_reads);
static void on_output(struct ev_loop *l, int fd, uint32_t events, void *arg);

/* An exec starts: drop what background jobs left in the pipes meanwhile
 * (a pipeful at most, as before the pause), and watch them again.
 * Returns 0, or -errno. */
static int resume_output(struct session *s)
{
	if (!s->out_paused)
		return 0;
	for (int i = 0; i < 2; i++) {
		drain(s, i, 2);
		if (s->out_fd[i] >= 0) {
			int r = ev_fd_add(s->t->loop, s->out_fd[i], EPOLLIN, on_output, s);
			if (r < 0) {
				pause_output(s);
				return r;
			}
		}
	}
	s->out_paused = false;
	return 0;
}

/* The exec in progress is over: clear it for the next. */
static void exec_done(struct session *s)
{
	pause_output(s);
	ev_timer_del(s->t->loop, s->timer);
	ev_timer_del(s->t->loop, s->grace);
	s->timer = s->grace = 0;
	stop_stdin(s);
	xout_free(&s->out);
	exec_req_clear(&s->rq);
	memset(&s->out, 0, sizeof(s->out));
	s->busy = s->abandoned = s->timed_out = false;
}

/* Kill the shell and all its jobs; the session stays listed as closed
 * with why.  The exec in progress gets code/why as its error. */
static void session_close(struct session *s, const char *why)
{
	if (s->state == SS_CLOSED)
		return;
	if (s->busy) {
		if (s->state == SS_BOOT)
			xout_error(&s->out, 500, "internal", "cannot start the shell: %s", why);
		else
			xout_error(&s->out, 409, "not_running", "session '%s' is closed: %s", s->id,
				   why);
		exec_done(s);
	}
	s->state = SS_CLOSED;
	s->closed_at = time(NULL);
	snprintf(s->error, sizeof(s->error), "%s", why);
	if (s->pfd >= 0)
		ev_fd_del(s->t->loop, s->pfd);
	s->pfd = -1;
	close_fd(s, &s->ctl_fd);
	close_fd(s, &s->out_fd[0]);
	close_fd(s, &s->out_fd[1]);
	sproc_free(s->proc); /* its PID namespace: the shell and every job */
	s->proc = NULL;
	if (s->watching)
		sbx_watch_del(s->sb, &s->watch);
	s->watching = false;
	s->sb = NULL;
	free(s->wbuf.data);
	s->wbuf = (struct xbuf){ 0 };
	s->woff = 0;
}

/* --- forgotten sessions --------------------------------------------------------
 *
 * A client racing a close (its own DELETE, or another's) must be able
 * to tell "closed" from "never existed": each sandbox keeps the ids of
 * its last SESSION_GONE_MAX forgotten sessions, with why they closed,
 * for as long as it exists.  The records live here, not on the sandbox:
 * one whose sandbox is gone is dropped when found, and all of them when
 * a new one is made, so there are never more than sandboxes plus one. */

struct gone_entry {
	char id[40];
	char why[96];
};

struct session_gone {
	struct session_gone *next;
	char sandbox_id[80];
	struct gone_entry *v;  /* up to SESSION_GONE_MAX, a ring once full */
	unsigned n, cap, head; /* head: the oldest, once full */
};

static void gone_free(struct session_gone *g)
{
	free(g->v);
	free(g);
}

/* Drop the records of sandboxes that no longer exist. */
static void gone_prune(struct exe_table *t)
{
	for (struct session_gone **pp = &t->gone, *g; (g = *pp);) {
		if (sbx_get(t->sandboxes, g->sandbox_id)) {
			pp = &g->next;
			continue;
		}
		*pp = g->next;
		gone_free(g);
	}
}

/* Remember that s, closed for why, is forgotten.  Without memory it is
 * not remembered: an exec on it is then "no such session". */
static void gone_add(struct session *s, const char *why)
{
	struct exe_table *t = s->t;
	struct session_gone *g = t->gone;
	if (!sbx_get(t->sandboxes, s->sandbox_id))
		return; /* nothing to remember it by */
	while (g && strcmp(g->sandbox_id, s->sandbox_id) != 0)
		g = g->next;
	if (!g) {
		gone_prune(t);
		g = calloc(1, sizeof(*g));
		if (!g)
			return;
		snprintf(g->sandbox_id, sizeof(g->sandbox_id), "%s", s->sandbox_id);
		g->next = t->gone;
		t->gone = g;
	}
	struct gone_entry *e;
	if (g->n < g->cap) {
		e = &g->v[g->n++];
	} else if (g->cap < SESSION_GONE_MAX) {
		unsigned cap = g->cap ? g->cap * 2 : 8;
		if (cap > SESSION_GONE_MAX)
			cap = SESSION_GONE_MAX;
		struct gone_entry *v = realloc(g->v, cap * sizeof(*v));
		if (!v)
			return;
		g->v = v;
		g->cap = cap;
		e = &g->v[g->n++];
	} else {
		/* full: the oldest is forgotten (then "no such session") */
		e = &g->v[g->head];
		g->head = (g->head + 1) % SESSION_GONE_MAX;
	}
	snprintf(e->id, sizeof(e->id), "%s", s->id);
	snprintf(e->why, sizeof(e->why), "%s", why);
}

const char *session_gone_why(struct exe_table *t, const char *id)
{
	for (struct session_gone **pp = &t->gone, *g; (g = *pp); pp = &g->next) {
		for (unsigned i = 0; i < g->n; i++) {
			if (strcmp(g->v[i].id, id) != 0)
				continue;
			if (sbx_get(t->sandboxes, g->sandbox_id))
				return g->v[i].why;
			*pp = g->next; /* its sandbox is gone: so is the record */
			gone_free(g);
			return NULL;
		}
	}
	return NULL;
}

static void unlink_session(struct session *s)
{
	struct exe_table *t = s->t;
	if (s->prev)
		s->prev->next = s->next;
	else
		t->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	t->nsessions--;
	s->prev = NULL;
	s->next = t->dead_sessions;
	t->dead_sessions = s;
	s->dead = true;
	exe_table_reap_later(t);
}

void session_delete(struct session *s)
{
	/* one that never answered its create was never anyone's to know */
	bool known = s->state != SS_BOOT;
	session_close(s, "deleted by request");
	if (known)
		gone_add(s, s->error);
	unlink_session(s);
}

void session_reap(struct exe_table *t)
{
	while (t->dead_sessions) {
		struct session *s = t->dead_sessions;
		t->dead_sessions = s->next;
		free(s);
	}
}

void sessions_end_all(struct exe_table *t)
{
	while (t->sessions) {
		session_close(t->sessions, "agentfense serve stopped");
		unlink_session(t->sessions);
	}
	while (t->gone) {
		struct session_gone *g = t->gone;
		t->gone = g->next;
		gone_free(g);
	}
}

/* --- output and status --------------------------------------------------------- */

/* Read what a pipe has, for the exec in progress (or nobody: output of
 * background jobs between execs is dropped).  Returns false if s closed
 * or its exec ended meanwhile. */
static bool drain(struct session *s, int which, int max_reads)
{
	char buf[READ_CHUNK];
	for (int i = 0; i < max_reads && s->out_fd[which] >= 0; i++) {
		ssize_t n = read(s->out_fd[which], buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			close_fd(s, &s->out_fd[which]);
			break;
		}
		if (s->busy && s->state == SS_RUNNING && s->out.conn &&
		    xout_data(&s->out, which, buf, (size_t)n) < 0)
			return false;
	}
	return true;
}

static void on_output(struct ev_loop *l AF_UNUSED, int fd, uint32_t events AF_UNUSED, void *arg)
{
	struct session *s = arg;
	drain(s, fd == s->out_fd[0] ? 0 : 1, 8);
}

static void send_created(struct session *s)
{
	struct http_conn *c = s->out.conn;
	xout_detach(&s->out);
	exec_done(s);
	if (c)
		http_respond_json(c, 201, session_json(s));
}

/* The status of exec seq arrived. */
static void exec_status(struct session *s, int status)
{
	if (s->state == SS_BOOT) {
		s->state = SS_IDLE;
		send_created(s);
		return;
	}
	s->state = SS_IDLE;
	/* the command has ended: its output is in the pipes already */
	for (int w = 0; w < 2; w++) {
		s->state = SS_RUNNING;
		bool ok = drain(s, w, 64);
		s->state = SS_IDLE;
		if (!ok || s->dead)
			return;
	}
	struct xend e = { .exit_code = status, .timed_out = s->timed_out };
	if (s->timed_out)
		e.exit_code = 124;
	xout_finish(&s->out, &e);
	exec_done(s);
}

static void on_ctl(struct ev_loop *l AF_UNUSED, int fd AF_UNUSED, uint32_t events, void *arg)
{
	struct session *s = arg;
	if (events & EPOLLOUT) {
		while (s->woff < s->wbuf.len) {
			ssize_t n = send(s->ctl_fd, s->wbuf.data + s->woff, s->wbuf.len - s->woff,
					 MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN)
				break;
			if (n < 0) {
				/* the shell is gone (its end says why): what it
				 * would have read goes too */
				s->woff = s->wbuf.len;
				break;
			}
			s->woff += (size_t)n;
		}
		ctl_events(s);
	}
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	for (;;) {
		ssize_t n = recv(s->ctl_fd, s->rbuf + s->rlen, sizeof(s->rbuf) - 1 - s->rlen,
				 MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* the shell is gone: its end says why; a hang-up
			 * would keep waking us until then */
			if (n == 0 || errno != EAGAIN)
				ev_fd_del(s->t->loop, s->ctl_fd);
			return;
		}
		s->rlen += (size_t)n;
		char *nl;
		while ((nl = memchr(s->rbuf, '\n', s->rlen))) {
			*nl = '\0';
			int status;
			unsigned long long seq;
			char extra;
			bool ok = sscanf(s->rbuf, "%d %llu%c", &status, &seq, &extra) == 2;
			size_t used = (size_t)(nl + 1 - s->rbuf);
			memmove(s->rbuf, nl + 1, s->rlen - used);
			s->rlen -= used;
			if (ok && seq == s->seq && s->busy &&
			    (s->state == SS_RUNNING || s->state == SS_BOOT)) {
				exec_status(s, status);
				if (s->dead || s->state == SS_CLOSED)
					return;
			}
		}
		if (s->rlen == sizeof(s->rbuf) - 1)
			s->rlen = 0; /* not ours: only the shell writes here */
	}
}

static void shell_ended(struct session *s, const struct sproc_result *res, const struct af_err *e)
{
	char why[256];
	if (res->exec_errno)
		snprintf(why, sizeof(why), "%.200s", e->msg[0] ? e->msg : strerror(res->exec_errno));
	else if (res->term_signal)
		snprintf(why, sizeof(why), "its shell was killed by signal %d", res->term_signal);
	else
		snprintf(why, sizeof(why), "its shell exited %d", res->exit_code);
	if (s->busy && s->state == SS_RUNNING) {
		/* the command ended the shell (exit 3): that is its status */
		for (int w = 0; w < 2; w++)
			if (!drain(s, w, 64) || s->dead)
				return;
		struct xend x = { .exit_code = res->exit_code, .term_signal = res->term_signal,
				  .timed_out = s->timed_out };
		if (s->timed_out)
			x.exit_code = 124;
		xout_finish(&s->out, &x);
		exec_done(s);
	}
	session_close(s, why);
}

static void on_proc(struct ev_loop *l AF_UNUSED, int fd AF_UNUSED, uint32_t events AF_UNUSED,
		    void *arg)
{
	struct session *s = arg;
	struct sproc_result res = { 0 };
	struct af_err e = { 0 };
	int r = sproc_step(s->proc, &res, &e);
	if (r == 0)
		return;
	if (r < 0) {
		session_close(s, e.msg[0] ? e.msg : strerror(-r));
		return;
	}
	shell_ended(s, &res, &e);
}

/* --- one exec ------------------------------------------------------------------- */

static void on_grace(struct ev_loop *l AF_UNUSED, void *arg)
{
	struct session *s = arg;
	s->grace = 0;
	if (!s->busy)
		return;
	/* what is buffered is the command's: give it with the result */
	if (s->state == SS_RUNNING)
		for (int w = 0; w < 2; w++)
			if (!drain(s, w, 64) || s->dead)
				return;
	struct xend x = { .exit_code = 124, .timed_out = true };
	xout_finish(&s->out, &x);
	exec_done(s);
	char why[128];
	snprintf(why, sizeof(why), "killed: its command did not stop within %gs of being interrupted",
		 SESSION_GRACE_MS / 1000.0);
	session_close(s, why);
}

/* Interrupt the command in progress (timeout, or its client left). */
static void interrupt(struct session *s)
{
	if (s->state == SS_RUNNING && s->proc)
		sproc_signal(s->proc, SIGINT, true);
	if (s->grace <= 0) {
		s->grace = ev_timer_add(s->t->loop, SESSION_GRACE_MS, on_grace, s);
		if (s->grace < 0) {
			s->grace = 0;
			session_close(s, "out of memory");
		}
	}
}

static void on_timeout(struct ev_loop *l AF_UNUSED, void *arg)
{
	struct session *s = arg;
	s->timer = 0;
	if (!s->busy)
		return;
	s->timed_out = true;
	interrupt(s);
}

static void exec_gone(struct xout *o)
{
	struct session *s = container_of(o, struct session, out);
	if (s->state == SS_BOOT) {
		session_delete(s);
		return;
	}
	/* nobody waits for it any more: stop it, and keep the session busy
	 * until its status says it stopped */
	s->abandoned = true;
	interrupt(s);
}

/* Send the exec's line.  Returns 0, or -ENOMEM. */
static int send_line(struct session *s)
{
	struct xbuf b = { 0 };
	static const char head[] = RUN_FN "() { " BUSY "=1; ";
	int r = xbuf_add(&b, head, sizeof(head) - 1);
	if (r == 0 && s->rq.has_stdin)
		r = xbuf_printf(&b, "rm -f -- '%s' 2>/dev/null; ", s->stdin_path);
	if (r == 0)
		r = xbuf_add(&b, "command eval ", 13) ?: add_quoted(&b, s->rq.command) ?:
		    xbuf_printf(&b, "; " STATUS "=$?; " BUSY "=; return $" STATUS "; }; "
				RUN_FN " \"$@\" <'%s'; " STATUS "=$?; " BUSY "=; "
				"printf '%%d %%s\\n' \"$" STATUS "\" %llu >&0\n",
				s->rq.has_stdin ? s->stdin_path : "/dev/null", s->seq);
	if (r == 0)
		r = send_script(s, b.data, b.len);
	free(b.data);
	if (r == 0)
		s->state = SS_RUNNING;
	return r;
}

static void on_stdin_write(struct ev_loop *l AF_UNUSED, int fd AF_UNUSED, uint32_t ev AF_UNUSED,
			   void *arg)
{
	struct session *s = arg;
	while (s->win_off < s->rq.stdin_len) {
		ssize_t n = write(s->win_fd, s->rq.stdin_data + s->win_off,
				  s->rq.stdin_len - s->win_off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0)
			break; /* the writer is gone: its end says why */
		s->win_off += (size_t)n;
	}
	close_fd(s, &s->win_fd);
}

static void on_stdin_proc(struct ev_loop *l AF_UNUSED, int fd AF_UNUSED, uint32_t ev AF_UNUSED,
			  void *arg)
{
	struct session *s = arg;
	struct sproc_result res = { 0 };
	struct af_err e = { 0 };
	int r = sproc_step(s->wproc, &res, &e);
	if (r == 0)
		return;
	bool ok = r == 1 && !res.exec_errno && res.exit_code == 0 && s->win_fd < 0;
	int en = r < 0 ? -r : res.exec_errno ? res.exec_errno : EIO;
	stop_stdin(s);
	if (s->abandoned) {
		s->state = SS_IDLE;
		exec_done(s);
		return;
	}
	if (!ok) {
		s->state = SS_IDLE;
		xout_error(&s->out, 500, "internal", "cannot pass stdin to the session: '%s': %s",
			   s->stdin_path, e.msg[0] ? e.msg : strerror(en));
		exec_done(s);
		return;
	}
	if (send_line(s) < 0) {
		s->state = SS_IDLE;
		xout_error(&s->out, 503, "resource_exhausted", "out of memory");
		exec_done(s);
	}
}

/* Write the exec's stdin data to its file in the sandbox (SPROC_WRITE);
 * the line is sent when that is done.  Returns 0, or -errno with *err
 * filled. */
static int start_stdin(struct session *s, struct af_err *err)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return af_err_set(err, errno, "cannot make a pipe: %s", strerror(errno));
	snprintf(s->stdin_path, sizeof(s->stdin_path), "/tmp/.agentfense-stdin-%s-%llu", s->id,
		 s->seq);
	struct sproc_spec sp = {
		.op = SPROC_WRITE,
		.path = s->stdin_path,
		.mode = 0600,
		.fds = { p[0], -1, -1 },
	};
	int r = sbx_spawn(s->sb, &sp, NULL, &s->wproc, err);
	close(p[0]);
	if (r < 0) {
		close(p[1]);
		return r;
	}
	s->win_fd = p[1];
	s->win_off = 0;
	fcntl(s->win_fd, F_SETFL, O_NONBLOCK);
	s->wpfd = sproc_fd(s->wproc);
	r = ev_fd_add(s->t->loop, s->wpfd, EPOLLIN, on_stdin_proc, s);
	if (r == 0)
		r = ev_fd_add(s->t->loop, s->win_fd, EPOLLOUT, on_stdin_write, s);
	if (r < 0) {
		stop_stdin(s);
		return af_err_set(err, -r, "cannot watch the stdin writer: %s", strerror(-r));
	}
	s->state = SS_STDIN;
	return 0;
}

int session_exec(struct session *s, struct exec_req *rq, struct http_conn *conn,
		 struct xout **slot, bool stream, struct af_err *err)
{
	if (s->state == SS_CLOSED)
		return af_err_set(err, ESRCH, "session '%s' is closed: %s", s->id, s->error);
	if (s->busy)
		return af_err_set(err, EBUSY, "session '%s' is busy: one exec at a time", s->id);
	int pr = resume_output(s);
	if (pr < 0)
		return af_err_set(err, -pr, "cannot watch the session's output: %s", strerror(-pr));
	s->seq++;
	s->rq = *rq;
	memset(rq, 0, sizeof(*rq));
	memset(&s->out, 0, sizeof(s->out));
	s->out.max_output = s->rq.max_output;
	s->out.command = s->rq.command;
	s->out.gone = exec_gone;
	s->busy = true;
	int r = s->rq.has_stdin ? start_stdin(s, err) : send_line(s);
	if (r < 0) {
		if (!s->rq.has_stdin)
			af_err_set(err, -r, "out of memory");
		*rq = s->rq;
		memset(&s->rq, 0, sizeof(s->rq));
		s->out.command = NULL;
		exec_done(s);
		s->state = SS_IDLE;
		return r;
	}
	if (s->rq.timeout_ms) {
		s->timer = ev_timer_add(s->t->loop, s->rq.timeout_ms, on_timeout, s);
		if (s->timer < 0)
			s->timer = 0; /* without memory for a timer, no timeout */
	}
	xout_begin(&s->out, conn, slot, stream);
	return 0;
}

/* --- create, get, list ------------------------------------------------------------- */

static void sandbox_ending(struct sbx_watch *w)
{
	struct session *s = container_of(w, struct session, watch);
	sbx_watch_del(s->sb, &s->watch);
	s->watching = false;
	session_close(s, "its sandbox stopped");
}

/* Room for one more: the oldest closed session goes.  Returns false if
 * every one is active. */
static bool make_room(struct exe_table *t)
{
	if (t->nsessions < SESSION_MAX)
		return true;
	struct session *oldest = NULL;
	for (struct session *s = t->sessions; s; s = s->next)
		if (s->state == SS_CLOSED)
			oldest = s;
	if (!oldest)
		return false;
	gone_add(oldest, oldest->error);
	unlink_session(oldest);
	return true;
}

int session_create(struct exe_table *t, struct sbx *sb, const char *shell, char **env,
		   const char *workdir, bool workdir_beneath, struct http_conn *conn,
		   struct xout **slot, struct af_err *err)
{
	if (!make_room(t))
		return af_err_set(err, EMFILE, "too many sessions (%u)", SESSION_MAX);
	if (!shell)
		shell = "/bin/sh";
	if (strlen(shell) >= sizeof(((struct session *)0)->shell))
		return af_err_set(err, EINVAL, "the shell's path is too long");
	struct session *s = calloc(1, sizeof(*s));
	if (!s)
		return af_err_set(err, ENOMEM, "out of memory");
	s->t = t;
	s->sb = sb;
	s->pfd = s->ctl_fd = s->out_fd[0] = s->out_fd[1] = s->wpfd = s->win_fd = -1;
	snprintf(s->shell, sizeof(s->shell), "%s", shell);
	snprintf(s->sandbox_id, sizeof(s->sandbox_id), "%s", sbx_id(sb));
	s->created = time(NULL);
	unsigned char rnd[16];
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		free(s);
		return af_err_set(err, EIO, "cannot get random bytes for an id");
	}
	strcpy(s->id, "ss_");
	for (int i = 0; i < 16; i++)
		sprintf(s->id + 3 + 2 * i, "%02x", rnd[i]);

	int sv[2] = { -1, -1 }, po[2] = { -1, -1 }, pe[2] = { -1, -1 };
	int r = 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
	    pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0)
		r = -errno;
	char *argv[] = { s->shell, NULL };
	struct sproc_spec sp = {
		.op = SPROC_EXEC,
		.argv = argv,
		.workdir = workdir,
		.workdir_beneath = workdir_beneath,
		.fds = { sv[1], po[1], pe[1] },
		/* non-dumpable: no command can reach the shell's socket,
		 * memory or the lines it is sent */
		.sealed = true,
	};
	if (r < 0)
		af_err_set(err, -r, "cannot make the shell's pipes: %s", strerror(-r));
	else
		r = sbx_spawn(sb, &sp, env, &s->proc, err);
	if (sv[1] >= 0)
		close(sv[1]);
	if (po[1] >= 0)
		close(po[1]);
	if (pe[1] >= 0)
		close(pe[1]);
	s->ctl_fd = sv[0];
	s->out_fd[0] = po[0];
	s->out_fd[1] = pe[0];
	if (r < 0) {
		for (int i = 0; i < 2; i++)
			if (s->out_fd[i] >= 0)
				close(s->out_fd[i]);
		if (s->ctl_fd >= 0)
			close(s->ctl_fd);
		free(s);
		return r;
	}
	/* in the table from here on: session_close undoes the rest */
	s->next = t->sessions;
	if (t->sessions)
		t->sessions->prev = s;
	t->sessions = s;
	t->nsessions++;
	s->watch.ending = sandbox_ending;
	sbx_watch_add(sb, &s->watch);
	s->watching = true;
	s->state = SS_BOOT;
	s->busy = true;
	s->out.gone = exec_gone;
	for (int i = 0; i < 2; i++)
		fcntl(s->out_fd[i], F_SETFL, O_NONBLOCK);
	fcntl(s->ctl_fd, F_SETFL, O_NONBLOCK);
	s->pfd = sproc_fd(s->proc);
	r = ev_fd_add(t->loop, s->pfd, EPOLLIN, on_proc, s);
	for (int i = 0; i < 2 && r == 0; i++)
		r = ev_fd_add(t->loop, s->out_fd[i], EPOLLIN, on_output, s);
	if (r == 0)
		r = ev_fd_add(t->loop, s->ctl_fd, EPOLLIN, on_ctl, s);
	/* SIGINT interrupts a command (its function returns), never the
	 * shell; bash expands aliases only when asked */
	static const char boot[] = "trap '[ -n \"${" BUSY "-}\" ] && { " BUSY "=; return 130; }' INT; "
				   "shopt -s expand_aliases 2>/dev/null; printf '%d %d\\n' 0 0 >&0\n";
	if (r == 0)
		r = send_script(s, boot, sizeof(boot) - 1);
	if (r < 0) {
		af_err_set(err, -r, "cannot watch the shell: %s", strerror(-r));
		s->busy = false;
		session_delete(s);
		return r;
	}
	xout_begin(&s->out, conn, slot, false);
	return 0;
}

struct session *session_get(struct exe_table *t, const char *id)
{
	for (struct session *s = t->sessions; s; s = s->next)
		if (strcmp(s->id, id) == 0 && s->state != SS_BOOT)
			return s;
	return NULL;
}

cJSON *session_json(const struct session *s)
{
	char created[32], closed[32];
	rfc3339(s->created, created, sizeof(created));
	cJSON *j = cJSON_CreateObject();
	bool ok = j && cJSON_AddStringToObject(j, "id", s->id) &&
		  cJSON_AddStringToObject(j, "sandbox_id", s->sandbox_id) &&
		  cJSON_AddStringToObject(j, "status", s->state == SS_CLOSED ? "closed" : "active") &&
		  cJSON_AddStringToObject(j, "shell", s->shell) &&
		  cJSON_AddStringToObject(j, "created_at", created);
	if (ok && s->state == SS_CLOSED) {
		rfc3339(s->closed_at, closed, sizeof(closed));
		ok = cJSON_AddStringToObject(j, "closed_at", closed) &&
		     cJSON_AddStringToObject(j, "error", s->error);
	} else if (ok) {
		ok = cJSON_AddNullToObject(j, "closed_at");
	}
	if (!ok) {
		cJSON_Delete(j);
		return NULL;
	}
	return j;
}

cJSON *session_list(struct exe_table *t, const char *sandbox_id)
{
	cJSON *a = cJSON_CreateArray();
	for (struct session *s = t->sessions; a && s; s = s->next) {
		if (s->state == SS_BOOT || strcmp(s->sandbox_id, sandbox_id) != 0)
			continue;
		cJSON *j = session_json(s);
		if (!j || !cJSON_AddItemToArray(a, j)) {
			cJSON_Delete(j);
			cJSON_Delete(a);
			return NULL;
		}
	}
	return a;
}
