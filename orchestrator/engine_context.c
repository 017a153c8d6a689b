/* The template context of a try ({{ ds }}, outputs.X.Y, params, conf). */
#include "orchestrator/engine_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/events.h"
#include "base/json.h"
#include "base/log.h"
#include "orchestrator/connections.h"
#include "orchestrator/cron.h"
#include "orchestrator/runs.h"
#include "orchestrator/secrets.h"
#include "orchestrator/template.h"
#include "orchestrator/tz.h"
#include "orchestrator/variables.h"

/* Templating context --------------------------------------------------------------------------- */

void eng_json_scalar(const cJSON *v, struct strbuf *out)
{
	if (cJSON_IsString(v)) {
		sb_puts(out, v->valuestring);
	} else if (cJSON_IsNumber(v)) {
		double d = v->valuedouble;
		if (d == (double)(long long)d && d > -1e15 && d < 1e15)
			sb_printf(out, "%lld", (long long)d);
		else
			sb_printf(out, "%.17g", d);
	} else if (cJSON_IsBool(v)) {
		sb_puts(out, cJSON_IsTrue(v) ? "true" : "false");
	} else if (cJSON_IsNull(v)) {
		sb_puts(out, "");
	} else {
		char *s = cJSON_PrintUnformatted(v);
		sb_puts(out, s);
		free(s);
	}
}


static const char *ti_output(const struct eti *ti, const char *key)
{
	for (size_t i = 0; i < ti->noutputs; i++)
		if (!strcmp(ti->outputs[i].key, key))
			return ti->outputs[i].value;
	return NULL;
}

/* outputs.TASK.KEY: the value TASK wrote; for a mapped TASK, the values of all its instances
 * in map_index order joined by commas. */
static int lookup_output(const struct eti *ti, const char *rest, struct strbuf *out, char **err)
{
	const struct erun *r = ti->run;
	const char *dot = strrchr(rest, '.');
	if (!dot || dot == rest || !dot[1]) {
		*err = xasprintf("'outputs.%s' must be written outputs.TASK.KEY", rest);
		return -ENOENT;
	}
	char *task = xstrndup(rest, (size_t)(dot - rest));
	const char *key = dot + 1;
	int idx = dag_task_index(r->dag, task);
	int rc = 0;
	if (idx < 0) {
		*err = xasprintf("unknown task '%s' in 'outputs.%s'", task, rest);
		rc = -ENOENT;
		goto out;
	}
	const struct etask *et = &r->tasks[idx];
	for (size_t k = 0; k < et->ninst; k++) {
		const char *v = ti_output(et->inst[k], key);
		if (!v) {
			*err = xasprintf("task '%s' has no output '%s' (it is %s; outputs are the key=value "
					 "lines a successful task writes to $SLUICE_OUTPUT)",
					 task, key, ti_state_name(et->inst[k]->state));
			rc = -ENOENT;
			goto out;
		}
		if (k)
			sb_putc(out, ',');
		sb_puts(out, v);
	}
out:
	free(task);
	return rc;
}

static void put_date(struct strbuf *out, usec_t t, bool nodash)
{
	char iso[ISO_BUFSZ];
	format_iso8601(t, iso, sizeof(iso));
	if (nodash)
		sb_printf(out, "%.4s%.2s%.2s", iso, iso + 5, iso + 8);
	else
		sb_add(out, iso, 10);
}

void eng_note_secret(struct eti *ti, const char *value)
{
	if (!value || !*value)
		return;
	for (size_t i = 0; i < ti->nsecrets; i++)
		if (!strcmp(ti->secrets[i], value))
			return;
	ti->secrets = xrealloc(ti->secrets, (ti->nsecrets + 1) * sizeof(char *));
	ti->secrets[ti->nsecrets++] = xstrdup(value);
}

void eng_forget_secrets(struct eti *ti)
{
	for (size_t i = 0; i < ti->nsecrets; i++) {
		explicit_bzero(ti->secrets[i], strlen(ti->secrets[i]));
		free(ti->secrets[i]);
	}
	free(ti->secrets);
	ti->secrets = NULL;
	ti->nsecrets = 0;
}

/* {{ var.value.KEY }} and {{ var.json.KEY.path }}; the value of a secret-looking key is noted to
 * be masked in the try's log. */
static int lookup_var(struct eti *ti, struct engine *e, const char *name, struct strbuf *out, char **err)
{
	bool json = !strncmp(name, "json.", 5);
	if (!json && strncmp(name, "value.", 6)) {
		*err = xasprintf("use var.value.KEY or var.json.KEY.path, not var.%s", name);
		return -ENOENT;
	}
	const char *rest = name + (json ? 5 : 6);
	char *key = xstrndup(rest, json ? strcspn(rest, ".") : strlen(rest)), *value = NULL, *verr = NULL;
	int rc = vars_value(e->st, e->home, key, &value, &verr);
	if (rc == -ENOENT) {
		*err = xasprintf("unknown variable '%s' (set it with `sluice variables set %s VALUE` or SLUICE_VAR_...)",
				 key, key);
	} else if (rc < 0) {
		*err = xasprintf("variable '%s': %s", key, verr);
	} else if (!json) {
		sb_puts(out, value);
		if (secrets_name_is_sensitive(key))
			eng_note_secret(ti, value);
	} else {
		cJSON *doc = cJSON_Parse(value);
		const char *path = rest + strlen(key);
		const cJSON *v = !doc ? NULL : *path == '.' ? json_path(doc, path + 1) : doc;
		if (!doc)
			*err = xasprintf("variable '%s' is not JSON", key);
		else if (!v)
			*err = xasprintf("variable '%s' has no '%s'", key, path + 1);
		else
			eng_json_scalar(v, out);
		if (v && (secrets_name_is_sensitive(key) || secrets_name_is_sensitive(path)))
			eng_note_secret(ti, sb_str(out));
		rc = v ? 0 : -ENOENT;
		cJSON_Delete(doc);
	}
	free(verr);
	free(value);
	free(key);
	return rc;
}

