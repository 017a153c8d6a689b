/* sluice-kernel: the shared services of the native data kernels.
 *
 * One program, one subcommand per operation (kernels/main.c holds the table). Each subcommand is a
 * `kmain_*` entry point that parses its own argv with kopt_parse(), reads its split of the input
 * (kin_*), and writes its output through the committer (kout_*). This header is the contract the
 * subcommand files program against; it only grows.
 *
 * Invariants every subcommand keeps:
 *   - The output of a task is visible only through complete files: every part is written under
 *     OUTDIR/_temporary/, fsync'ed and renamed into place; the task's manifest
 *     OUTDIR/_manifest-NNNNN.json is renamed into place last, so "task NNNNN is committed" means
 *     "its manifest exists". `_SUCCESS` is written (atomically) once all --tasks manifests exist.
 *   - Output is a pure function of the input and options (no timestamps in parts), so a retried or
 *     duplicated try writes byte-identical parts; renaming over an identical file is harmless.
 *   - Re-running a committed task is a no-op (kout_open() returns 1; the entry point exits 0).
 *   - Memory: large allocations go through the arena and hash table below, whose sizes a
 *     subcommand compares against --memory to decide when to spill (kspill_*).
 *
 * Errors: functions return 0 / negative errno (or -1) and put a malloc'ed message into *err
 * (caller frees). Entry points print "sluice-kernel SUBCMD: message" on stderr and return
 * 0 (success), 1 (bad data or I/O failure), or 2 (usage error).
 */
#ifndef KERNELS_KERNEL_H
#define KERNELS_KERNEL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

/* ---- Subcommand entry points (kernels/main.c dispatches argv[1]; argv[0] is the subcommand) ---- */
int kmain_wordcount(int argc, char **argv);
int kmain_partition(int argc, char **argv);
int kmain_merge(int argc, char **argv);
int kmain_sort(int argc, char **argv);
int kmain_topk(int argc, char **argv);
int kmain_groupby(int argc, char **argv); /* kernels/groupby.c (K2) */
int kmain_join(int argc, char **argv);    /* kernels/join.c (K2) */

/* Print "sluice-kernel: " + formatted message + newline on stderr. */
void kwarn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same, formatted into a malloc'ed string (for *err out-parameters). */
char *kerrf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- Sizes, hashing, partitioning ---- */

/* Parse "123", "64k", "512M", "2G", "1.5g" (powers of 1024; optional trailing "b"/"iB").
 * Returns 0, or -1 on a malformed or zero size. */
int ksize_parse(const char *s, size_t *out);

/* A fast 64-bit hash of n bytes (wyhash-style multiply-fold; stable across runs and machines:
 * it decides partitions, so it must never change). Inline: it sits in every hot loop. */
static inline uint64_t khash_rd64(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}
static inline uint64_t khash_rd32(const unsigned char *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}
static inline uint64_t khash_mum(uint64_t a, uint64_t b)
{
	__uint128_t r = (__uint128_t)a * b;
	return (uint64_t)r ^ (uint64_t)(r >> 64);
}
static inline uint64_t khash64(const void *key, size_t len)
{
	const uint64_t s0 = 0xa0761d6478bd642full, s1 = 0xe7037ed1a0b428dbull, s2 = 0x8ebc6af09c88c6e3ull;
	const unsigned char *p = key;
	uint64_t seed = s0 ^ khash_mum(s0 ^ s1, s2), a, b;

	if (len <= 16) {
		if (len >= 4) {
			size_t q = (len >> 3) << 2;
			a = (khash_rd32(p) << 32) | khash_rd32(p + q);
			b = (khash_rd32(p + len - 4) << 32) | khash_rd32(p + len - 4 - q);
		} else if (len > 0) {
			a = ((uint64_t)p[0] << 16) | ((uint64_t)p[len >> 1] << 8) | p[len - 1];
			b = 0;
		} else {
			a = b = 0;
		}
	} else {
		size_t i = len;
		while (i > 16) {
			seed = khash_mum(khash_rd64(p) ^ s1, khash_rd64(p + 8) ^ seed);
			p += 16;
			i -= 16;
		}
		a = khash_rd64(p + i - 16);
		b = khash_rd64(p + i - 8);
	}
	return khash_mum(s1 ^ len, khash_mum(a ^ s1, b ^ seed));
}

/* The partition of a key with hash h among n partitions (0 <= result < n). Every kernel that
 * partitions by key (wordcount, partition, groupby, join) uses khash64(key bytes) + this, so the
 * same key lands in the same partition number everywhere. */
