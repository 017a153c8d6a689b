#include "web/connlimit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

#define SLOTS 4096 /* open addresses tracked; beyond that, only the total counts */

struct slot {
	char addr[48];
	int open;
};

struct connlimit {
	pthread_mutex_t lock;
	int max_total, max_per_address, total;
	struct slot *slots;
};

struct connlimit *connlimit_new(int max_total, int max_per_address)
{
	struct connlimit *c = xcalloc(1, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	c->max_total = max_total;
	c->max_per_address = max_per_address;
	c->slots = xcalloc(SLOTS, sizeof(*c->slots));
	return c;
}

void connlimit_free(struct connlimit *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->lock);
	free(c->slots);
	free(c);
}

static unsigned hash(const char *s)
{
	unsigned h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* The slot of addr (open addressing), or a free one when create; NULL when none. */
static struct slot *find(struct connlimit *c, const char *addr, bool create)
{
	unsigned h = hash(addr);
	struct slot *free_slot = NULL;
	for (unsigned i = 0; i < SLOTS; i++) {
		struct slot *s = &c->slots[(h + i) % SLOTS];
		if (s->open > 0 && !strcmp(s->addr, addr))
			return s;
		if (s->open == 0 && !free_slot)
			free_slot = s;
		if (s->open == 0 && !s->addr[0])
			break; /* never used: addr is not further on */
	}
	if (!create || !free_slot)
		return NULL;
	snprintf(free_slot->addr, sizeof(free_slot->addr), "%s", addr);
	return free_slot;
}

void connlimit_open(struct connlimit *c, const char *addr)
{
	pthread_mutex_lock(&c->lock);
	c->total++;
	struct slot *s = find(c, addr, true);
	if (s)
		s->open++;
	pthread_mutex_unlock(&c->lock);
}

void connlimit_close(struct connlimit *c, const char *addr)
{
	pthread_mutex_lock(&c->lock);
	c->total--;
	struct slot *s = find(c, addr, false);
	if (s && s->open > 0)
		s->open--;
	pthread_mutex_unlock(&c->lock);
}

bool connlimit_over(struct connlimit *c, const char *addr, const char **why)
{
	bool local = !strcmp(addr, "127.0.0.1") || !strcmp(addr, "::1");
	pthread_mutex_lock(&c->lock);
	struct slot *s = local ? NULL : find(c, addr, false);
	bool over_total = c->total > c->max_total, over_addr = s && s->open > c->max_per_address;
	pthread_mutex_unlock(&c->lock);
	*why = over_total ? "the server has as many connections open as it takes (webserver.max_connections)"
			  : "this address has as many connections open as it may (webserver.max_connections_per_address)";
	return over_total || over_addr;
}
