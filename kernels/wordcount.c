/* sluice-kernel wordcount map|reduce: word frequencies, Hadoop-style.
 *
 * A word is a maximal run of bytes other than space, \t, \n, \v, \f, \r (what LC_ALL=C wc -w
 * counts); NUL and UTF-8 bytes are ordinary word bytes.
 *
 * map: counts the words of its split in an open-addressing hash table (the combiner), then writes
 * one file per partition, m-TTTTT.p-PPPPP.tsv ("word<TAB>count" lines sorted by byte order), the
 * partition being kpartition_of(khash64(word)). When the table outgrows --memory it is written out
 * as a sorted run to a spill file and emptied; the runs are merged (summing) at the end.
 * reduce: k-way merges the sorted map files of one partition, summing the counts of equal words, into
 * part-PPPPP.tsv, sorted by byte order. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include "base/util.h"
#include "kernels/kernel.h"
#include "kernels/radix.h"

static const char map_usage[] =
	"usage: sluice-kernel wordcount map -o SHUFFLE_DIR [--split I/N] [--partitions P] [--memory SIZE]\n"
	"                                   INPUT...\n"
	"Count the words of split I of N of the inputs (files, or directories read recursively) and write\n"
	"SHUFFLE_DIR/m-TTTTT.p-PPPPP.tsv for every partition P: \"word<TAB>count\" lines sorted by byte\n"
	"order, aggregated (the combiner). T is the task number (--task, default I). A word is a maximal run\n"
	"of bytes other than space, \\t, \\n, \\v, \\f and \\r.\n\n"
	"  -o, --output DIR      shuffle directory (created)\n"
	"  --split I/N           byte-range split I (0-based) of N, cut at whitespace (default 0/1)\n"
	"  --partitions P        number of reduce partitions (default 1)\n"
	"  --memory SIZE         memory bound (default 1G): above it the table spills sorted runs to disk\n"
	"  --task N, --tasks N   task number and number of map tasks (defaults: I and N)\n"
	"  --tmpdir DIR          where spill files go (default DIR/_temporary)\n"
	"Output is committed atomically with DIR/_manifest-TTTTT.json; a committed task is not redone.\n";

static const char reduce_usage[] =
	"usage: sluice-kernel wordcount reduce -o OUT_DIR --partition P --partitions N [--maps M]\n"
	"                                      SHUFFLE_DIR|FILE...\n"
	"Merge the sorted map outputs of partition P (SHUFFLE_DIR/m-*.p-PPPPP.tsv, or the FILEs named) into\n"
	"OUT_DIR/part-PPPPP.tsv: \"word<TAB>count\" lines sorted by byte order. The reduce is task P of N:\n"
	"OUT_DIR/_SUCCESS appears when all N partitions are committed.\n\n"
	"  -o, --output DIR      output directory (created)\n"
	"  --partition P         the partition to reduce (0-based)\n"
	"  --partitions N        number of partitions (= reduce tasks)\n"
	"  --maps M              number of map tasks: every one of SHUFFLE_DIR/_manifest-00000..M-1 must\n"
	"                        exist (default: SHUFFLE_DIR/_SUCCESS must exist)\n";

/* Whitespace as LC_ALL=C isspace(): space, \t \n \v \f \r. */
static unsigned char ws[256];

static void ws_init(void)
{
	ws[' '] = ws['\t'] = ws['\n'] = ws['\v'] = ws['\f'] = ws['\r'] = 1;
}

/* Split boundaries for words: a word never spans whitespace, so a split may start at any
 * whitespace byte (not only at a line end): one huge line still spreads over every split. The
 * boundary is pos if the byte before it is whitespace, else the next whitespace byte (or len). */
static uint64_t ws_resync(const char *data, uint64_t len, uint64_t pos, void *ctx)
{
	(void)ctx;
	if (pos == 0 || pos >= len)
		return pos >= len ? len : 0;
	while (pos < len && !ws[(unsigned char)data[pos - 1]])
		pos++;
	return pos;
}

/* ---- sorted run: "word\tcount\n" lines read through a kreader ---- */

struct run {
	struct kreader r;
	const char *w;       /* current record (inside r's buffer) */
	size_t wl;
	uint64_t cnt;
};

/* Advance to the next record: 1, 0 at the end, -1 on a malformed line (*err). */
static int run_next(struct run *r, char **err)
{
	const char *line;
	size_t n;
	int k = kr_line(&r->r, &line, &n, err);
	if (k <= 0)
		return k;
	const char *le = line + n, *tab = le;
	while (tab > line && tab[-1] != '\t')
		tab--;
	if (tab == line || tab == le) {
		*err = kerrf("%s:%llu: not a \"word<TAB>count\" line", r->r.name, (unsigned long long)r->r.line);
		return -1;
	}
	uint64_t c = 0;
	for (const char *q = tab; q < le; q++) {
		if (*q < '0' || *q > '9' || c > UINT64_MAX / 10) {
			*err = kerrf("%s:%llu: bad count", r->r.name, (unsigned long long)r->r.line);
			return -1;
		}
		c = c * 10 + (uint64_t)(*q - '0');
	}
	r->w = line;
	r->wl = (size_t)(tab - 1 - line);
	r->cnt = c;
	return 1;
}

