/* loop.h - a small event loop for serve: fd events over epoll, one-shot
 * timers and signals through a signalfd, all dispatched from one thread
 * (no thread per client).  An instance touches no process-wide state:
 * blocking the signals it watches is its caller's job. */
#ifndef AF_SERVE_LOOP_H
#define AF_SERVE_LOOP_H

#include <signal.h>
#include <stdint.h>

struct ev_loop;

/* fd became ready; events are EPOLLIN/EPOLLOUT/EPOLLERR/EPOLLHUP bits. */
typedef void (*ev_fd_fn)(struct ev_loop *l, int fd, uint32_t events, void *arg);
typedef void (*ev_timer_fn)(struct ev_loop *l, void *arg);
typedef void (*ev_signal_fn)(struct ev_loop *l, int signo, void *arg);

/* Returns a new loop, or NULL with errno set. */
struct ev_loop *ev_loop_new(void);
/* Free the loop (not the fds registered in it).  NULL is fine. */
void ev_loop_free(struct ev_loop *l);

/* Watch fd for events.  Returns 0, or -errno. */
int ev_fd_add(struct ev_loop *l, int fd, uint32_t events, ev_fd_fn fn, void *arg);
/* Change the events watched on fd.  Returns 0, or -errno. */
int ev_fd_mod(struct ev_loop *l, int fd, uint32_t events);
/* Stop watching fd (call before closing it).  Cannot fail. */
void ev_fd_del(struct ev_loop *l, int fd);

/* Call fn once after ms milliseconds.  Returns a timer id > 0, or -errno. */
int64_t ev_timer_add(struct ev_loop *l, uint64_t ms, ev_timer_fn fn, void *arg);
/* Cancel a timer (an id that already fired or 0 is fine). */
void ev_timer_del(struct ev_loop *l, int64_t id);

/* Deliver the signals of set (which the caller has blocked) to fn.
 * Returns 0, or -errno. */
int ev_signal_add(struct ev_loop *l, const sigset_t *set, ev_signal_fn fn, void *arg);

/* Run until ev_loop_stop().  Returns 0, or -errno if epoll fails. */
int ev_loop_run(struct ev_loop *l);
void ev_loop_stop(struct ev_loop *l);

/* Monotonic milliseconds. */
uint64_t ev_now_ms(void);

#endif
