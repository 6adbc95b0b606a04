/* view_loop.c - the view's request loop: one reader that polls briefly
 * before it sleeps, and a standby that takes over from a slow request.
 *
 * A FUSE round trip costs the work of the request plus two wake-ups: the
 * server's when the request is queued, the caller's when the reply
 * lands.  On an idle CPU, and above all in a virtual machine where an
 * idle virtual CPU is halted in the hypervisor, a wake-up costs tens of
 * microseconds: more than most requests take to serve.  Loads that send
 * requests back to back (untar, cp -a, rm -rf, a cold grep) pay it on
 * every request.  So:
 *
 * - The thread that reads the device (the leader) serves what it reads
 *   itself and reads again: no hand-over to another thread, so no
 *   wake-up of one, on the common path.
 * - While requests come in a burst it first polls the device without
 *   blocking, for about what a wake-up costs, and only then sleeps in
 *   poll().  Spinning at most as long as blocking would have cost bounds
 *   the waste, and a wait that ran out ends the burst.
 * - A request must not hold up the others when it is slow (a copy-up, a
 *   read from a cold disk): serving (re)arms a timer, and a standby
 *   thread sleeping on it becomes the leader when it fires and nobody
 *   leads.  Arming a timer wakes nobody; a libfuse-style loop instead
 *   wakes a thread per request.
 *
 * Every other thread sleeps on a condition variable, so a request never
 * wakes more than one thread.  At most max_threads run; the device fd is
 * non-blocking (O_NONBLOCK on the file description, which only the loop
 * reads).  view_loop_stop() wakes every sleeper through an eventfd. */
#include "view/view_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

/* What spinning may cost per wait when nothing is configured: about one
 * wake-up of an idle virtual CPU (30-60 us measured on a 2-core VM). */
#define DEFAULT_SPIN_NS 50000
/* A wait shorter than this after a sleep means requests come in a burst
 * again: spin from the next wait on.  It allows for the wake-up the
 * sleep itself cost. */
#define HOT_FACTOR 4
/* A request served for longer than this lets the standby lead. */
#define SLOW_NS 1000000

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Let the standby lead SLOW_NS from now unless somebody does. */
static void arm_timer(struct view_loop *l)
{
	struct itimerspec it = { .it_value = { .tv_sec = SLOW_NS / 1000000000,
					       .tv_nsec = SLOW_NS % 1000000000 } };
	/* cannot fail with a valid fd and value; a lost timer only costs
	 * concurrency */
	(void)timerfd_settime(l->timer_fd, 0, &it, NULL);
}

/* Wait for and read the next request into *buf as the leader.  Returns
 * its size (> 0), 0 when the connection ended or the loop is stopping,
 * or -errno. */
static int lead_receive(struct view *v, struct fuse_buf *buf)
{
	struct view_loop *l = &v->loop;
	int fd = fuse_session_fd(v->se);
	uint64_t start = now_ns(), deadline = l->hot ? start + l->spin_ns : start;
	for (;;) {
		if (fuse_session_exited(v->se) || atomic_load(&l->stopping))
			return 0;
		int r = fuse_session_receive_buf(v->se, buf);
		if (r > 0) {
			if (!l->hot && l->spin_ns && now_ns() - start < HOT_FACTOR * l->spin_ns)
				l->hot = true;
			return r;
		}
		if (r == 0)
			return 0; /* the connection is gone */
		if (r != -EAGAIN && r != -EINTR)
			return r;
		if (r == -EINTR || now_ns() < deadline)
			continue;
		/* nothing within the budget: the burst is over, sleep */
		l->hot = false;
		deadline = 0;
		struct pollfd p[2] = { { .fd = fd, .events = POLLIN },
				       { .fd = l->stop_fd, .events = POLLIN } };
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			return -errno;
	}
}

static void *standby_main(void *arg);

/* Under l->lock: have a standby thread, waking an idle one or starting
 * one (up to max_threads).  A thread that cannot be started only costs
 * concurrency. */
static void want_standby(struct view *v)
{
	struct view_loop *l = &v->loop;
	if (l->standby || l->done || atomic_load(&l->stopping))
		return;
	if (l->idle > 0) {
		pthread_cond_signal(&l->cond);
		return;
	}
	if (l->threads >= v->max_threads)
		return; /* tids holds max_threads - 1 started threads */
	/* signals stay blocked: the new thread inherits the mask
	 * view_start() set for the loop */
	if (pthread_create(&l->tids[l->threads - 1], NULL, standby_main, v) == 0) {
		l->threads++;
		l->standby = true;
	}
}

/* Under l->lock, as the standby: sleep until the timer fires while
 * nobody leads.  Returns true when this thread is to lead, false when
 * the loop ends. */
