/* sluice-kernel join [run] | map | reduce: hash join of two CSV/TSV inputs on one key column
 * (docs/kernels.md).
 *
 * The right input is the build side: its rows go into a khash keyed by the key cell, each entry a
 * list of rows (the non-key cells already encoded for the output), and the left input streams
 * through it (the probe side). Output rows are: the key, the left row's other cells, the right
 * row's other cells; a left row without a match (left, full) gets empty right cells; a right row that
 * no left row matched (full) is written after the probe with empty left cells. Keys match by their
 * bytes (as coreutils join does; an empty key is a value like any other).
 *
 * run: broadcast when the right input is small enough for --memory (the table costs about twice the
 * file's bytes), else a grace join: both sides are hash-partitioned by key into B spill files, then
 * joined bucket by bucket (B chosen so that a right bucket fits). With --split I/N the left input is
 * split (inner and left joins; a full join needs to see every left row, so it takes no split).
 * map: hash-partitions one side (split I of N) into SHUFFLE_DIR/m-TTTTT.p-PPPPP.tsv; reduce joins the
 * partition P of a left and a right shuffle directory. Partitions are kpartition_of(khash64(key)),
 * the rule of every kernel, so `partition` and `join map` agree.
 *
 * Bucket and shuffle files are TSV (cells escaped as kcsv_put does), the key cell first, after a
 * header line "#sluice-join-1<TAB>NCOLS<TAB>names...". */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "kernels/csv.h"
#include "kernels/kernel.h"

enum jtype { J_INNER, J_LEFT, J_FULL };

/* One input side: where its columns are. */
struct jside {
	const char *keyspec;
	long key;            /* key column (0-based) in the input's records */
	size_t ncols;        /* cells per row (from the header or the first row); 0 = not known yet */
	char **names;        /* ncols names (header, or c1..) */
	bool escaped;        /* cells are TSV-escaped (bucket and shuffle files) */
	struct kcsv_fmt fmt;
};

struct jrow {
	struct jrow *next;
	uint32_t len;        /* bytes of the encoded non-key cells (each preceded by the delimiter) */
	/* then len bytes */
};
struct jval {
	struct jrow *head, *tail;
	uint32_t matched;
};

struct jjob {
	struct kcommon c;
	enum jtype type;
	struct jside side[2]; /* 0 left (probe), 1 right (build) */
	const char *keyspec, *sidespec;
	char out_delim;
	const char *ext;
	struct kcsv_fmt fmt;
	int64_t partition, maps;
	int side_fmt[2];          /* --left-format, --right-format: 0 as --format, 1 csv, 2 tsv */
	char **right;             /* --right inputs (run) */
	size_t nright;
	/* work state */
	struct khash h;
	struct kbad bad;
	struct kcsv_rec rec;
	struct kwriter *out;      /* the output part */
	struct kwriter **bw;      /* bucket / shuffle writers of the side being partitioned */
	uint32_t nb;
	int cur;                  /* the side being read */
	int mode;                 /* what a record does: M_BUILD, M_PROBE, M_PART */
	struct kstats st;
	uint64_t rows_out;
	char *scratch;
	size_t scap;
	bool hdr_done;            /* the output's header row is written */
	struct kchunk *ch;        /* the split being read (for line numbers), or NULL */
	char *err;
};
enum { M_BUILD, M_PROBE, M_PART };

