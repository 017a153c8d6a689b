/* sluice-kernel groupby [run] | map | reduce: aggregates by key over CSV/TSV (docs/kernels.md).
 *
 * One group's state is an array of struct aggv, one per aggregate, the value area of a khash entry
 * whose key is the group key: the key cell's bytes for one key column, else each key cell as a 4-byte
 * length and its bytes. Every aggregate is mergeable (mean is carried as sum and count; first and last
 * carry the position of their row, task << 40 | row), so the same merge serves three places: the map's
 * combiner, the reduce, and the threads of the single-process mode.
 *
 * Partials (map output and spill files) are TSV lines, one per group: the key cells, then three fields
 * per aggregate: n (values seen), v ("i<int64>", "f<double>", "o<position>" or "-"), s (a string
 * value, TSV-escaped). The first line of every partial file is a header, "#sluice-groupby-1", the
 * number of keys and of aggregates, the key names and "kind:column" per aggregate, so a reduce needs
 * no options but its partition.
 *
 * Memory: when a table outgrows --memory, the map flushes its partials into its partition files
 * (a partition file may then hold a key more than once; the reduce merges them) and the single
 * process mode flushes into 16 spill files by hash, which it reduces one by one at the end. A
 * reduce's table (one partition's groups) must fit in memory: use more partitions otherwise. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "kernels/csv.h"
#include "kernels/kernel.h"

#define GB_MAXKEYS 16
#define GB_MAXAGGS 64
#define GB_SPILLS 16
#define GB_MAXTHREADS 64

enum agg_kind { A_SUM, A_COUNT, A_MIN, A_MAX, A_MEAN, A_FIRST, A_LAST };
static const char *const agg_names[] = {"sum", "count", "min", "max", "mean", "first", "last"};
enum col_type { T_AUTO, T_INT, T_FLOAT, T_STRING };

struct aggspec {
	enum agg_kind kind;
	char *col;           /* column spec (NULL for a bare count) */
	long idx;            /* resolved column (-1 for a bare count) */
	enum col_type type;
	bool str;            /* the value is a string (first, last, min/max of a string column) */
};

/* One aggregate of one group (32 bytes). */
struct aggv {
	int64_t n;           /* values seen (count; sum/mean/min/max: non-empty cells) */
	uint32_t isf;        /* v is a double */
	uint32_t len;        /* length of v.s */
	union {
		int64_t i;
		double d;
		char *s;     /* a string value (first/last/min/max of strings), in the table's arena */
	} v;
	uint64_t ord;        /* first/last: task << 40 | row */
};

struct cellv {
	bool empty, isf;
	uint32_t slen;       /* a string value: bytes at batch->bytes + i */
	int64_t i;
	double d;
};

/* Rows are applied to the table in batches: the hash of every key of the batch is known first, so
 * the slots and then the entries they point to can be prefetched before any is needed (a table
 * bigger than the cache otherwise costs two dependent misses per row). Keys and string values are
 * copied into bytes; cv holds GB_BATCH x naggs cells. */
#define GB_BATCH 32
struct gbbatch {
	size_t n;
	uint64_t hash[GB_BATCH];
	size_t koff[GB_BATCH], klen[GB_BATCH];
	uint64_t ord[GB_BATCH];
	struct cellv *cv;
	char *bytes;
	size_t blen, bcap;
};

struct gbjob {
	struct kcommon c;
	struct kcsv_fmt fmt;
	char out_delim;
	const char *ext;     /* "tsv" or "csv" */
	char *keyspec, *aggspec, *typespec;
	char *extra;         /* aggregates of --sum COL, --count, ... (comma-separated, malloc'ed) */
	char *aggbuf;        /* --agg and extra joined (malloc'ed) */
	char *hdr;           /* header_sig() of the first file's header, or NULL */
	size_t hdrlen;
	char *keys[GB_MAXKEYS];
	long keyidx[GB_MAXKEYS];
	size_t nkeys;
	struct aggspec aggs[GB_MAXAGGS];
	size_t naggs;
	char **keynames;     /* output names (from the header, or the specs) */
	int threads;
	int64_t partition;   /* reduce: --partition */
	int64_t maps;        /* reduce: --maps */
	bool resolved;       /* column indexes known (first file opened) */
	pthread_mutex_t lock;
};

struct gbspill {
	int fd;
	struct kwriter w;
};

/* The state of one worker: a task's map, one thread of the single mode, or a reduce. */
struct gbstate {
	struct gbjob *j;
	struct khash h;
	size_t vsize;
	uint64_t ordbase, row;
	struct kbad bad;
	struct kcsv_rec rec;
	struct gbbatch batch;
	char *kbuf;
	size_t kcap;
	struct kstats st;
	size_t budget;
	/* where flushes go: P partition writers (map), or GB_SPILLS spill files (single mode) */
	struct kwriter **pw;
	uint32_t np;
	struct gbspill *spill;
	const char *spilldir;
	uint32_t split_i, split_n;
	bool hdr;            /* map: the partition files have their header line */
	char *err;
	int rc;
};

static const char usage_text[] =
	"usage: sluice-kernel groupby [run] [-o OUT_DIR] --key COLS --agg AGGS [OPTIONS] INPUT...\n"
	"       sluice-kernel groupby map -o SHUFFLE_DIR --key COLS --agg AGGS [--split I/N] [--partitions P]\n"
	"                                 [OPTIONS] INPUT...\n"
	"       sluice-kernel groupby reduce -o OUT_DIR --partition P --partitions N [--maps M] SHUFFLE_DIR\n"
	"Group the rows of CSV or TSV INPUTs (files, or directories read recursively) by the key columns and\n"
	"aggregate. run: one process, the whole input (or its --split), OUT_DIR/part-00000.EXT. map: the\n"
	"partial aggregates of split I of N (the combiner), hash-partitioned by key into\n"
	"SHUFFLE_DIR/m-TTTTT.p-PPPPP.tsv. reduce: merges the partials of partition P into\n"
	"OUT_DIR/part-PPPPP.EXT. Output: a header row, then one row per group sorted by key bytes: the key\n"
	"cells, then one column per aggregate (named like sum_v1, count).\n\n"
	"  --key COLS            key columns, comma-separated: names (with a header) or 1-based numbers\n"
	"  --agg AGGS            comma-separated KIND:COL or count; KIND is sum, count, min, max, mean,\n"
	"                        first, last (count:COL counts non-empty cells; sum/min/max/mean skip\n"
	"                        empty cells)\n"
	"  --sum COL, --count, --min COL, --max COL, --mean COL, --first COL, --last COL\n"
	"                        one aggregate each (after those of --agg)\n"
	"  -o, --output DIR      output directory (run: without it the result goes to standard output)\n"
	"  --types COL:T,...     column types: int (int64), float (float64), string (min/max by bytes);\n"
	"                        others are numbers, int64 unless a cell is not an integer\n"
	"  --format csv|tsv      input format (default csv: RFC 4180 quoting; tsv: no quoting)\n"
	"  --header yes|no       the first row of every file names the columns (default yes)\n"
	"  --output-format tsv|csv  output format (default tsv: \\\\ \\t \\n \\r escaped)\n"
	"  --threads T           run: worker threads (default 1)\n"
	"  --split I/N           byte-range split I of N, cut at record ends outside quotes\n"
	"  --partitions P        map: number of reduce partitions (default 1); reduce: N\n"
	"  --partition P         reduce: the partition to merge\n"
	"  --maps M              reduce: every _manifest-00000..M-1 must exist (default: _SUCCESS)\n"
	"  --memory SIZE         memory bound (default 1G); above it partials spill to disk\n"
	"  --bad-rows skip[:LIMIT]|fail  a malformed row or bad cell: skip it (counted) or fail (default)\n"
	"  --task N, --tasks N, --tmpdir DIR, -v   see sluice-kernel --help\n"
	"Exit status: 0 done (or already committed), 1 bad data or I/O error, 2 usage error.\n";

