/* The event loop: epoll for file descriptors, a binary min-heap of one-shot timers and an eventfd
 * for cross-thread wake-ups.
 *
 * Invariants:
 *  - watchers[fd] describes fd while `cb` is non-NULL. Each epoll registration carries
 *    (generation << 32 | fd) so that an event already returned by epoll_wait for a watcher that a
 *    callback deleted (or deleted and re-added) in the same batch is recognised as stale and dropped.
 *  - heap[0..nheap) is a min-heap on (when, seq); every timer stores its own index in `idx`, so
 *    cancel is O(log n). A timer is freed exactly when it fires or is cancelled.
 *  - Only `wake_fd` and `stopping` are touched from other threads.
 */
#include "base/evloop.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define EV_WAKE_TAG UINT64_MAX
#define EV_BATCH 64

struct fd_watch {
	ev_fd_cb cb; /* NULL when the slot is free */
	void *arg;
	uint32_t gen;
};

struct ev_timer {
	usec_t when;
	uint64_t seq; /* insertion order: equal deadlines fire first-in first-out */
	size_t idx;   /* position in loop->heap */
	ev_timer_cb cb;
	void *arg;
};

struct evloop {
	int epfd;
	int wake_fd;
	struct fd_watch *watchers;
	size_t nwatchers;
	uint32_t next_gen;
	struct ev_timer **heap;
	size_t nheap, heap_cap;
	uint64_t next_seq;
	ev_wake_cb wake_cb;
	void *wake_arg;
	ev_wake_cb idle_cb;
	void *idle_arg;
	atomic_bool stopping;
	bool have_pwait2;
};

struct evloop *evloop_new(void)
{
	struct evloop *loop = xcalloc(1, sizeof(*loop));
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = EV_WAKE_TAG };
	int saved;

	loop->wake_fd = -1;
	loop->have_pwait2 = true;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0)
		goto fail;
	loop->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (loop->wake_fd < 0)
		goto fail;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->wake_fd, &ev) < 0)
		goto fail;
	return loop;
fail:
	saved = errno;
	if (loop->wake_fd >= 0)
		close(loop->wake_fd);
	if (loop->epfd >= 0)
		close(loop->epfd);
	free(loop);
	errno = saved;
	return NULL;
}

void evloop_free(struct evloop *loop)
{
	if (!loop)
		return;
	for (size_t i = 0; i < loop->nheap; i++)
		free(loop->heap[i]);
	free(loop->heap);
	free(loop->watchers);
	close(loop->wake_fd);
	close(loop->epfd);
	free(loop);
}

/* ---- file descriptors ---- */

static void watchers_reserve(struct evloop *loop, int fd)
{
	size_t n = loop->nwatchers ? loop->nwatchers : 64;

	if ((size_t)fd < loop->nwatchers)
		return;
	while (n <= (size_t)fd)
		n *= 2;
	loop->watchers = xrealloc(loop->watchers, n * sizeof(*loop->watchers));
	memset(loop->watchers + loop->nwatchers, 0, (n - loop->nwatchers) * sizeof(*loop->watchers));
	loop->nwatchers = n;
}

static uint64_t fd_tag(int fd, uint32_t gen)
{
	return (uint64_t)gen << 32 | (uint32_t)fd;
}

int evloop_add_fd(struct evloop *loop, int fd, uint32_t events, ev_fd_cb cb, void *arg)
{
	struct epoll_event ev = { .events = events };
	struct fd_watch *w;

	if (fd < 0 || !cb)
		return -EINVAL;
	watchers_reserve(loop, fd);
	w = &loop->watchers[fd];
	/* A live slot whose fd epoll no longer knows was closed without evloop_del_fd(): the ADD
	 * below succeeds and the stale slot is simply replaced. */
	ev.data.u64 = fd_tag(fd, loop->next_gen);
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	w->cb = cb;
	w->arg = arg;
	w->gen = loop->next_gen++;
	return 0;
}

int evloop_mod_fd(struct evloop *loop, int fd, uint32_t events)
{
	struct epoll_event ev = { .events = events };

	if (fd < 0 || (size_t)fd >= loop->nwatchers || !loop->watchers[fd].cb)
		return -ENOENT;
	ev.data.u64 = fd_tag(fd, loop->watchers[fd].gen);
	if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
		return -errno;
	return 0;
}

void evloop_del_fd(struct evloop *loop, int fd)
{
	if (fd < 0 || (size_t)fd >= loop->nwatchers || !loop->watchers[fd].cb)
		return;
	/* Fails harmlessly when fd was already closed (epoll forgot it then). */
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
	loop->watchers[fd].cb = NULL;
	loop->watchers[fd].arg = NULL;
}

static void dispatch_fd(struct evloop *loop, const struct epoll_event *ev)
{
	int fd = (int)(uint32_t)ev->data.u64;
	uint32_t gen = (uint32_t)(ev->data.u64 >> 32);
	struct fd_watch *w;

	if ((size_t)fd >= loop->nwatchers)
		return;
	w = &loop->watchers[fd];
	if (!w->cb || w->gen != gen)
		return; /* deleted (or replaced) earlier in this batch */
	w->cb(loop, fd, ev->events, w->arg);
}

/* ---- timers ---- */

static bool timer_before(const struct ev_timer *a, const struct ev_timer *b)
{
	return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void heap_set(struct evloop *loop, size_t i, struct ev_timer *t)
{
	loop->heap[i] = t;
	t->idx = i;
}

static void heap_up(struct evloop *loop, size_t i)
{
	struct ev_timer *t = loop->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!timer_before(t, loop->heap[parent]))
			break;
		heap_set(loop, i, loop->heap[parent]);
		i = parent;
	}
	heap_set(loop, i, t);
}