/* {{ conn.ID.host }}, .port, .login, .password, .schema, .extra_dejson.KEY; the password and
 * secret-looking extras are noted to be masked in the try's log. */
static int lookup_conn(struct eti *ti, struct engine *e, const char *name, struct strbuf *out, char **err)
{
	size_t n = strcspn(name, ".");
	if (!name[n]) {
		*err = xasprintf("use conn.%s.host (or .port, .login, .password, .schema, .extra_dejson.KEY)", name);
		return -ENOENT;
	}
	char *id = xstrndup(name, n), *value = NULL, *cerr = NULL;
	struct conn_row c = {0};
	int rc = conns_get(e->st, e->home, id, &c, &cerr);
	if (rc == -ENOENT)
		*err = xasprintf("unknown connection '%s' (add it with `sluice connections add %s --uri ...`)", id, id);
	else if (rc < 0)
		*err = xasprintf("connection '%s': %s", id, cerr);
	else if ((rc = conn_field(&c, name + n + 1, &value, err)) == 0)
		sb_puts(out, value);
	if (rc == 0 && (secrets_name_is_sensitive(name + n + 1) || !strcmp(name + n + 1, "extra")))
		eng_note_secret(ti, value);
	if (rc == 0 && c.password)
		eng_note_secret(ti, c.password); /* whatever the field, the password is never printed */
	conn_row_free(&c);
	free(cerr);
	free(value);
	free(id);
	return rc;
}

int eng_ti_lookup(void *ctx, const char *name, struct strbuf *out, char **err)
{
	const struct eti *ti = ctx;
	const struct erun *r = ti->run;
	char iso[ISO_BUFSZ];

	if (!strcmp(name, "ds")) {
		put_date(out, r->row.logical_date, false);
	} else if (!strcmp(name, "ds_nodash")) {
		put_date(out, r->row.logical_date, true);
	} else if (!strcmp(name, "ts") || !strcmp(name, "logical_date")) {
		format_iso8601(r->row.logical_date, iso, sizeof(iso));
		sb_puts(out, iso);
	} else if (!strcmp(name, "ts_nodash")) {
		format_iso8601_z(r->row.logical_date, iso, sizeof(iso));
		for (const char *p = iso; *p && *p != 'Z'; p++)
			if (*p != '-' && *p != ':')
				sb_putc(out, *p);
	} else if (!strcmp(name, "data_interval_start")) {
		format_iso8601(r->row.data_interval_start, iso, sizeof(iso));
		sb_puts(out, iso);
	} else if (!strcmp(name, "data_interval_end")) {
		format_iso8601(r->row.data_interval_end, iso, sizeof(iso));
		sb_puts(out, iso);
	} else if (!strcmp(name, "run_id")) {
		sb_puts(out, r->row.run_id);
	} else if (!strcmp(name, "dag_id")) {
		sb_puts(out, r->row.dag_id);
	} else if (!strcmp(name, "task_id")) {
		sb_puts(out, ti->row.task_id);
	} else if (!strcmp(name, "try_number")) {
		sb_printf(out, "%d", ti->row.try_number);
	} else if (!strcmp(name, "kernel")) {
		sb_puts(out, r->e->kernel_path); /* sluice-kernel (docs/kernels.md) */
	} else if (!strcmp(name, "map_index")) {
		sb_printf(out, "%d", ti->row.map_index);
	} else if (!strcmp(name, "item")) {
		if (!ti->item) {
			*err = xstrdup("'item' is only defined in mapped tasks (d:map)");
			return -ENOENT;
		}
		sb_puts(out, ti->item);
	} else if (!strncmp(name, "params.", 7)) {
		/* A trigger's conf overrides the DAG's params of the same name. */
		const cJSON *v = json_path(r->conf, name + 7);
		if (!v)
			v = json_path(r->dag->params, name + 7);
		if (!v) {
			*err = xasprintf("unknown param '%s' (not in the DAG's params nor in the run's conf)", name + 7);
			return -ENOENT;
		}
		eng_json_scalar(v, out);
	} else if (!strncmp(name, "conf.", 5)) {
		const cJSON *v = json_path(r->conf, name + 5);
		if (!v) {
			*err = xasprintf("the run's conf has no '%s'", name + 5);
			return -ENOENT;
		}
		eng_json_scalar(v, out);
	} else if (!strncmp(name, "outputs.", 8)) {
		return lookup_output(ti, name + 8, out, err);
	} else if (!strncmp(name, "var.", 4)) {
		return lookup_var((struct eti *)ti, r->e, name + 4, out, err);
	} else if (!strncmp(name, "conn.", 5)) {
		return lookup_conn((struct eti *)ti, r->e, name + 5, out, err);
	} else {
		return -ENOENT;
	}
	return 0;
}