static const char usage_text[] =
	"usage: sluice-kernel join [run] -o OUT_DIR --key COL [--type inner|left|full] [OPTIONS] LEFT RIGHT\n"
	"       sluice-kernel join map -o SHUFFLE_DIR --key COL --partitions P [--split I/N] [OPTIONS] INPUT...\n"
	"       sluice-kernel join reduce -o OUT_DIR --partition P --partitions N [--type T] [--maps M]\n"
	"                                 LEFT_SHUFFLE_DIR RIGHT_SHUFFLE_DIR\n"
	"Hash join of LEFT and RIGHT (CSV or TSV files or directories; several per side are given as\n"
	"LEFT... --right RIGHT [--right RIGHT2...]) on one key column. Output OUT_DIR/part-TTTTT.EXT: a\n"
	"header row, then the key, LEFT's other columns, RIGHT's other columns; an unmatched side's cells\n"
	"are empty. run builds a hash table of RIGHT: broadcast when it fits in --memory, else a grace join\n"
	"through spill files. map hash-partitions one side into SHUFFLE_DIR/m-TTTTT.p-PPPPP.tsv; reduce\n"
	"joins partition P of the two sides' shuffle directories.\n\n"
	"  --right PATH          run: a RIGHT input (repeatable; then every positional input is LEFT)\n"
	"  --key COL             the key column of both sides (a name with a header, or a 1-based number)\n"
	"  --left-key COL, --right-key COL   different key columns per side\n"
	"  --type inner|left|full  the join (default inner)\n"
	"  --format csv|tsv      input format (default csv); --header yes|no (default yes)\n"
	"  --left-format F, --right-format F   one side's format (run, map: the side it reads)\n"
	"  --output-format tsv|csv  output format (default tsv)\n"
	"  --split I/N           run: split I of N of LEFT (inner, left); map: of the inputs\n"
	"  --memory SIZE         memory bound (default 1G) deciding broadcast vs grace join\n"
	"  --bad-rows skip[:LIMIT]|fail, --task N, --tasks N, --tmpdir DIR, -v   see sluice-kernel --help\n"
	"Exit status: 0 done (or already committed), 1 bad data or I/O error, 2 usage error.\n";

enum { O_KEY = 1, O_LKEY, O_RKEY, O_TYPE, O_FORMAT, O_HEADER, O_OUTFMT, O_PARTITION, O_MAPS, O_RIGHT, O_LFMT, O_RFMT };
static const struct kopt join_opts[] = {
	{"key", 'k', 1, O_KEY},
	{"left-key", 0, 1, O_LKEY},
	{"right-key", 0, 1, O_RKEY},
	{"type", 0, 1, O_TYPE},
	{"format", 0, 1, O_FORMAT},
	{"header", 0, 1, O_HEADER},
	{"output-format", 0, 1, O_OUTFMT},
	{"partition", 0, 1, O_PARTITION},
	{"maps", 0, 1, O_MAPS},
	{"right", 0, 1, O_RIGHT},
	{"left-format", 0, 1, O_LFMT},
	{"right-format", 0, 1, O_RFMT},
	{NULL, 0, 0, 0},
};

static int join_opt(void *ctx, int id, const char *arg, char **err)
{
	struct jjob *j = ctx;
	uint64_t v;
	switch (id) {
	case O_KEY: j->side[0].keyspec = j->side[1].keyspec = arg; return 0;
	case O_LKEY: j->side[0].keyspec = arg; return 0;
	case O_RIGHT:
		j->right = xrealloc(j->right, (j->nright + 1) * sizeof *j->right);
		j->right[j->nright++] = (char *)arg;
		return 0;
	case O_RKEY: j->side[1].keyspec = arg; return 0;
	case O_TYPE:
		if (!strcmp(arg, "inner"))
			j->type = J_INNER;
		else if (!strcmp(arg, "left"))
			j->type = J_LEFT;
		else if (!strcmp(arg, "full") || !strcmp(arg, "outer"))
			j->type = J_FULL;
		else
			break;
		return 0;
	case O_FORMAT:
	case O_LFMT:
	case O_RFMT: {
		int f = !strcmp(arg, "csv") ? 1 : !strcmp(arg, "tsv") ? 2 : 0;
		if (!f)
			break;
		if (id == O_FORMAT)
			j->fmt.delim = f == 1 ? ',' : '\t', j->fmt.quoting = f == 1;
		else
			j->side_fmt[id == O_RFMT] = f;
		return 0;
	}
	case O_HEADER:
		if (!strcmp(arg, "yes") || !strcmp(arg, "no"))
			j->fmt.header = arg[0] == 'y';
		else if (!parse_bool(arg, &j->fmt.header))
			break;
		return 0;
	case O_OUTFMT:
		if (!strcmp(arg, "csv"))
			j->out_delim = ',', j->ext = "csv";
		else if (!strcmp(arg, "tsv"))
			j->out_delim = '\t', j->ext = "tsv";
		else
			break;
		return 0;
	case O_PARTITION:
	case O_MAPS:
		if (kparse_u64(arg, &v) || v > 1000000)
			break;
		if (id == O_PARTITION)
			j->partition = (int64_t)v;
		else
			j->maps = (int64_t)v;
		return 0;
	}
	*err = kerrf("bad value '%s'", arg);
	return -1;
}

/* ---- rows ---- */

