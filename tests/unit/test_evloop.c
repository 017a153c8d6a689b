/* Unit tests for the event loop: timer order and cancellation, fd events, cross-thread wake-up,
 * deleting watchers from inside callbacks, the idle callback and the absence of busy-waiting. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/evloop.h"

#define MAXEV 64

struct rec {
	struct evloop *loop;
	int order[MAXEV];
	int n;
	int idle_runs;
	usec_t fired_at[MAXEV];
};

struct tag {
	struct rec *r;
	int id;
};

static void rec_timer(struct evloop *loop, void *arg)
{
	struct tag *t = arg;

	assert_true(t->r->n < MAXEV);
	t->r->fired_at[t->r->n] = mono_usec();
	t->r->order[t->r->n++] = t->id;
}

static void stop_cb(struct evloop *loop, void *arg)
{
	evloop_stop(loop);
}

static void count_idle(struct evloop *loop, void *arg)
{
	((struct rec *)arg)->idle_runs++;
}

/* Runs the loop until a stop timer `limit` from now; fails the test if run() errs. */
static void run_for(struct evloop *loop, usec_t limit)
{
	evloop_timer_in(loop, limit, stop_cb, NULL);
	assert_int_equal(evloop_run(loop), 0);
}

static void test_timer_order(void **state)
{
	struct evloop *loop = evloop_new();
	struct rec r = { 0 };
	struct tag tags[6];
	static const int delays_ms[] = { 30, 10, 20, 0, 10, 5 };
	usec_t t0 = mono_usec();

	for (int i = 0; i < 6; i++) {
		tags[i] = (struct tag){ &r, i };
		evloop_timer_in(loop, delays_ms[i] * 1000, rec_timer, &tags[i]);
	}
	run_for(loop, 60 * 1000);
	assert_int_equal(r.n, 6);
	/* 0ms, 5ms, 10ms (first scheduled first), 10ms, 20ms, 30ms */
	static const int want[] = { 3, 5, 1, 4, 2, 0 };
	for (int i = 0; i < 6; i++) {
		assert_int_equal(r.order[i], want[i]);
		assert_true(r.fired_at[i] - t0 >= delays_ms[want[i]] * 1000);
	}
	evloop_free(loop);
}

static void test_timer_same_deadline_fifo(void **state)
{
	struct evloop *loop = evloop_new();
	struct rec r = { 0 };
	struct tag tags[10];
	usec_t when = mono_usec() + 5000;

	for (int i = 0; i < 10; i++) {
		tags[i] = (struct tag){ &r, i };
		evloop_timer_at(loop, when, rec_timer, &tags[i]);
	}
	run_for(loop, 20 * 1000);
	assert_int_equal(r.n, 10);
	for (int i = 0; i < 10; i++)
		assert_int_equal(r.order[i], i);
	evloop_free(loop);
}

static void test_timer_cancel(void **state)
{
	struct evloop *loop = evloop_new();
	struct rec r = { 0 };
	struct tag tags[5];
	struct ev_timer *h[5];

	for (int i = 0; i < 5; i++) {
		tags[i] = (struct tag){ &r, i };
		h[i] = evloop_timer_in(loop, (i + 1) * 2000, rec_timer, &tags[i]);
	}
	evloop_timer_cancel(loop, h[0]); /* the root of the heap */
	evloop_timer_cancel(loop, h[3]); /* an inner node */
	evloop_timer_cancel(loop, NULL); /* harmless */
	run_for(loop, 30 * 1000);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.order[0], 1);
	assert_int_equal(r.order[1], 2);
	assert_int_equal(r.order[2], 4);
	evloop_free(loop);
}

/* Many timers with random deadlines and random cancellations: the heap must fire exactly the
 * survivors, in deadline order. */
struct heap_ctx {
	usec_t last;
	int fired;
	bool order_ok;
};

struct heap_timer {
	struct heap_ctx *ctx;
	usec_t when;
};