static bool stand_by(struct view *v)
{
	struct view_loop *l = &v->loop;
	while (!l->done) {
		pthread_mutex_unlock(&l->lock);
		struct pollfd p[2] = { { .fd = l->timer_fd, .events = POLLIN },
				       { .fd = l->stop_fd, .events = POLLIN } };
		uint64_t n = 0;
		if (poll(p, 2, -1) > 0 && (p[0].revents & POLLIN))
			(void)!read(l->timer_fd, &n, sizeof(n));
		pthread_mutex_lock(&l->lock);
		if (atomic_load(&l->stopping))
			return false;
		if (n > 0 && !l->leader && !l->done)
			return true;
	}
	return false;
}

/* One loop thread, starting as the standby or not; called and returns
 * with l->lock held. */
static void serve(struct view *v, bool standby, struct fuse_buf *buf)
{
	struct view_loop *l = &v->loop;
	for (;;) {
		if (standby) {
			bool lead = stand_by(v);
			l->standby = false;
			if (!lead)
				return;
			want_standby(v); /* somebody else watches the timer now */
		} else {
			while (l->leader && l->standby && !l->done) {
				l->idle++;
				pthread_cond_wait(&l->cond, &l->lock);
				l->idle--;
			}
			if (l->done)
				return;
			if (l->leader) {
				l->standby = standby = true;
				continue;
			}
		}
		standby = false;
		l->leader = true;
		/* the timer stays armed: while requests come, each one
		 * pushes it back; after the last it fires once and finds a
		 * leader, which costs the standby one wake-up instead of a
		 * system call on every request */
		pthread_mutex_unlock(&l->lock);
		int r = lead_receive(v, buf);
		pthread_mutex_lock(&l->lock);
		l->leader = false;
		if (r <= 0) {
			/* the end for every thread: the connection is gone,
			 * the loop was stopped, or the device failed */
			if (r < 0 && !l->err)
				l->err = r;
			l->done = true;
			fuse_session_exit(v->se);
			pthread_cond_broadcast(&l->cond);
			view_loop_stop(v); /* wakes the standby */
			return;
		}
		arm_timer(l);
		want_standby(v);
		pthread_mutex_unlock(&l->lock);
		atomic_fetch_add(&l->busy, 1);
		fuse_session_process_buf(v->se, buf);
		atomic_store(&l->answered_ns, now_ns());
		atomic_fetch_sub(&l->busy, 1);
		pthread_mutex_lock(&l->lock);
	}
}

static void *standby_main(void *arg)
{
	struct view *v = arg;
	struct fuse_buf buf = { 0 };
	pthread_mutex_lock(&v->loop.lock);
	serve(v, true, &buf);
	pthread_mutex_unlock(&v->loop.lock);
	free(buf.mem);
	return NULL;
}

int view_loop_init(struct view *v, int spin_us)
{
	struct view_loop *l = &v->loop;
	l->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->stop_fd < 0)
		return -errno;
	l->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (l->timer_fd < 0) {
		int e = errno;
		close(l->stop_fd);
		l->stop_fd = -1;
		return -e;
	}
	l->tids = xcalloc(v->max_threads, sizeof(*l->tids));
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->cond, NULL);
	l->spin_ns = spin_us < 0 ? 0 : spin_us == 0 ? DEFAULT_SPIN_NS : (uint64_t)spin_us * 1000;
	l->hot = l->spin_ns > 0;
	return 0;
}

int view_loop_run(struct view *v)
{
	struct view_loop *l = &v->loop;
	int fd = fuse_session_fd(v->se);
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	struct fuse_buf buf = { 0 };
	pthread_mutex_lock(&l->lock);
	l->threads = 1;
	/* the standby now, not on the way of the first request */
	want_standby(v);
	serve(v, false, &buf);
	/* this thread may leave first (as the standby, on a stop): no
	 * thread may be started after the count below is taken */
	l->done = true;
	pthread_cond_broadcast(&l->cond);
	unsigned started = l->threads - 1;
	int r = l->err;
	pthread_mutex_unlock(&l->lock);
	free(buf.mem);
	/* joined, not detached: libfuse frees a thread's splice pipe when
	 * the thread ends, which must happen before the session goes */
	for (unsigned i = 0; i < started; i++)
		pthread_join(l->tids[i], NULL);
	return r;
}

void view_loop_stop(struct view *v)
{
	struct view_loop *l = &v->loop;
	atomic_store(&l->stopping, true);
	uint64_t one = 1;
	(void)!write(l->stop_fd, &one, sizeof(one));
}

bool view_stuck(struct view *v, double secs)
{
	struct view_loop *l = &v->loop;
	/* busy first, then the last answer, then the time: a request
	 * answered in between counts as an answer, never as a future one */
	bool busy = atomic_load(&l->busy) > 0;
	uint64_t answered = atomic_load(&l->answered_ns);
	uint64_t now = now_ns();
	return busy && now - answered >= (uint64_t)(secs * 1e9);
}

void view_loop_destroy(struct view *v)
{
	struct view_loop *l = &v->loop;
	if (l->stop_fd < 0)
		return;
	close(l->stop_fd);
	close(l->timer_fd);
	l->stop_fd = l->timer_fd = -1;
	pthread_mutex_destroy(&l->lock);
	pthread_cond_destroy(&l->cond);
	free(l->tids);
}
