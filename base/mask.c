#include "base/mask.h"

#include <stdlib.h>
#include <string.h>

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
