/* A string -> number index: open addressing with linear probing, for the lookups by id that
 * would otherwise be a linear search per call (tasks of a DAG by id, the daemon's DAG states, the
 * DAG bag's duplicate-id check) and so quadratic over a large DAG or folder.
 *
 * Keys are borrowed: each must stay valid and unchanged while the index holds it. There is no
 * removal; an owner whose keys go away clears the index and puts the remaining keys again.
 * Zero-initialise ({0}) before use; strindex_free() releases. Not thread-safe for writes;
 * concurrent strindex_get() calls on an index nobody writes are fine. */
#ifndef SLUICE_STRINDEX_H
#define SLUICE_STRINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct strindex_slot {
	const char *key; /* NULL: empty */
	uint64_t hash;
	size_t val;
};
struct strindex {
	struct strindex_slot *slots;
	size_t cap, count; /* cap: 0 or a power of two */
};

/* Maps key to val (replacing the value of an equal key). */
void strindex_put(struct strindex *ix, const char *key, size_t val);
/* The value of key in *val; false when absent. */
bool strindex_get(const struct strindex *ix, const char *key, size_t *val);
/* Forgets every key (the memory stays for the next puts). */
void strindex_clear(struct strindex *ix);
void strindex_free(struct strindex *ix);

#endif