/* Unescape the cells of a bucket-file record in place (they point into a writable buffer). */
static void unescape_rec(struct kcsv_rec *r)
{
	for (size_t i = 0; i < r->n; i++)
		r->f[i].len = (uint32_t)kcsv_tsv_unescape((char *)(uintptr_t)r->f[i].p, r->f[i].len);
}

/* Learn a side's columns from its header record (or its first row without a header). */
static void side_columns(struct jside *s, const struct kcsv_rec *r, bool names)
{
	s->ncols = r->n;
	s->names = xcalloc(r->n, sizeof *s->names);
	for (size_t i = 0; i < r->n; i++)
		s->names[i] = names ? xstrndup(r->f[i].p, r->f[i].len) : xasprintf("c%zu", i + 1);
}

static void put_cells(struct jjob *j, struct kwriter *w, const struct kcsv_rec *r, long key, char delim)
{
	for (size_t i = 0; i < r->n; i++) {
		if ((long)i == key)
			continue;
		kw_putc(w, delim);
		kcsv_put(w, r->f[i].p, r->f[i].len, delim);
	}
	(void)j;
}

static void put_empty(struct kwriter *w, size_t ncols, char delim)
{
	for (size_t i = 1; i < ncols; i++)
		kw_putc(w, delim);
}

/* The other cells of r encoded for the output, into j->scratch; returns the length. */
static size_t encode_row(struct jjob *j, const struct kcsv_rec *r, long key)
{
	size_t need = 0;
	for (size_t i = 0; i < r->n; i++)
		need += 2 * r->f[i].len + 3;
	if (need > j->scap) {
		j->scap = need * 2;
		j->scratch = xrealloc(j->scratch, j->scap);
	}
	struct kwriter w;
	/* a writer over the scratch buffer, big enough never to flush */
	memset(&w, 0, sizeof w);
	w.fd = -1;
	w.buf = j->scratch;
	w.cap = j->scap + 1;
	put_cells(j, &w, r, key, j->out_delim);
	return w.len;
}

static void build_row(struct jjob *j, const struct kcsv_rec *r, long key)
{
	const struct kcsv_field *k = &r->f[key];
	struct jval *v = khash_upsert(&j->h, k->p, k->len, khash64(k->p, k->len), NULL);
	size_t len = encode_row(j, r, key);
	struct jrow *row = karena_alloc(&j->h.arena, sizeof *row + len);
	row->next = NULL;
	row->len = (uint32_t)len;
	memcpy(row + 1, j->scratch, len);
	if (v->tail)
		v->tail->next = row;
	else
		v->head = row;
	v->tail = row;
}

static void probe_row(struct jjob *j, const struct kcsv_rec *r, long key)
{
	const struct kcsv_field *k = &r->f[key];
	struct jval *v = j->h.count ? khash_find(&j->h, k->p, k->len, khash64(k->p, k->len)) : NULL;
	struct kwriter *w = j->out;
	char d = j->out_delim;
	if (!v) {
		if (j->type == J_INNER)
			return;
		kcsv_put(w, k->p, k->len, d);
		put_cells(j, w, r, key, d);
		put_empty(w, j->side[1].ncols, d);
		kw_putc(w, '\n');
		w->rows++;
		return;
	}
	v->matched = 1;
	for (const struct jrow *row = v->head; row; row = row->next) {
		kcsv_put(w, k->p, k->len, d);
		put_cells(j, w, r, key, d);
		kw_write(w, row + 1, row->len);
		kw_putc(w, '\n');
		w->rows++;
	}
}

/* Full join: the right rows no left row matched, in key order. */
static void emit_unmatched(struct jjob *j)
{
	struct khash_entry **v = khash_entries(&j->h);
	khash_sort_entries(&j->h, v, j->h.count);
	struct kwriter *w = j->out;
	char d = j->out_delim;
	for (size_t i = 0; i < j->h.count; i++) {
		const struct jval *jv = khash_val(v[i]);
		if (jv->matched)
			continue;
		for (const struct jrow *row = jv->head; row; row = row->next) {
			kcsv_put(w, khash_key(&j->h, v[i]), v[i]->klen, d);
			put_empty(w, j->side[0].ncols, d);
			kw_write(w, row + 1, row->len);
			kw_putc(w, '\n');
			w->rows++;
		}
	}
	free(v);
}

