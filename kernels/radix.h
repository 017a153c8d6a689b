/* One LSD radix sort for the kernels' item arrays (keysort.c, sort.c, wordcount.c), generated per
 * item type so that items move by plain assignment in the hot loop.
 *
 * KRADIX_DEFINE(name, T, cmp, run_unsorted) defines
 *     static void name(T *v, size_t n, T *tmp)
 * which sorts n items of type T (each with a uint64_t `prefix`, an order-preserving encoding of
 * its key): below 64 items one qsort with cmp; otherwise stable radix passes over the prefix bytes
 * (a byte that is the same in every item is skipped), then each run of equal prefixes that
 * run_unsorted(first, last) says needs it is sorted with cmp. tmp holds n items of scratch. */
#ifndef KERNELS_RADIX_H
#define KERNELS_RADIX_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define KRADIX_DEFINE(name, T, cmp, run_unsorted)                                            \
	static void name(T *v, size_t n, T *tmp)                                             \
	{                                                                                    \
		if (n < 64) {                                                                \
			qsort(v, n, sizeof *v, cmp);                                         \
			return;                                                              \
		}                                                                            \
		uint64_t diff = 0;                                                           \
		for (size_t i = 1; i < n; i++)                                               \
			diff |= v[i].prefix ^ v[0].prefix;                                   \
		T *src = v, *dst = tmp;                                                      \
		for (int shift = 0; shift < 64; shift += 8) {                                \
			if (!((diff >> shift) & 0xff))                                       \
				continue;                                                    \
			size_t cnt[256] = {0};                                               \
			for (size_t i = 0; i < n; i++)                                       \
				cnt[(src[i].prefix >> shift) & 0xff]++;                      \
			size_t sum = 0;                                                      \
			for (int b = 0; b < 256; b++) {                                      \
				size_t c = cnt[b];                                           \
				cnt[b] = sum;                                                \
				sum += c;                                                    \
			}                                                                    \
			for (size_t i = 0; i < n; i++)                                       \
				dst[cnt[(src[i].prefix >> shift) & 0xff]++] = src[i];       \
			T *swap = src;                                                       \
			src = dst;                                                           \
			dst = swap;                                                          \
		}                                                                            \
		if (src != v)                                                                \
			memcpy(v, src, n * sizeof *v);                                       \
		for (size_t i = 0; i < n;) {                                                 \
			size_t j = i + 1;                                                    \
			while (j < n && v[j].prefix == v[i].prefix)                          \
				j++;                                                         \
			if (j - i > 1 && run_unsorted(&v[i], &v[j - 1]))                     \
				qsort(v + i, j - i, sizeof *v, cmp);                         \
			i = j;                                                               \
		}                                                                            \
	}

/* For KRADIX_DEFINE: every run of equal prefixes is sorted. */
#define KRADIX_ALWAYS(first, last) ((void)(first), (void)(last), 1)

#endif
