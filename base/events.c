#include "base/events.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct event {
	uint64_t id;
	char *type, *dag_id, *json;
};

static struct event ring[EVENTS_KEPT];
static uint64_t next_id, oldest_id;   /* ids in the ring: [oldest_id, next_id) */
static bool closed;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t arrived = PTHREAD_COND_INITIALIZER;

static void init_ids(void)
{
	if (next_id == 0)
		next_id = oldest_id = ((uint64_t)time(NULL) << 24) + 1;
}

void events_publish(const char *type, const char *dag_id, const char *json)
{
	pthread_mutex_lock(&lock);
	init_ids();
	struct event *e = &ring[next_id % EVENTS_KEPT];
	free(e->type);
	free(e->dag_id);
	free(e->json);
	e->id = next_id++;
	e->type = xstrdup(type);
	e->dag_id = xstrdup(dag_id ? dag_id : "");
	e->json = xstrdup(json);
	if (next_id - oldest_id > EVENTS_KEPT)
		oldest_id = next_id - EVENTS_KEPT;
	pthread_cond_broadcast(&arrived);
	pthread_mutex_unlock(&lock);
}

uint64_t events_last_id(void)
{
	pthread_mutex_lock(&lock);
	init_ids();
	uint64_t id = next_id - 1;
	pthread_mutex_unlock(&lock);
	return id;
}

/* Writes the kept events after *last_id; called with the lock held. */
static int drain(uint64_t *last_id, const char *dag_id, struct strbuf *out)
{
	int n = 0;
	uint64_t from = *last_id + 1 < oldest_id ? oldest_id : *last_id + 1;
	for (uint64_t id = from; id < next_id; id++) {
		const struct event *e = &ring[id % EVENTS_KEPT];
		if (!dag_id || !strcmp(dag_id, e->dag_id)) {
			sb_printf(out, "id: %llu\nevent: %s\ndata: %s\n\n", (unsigned long long)e->id, e->type, e->json);
			n++;
		}
	}
	if (next_id > *last_id + 1 || *last_id >= next_id)
		*last_id = next_id - 1;
	return n;
}

/* The wall-clock time `wait` from now, for pthread_cond_timedwait(). */
static struct timespec deadline(usec_t wait)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += wait / USEC_PER_SEC;
	until.tv_nsec += (long)(wait % USEC_PER_SEC) * 1000;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	return until;
}

int events_wait(uint64_t *last_id, const char *dag_id, usec_t wait, struct strbuf *out)
{
	struct timespec until = deadline(wait);
	pthread_mutex_lock(&lock);
	init_ids();
	int n = 0;
	for (;;) {
		if (closed) {
			n = -1;
			break;
		}
		if ((n = drain(last_id, dag_id, out)) > 0)
			break;
		if (pthread_cond_timedwait(&arrived, &lock, &until) != 0) {
			n = drain(last_id, dag_id, out);
			break;
		}
	}
	pthread_mutex_unlock(&lock);
	return n;
}

int events_wait_any(uint64_t *seen, usec_t wait)
{
	struct timespec until = deadline(wait);
	pthread_mutex_lock(&lock);
	init_ids();
	int rc = 0;
	while (!closed && next_id - 1 == *seen && rc == 0)
		rc = pthread_cond_timedwait(&arrived, &lock, &until);
	int out = closed ? -1 : next_id - 1 != *seen ? 1 : 0;
	*seen = next_id - 1;
	pthread_mutex_unlock(&lock);
	return out;
}

bool events_closed(void)
{
	pthread_mutex_lock(&lock);
	bool c = closed;
	pthread_mutex_unlock(&lock);
	return c;
}

void events_close(void)
{
	pthread_mutex_lock(&lock);
	closed = true;
	pthread_cond_broadcast(&arrived);
	pthread_mutex_unlock(&lock);
}