/* A row into its bucket: the key cell first, then the others, TSV-escaped. */
static void part_row(struct jjob *j, const struct kcsv_rec *r, long key)
{
	const struct kcsv_field *k = &r->f[key];
	struct kwriter *w = j->bw[kpartition_of(khash64(k->p, k->len), j->nb)];
	kcsv_put(w, k->p, k->len, '\t');
	put_cells(j, w, r, key, '\t');
	kw_putc(w, '\n');
	w->rows++;
}

static void put_bucket_header(struct kwriter *w, const struct jside *s)
{
	char buf[64];
	snprintf(buf, sizeof buf, "#sluice-join-1\t%zu", s->ncols);
	kw_write(w, buf, strlen(buf));
	kw_putc(w, '\t');
	kcsv_put(w, s->names[s->key], strlen(s->names[s->key]), '\t');
	for (size_t i = 0; i < s->ncols; i++)
		if ((long)i != s->key) {
			kw_putc(w, '\t');
			kcsv_put(w, s->names[i], strlen(s->names[i]), '\t');
		}
	kw_putc(w, '\n');
}

/* Read the header of a bucket/shuffle file into side s (key first). */
static int bucket_header(struct jjob *j, struct jside *s, struct kcsv_rec *r, const char *file)
{
	uint64_t nc;
	if (r->n < 3 || r->f[0].len != 14 || memcmp(r->f[0].p, "#sluice-join-1", 14)) {
		j->err = kerrf("%s:1: not a join shuffle file (no #sluice-join-1 header)", file);
		return -1;
	}
	char num[24];
	snprintf(num, sizeof num, "%.*s", (int)(r->f[1].len < 20 ? r->f[1].len : 20), r->f[1].p);
	if (kparse_u64(num, &nc) || nc != r->n - 2) {
		j->err = kerrf("%s:1: a bad join shuffle header", file);
		return -1;
	}
	if (s->ncols && s->ncols != nc) {
		j->err = kerrf("%s:1: %llu columns, other files of this side have %zu", file, (unsigned long long)nc,
			       s->ncols);
		return -1;
	}
	if (!s->ncols) {
		s->ncols = nc;
		s->names = xcalloc(nc, sizeof *s->names);
		for (size_t i = 0; i < nc; i++)
			s->names[i] = xstrndup(r->f[i + 2].p, r->f[i + 2].len);
		s->key = 0;
	}
	return 0;
}

static void put_header(struct jjob *j);

/* The absolute line of relative line `at` of the split being read (1-based either way). */
static uint64_t abs_line(struct jjob *j, uint64_t at)
{
	if (j->ch && j->ch->begin)
		return kchunk_line(j->ch, j->ch->data + j->ch->begin) + at - 1;
	return at;
}

/* Feed the records of buf[begin, end) of one file of side s to the current mode. The side's
 * columns are known (learn_columns) unless its rows come from bucket files, whose header says. */
static int do_records(struct jjob *j, struct jside *s, const char *data, uint64_t begin, uint64_t end,
		      const char *file, uint64_t line)
{
	const char *p = data + begin, *e = data + end, *why;
	struct kcsv_rec *r = &j->rec;
	if (begin == 0 && p < e && (s->fmt.header || s->escaped)) {
		int k = kcsv_next(&s->fmt, &p, e, r, &why);
		line += r->lines;
		if (k == 1 && s->escaped) {
			unescape_rec(r);
			if (bucket_header(j, s, r, file))
				return -1;
			if (j->mode == M_PROBE && !j->hdr_done)
				put_header(j);
		} else if (k == 1) {
			/* every file of a side has the first file's header: columns are known by position */
			bool same = r->n == s->ncols;
			for (size_t i = 0; same && i < r->n; i++)
				same = strlen(s->names[i]) == r->f[i].len && !memcmp(s->names[i], r->f[i].p, r->f[i].len);
			if (!same) {
				j->err = kerrf("%s:1: its header differs from the first file's of this side", file);
				return -1;
			}
		}
	}
	if (!s->ncols && p < e) {
		j->err = kerrf("%s: the columns of this input are not known", file);
		return -1;
	}
	/* a mapped split drops its consumed pages every step bytes (they must not count against --memory) */
	size_t step = j->c.memory / 16 < ((size_t)32 << 20) ? j->c.memory / 16 : ((size_t)32 << 20);
	const char *release = p + step;
	while (p < e) {
		uint64_t at = line;
		if (j->ch && p >= release) {
			kchunk_release(j->ch, p);
			release = p + step;
		}
		int k = kcsv_next(&s->fmt, &p, e, r, &why);
		line += r->lines;
		if (k == 0)
			break;
		if (k < 0) {
			if (kbad_row(&j->bad, file, abs_line(j, at), "%s", why))
				return -1;
			continue;
		}
		if (s->escaped)
			unescape_rec(r);
		j->st.rows_in++;
		if (r->n != s->ncols) {
			if (kbad_row(&j->bad, file, abs_line(j, at), "%zu fields, expected %zu", r->n, s->ncols))
				return -1;
			continue;
		}
		if (j->mode == M_BUILD)
			build_row(j, r, s->key);
		else if (j->mode == M_PROBE)
			probe_row(j, r, s->key);
		else
			part_row(j, r, s->key);
	}
	return 0;
}

