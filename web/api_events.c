/* GET /events: Server-Sent Events of run and task state changes (sluice's addition).
 * Resumable: the Last-Event-ID header (or ?last_event_id=) replays what is still kept; without
 * it the stream starts with the next change. ?dag_id= limits it to one DAG. A comment line is
 * sent every 15 s without events so that proxies and clients see the stream alive.
 *
 * A stream holds no thread while it waits: when it has nothing to send, its connection is
 * suspended (MHD_suspend_connection) and one waker thread resumes the waiting streams when an
 * event arrives, when a keep-alive is due, or when a client has gone (each second it looks at
 * the sockets), so that a tab that closes frees its stream within a second. Open streams cost a
 * connection and a few hundred bytes each; webserver.max_event_streams caps them. */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "web/api.h"
#include "base/events.h"
#include "base/log.h"

#define KEEPALIVE (15 * USEC_PER_SEC)
#define SLICE (USEC_PER_SEC) /* how often the waker looks at idle streams */

static atomic_int streams;

struct stream {
	struct MHD_Connection *conn;
	int fd;                    /* the client's socket, to see it leave */
	uint64_t last_id;
	char *dag_id;
	struct strbuf pending;
	size_t sent;
	usec_t last_send;          /* monotonic */
	bool waiting;              /* suspended, in the waiters list */
	struct stream *next;       /* in the waiters list */
};

/* The suspended streams, and the thread that resumes them. */
static struct {
	pthread_mutex_t lock;
	struct stream *waiters;
	pthread_t thread;
	bool running, stop;
} waker = {.lock = PTHREAD_MUTEX_INITIALIZER};

static bool client_gone(const struct stream *s)
{
	struct pollfd p = {s->fd, POLLRDHUP, 0};
	return s->fd >= 0 && poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/* Resumes the waiting streams that have something to do: all when `all` (an event arrived, or
 * shutdown), else those whose keep-alive is due or whose client has gone. */
static void resume_waiters(bool all)
{
	usec_t now = mono_usec();
	pthread_mutex_lock(&waker.lock);
	for (struct stream **p = &waker.waiters; *p;) {
		struct stream *s = *p;
		if (all || now - s->last_send >= KEEPALIVE || client_gone(s)) {
			*p = s->next;
			s->waiting = false;
			MHD_resume_connection(s->conn);
		} else {
			p = &s->next;
		}
	}
	pthread_mutex_unlock(&waker.lock);
}

static void *waker_main(void *arg)
{
	uint64_t seen = events_last_id();
	(void)arg;
	for (;;) {
		int n = events_wait_any(&seen, SLICE);
		pthread_mutex_lock(&waker.lock);
		bool stop = waker.stop;
		pthread_mutex_unlock(&waker.lock);
		resume_waiters(n != 0 || stop);
		if (stop)
			return NULL;
	}
}

void api_events_start(void)
{
	pthread_mutex_lock(&waker.lock);
	waker.stop = false;
	if (!waker.running && pthread_create(&waker.thread, NULL, waker_main, NULL) == 0)
		waker.running = true;
	pthread_mutex_unlock(&waker.lock);
}

void api_events_stop(void)
{
	pthread_mutex_lock(&waker.lock);
	bool running = waker.running;
	waker.stop = true;
	waker.running = false;
	pthread_mutex_unlock(&waker.lock);
	if (running)
		pthread_join(waker.thread, NULL);
	resume_waiters(true);
}

enum park { PARKED, AGAIN, STOPPED };

/* Parks the stream until the waker resumes it. AGAIN when an event came in the meantime (the
 * caller returns 0 and MHD asks again at once); STOPPED when the server is stopping. */
static enum park suspend(struct stream *s, uint64_t seen)
{
	enum park p = AGAIN;
	pthread_mutex_lock(&waker.lock);
	if (waker.stop || !waker.running) {
		p = STOPPED;
	} else if (events_last_id() == seen) {
		s->waiting = true;
		s->next = waker.waiters;
		waker.waiters = s;
		MHD_suspend_connection(s->conn);
		p = PARKED;
	}
	pthread_mutex_unlock(&waker.lock);
	return p;
}

static long stream_read(void *ctx, char *buf, size_t max)
{
	struct stream *s = ctx;
	if (s->sent == s->pending.len) {
		sb_reset(&s->pending);
		s->sent = 0;
		uint64_t seen = events_last_id();
		int n = events_wait(&s->last_id, s->dag_id, 0, &s->pending);
		if (n < 0 || client_gone(s))
			return -1;
		if (n == 0 && mono_usec() - s->last_send >= KEEPALIVE)
			sb_puts(&s->pending, ": keep-alive\n\n");
		else if (n == 0)
			return suspend(s, seen) == STOPPED ? -1 : 0;
	}
	size_t n = s->pending.len - s->sent < max ? s->pending.len - s->sent : max;
	memcpy(buf, s->pending.buf + s->sent, n);
	s->sent += n;
	s->last_send = mono_usec();
	return (long)n;
}

static void stream_done(void *ctx)
{
	struct stream *s = ctx;
	pthread_mutex_lock(&waker.lock);
	for (struct stream **p = &waker.waiters; *p; p = &(*p)->next)
		if (*p == s) {
			*p = s->next;
			break;
		}
	pthread_mutex_unlock(&waker.lock);
	sb_free(&s->pending);
	free(s->dag_id);
	free(s);
	atomic_fetch_sub(&streams, 1);
}

void api_events(struct req *r)
{
	int max = api_max_event_streams(r);
	if (atomic_fetch_add(&streams, 1) >= max) {
		atomic_fetch_sub(&streams, 1);
		api_problem(r, 503, "Service Unavailable",
			    "too many event streams are open (at most %d: webserver.max_event_streams)", max);
		return;
	}
	struct stream *s = xcalloc(1, sizeof(*s));
	s->conn = api_mhd_connection(r);
	s->fd = api_connection_fd(r);
	const char *last = api_header(r, "Last-Event-ID");
	if (!last)
		last = api_query(r, "last_event_id");
	s->last_id = last ? strtoull(last, NULL, 10) : events_last_id();
	const char *dag = api_query(r, "dag_id");
	s->dag_id = dag ? xstrdup(dag) : NULL;
	s->last_send = mono_usec();
	sb_puts(&s->pending, ": sluice events\n\n"); /* opens the stream at once */
	api_reply_stream(r, "text/event-stream", stream_read, stream_done, s);
}
