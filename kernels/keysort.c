/* Sorting items by an order-preserving 64-bit prefix, then by their key bytes (kernels/kernel.h).
 * LSD radix sort over the prefix bytes (passes whose byte is the same for every item are skipped),
 * then a stable comparison sort of each run of equal prefixes. */
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "kernels/kernel.h"

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

void ksort_items(struct ksort_item *v, size_t n, struct ksort_item *tmp)
{
	struct ksort_item *own = NULL;
	if (n < 2)
		return;
	if (n < 64) {
		qsort(v, n, sizeof *v, cmp_items);
		return;
	}
	if (!tmp)
		tmp = own = xmalloc(n * sizeof *tmp);
	uint64_t diff = 0, first = v[0].prefix;
	for (size_t i = 1; i < n; i++)
		diff |= v[i].prefix ^ first;
	struct ksort_item *src = v, *dst = tmp;
	for (int shift = 0; shift < 64; shift += 8) {
		if (!((diff >> shift) & 0xff))
			continue;
		size_t cnt[256] = {0};
		for (size_t i = 0; i < n; i++)
			cnt[(src[i].prefix >> shift) & 0xff]++;
		size_t sum = 0;
		for (int b = 0; b < 256; b++) {
			size_t c = cnt[b];
			cnt[b] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			dst[cnt[(src[i].prefix >> shift) & 0xff]++] = src[i];
		struct ksort_item *t = src;
		src = dst;
		dst = t;
	}
	if (src != v)
		memcpy(v, src, n * sizeof *v);
	/* Runs of equal prefix: the radix passes kept input order, so sort each run by key then idx. */
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;
		while (j < n && v[j].prefix == v[i].prefix)
			j++;
		if (j - i > 1)
			qsort(v + i, j - i, sizeof *v, cmp_items);
		i = j;
	}
	free(own);
}
