/* server.c - the process of agentfense serve (see server.h).
 *
 * One serve per socket: a lock file beside the socket is held for
 * serve's life, so two starting at once cannot both unlink and bind; a
 * socket nobody listens on (a serve killed with SIGKILL) is stale and
 * replaced. */
#include "serve/server.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "lifecycle/lifecycle.h"
#include "sandbox/sandbox.h"
#include "serve/api.h"
#include "serve/ctx.h"
#include "serve/exec.h"
#include "serve/http.h"
#include "serve/loop.h"
#include "serve/sbx.h"
#include "store/store.h"

int serve_check_dir(const char *dir, struct af_err *err)
{
	struct stat st;
	if (lstat(dir, &st) < 0)
		return af_err_set(err, errno, "cannot use socket directory '%s': %s", dir,
				  strerror(errno));
	if (!S_ISDIR(st.st_mode)) {
		af_err_set(err, ENOTDIR, "refusing socket directory '%s': not a directory", dir);
		af_err_hint(err, "remove it, or pass --socket");
		return -ENOTDIR;
	}
	if (st.st_uid != getuid()) {
		af_err_set(err, EPERM, "refusing socket directory '%s': owned by uid %u, not by you",
			   dir, (unsigned)st.st_uid);
		af_err_hint(err, "another user made it; pass --socket or set XDG_RUNTIME_DIR");
		return -EPERM;
	}
	if (st.st_mode & 077) {
		af_err_set(err, EPERM, "refusing socket directory '%s': mode %04o lets others in",
			   dir, (unsigned)(st.st_mode & 07777));
		af_err_hint(err, "run 'chmod 700 %s'", dir);
		return -EPERM;
	}
	return 0;
}

char *serve_default_socket(bool create, struct af_err *err)
{
	const char *rt = getenv("XDG_RUNTIME_DIR");
	char dir[PATH_MAX];
	if (rt && rt[0] == '/')
		snprintf(dir, sizeof(dir), "%s/agentfense", rt);
	else
		snprintf(dir, sizeof(dir), "/tmp/agentfense-%u", (unsigned)getuid());
	if (create && mkdir(dir, 0700) < 0 && errno != EEXIST) {
		af_err_set(err, errno, "cannot create socket directory '%s': %s", dir,
			   strerror(errno));
		return NULL;
	}
	if ((create || access(dir, F_OK) == 0) && serve_check_dir(dir, err) < 0)
		return NULL;
	char *p;
	if (asprintf(&p, "%s/agentfense.sock", dir) < 0) {
		af_err_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	return p;
}

/* A sandbox must not see serve's socket (its processes have the user's
 * uid, so serve would take their requests: a sandbox with the host's
 * network, any codebase) nor the data directory.  Returns 0, or -EINVAL
 * with *err filled if path lies in a directory every sandbox shows. */
static int check_unseen(const char *what, const char *path, struct af_err *err)
{
	autofree char *real = lc_canonical(path);
	char sys[PATH_MAX];
	if (!sandbox_shows_path(real, sys, sizeof(sys)))
		return 0;
	int r = af_err_usage(err, EINVAL, "cannot use '%s' as %s: it is inside '%s', which every "
			     "sandbox shows", path, what, sys);
	af_err_hint(err, "use a private directory, such as the default under $XDG_RUNTIME_DIR "
		    "or ~/.local/share");
	return r;
}

/* pid of the process listening on path, 0 if unknown; -errno if nobody
 * listens (-ECONNREFUSED: a stale socket; -ENOENT: none). */
static int probe(const char *path, struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)sa, sizeof(*sa)) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	struct ucred cr = { 0 };
	socklen_t len = sizeof(cr);
	getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len);
	close(fd);
	(void)path;
	return cr.pid > 0 ? cr.pid : 0;
}

static int in_use_msg(const char *path, int pid, struct af_err *err)
{
	if (pid > 0)
		af_err_set(err, EADDRINUSE, "another agentfense serve (pid %d) is listening on '%s'",
			   pid, path);
	else
		af_err_set(err, EADDRINUSE, "another agentfense serve is listening on '%s'", path);
	af_err_hint(err, "stop it first, or pass --socket to use another socket");
	return -EADDRINUSE;
}

/* Take the lock, remove a stale socket, bind and listen.  Returns the
 * listening fd, or -errno. */
static int open_socket(const char *path, int *lockfd, ino_t *ino, struct af_err *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return af_err_usage(err, ENAMETOOLONG, "socket path '%s' is longer than %zu bytes",
				    path, sizeof(sa.sun_path) - 1);
	memcpy(sa.sun_path, path, strlen(path) + 1);

	char lockpath[PATH_MAX];
	snprintf(lockpath, sizeof(lockpath), "%s.lock", path);
	autoclose int lk = open(lockpath, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (lk < 0)
		return af_err_set(err, errno, "cannot open lock '%s': %s", lockpath, strerror(errno));
	if (flock(lk, LOCK_EX | LOCK_NB) < 0) {
		int pid = probe(path, &sa);
		return in_use_msg(path, pid, err);
	}
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return af_err_set(err, EEXIST, "'%s' exists and is not a socket", path);
		int pid = probe(path, &sa);
		if (pid >= 0)
			return in_use_msg(path, pid, err);
		/* nobody listens: left by a serve that was killed */
		if (unlink(path) < 0 && errno != ENOENT)
			return af_err_set(err, errno, "cannot remove stale socket '%s': %s", path,
					  strerror(errno));
	}
	autoclose int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return af_err_set(err, errno, "cannot create a socket: %s", strerror(errno));
	/* 0600 from the start: no moment where others could connect */
	mode_t old = umask(0177);
	int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0)
		return af_err_set(err, errno, "cannot bind '%s': %s", path, strerror(errno));
	if (listen(fd, 128) < 0 || lstat(path, &st) < 0) {
		r = af_err_set(err, errno, "cannot listen on '%s': %s", path, strerror(errno));
		unlink(path);
		return r;
	}
	*ino = st.st_ino;
	*lockfd = steal_fd(&lk);
	return steal_fd(&fd);
}