static void heap_fire(struct evloop *loop, void *arg)
{
	struct heap_timer *ht = arg;

	if (ht->when < ht->ctx->last)
		ht->ctx->order_ok = false;
	ht->ctx->last = ht->when;
	ht->ctx->fired++;
}

static void test_timer_heap_random(void **state)
{
	enum { N = 2000 };
	struct evloop *loop = evloop_new();
	struct heap_ctx ctx = { .order_ok = true };
	struct heap_timer *hts = calloc(N, sizeof(*hts));
	struct ev_timer **h = calloc(N, sizeof(*h));
	usec_t base = mono_usec();
	int cancelled = 0;

	srand(42);
	for (int i = 0; i < N; i++) {
		hts[i] = (struct heap_timer){ &ctx, base + rand() % 20000 };
		h[i] = evloop_timer_at(loop, hts[i].when, heap_fire, &hts[i]);
	}
	for (int i = 0; i < N; i += 1 + rand() % 3) {
		evloop_timer_cancel(loop, h[i]);
		cancelled++;
	}
	run_for(loop, 40 * 1000);
	assert_true(ctx.order_ok);
	assert_int_equal(ctx.fired, N - cancelled);
	free(hts);
	free(h);
	evloop_free(loop);
}

/* A timer that re-arms itself with zero delay must not starve the loop. */
struct rearm {
	int runs;
	int idle;
};

static void rearm_cb(struct evloop *loop, void *arg)
{
	struct rearm *ra = arg;

	if (++ra->runs < 5)
		evloop_timer_in(loop, 0, rearm_cb, ra);
	else
		evloop_stop(loop);
}

static void rearm_idle(struct evloop *loop, void *arg)
{
	((struct rearm *)arg)->idle++;
}

static void test_timer_rearm_zero(void **state)
{
	struct evloop *loop = evloop_new();
	struct rearm ra = { 0 };

	evloop_set_idle(loop, rearm_idle, &ra);
	evloop_timer_in(loop, 0, rearm_cb, &ra);
	assert_int_equal(evloop_run(loop), 0);
	assert_int_equal(ra.runs, 5);
	/* one idle pass at start, then each re-armed timer ran in its own iteration, each
	 * followed by the idle callback */
	assert_int_equal(ra.idle, 6);
	evloop_free(loop);
}

/* Waiting for a 50 ms timer must take a handful of iterations, not thousands. */
static void test_no_busy_wait(void **state)
{
	struct evloop *loop = evloop_new();
	struct rec r = { 0 };
	usec_t t0 = mono_usec();

	evloop_set_idle(loop, count_idle, &r);
	run_for(loop, 50 * 1000);
	assert_true(mono_usec() - t0 >= 50 * 1000);
	assert_true(r.idle_runs <= 3);
	evloop_free(loop);
}

struct fdctx {
	struct evloop *loop;
	int fds[2][2];
	int calls[2];
	int last_fd;
	char got[16];
	int del_other; /* when set, the first callback deletes the other pipe's watcher */
	int reuse_fd;  /* the re-used fd number; -100 once it got a stale event */
};

static void read_cb(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct fdctx *c = arg;
	int which = fd == c->fds[0][0] ? 0 : 1;
	ssize_t n;

	assert_true(events & EPOLLIN);
	c->calls[which]++;
	c->last_fd = fd;
	n = read(fd, c->got, sizeof(c->got) - 1);
	assert_true(n > 0);
	c->got[n] = '\0';
	evloop_stop(loop);
}