static int run_cmp(const struct run *a, const struct run *b)
{
	size_t n = a->wl < b->wl ? a->wl : b->wl;
	int c = memcmp(a->w, b->w, n);
	return c ? c : (a->wl > b->wl) - (a->wl < b->wl);
}

static void heap_down(struct run **h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, m = i;
		if (l < n && run_cmp(h[l], h[m]) < 0)
			m = l;
		if (l + 1 < n && run_cmp(h[l + 1], h[m]) < 0)
			m = l + 1;
		if (m == i)
			return;
		struct run *t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

/* Merge sorted runs, summing equal words, into w. Returns 0 or -1 (*err). */
static int merge_runs(struct run *runs, size_t k, struct kwriter *w, uint64_t *rows_in, char **err)
{
	struct run **h = xmalloc((k + 1) * sizeof *h);
	size_t n = 0, wcap = 0;
	char *word = NULL;
	int rc = 0;
	for (size_t i = 0; i < k; i++) {
		int r = run_next(&runs[i], err);
		if (r < 0) {
			rc = -1;
			goto out;
		}
		if (r)
			h[n++] = &runs[i];
	}
	for (size_t i = n; i-- > 0;)
		heap_down(h, n, i);
	while (n > 0) {
		/* Copy the word: advancing its run may refill (and move) that run's buffer. */
		size_t wl = h[0]->wl;
		if (wl > wcap) {
			wcap = wl * 2 + 64;
			word = xrealloc(word, wcap);
		}
		memcpy(word, h[0]->w, wl);
		uint64_t sum = 0;
		while (n > 0 && h[0]->wl == wl && !memcmp(h[0]->w, word, wl)) {
			sum += h[0]->cnt;
			(*rows_in)++;
			int r = run_next(h[0], err);
			if (r < 0) {
				rc = -1;
				goto out;
			}
			if (!r)
				h[0] = h[--n];
			heap_down(h, n, 0);
		}
		kw_write(w, word, wl);
		kw_putc(w, '\t');
		kw_u64(w, sum);
		kw_putc(w, '\n');
		w->rows++;
	}
out:
	free(word);
	free(h);
	return rc;
}

/* ---- map ---- */

/* The map's table, built for this job: open addressing with linear probing over 32-byte slots.
 * Words of up to 16 bytes live in the slot itself (k0, k1: the bytes, zero-padded), so the common
 * lookup touches one cache line and no key memory; longer words are copied into the arena and the
 * slot holds their address (k0) and length (k1). tag = hash with its low byte replaced by the
 * length (1..16) or 0xff for a long word; 0 marks an empty slot. The slot index is the hash's high
 * bits. The partition is khash64(word), computed once per distinct word when the table is written. */
struct wslot {
	uint64_t tag, k0, k1, count;
};
struct wtab {
	struct wslot *s;
	size_t cap, count;
	int shift;           /* 64 - log2(cap) */
	bool mapped;         /* s came from wslots_alloc's mmap (else from xcalloc) */
	struct karena arena;
};

/* Slot arrays of 2 MB and more are mapped directly, 2 MB-aligned, and marked for transparent huge
 * pages: lookups land on random slots of a table of many MB, and with 4 KB pages most of them
 * would miss the TLB as well as the cache (a page walk per word, prefetches included). */
#define WHUGE ((size_t)2 << 20)

static struct wslot *wslots_alloc(size_t cap, bool *mapped)
{
	size_t bytes = cap * sizeof(struct wslot);
	*mapped = false;
	if (bytes < WHUGE)
		return xcalloc(cap, sizeof(struct wslot));
	char *p = mmap(NULL, bytes + WHUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return xcalloc(cap, sizeof(struct wslot));
	char *a = (char *)(((uintptr_t)p + WHUGE - 1) & ~(uintptr_t)(WHUGE - 1));
	if (a > p)
		munmap(p, (size_t)(a - p));
	if (p + WHUGE > a)
		munmap(a + bytes, (size_t)(p + WHUGE - a));
#ifdef MADV_HUGEPAGE
	madvise(a, bytes, MADV_HUGEPAGE);
#endif
	*mapped = true;
	return (struct wslot *)(void *)a; /* zero-filled, as anonymous mappings are */
}

static void wslots_free(struct wslot *s, size_t cap, bool mapped)
{
	if (mapped)
		munmap(s, cap * sizeof *s);
	else
		free(s);
}

static void wtab_init(struct wtab *t, int bits)
{
	t->cap = (size_t)1 << bits;
	t->shift = 64 - bits;
	t->count = 0;
	t->s = wslots_alloc(t->cap, &t->mapped);
	karena_init(&t->arena, 0);
}

static void wtab_free(struct wtab *t)
{
	if (t->s)
		wslots_free(t->s, t->cap, t->mapped);
	t->s = NULL;
	karena_reset(&t->arena);
}

static size_t wtab_bytes(const struct wtab *t)
{
	return t->cap * sizeof *t->s + t->arena.bytes;
}

static void wtab_grow(struct wtab *t)
{
	size_t ncap = t->cap * 2;
	int nshift = t->shift - 1;
	bool nmapped;
	struct wslot *ns = wslots_alloc(ncap, &nmapped);
	for (size_t i = 0; i < t->cap; i++) {
		if (!t->s[i].tag)
			continue;
		size_t j = t->s[i].tag >> nshift;
		while (ns[j].tag)
			j = (j + 1) & (ncap - 1);
		ns[j] = t->s[i];
	}
	wslots_free(t->s, t->cap, t->mapped);
	t->s = ns;
	t->cap = ncap;
	t->shift = nshift;
	t->mapped = nmapped;
}

static inline uint64_t wmix(uint64_t a, uint64_t b)
{
	__uint128_t r = (__uint128_t)a * b;
	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static void wtab_insert(struct wtab *t, size_t i, uint64_t tag, uint64_t k0, uint64_t k1, uint64_t n)
{
	t->s[i] = (struct wslot){tag, k0, k1, n};
	if (++t->count * 10 > t->cap * 7)
		wtab_grow(t);
}

/* A word ready for the table: its key words and tag (wtab_prep), looked up later (wtab_apply), so
 * that its slot can be prefetched while the words before it are counted. A long word (tag's low
 * byte 0xff) has only its tag here; the lookup reads the word again. */
struct wpend {
	uint64_t k0, k1, tag;
};

/* kmask[len]: which of the 16 bytes loaded from a word's start (as k0, k1) belong to a word of
 * len <= 16 bytes. A table, not len >= 8 / len == 16 tests: lengths change from one word to the
 * next, so such branches mispredict on a good share of the words. */
static const uint64_t kmask[17][2] = {
	{0x0ull, 0x0ull},
	{0xffull, 0x0ull},
	{0xffffull, 0x0ull},
	{0xffffffull, 0x0ull},
	{0xffffffffull, 0x0ull},
	{0xffffffffffull, 0x0ull},
	{0xffffffffffffull, 0x0ull},
	{0xffffffffffffffull, 0x0ull},
	{0xffffffffffffffffull, 0x0ull},
	{0xffffffffffffffffull, 0xffull},
	{0xffffffffffffffffull, 0xffffull},
	{0xffffffffffffffffull, 0xffffffull},
	{0xffffffffffffffffull, 0xffffffffull},
	{0xffffffffffffffffull, 0xffffffffffull},
	{0xffffffffffffffffull, 0xffffffffffffull},
	{0xffffffffffffffffull, 0xffffffffffffffull},
	{0xffffffffffffffffull, 0xffffffffffffffffull},
};

static inline void wtab_prep(struct wpend *q, const unsigned char *w, size_t len)
{
	uint64_t k0, k1;
	if (__builtin_expect(len <= 16 && ((uintptr_t)w & 4095) <= 4096 - 16, 1)) {
		/* both 8-byte loads stay inside w's page, which is mapped */
		memcpy(&k0, w, 8);
		memcpy(&k1, w + 8, 8);
		k0 &= kmask[len][0];
		k1 &= kmask[len][1];
	} else if (len <= 16) {
		unsigned char buf[16] = {0};
		memcpy(buf, w, len);
		memcpy(&k0, buf, 8);
		memcpy(&k1, buf + 8, 8);
	} else {
		q->tag = khash64(w, len) | 0xff;
		return;
	}
	q->k0 = k0;
	q->k1 = k1;
	q->tag = (wmix(k0 ^ 0xa0761d6478bd642full, k1 ^ 0xe7037ed1a0b428dbull ^ len) & ~0xffull) | len;
}

/* The table's fields the lookups read, copied into locals: kept in registers across the scan
 * (through t they would be reloaded after every store, which might alias them), and refreshed
 * after an insert, which may grow the table. */
struct wview {
	struct wslot *s;
	size_t mask;
	int shift;
};

static inline void wtab_view(const struct wtab *t, struct wview *v)
{
	v->s = t->s;
	v->mask = t->cap - 1;
	v->shift = t->shift;
}

/* The slot index is the tag's high bits (the low byte, replaced by the length, is never among them). */
static inline void wtab_prefetch(const struct wview *v, const struct wpend *q)
{
	__builtin_prefetch(&v->s[q->tag >> v->shift]);
}

/* Count one occurrence of the prepared word (w, len: the word itself, read again if it is long). */
static inline void wtab_apply(struct wtab *t, struct wview *v, const struct wpend *q, const unsigned char *w,
			       size_t len)
{
	size_t i = q->tag >> v->shift;
	if (__builtin_expect((q->tag & 0xff) != 0xff, 1)) {
		for (;;) {
			struct wslot *s = &v->s[i];
			/* one test for the three words: the common case is a hit in the first slot */
			if (!((s->tag ^ q->tag) | (s->k0 ^ q->k0) | (s->k1 ^ q->k1))) {
				s->count++;
				return;
			}
			if (!s->tag) {
				wtab_insert(t, i, q->tag, q->k0, q->k1, 1);
				wtab_view(t, v);
				return;
			}
			i = (i + 1) & v->mask;
		}
	}
	for (;;) {
		struct wslot *s = &v->s[i];
		if (s->tag == q->tag && s->k1 == len && !memcmp((const char *)(uintptr_t)s->k0, w, len)) {
			s->count++;
			return;
		}
		if (!s->tag) {
			char *copy = karena_memdup(&t->arena, w, len);
			wtab_insert(t, i, q->tag, (uint64_t)(uintptr_t)copy, len, 1);
			wtab_view(t, v);
			return;
		}
		i = (i + 1) & v->mask;
	}
}

static inline const char *wslot_key(const struct wslot *s, size_t *len)
{
	if ((s->tag & 0xff) == 0xff) {
		*len = (size_t)s->k1;
		return (const char *)(uintptr_t)s->k0;
	}
	*len = s->tag & 0xff;
	return (const char *)&s->k0; /* k0 and k1 are adjacent: the 16 inline bytes */
}

struct wcmap {
	struct kcommon c;
	struct wtab h;
	struct kout *out;
	struct kstats st;
	uint32_t P;
	/* spills: one fd per run, P+1 section offsets per run */
	int *spill_fd;
	uint64_t *spill_off;
	size_t nspill;
	size_t budget;
	char *err;
};

/* Write the table sorted, partition by partition, to writers (P of them) or to one spill writer
 * whose section offsets go to off[0..P]. */
/* Emitting the table: 16-byte items (the key's first 8 bytes big-endian, the slot), grouped by
 * partition, LSD radix sorted on the prefix, then equal-prefix runs sorted by the whole key. */
struct witem {
	uint64_t prefix;
	const struct wslot *s;
};

static int witem_cmp(const void *pa, const void *pb)
{
	const struct witem *a = pa, *b = pb;
	if (a->prefix != b->prefix)
		return a->prefix < b->prefix ? -1 : 1;
	size_t la, lb;
	const char *ka = wslot_key(a->s, &la), *kb = wslot_key(b->s, &lb);
	int c = memcmp(ka, kb, la < lb ? la : lb);
	return c ? c : (la > lb) - (la < lb);
}

KRADIX_DEFINE(witem_sort, struct witem, witem_cmp, KRADIX_ALWAYS)

static void emit_table(struct wcmap *m, struct kwriter **ws_out, struct kwriter *spill, uint64_t *off)
{
	struct wtab *t = &m->h;
	size_t n = t->count, k = 0;
	struct witem *items = xmalloc((n + 1) * sizeof *items), *tmp = xmalloc((n + 1) * sizeof *tmp);
	uint32_t *part = xmalloc((n + 1) * sizeof *part);
	size_t *cnt = xcalloc(m->P + 1, sizeof *cnt);
	/* pass 1 (into tmp): every slot with its prefix and partition */
	for (size_t i = 0; i < t->cap; i++) {
		const struct wslot *sl = &t->s[i];
		if (!sl->tag)
			continue;
		size_t len;
		const char *key = wslot_key(sl, &len);
		tmp[k].s = sl;
		tmp[k].prefix = len <= 16 ? __builtin_bswap64(sl->k0) : kkey_prefix(key, len);
		part[k] = m->P == 1 ? 0 : kpartition_of(khash64(key, len), m->P);
		cnt[part[k] + 1]++;
		k++;
	}
	for (uint32_t p = 0; p < m->P; p++)
		cnt[p + 1] += cnt[p];
	for (size_t i = 0; i < n; i++)
		items[cnt[part[i]]++] = tmp[i];
	free(part);
	size_t start = 0;
	for (uint32_t p = 0; p < m->P; p++) {
		size_t end = cnt[p];
		struct kwriter *w = spill ? spill : ws_out[p];
		if (off)
			off[p] = spill->bytes + spill->len;
		witem_sort(items + start, end - start, tmp);
		for (size_t i = start; i < end; i++) {
			/* sorted order visits the slots at random: ask for them a few words early */
			if (i + 16 < end)
				__builtin_prefetch(items[i + 16].s);
			size_t len;
			const char *key = wslot_key(items[i].s, &len);
			kw_write(w, key, len);
			kw_putc(w, '\t');
			kw_u64(w, items[i].s->count);
			kw_putc(w, '\n');
			w->rows++;
		}
		start = end;
	}
	if (off)
		off[m->P] = spill->bytes + spill->len;
	free(tmp);
	free(cnt);
	free(items);
}

static int spill_table(struct wcmap *m)
{
	int fd = kspill_open(kout_tmpdir(m->out), &m->err);
	if (fd < 0)
		return -1;
	struct kwriter w;
	kw_init(&w, fd, kbuf_size(m->c.memory));
	m->spill_fd = xrealloc(m->spill_fd, (m->nspill + 1) * sizeof *m->spill_fd);
	m->spill_off = xrealloc(m->spill_off, (m->nspill + 1) * (m->P + 1) * sizeof *m->spill_off);
	emit_table(m, NULL, &w, m->spill_off + m->nspill * (m->P + 1));
	int rc = kw_finish(&w);
	m->spill_fd[m->nspill++] = fd;
	if (rc) {
		m->err = kerrf("writing a spill file: %s", strerror(-rc));
		return -1;
	}
	if (m->c.verbose)
		kwarn("wordcount map: spilled %zu words (run %zu, peak RSS %llu MB)", m->h.count, m->nspill, (unsigned long long)(kpeak_rss() >> 20));
	wtab_free(&m->h);
	wtab_init(&m->h, 16);
	return 0;
}

static inline bool over_budget(const struct wcmap *m)
{
	/* the table now, plus what emit_table will allocate (two item arrays and the partitions) */
	return wtab_bytes(&m->h) + m->h.count * (2 * sizeof(struct witem) + 4) > m->budget;
}

/* A 64-bit mask of the whitespace bytes among p[0..64): SSE2 compares (baseline on x86-64), or
 * AVX2 / AVX-512 where the CPU has them (chosen at run time, see map_chunk), else one byte at a
 * time. */
#if defined(__x86_64__) && defined(__GNUC__)
#define WC_X86 1
#include <immintrin.h>
#endif

#if defined(__SSE2__)
#include <emmintrin.h>
static inline uint64_t ws_mask64(const unsigned char *p)
{
	const __m128i sp = _mm_set1_epi8(' '), nine = _mm_set1_epi8(9), four = _mm_set1_epi8(4);
	uint64_t m = 0;
	for (int k = 0; k < 4; k++) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * k));
		__m128i d = _mm_sub_epi8(v, nine); /* \t..\r become 0..4 */
		__m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(d, four), d);
		__m128i is = _mm_or_si128(ctl, _mm_cmpeq_epi8(v, sp));
		m |= (uint64_t)(uint32_t)_mm_movemask_epi8(is) << (16 * k);
	}
	return m;
}
#else
static inline uint64_t ws_mask64(const unsigned char *p)
{
	uint64_t m = 0;
	for (int k = 0; k < 64; k++)
		m |= (uint64_t)ws[p[k]] << k;
	return m;
}
#endif

