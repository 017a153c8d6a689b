#include "base/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static enum log_level max_level = LOG_LVL_INFO;
static bool with_time;

void log_set_level(enum log_level lvl) { max_level = lvl; }
void log_set_timestamps(bool on) { with_time = on; }

static void vlog(enum log_level lvl, const char *prefix, const char *errstr, const char *fmt,
		 va_list ap)
{
	char buf[2048];
	int n = 0;

	if (lvl > max_level)
		return;
	if (with_time) {
		struct timespec ts;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = (int)strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ ", &tm);
	}
	n += snprintf(buf + n, sizeof(buf) - (size_t)n, "%s", prefix);
	if (n < (int)sizeof(buf))
		n += vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	if (errstr && n < (int)sizeof(buf))
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, ": %s", errstr);
	if (n >= (int)sizeof(buf))
		n = (int)sizeof(buf) - 1;
	buf[n++] = '\n';
	fwrite(buf, 1, (size_t)n, stderr);
}

#define LOGFN(name, lvl, prefix, use_errno)                                    \
	void name(const char *fmt, ...)                                         \
	{                                                                       \
		int saved = errno;                                              \
		va_list ap;                                                     \
		va_start(ap, fmt);                                              \
		vlog(lvl, prefix, use_errno ? strerror(saved) : NULL, fmt, ap); \
		va_end(ap);                                                     \
		errno = saved;                                                  \
	}

LOGFN(log_warn, LOG_LVL_WARN, "warning: ", 1)
LOGFN(log_warnx, LOG_LVL_WARN, "warning: ", 0)
LOGFN(log_info, LOG_LVL_INFO, "", 0)
LOGFN(log_debug, LOG_LVL_DEBUG, "debug: ", 0)

void fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	vlog(LOG_LVL_ERROR, "fatal: ", strerror(saved), fmt, ap);
	va_end(ap);
	abort();
}

void fatalx(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(LOG_LVL_ERROR, "fatal: ", NULL, fmt, ap);
	va_end(ap);
	abort();
}