/* ---- options ---- */

enum { O_KEY = 1, O_AGG, O_TYPES, O_FORMAT, O_HEADER, O_OUTFMT, O_THREADS, O_PARTITION, O_MAPS, O_ONE = 100 };
static const struct kopt gb_opts[] = {
	{"key", 'k', 1, O_KEY},
	{"agg", 'a', 1, O_AGG},
	{"types", 0, 1, O_TYPES},
	{"format", 0, 1, O_FORMAT},
	{"header", 0, 1, O_HEADER},
	{"output-format", 0, 1, O_OUTFMT},
	{"threads", 0, 1, O_THREADS},
	{"partition", 0, 1, O_PARTITION},
	{"maps", 0, 1, O_MAPS},
	/* --sum COL ... --last COL: one aggregate each, after those of --agg (--count takes no column) */
	{"sum", 0, 1, O_ONE + A_SUM},
	{"count", 0, 0, O_ONE + A_COUNT},
	{"min", 0, 1, O_ONE + A_MIN},
	{"max", 0, 1, O_ONE + A_MAX},
	{"mean", 0, 1, O_ONE + A_MEAN},
	{"first", 0, 1, O_ONE + A_FIRST},
	{"last", 0, 1, O_ONE + A_LAST},
	{NULL, 0, 0, 0},
};

static int gb_opt(void *ctx, int id, const char *arg, char **err)
{
	struct gbjob *j = ctx;
	uint64_t v;
	if (id >= O_ONE) {
		const char *kind = agg_names[id - O_ONE];
		char *more = arg ? xasprintf("%s:%s", kind, arg) : xstrdup(kind);
		char *joined = j->extra ? xasprintf("%s,%s", j->extra, more) : xstrdup(more);
		free(more);
		free(j->extra);
		j->extra = joined;
		return 0;
	}
	switch (id) {
	case O_KEY: j->keyspec = (char *)arg; return 0;
	case O_AGG: j->aggspec = (char *)arg; return 0;
	case O_TYPES: j->typespec = (char *)arg; return 0;
	case O_FORMAT:
		if (!strcmp(arg, "csv"))
			j->fmt.delim = ',', j->fmt.quoting = true;
		else if (!strcmp(arg, "tsv"))
			j->fmt.delim = '\t', j->fmt.quoting = false;
		else
			goto bad;
		return 0;
	case O_HEADER:
		if (!strcmp(arg, "yes") || !strcmp(arg, "no"))
			j->fmt.header = arg[0] == 'y';
		else if (!parse_bool(arg, &j->fmt.header))
			goto bad;
		return 0;
	case O_OUTFMT:
		if (!strcmp(arg, "csv"))
			j->out_delim = ',', j->ext = "csv";
		else if (!strcmp(arg, "tsv"))
			j->out_delim = '\t', j->ext = "tsv";
		else
			goto bad;
		return 0;
	case O_THREADS:
	case O_PARTITION:
	case O_MAPS:
		if (kparse_u64(arg, &v) || v > 1000000 || (id == O_THREADS && (v == 0 || v > GB_MAXTHREADS)))
			goto bad;
		if (id == O_THREADS)
			j->threads = (int)v;
		else if (id == O_PARTITION)
			j->partition = (int64_t)v;
		else
			j->maps = (int64_t)v;
		return 0;
	}
bad:
	*err = kerrf("bad value '%s'", arg);
	return -1;
}

/* Split s at commas into out (pointers into s, which is modified). */
static size_t split_commas(char *s, char **out, size_t max)
{
	size_t n = 0;
	for (char *p = s; n < max;) {
		char *c = strchr(p, ',');
		out[n++] = p;
		if (!c)
			break;
		*c = 0;
		p = c + 1;
	}
	return n;
}

static int parse_specs(struct gbjob *j, char **err)
{
	if (j->extra) {
		j->aggbuf = j->aggspec ? xasprintf("%s,%s", j->aggspec, j->extra) : xstrdup(j->extra);
		j->aggspec = j->aggbuf;
	}
	if (!j->keyspec || !*j->keyspec || !j->aggspec || !*j->aggspec) {
		*err = kerrf("--key and --agg are required");
		return -1;
	}
	j->nkeys = split_commas(j->keyspec, j->keys, GB_MAXKEYS);
	if (strchr(j->keys[j->nkeys - 1], ',')) {
		*err = kerrf("--key: at most %d key columns", GB_MAXKEYS);
		return -1;
	}
	char *items[GB_MAXAGGS];
	j->naggs = split_commas(j->aggspec, items, GB_MAXAGGS);
	for (size_t i = 0; i < j->naggs; i++) {
		struct aggspec *a = &j->aggs[i];
		char *colon = strchr(items[i], ':');
		if (colon)
			*colon = 0;
		size_t k;
		for (k = 0; k < 7 && strcmp(items[i], agg_names[k]); k++)
			;
		if (k == 7) {
			*err = kerrf("--agg: unknown aggregate '%s' (sum, count, min, max, mean, first, last)", items[i]);
			return -1;
		}
		a->kind = (enum agg_kind)k;
		a->col = colon && colon[1] ? colon + 1 : NULL;
		a->idx = -1;
		if (!a->col && a->kind != A_COUNT) {
			*err = kerrf("--agg: %s needs a column (%s:COL)", items[i], items[i]);
			return -1;
		}
	}
	if (j->typespec) {
		char *t[GB_MAXAGGS];
		size_t nt = split_commas(j->typespec, t, GB_MAXAGGS);
		for (size_t i = 0; i < nt; i++) {
			char *colon = strrchr(t[i], ':');
			enum col_type ty;
			if (!colon) {
				*err = kerrf("--types: '%s' is not COL:TYPE", t[i]);
				return -1;
			}
			*colon = 0;
			if (!strcmp(colon + 1, "int") || !strcmp(colon + 1, "int64"))
				ty = T_INT;
			else if (!strcmp(colon + 1, "float") || !strcmp(colon + 1, "float64") || !strcmp(colon + 1, "double"))
				ty = T_FLOAT;
			else if (!strcmp(colon + 1, "string"))
				ty = T_STRING;
			else {
				*err = kerrf("--types: unknown type '%s' (int, float, string)", colon + 1);
				return -1;
			}
			for (size_t a = 0; a < j->naggs; a++)
				if (j->aggs[a].col && !strcmp(j->aggs[a].col, t[i]))
					j->aggs[a].type = ty;
		}
	}
	for (size_t i = 0; i < j->naggs; i++) {
		struct aggspec *a = &j->aggs[i];
		if (a->type == T_STRING && (a->kind == A_SUM || a->kind == A_MEAN)) {
			*err = kerrf("--agg: %s of a string column (%s)", agg_names[a->kind], a->col);
			return -1;
		}
		a->str = a->kind == A_FIRST || a->kind == A_LAST ||
			 ((a->kind == A_MIN || a->kind == A_MAX) && a->type == T_STRING);
	}
	return 0;
}