#ifdef WC_X86
#define WC_AVX2 __attribute__((target("avx2,bmi,bmi2,popcnt")))
/* A byte is whitespace iff it equals nib[its low nibble]: ' ' is 0x20 and \t..\r are 0x09..0x0d,
 * six distinct nibbles; the other entries are 0, which no byte with that nibble equals, and vpshufb
 * gives 0 for bytes >= 0x80. Two instructions per 32 bytes. */
WC_AVX2 static inline uint64_t ws_mask64_avx2(const unsigned char *p)
{
	const __m256i nib = _mm256_setr_epi8(' ', 0, 0, 0, 0, 0, 0, 0, 0, '\t', '\n', '\v', '\f', '\r', 0, 0,
					     ' ', 0, 0, 0, 0, 0, 0, 0, 0, '\t', '\n', '\v', '\f', '\r', 0, 0);
	__m256i a = _mm256_loadu_si256((const __m256i *)(const void *)p);
	__m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(p + 32));
	uint32_t ma = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_shuffle_epi8(nib, a), a));
	uint32_t mb = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_shuffle_epi8(nib, b), b));
	return ma | (uint64_t)mb << 32;
}
#endif

#ifdef WC_X86
#define WC_AVX512 __attribute__((target("avx2,bmi,bmi2,popcnt,avx512f,avx512bw,avx512vl,avx512vbmi2")))
/* The same test on 64 bytes at once, straight into a mask register. */
WC_AVX512 static inline uint64_t ws_mask64_avx512(const unsigned char *p)
{
	const __m512i nib = _mm512_broadcast_i32x4(
		_mm_setr_epi8(' ', 0, 0, 0, 0, 0, 0, 0, 0, '\t', '\n', '\v', '\f', '\r', 0, 0));
	__m512i v = _mm512_loadu_si512((const void *)p);
	return _mm512_cmpeq_epi8_mask(_mm512_shuffle_epi8(nib, v), v);
}