static inline uint32_t kpartition_of(uint64_t h, uint32_t n)
{
	return (uint32_t)(((h >> 32) * (uint64_t)n) >> 32);
}

/* ---- Arena: bump allocator in big chunks; freed all at once ---- */
struct karena {
	char *cur, *end;      /* free space in the current chunk */
	void *chunks;         /* singly linked list of chunks (first word = next) */
	size_t chunk_size;    /* default chunk size (grows for oversized requests) */
	size_t bytes;         /* total bytes of all chunks (what the arena costs in memory) */
};
void karena_init(struct karena *a, size_t chunk_size); /* chunk_size 0: 1 MiB */
/* n bytes aligned to 8; never fails (aborts on out of memory). Valid until karena_reset/free. */
void *karena_alloc(struct karena *a, size_t n);
void *karena_memdup(struct karena *a, const void *p, size_t n);
void karena_reset(struct karena *a); /* frees every chunk; the arena stays usable */
#define karena_free karena_reset

/* ---- Hash table: open addressing (linear probing), keys are byte strings copied into an arena,
 * each entry carries a fixed-size value area of vsize bytes (zeroed on creation, 8-aligned).
 * Entries never move, so pointers to values stay valid until khash_reset/free. ---- */
struct khash_entry {
	uint64_t hash;
	uint32_t klen;
	uint32_t user;        /* free for the caller (e.g. an insertion order or flags) */
	/* then: vsize bytes of value (rounded up to 8), then klen key bytes (not NUL-terminated) */
};
struct khash {
	struct khash_entry **slots; /* cap slots; NULL = empty */
	size_t cap, count;          /* cap is a power of two; count <= cap * 0.7 */
	size_t vsize;               /* value bytes per entry, rounded up to 8 */
	struct karena arena;        /* entries live here */
};
void khash_init(struct khash *h, size_t vsize, size_t initial_cap);
/* Find or insert the key; returns its value area. *created (if not NULL) says whether the entry is
 * new (its value is then zeroed). hash must be khash64(key, len). */
void *khash_upsert(struct khash *h, const void *key, size_t len, uint64_t hash, bool *created);
/* The value of key, or NULL. */
void *khash_find(const struct khash *h, const void *key, size_t len, uint64_t hash);
static inline void *khash_val(struct khash_entry *e) { return (char *)(e + 1); }
static inline const char *khash_key(const struct khash *h, const struct khash_entry *e)
{
	return (const char *)(e + 1) + h->vsize;
}
/* Memory the table uses now (slots + arena), for comparing against --memory. */
size_t khash_bytes(const struct khash *h);
/* A malloc'ed array of the count entries (any order); caller frees the array only. */
struct khash_entry **khash_entries(const struct khash *h);
/* Sort entries by key bytes (memcmp order, shorter first on a common prefix). */
void khash_sort_entries(const struct khash *h, struct khash_entry **v, size_t n);
void khash_reset(struct khash *h); /* drop every entry; keeps vsize */
void khash_free(struct khash *h);

/* ---- Common options ----
 * Every subcommand accepts these (kopt_parse handles them):
 *   -o, --output DIR     output directory (created), required where the subcommand writes files
 *   --split I/N          process split I (0-based) of N byte-range splits of the whole input
 *   --task N             task number for the manifest name (default: the split index I)
 *   --tasks N            number of tasks writing to OUTDIR; _SUCCESS appears once all N committed
 *                        (default: N of --split, else 1)
 *   --partitions N       number of output partitions (default 1)
 *   --memory SIZE        memory bound (default 1G); subcommands spill to disk above it
 *   --tmpdir DIR         spill directory (default OUTDIR/_temporary)
 *   --bad-rows skip[:LIMIT]|fail   what a malformed row does (default fail; skip's default LIMIT
 *                        is unlimited); every bad row is reported with file:line (the first 20)
 *   -h, --help           print the subcommand's usage and exit 0
 * Options take "--name VALUE" or "--name=VALUE". Non-option arguments are inputs (files or
 * directories); "--" ends options.
 */
enum kbad_mode { KBAD_FAIL, KBAD_SKIP };

struct kcommon {
	char **inputs;       /* positional arguments (borrowed from argv) */
	size_t ninputs;
	const char *output;  /* --output, or NULL */
	const char *tmpdir;  /* --tmpdir, or NULL */
	uint32_t split_i, split_n; /* --split (default 0/1) */
	int task;            /* --task (default split_i) */
	int tasks;           /* --tasks (default split_n) */
	uint32_t partitions; /* --partitions (default 1) */
	size_t memory;       /* --memory (default 1 GiB) */
	enum kbad_mode bad_mode;
	uint64_t bad_limit;  /* skip: fail once more than this many bad rows (UINT64_MAX = no limit) */
	bool verbose;        /* -v: progress on stderr */
};