/* Resolve the column specs against the header of the first file (or as numbers). */
/* The header's cells joined by a 0x1f byte (malloc'ed, *len bytes): what every file's must be. */
static char *header_sig(const struct kcsv_rec *r, size_t *len)
{
	struct strbuf sb = {0};
	for (size_t i = 0; i < r->n; i++) {
		if (i)
			sb_putc(&sb, '\x1f');
		sb_add(&sb, r->f[i].p, r->f[i].len);
	}
	sb_putc(&sb, 0);
	*len = sb.len - 1;
	return sb_steal(&sb);
}

static int resolve_columns(struct gbjob *j, const struct kcsv_rec *names, const char *file, char **err)
{
	if (names)
		j->hdr = header_sig(names, &j->hdrlen);
	j->keynames = xcalloc(j->nkeys, sizeof *j->keynames);
	for (size_t k = 0; k < j->nkeys; k++) {
		j->keyidx[k] = kcsv_column(j->keys[k], names);
		if (j->keyidx[k] < 0) {
			*err = kerrf("%s: no column '%s' (--key)%s", file, j->keys[k], names ? "" : "; without a header, "
				     "columns are numbers from 1");
			return -1;
		}
		j->keynames[k] = names ? xstrndup(names->f[j->keyidx[k]].p, names->f[j->keyidx[k]].len)
				       : xasprintf("c%ld", j->keyidx[k] + 1);
	}
	for (size_t i = 0; i < j->naggs; i++) {
		struct aggspec *a = &j->aggs[i];
		if (!a->col)
			continue;
		a->idx = kcsv_column(a->col, names);
		if (a->idx < 0) {
			*err = kerrf("%s: no column '%s' (--agg %s:%s)", file, a->col, agg_names[a->kind], a->col);
			return -1;
		}
	}
	j->resolved = true;
	return 0;
}

/* No input bytes at all (no header to read): the output names are the column specs themselves
 * ("c3" for a column number). */
static void names_for_empty_input(struct gbjob *j)
{
	char *e = NULL;
	if (!resolve_columns(j, NULL, "(no input)", &e))
		return;
	free(e);
	for (size_t k = 0; k < j->nkeys && j->keynames; k++)
		free(j->keynames[k]);
	free(j->keynames);
	j->keynames = xcalloc(j->nkeys, sizeof *j->keynames);
	for (size_t k = 0; k < j->nkeys; k++)
		j->keynames[k] = xstrdup(j->keys[k]);
	j->resolved = true;
}

/* ---- aggregate states ---- */

static inline struct aggv *group_vals(struct khash_entry *e)
{
	return (struct aggv *)khash_val(e);
}

static inline double num_d(uint32_t isf, int64_t i, double d)
{
	return isf ? d : (double)i;
}

/* Merge one numeric value (or partial) into a. */
static inline void merge_num(struct aggv *a, enum agg_kind k, int64_t n, bool isf, int64_t i, double d)
{
	if (k == A_COUNT || n == 0) {
		a->n += n;
		return;
	}
	if (a->n == 0) {
		a->isf = isf;
		if (isf)
			a->v.d = d;
		else
			a->v.i = i;
		a->n = n;
		return;
	}
	a->n += n;
	switch (k) {
	case A_SUM:
	case A_MEAN:
		if (!a->isf && !isf) {
			int64_t r;
			if (!__builtin_add_overflow(a->v.i, i, &r)) {
				a->v.i = r;
				return;
			}
		}
		a->v.d = num_d(a->isf, a->v.i, a->v.d) + num_d(isf, i, d);
		a->isf = 1;
		return;
	case A_MIN:
	case A_MAX: {
		bool less;
		if (!a->isf && !isf)
			less = i < a->v.i;
		else
			less = num_d(isf, i, d) < num_d(a->isf, a->v.i, a->v.d);
		bool gt = !a->isf && !isf ? i > a->v.i : num_d(isf, i, d) > num_d(a->isf, a->v.i, a->v.d);
		if (k == A_MIN ? less : gt) {
			a->isf = isf;
			if (isf)
				a->v.d = d;
			else
				a->v.i = i;
		}
		return;
	}
	default:
		return;
	}
}

static inline int bytes_cmp(const char *a, size_t al, const char *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);
	return c ? c : (al > bl) - (al < bl);
}

/* Merge a string value at position ord into a (first, last, string min/max). */
static inline void merge_str(struct khash *h, struct aggv *a, enum agg_kind k, int64_t n, uint64_t ord,
			     const char *s, size_t len)
{
	if (n == 0)
		return;
	bool take;
	if (a->n == 0)
		take = true;
	else if (k == A_FIRST)
		take = ord < a->ord;
	else if (k == A_LAST)
		take = ord > a->ord;
	else {
		int c = bytes_cmp(s, len, a->v.s, a->len);
		take = k == A_MIN ? c < 0 : c > 0;
	}
	a->n += n;
	if (!take)
		return;
	a->ord = ord;
	if (len > a->len || !a->v.s)
		a->v.s = karena_alloc(&h->arena, len ? len : 1);
	memcpy(a->v.s, s, len);
	a->len = (uint32_t)len;
}

/* ---- writing partials and results ---- */

static void put_num(struct kwriter *w, uint32_t isf, int64_t i, double d)
{
	char buf[40];
	int n;
	if (isf)
		n = kcsv_fmt_double(buf, d);
	else
		n = snprintf(buf, sizeof buf, "%lld", (long long)i);
	kw_write(w, buf, (size_t)n);
}

/* Write the key cells of an encoded key, separated by delim, each through kcsv_put. */
static void put_key(struct kwriter *w, const struct gbjob *j, const char *k, size_t klen, char delim)
{
	if (j->nkeys == 1) {
		kcsv_put(w, k, klen, delim);
		return;
	}
	const char *e = k + klen;
	for (size_t i = 0; k < e; i++) {
		uint32_t l;
		memcpy(&l, k, 4);
		if (i)
			kw_putc(w, delim);
		kcsv_put(w, k + 4, l, delim);
		k += 4 + l;
	}
}

static void put_partial(struct kwriter *w, const struct gbjob *j, const struct khash *h, struct khash_entry *e)
{
	put_key(w, j, khash_key(h, e), e->klen, '\t');
	const struct aggv *a = group_vals(e);
	for (size_t i = 0; i < j->naggs; i++, a++) {
		kw_putc(w, '\t');
		kw_u64(w, (uint64_t)a->n);
		kw_putc(w, '\t');
		if (a->n == 0 || j->aggs[i].kind == A_COUNT) {
			kw_putc(w, '-');
		} else if (j->aggs[i].str) {
			kw_putc(w, 'o');
			kw_u64(w, a->ord);
		} else {
			kw_putc(w, a->isf ? 'f' : 'i');
			put_num(w, a->isf, a->v.i, a->v.d);
		}
		kw_putc(w, '\t');
		if (j->aggs[i].str && a->n)
			kcsv_put(w, a->v.s, a->len, '\t');
	}
	kw_putc(w, '\n');
	w->rows++;
}

static void put_partial_header(struct kwriter *w, const struct gbjob *j)
{
	char buf[64];
	snprintf(buf, sizeof buf, "#sluice-groupby-1\t%zu\t%zu", j->nkeys, j->naggs);
	kw_write(w, buf, strlen(buf));
	for (size_t k = 0; k < j->nkeys; k++) {
		kw_putc(w, '\t');
		kcsv_put(w, j->keynames[k], strlen(j->keynames[k]), '\t');
	}
	for (size_t i = 0; i < j->naggs; i++) {
		const struct aggspec *a = &j->aggs[i];
		kw_putc(w, '\t');
		kw_write(w, agg_names[a->kind], strlen(agg_names[a->kind]));
		kw_putc(w, a->str ? '$' : ':');
		if (a->col)
			kcsv_put(w, a->col, strlen(a->col), '\t');
	}
	kw_putc(w, '\n');
}