static const unsigned char iota64[64] = {
	0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27,
	28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53,
	54, 55, 56, 57, 58, 59, 60, 61, 62, 63,
};

/* flatten with vpcompressb: the offsets of the set bits, in order, in one instruction, then widened
 * to pointers eight at a time (same overrun as flatten's). */
WC_AVX512 static inline size_t flatten512(const unsigned char **o, uint64_t bits, const unsigned char *blk)
{
	unsigned char idx[64];
	__m512i iota = _mm512_loadu_si512((const void *)iota64);
	_mm512_storeu_si512((void *)idx, _mm512_maskz_compress_epi8(bits, iota));
	size_t n = (size_t)__builtin_popcountll(bits);
	__m512i b = _mm512_set1_epi64((long long)(uintptr_t)blk);
	for (size_t k = 0; k < n; k += 8) {
		__m512i off = _mm512_cvtepu8_epi64(_mm_loadl_epi64((const __m128i *)(const void *)(idx + k)));
		_mm512_storeu_si512((void *)(o + k), _mm512_add_epi64(b, off));
	}
	return n;
}
#endif

/* Whether popcount is an instruction (not a libgcc call) in the baseline build. */
#if !defined(__x86_64__) || defined(__POPCNT__)
#define WC_POPCNT 1
#else
#define WC_POPCNT 0
#endif

