/* lifecycle.c - one sandboxed command from start to end (lifecycle.h).
 *
 * The order matters: the sandbox goes before the view (its processes
 * are the view's clients), the view before the delta (its threads write
 * there), the limits last (their cgroups are empty once the sandbox is
 * gone).  A view whose threads are blocked is never freed, and neither
 * is what they may hold. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "lifecycle/lifecycle.h"
#include "sandbox/mounts.h"
#include "view/view.h"

/* How long the view's threads may take to finish once the sandbox is
 * gone (the connection ended with it) before they count as blocked. */
#define VIEW_STOP_GRACE 2.0

struct lifecycle {
	struct lc_config cfg;
	struct limits *limits;
	struct sandbox *sb;
	struct delta *delta;
	struct view *view;
	int fuse_fd;
	bool stopped;
	bool stuck; /* the view's threads are blocked: view and delta left alone */
	bool finished; /* lc_finish() gave the delta its fate */
	struct lc_end end;
};

/* True if path equals dir or lies below it (both canonical). */
static bool path_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	if (n == 1 && dir[0] == '/')
		return true;
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

char *lc_canonical(const char *path)
{
	autofree char *head = xstrdup(path);
	char *slash;
	while ((slash = strrchr(head, '/')) != NULL) {
		char *real = realpath(*head ? head : "/", NULL);
		if (real) {
			char *r = xasprintf("%s%s", strcmp(real, "/") == 0 ? "" : real,
					    path + strlen(head));
			free(real);
			return r;
		}
		*slash = '\0';
	}
	return xstrdup(path);
}

int lc_project_open(const char *dir, struct lc_project *p, struct af_err *err)
{
	*p = (struct lc_project){ .fd = -1 };
	autoclose int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return af_err_usage(err, errno, "cannot use '%s' as project: %s", dir,
				    strerror(errno));
	autofree char *real = realpath(dir, NULL);
	if (!real)
		return af_err_usage(err, errno, "cannot use '%s' as project: %s", dir,
				    strerror(errno));
	int r = sandbox_check_project(real, err);
	if (r < 0)
		return r;

	autofree char *state = delta_state_dir(err);
	if (!state)
		return -(err->errnum ? err->errnum : ENOENT);
	autofree char *state_real = lc_canonical(state);
	char sys[PATH_MAX];
	if (sandbox_shows_path(state_real, sys, sizeof(sys))) {
		r = af_err_usage(err, EINVAL, "cannot use '%s' as state directory: it is inside "
			       "'%s', which every sandbox shows read-only", state_real, sys);
		af_err_hint(err, "point XDG_STATE_HOME somewhere else");
		return r;
	}
	if (path_under(real, state_real) || path_under(state_real, real))
		return af_err_usage(err, EINVAL, "cannot use '%s' as project: it overlaps "
				    "agentfense's state directory '%s'", dir, state_real);
	p->fd = fd;
	fd = -1; /* owned by p now */
	p->real = steal_pointer(&real);
	p->state_real = steal_pointer(&state_real);
	return 0;
}

void lc_project_close(struct lc_project *p)
{
	if (p->fd >= 0)
		close(p->fd);
	free(p->real);
	free(p->state_real);
	*p = (struct lc_project){ .fd = -1 };
}

/* True if directory path has no entry (or cannot be read: the sandbox
 * then fails to use it and says why). */
static bool root_is_empty(const char *path)
{
	DIR *d = opendir(path);
	if (!d)
		return false;
	struct dirent *de;
	bool empty = true;
	while (empty && (de = readdir(d)) != NULL)
		empty = strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0;
	closedir(d);
	return empty;
}

