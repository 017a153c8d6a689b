#include "web/dagcache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orchestrator/dagbag.h"

static struct entry {
	char dag_id[ID_MAX + 1];
	char version[65];
	struct dag *d;
	unsigned long long used;
} cache[DAGCACHE_SIZE];
static unsigned long long tick;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static struct dag *lookup(const char *dag_id, const char *version)
{
	for (size_t i = 0; i < DAGCACHE_SIZE; i++) {
		if (cache[i].d && !strcmp(cache[i].dag_id, dag_id) && !strcmp(cache[i].version, version)) {
			cache[i].used = ++tick;
			return dag_ref(cache[i].d);
		}
	}
	return NULL;
}

struct dag *dagcache_get(struct store *st, const char *dag_id, const char *version, const char *lib_dir,
			 const struct dag_lua_limits *limits)
{
	if (!version || strlen(dag_id) > ID_MAX || strlen(version) > 64)
		return NULL;
	pthread_mutex_lock(&lock);
	struct dag *d = lookup(dag_id, version);
	pthread_mutex_unlock(&lock);
	if (d)
		return d;
	/* Parsed outside the lock: another worker may parse the same version meanwhile; the first
	 * one in wins and the other copy goes. */
	d = dagbag_load_stored(st, dag_id, version, lib_dir, limits);
	if (!d)
		return NULL;
	pthread_mutex_lock(&lock);
	struct dag *had = lookup(dag_id, version);
	if (had) {
		pthread_mutex_unlock(&lock);
		dag_unref(d);
		return had;
	}
	size_t slot = 0;
	for (size_t i = 0; i < DAGCACHE_SIZE; i++) {
		if (!cache[i].d) {
			slot = i;
			break;
		}
		if (cache[i].used < cache[slot].used)
			slot = i;
	}
	struct dag *old = cache[slot].d;
	snprintf(cache[slot].dag_id, sizeof(cache[slot].dag_id), "%s", dag_id);
	snprintf(cache[slot].version, sizeof(cache[slot].version), "%s", version);
	cache[slot].d = dag_ref(d);
	cache[slot].used = ++tick;
	pthread_mutex_unlock(&lock);
	dag_unref(old);
	return d;
}

void dagcache_clear(void)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < DAGCACHE_SIZE; i++) {
		dag_unref(cache[i].d);
		cache[i].d = NULL;
	}
	pthread_mutex_unlock(&lock);
}