/* Append blk + i to o for every set bit i of bits (in order); returns how many. With a cheap
 * popcount the stores are unrolled eight at a time, so the branch is on the count (about ten per
 * block for text, often predictable) instead of a loop exit per bit; the stores past the count are
 * harmless (o has room) and overwritten later. ctz of bits | 1 << 63 equals ctz of bits when bits
 * is non-zero and stays defined once it is 0. */
static inline __attribute__((always_inline)) size_t flatten(const unsigned char **o, uint64_t bits,
							    const unsigned char *blk, int fast)
{
	if (!fast) {
		size_t n = 0;
		for (; bits; bits &= bits - 1)
			o[n++] = blk + __builtin_ctzll(bits);
		return n;
	}
	size_t n = (size_t)__builtin_popcountll(bits);
	for (size_t k = 0; k < n; k += 8)
		for (int j = 0; j < 8; j++) {
			o[k + (size_t)j] = blk + __builtin_ctzll(bits | 1ull << 63);
			bits &= bits - 1;
		}
	return n;
}

/* The scan works in windows of WWIN blocks of 64 bytes: first the start and end of every word in
 * the window (from whitespace masks: a start is a word byte after whitespace, an end is whitespace
 * after a word byte), then the words (wscan_count). Keeping the two apart keeps the per-word loops
 * free of the per-block branches and the per-block loop free of the per-word ones. 2 KB windows:
 * the few hundred positions and prepared keys of a window of text stay in L1 between the passes. */
