/* A schedule in words, as Airflow's timetable_description (cron-descriptor with a 24-hour
 * clock): "At 03:00", "Every 15 minutes", "At 00:00, only on Monday". */
#include "orchestrator/cron.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

static const char *const month_names[] = {"", "January", "February", "March", "April", "May", "June", "July",
					  "August", "September", "October", "November", "December"};
static const char *const day_names[] = {"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
					"Saturday", "Sunday"};
static const char *const short_months[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP",
					   "OCT", "NOV", "DEC", NULL};
static const char *const short_days[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL};

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

/* A field value as a number (a name for months and days), or -1. */
static int value_of(const char *s, const char *const *names)
{
	if (all_digits(s))
		return atoi(s);
	for (int i = 0; names && names[i]; i++)
		if (!strcasecmp(s, names[i]))
			return names == short_months ? i + 1 : i;
	return -1;
}

/* Joins items as "a, b and c". */
static void join(struct strbuf *out, char **items, int n)
{
	for (int i = 0; i < n; i++) {
		if (i > 0)
			sb_puts(out, i == n - 1 ? " and " : ", ");
		sb_puts(out, items[i]);
	}
}

/* Splits a comma list; returns how many (at most max). Each item is malloc'd. */
static int split(const char *field, char **items, int max)
{
	int n = 0;
	const char *p = field;
	while (*p && n < max) {
		size_t k = strcspn(p, ",");
		items[n++] = xstrndup(p, k);
		p += k;
		if (*p == ',')
			p++;
	}
	return n;
}

static void free_items(char **items, int n)
{
	for (int i = 0; i < n; i++)
		free(items[i]);
}

/* Day of month, month or day of week as a clause (empty for "*"). */
static void describe_day_field(struct strbuf *out, const char *field, int kind)
{
	const char *const *names = kind == 0 ? NULL : kind == 1 ? short_months : short_days;
	const char *const *words = kind == 1 ? month_names : day_names;
	if (!strcmp(field, "*"))
		return;
	if (!strncmp(field, "*/", 2)) {
		sb_printf(out, kind == 0 ? ", every %s days" : kind == 1 ? ", every %s months" : ", every %s days of the week",
			  field + 2);
		return;
	}
	char *items[32];
	int n = split(field, items, 32);
	char *text[32];
	bool range = false;
	for (int i = 0; i < n; i++) {
		char *dash = strchr(items[i], '-'), *slash = strchr(items[i], '/');
		if (slash)
			*slash = '\0';
		if (dash) {
			*dash = '\0';
			int a = value_of(items[i], names), b = value_of(dash + 1, names);
			range = n == 1;
			if (kind == 0)
				text[i] = xasprintf(range ? "between day %d and %d of the month" : "%d through %d", a, b);
			else if (a >= 0 && b >= 0 && a < (kind == 1 ? 13 : 8) && b < (kind == 1 ? 13 : 8))
				text[i] = xasprintf("%s through %s", words[a], words[b]);
			else
				text[i] = xasprintf("%s-%s", items[i], dash + 1);
		} else {
			int v = value_of(items[i], names);
			text[i] = kind == 0 || v < 0 || v >= (kind == 1 ? 13 : 8) ? xstrdup(items[i]) : xstrdup(words[v]);
		}
	}
	if (kind == 0 && !range) {
		sb_puts(out, ", on day ");
		join(out, text, n);
		sb_puts(out, " of the month");
	} else if (range) {
		sb_puts(out, ", ");
		join(out, text, n);
	} else {
		sb_puts(out, kind == 1 ? ", only in " : ", only on ");
		join(out, text, n);
	}
	free_items(text, n);
	free_items(items, n);
}

/* Minute and hour. */
static void describe_time(struct strbuf *out, const char *min, const char *hour)
{
	bool min_one = all_digits(min), hour_star = !strcmp(hour, "*");
	if (min_one && (all_digits(hour) || (strchr(hour, ',') && !strpbrk(hour, "-/*")))) {
		char *items[24], *text[24];
		int n = split(hour, items, 24);
		for (int i = 0; i < n; i++)
			text[i] = xasprintf("%02d:%02d", atoi(items[i]), atoi(min));
		sb_puts(out, "At ");
		join(out, text, n);
		free_items(text, n);
		free_items(items, n);
	} else if (!strcmp(min, "*") && hour_star) {
		sb_puts(out, "Every minute");
	} else if (!strncmp(min, "*/", 2) && hour_star) {
		sb_printf(out, "Every %s minutes", min + 2);
	} else if (min_one && atoi(min) == 0 && hour_star) {
		sb_puts(out, "Every hour");
	} else {
		if (min_one)
			sb_printf(out, "At %d minutes past the hour", atoi(min));
		else if (!strcmp(min, "*"))
			sb_puts(out, "Every minute");
		else if (!strncmp(min, "*/", 2))
			sb_printf(out, "Every %s minutes", min + 2);
		else
			sb_printf(out, "At minutes %s past the hour", min);
		if (!strncmp(hour, "*/", 2))
			sb_printf(out, ", every %s hours", hour + 2);
		else if (strchr(hour, '-') && !strchr(hour, ',') && !strchr(hour, '/'))
			sb_printf(out, ", between %02d:00 and %02d:59", atoi(hour), atoi(strchr(hour, '-') + 1));
		else if (!hour_star)
			sb_printf(out, ", at hours %s", hour);
	}
}

static const struct {
	const char *preset, *fields;
} presets[] = {
	{"@hourly", "0 * * * *"}, {"@daily", "0 0 * * *"}, {"@midnight", "0 0 * * *"}, {"@weekly", "0 0 * * 0"},
	{"@monthly", "0 0 1 * *"}, {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"},
};

char *cron_describe(const char *schedule)
{
	if (!schedule)
		return xstrdup("Never, external triggers only");
	if (!strcmp(schedule, "@once"))
		return xstrdup("Once, as soon as possible");
	char err[128];
	struct cron *c = cron_parse(schedule, err, sizeof(err));
	if (!c)
		return xstrdup(schedule);
	struct strbuf out = {0};
	if (cron_kind(c) == CRON_EVERY) {
		static const struct {
			long long secs;
			const char *one, *many;
		} units[] = {{86400, "day", "days"}, {3600, "hour", "hours"}, {60, "minute", "minutes"}, {1, "second", "seconds"}};
		long long p = (long long)cron_every_period(c);
		size_t u = 0;
		while (p % units[u].secs)
			u++;
		long long n = p / units[u].secs;
		if (n == 1)
			sb_printf(&out, "Every %s", units[u].one);
		else
			sb_printf(&out, "Every %lld %s", n, units[u].many);
		cron_free(c);
		return sb_steal(&out);
	}
	cron_free(c);
	const char *text = schedule;
	for (size_t i = 0; i < sizeof(presets) / sizeof(*presets); i++)
		if (!strcasecmp(schedule, presets[i].preset))
			text = presets[i].fields;
	char f[5][64];
	if (sscanf(text, "%63s %63s %63s %63s %63s", f[0], f[1], f[2], f[3], f[4]) != 5)
		return xstrdup(schedule);
	describe_time(&out, f[0], f[1]);
	describe_day_field(&out, f[2], 0);
	describe_day_field(&out, f[4], 2);
	describe_day_field(&out, f[3], 1);
	return sb_steal(&out);
}