static void put_result_header(struct kwriter *w, const struct gbjob *j)
{
	char d = j->out_delim;
	for (size_t k = 0; k < j->nkeys; k++) {
		if (k)
			kw_putc(w, d);
		kcsv_put(w, j->keynames[k], strlen(j->keynames[k]), d);
	}
	for (size_t i = 0; i < j->naggs; i++) {
		const struct aggspec *a = &j->aggs[i];
		char *name = a->col ? xasprintf("%s_%s", agg_names[a->kind], a->col) : xstrdup(agg_names[a->kind]);
		kw_putc(w, d);
		kcsv_put(w, name, strlen(name), d);
		free(name);
	}
	kw_putc(w, '\n');
}

static void put_result(struct kwriter *w, const struct gbjob *j, const struct khash *h, struct khash_entry *e)
{
	char d = j->out_delim;
	put_key(w, j, khash_key(h, e), e->klen, d);
	const struct aggv *a = group_vals(e);
	for (size_t i = 0; i < j->naggs; i++, a++) {
		kw_putc(w, d);
		enum agg_kind k = j->aggs[i].kind;
		if (k == A_COUNT)
			kw_u64(w, (uint64_t)a->n);
		else if (a->n == 0)
			; /* no value: an empty cell */
		else if (j->aggs[i].str)
			kcsv_put(w, a->v.s, a->len, d);
		else if (k == A_MEAN)
			put_num(w, 1, 0, num_d(a->isf, a->v.i, a->v.d) / (double)a->n);
		else
			put_num(w, a->isf, a->v.i, a->v.d);
	}
	kw_putc(w, '\n');
	w->rows++;
}

static const struct gbjob *sort_job;

static int key_cmp(const void *pa, const void *pb)
{
	const struct khash_entry *a = *(struct khash_entry *const *)pa, *b = *(struct khash_entry *const *)pb;
	/* the key bytes follow the value area, whose size is the same for every entry */
	size_t vs = sort_job->naggs * sizeof(struct aggv);
	const char *ka = (const char *)(a + 1) + vs, *kb = (const char *)(b + 1) + vs;
	const char *ea = ka + a->klen, *eb = kb + b->klen;
	while (ka < ea && kb < eb) {
		uint32_t la, lb;
		memcpy(&la, ka, 4);
		memcpy(&lb, kb, 4);
		int c = bytes_cmp(ka + 4, la, kb + 4, lb);
		if (c)
			return c;
		ka += 4 + la;
		kb += 4 + lb;
	}
	return (ka < ea) - (kb < eb);
}

/* The entries of h sorted by key (cell by cell, bytes). */
static struct khash_entry **sorted_entries(const struct gbjob *j, const struct khash *h)
{
	struct khash_entry **v = khash_entries(h);
	if (j->nkeys == 1) {
		khash_sort_entries(h, v, h->count);
	} else {
		sort_job = j; /* qsort has no context argument; sorting happens on one thread */
		qsort(v, h->count, sizeof *v, key_cmp);
	}
	return v;
}

/* ---- reading input ---- */

static inline const char *encode_key(struct gbstate *s, const struct kcsv_rec *r, size_t *klen)
{
	const struct gbjob *j = s->j;
	if (j->nkeys == 1) {
		*klen = r->f[j->keyidx[0]].len;
		return r->f[j->keyidx[0]].p;
	}
	size_t need = 0;
	for (size_t k = 0; k < j->nkeys; k++)
		need += 4 + r->f[j->keyidx[k]].len;
	if (need > s->kcap) {
		s->kcap = need * 2;
		s->kbuf = xrealloc(s->kbuf, s->kcap);
	}
	char *o = s->kbuf;
	for (size_t k = 0; k < j->nkeys; k++) {
		const struct kcsv_field *f = &r->f[j->keyidx[k]];
		memcpy(o, &f->len, 4);
		memcpy(o + 4, f->p, f->len);
		o += 4 + f->len;
	}
	*klen = need;
	return s->kbuf;
}

static int flush_table(struct gbstate *s);

static size_t table_bytes(const struct gbstate *s)
{
	return khash_bytes(&s->h) + s->h.count * 16;
}

/* One parsed cell value, checked before the group is touched. */
static inline size_t batch_copy(struct gbbatch *b, const char *p, size_t n)
{
	if (b->blen + n > b->bcap) {
		b->bcap = (b->blen + n) * 2 + 4096;
		b->bytes = xrealloc(b->bytes, b->bcap);
	}
	size_t off = b->blen;
	if (n)
		memcpy(b->bytes + off, p, n);
	b->blen += n;
	return off;
}

static void batch_apply(struct gbstate *s, struct gbbatch *b)
{
	const struct gbjob *j = s->j;
	struct khash *h = &s->h;
	size_t mask = h->cap - 1;
	for (size_t r = 0; r < b->n; r++)
		__builtin_prefetch(&h->slots[b->hash[r] & mask]);
	for (size_t r = 0; r < b->n; r++) {
		const struct khash_entry *e = h->slots[b->hash[r] & mask];
		if (e) {
			/* the header and values, and the key after them (often another cache line) */
			const char *k = (const char *)(e + 1) + h->vsize;
			__builtin_prefetch(e);
			if (h->vsize > 48)
				__builtin_prefetch((const char *)e + 64);
			__builtin_prefetch(k);
		}
	}
	for (size_t r = 0; r < b->n; r++) {
		struct aggv *g = khash_upsert(h, b->bytes + b->koff[r], b->klen[r], b->hash[r], NULL);
		const struct cellv *cv = b->cv + r * j->naggs;
		for (size_t i = 0; i < j->naggs; i++, g++) {
			const struct aggspec *a = &j->aggs[i];
			if (a->idx < 0)
				g->n++;
			else if (a->str)
				merge_str(h, g, a->kind, 1, b->ord[r], b->bytes + cv[i].i, cv[i].slen);
			else if (!cv[i].empty)
				merge_num(g, a->kind, 1, cv[i].isf, cv[i].i, cv[i].d);
		}
		mask = h->cap - 1; /* the table may have grown */
	}
	b->n = 0;
	b->blen = 0;
}

/* A bad row: "file:line:column: message" when col >= 0. Returns 0 to go on, -1 to stop. */
static int bad_cell(struct gbstate *s, struct kchunk *ch, uint64_t line, long col, const char *fmt, const char *cell,
		    size_t len)
{
	char shown[64];
	size_t n = len < 40 ? len : 40;
	if (ch->begin)
		line += kchunk_line(ch, ch->data + ch->begin) - 1;
	for (size_t i = 0; i < n; i++)
		shown[i] = (unsigned char)cell[i] < 32 ? '?' : cell[i];
	strcpy(shown + n, len > 40 ? "..." : "");
	if (col < 0)
		return kbad_row(&s->bad, ch->file->path, line, "%s", fmt);
	/* kbad_row prints "FILE:LINE: "; the column goes after the line as a compiler would print it */
	char *where = xasprintf("%s:%llu", ch->file->path, (unsigned long long)line);
	int r = kbad_row(&s->bad, where, (uint64_t)col + 1, fmt, shown);
	free(where);
	return r;
}

/* The first chunk of any thread resolves the key and aggregate columns (from the header when
 * there is one). 0 or -1 with s->err. */
