/* Small helpers shared by the daemon, the CLI and the executors: growable strings, time in
 * microseconds, durations, ISO-8601, files. Nothing here knows about DAGs. */
#ifndef SLUICE_UTIL_H
#define SLUICE_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Wall-clock time: microseconds since the Unix epoch, UTC. */
typedef int64_t usec_t;
#define USEC_PER_SEC 1000000LL
#define USEC_NONE INT64_MIN /* "no time", stored as NULL */

/* Allocation that aborts on out-of-memory: the daemon cannot do anything useful without memory. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Returns a newly allocated formatted string; the caller frees it. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growable NUL-terminated byte string. Zero-initialise ({0}) before use; sb_free() releases. */
struct strbuf {
	char *buf;
	size_t len, cap;
};
/* Makes room for extra more bytes at once (a writer that knows its size saves the regrowths). */
void sb_reserve(struct strbuf *sb, size_t extra);
void sb_add(struct strbuf *sb, const char *s, size_t n);
void sb_puts(struct strbuf *sb, const char *s);
void sb_putc(struct strbuf *sb, char c);
void sb_printf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_vprintf(struct strbuf *sb, const char *fmt, va_list ap);
/* Returns the string (never NULL; "" when empty) and leaves ownership with the buffer. */
const char *sb_str(struct strbuf *sb);
/* Hands the string to the caller (never NULL) and resets the buffer. */
char *sb_steal(struct strbuf *sb);
void sb_reset(struct strbuf *sb);
void sb_free(struct strbuf *sb);

/* Current wall-clock time and a monotonic clock, both in microseconds. */
usec_t now_usec(void);
usec_t mono_usec(void);

/* Parses a duration such as "30s", "10m", "1h30m", "2d", "500ms" or a plain number of seconds
 * ("45", "1.5"). Returns 0 and stores microseconds, or -EINVAL. */
int parse_duration(const char *s, usec_t *out);
/* Formats a duration compactly ("1h30m", "45s", "250ms") into buf. */
void format_duration(usec_t d, char *buf, size_t n);

/* Parses "2026-11-01", "2026-11-01T03:00", "2026-11-01T03:00:00", with optional fraction and
 * optional "Z" / "+HH:MM" / "-HH:MM" (space instead of T accepted). Without an offset the time
 * is taken as UTC. Returns 0 or -EINVAL. */
int parse_iso8601(const char *s, usec_t *out);
/* "2026-11-20T17:00:00+00:00" (Airflow's form; microseconds added when non-zero). */
void format_iso8601(usec_t t, char *buf, size_t n);
/* "2026-11-20T17:00:00Z" (seconds precision). */
void format_iso8601_z(usec_t t, char *buf, size_t n);
#define ISO_BUFSZ 40

/* Days since 1970-01-01 for a proleptic Gregorian date, and back. */
int64_t days_from_civil(int64_t y, unsigned m, unsigned d);
void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);

/* Reads a whole file (up to max bytes) into a NUL-terminated buffer. Returns 0 or -errno;
 * -EFBIG when larger than max. The caller frees *out. */
int read_file(const char *path, size_t max, char **out, size_t *len);
/* Writes data to path atomically (temp file in the same directory, fsync optional, rename). */
int write_file_atomic(const char *path, const void *data, size_t len, bool sync);
/* mkdir -p; returns 0 or -errno. */
int mkdir_p(const char *path, unsigned mode);
/* rm -rf of path, which must resolve to somewhere strictly inside root (e.g. $SLUICE_HOME):
 * returns 0, -EPERM (outside root, or root itself; nothing removed) or -errno. A missing path
 * is not an error. Symlinks below path are removed, never followed. */
int remove_tree(const char *root, const char *path);
/* Whether path (resolved, symlinks followed; it must exist) lies strictly inside root. */
bool path_is_under(const char *root, const char *path);
/* root/c1/c2/... for a NULL-terminated list of components (malloc'd), or NULL when a component
 * is empty, ".", ".." or holds a '/': the one way sluice builds a path from ids, so the result
 * always stays under root. */
char *path_under(const char *root, ...) __attribute__((sentinel));
/* Whether s can be one component of path_under(). */
bool path_component_ok(const char *s);

/* SHA-256 of data as 64 lowercase hex characters plus NUL. */
void sha256_hex(const void *data, size_t len, char out[65]);

#define ID_MAX 250
/* A DAG, task, pool or user id: [A-Za-z0-9_.-]+, at most ID_MAX bytes, never "." or "..". */
bool valid_id(const char *s);
/* A run id, with Airflow's characters: [A-Za-z0-9_.~:+-]+, at most ID_MAX bytes, never "." or
 * "..". */
bool valid_run_id(const char *s);

/* A boolean as people write it in query strings and config: true/false/1/0 in any case (the
 * Python client sends True and False). Returns false when s is none of them. */
bool parse_bool(const char *s, bool *out);
/* Whether s (n bytes) is well-formed UTF-8: no stray continuation bytes, overlong forms,
 * surrogates or code points beyond U+10FFFF. */
bool utf8_valid(const char *s, size_t n);
/* A copy of s with every byte that is not part of well-formed UTF-8 replaced by U+FFFD. */
char *utf8_sanitize(const char *s);
/* A copy of s with every occurrence of any of the n secrets written as *** (the longest match
 * first; empty secrets are ignored). */
char *str_mask(const char *s, char *const *secrets, size_t n);
/* argv as one shell command line: each word that is not plain quoted with '...'. */
char *shell_join(const char *const *argv);
/* Whether needle occurs in hay, ignoring ASCII case (SQL's ILIKE '%needle%'). */
bool contains_nocase(const char *hay, const char *needle);

/* Blocks SIGINT and SIGTERM in the calling thread; threads started afterwards inherit the mask,
 * so none of them dies of those signals by default. */
void block_stop_signals(void);
/* Blocks them (as above) and returns a signalfd that reads them (close-on-exec, non-blocking),
 * or -errno. */
int stop_signals_fd(void);

/* Returns the directory holding the running executable (from /proc/self/exe); caller frees. */
char *exe_dir(void);

#endif
