#include "base/strindex.h"

#include <stdlib.h>
#include <string.h>

#include "base/util.h"

/* FNV-1a, 64 bits: ids are short, and the table only needs a well-spread hash, not a keyed one
 * (the keys come from DAG files, whose authors can slow their own lookups at worst). */
static uint64_t hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		h = (h ^ *p) * 0x100000001b3ull;
	return h ^ (h >> 29);
}

static void grow(struct strindex *ix)
{
	size_t ncap = ix->cap ? ix->cap * 2 : 16;
	struct strindex_slot *ns = xcalloc(ncap, sizeof(*ns));
	for (size_t i = 0; i < ix->cap; i++) {
		struct strindex_slot *s = &ix->slots[i];
		if (!s->key)
			continue;
		size_t j = s->hash & (ncap - 1);
		while (ns[j].key)
			j = (j + 1) & (ncap - 1);
		ns[j] = *s;
	}
	free(ix->slots);
	ix->slots = ns;
	ix->cap = ncap;
}

void strindex_put(struct strindex *ix, const char *key, size_t val)
{
	if ((ix->count + 1) * 4 > ix->cap * 3)
		grow(ix);
	uint64_t h = hash_str(key);
	size_t i = h & (ix->cap - 1);
	for (;; i = (i + 1) & (ix->cap - 1)) {
		struct strindex_slot *s = &ix->slots[i];
		if (!s->key) {
			*s = (struct strindex_slot){key, h, val};
			ix->count++;
			return;
		}
		if (s->hash == h && !strcmp(s->key, key)) {
			s->key = key;
			s->val = val;
			return;
		}
	}
}

bool strindex_get(const struct strindex *ix, const char *key, size_t *val)
{
	if (!ix->count)
		return false;
	uint64_t h = hash_str(key);
	for (size_t i = h & (ix->cap - 1);; i = (i + 1) & (ix->cap - 1)) {
		const struct strindex_slot *s = &ix->slots[i];
		if (!s->key)
			return false;
		if (s->hash == h && !strcmp(s->key, key)) {
			*val = s->val;
			return true;
		}
	}
}

void strindex_clear(struct strindex *ix)
{
	if (ix->cap)
		memset(ix->slots, 0, ix->cap * sizeof(*ix->slots));
	ix->count = 0;
}

void strindex_free(struct strindex *ix)
{
	free(ix->slots);
	*ix = (struct strindex){0};
}