static int resolve_once(struct gbstate *s, struct kchunk *ch)
{
	struct gbjob *j = s->j;
	const char *why;
	int rc = 0;
	pthread_mutex_lock(&j->lock);
	if (!j->resolved) {
		if (j->fmt.header) {
			const char *hp = ch->data, *he = ch->data + ch->size;
			struct kcsv_rec names;
			kcsv_rec_init(&names);
			int k = kcsv_next(&j->fmt, &hp, he, &names, &why);
			rc = resolve_columns(j, k == 1 ? &names : NULL, ch->file->path, &s->err);
			kcsv_rec_free(&names);
		} else {
			rc = resolve_columns(j, NULL, ch->file->path, &s->err);
		}
	}
	pthread_mutex_unlock(&j->lock);
	return rc ? -1 : 0;
}

/* The highest 0-based column a row must have. */
static long max_column(const struct gbjob *j)
{
	long maxcol = 0;
	for (size_t k = 0; k < j->nkeys; k++)
		maxcol = j->keyidx[k] > maxcol ? j->keyidx[k] : maxcol;
	for (size_t i = 0; i < j->naggs; i++)
		maxcol = j->aggs[i].idx > maxcol ? j->aggs[i].idx : maxcol;
	return maxcol;
}

/* Reads a file's header row at *p: every file's header must be the first file's, since columns
 * are resolved once, by position. 0 or -1 with s->err. */
static int skip_header(struct gbstate *s, struct kchunk *ch, const char **p, const char *end, uint64_t *line)
{
	struct gbjob *j = s->j;
	struct kcsv_rec *r = &s->rec;
	const char *why;
	int k = kcsv_next(&j->fmt, p, end, r, &why);
	*line += r->lines;
	if (k != 1 || !j->hdr)
		return 0;
	size_t sl;
	char *sig = header_sig(r, &sl);
	bool same = sl == j->hdrlen && !memcmp(sig, j->hdr, sl);
	free(sig);
	if (same)
		return 0;
	s->err = kerrf("%s:1: its header differs from the first input file's (the columns must be the "
		       "same, in the same order)", ch->file->path);
	return -1;
}

/* The aggregated cells of the row in s->rec (read at line at) into cv: 0, 1 for a bad cell (the
 * row is skipped, counted) or -1 when bad rows are fatal (s->err). */
static int read_cells(struct gbstate *s, struct kchunk *ch, uint64_t at, struct cellv *cv)
{
	struct gbjob *j = s->j;
	struct kcsv_rec *r = &s->rec;
	struct gbbatch *b = &s->batch;
	for (size_t i = 0; i < j->naggs; i++) {
		const struct aggspec *a = &j->aggs[i];
		if (a->idx < 0)
			continue;
		const struct kcsv_field *f = &r->f[a->idx];
		cv[i].empty = f->len == 0;
		if (a->str) {
			cv[i].slen = f->len;
			cv[i].i = (int64_t)batch_copy(b, f->p, f->len);
			continue;
		}
		if (cv[i].empty || a->kind == A_COUNT)
			continue;
		int bad_num;
		const char *what;
		if (a->type == T_INT) {
			bad_num = kcsv_int(f->p, f->len, &cv[i].i);
			cv[i].isf = false;
			what = "'%s' is not an int64";
		} else if (a->type == T_FLOAT) {
			bad_num = kcsv_float(f->p, f->len, &cv[i].d);
			cv[i].isf = true;
			what = "'%s' is not a float64";
		} else {
			bad_num = kcsv_number(f->p, f->len, &cv[i].i, &cv[i].d, &cv[i].isf);
			what = "'%s' is not a number";
		}
		if (bad_num)
			return bad_cell(s, ch, at, a->idx, what, f->p, f->len) ? -1 : 1;
	}
	return 0;
}

static int gb_chunk(struct kchunk *ch, void *ctx)
{
	struct gbstate *s = ctx;
	struct gbjob *j = s->j;
	const char *p = ch->data + ch->begin, *end = ch->data + ch->end;
	const char *why;
	/* drop consumed input pages every step bytes, so the mapping does not count against --memory */
	size_t step = j->c.memory / 16 < ((size_t)32 << 20) ? j->c.memory / 16 : ((size_t)32 << 20);
	const char *release = p + step;
	struct kcsv_rec *r = &s->rec;
	struct gbbatch *b = &s->batch;

	if (resolve_once(s, ch))
		return -1;
	long maxcol = max_column(j);

	/* line numbers count from the split's start; bad_cell makes them absolute (only on an error:
	 * counting the lines before a split touches every page before it) */
	uint64_t line = 1;
	if (ch->begin)
		kchunk_release(ch, p); /* the pages the split's resync and line count touched */
	s->st.bytes_in += ch->end - ch->begin;
	if (ch->begin == 0 && j->fmt.header && p < end && skip_header(s, ch, &p, end, &line))
		return -1;
	while (p < end) {
		uint64_t at = line;
		int k = kcsv_next(&j->fmt, &p, end, r, &why);
		line += r->lines;
		if (k == 0)
			break;
		if (k < 0) {
			if (bad_cell(s, ch, at, -1, why, NULL, 0))
				return -1;
			continue;
		}
		s->st.rows_in++;
		if ((long)r->n <= maxcol) {
			char msg[96];
			snprintf(msg, sizeof msg, "%zu fields, but column %ld is needed", r->n, maxcol + 1);
			if (bad_cell(s, ch, at, -1, msg, NULL, 0))
				return -1;
			continue;
		}
		int c = read_cells(s, ch, at, b->cv + b->n * j->naggs);
		if (c < 0)
			return -1;
		if (c > 0)
			continue;
		size_t klen;
		const char *key = encode_key(s, r, &klen);
		b->hash[b->n] = khash64(key, klen);
		b->klen[b->n] = klen;
		b->koff[b->n] = batch_copy(b, key, klen);
		b->ord[b->n] = s->ordbase | s->row++;
		if (++b->n < GB_BATCH)
			continue;
		batch_apply(s, b);
		if (table_bytes(s) > s->budget && flush_table(s))
			return -1;
		if (p >= release) {
			kchunk_release(ch, p);
			release = p + step;
		}
	}
	batch_apply(s, b);
	if (table_bytes(s) > s->budget && flush_table(s))
		return -1;
	return 0;
}

/* Write the table's partials to the partition writers (map) or the spill files (run), then empty it. */
static int flush_table(struct gbstate *s)
{
	const struct gbjob *j = s->j;
	struct khash_entry **v = khash_entries(&s->h);
	if (s->spill && s->spill[0].fd < 0) {
		for (int b = 0; b < GB_SPILLS; b++) {
			s->spill[b].fd = kspill_open(s->spilldir, &s->err);
			if (s->spill[b].fd < 0) {
				free(v);
				return -1;
			}
			kw_init(&s->spill[b].w, s->spill[b].fd, 256 << 10);
			put_partial_header(&s->spill[b].w, j);
		}
	}
	if (s->pw && !s->hdr) {
		for (uint32_t p = 0; p < s->np; p++)
			put_partial_header(s->pw[p], j);
		s->hdr = true;
	}
	for (size_t i = 0; i < s->h.count; i++) {
		uint32_t part = kpartition_of(v[i]->hash, s->spill ? GB_SPILLS : s->np);
		put_partial(s->spill ? &s->spill[part].w : s->pw[part], j, &s->h, v[i]);
	}
	if (j->c.verbose)
		kwarn("groupby: flushed %zu groups (peak RSS %llu MB)", s->h.count, (unsigned long long)(kpeak_rss() >> 20));
	free(v);
	khash_reset(&s->h);
	return 0;
}

/* ---- reading partials (reduce, spill files) ---- */

