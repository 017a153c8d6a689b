/* Sorting items by an order-preserving 64-bit prefix, then by their key bytes (kernels/kernel.h).
 * LSD radix sort over the prefix bytes (passes whose byte is the same for every item are skipped),
 * then a stable comparison sort of each run of equal prefixes. */
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "kernels/kernel.h"
#include "kernels/radix.h"

int ksort_cmp(const struct ksort_item *a, const struct ksort_item *b)
{
	if (a->prefix != b->prefix)
		return a->prefix < b->prefix ? -1 : 1;
	if (a->key && b->key) {
		size_t n = a->len < b->len ? a->len : b->len;
		int c = memcmp(a->key, b->key, n);
		if (c)
			return c;
		if (a->len != b->len)
			return a->len < b->len ? -1 : 1;
	}
	return (a->idx > b->idx) - (a->idx < b->idx);
}

static int cmp_items(const void *a, const void *b)
{
	return ksort_cmp(a, b);
}

KRADIX_DEFINE(radix_items, struct ksort_item, cmp_items, KRADIX_ALWAYS)

void ksort_items(struct ksort_item *v, size_t n, struct ksort_item *tmp)
{
	struct ksort_item *own = NULL;
	if (n < 2)
		return;
	if (!tmp && n >= 64)
		tmp = own = xmalloc(n * sizeof *tmp);
	radix_items(v, n, tmp);
	free(own);
}