char *lc_check_root_dir(const char *opt, const char *dir, const struct lc_project *p,
			struct af_err *err)
{
	struct stat st;
	autofree char *real = realpath(dir, NULL);
	if (!real || stat(real, &st) < 0) {
		af_err_usage(err, errno, "cannot use '%s' as %s: %s", dir, opt, strerror(errno));
		return NULL;
	}
	if (!S_ISDIR(st.st_mode)) {
		af_err_usage(err, ENOTDIR, "cannot use '%s' as %s: %s", dir, opt, strerror(ENOTDIR));
		return NULL;
	}
	if (root_is_empty(real)) {
		/* else the command is simply "not found" (127), which hides
		 * that nothing at all is there */
		af_err_usage(err, ENOENT, "cannot use '%s' as %s: it is empty: a root filesystem "
			     "needs the command to run, its interpreter and libraries", dir, opt);
		af_err_hint(err, "unpack an image into it (e.g. 'tar -xf rootfs.tar -C %s'), or "
			    "use --image OCI-DIR", dir);
		return NULL;
	}
	if (mounts_on_procfs(real)) {
		af_err_usage(err, EINVAL, "cannot use '%s' as %s: it is on the host's /proc", dir,
			     opt);
		return NULL;
	}
	if (mounts_host_overlap(real, p->real)) {
		af_err_usage(err, EINVAL, "cannot use '%s' as %s: it %s the project '%s', which "
			     "the sandbox shows only through the view", dir, opt,
			     mounts_host_under(p->real, real) ? "holds" : "is inside", p->real);
		af_err_hint(err, "unpack the root filesystem outside the project");
		return NULL;
	}
	if (mounts_host_under(p->state_real, real)) {
		af_err_usage(err, EINVAL, "cannot use '%s' as %s: it holds agentfense's state "
			     "directory '%s'", dir, opt, p->state_real);
		af_err_hint(err, "unpack the root filesystem in a directory of its own");
		return NULL;
	}
	/* the other way round too, as for binds: a run's directory there
	 * holds what another sandbox wrote */
	if (mounts_host_under(real, p->state_real)) {
		af_err_usage(err, EINVAL, "cannot use '%s' as %s: it is inside agentfense's "
			     "state directory '%s'", dir, opt, p->state_real);
		af_err_hint(err, "the state directory holds the changes of every run; unpack "
			    "the root filesystem elsewhere");
		return NULL;
	}
	return steal_pointer(&real);
}

int lc_check_dev_fuse(struct af_err *err)
{
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	int e = errno;
	int r = af_err_set(err, e, "cannot open '/dev/fuse': %s", strerror(e));
	if (e == ENOENT || e == ENODEV || e == ENXIO)
		af_err_hint(err, "the FUSE kernel module is not loaded: run 'modprobe fuse'");
	else if (e == EACCES || e == EPERM)
		af_err_hint(err, "/dev/fuse must be readable and writable by everyone (mode "
			    "0666): run 'chmod 0666 /dev/fuse'");
	return r;
}

int lc_new(const struct lc_config *cfg, struct lifecycle **out, struct af_err *err)
{
	struct lifecycle *lc = xcalloc(1, sizeof(*lc));
	lc->cfg = *cfg;
	lc->fuse_fd = -1;
	int r = limits_new(&cfg->limits, &lc->limits, err);
	if (r < 0) {
		free(lc);
		return r;
	}
	*out = lc;
	return 0;
}

const struct limits_warning *lc_limits_warnings(const struct lifecycle *lc, size_t *n)
{
	return limits_warnings(lc->limits, n);
}

/* The delta's disk budget: the configured one, else half of what is
 * free on its file system now, so a sandbox never fills the user's disk
 * by default and the limit still scales with the machine.  Returns 0 or
 * -errno with *err filled. */
static int set_disk_limit(struct delta *d, uint64_t limit, struct af_err *err)
{
	if (!limit) {
		struct statvfs sv;
		if (fstatvfs(delta_upper_fd(d), &sv) < 0)
			return af_err_set(err, errno, "cannot read the free space of '%s': %s",
					  delta_path(d), strerror(errno));
		limit = (uint64_t)sv.f_bavail * sv.f_frsize / 2;
		if (limit < (1 << 20))
			limit = 1 << 20; /* the smallest --disk-limit: ENOSPC soon */
	}
	delta_set_disk_limit(d, limit);
	return 0;
}

static bool view_stuck_cb(void *arg, double secs)
{
	return view_stuck(arg, secs);
}