static void test_fd_event(void **state)
{
	struct evloop *loop = evloop_new();
	struct fdctx c = { .loop = loop };

	assert_int_equal(pipe(c.fds[0]), 0);
	assert_int_equal(evloop_add_fd(loop, c.fds[0][0], EPOLLIN, read_cb, &c), 0);
	assert_int_equal(evloop_add_fd(loop, c.fds[0][0], EPOLLIN, read_cb, &c), -EEXIST);
	assert_int_equal(write(c.fds[0][1], "ping", 4), 4);
	assert_int_equal(evloop_run(loop), 0);
	assert_int_equal(c.calls[0], 1);
	assert_string_equal(c.got, "ping");
	/* after deletion nothing is dispatched any more */
	evloop_del_fd(loop, c.fds[0][0]);
	evloop_del_fd(loop, c.fds[0][0]); /* twice is harmless */
	assert_int_equal(write(c.fds[0][1], "pong", 4), 4);
	run_for(loop, 10 * 1000);
	assert_int_equal(c.calls[0], 1);
	close(c.fds[0][0]);
	close(c.fds[0][1]);
	evloop_free(loop);
}

static void test_fd_mod(void **state)
{
	struct evloop *loop = evloop_new();
	struct fdctx c = { .loop = loop };

	assert_int_equal(pipe(c.fds[0]), 0);
	/* watch for nothing first, then switch to EPOLLIN */
	assert_int_equal(evloop_add_fd(loop, c.fds[0][0], 0, read_cb, &c), 0);
	assert_int_equal(write(c.fds[0][1], "x", 1), 1);
	run_for(loop, 10 * 1000);
	assert_int_equal(c.calls[0], 0);
	assert_int_equal(evloop_mod_fd(loop, c.fds[0][0], EPOLLIN), 0);
	assert_int_equal(evloop_run(loop), 0);
	assert_int_equal(c.calls[0], 1);
	assert_int_equal(evloop_mod_fd(loop, 1000, EPOLLIN), -ENOENT);
	evloop_del_fd(loop, c.fds[0][0]);
	close(c.fds[0][0]);
	close(c.fds[0][1]);
	evloop_free(loop);
}

/* Both pipes are readable in the same epoll batch; whichever callback runs first deletes the
 * other watcher, closes that fd and re-uses its number for a fresh, idle pipe. The deleted
 * watcher's pending event must be dropped and must not reach the watcher now on that number. */
static void stale_cb(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	((struct fdctx *)arg)->reuse_fd = -100; /* marks a misdelivered event */
}

static void del_other_cb(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct fdctx *c = arg;
	int which = fd == c->fds[0][0] ? 0 : 1;
	int other = c->fds[1 - which][0];
	char buf[8];
	int p[2];

	c->calls[which]++;
	assert_true(read(fd, buf, sizeof(buf)) > 0);
	if (!c->del_other)
		return;
	c->del_other = 0;
	evloop_del_fd(loop, other);
	close(other);
	c->fds[1 - which][0] = -1;
	assert_int_equal(pipe(p), 0);
	assert_int_equal(p[0], other); /* the lowest free number */
	c->fds[1 - which][0] = p[0];
	close(c->fds[1 - which][1]);
	c->fds[1 - which][1] = p[1];
	assert_int_equal(evloop_add_fd(loop, p[0], EPOLLIN, stale_cb, c), 0);
	c->reuse_fd = p[0];
}

static void test_fd_delete_other_in_batch(void **state)
{
	struct evloop *loop = evloop_new();
	struct fdctx c = { .loop = loop, .del_other = 1 };

	assert_int_equal(pipe(c.fds[0]), 0);
	assert_int_equal(pipe(c.fds[1]), 0);
	assert_int_equal(evloop_add_fd(loop, c.fds[0][0], EPOLLIN, del_other_cb, &c), 0);
	assert_int_equal(evloop_add_fd(loop, c.fds[1][0], EPOLLIN, del_other_cb, &c), 0);
	assert_int_equal(write(c.fds[0][1], "a", 1), 1);
	assert_int_equal(write(c.fds[1][1], "b", 1), 1);
	run_for(loop, 20 * 1000);
	/* exactly one of the two callbacks ran; the re-used number got no stale event */
	assert_int_equal(c.calls[0] + c.calls[1], 1);
	assert_true(c.reuse_fd >= 0);
	for (int i = 0; i < 2; i++) {
		evloop_del_fd(loop, c.fds[i][0]);
		close(c.fds[i][0]);
		close(c.fds[i][1]);
	}
	evloop_free(loop);
}