/* Parse a partial's header line against the job (reduce: fills the job from it). */
static int read_partial_header(struct gbjob *j, char *line, size_t len, const char *file, char **err)
{
	char *f[2 + GB_MAXKEYS + GB_MAXAGGS + 1];
	size_t n = 0;
	line[len] = 0;
	for (char *p = line; n < sizeof f / sizeof *f;) {
		char *t = strchr(p, '\t');
		f[n++] = p;
		if (!t)
			break;
		*t = 0;
		p = t + 1;
	}
	uint64_t nk, na;
	if (n < 3 || strcmp(f[0], "#sluice-groupby-1") || kparse_u64(f[1], &nk) || kparse_u64(f[2], &na) || nk == 0 ||
	    nk > GB_MAXKEYS || na == 0 || na > GB_MAXAGGS || n != 3 + nk + na) {
		*err = kerrf("%s:1: not a groupby partial file (no #sluice-groupby-1 header)", file);
		return -1;
	}
	if (j->resolved) {
		if (nk != j->nkeys || na != j->naggs) {
			*err = kerrf("%s:1: partials of a different groupby (%llu keys, %llu aggregates)", file,
				     (unsigned long long)nk, (unsigned long long)na);
			return -1;
		}
		return 0;
	}
	j->nkeys = nk;
	j->naggs = na;
	j->keynames = xcalloc(nk, sizeof *j->keynames);
	for (size_t k = 0; k < nk; k++) {
		size_t l = kcsv_tsv_unescape(f[3 + k], strlen(f[3 + k]));
		j->keynames[k] = xstrndup(f[3 + k], l);
	}
	for (size_t i = 0; i < na; i++) {
		char *spec = f[3 + nk + i], *c = strpbrk(spec, ":$");
		struct aggspec *a = &j->aggs[i];
		size_t k;
		if (!c)
			goto bad;
		a->str = *c == '$';
		*c = 0;
		for (k = 0; k < 7 && strcmp(spec, agg_names[k]); k++)
			;
		if (k == 7)
			goto bad;
		a->kind = (enum agg_kind)k;
		size_t l = kcsv_tsv_unescape(c + 1, strlen(c + 1));
		a->col = l ? xstrndup(c + 1, l) : NULL;
		a->idx = a->col ? 0 : -1;
	}
	j->resolved = true;
	return 0;
bad:
	*err = kerrf("%s:1: bad aggregate in the partial header", file);
	return -1;
}

/* Merge the partial lines of buf[0..len) (a whole partial file) into s's table. */
/* The key of a partial line: its key cells unescaped and encoded as encode_key() does. */
static const char *partial_key(struct gbstate *s, char **cells, size_t *clen, size_t *klen)
{
	struct gbjob *j = s->j;
	if (j->nkeys == 1) {
		*klen = kcsv_tsv_unescape(cells[0], clen[0]);
		return cells[0];
	}
	size_t need = 0;
	for (size_t k = 0; k < j->nkeys; k++)
		need += 4 + clen[k];
	if (need > s->kcap) {
		s->kcap = need * 2;
		s->kbuf = xrealloc(s->kbuf, s->kcap);
	}
	char *o = s->kbuf;
	for (size_t k = 0; k < j->nkeys; k++) {
		uint32_t l = (uint32_t)kcsv_tsv_unescape(cells[k], clen[k]);
		memcpy(o, &l, 4);
		memcpy(o + 4, cells[k], l);
		o += 4 + l;
	}
	*klen = (size_t)(o - s->kbuf);
	return s->kbuf;
}

/* Merges one aggregate's three cells (count, value, string) of a partial line into g; -1 when
 * they are malformed. */
static int merge_partial_agg(struct gbstate *s, struct aggv *g, const struct aggspec *a, char **c, size_t *clen)
{
	char *cn = c[0], *cv = c[1], *cs = c[2];
	uint64_t n64, ord = 0;
	int64_t iv = 0;
	double dv = 0;
	bool isf = false;
	if (kparse_u64(cn, &n64))
		return -1;
	if (n64 == 0 || a->kind == A_COUNT) {
		if (strcmp(cv, "-"))
			return -1;
	} else if (cv[0] == 'o' && a->str) {
		if (kparse_u64(cv + 1, &ord))
			return -1;
	} else if (cv[0] == 'i' && !a->str) {
		if (kcsv_int(cv + 1, strlen(cv + 1), &iv))
			return -1;
	} else if (cv[0] == 'f' && !a->str) {
		if (kcsv_float(cv + 1, strlen(cv + 1), &dv))
			return -1;
		isf = true;
	} else {
		return -1;
	}
	if (a->str) {
		size_t sl = kcsv_tsv_unescape(cs, clen[2]);
		merge_str(&s->h, g, a->kind, (int64_t)n64, ord, cs, sl);
	} else {
		merge_num(g, a->kind, (int64_t)n64, isf, iv, dv);
	}
	return 0;
}

static int merge_partials(struct gbstate *s, char *buf, size_t len, const char *file)
{
	struct gbjob *j = s->j;
	char *p = buf, *end = buf + len;
	uint64_t line = 0;
	char *cells[GB_MAXKEYS + 3 * GB_MAXAGGS];
	size_t clen[GB_MAXKEYS + 3 * GB_MAXAGGS];
	size_t want = 0;
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		char *le = nl ? nl : end;
		line++;
		if (line == 1) {
			if (read_partial_header(j, p, (size_t)(le - p), file, &s->err))
				return -1;
			want = j->nkeys + 3 * j->naggs;
			p = le + 1;
			continue;
		}
		size_t n = 0;
		/* cells may hold NUL bytes: their lengths come from the tabs, never from strlen */
		for (char *q = p; n < want;) {
			char *t = memchr(q, '\t', (size_t)(le - q));
			cells[n] = q;
			clen[n++] = (size_t)((t ? t : le) - q);
			if (!t)
				break;
			*t = 0;
			q = t + 1;
		}
		*le = 0;
		if (n != want) {
			s->err = kerrf("%s:%llu: a partial line with %zu fields (expected %zu)", file, (unsigned long long)line, n,
				       want);
			return -1;
		}
		size_t klen;
		const char *key = partial_key(s, cells, clen, &klen);
		struct aggv *g = khash_upsert(&s->h, key, klen, khash64(key, klen), NULL);
		for (size_t i = 0; i < j->naggs; i++, g++)
			if (merge_partial_agg(s, g, &j->aggs[i], cells + j->nkeys + 3 * i, clen + j->nkeys + 3 * i) < 0)
				goto bad;
		s->st.rows_in++;
		p = le + 1;
		continue;
bad:
		s->err = kerrf("%s:%llu: a malformed partial aggregate", file, (unsigned long long)line);
		return -1;
	}
	return 0;
}

/* Merge the table of src into dst (threads of the single mode). */
static void merge_tables(const struct gbjob *j, struct khash *dst, struct khash *src)
{
	struct khash_entry **v = khash_entries(src);
	for (size_t e = 0; e < src->count; e++) {
		const char *k = khash_key(src, v[e]);
		struct aggv *g = khash_upsert(dst, k, v[e]->klen, v[e]->hash, NULL);
		const struct aggv *a = group_vals(v[e]);
		for (size_t i = 0; i < j->naggs; i++, g++, a++) {
			if (j->aggs[i].str)
				merge_str(dst, g, j->aggs[i].kind, a->n, a->ord, a->v.s, a->len);
			else
				merge_num(g, j->aggs[i].kind, a->n, a->isf, a->v.i, a->v.d);
		}
	}
	free(v);
}

