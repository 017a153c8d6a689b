/* Inputs, byte-range splits and the buffered writer of sluice-kernel (kernels/kernel.h). */
#include <dirent.h>
#include <glob.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "kernels/kernel.h"

static void add_file(struct kinput *in, size_t *cap, const char *path, uint64_t size)
{
	if (in->nfiles == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		in->files = xrealloc(in->files, *cap * sizeof *in->files);
	}
	in->files[in->nfiles].path = xstrdup(path);
	in->files[in->nfiles].size = size;
	in->files[in->nfiles].offset = in->total;
	in->total += size;
	in->nfiles++;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list_dir(struct kinput *in, size_t *cap, const char *dir, int depth, char **err)
{
	DIR *d = opendir(dir);
	char **names = NULL;
	size_t n = 0, ncap = 0;
	int rc = 0;
	struct dirent *de;

	if (!d) {
		*err = kerrf("%s: %s", dir, strerror(errno));
		return -1;
	}
	if (depth > 32) {
		closedir(d);
		*err = kerrf("%s: directories nested too deep", dir);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || de->d_name[0] == '_')
			continue;
		if (n == ncap) {
			ncap = ncap ? ncap * 2 : 64;
			names = xrealloc(names, ncap * sizeof *names);
		}
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof *names, cmp_str);
	for (size_t i = 0; i < n && !rc; i++) {
		char *p = xasprintf("%s/%s", dir, names[i]);
		struct stat st;
		if (stat(p, &st)) {
			*err = kerrf("%s: %s", p, strerror(errno));
			rc = -1;
		} else if (S_ISDIR(st.st_mode)) {
			rc = list_dir(in, cap, p, depth + 1, err);
		} else if (S_ISREG(st.st_mode)) {
			add_file(in, cap, p, (uint64_t)st.st_size);
		}
		free(p);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

static int kin_list_one(struct kinput *in, size_t *cap, const char *path, char **err);

int kin_list(struct kinput *in, char *const *paths, size_t n, char **err)
{
	size_t cap = 0;
	memset(in, 0, sizeof *in);
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		if (!strcmp(paths[i], "-")) {
			*err = kerrf("reading standard input is not supported (splits need file sizes); name a file");
			goto fail;
		}
		if (stat(paths[i], &st) && errno == ENOENT && strpbrk(paths[i], "*?[")) {
			/* a glob (argv commands have no shell to expand it): its matches, sorted */
			glob_t g;
			int gr = glob(paths[i], 0, NULL, &g);
			if (gr == GLOB_NOMATCH) {
				*err = kerrf("%s: no file matches", paths[i]);
				goto fail;
			}
			if (gr) {
				*err = kerrf("%s: cannot expand the pattern", paths[i]);
				goto fail;
			}
			int rc = 0;
			for (size_t j = 0; j < g.gl_pathc && !rc; j++) {
				char *one = g.gl_pathv[j];
				rc = kin_list_one(in, &cap, one, err);
			}
			globfree(&g);
			if (rc)
				goto fail;
			continue;
		}
		if (kin_list_one(in, &cap, paths[i], err))
			goto fail;
	}
	return 0;
fail:
	kin_free(in);
	return -1;
}

static int kin_list_one(struct kinput *in, size_t *cap, const char *path, char **err)
{
	struct stat st;
	{
		if (stat(path, &st)) {
			*err = kerrf("%s: %s", path, strerror(errno));
			return -1;
		}
		if (S_ISDIR(st.st_mode))
			return list_dir(in, cap, path, 0, err);
		if (!S_ISREG(st.st_mode)) {
			*err = kerrf("%s: not a regular file or directory", path);
			return -1;
		}
		add_file(in, cap, path, (uint64_t)st.st_size);
	}
	return 0;
}

void kin_free(struct kinput *in)
{
	for (size_t i = 0; i < in->nfiles; i++)
		free(in->files[i].path);
	free(in->files);
	memset(in, 0, sizeof *in);
}

uint64_t kresync_line(const char *data, uint64_t len, uint64_t pos, void *ctx)
{
	(void)ctx;
	if (pos == 0 || pos >= len)
		return pos >= len ? len : 0;
	if (data[pos - 1] == '\n')
		return pos;
	const char *nl = memchr(data + pos, '\n', len - pos);
	return nl ? (uint64_t)(nl - data) + 1 : len;
}

static uint64_t split_point(uint64_t total, uint32_t i, uint32_t n)
{
	return (uint64_t)(((__uint128_t)total * i) / n);
}

int kin_split(const struct kinput *in, uint32_t i, uint32_t n, kresync_fn fn, void *fnctx,
	      int (*each)(struct kchunk *ch, void *ctx), void *ctx, char **err)
{
	uint64_t gs = split_point(in->total, i, n), ge = split_point(in->total, i + 1, n);
	if (!fn)
		fn = kresync_line;
	for (size_t f = 0; f < in->nfiles; f++) {
		const struct kfile *kf = &in->files[f];
		if (kf->size == 0 || ge <= kf->offset || gs >= kf->offset + kf->size)
			continue;
		uint64_t s = gs > kf->offset ? gs - kf->offset : 0;
		uint64_t e = ge - kf->offset < kf->size ? ge - kf->offset : kf->size;
		int fd = open(kf->path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			*err = kerrf("%s: %s", kf->path, strerror(errno));
			return -1;
		}
		struct stat st;
		if (fstat(fd, &st) || (uint64_t)st.st_size != kf->size) {
			close(fd);
			*err = kerrf("%s: the file changed size while being read", kf->path);
			return -1;
		}
		char *data = mmap(NULL, kf->size, PROT_READ, MAP_PRIVATE, fd, 0);
		close(fd);
		if (data == MAP_FAILED) {
			*err = kerrf("%s: mmap: %s", kf->path, strerror(errno));
			return -1;
		}
		struct kchunk ch = {.file = kf, .data = data, .size = kf->size, .line_pos = 0, .line_no = 1};
		ch.begin = s == 0 ? 0 : fn(data, kf->size, s, fnctx);
		ch.end = e >= kf->size ? kf->size : fn(data, kf->size, e, fnctx);
		int r = 0;
		if (ch.begin < ch.end) {
			/* Read ahead only the owned range; the kernel reads it once, in order. */
			size_t pg = (size_t)sysconf(_SC_PAGESIZE);
			uint64_t a = ch.begin & ~(uint64_t)(pg - 1);
			madvise(data + a, ch.end - a, MADV_SEQUENTIAL);
			madvise(data + a, ch.end - a, MADV_WILLNEED);
			r = each(&ch, ctx);
		}
		munmap(data, kf->size);
		if (r)
			return r;
	}
	return 0;
}

uint64_t kchunk_line(struct kchunk *ch, const char *p)
{
	uint64_t pos = (uint64_t)(p - ch->data);
	if (pos < ch->line_pos) {
		ch->line_pos = 0;
		ch->line_no = 1;
	}
	const char *q = ch->data + ch->line_pos, *end = ch->data + pos;
	while (q < end && (q = memchr(q, '\n', (size_t)(end - q))) != NULL) {
		ch->line_no++;
		q++;
	}
	ch->line_pos = pos;
	return ch->line_no;
}

/* ---- writer ----
 * The checksum is a multiply-rotate chain over the content's 8-byte little-endian words, then the
 * zero-padded tail and the length; the buffer size is a multiple of 8 and full buffers are the only
 * blocks hashed before kw_finish, so the result depends on the content alone. */

static inline uint64_t rotl64(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

static uint64_t sum_words(uint64_t h, const char *p, size_t n)
{
	for (size_t i = 0; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		h = rotl64(h ^ (w * 0x87c37b91114253d5ull), 31) * 0x4cf5ad432745937full;
	}
	return h;
}

void kw_init(struct kwriter *w, int fd, size_t cap)
{
	memset(w, 0, sizeof *w);
	cap = cap ? (cap + 7) & ~(size_t)7 : (size_t)1 << 20;
	w->fd = fd;
	w->cap = cap;
	w->buf = xmalloc(cap);
	w->sum = 0x9e3779b97f4a7c15ull;
}

static void write_all(struct kwriter *w, const char *p, size_t n)
{
	while (n > 0 && !w->error) {
		ssize_t k = write(w->fd, p, n);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			w->error = errno;
			break;
		}
		p += k;
		n -= (size_t)k;
	}
}

void kw_flush_block(struct kwriter *w)
{
	w->sum = sum_words(w->sum, w->buf, w->len);
	w->bytes += w->len;
	write_all(w, w->buf, w->len);
	w->len = 0;
}

void kw_u64(struct kwriter *w, uint64_t v)
{
	char tmp[24];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	if (w->cap - w->len > 24) {
		while (n)
			w->buf[w->len++] = tmp[--n];
		return;
	}
	while (n)
		kw_putc(w, tmp[--n]);
}

int kw_finish(struct kwriter *w)
{
	size_t whole = w->len & ~(size_t)7;
	uint64_t tail = 0;
	w->sum = sum_words(w->sum, w->buf, whole);
	memcpy(&tail, w->buf + whole, w->len - whole);
	w->sum = rotl64(w->sum ^ (tail * 0x87c37b91114253d5ull), 31) * 0x4cf5ad432745937full;
	w->bytes += w->len;
	w->sum ^= w->bytes;
	w->sum = khash_mum(w->sum, 0xe7037ed1a0b428dbull);
	write_all(w, w->buf, w->len);
	w->len = 0;
	free(w->buf);
	w->buf = NULL;
	w->cap = 0;
	return w->error ? -w->error : 0;
}

void kw_checksum(const struct kwriter *w, char out[17])
{
	snprintf(out, 17, "%016llx", (unsigned long long)w->sum);
}

void kchunk_release(struct kchunk *ch, const char *p)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	uint64_t upto = (uint64_t)(p - ch->data) & ~(uint64_t)(pg - 1);
	if (upto > 0)
		madvise((void *)ch->data, upto, MADV_DONTNEED);
}