struct selfdel {
	int calls;
	int fd;
};

static void del_self_cb(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct selfdel *s = arg;

	s->calls++;
	evloop_del_fd(loop, fd); /* the fd stays readable: level-triggered epoll would repeat */
}

static void test_fd_delete_self(void **state)
{
	struct evloop *loop = evloop_new();
	struct selfdel s = { 0 };
	int p[2];

	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "x", 1), 1);
	assert_int_equal(evloop_add_fd(loop, p[0], EPOLLIN, del_self_cb, &s), 0);
	run_for(loop, 20 * 1000);
	assert_int_equal(s.calls, 1);
	close(p[0]);
	close(p[1]);
	evloop_free(loop);
}

/* A watcher whose fd was closed without evloop_del_fd() is replaced when the number is reused. */
static void test_fd_closed_without_delete(void **state)
{
	struct evloop *loop = evloop_new();
	struct fdctx c = { .loop = loop };
	int p[2];

	assert_int_equal(pipe(p), 0);
	assert_int_equal(evloop_add_fd(loop, p[0], EPOLLIN, read_cb, &c), 0);
	close(p[0]);
	close(p[1]);
	assert_int_equal(pipe(c.fds[0]), 0);
	assert_int_equal(c.fds[0][0], p[0]);
	assert_int_equal(evloop_add_fd(loop, c.fds[0][0], EPOLLIN, read_cb, &c), 0);
	assert_int_equal(write(c.fds[0][1], "new", 3), 3);
	assert_int_equal(evloop_run(loop), 0);
	assert_string_equal(c.got, "new");
	evloop_del_fd(loop, c.fds[0][0]);
	close(c.fds[0][0]);
	close(c.fds[0][1]);
	evloop_free(loop);
}

struct wakectx {
	struct evloop *loop;
	int wakes;
	usec_t woke_at, sent_at;
};

static void *waker(void *arg)
{
	struct wakectx *w = arg;

	usleep(20 * 1000);
	w->sent_at = mono_usec();
	evloop_wake(w->loop);
	return NULL;
}

static void on_wake(struct evloop *loop, void *arg)
{
	struct wakectx *w = arg;

	w->wakes++;
	w->woke_at = mono_usec();
	evloop_stop(loop);
}

static void fail_cb(struct evloop *loop, void *arg)
{
	fail_msg("%s", (const char *)arg);
}

static void test_wake_from_thread(void **state)
{
	struct evloop *loop = evloop_new();
	struct wakectx w = { .loop = loop };
	struct ev_timer *guard;
	pthread_t th;

	evloop_set_wake(loop, on_wake, &w);
	guard = evloop_timer_in(loop, 2 * USEC_PER_SEC, fail_cb, "no wake-up within 2 s");
	assert_int_equal(pthread_create(&th, NULL, waker, &w), 0);
	assert_int_equal(evloop_run(loop), 0);
	pthread_join(th, NULL);
	assert_int_equal(w.wakes, 1);
	assert_true(w.woke_at - w.sent_at < USEC_PER_SEC);
	evloop_timer_cancel(loop, guard);
	evloop_free(loop);
}

static void *stopper(void *arg)
{
	usleep(20 * 1000);
	evloop_stop(arg);
	return NULL;
}

static void test_stop_from_thread(void **state)
{
	struct evloop *loop = evloop_new();
	struct ev_timer *guard = evloop_timer_in(loop, 2 * USEC_PER_SEC, fail_cb, "stop was lost");
	pthread_t th;

	assert_int_equal(pthread_create(&th, NULL, stopper, loop), 0);
	assert_int_equal(evloop_run(loop), 0);
	pthread_join(th, NULL);
	evloop_timer_cancel(loop, guard);
	/* the loop can run again after a stop */
	run_for(loop, 1000);
	evloop_free(loop);
}

