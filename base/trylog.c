#include "base/trylog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"

void masker_load(struct masker *m, const char *path)
{
	char *text = NULL;
	size_t len = 0;

	if (!path || read_file(path, 1 << 16, &text, &len) < 0)
		return;
	for (size_t i = 0; i < len; i += strlen(text + i) + 1) {
		size_t l = strlen(text + i);
		if (l < MASK_MIN_LEN)
			continue;
		m->secrets = xrealloc(m->secrets, (m->n + 1) * sizeof(char *));
		m->secrets[m->n++] = xstrdup(text + i);
		if (l - 1 > m->keep)
			m->keep = l - 1;
	}
	explicit_bzero(text, len);
	free(text);
}

/* The longest secret at p (within n bytes), or 0. */
static size_t secret_at(const struct masker *m, const char *p, size_t n)
{
	size_t best = 0;

	for (size_t i = 0; i < m->n; i++) {
		size_t l = strlen(m->secrets[i]);
		if (l <= n && l > best && !memcmp(p, m->secrets[i], l))
			best = l;
	}
	return best;
}

void masker_feed(struct masker *m, const char *p, size_t n, bool final, struct strbuf *out)
{
	if (!m->n) {
		sb_add(out, p, n);
		return;
	}
	sb_add(&m->carry, p, n);
	size_t have = m->carry.len, upto = final ? have : have > m->keep ? have - m->keep : 0, i = 0;
	while (i < upto) {
		size_t s = secret_at(m, m->carry.buf + i, have - i);
		if (s) {
			sb_puts(out, "***");
			i += s;
		} else {
			sb_putc(out, m->carry.buf[i++]);
		}
	}
	memmove(m->carry.buf, m->carry.buf + i, have - i);
	m->carry.len = have - i;
	if (m->carry.buf)
		m->carry.buf[m->carry.len] = '\0';
}

void masker_free(struct masker *m)
{
	for (size_t i = 0; i < m->n; i++) {
		explicit_bzero(m->secrets[i], strlen(m->secrets[i]));
		free(m->secrets[i]);
	}
	free(m->secrets);
	if (m->carry.buf)
		explicit_bzero(m->carry.buf, m->carry.len);
	sb_free(&m->carry);
	memset(m, 0, sizeof(*m));
}

void trylog_append(int fd, const char *path, const char *who, const char *p, size_t n, long long max,
		   long long *written, bool *capped)
{
	if (*capped || fd < 0 || n == 0)
		return;
	if (max > 0 && *written + (long long)n > max) {
		char note[160];
		n = max > *written ? (size_t)(max - *written) : 0;
		int k = snprintf(note, sizeof(note), "\nsluice: the log reached core.max_log_size (%lld "
			 "bytes): the rest of the output is dropped\n", max);
		if (write(fd, p, n) < 0 || write(fd, note, (size_t)k) < 0)
			log_warn("%s: cannot write %s", who, path);
		*capped = true;
		return;
	}
	if (write(fd, p, n) < 0)
		log_warn("%s: cannot write %s", who, path);
	*written += (long long)n;
}