static void heap_down(struct evloop *loop, size_t i)
{
	struct ev_timer *t = loop->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= loop->nheap)
			break;
		if (c + 1 < loop->nheap && timer_before(loop->heap[c + 1], loop->heap[c]))
			c++;
		if (!timer_before(loop->heap[c], t))
			break;
		heap_set(loop, i, loop->heap[c]);
		i = c;
	}
	heap_set(loop, i, t);
}

/* Removes the timer at index i and restores the heap property. */
static void heap_remove(struct evloop *loop, size_t i)
{
	struct ev_timer *last = loop->heap[--loop->nheap];

	if (i == loop->nheap)
		return;
	heap_set(loop, i, last);
	if (i > 0 && timer_before(last, loop->heap[(i - 1) / 2]))
		heap_up(loop, i);
	else
		heap_down(loop, i);
}

struct ev_timer *evloop_timer_at(struct evloop *loop, usec_t when, ev_timer_cb cb, void *arg)
{
	struct ev_timer *t = xmalloc(sizeof(*t));

	if (loop->nheap == loop->heap_cap) {
		loop->heap_cap = loop->heap_cap ? 2 * loop->heap_cap : 64;
		loop->heap = xrealloc(loop->heap, loop->heap_cap * sizeof(*loop->heap));
	}
	t->when = when;
	t->seq = loop->next_seq++;
	t->cb = cb;
	t->arg = arg;
	loop->heap[loop->nheap++] = t;
	heap_up(loop, loop->nheap - 1);
	return t;
}

struct ev_timer *evloop_timer_in(struct evloop *loop, usec_t delay, ev_timer_cb cb, void *arg)
{
	return evloop_timer_at(loop, mono_usec() + (delay > 0 ? delay : 0), cb, arg);
}

void evloop_timer_cancel(struct evloop *loop, struct ev_timer *t)
{
	if (!t)
		return;
	heap_remove(loop, t->idx);
	free(t);
}

/* Fires every timer that is due now and was created before this round began, so a callback that
 * re-arms itself with a zero delay runs again in the next iteration, not in an endless loop. */
static void run_timers(struct evloop *loop)
{
	usec_t now = mono_usec();
	uint64_t seq_limit = loop->next_seq;

	while (loop->nheap > 0) {
		struct ev_timer *t = loop->heap[0];
		ev_timer_cb cb = t->cb;
		void *arg = t->arg;

		if (t->when > now || t->seq >= seq_limit)
			break;
		heap_remove(loop, 0);
		free(t);
		cb(loop, arg);
	}
}

/* Microseconds until the next timer: -1 when there is none. */
static usec_t next_timeout(struct evloop *loop)
{
	usec_t d;

	if (loop->nheap == 0)
		return -1;
	d = loop->heap[0]->when - mono_usec();
	return d > 0 ? d : 0;
}

/* ---- wake-up, idle and the loop itself ---- */

void evloop_set_wake(struct evloop *loop, ev_wake_cb cb, void *arg)
{
	loop->wake_cb = cb;
	loop->wake_arg = arg;
}

void evloop_wake(struct evloop *loop)
{
	uint64_t one = 1;

	/* EAGAIN means the counter is already huge: the loop is due to wake anyway. */
	while (write(loop->wake_fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

void evloop_set_idle(struct evloop *loop, ev_wake_cb cb, void *arg)
{
	loop->idle_cb = cb;
	loop->idle_arg = arg;
}

void evloop_stop(struct evloop *loop)
{
	atomic_store(&loop->stopping, true);
	evloop_wake(loop);
}

static void handle_wake(struct evloop *loop)
{
	uint64_t n;

	if (read(loop->wake_fd, &n, sizeof(n)) < 0)
		return; /* EAGAIN: another event in the batch already drained it */
	if (loop->wake_cb)
		loop->wake_cb(loop, loop->wake_arg);
}

/* epoll_wait with microsecond precision where the kernel has epoll_pwait2 (5.11+). */
static int wait_events(struct evloop *loop, struct epoll_event *evs, int max, usec_t timeout)
{
	struct timespec ts;
	int n;

	if (loop->have_pwait2) {
		ts.tv_sec = timeout / USEC_PER_SEC;
		ts.tv_nsec = (long)(timeout % USEC_PER_SEC) * 1000;
		n = epoll_pwait2(loop->epfd, evs, max, timeout < 0 ? NULL : &ts, NULL);
		if (n >= 0 || errno != ENOSYS)
			return n;
		loop->have_pwait2 = false;
	}
	if (timeout < 0)
		return epoll_wait(loop->epfd, evs, max, -1);
	/* Round up so a timer is never woken for early and then spun on. */
	timeout = (timeout + 999) / 1000;
	return epoll_wait(loop->epfd, evs, max, timeout > INT_MAX ? INT_MAX : (int)timeout);
}

int evloop_run(struct evloop *loop)
{
	struct epoll_event evs[EV_BATCH];

	int rc = 0;

	/* Work queued before the loop started (e.g. a run created before evloop_run) is picked up
	 * by one idle pass before the first wait. */
	if (loop->idle_cb && !atomic_load(&loop->stopping))
		loop->idle_cb(loop, loop->idle_arg);
	/* A stop request finishes the current iteration (so no edge-triggered event is lost) and is
	 * consumed when run() returns; a request made before run() starts is honoured. */
	while (!atomic_load(&loop->stopping)) {
		int n = wait_events(loop, evs, EV_BATCH, next_timeout(loop));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u64 == EV_WAKE_TAG)
				handle_wake(loop);
			else
				dispatch_fd(loop, &evs[i]);
		}
		run_timers(loop);
		if (loop->idle_cb)
			loop->idle_cb(loop, loop->idle_arg);
	}
	atomic_store(&loop->stopping, false);
	return rc;
}