/* A subcommand's own options: a table terminated by a row with name NULL. has_arg: 0 flag, 1 value.
 * short_name may be 0. */
struct kopt {
	const char *name;
	char short_name;
	int has_arg;
	int id;
};
/* Called for each own option; return 0, or -1 with *err set (a usage error). */
typedef int (*kopt_fn)(void *ctx, int id, const char *arg, char **err);

/* Parse argv (argv[0] = subcommand name). Fills *c (defaults first). For -h/--help prints usage
 * (stdout) and returns 1; on a usage error prints the message and "try --help" on stderr and
 * returns 2; otherwise 0 (then the caller frees c->inputs, the array only). On 1 and 2 nothing is
 * left to free. The caller's entry point returns (r == 1 ? 0 : r) when r != 0. */
int kopt_parse(int argc, char **argv, const struct kopt *own, kopt_fn fn, void *ctx,
	       struct kcommon *c, const char *usage);

/* Parse a non-negative integer option value (whole string). */
int kparse_u64(const char *s, uint64_t *out);

/* ---- Inputs and splits ---- */

struct kfile {
	char *path;
	uint64_t size;
	uint64_t offset;     /* start of this file in the concatenation of all inputs */
};
struct kinput {
	struct kfile *files; /* expanded inputs, in argument order; directories listed sorted */
	size_t nfiles;
	uint64_t total;      /* sum of sizes */
};
/* Expand paths: a file is taken as is; a directory contributes its regular files (recursively,
 * sorted by name), skipping names that start with '.' or '_' (Hadoop's rule: _SUCCESS, _temporary,
 * manifests). A path that does not exist but holds * ? or [ is expanded as a glob (sorted matches;
 * none is an error), since argv commands have no shell. "-" is not supported (kernels need sizes for
 * splits). Returns 0 or -1 (*err). */
int kin_list(struct kinput *in, char *const *paths, size_t n, char **err);
void kin_free(struct kinput *in);

/* A resync function finds the first record start at or after nominal byte pos of a file whose
 * bytes are data[0..len) (the whole file, mapped). It must be deterministic: the split that ends
 * at pos and the split that starts there both call it and agree on the boundary. kresync_line is
 * the default rule: a split owns the lines whose first byte lies in [start, end), i.e. the
 * boundary is pos if data[pos-1] == '\n', else just past the next '\n' (or len). A CSV reader
 * with quoted newlines passes its own function (e.g. one that tracks quote parity from a
 * known-good point). resync(0) must be 0 and resync(len) must be len. */
typedef uint64_t (*kresync_fn)(const char *data, uint64_t len, uint64_t pos, void *ctx);
uint64_t kresync_line(const char *data, uint64_t len, uint64_t pos, void *ctx);

/* One file's share of a split: the whole file is mapped (data, size = file size, read-only,
 * MADV_SEQUENTIAL), and [begin, end) is the part this split owns, already resynced. */
struct kchunk {
	const struct kfile *file;
	const char *data;    /* mapping of the whole file (NULL when size is 0) */
	uint64_t size;
	uint64_t begin, end; /* owned bytes: records that start in [begin, end) */
	/* line-number cache for kchunk_line() */
	uint64_t line_pos, line_no;
};
/* Split i of n: the global byte range [total*i/n, total*(i+1)/n) of the concatenated inputs,
 * cut per file and resynced with fn (NULL = kresync_line). Calls each(chunk, ctx) for every file
 * that has owned bytes, in order; stops at the first non-zero return and returns it. Files are
 * mapped one at a time and unmapped after each() returns. Returns 0, a callback's value, or -1
 * with *err on an I/O error. */
int kin_split(const struct kinput *in, uint32_t i, uint32_t n, kresync_fn fn, void *fnctx,
	      int (*each)(struct kchunk *ch, void *ctx), void *ctx, char **err);
/* The file's first line (a header row): [*p, *p + *n) without its '\n' ('\r' too). Lines-based
 * kernels with --header skip it where ch->begin == 0 and write it once at the top of their output.
 * Returns false for an empty file. */
bool kchunk_header(const struct kchunk *ch, const char **p, size_t *n);
/* Drop the pages of ch->data before p from this process's resident set (the file stays in the page
 * cache): call every few tens of MB so a big mapped input does not count against --memory. */
