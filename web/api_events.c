/* GET /events: Server-Sent Events of run and task state changes (sluice's addition).
 * Resumable: the Last-Event-ID header (or ?last_event_id=) replays what is still kept; without
 * it the stream starts with the next change. ?dag_id= limits it to one DAG. A comment line is
 * sent every 15 s without events so that proxies and clients see the stream alive. Each stream
 * holds a worker thread of the server, so at most webserver.max_event_streams are open (fewer
 * than the workers); a client that leaves frees its stream within a second. */
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "web/api.h"
#include "base/events.h"

#define KEEPALIVE (15 * USEC_PER_SEC)
#define SLICE (USEC_PER_SEC) /* how soon a client that left frees its stream */

static atomic_int streams;

struct stream {
	int fd;                    /* the client's socket, to see it leave */
	uint64_t last_id;
	char *dag_id;
	struct strbuf pending;
	size_t sent;
};

static long stream_read(void *ctx, char *buf, size_t max)
{
	struct stream *s = ctx;
	if (s->sent == s->pending.len) {
		sb_reset(&s->pending);
		s->sent = 0;
		/* Waits in slices: between them, a client that has gone ends the stream (its slot is
		 * free at once, not at the next keep-alive that fails to send). */
		int n = 0;
		for (usec_t waited = 0; n == 0 && waited < KEEPALIVE; waited += SLICE) {
			n = events_wait(&s->last_id, s->dag_id, SLICE, &s->pending);
			struct pollfd p = {s->fd, POLLRDHUP, 0};
			if (n < 0 || (s->fd >= 0 && poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR))))
				return -1;
		}
		if (n == 0)
			sb_puts(&s->pending, ": keep-alive\n\n");
	}
	size_t n = s->pending.len - s->sent < max ? s->pending.len - s->sent : max;
	memcpy(buf, s->pending.buf + s->sent, n);
	s->sent += n;
	return (long)n;
}

static void stream_done(void *ctx)
{
	struct stream *s = ctx;
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
	s->fd = api_connection_fd(r);
	const char *last = api_header(r, "Last-Event-ID");
	if (!last)
		last = api_query(r, "last_event_id");
	s->last_id = last ? strtoull(last, NULL, 10) : events_last_id();
	const char *dag = api_query(r, "dag_id");
	s->dag_id = dag ? xstrdup(dag) : NULL;
	sb_puts(&s->pending, ": sluice events\n\n"); /* opens the stream at once */
	api_reply_stream(r, "text/event-stream", stream_read, stream_done, s);
}
