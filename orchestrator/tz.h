/* IANA time zones read from TZif files, without touching the process-global TZ.
 *
 * The daemon is multi-threaded, so nothing here calls tzset(), localtime() or setenv("TZ").
 * A zone is loaded from $TZDIR/NAME (default /usr/share/zoneinfo, the Debian package tzdata):
 * TZif version 1, 2, 3 or 4, using the 64-bit data block when present and the POSIX TZ footer
 * string for instants after the last recorded transition. "UTC" and "Etc/UTC" are built in and
 * work without tzdata.
 *
 * Invariants: a struct tz is immutable once tz_load() returns, so one instance may be read by
 * any number of threads at once. Times are int64_t seconds; "UTC seconds" count from the Unix
 * epoch and ignore leap seconds (POSIX time); "local seconds" are the wall clock of a zone
 * written as if it were UTC (days_from_civil(y, m, d) * 86400 + h * 3600 + min * 60 + s).
 * An offset is in seconds east of UTC: local = utc + offset. */
#ifndef SLUICE_TZ_H
#define SLUICE_TZ_H

#include <stdbool.h>
#include <stdint.h>

struct tz;

/* A stretch of UTC time [start, end) over which a zone's offset does not change. start may
 * be INT64_MIN and end INT64_MAX. Two adjacent spans may have the same offset (a change of
 * abbreviation or of the DST flag only). */
struct tz_span {
	int64_t start, end;
	int32_t utcoff;
	bool isdst;
};

/* Civil fields of an instant. abbr points into the zone (valid while the zone lives). */
struct tz_tm {
	int64_t year;
	int mon;	/* 1-12 */
	int mday;	/* 1-31 */
	int hour, min, sec;
	int wday;	/* 0 = Sunday */
	int yday;	/* 0-365 */
	int32_t utcoff;
	bool isdst;
	const char *abbr;
};

/* What a local wall-clock time is in a zone. */
enum tz_local_kind {
	TZ_LOCAL_UNIQUE,	/* exactly one instant: utc[0] == utc[1] */
	TZ_LOCAL_OVERLAP,	/* happens twice (clocks went back): utc[0] < utc[1] */
	TZ_LOCAL_GAP,		/* never happens (clocks went forward): utc[0] == utc[1] == the
				 * first instant after the gap, i.e. the moment clocks jumped */
};

/* Loads zone NAME ("Europe/Berlin", "UTC"). Returns a new zone the caller frees with tz_free(),
 * or NULL with a malloc'd message in *err (caller frees). Names that are empty, absolute,
 * contain a ".." component or unusual characters are rejected. */
struct tz *tz_load(const char *name, char **err);
/* Frees a zone from tz_load(); NULL is ignored. Never pass a zone from tz_get()/tz_utc(). */
void tz_free(struct tz *z);

/* Returns the shared, cached instance of zone NAME, loading it on first use (thread-safe).
 * Cached zones live until tz_cache_free(). NULL with *err (caller frees) as for tz_load(). */
const struct tz *tz_get(const char *name, char **err);
/* The built-in UTC zone (never NULL, never freed). */
const struct tz *tz_utc(void);
/* Releases every cached zone; only for clean shutdown when no thread holds a cached zone. */
void tz_cache_free(void);

/* The zone's name as given to tz_load(). */
const char *tz_name(const struct tz *z);

/* Offset in seconds east of UTC in effect at utc_sec. A NULL zone is UTC. */
int32_t tz_offset_at_utc(const struct tz *z, int64_t utc_sec);
/* Fills *out with the span of constant offset that contains utc_sec. A NULL zone is UTC. */
void tz_span_at(const struct tz *z, int64_t utc_sec, struct tz_span *out);
/* Lowest and highest offsets the zone ever uses (for bounding searches). */
void tz_offset_range(const struct tz *z, int32_t *lo, int32_t *hi);

/* Converts local seconds to UTC, reporting gaps and overlaps explicitly (see enum tz_local_kind);
 * utc[0] and utc[1] are always both set. A NULL zone is UTC. */
enum tz_local_kind tz_local_to_utc(const struct tz *z, int64_t local_sec, int64_t utc[2]);

/* Breaks utc_sec into the zone's civil fields (like localtime_r, but for any zone). */
void tz_localtime(const struct tz *z, int64_t utc_sec, struct tz_tm *out);
/* Breaks seconds into civil fields with no zone applied (utcoff 0, abbr "UTC"). Works for
 * UTC seconds and for local seconds alike. */
void tz_split(int64_t secs, struct tz_tm *out);
/* Joins civil fields into seconds (the inverse of tz_split; out-of-range fields are not
 * normalised: callers pass valid dates). */
int64_t tz_join(int64_t year, int mon, int mday, int hour, int min, int sec);

#endif
