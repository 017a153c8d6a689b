/* A single-threaded event loop on epoll: file-descriptor watchers, one-shot timers kept in a
 * binary min-heap, and a thread-safe wake-up (eventfd) for other threads that post work.
 * Invariant: every callback runs on the loop's thread; only evloop_wake() and evloop_stop() may be
 * called from elsewhere. */
#ifndef SLUICE_EVLOOP_H
#define SLUICE_EVLOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "base/util.h"

struct evloop;
struct ev_timer;

typedef void (*ev_fd_cb)(struct evloop *loop, int fd, uint32_t events, void *arg);
typedef void (*ev_timer_cb)(struct evloop *loop, void *arg);
typedef void (*ev_wake_cb)(struct evloop *loop, void *arg);

/* Returns a new loop or NULL (errno set). */
struct evloop *evloop_new(void);
void evloop_free(struct evloop *loop);

/* Watches fd for EPOLLIN/EPOLLOUT-style events; returns 0 or -errno. The loop does not own fd. */
int evloop_add_fd(struct evloop *loop, int fd, uint32_t events, ev_fd_cb cb, void *arg);
/* Changes the events watched on fd (e.g. adds EPOLLOUT while output is pending); 0 or -errno. */
int evloop_mod_fd(struct evloop *loop, int fd, uint32_t events);
/* Stops watching fd; safe to call from inside that fd's callback. */
void evloop_del_fd(struct evloop *loop, int fd);

/* Schedules cb at the monotonic time `when` (mono_usec()). The returned handle stays valid
 * until the timer fires or is cancelled; it must not be used after either. */
struct ev_timer *evloop_timer_at(struct evloop *loop, usec_t when, ev_timer_cb cb, void *arg);
struct ev_timer *evloop_timer_in(struct evloop *loop, usec_t delay, ev_timer_cb cb, void *arg);
void evloop_timer_cancel(struct evloop *loop, struct ev_timer *t);

/* Registers the callback run on the loop thread after evloop_wake(); one per loop. */
void evloop_set_wake(struct evloop *loop, ev_wake_cb cb, void *arg);
/* Thread-safe: makes the loop run its wake callback soon. */
void evloop_wake(struct evloop *loop);

/* Called once when the loop starts and once per iteration after all ready events were
 * dispatched: the place where the scheduler commits its batched state changes. */
void evloop_set_idle(struct evloop *loop, ev_wake_cb cb, void *arg);

/* Runs until evloop_stop(). Returns 0, or -errno if epoll fails. */
int evloop_run(struct evloop *loop);
/* Makes evloop_run() return after the current iteration (including its idle callback). May be
 * called from a callback or, like evloop_wake(), from another thread. */
void evloop_stop(struct evloop *loop);

#endif
