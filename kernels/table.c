/* The arena and the open-addressing hash table of sluice-kernel (kernels/kernel.h). */
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "kernels/kernel.h"

void karena_init(struct karena *a, size_t chunk_size)
{
	memset(a, 0, sizeof *a);
	a->chunk_size = chunk_size ? chunk_size : (size_t)1 << 20;
}

void *karena_alloc(struct karena *a, size_t n)
{
	n = (n + 7) & ~(size_t)7;
	if ((size_t)(a->end - a->cur) < n) {
		size_t sz = a->chunk_size;
		if (sz < n + 16)
			sz = n + 16;
		char *c = xmalloc(sz);
		*(void **)c = a->chunks;
		a->chunks = c;
		a->bytes += sz;
		a->cur = c + 16;
		a->end = c + sz;
		/* Grow the next chunks (up to 64 MiB) so big tables use few of them. */
		if (a->chunk_size < ((size_t)64 << 20) && a->bytes >= a->chunk_size * 8)
			a->chunk_size *= 2;
	}
	void *p = a->cur;
	a->cur += n;
	return p;
}

void *karena_memdup(struct karena *a, const void *p, size_t n)
{
	void *q = karena_alloc(a, n);
	if (n)
		memcpy(q, p, n);
	return q;
}

void karena_reset(struct karena *a)
{
	void *c = a->chunks;
	while (c) {
		void *next = *(void **)c;
		free(c);
		c = next;
	}
	size_t cs = a->chunk_size;
	karena_init(a, cs);
}

void khash_init(struct khash *h, size_t vsize, size_t initial_cap)
{
	size_t cap = 64;
	while (cap < initial_cap)
		cap <<= 1;
	memset(h, 0, sizeof *h);
	h->vsize = (vsize + 7) & ~(size_t)7;
	h->cap = cap;
	h->slots = xcalloc(cap, sizeof *h->slots);
	karena_init(&h->arena, 0);
}

static void khash_grow(struct khash *h)
{
	size_t ncap = h->cap * 2, mask = ncap - 1;
	struct khash_entry **ns = xcalloc(ncap, sizeof *ns);
	for (size_t i = 0; i < h->cap; i++) {
		struct khash_entry *e = h->slots[i];
		if (!e)
			continue;
		size_t j = e->hash & mask;
		while (ns[j])
			j = (j + 1) & mask;
		ns[j] = e;
	}
	free(h->slots);
	h->slots = ns;
	h->cap = ncap;
}

void *khash_upsert(struct khash *h, const void *key, size_t len, uint64_t hash, bool *created)
{
	size_t mask = h->cap - 1, i = hash & mask;
	struct khash_entry *e;

	while ((e = h->slots[i]) != NULL) {
		if (e->hash == hash && e->klen == len && !memcmp((char *)(e + 1) + h->vsize, key, len)) {
			if (created)
				*created = false;
			return e + 1;
		}
		i = (i + 1) & mask;
	}
	e = karena_alloc(&h->arena, sizeof *e + h->vsize + len);
	e->hash = hash;
	e->klen = (uint32_t)len;
	e->user = 0;
	memset(e + 1, 0, h->vsize);
	if (len) /* an empty key may come as NULL */
		memcpy((char *)(e + 1) + h->vsize, key, len);
	h->slots[i] = e;
	if (created)
		*created = true;
	if (++h->count * 10 > h->cap * 7)
		khash_grow(h);
	return e + 1;
}

void *khash_find(const struct khash *h, const void *key, size_t len, uint64_t hash)
{
	size_t mask = h->cap - 1, i = hash & mask;
	struct khash_entry *e;

	while ((e = h->slots[i]) != NULL) {
		if (e->hash == hash && e->klen == len && !memcmp((char *)(e + 1) + h->vsize, key, len))
			return e + 1;
		i = (i + 1) & mask;
	}
	return NULL;
}

size_t khash_bytes(const struct khash *h)
{
	return h->cap * sizeof *h->slots + h->arena.bytes;
}

struct khash_entry **khash_entries(const struct khash *h)
{
	struct khash_entry **v = xmalloc((h->count + 1) * sizeof *v);
	size_t n = 0;
	for (size_t i = 0; i < h->cap; i++)
		if (h->slots[i])
			v[n++] = h->slots[i];
	return v;
}

static size_t sort_vsize;

static int cmp_entry(const void *a, const void *b)
{
	const struct khash_entry *x = *(struct khash_entry *const *)a, *y = *(struct khash_entry *const *)b;
	size_t n = x->klen < y->klen ? x->klen : y->klen;
	int c = memcmp((const char *)(x + 1) + sort_vsize, (const char *)(y + 1) + sort_vsize, n);
	if (c)
		return c;
	return (x->klen > y->klen) - (x->klen < y->klen);
}

void khash_sort_entries(const struct khash *h, struct khash_entry **v, size_t n)
{
	sort_vsize = h->vsize;
	qsort(v, n, sizeof *v, cmp_entry);
}

void khash_reset(struct khash *h)
{
	memset(h->slots, 0, h->cap * sizeof *h->slots);
	h->count = 0;
	karena_reset(&h->arena);
}

void khash_free(struct khash *h)
{
	free(h->slots);
	karena_reset(&h->arena);
	memset(h, 0, sizeof *h);
}