void kchunk_release(struct kchunk *ch, const char *p);
/* The 1-based line number of the byte at p (inside ch->data), counted lazily from the start of
 * the file (cheap when called with increasing p; used for error messages only). */
uint64_t kchunk_line(struct kchunk *ch, const char *p);

/* ---- Bad rows ---- */
struct kbad {
	enum kbad_mode mode;
	uint64_t limit;
	uint64_t count;
	const char *cmd;     /* subcommand name for messages */
};
void kbad_init(struct kbad *b, const struct kcommon *c, const char *cmd);
/* Report a malformed row at file:line (the first 20 are printed on stderr). Returns 0 to skip it
 * and go on, -1 to stop (mode fail, or more than limit rows skipped); the message then says why. */
int kbad_row(struct kbad *b, const char *file, uint64_t line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* ---- Buffered writer: big buffer, checksum and counts, to a file descriptor ---- */
struct kwriter {
	int fd;
	char *buf;
	size_t len, cap;
	uint64_t bytes;      /* bytes written so far (including buffered) */
	uint64_t rows;       /* rows: the caller increments */
	uint64_t sum;        /* running checksum state (see kw_checksum) */
	int error;           /* first errno seen, 0 if none */
	char *path;          /* the file's final path (committer) or NULL */
	char *tmp;           /* its temporary path (committer) or NULL */
	char *name;          /* file name relative to OUTDIR (committer) or NULL */
};
/* Write to an already open fd (not owned: the caller closes it). cap 0 = 1 MiB. */
void kw_init(struct kwriter *w, int fd, size_t cap);
void kw_flush_block(struct kwriter *w); /* internal: write out a full buffer */
static inline void kw_write(struct kwriter *w, const void *p, size_t n)
{
	const char *s = p;
	while (n > 0) {
		size_t k = w->cap - w->len;
		if (k > n)
			k = n;
		memcpy(w->buf + w->len, s, k);
		w->len += k;
		s += k;
		n -= k;
		if (w->len == w->cap)
			kw_flush_block(w);
	}
}
static inline void kw_putc(struct kwriter *w, char c)
{
	w->buf[w->len++] = c;
	if (w->len == w->cap)
		kw_flush_block(w);
}
void kw_u64(struct kwriter *w, uint64_t v); /* decimal */
/* Flush the tail; returns 0 or -errno (the first error seen while writing). The checksum covers
 * the whole content and does not depend on the buffer size. */
int kw_finish(struct kwriter *w);
/* Hex checksum of what was written (valid after kw_finish): 16 hex digits + NUL. */
void kw_checksum(const struct kwriter *w, char out[17]);

/* ---- Line reader over a byte range of a file (pread into a bounded buffer; for merging many
 * sorted runs without mapping them: memory stays cap bytes per reader, growing only for a line
 * longer than that) ---- */
struct kreader {
	int fd;
	uint64_t off, lim;   /* next file offset to read, end of the range */
	char *buf;
	size_t len, pos, cap;
	const char *name;    /* for messages */
	uint64_t line;       /* lines returned so far */
};
void kr_init(struct kreader *r, int fd, uint64_t off, uint64_t lim, size_t cap, const char *name);
/* The next line without its '\n' (a last line without one counts), valid until the next call.
 * Returns 1, 0 at the end, -1 on a read error (*err). */
int kr_line(struct kreader *r, const char **p, size_t *n, char **err);
void kr_free(struct kreader *r); /* frees the buffer; does not close fd */

/* ---- Output committer (Hadoop v1 style) ---- */
struct kout;
/* Open the committer for task c->task of c->tasks in c->output (created). Returns 1 if that task is
 * already committed (its manifest exists: the caller does nothing and exits 0; kout_open still
 * makes sure _SUCCESS exists when every task is committed), 0 when ready, -1 on error (*err). */
int kout_open(struct kout **out, const struct kcommon *c, const char *kind, char **err);
/* A writer for file `name` (relative to OUTDIR, e.g. "part-00003.tsv"), created under
 * OUTDIR/_temporary/. The kout owns it. NULL with *err on error. */
struct kwriter *kout_file(struct kout *o, const char *name, char **err);
/* Extra numbers for the manifest. */
struct kstats {
	uint64_t rows_in, bytes_in, bad_rows;
};
/* Finish and fsync every file, rename each into place, write _manifest-NNNNN.json (task, kind,
 * split, rows in/out, bytes in/out, bad rows, per-file rows/bytes/checksum, duration), then
 * _SUCCESS if all tasks are committed. Frees o. Returns 0 or -1 (*err; nothing renamed then, or
 * only complete parts of a try whose manifest is missing, i.e. an uncommitted task). */
int kout_commit(struct kout *o, const struct kstats *st, char **err);
/* Drop an uncommitted output: unlink its temporary files, free o. */
void kout_abort(struct kout *o);
/* The directory for spill files of this try (OUTDIR/_temporary/<attempt>/ or --tmpdir). */
const char *kout_tmpdir(const struct kout *o);

/* Whether every one of `tasks` manifests exists in dir (a reader checks this before consuming a
 * shuffle directory). Returns the number of missing manifests (0 = complete), -1 on error. */
int kout_missing(const char *dir, int tasks, char **err);

/* ---- Shuffle directories ----
 * A map-side task T writes partition P of its output to DIR/m-TTTTT.p-PPPPP.tsv (wordcount map,
 * partition, and any kernel with a map step). kshuffle_name formats that name into buf (>= 32 bytes).
 * kshuffle_files lists the files of partition P in DIR (sorted by name, so by map task), after
 * checking the maps committed: every _manifest-00000..maps-1 must exist when maps > 0, else
 * DIR/_SUCCESS must; with maps > 0 each of the maps must have written partition P (every map
 * task writes all its partition files, empty ones too). Appends malloc'ed paths to *paths (*n
 * entries; caller frees each and the array). Returns 0 or -1 (*err). */
void kshuffle_name(char *buf, size_t len, int task, uint32_t part);
int kshuffle_files(const char *dir, uint32_t part, int maps, char ***paths, size_t *n, char **err);

/* ---- Spill files ---- */
/* An anonymous temporary file in dir (O_TMPFILE, or created and unlinked at once): it vanishes
 * when closed or when the process dies. Returns an fd, or -1 with *err. */
int kspill_open(const char *dir, char **err);
/* Map a finished spill file read-only (len bytes). Returns NULL and *err on failure; unmap with
 * munmap(p, len). len 0 gives a non-NULL dummy pointer that must not be unmapped. */
const char *kspill_map(int fd, uint64_t len, char **err);

/* ---- Memory use ---- */
/* The writer buffer size that suits a --memory bound: memory/16 within [64 KiB, 1 MiB]. The
 * committer's files use it; spill writers should too. */
size_t kbuf_size(size_t memory);
/* Raise the soft limit of open files to the hard one (a merge keeps every input open). */
void kraise_nofile(void);
/* Peak resident set size of this program in bytes (VmHWM: since its execve). */
uint64_t kpeak_rss(void);

/* ---- Sorting byte keys (kernels/keysort.c) ----
 * Items carry an order-preserving 64-bit prefix of their key (kkey_prefix for byte strings, or any
 * order-preserving encoding, e.g. of a number) plus the key itself for ties. ksort_items sorts by
 * (prefix, then key bytes in memcmp order with shorter first, then idx): an LSD radix sort on the
 * prefix, then comparison sorts of the runs with equal prefixes. Stable when idx is the input
 * position. key may be NULL when the prefix alone decides (ties then fall to idx). */
struct ksort_item {
	uint64_t prefix;
	const char *key;
	uint32_t len;
	uint32_t idx;
	void *ptr;           /* the caller's payload */
};
/* The first 8 bytes of key, big-endian, zero-padded. */
static inline uint64_t kkey_prefix(const void *key, size_t len)
{
	unsigned char b[8] = {0};
	memcpy(b, key, len < 8 ? len : 8);
	return ((uint64_t)b[0] << 56) | ((uint64_t)b[1] << 48) | ((uint64_t)b[2] << 40) | ((uint64_t)b[3] << 32) |
	       ((uint64_t)b[4] << 24) | ((uint64_t)b[5] << 16) | ((uint64_t)b[6] << 8) | b[7];
}
/* An order-preserving 64-bit image of a double (NaN sorts last). */
static inline uint64_t kkey_double(double d)
{
	uint64_t u;
	if (d != d)
		return UINT64_MAX;
	if (d == 0)
		d = 0; /* -0 == +0 */
	memcpy(&u, &d, 8);
	return (u >> 63) ? ~u : u | (1ull << 63);
}
/* Sort n items (tmp: scratch of n items, or NULL to allocate). */
void ksort_items(struct ksort_item *v, size_t n, struct ksort_item *tmp);
/* Compare two items as ksort_items orders them. */
int ksort_cmp(const struct ksort_item *a, const struct ksort_item *b);

#endif
