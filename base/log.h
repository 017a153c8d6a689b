/* Diagnostics in the OpenBSD style: log_warn() appends strerror(errno), log_warnx() does not.
 * Messages go to stderr with a level prefix; the daemon may later redirect them. */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

#include <stdbool.h>

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Sets the most verbose level that is printed (default LOG_LVL_INFO). */
void log_set_level(enum log_level lvl);
/* Prefix each line with a UTC timestamp (the daemon turns this on). */
void log_set_timestamps(bool on);

void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* For programming errors and impossible states only, never for bad input. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