static int view_abort_cb(void *arg)
{
	return view_abort(arg);
}

int lc_start(struct lifecycle *lc, struct af_err *err)
{
	struct sandbox_config sc = lc->cfg.sandbox;
	int r;

	/* default_permissions lets the kernel refuse forbidden opens from
	 * the mode bits the view shows, sparing two round trips per file;
	 * the view still checks every read and write itself.  The two go
	 * together: one without the other refuses too much or too little. */
	sc.fuse_options = "default_permissions";
	sc.limits = lc->limits;
	sc.service = lc->cfg.service;
	if (lc->sb)
		return af_err_set(err, EBUSY, "the sandbox is running already");
	/* a stopped sandbox starts again on its delta; not when the old
	 * view's threads may still hold it */
	if (lc->stuck)
		return af_err_set(err, EBUSY, "cannot start the sandbox again: its view stopped "
				  "answering");
	if (lc->finished)
		return af_err_set(err, EINVAL, "cannot start the sandbox again: its changes are "
				  "synced, kept or discarded already");
	lc->stopped = false;
	lc->end.ended = false;
	/* the child builds its root while the delta and the view are made */
	r = sandbox_begin(&sc, &lc->sb, err);
	if (r < 0)
		return r;
	if (!lc->delta) {
		autofree char *state = delta_state_dir(err);
		if (!state)
			return -(err->errnum ? err->errnum : ENOENT);
		r = delta_create(state, lc->cfg.project->real, &lc->delta, err);
		if (r < 0)
			return r;
		r = set_disk_limit(lc->delta, lc->cfg.disk_limit, err);
		if (r < 0)
			return r;
	}
	struct view_config vc = {
		.project_fd = lc->cfg.project->fd,
		.delta = lc->delta,
		.policy = lc->cfg.policy,
		.kernel_permissions = true,
		.max_fds = lc->cfg.view_fds,
		.max_threads = lc->cfg.view_threads,
		.spin_us = lc->cfg.view_spin_us,
	};
	r = view_new(&vc, &lc->view, err);
	if (r < 0)
		return r;
	r = sandbox_ready(lc->sb, &lc->fuse_fd, err);
	if (r < 0)
		return r;
	r = view_start(lc->view, steal_fd(&lc->fuse_fd), err);
	if (r < 0)
		return r;
	sandbox_set_server(lc->sb, &(struct sandbox_server){ .stuck = view_stuck_cb,
							     .abort = view_abort_cb,
							     .arg = lc->view });
	return 0;
}

struct sandbox *lc_sandbox(struct lifecycle *lc)
{
	return lc->sb;
}

int lc_exec(struct lifecycle *lc, struct af_err *err)
{
	if (!lc->sb)
		return af_err_set(err, EINVAL, "the sandbox is not running");
	int r = sandbox_exec(lc->sb, err);
	if (r < 0)
		return r;
	lc->end.ran = true;
	return 0;
}

int lc_spawn(struct lifecycle *lc, const struct sproc_spec *sp, struct sandbox_proc **out,
	     struct af_err *err)
{
	*out = NULL;
	if (!lc->sb || !lc->end.ran || lc->end.ended)
		return af_err_set(err, ESRCH, "cannot start a process: the sandbox is not running");
	return sandbox_spawn(lc->sb, sp, out, err);
}

void lc_set_result(struct lifecycle *lc, const struct sandbox_result *res)
{
	lc->end.res = *res;
	lc->end.ended = true;
}

int lc_wait(struct lifecycle *lc, double timeout, struct af_err *err)
{
	struct sandbox_result res;
	int r = sandbox_wait(lc->sb, timeout, &res, err);
	if (r < 0)
		return r;
	lc_set_result(lc, &res);
	return 0;
}

int lc_fd(const struct lifecycle *lc)
{
	return lc->sb ? sandbox_fd(lc->sb) : -1;
}

