/* loop.c - the event loop behind serve (see loop.h).
 *
 * fd handlers live in a table indexed by fd; timers in a small array
 * scanned linearly (serve keeps a few per client and caps its clients,
 * so a heap would not pay for itself). */
#include "serve/loop.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

struct fd_slot {
	ev_fd_fn fn;
	void *arg;
};

struct timer {
	int64_t id;
	uint64_t when;
	ev_timer_fn fn;
	void *arg;
};

struct ev_loop {
	int epfd;
	struct fd_slot *fds;
	size_t nfds;
	struct timer *timers;
	size_t ntimers, timers_cap;
	int64_t next_id;
	int sigfd;
	ev_signal_fn sig_fn;
	void *sig_arg;
	bool stop;
};

uint64_t ev_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct ev_loop *ev_loop_new(void)
{
	struct ev_loop *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		int e = errno;
		free(l);
		errno = e;
		return NULL;
	}
	l->sigfd = -1;
	l->next_id = 1;
	return l;
}

void ev_loop_free(struct ev_loop *l)
{
	if (!l)
		return;
	close(l->epfd);
	if (l->sigfd >= 0)
		close(l->sigfd);
	free(l->fds);
	free(l->timers);
	free(l);
}

int ev_fd_add(struct ev_loop *l, int fd, uint32_t events, ev_fd_fn fn, void *arg)
{
	if (fd < 0)
		return -EBADF;
	if ((size_t)fd >= l->nfds) {
		size_t n = (size_t)fd * 2 + 16;
		struct fd_slot *s = realloc(l->fds, n * sizeof(*s));
		if (!s)
			return -ENOMEM;
		memset(s + l->nfds, 0, (n - l->nfds) * sizeof(*s));
		l->fds = s;
		l->nfds = n;
	}
	struct epoll_event ev = { .events = events, .data.fd = fd };
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	l->fds[fd] = (struct fd_slot){ fn, arg };
	return 0;
}

int ev_fd_mod(struct ev_loop *l, int fd, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.fd = fd };
	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

void ev_fd_del(struct ev_loop *l, int fd)
{
	if (fd < 0 || (size_t)fd >= l->nfds)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	l->fds[fd] = (struct fd_slot){ 0 };
}

int64_t ev_timer_add(struct ev_loop *l, uint64_t ms, ev_timer_fn fn, void *arg)
{
	if (l->ntimers == l->timers_cap) {
		size_t n = l->timers_cap * 2 + 16;
		struct timer *t = realloc(l->timers, n * sizeof(*t));
		if (!t)
			return -ENOMEM;
		l->timers = t;
		l->timers_cap = n;
	}
	int64_t id = l->next_id++;
	l->timers[l->ntimers++] = (struct timer){ id, ev_now_ms() + ms, fn, arg };
	return id;
}

void ev_timer_del(struct ev_loop *l, int64_t id)
{
	for (size_t i = 0; i < l->ntimers; i++)
		if (l->timers[i].id == id) {
			l->timers[i] = l->timers[--l->ntimers];
			return;
		}
}

static void on_signal(struct ev_loop *l, int fd, uint32_t events AF_UNUSED, void *arg AF_UNUSED)
{
	struct signalfd_siginfo si;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		l->sig_fn(l, (int)si.ssi_signo, l->sig_arg);
}

int ev_signal_add(struct ev_loop *l, const sigset_t *set, ev_signal_fn fn, void *arg)
{
	if (l->sigfd >= 0)
		return -EBUSY;
	int fd = signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = ev_fd_add(l, fd, EPOLLIN, on_signal, NULL);
	if (r < 0) {
		close(fd);
		return r;
	}
	l->sigfd = fd;
	l->sig_fn = fn;
	l->sig_arg = arg;
	return 0;
}

void ev_loop_stop(struct ev_loop *l)
{
	l->stop = true;
}

/* Run the timers that are due; each is removed before it runs, so it
 * may add or delete timers. */
static void run_timers(struct ev_loop *l)
{
	uint64_t now = ev_now_ms();
	for (size_t i = 0; i < l->ntimers && !l->stop;) {
		if (l->timers[i].when > now) {
			i++;
			continue;
		}
		struct timer t = l->timers[i];
		l->timers[i] = l->timers[--l->ntimers];
		t.fn(l, t.arg);
		i = 0; /* the array may have changed under us */
	}
}

int ev_loop_run(struct ev_loop *l)
{
	struct epoll_event evs[64];

	l->stop = false;
	while (!l->stop) {
		int timeout = -1;
		uint64_t now = ev_now_ms();
		for (size_t i = 0; i < l->ntimers; i++) {
			uint64_t d = l->timers[i].when > now ? l->timers[i].when - now : 0;
			if (timeout < 0 || d < (uint64_t)timeout)
				timeout = d > 3600000 ? 3600000 : (int)d;
		}
		int n = epoll_wait(l->epfd, evs, (int)ARRAY_SIZE(evs), timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (int i = 0; i < n && !l->stop; i++) {
			int fd = evs[i].data.fd;
			/* an earlier handler of this batch may have removed it */
			if ((size_t)fd >= l->nfds || !l->fds[fd].fn)
				continue;
			l->fds[fd].fn(l, fd, evs[i].events, l->fds[fd].arg);
		}
		run_timers(l);
	}
	return 0;
}