#define WWIN 32
/* How far ahead of the scan the input is prefetched: one window. The scan alone outruns the
 * hardware prefetcher (which stops at 4 KB pages) and would wait for memory at every page; the
 * lead is the time the previous window's words take to count. */
#define WAHEAD (WWIN * 64)
/* room for the starts of one window (at most one per two bytes), the word carried over from the
 * previous one, and flatten's overrun */
#define WPOS (WWIN * 32 + 1 + 8)

/* The starts and ends of one window's words and the words prepared for the table (on the heap:
 * too big for a comfortable stack frame). */
struct wscan {
	const unsigned char *spos[WPOS], *epos[WPOS];
	struct wpend q[WPOS];
};

/* Count words [0, n) of the window: all prepared and their slots prefetched first, then all looked
 * up, so a slot is requested hundreds of words before it is needed and neither loop has more than
 * its own exit to predict. */
static inline __attribute__((always_inline)) void wscan_count(struct wtab *t, struct wview *v, struct wscan *sc,
							      size_t n)
{
	for (size_t k = 0; k < n; k++) {
		wtab_prep(&sc->q[k], sc->spos[k], (size_t)(sc->epos[k] - sc->spos[k]));
		wtab_prefetch(v, &sc->q[k]);
	}
	for (size_t k = 0; k < n; k++)
		wtab_apply(t, v, &sc->q[k], sc->spos[k], (size_t)(sc->epos[k] - sc->spos[k]));
}

/* isa 2: AVX-512 (BW, VBMI2), 1: AVX2 (the caller has the matching target attribute), 0: the
 * baseline; fast: popcount is an instruction. */
static inline __attribute__((always_inline)) int map_scan(struct kchunk *ch, struct wcmap *m, struct wscan *sc,
							  int isa, int fast)
{
	const unsigned char *base = (const unsigned char *)ch->data + ch->begin;
	const unsigned char *end = (const unsigned char *)ch->data + ch->end;
	/* Drop consumed input pages every `step` bytes so the mapping does not grow the RSS. */
	size_t step = m->c.memory / 16 < (32u << 20) ? m->c.memory / 16 : (32u << 20);
	const unsigned char *p = base, *release = base + step;
	uint64_t words = 0, carry = 0; /* carry: 1 if the byte before the block is a word byte */
	size_t ns = 0, ne = 0;         /* starts and ends found, the starts' first one carried over */
	unsigned char tail[64];
	struct wview v;

	wtab_view(&m->h, &v);
	m->st.bytes_in += ch->end - ch->begin;
	while (p < end) {
		const unsigned char *wend = (size_t)(end - p) > WWIN * 64 ? p + WWIN * 64 : end;
		for (; p < wend; p += 64) {
			const unsigned char *blk = p;
			uint64_t valid = ~0ull;
			if (wend - p < 64) { /* the last, partial block: padded with spaces */
				memset(tail, ' ', sizeof tail);
				memcpy(tail, p, (size_t)(wend - p));
				blk = tail;
				valid = (1ull << (wend - p)) - 1;
			}
			uint64_t wsm;
			__builtin_prefetch(p + WAHEAD); /* past the end it is a no-op, not a fault */
#ifdef WC_X86
			if (isa == 2)
				wsm = ws_mask64_avx512(blk);
			else if (isa == 1)
				wsm = ws_mask64_avx2(blk);
			else
#endif
				wsm = ws_mask64(blk);
			uint64_t word = ~wsm & valid;
			uint64_t prev = (word << 1) | carry;
			carry = word >> 63;
#ifdef WC_X86
			if (isa == 2) {
				ns += flatten512(sc->spos + ns, word & ~prev, p);
				ne += flatten512(sc->epos + ne, ~word & prev, p);
				continue;
			}
#endif
			ns += flatten(sc->spos + ns, word & ~prev, p, fast);
			ne += flatten(sc->epos + ne, ~word & prev, p, fast);
		}
		/* Starts and ends alternate: word k is [spos[k], epos[k]); a start without its end yet
		 * (ns == ne + 1) is carried into the next window. */
		wscan_count(&m->h, &v, sc, ne);
		words += ne;
		sc->spos[0] = sc->spos[ne];
		ns -= ne;
		ne = 0;
		if (p >= release) {
			kchunk_release(ch, (const char *)(ns ? sc->spos[0] : p));
			release = p + step;
		}
		if (m->h.count && over_budget(m)) {
			if (spill_table(m))
				return -1;
			wtab_view(&m->h, &v);
		}
	}
	if (ns) { /* a word that runs to the end */
		sc->epos[0] = end;
		wscan_count(&m->h, &v, sc, 1);
		words++;
	}
	m->st.rows_in += words;
	if (m->h.count && over_budget(m) && spill_table(m))
		return -1;
	return 0;
}