int lc_step(struct lifecycle *lc, struct af_err *err)
{
	struct sandbox_result res;
	if (lc->end.ended)
		return 1;
	int r = sandbox_step(lc->sb, &res, err);
	if (r == 1)
		lc_set_result(lc, &res);
	return r;
}

void lc_time_up(struct lifecycle *lc)
{
	struct sandbox_result res = { 0 };
	if (lc->end.ended || !lc->sb)
		return;
	sandbox_time_up(lc->sb, &res);
	lc_set_result(lc, &res);
}

void lc_stop(struct lifecycle *lc)
{
	if (lc->stopped)
		return;
	lc->stopped = true;
	/* nothing runs in the namespace after this */
	sandbox_kill(lc->sb);
	bool cut = lc->sb && sandbox_server_cut(lc->sb);
	sandbox_free(steal_pointer(&lc->sb));
	if (lc->fuse_fd >= 0)
		close(steal_fd(&lc->fuse_fd));
	if (lc->view) {
		/* The connection ended with the sandbox; threads that do not
		 * finish are blocked, and may hold the view, the delta and
		 * the policy. */
		if (cut || view_stop_within(lc->view, VIEW_STOP_GRACE) < 0) {
			lc->stuck = true;
			lc->end.view_cut = true;
		} else {
			lc->end.nodes_refused = view_nodes_refused(lc->view);
			view_free(steal_pointer(&lc->view));
		}
	}
	if (lc->delta) {
		lc->end.disk_full = delta_disk_full(lc->delta);
		lc->end.disk_limit = delta_disk_limit(lc->delta);
	}
}

const struct lc_end *lc_end(const struct lifecycle *lc)
{
	return &lc->end;
}

const char *lc_delta_path(const struct lifecycle *lc)
{
	return lc->delta ? delta_path(lc->delta) : NULL;
}

bool lc_stuck(const struct lifecycle *lc)
{
	return lc->stuck;
}

int lc_finish(struct lifecycle *lc, enum lc_changes ch, struct lc_finish *out,
	      struct af_err *err)
{
	struct delta *d = lc->delta;
	int r;

	*out = (struct lc_finish){ .fate = LC_FATE_NONE };
	lc_stop(lc);
	lc->finished = true;
	if (!d)
		return 0;
	out->delta_path = delta_path(d);
	/* What the command did is kept for the user to look at, never
	 * synced (the run did not finish as it should have), nor discarded
	 * (a thread of the view may still be writing to it). */
	if (lc->stuck) {
		out->fate = LC_FATE_UNSYNCED;
		r = delta_save(d, err);
		out->kept = r == 0;
		return r;
	}
	/* the command never ran: there is nothing to keep */
	if (!lc->end.ran)
		ch = LC_CHANGES_DISCARD;
	switch (ch) {
	case LC_CHANGES_DISCARD:
		out->fate = LC_FATE_DISCARDED;
		r = delta_remove(d, err);
		out->delta_path = NULL;
		return r;
	case LC_CHANGES_KEEP:
		out->fate = LC_FATE_KEPT;
		r = delta_save(d, err);
		out->kept = r == 0;
		return r;
	case LC_CHANGES_SYNC:
		break;
	}
	/* sync removes the delta when everything synced, else saves it */
	r = delta_sync(d, lc->cfg.project->fd, lc->cfg.policy, &out->sync, err);
	if (r < 0) {
		/* it may have failed before it could save */
		out->fate = LC_FATE_SYNC_FAILED;
		out->kept = delta_save(d, &out->save_err) == 0;
		return r;
	}
	if (out->sync.conflicts) {
		out->fate = LC_FATE_CONFLICTS;
		out->kept = true;
		return 0;
	}
	out->fate = LC_FATE_SYNCED;
	out->delta_path = NULL;
	return 0;
}

void lc_finish_free(struct lc_finish *f)
{
	sync_report_free(&f->sync);
}

void lc_free(struct lifecycle *lc)
{
	if (!lc)
		return;
	lc_stop(lc);
	limits_free(lc->limits); /* after the sandbox: its cgroups are empty */
	if (!lc->stuck)
		delta_free(lc->delta);
	free(lc);
}