void kr_init(struct kreader *r, int fd, uint64_t off, uint64_t lim, size_t cap, const char *name)
{
	memset(r, 0, sizeof *r);
	r->fd = fd;
	r->off = off;
	r->lim = lim;
	r->cap = cap ? cap : 65536;
	r->buf = xmalloc(r->cap);
	r->name = name;
}

int kr_line(struct kreader *r, const char **p, size_t *n, char **err)
{
	for (;;) {
		char *nl = r->pos < r->len ? memchr(r->buf + r->pos, '\n', r->len - r->pos) : NULL;
		if (nl) {
			*p = r->buf + r->pos;
			*n = (size_t)(nl - (r->buf + r->pos));
			r->pos = (size_t)(nl - r->buf) + 1;
			r->line++;
			return 1;
		}
		if (r->off >= r->lim) {
			if (r->pos >= r->len)
				return 0;
			*p = r->buf + r->pos;
			*n = r->len - r->pos;
			r->pos = r->len;
			r->line++;
			return 1;
		}
		/* Refill: keep the partial line, grow the buffer when it holds nothing else. */
		if (r->pos > 0) {
			memmove(r->buf, r->buf + r->pos, r->len - r->pos);
			r->len -= r->pos;
			r->pos = 0;
		}
		if (r->len == r->cap) {
			r->cap *= 2;
			r->buf = xrealloc(r->buf, r->cap);
		}
		size_t want = r->cap - r->len;
		if (want > r->lim - r->off)
			want = (size_t)(r->lim - r->off);
		ssize_t k = pread(r->fd, r->buf + r->len, want, (off_t)r->off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			*err = kerrf("%s: %s", r->name, k < 0 ? strerror(errno) : "unexpected end of file");
			return -1;
		}
		r->len += (size_t)k;
		r->off += (uint64_t)k;
	}
}

void kr_free(struct kreader *r)
{
	free(r->buf);
	r->buf = NULL;
}

bool kchunk_header(const struct kchunk *ch, const char **p, size_t *n)
{
	if (!ch->size)
		return false;
	const char *nl = memchr(ch->data, '\n', ch->size);
	size_t len = nl ? (size_t)(nl - ch->data) : ch->size;
	if (len && ch->data[len - 1] == '\r')
		len--;
	*p = ch->data;
	*n = len;
	return true;
}