#ifdef WC_X86
WC_AVX512 static int map_scan_avx512(struct kchunk *ch, struct wcmap *m, struct wscan *sc)
{
	return map_scan(ch, m, sc, 2, 1);
}

WC_AVX2 static int map_scan_avx2(struct kchunk *ch, struct wcmap *m, struct wscan *sc)
{
	return map_scan(ch, m, sc, 1, 1);
}
#endif

static int map_scan_base(struct kchunk *ch, struct wcmap *m, struct wscan *sc)
{
	return map_scan(ch, m, sc, 0, WC_POPCNT);
}

static int map_chunk(struct kchunk *ch, void *ctx)
{
	struct wcmap *m = ctx;
	struct wscan *sc = xmalloc(sizeof *sc);
	int r;
#ifdef WC_X86
	/* SLUICE_KERNEL_ISA=avx2 or =base caps the choice: to test or time the other paths here */
	const char *cap = getenv("SLUICE_KERNEL_ISA");
	int top = !cap ? 2 : !strcmp(cap, "avx2") ? 1 : !strcmp(cap, "base") ? 0 : 2;
	__builtin_cpu_init();
	bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi") &&
		    __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("popcnt");
	bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
		      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vbmi2");
	if (avx512 && top >= 2)
		r = map_scan_avx512(ch, m, sc);
	else if (avx2 && top >= 1)
		r = map_scan_avx2(ch, m, sc);
	else
#endif
		r = map_scan_base(ch, m, sc);
	free(sc);
	return r;
}

static int map_finish(struct wcmap *m)
{
	struct kwriter **w = xcalloc(m->P, sizeof *w);
	int rc = 0;
	for (uint32_t p = 0; p < m->P && !rc; p++) {
		char name[64];
		kshuffle_name(name, sizeof name, m->c.task, p);
		if (!(w[p] = kout_file(m->out, name, &m->err)))
			rc = -1;
	}
	if (rc)
		goto out;
	if (m->nspill == 0) {
		emit_table(m, w, NULL, NULL);
		goto out;
	}
	if (m->h.count && spill_table(m)) {
		rc = -1;
		goto out;
	}
	wtab_free(&m->h);
	struct run *runs = xcalloc(m->nspill, sizeof *runs);
	for (uint32_t p = 0; p < m->P && !rc; p++) {
		uint64_t dummy = 0;
		for (size_t s = 0; s < m->nspill; s++) {
			const uint64_t *off = m->spill_off + s * (m->P + 1);
			kr_init(&runs[s].r, m->spill_fd[s], off[p], off[p + 1], 0, "spill file");
		}
		rc = merge_runs(runs, m->nspill, w[p], &dummy, &m->err);
		for (size_t s = 0; s < m->nspill; s++)
			kr_free(&runs[s].r);
	}
	free(runs);
out:
	free(w);
	return rc;
}

static int map_opt(void *ctx, int id, const char *arg, char **err)
{
	(void)ctx; (void)id; (void)arg; (void)err;
	return 0;
}

static int wc_map(int argc, char **argv)
{
	struct wcmap m = {0};
	struct kinput in = {0};
	int r = kopt_parse(argc, argv, NULL, map_opt, &m, &m.c, map_usage);
	if (r)
		return r == 1 ? 0 : r;
	if (m.c.ninputs == 0) {
		fprintf(stderr, "sluice-kernel wordcount map: no input (try --help)\n");
		free(m.c.inputs);
		return 2;
	}
	m.P = m.c.partitions;
	m.budget = m.c.memory / 2;
	r = kout_open(&m.out, &m.c, "wordcount-map", &m.err);
	if (r)
		goto done;
	wtab_init(&m.h, 16);
	if (kin_list(&in, m.c.inputs, m.c.ninputs, &m.err) ||
	    kin_split(&in, m.c.split_i, m.c.split_n, ws_resync, NULL, map_chunk, &m, &m.err) || map_finish(&m)) {
		kout_abort(m.out);
		r = -1;
		goto done;
	}
	r = kout_commit(m.out, &m.st, &m.err);
done:
	for (size_t s = 0; s < m.nspill; s++)
		close(m.spill_fd[s]);
	free(m.spill_fd);
	free(m.spill_off);
	wtab_free(&m.h);
	kin_free(&in);
	free(m.c.inputs);
	if (r < 0) {
		fprintf(stderr, "sluice-kernel wordcount map: %s\n", m.err ? m.err : "failed");
		free(m.err);
		return 1;
	}
	if (r == 1 && m.c.verbose)
		kwarn("wordcount map: task %d already committed; nothing to do", m.c.task);
	free(m.err);
	return 0;
}