/* The idle callback runs once per batch, after every callback of that batch. */
struct idlectx {
	int events, idles;
	int events_at_idle[8];
};

static void count_event(struct evloop *loop, int fd, uint32_t events, void *arg)
{
	struct idlectx *c = arg;
	char buf[8];

	assert_true(read(fd, buf, sizeof(buf)) > 0);
	c->events++;
}

static void idle_snapshot(struct evloop *loop, void *arg)
{
	struct idlectx *c = arg;

	if (c->idles < 8)
		c->events_at_idle[c->idles] = c->events;
	c->idles++;
	if (c->events == 3)
		evloop_stop(loop);
}

static void stop_in_idle(struct evloop *loop, void *arg)
{
	(*(int *)arg)++;
	evloop_stop(loop);
}

/* Work queued before evloop_run() is handled by an idle pass before the first wait: a loop
 * with nothing to wait for must not block. */
static void test_idle_at_start(void **state)
{
	struct evloop *loop = evloop_new();
	int idles = 0;

	evloop_set_idle(loop, stop_in_idle, &idles);
	usec_t t0 = mono_usec();
	assert_int_equal(evloop_run(loop), 0);
	assert_int_equal(idles, 1);
	assert_true(mono_usec() - t0 < USEC_PER_SEC);
	evloop_free(loop);
	(void)state;
}

static void test_idle_after_batch(void **state)
{
	struct evloop *loop = evloop_new();
	struct idlectx c = { 0 };
	int p[3][2];

	evloop_set_idle(loop, idle_snapshot, &c);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(pipe(p[i]), 0);
		assert_int_equal(write(p[i][1], "x", 1), 1);
		assert_int_equal(evloop_add_fd(loop, p[i][0], EPOLLIN, count_event, &c), 0);
	}
	assert_int_equal(evloop_run(loop), 0);
	/* the idle pass at start saw nothing; all three were ready at once: one batch, one idle
	 * run that saw all three */
	assert_int_equal(c.idles, 2);
	assert_int_equal(c.events_at_idle[0], 0);
	assert_int_equal(c.events_at_idle[1], 3);
	for (int i = 0; i < 3; i++) {
		evloop_del_fd(loop, p[i][0]);
		close(p[i][0]);
		close(p[i][1]);
	}
	evloop_free(loop);
}

/* Freeing a loop with pending timers releases them (checked under ASan/valgrind). */
static void test_free_with_pending(void **state)
{
	struct evloop *loop = evloop_new();
	struct rec r = { 0 };
	struct tag t = { &r, 1 };

	for (int i = 0; i < 100; i++)
		evloop_timer_in(loop, USEC_PER_SEC, rec_timer, &t);
	evloop_free(loop);
	evloop_free(NULL);
	assert_int_equal(r.n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timer_order),
		cmocka_unit_test(test_timer_same_deadline_fifo),
		cmocka_unit_test(test_timer_cancel),
		cmocka_unit_test(test_timer_heap_random),
		cmocka_unit_test(test_timer_rearm_zero),
		cmocka_unit_test(test_no_busy_wait),
		cmocka_unit_test(test_fd_event),
		cmocka_unit_test(test_fd_mod),
		cmocka_unit_test(test_fd_delete_other_in_batch),
		cmocka_unit_test(test_fd_delete_self),
		cmocka_unit_test(test_fd_closed_without_delete),
		cmocka_unit_test(test_wake_from_thread),
		cmocka_unit_test(test_stop_from_thread),
		cmocka_unit_test(test_idle_at_start),
		cmocka_unit_test(test_idle_after_batch),
		cmocka_unit_test(test_free_with_pending),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