struct serve_state {
	struct ev_loop *loop;
	unsigned idle_exit;
	int64_t idle_timer;
	bool idled;
	unsigned conns, sandboxes; /* serve idles only when both are 0 */
};

static void on_idle(struct ev_loop *l, void *arg)
{
	struct serve_state *ss = arg;
	ss->idle_timer = 0;
	ss->idled = true;
	ev_loop_stop(l);
}

static void idle_update(struct serve_state *ss)
{
	unsigned n = ss->conns + ss->sandboxes;
	if (!ss->idle_exit)
		return;
	if (n > 0 && ss->idle_timer > 0) {
		ev_timer_del(ss->loop, ss->idle_timer);
		ss->idle_timer = 0;
	} else if (n == 0 && ss->idle_timer <= 0) {
		ss->idle_timer = ev_timer_add(ss->loop, (uint64_t)ss->idle_exit * 1000, on_idle, ss);
	}
}

static void on_count(unsigned n, void *arg)
{
	struct serve_state *ss = arg;
	ss->conns = n;
	idle_update(ss);
}

/* A running sandbox keeps serve from its idle exit. */
static void on_sandbox_count(unsigned n, void *arg)
{
	struct serve_state *ss = arg;
	ss->sandboxes = n;
	idle_update(ss);
}

static bool codebase_in_use(const char *id, void *arg)
{
	return sbx_codebase_in_use(arg, id);
}

/* Sandboxes each hold some fds (the view's cache, FUSE, control
 * sockets): use the whole hard limit, as run does once its sandbox is
 * cloned. */
static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void on_signal(struct ev_loop *l, int signo AF_UNUSED, void *arg AF_UNUSED)
{
	ev_loop_stop(l);
}

int serve_run(const struct serve_opts *o, struct af_err *err)
{
	autofree char *dflt = NULL;
	const char *path = o->socket;
	if (!path) {
		dflt = serve_default_socket(true, err);
		if (!dflt)
			return -(err->errnum ? err->errnum : EINVAL);
		path = dflt;
	}
	struct store *st = NULL;
	int r = check_unseen("socket", path, err);
	if (r < 0)
		return r;
	r = store_open(&st, o->data_dir, err);
	if (r < 0)
		return r;
	r = check_unseen("data directory", store_root(st), err);
	if (r < 0) {
		store_free(st);
		return r;
	}

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	int lockfd = -1;
	ino_t ino = 0;
	struct serve_state ss = { .idle_exit = o->idle_exit };
	struct http_server *hs = NULL;
	struct serve_ctx ctx = { .store = st };
	int lfd = open_socket(path, &lockfd, &ino, err);
	if (lfd < 0) {
		store_free(st);
		return lfd;
	}
	ss.loop = ev_loop_new();
	if (!ss.loop) {
		r = af_err_set(err, errno, "cannot create the event loop: %s", strerror(errno));
		goto out;
	}
	ctx.loop = ss.loop;
	r = sbx_table_new(ss.loop, st, path, &ctx.sandboxes, err);
	if (r < 0)
		goto out;
	sbx_table_on_count(ctx.sandboxes, on_sandbox_count, &ss);
	r = exe_table_new(&ctx.execs, ss.loop, ctx.sandboxes);
	if (r < 0) {
		af_err_set(err, -r, "cannot start serving: %s", strerror(-r));
		goto out;
	}
	store_set_in_use(st, codebase_in_use, ctx.sandboxes);
	raise_nofile();
	struct http_limits lim = {
		.max_header = SERVE_MAX_HEADER,
		.max_body = SERVE_MAX_BODY,
		.max_upload = o->max_upload ? o->max_upload : SERVE_MAX_UPLOAD,
		.max_output = SERVE_MAX_OUTPUT,
		.max_conns = o->max_conns ? o->max_conns : SERVE_MAX_CONNS,
		.idle_ms = (o->client_timeout ? o->client_timeout : SERVE_CLIENT_TIMEOUT) * 1000u,
	};
	struct http_handler h = { api_on_head, api_on_request, on_count, &ctx, &ss };
	r = ev_signal_add(ss.loop, &set, on_signal, NULL);
	if (r == 0)
		r = http_server_new(&hs, ss.loop, lfd, getuid(), &lim, &h);
	if (r < 0) {
		af_err_set(err, -r, "cannot start serving: %s", strerror(-r));
		goto out;
	}
	on_count(0, &ss);
	r = ev_loop_run(ss.loop);
	if (r < 0)
		af_err_set(err, -r, "event loop failed: %s", strerror(-r));
out:
	/* execs and sessions first: their clients get an error */
	exe_table_free(ctx.execs);
	/* every sandbox stopped, its delta given its on_destroy fate */
	if (ctx.sandboxes)
		sbx_table_shutdown(ctx.sandboxes);
	http_server_free(hs);
	sbx_table_free(ctx.sandboxes);
	ev_loop_free(ss.loop);
	/* remove the socket only if it is still the one we bound */
	struct stat sst;
	if (lstat(path, &sst) == 0 && sst.st_ino == ino)
		unlink(path);
	close(lfd);
	close(lockfd);
	store_free(st);
	return r;
}