/* ---- reduce ---- */

struct wcred {
	struct kcommon c;
	int64_t partition;
	int64_t maps;
};

enum { R_PARTITION = 1, R_MAPS };
static const struct kopt reduce_opts[] = {
	{"partition", 0, 1, R_PARTITION},
	{"maps", 0, 1, R_MAPS},
	{NULL, 0, 0, 0},
};

static int reduce_opt(void *ctx, int id, const char *arg, char **err)
{
	struct wcred *r = ctx;
	uint64_t v;
	if (kparse_u64(arg, &v) || v > 1000000 || (id == R_MAPS && v == 0)) {
		*err = kerrf("--%s '%s': expected a number", id == R_MAPS ? "maps" : "partition", arg);
		return -1;
	}
	if (id == R_PARTITION)
		r->partition = (int64_t)v;
	else
		r->maps = (int64_t)v;
	return 0;
}

static int wc_reduce(int argc, char **argv)
{
	struct wcred rd = {.partition = -1};
	struct kout *out = NULL;
	struct kstats st = {0};
	char **files = NULL, *err = NULL;
	size_t nfiles = 0;
	struct run *runs = NULL;
	int *fds = NULL;
	int r = kopt_parse(argc, argv, reduce_opts, reduce_opt, &rd, &rd.c, reduce_usage);
	if (r)
		return r == 1 ? 0 : r;
	if (rd.partition < 0 || rd.partition >= (int64_t)rd.c.partitions || rd.c.ninputs == 0) {
		fprintf(stderr, "sluice-kernel wordcount reduce: need --partition P below --partitions N and an input "
				"(try --help)\n");
		free(rd.c.inputs);
		return 2;
	}
	rd.c.task = (int)rd.partition;
	rd.c.tasks = (int)rd.c.partitions;
	r = kout_open(&out, &rd.c, "wordcount-reduce", &err);
	if (r)
		goto done;
	for (size_t i = 0; i < rd.c.ninputs && !r; i++) {
		struct stat sb;
		if (stat(rd.c.inputs[i], &sb)) {
			err = kerrf("%s: %s", rd.c.inputs[i], strerror(errno));
			r = -1;
		} else if (S_ISDIR(sb.st_mode)) {
			r = kshuffle_files(rd.c.inputs[i], (uint32_t)rd.partition, (int)rd.maps, &files, &nfiles, &err);
		} else {
			files = xrealloc(files, (nfiles + 1) * sizeof *files);
			files[nfiles++] = xstrdup(rd.c.inputs[i]);
		}
	}
	kraise_nofile();
	runs = xcalloc(nfiles + 1, sizeof *runs);
	fds = xcalloc(nfiles + 1, sizeof *fds);
	for (size_t i = 0; i < nfiles; i++)
		fds[i] = -1;
	for (size_t i = 0; i < nfiles && !r; i++) {
		struct stat sb;
		fds[i] = open(files[i], O_RDONLY | O_CLOEXEC);
		if (fds[i] < 0 || fstat(fds[i], &sb)) {
			err = kerrf("%s: %s", files[i], strerror(errno));
			r = -1;
			break;
		}
		kr_init(&runs[i].r, fds[i], 0, (uint64_t)sb.st_size, 0, files[i]);
		st.bytes_in += (uint64_t)sb.st_size;
	}
	if (!r) {
		char name[32];
		snprintf(name, sizeof name, "part-%05lld.tsv", (long long)rd.partition);
		struct kwriter *w = kout_file(out, name, &err);
		if (!w || merge_runs(runs, nfiles, w, &st.rows_in, &err))
			r = -1;
	}
	for (size_t i = 0; i < nfiles; i++) {
		kr_free(&runs[i].r);
		if (fds[i] >= 0)
			close(fds[i]);
		free(files[i]);
	}
	if (r)
		kout_abort(out);
	else
		r = kout_commit(out, &st, &err);
done:
	free(runs);
	free(fds);
	free(files);
	free(rd.c.inputs);
	if (r < 0) {
		fprintf(stderr, "sluice-kernel wordcount reduce: %s\n", err ? err : "failed");
		free(err);
		return 1;
	}
	free(err);
	return 0;
}

int kmain_wordcount(int argc, char **argv)
{
	ws_init();
	if (argc < 2 || (strcmp(argv[1], "map") && strcmp(argv[1], "reduce"))) {
		if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
			fputs(map_usage, stdout);
			fputs("\n", stdout);
			fputs(reduce_usage, stdout);
			return 0;
		}
		fprintf(stderr, "usage: sluice-kernel wordcount map|reduce [OPTIONS] ... (try --help)\n");
		return 2;
	}
	char *name = xasprintf("wordcount %s", argv[1]);
	char *saved = argv[1];
	argv[1] = name;
	int r = !strcmp(saved, "map") ? wc_map(argc - 1, argv + 1) : wc_reduce(argc - 1, argv + 1);
	argv[1] = saved;
	free(name);
	return r;
}
