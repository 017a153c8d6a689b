/* State-change events for live views (the API's /events stream): a ring buffer of the latest
 * EVENTS_KEPT events, each with an increasing id. The engine publishes from the loop thread;
 * readers on any thread wait for events after an id they already have.
 *
 * Ids start at (start time in seconds) << 24, so the ids of a restarted daemon are larger than
 * those of the one before and a client that resumes across a restart simply gets what is kept. */
#ifndef SLUICE_EVENTS_H
#define SLUICE_EVENTS_H

#include <stdbool.h>
#include <stdint.h>

#include "base/util.h"

#define EVENTS_KEPT 8192

/* Publishes an event of type (e.g. "task_instance") whose data is the JSON text json. */
void events_publish(const char *type, const char *dag_id, const char *json);

/* Appends to out, as Server-Sent Events frames, the events after last_id (of dag_id only, when
 * not NULL), waiting up to `wait` for one to arrive. Updates *last_id. Returns the number of
 * events written, 0 on timeout, or -1 once events_close() was called. */
int events_wait(uint64_t *last_id, const char *dag_id, usec_t wait, struct strbuf *out);

/* The id of the newest event (0 when none yet): where a new subscriber starts. */
uint64_t events_last_id(void);

/* Waits up to `wait` for any event newer than *seen (of any DAG) and sets *seen to the newest.
 * Returns 1 when there was one, 0 on timeout, -1 once events_close() was called. */
int events_wait_any(uint64_t *seen, usec_t wait);
/* Whether events_close() was called. */
bool events_closed(void);

/* Wakes every waiter for good (shutdown). */
void events_close(void);

#endif
