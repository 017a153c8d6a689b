/* Cron schedules: when does a DAG fire?
 *
 * Syntax (classic Vixie cron, 5 fields): "minute hour day-of-month month day-of-week".
 *   minute 0-59, hour 0-23, day-of-month 1-31, month 1-12 or JAN-DEC, day-of-week 0-7 or
 *   SUN-SAT (0 and 7 are Sunday). Names are case-insensitive.
 *   Each field is a comma list of items: "*", "N", "N-M", "*\/S", "N-M/S" or "N/S" (= N to the
 *   field's maximum in steps of S; the maximum of day-of-week is 6 there, as in croner).
 *   Steps run from 1 to the field's size (60, 24, 31, 12, 7). Ranges must not run backwards,
 *   except that SUN ends a day-of-week range as 7 ("FRI-SUN").
 *   Day matching, as Airflow's croniter (and croner, and POSIX): unless day-of-month or
 *   day-of-week counts as "*", a day matches if EITHER matches ("*\/2" restricts its field);
 *   when one of them counts as "*", the other decides. A field counts as "*" when it is "*", or
 *   when it covers every day ("1-31", "*\/1", "0-6") and the other field holds a '*' (croniter's
 *   rule: "*\/1 * *\/2" is every other weekday, not every day).
 *   Presets: @hourly, @daily = @midnight, @weekly (Sunday 00:00), @monthly, @yearly = @annually.
 *   "@every D" (D from parse_duration(), whole seconds, at least 1s) fires at every multiple of
 *   D since the Unix epoch (1970-01-01T00:00:00Z), in UTC whatever the zone: "@every 15m" fires
 *   at :00, :15, :30, :45 and "@every 7m" drifts against the hour.
 *   "@once" fires exactly once, at the instant given to cron_set_start() (the DAG's start).
 *
 * Time zones and daylight saving (the rules of croner and croner-rust, based on Vixie cron):
 *   Fields are matched against the wall clock of the zone. A job is a FIXED-TIME job when its
 *   minute and hour fields each hold a single value written without '*' or '/' ("30 2 * * *",
 *   @daily, @weekly, @monthly, @yearly); any other job is an INTERVAL job ("*\/15 * * * *",
 *   "0 * * * *", "0 2,14 * * *", "30 1-3 * * *", @hourly).
 *   - Spring forward (a gap of wall times that never happen): a fixed-time job whose time falls
 *     in the gap fires once, at the first instant after the gap (02:30 fires at 03:00 where
 *     02:00-03:00 is skipped); an interval job skips the times that do not exist.
 *   - Fall back (an overlap of wall times that happen twice): a fixed-time job fires once, at
 *     the first occurrence; an interval job fires at both occurrences, so it keeps its rhythm
 *     in real time through the repeated hour.
 *   Fire times form one fixed set of UTC instants, so cron_next() and cron_prev() agree.
 *
 * A struct cron is immutable after cron_parse() (and cron_set_start()): threads may share it. */
#ifndef SLUICE_CRON_H
#define SLUICE_CRON_H

#include <stddef.h>
#include <stdint.h>

#include "orchestrator/tz.h"

struct cron;

enum cron_kind {
	CRON_FIELDS,	/* a 5-field expression or a preset */
	CRON_EVERY,	/* @every D */
	CRON_ONCE,	/* @once */
};

/* Parses expr. Returns a new schedule (free with cron_free()) or NULL with a message such as
 * `bad cron expression "61 * * * *": minute 61 out of range 0-59` in err (errlen bytes). */
struct cron *cron_parse(const char *expr, char *err, size_t errlen);
/* Frees a schedule; NULL is ignored. */
void cron_free(struct cron *c);

/* Sets the single fire time of an @once schedule (no effect on other kinds). Until it is set,
 * @once never fires. */
void cron_set_start(struct cron *c, int64_t start_utc_sec);

/* Stores in *next_utc_sec the first fire time strictly after after_utc_sec, evaluating the
 * fields in zone (NULL = UTC). Returns 0, -ENOENT when there is none (@once already fired, or an
 * expression that can never match such as "0 0 30 2 *"; the search spans 400 years, a whole
 * Gregorian cycle) or -ERANGE when after_utc_sec lies beyond about +-34,000 years. */
int cron_next(const struct cron *c, const struct tz *zone, int64_t after_utc_sec,
	      int64_t *next_utc_sec);
/* Stores in *prev_utc_sec the latest fire time at or before at_utc_sec (for data intervals:
 * a run firing at T covers [cron_prev(T - 1), T)). Returns 0, -ENOENT or -ERANGE as cron_next(). */
int cron_prev(const struct cron *c, const struct tz *zone, int64_t at_utc_sec,
	      int64_t *prev_utc_sec);

/* The kind of schedule. */
enum cron_kind cron_kind(const struct cron *c);
/* The period in seconds of an @every schedule, 0 for other kinds. */
int64_t cron_every_period(const struct cron *c);
/* The expression as given to cron_parse() (owned by c). */
const char *cron_expr(const struct cron *c);

/* The schedule in words, as Airflow's timetable_description: "At 03:00", "Every 15 minutes",
 * "At 00:00, only on Monday"; NULL (no schedule) is "Never, external triggers only". Always a
 * new string (the expression itself when it does not parse). */
char *cron_describe(const char *schedule);

#endif