static void write_results(struct kwriter *w, const struct gbjob *j, const struct khash *h)
{
	struct khash_entry **v = sorted_entries(j, h);
	for (size_t i = 0; i < h->count; i++)
		put_result(w, j, h, v[i]);
	free(v);
}

/* Read a whole file (a partial) into a malloc'ed, writable buffer. */
static int slurp_fd(int fd, char **buf, size_t *len, const char *name, char **err)
{
	struct stat sb;
	if (fstat(fd, &sb)) {
		*err = kerrf("%s: %s", name, strerror(errno));
		return -1;
	}
	*len = (size_t)sb.st_size;
	*buf = xmalloc(*len + 1);
	size_t got = 0;
	while (got < *len) {
		ssize_t k = pread(fd, *buf + got, *len - got, (off_t)got);
		if (k <= 0) {
			*err = kerrf("%s: %s", name, k < 0 ? strerror(errno) : "short read");
			free(*buf);
			return -1;
		}
		got += (size_t)k;
	}
	return 0;
}

/* ---- the three modes ---- */

static void state_init(struct gbstate *s, struct gbjob *j, uint32_t si, uint32_t sn, uint64_t task)
{
	memset(s, 0, sizeof *s);
	s->j = j;
	s->split_i = si;
	s->split_n = sn;
	s->ordbase = task << 40;
	kbad_init(&s->bad, &j->c, "groupby");
	kcsv_rec_init(&s->rec);
	s->batch.cv = xcalloc(GB_BATCH * (j->naggs ? j->naggs : 1), sizeof *s->batch.cv);
	s->budget = j->c.memory / 2 / (size_t)(j->threads > 0 ? j->threads : 1);
}

static void state_free(struct gbstate *s)
{
	khash_free(&s->h);
	kcsv_rec_free(&s->rec);
	free(s->batch.cv);
	free(s->batch.bytes);
	free(s->kbuf);
	if (s->spill)
		for (int b = 0; b < GB_SPILLS; b++)
			if (s->spill[b].fd >= 0) {
				free(s->spill[b].w.buf);
				close(s->spill[b].fd);
			}
	free(s->spill);
	free(s->err);
}

static void *run_thread(void *arg)
{
	struct gbstate *s = arg;
	struct kinput in = {0};
	s->rc = kin_list(&in, s->j->c.inputs, s->j->c.ninputs, &s->err);
	if (!s->rc)
		s->rc = kin_split(&in, s->split_i, s->split_n, kcsv_resync, &s->j->fmt, gb_chunk, s, &s->err);
	if (s->rc && !s->err && s->bad.count)
		s->err = kerrf("stopped by a bad row (reported above)");
	if (!s->rc && s->spill && s->spill[0].fd >= 0)
		s->rc = flush_table(s); /* once spilled, everything goes through the spill files */
	kin_free(&in);
	return NULL;
}

static void job_free(struct gbjob *j)
{
	if (j->keynames)
		for (size_t k = 0; k < j->nkeys; k++)
			free(j->keynames[k]);
	free(j->keynames);
	if (!j->aggspec) /* reduce: the specs came from a partial header */
		for (size_t i = 0; i < j->naggs; i++)
			free(j->aggs[i].col);
	free(j->c.inputs);
	free(j->extra);
	free(j->aggbuf);
	free(j->hdr);
	pthread_mutex_destroy(&j->lock);
}

/* The state of thread t of T: its share of the split, its table, and its partition writers (map)
 * or spill buckets (run). */
static void thread_state_init(struct gbstate *st, struct gbjob *j, int t, int T, bool map, const char *tmpd)
{
	state_init(st, j, j->c.split_i * (uint32_t)T + (uint32_t)t, j->c.split_n * (uint32_t)T,
		   (uint64_t)j->c.split_i * (uint64_t)T + (uint64_t)t);
	khash_init(&st->h, j->naggs * sizeof(struct aggv), 1024);
	st->spilldir = tmpd;
	if (map) {
		st->np = j->c.partitions;
		st->pw = xcalloc(st->np, sizeof *st->pw);
	} else {
		st->spill = xcalloc(GB_SPILLS, sizeof *st->spill);
		for (int b = 0; b < GB_SPILLS; b++)
			st->spill[b].fd = -1;
	}
}

/* Once some thread spilled: every thread's table goes to its spill files, then the buckets are
 * reduced one by one into w. 0 or -1 with *err. */
static int write_spilled(struct gbjob *j, struct gbstate *st, int T, const char *tmpd, struct kwriter *w, char **err)
{
	for (int t = 0; t < T; t++)
		if (st[t].spill[0].fd < 0 && st[t].h.count) {
			st[t].spilldir = tmpd;
			if (flush_table(&st[t])) {
				*err = xstrdup(st[t].err);
				return -1;
			}
		}
	for (int t = 0; t < T; t++)
		for (int b = 0; st[t].spill[0].fd >= 0 && b < GB_SPILLS; b++) {
			int e = kw_finish(&st[t].spill[b].w);
			if (e) {
				*err = kerrf("writing a spill file: %s", strerror(-e));
				return -1;
			}
		}
	struct gbstate red;
	int rc = 0;
	state_init(&red, j, 0, 1, 0);
	khash_init(&red.h, j->naggs * sizeof(struct aggv), 1024);
	for (int b = 0; b < GB_SPILLS && !rc; b++) {
		for (int t = 0; t < T && !rc; t++) {
			if (st[t].spill[0].fd < 0)
				continue;
			char *buf;
			size_t len;
			if (slurp_fd(st[t].spill[b].fd, &buf, &len, "spill file", err) ||
			    merge_partials(&red, buf, len, "spill file")) {
				if (!*err)
					*err = xstrdup(red.err);
				rc = -1;
			}
			free(buf);
		}
		if (!rc)
			write_results(w, j, &red.h);
		khash_reset(&red.h);
	}
	state_free(&red);
	return rc;
}

/* groupby run's result: the header, then the threads' tables merged (or their spills reduced). */
static int write_run_result(struct gbjob *j, struct gbstate *st, int T, const char *tmpd, struct kwriter *w,
			    char **err)
{
	if (!j->resolved)
		names_for_empty_input(j);
	put_result_header(w, j);
	bool spilled = false;
	for (int t = 0; t < T; t++)
		spilled |= st[t].spill[0].fd >= 0;
	if (spilled)
		return write_spilled(j, st, T, tmpd, w, err);
	for (int t = 1; t < T; t++) {
		merge_tables(j, &st[0].h, &st[t].h);
		khash_free(&st[t].h);
		khash_init(&st[t].h, 8, 64);
	}
	write_results(w, j, &st[0].h);
	return 0;
}