static int join_chunk(struct kchunk *ch, void *ctx)
{
	struct jjob *j = ctx;
	struct jside *s = &j->side[j->cur];
	j->st.bytes_in += ch->end - ch->begin;
	uint64_t line = 1; /* relative to the split: made absolute by bad_row, only on an error */
	j->ch = ch;
	if (ch->begin)
		kchunk_release(ch, ch->data + ch->begin);
	int rc = do_records(j, s, ch->data, ch->begin, ch->end, ch->file->path, line);
	j->ch = NULL;
	return rc;
}

/* Read side `sd` (inputs in[0..n)), split i of n, in the current mode. */
static int read_side(struct jjob *j, int sd, char **paths, size_t n, uint32_t si, uint32_t sn)
{
	struct kinput in = {0};
	j->cur = sd;
	int rc = kin_list(&in, paths, n, &j->err);
	if (!rc)
		rc = kin_split(&in, si, sn, kcsv_resync, &j->side[sd].fmt, join_chunk, j, &j->err);
	kin_free(&in);
	return rc ? -1 : 0;
}

static int slurp(int fd, char **buf, size_t *len, const char *name, char **err)
{
	struct stat sb;
	if (fstat(fd, &sb)) {
		*err = kerrf("%s: %s", name, strerror(errno));
		return -1;
	}
	*len = (size_t)sb.st_size;
	*buf = xmalloc(*len + 1);
	for (size_t got = 0; got < *len;) {
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

/* Feed a whole bucket/shuffle file (fd) of side sd in the current mode. */
static int read_bucket(struct jjob *j, int sd, int fd, const char *name)
{
	char *buf;
	size_t len;
	if (slurp(fd, &buf, &len, name, &j->err))
		return -1;
	int rc = do_records(j, &j->side[sd], buf, 0, len, name, 1);
	free(buf);
	return rc;
}

static void put_header(struct jjob *j)
{
	struct kwriter *w = j->out;
	char d = j->out_delim;
	const struct jside *l = &j->side[0], *r = &j->side[1];
	if (!l->ncols || !r->ncols)
		return;
	j->hdr_done = true;
	kcsv_put(w, l->names[l->key], strlen(l->names[l->key]), d);
	for (int s = 0; s < 2; s++)
		for (size_t i = 0; i < j->side[s].ncols; i++)
			if ((long)i != j->side[s].key) {
				kw_putc(w, d);
				kcsv_put(w, j->side[s].names[i], strlen(j->side[s].names[i]), d);
			}
	kw_putc(w, '\n');
}

/* The header needs both sides' columns; a side whose input is empty has none: its width is then
 * unknown, and the output is empty too (inner), or we say so. */
static int learn_columns(struct jjob *j, int sd, char **paths, size_t n)
{
	struct kinput in = {0};
	struct jside *s = &j->side[sd];
	int rc = kin_list(&in, paths, n, &j->err);
	for (size_t f = 0; !rc && f < in.nfiles && !s->ncols; f++) {
		if (!in.files[f].size)
			continue;
		/* read the first record of the file only */
		int fd = open(in.files[f].path, O_RDONLY | O_CLOEXEC);
		char buf[65536];
		ssize_t k = fd >= 0 ? pread(fd, buf, sizeof buf, 0) : -1;
		if (fd >= 0)
			close(fd);
		if (k <= 0) {
			j->err = kerrf("%s: %s", in.files[f].path, k < 0 ? strerror(errno) : "empty");
			rc = -1;
			break;
		}
		const char *p = buf, *why;
		if (kcsv_next(&s->fmt, &p, buf + k, &j->rec, &why) == 1) {
			side_columns(s, &j->rec, s->fmt.header);
			s->key = -1;
			for (size_t i = 0; i < s->ncols && s->fmt.header; i++)
				if (!strcmp(s->names[i], s->keyspec))
					s->key = (long)i;
			if (s->key < 0)
				s->key = kcsv_column(s->keyspec, NULL);
			if (s->key < 0 || (size_t)s->key >= s->ncols) {
				j->err = kerrf("%s: no column '%s' (--key)", in.files[f].path, s->keyspec);
				rc = -1;
			}
		}
	}
	kin_free(&in);
	if (!rc && !s->ncols) {
		/* no bytes at all: a side of one column, the key (so a full join still writes the other side) */
		s->ncols = 1;
		s->names = xcalloc(1, sizeof *s->names);
		s->names[0] = xstrdup(s->keyspec);
		s->key = 0;
	}
	return rc;
}

/* Side sd's rows hashed into B bucket files (fds, ws: B each). 0 or -1 with j->err. */
static int partition_side(struct jjob *j, struct kout *out, int sd, char **files, size_t nfiles, int *fds,
			  struct kwriter *ws, uint32_t B)
{
	int rc = 0;
	for (uint32_t b = 0; b < B; b++) {
		fds[b] = kspill_open(kout_tmpdir(out), &j->err);
		if (fds[b] < 0) {
			rc = -1;
			break;
		}
		kw_init(&ws[b], fds[b], 64 << 10);
		put_bucket_header(&ws[b], &j->side[sd]);
		j->bw[b] = &ws[b];
	}
	j->mode = M_PART;
	if (!rc)
		rc = read_side(j, sd, files, nfiles, sd ? 0 : j->c.split_i, sd ? 1 : j->c.split_n);
	for (uint32_t b = 0; b < B && fds[b] >= 0; b++) {
		int e = kw_finish(&ws[b]);
		if (e && !rc) {
			j->err = kerrf("writing a spill file: %s", strerror(-e));
			rc = -1;
		}
	}
	return rc;
}

/* Joins the bucket files pairwise (they hold the key first, as escaped TSV). */
static int join_buckets(struct jjob *j, int *fds[2], uint32_t B)
{
	struct jside saved[2] = {j->side[0], j->side[1]};
	int rc = 0;
	for (int sd = 0; sd < 2; sd++) {
		j->side[sd].escaped = true;
		j->side[sd].fmt = (struct kcsv_fmt){'\t', false, false};
		j->side[sd].key = 0;
		j->side[sd].ncols = 0;
		j->side[sd].names = NULL;
	}
	for (uint32_t b = 0; b < B && !rc; b++) {
		j->mode = M_BUILD;
		rc = read_bucket(j, 1, fds[1][b], "spill file");
		j->mode = M_PROBE;
		if (!rc)
			rc = read_bucket(j, 0, fds[0][b], "spill file");
		if (!rc && j->type == J_FULL)
			emit_unmatched(j);
		khash_reset(&j->h);
		for (int sd = 0; sd < 2; sd++) {
			for (size_t i = 0; i < j->side[sd].ncols; i++)
				free(j->side[sd].names[i]);
			free(j->side[sd].names);
			j->side[sd].names = NULL;
			j->side[sd].ncols = 0;
		}
	}
	j->side[0] = saved[0];
	j->side[1] = saved[1];
	return rc;
}

/* The grace join: B buckets of each side into spill files (right side first), then each bucket
 * joined in memory. 0 or -1 with j->err. */
static int grace_join(struct jjob *j, struct kout *out, char **left, size_t nl, char **right, size_t nr,
		      uint32_t B)
{
	int *fds[2];
	struct kwriter *ws[2];
	int rc = 0;
	for (int sd = 0; sd < 2; sd++) {
		fds[sd] = xcalloc(B, sizeof *fds[sd]);
		ws[sd] = xcalloc(B, sizeof *ws[sd]);
		for (uint32_t b = 0; b < B; b++)
			fds[sd][b] = -1;
	}
	j->bw = xcalloc(B, sizeof *j->bw);
	j->nb = B;
	for (int sd = 1; sd >= 0 && !rc; sd--)
		rc = partition_side(j, out, sd, sd ? right : left, sd ? nr : nl, fds[sd], ws[sd], B);
	if (!rc)
		rc = join_buckets(j, fds, B);
	for (int sd = 0; sd < 2; sd++) {
		for (uint32_t b = 0; b < B; b++)
			if (fds[sd][b] >= 0)
				close(fds[sd][b]);
		free(fds[sd]);
		free(ws[sd]);
	}
	free(j->bw);
	j->bw = NULL;
	return rc;
}

static int join_run(struct jjob *j, struct kout *out, char **left, size_t nl, char **right, size_t nr)
{
	char name[64];
	if (learn_columns(j, 0, left, nl) || learn_columns(j, 1, right, nr))
		return -1;
	snprintf(name, sizeof name, "part-%05d.%s", j->c.task, j->ext);
	if (!(j->out = kout_file(out, name, &j->err)))
		return -1;
	put_header(j);
	struct kinput rin = {0};
	if (kin_list(&rin, right, nr, &j->err))
		return -1;
	uint64_t rbytes = rin.total;
	kin_free(&rin);
	if (rbytes * 2 + (64u << 10) <= j->c.memory) {
		/* broadcast */
		j->mode = M_BUILD;
		if (read_side(j, 1, right, nr, 0, 1))
			return -1;
		j->mode = M_PROBE;
		if (read_side(j, 0, left, nl, j->c.split_i, j->c.split_n))
			return -1;
		if (j->type == J_FULL)
			emit_unmatched(j);
		return 0;
	}
	uint64_t B64 = rbytes * 3 / j->c.memory + 1;
	uint32_t B = B64 > 4096 ? 4096 : (uint32_t)B64;
	if (j->c.verbose)
		kwarn("join: right side %llu bytes over --memory: grace join with %u buckets", (unsigned long long)rbytes, B);
	return grace_join(j, out, left, nl, right, nr, B);
}

static int join_map(struct jjob *j, struct kout *out)
{
	if (learn_columns(j, 0, j->c.inputs, j->c.ninputs))
		return -1;
	j->nb = j->c.partitions;
	j->bw = xcalloc(j->nb, sizeof *j->bw);
	for (uint32_t p = 0; p < j->nb; p++) {
		char name[64];
		kshuffle_name(name, sizeof name, j->c.task, p);
		if (!(j->bw[p] = kout_file(out, name, &j->err)))
			return -1;
		if (j->side[0].ncols)
			put_bucket_header(j->bw[p], &j->side[0]);
	}
	j->mode = M_PART;
	return read_side(j, 0, j->c.inputs, j->c.ninputs, j->c.split_i, j->c.split_n);
}

static int join_reduce(struct jjob *j, struct kout *out)
{
	char **files[2] = {NULL, NULL};
	size_t nf[2] = {0, 0};
	int rc = 0;
	for (int sd = 0; sd < 2 && !rc; sd++) {
		j->side[sd].escaped = true;
		j->side[sd].fmt = (struct kcsv_fmt){'\t', false, false};
		j->side[sd].key = 0;
		rc = kshuffle_files(j->c.inputs[sd], (uint32_t)j->partition, (int)j->maps, &files[sd], &nf[sd], &j->err);
	}
	for (int sd = 1; sd >= 0 && !rc; sd--) {
		j->mode = sd ? M_BUILD : M_PROBE;
		if (!sd) {
			char name[64];
			snprintf(name, sizeof name, "part-%05lld.%s", (long long)j->partition, j->ext);
			if (!(j->out = kout_file(out, name, &j->err))) {
				rc = -1;
				break;
			}
		}
		for (size_t i = 0; i < nf[sd] && !rc; i++) {
			int fd = open(files[sd][i], O_RDONLY | O_CLOEXEC);
			if (fd < 0) {
				j->err = kerrf("%s: %s", files[sd][i], strerror(errno));
				rc = -1;
				break;
			}
			rc = read_bucket(j, sd, fd, files[sd][i]);
			close(fd);
		}
	}
	if (!rc && j->type == J_FULL)
		emit_unmatched(j);
	for (int sd = 0; sd < 2; sd++) {
		for (size_t i = 0; i < nf[sd]; i++)
			free(files[sd][i]);
		free(files[sd]);
	}
	return rc;
}

static void job_free(struct jjob *j)
{
	for (int sd = 0; sd < 2; sd++) {
		for (size_t i = 0; i < j->side[sd].ncols && j->side[sd].names; i++)
			free(j->side[sd].names[i]);
		free(j->side[sd].names);
	}
	khash_free(&j->h);
	kcsv_rec_free(&j->rec);
	free(j->scratch);
	free(j->bw);
	free(j->right);
	free(j->c.inputs);
}

int kmain_join(int argc, char **argv)
{
	struct jjob j = {0};
	const char *mode = "run";
	char *saved = NULL, *name = NULL, *err = NULL;
	struct kout *out = NULL;
	int r;

	if (argc >= 2 && (!strcmp(argv[1], "map") || !strcmp(argv[1], "reduce") || !strcmp(argv[1], "run"))) {
		mode = argv[1];
		name = xasprintf("join %s", mode);
		saved = argv[1];
		argv[1] = name;
		argc--;
		argv++;
	}
	j.fmt = (struct kcsv_fmt){',', true, true};
	j.out_delim = '\t';
	j.ext = "tsv";
	j.partition = -1;
	j.side[0].key = j.side[1].key = -1;
	kcsv_rec_init(&j.rec);
	khash_init(&j.h, sizeof(struct jval), 64);
	r = kopt_parse(argc, argv, join_opts, join_opt, &j, &j.c, usage_text);
	if (r) {
		r = r == 1 ? 0 : r;
		goto out;
	}
	j.side[0].fmt = j.side[1].fmt = j.fmt;
	for (int sd = 0; sd < 2; sd++)
		if (j.side_fmt[sd]) {
			j.side[sd].fmt.delim = j.side_fmt[sd] == 1 ? ',' : '\t';
			j.side[sd].fmt.quoting = j.side_fmt[sd] == 1;
		}
	bool reduce = !strcmp(mode, "reduce"), map = !strcmp(mode, "map");
	/* run: LEFT... -- RIGHT... or exactly two inputs */
	char **left = j.c.inputs, **right = NULL;
	size_t nl = j.c.ninputs, nr = 0;
	if (!reduce && !map) {
		if (j.nright) {
			right = j.right;
			nr = j.nright;
		} else if (j.c.ninputs == 2) {
			nl = 1;
			right = j.c.inputs + 1;
			nr = 1;
		}
	}
	const char *usage_err = NULL;
	if (!reduce && (!j.side[0].keyspec || !j.side[1].keyspec))
		usage_err = "--key (or --left-key and --right-key) is required";
	else if (!reduce && !map && (nl == 0 || nr == 0))
		usage_err = "need LEFT and RIGHT inputs (or LEFT... --right RIGHT ...)";
	else if (!reduce && !map && j.type == J_FULL && j.c.split_n > 1)
		usage_err = "a full join reads the whole left input: use join map/reduce to distribute it";
	else if (map && j.c.ninputs == 0)
		usage_err = "no input";
	else if (reduce && (j.c.ninputs != 2 || j.partition < 0 || j.partition >= (int64_t)j.c.partitions))
		usage_err = "need --partition P below --partitions N, a left and a right shuffle directory";
	if (usage_err) {
		fprintf(stderr, "sluice-kernel join %s: %s (try --help)\n", mode, usage_err);
		r = 2;
		goto out;
	}
	if (reduce) {
		j.c.task = (int)j.partition;
		j.c.tasks = (int)j.c.partitions;
	}
	kbad_init(&j.bad, &j.c, "join");
	r = kout_open(&out, &j.c, reduce ? "join-reduce" : map ? "join-map" : "join", &err);
	if (r)
		goto done;
	if (reduce)
		r = join_reduce(&j, out);
	else if (map)
		r = join_map(&j, out);
	else
		r = join_run(&j, out, left, nl, right, nr);
	if (r) {
		err = j.err ? j.err : xstrdup(j.bad.count ? "stopped by a bad row (reported above)" : "failed");
		j.err = NULL;
		kout_abort(out);
		r = -1;
		goto done;
	}
	j.st.bad_rows = j.bad.count;
	r = kout_commit(out, &j.st, &err);
done:
	if (r < 0) {
		fprintf(stderr, "sluice-kernel join %s: %s\n", mode, err ? err : "failed");
		r = 1;
	}
	free(err);
	free(j.err);
out:
	job_free(&j);
	if (saved)
		argv[0] = saved;
	free(name);
	return r;
}