static int gb_run(struct gbjob *j, bool map)
{
	struct kout *out = NULL;
	struct gbstate st[GB_MAXTHREADS];
	int T = map ? 1 : j->threads, nst = 0, rc;
	char *err = NULL;
	struct kstats total = {0};

	/* run without -o: the result goes to standard output (no committer, spills under --tmpdir or $TMPDIR) */
	bool to_stdout = !map && !j->c.output;
	struct kwriter sw;
	const char *tmpd = j->c.tmpdir ? j->c.tmpdir : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	if (to_stdout) {
		kw_init(&sw, 1, 0);
		rc = 0;
	} else {
		rc = kout_open(&out, &j->c, map ? "groupby-map" : "groupby", &err);
		if (rc)
			goto done;
		tmpd = kout_tmpdir(out);
	}
	for (int t = 0; t < T; t++, nst++)
		thread_state_init(&st[t], j, t, T, map, tmpd);
	if (map) {
		/* the partition files exist before any flush */
		char name[64];
		for (uint32_t p = 0; p < st[0].np; p++) {
			kshuffle_name(name, sizeof name, j->c.task, p);
			if (!(st[0].pw[p] = kout_file(out, name, &err))) {
				rc = -1;
				goto done;
			}
		}
		run_thread(&st[0]);
		if (!st[0].rc && !j->resolved)
			names_for_empty_input(j);
		if (!st[0].rc)
			st[0].rc = flush_table(&st[0]);
	} else {
		pthread_t tid[GB_MAXTHREADS];
		for (int t = 1; t < T; t++)
			if (pthread_create(&tid[t], NULL, run_thread, &st[t])) {
				st[t].rc = -1;
				st[t].err = kerrf("cannot start a thread");
				tid[t] = 0;
			}
		run_thread(&st[0]);
		for (int t = 1; t < T; t++)
			if (tid[t])
				pthread_join(tid[t], NULL);
	}
	for (int t = 0; t < T; t++) {
		if (st[t].rc) {
			err = st[t].err ? xstrdup(st[t].err) : xstrdup("failed");
			rc = -1;
			goto done;
		}
		total.rows_in += st[t].st.rows_in;
		total.bytes_in += st[t].st.bytes_in;
		total.bad_rows += st[t].bad.count;
	}
	if (!map) {
		char name[64];
		snprintf(name, sizeof name, "part-%05d.%s", j->c.task, j->ext);
		struct kwriter *w = to_stdout ? &sw : kout_file(out, name, &err);
		if (!w || write_run_result(j, st, T, tmpd, w, &err) < 0) {
			rc = -1;
			goto done;
		}
	}
	if (to_stdout) {
		int e = kw_finish(&sw);
		if (e) {
			err = kerrf("writing standard output: %s", strerror(-e));
			rc = -1;
		}
		if (total.bad_rows)
			kwarn("groupby: %llu bad rows skipped", (unsigned long long)total.bad_rows);
		goto done;
	}
	rc = kout_commit(out, &total, &err);
	out = NULL;
done:
	if (out)
		kout_abort(out);
	if (to_stdout)
		free(sw.buf); /* NULL once kw_finish ran */
	for (int t = 0; t < nst; t++) {
		free(st[t].pw);
		state_free(&st[t]);
	}
	if (rc < 0) {
		fprintf(stderr, "sluice-kernel groupby%s: %s\n", map ? " map" : "", err ? err : "failed");
		free(err);
		return 1;
	}
	if (rc == 1 && j->c.verbose)
		kwarn("groupby: task %d already committed; nothing to do", j->c.task);
	free(err);
	return 0;
}

static int gb_reduce(struct gbjob *j)
{
	struct kout *out = NULL;
	struct gbstate s;
	char **files = NULL, *err = NULL;
	size_t nfiles = 0;
	int rc;

	if (j->partition < 0 || j->partition >= (int64_t)j->c.partitions || j->c.ninputs == 0) {
		fprintf(stderr, "sluice-kernel groupby reduce: need --partition P below --partitions N and a shuffle "
				"directory (try --help)\n");
		return 2;
	}
	j->c.task = (int)j->partition;
	j->c.tasks = (int)j->c.partitions;
	state_init(&s, j, 0, 1, 0);
	rc = kout_open(&out, &j->c, "groupby-reduce", &err);
	if (rc)
		goto done;
	khash_init(&s.h, 8, 64); /* re-made once the first header gives the aggregates */
	for (size_t i = 0; i < j->c.ninputs && !rc; i++) {
		struct stat sb;
		if (stat(j->c.inputs[i], &sb)) {
			err = kerrf("%s: %s", j->c.inputs[i], strerror(errno));
			rc = -1;
		} else if (S_ISDIR(sb.st_mode)) {
			rc = kshuffle_files(j->c.inputs[i], (uint32_t)j->partition, (int)j->maps, &files, &nfiles, &err);
		} else {
			files = xrealloc(files, (nfiles + 1) * sizeof *files);
			files[nfiles++] = xstrdup(j->c.inputs[i]);
		}
	}
	for (size_t i = 0; i < nfiles && !rc; i++) {
		int fd = open(files[i], O_RDONLY | O_CLOEXEC);
		char *buf = NULL;
		size_t len = 0;
		if (fd < 0) {
			err = kerrf("%s: %s", files[i], strerror(errno));
			rc = -1;
			break;
		}
		rc = slurp_fd(fd, &buf, &len, files[i], &err);
		close(fd);
		if (rc)
			break;
		bool first = !j->resolved;
		if (first && len) {
			/* size the table's values once the header says how many aggregates */
			char *nl = memchr(buf, '\n', len);
			size_t hl = nl ? (size_t)(nl - buf) : len;
			char *copy = xstrndup(buf, hl);
			rc = read_partial_header(j, copy, hl, files[i], &err);
			free(copy);
			if (!rc) {
				khash_free(&s.h);
				khash_init(&s.h, j->naggs * sizeof(struct aggv), 1024);
			}
		}
		s.st.bytes_in += len;
		if (!rc && merge_partials(&s, buf, len, files[i])) {
			err = xstrdup(s.err);
			rc = -1;
		}
		free(buf);
	}
	if (!rc) {
		char name[64];
		snprintf(name, sizeof name, "part-%05lld.%s", (long long)j->partition, j->ext);
		struct kwriter *w = kout_file(out, name, &err);
		if (!w) {
			rc = -1;
		} else if (!j->resolved) {
			err = kerrf("no partial files for partition %lld", (long long)j->partition);
			rc = -1;
		} else {
			put_result_header(w, j);
			write_results(w, j, &s.h);
		}
	}
	if (!rc) {
		rc = kout_commit(out, &s.st, &err);
		out = NULL;
	}
done:
	if (out)
		kout_abort(out);
	for (size_t i = 0; i < nfiles; i++)
		free(files[i]);
	free(files);
	state_free(&s);
	if (rc < 0) {
		fprintf(stderr, "sluice-kernel groupby reduce: %s\n", err ? err : "failed");
		free(err);
		return 1;
	}
	free(err);
	return 0;
}

int kmain_groupby(int argc, char **argv)
{
	struct gbjob j = {0};
	const char *mode = "run";
	int r;
	char *saved = NULL, *name = NULL;

	if (argc >= 2 && (!strcmp(argv[1], "map") || !strcmp(argv[1], "reduce") || !strcmp(argv[1], "run"))) {
		mode = argv[1];
		name = xasprintf("groupby %s", mode);
		saved = argv[1];
		argv[1] = name;
		argc--;
		argv++;
	}
	j.fmt = (struct kcsv_fmt){',', true, true};
	j.out_delim = '\t';
	j.ext = "tsv";
	j.threads = 1;
	j.partition = -1;
	pthread_mutex_init(&j.lock, NULL);
	r = kopt_parse(argc, argv, gb_opts, gb_opt, &j, &j.c, usage_text);
	if (r) {
		r = r == 1 ? 0 : r;
		goto out;
	}
	if (!strcmp(mode, "reduce")) {
		r = gb_reduce(&j);
		goto out;
	}
	char *err = NULL;
	if (parse_specs(&j, &err) || (j.c.ninputs == 0 && (err = kerrf("no input")))) {
		fprintf(stderr, "sluice-kernel groupby: %s (try --help)\n", err);
		free(err);
		r = 2;
		goto out;
	}
	r = gb_run(&j, !strcmp(mode, "map"));
out:
	job_free(&j);
	if (saved)
		argv[0] = saved;
	free(name);
	return r;
}
