/* DAG params with schemas (Airflow's Param): each param of a DAG has a default (or none, then
 * a trigger must give it) and a JSON Schema. The schema is checked when the DAG is read, and a
 * run's conf is validated against it when the run is triggered, so a bad conf is refused with a
 * message that names the param instead of failing a task later.
 *
 * The JSON Schema keywords understood: type (a name or a list: string, integer, number, boolean,
 * object, array, null), enum, const, minimum, maximum, exclusiveMinimum, exclusiveMaximum,
 * multipleOf, minLength, maxLength, pattern (POSIX extended regex, unanchored as JSON Schema's),
 * minItems, maxItems, uniqueItems, items, required, properties; format, title and examples are
 * kept for the UI and not checked. */
#ifndef SLUICE_PARAMS_H
#define SLUICE_PARAMS_H

#include <cjson/cJSON.h>

#include "orchestrator/dag.h"

/* Checks that schema is well formed (known types, numbers where numbers go, a pattern that
 * compiles). Returns 0, or -EINVAL with *err. */
int params_check_schema(const cJSON *schema, char **err);

/* Checks value against schema. name is used in the message: "param 'days': 0 is less than
 * the minimum 1". Returns 0 or -EINVAL with *err. */
int params_check_value(const cJSON *schema, const cJSON *value, const char *name, char **err);

/* Validates the params of d as a run would see them: each param takes its value from conf when
 * conf has it, its default otherwise; a param without a default must be in conf. Returns 0 or
 * -EINVAL with *err naming the param. conf may be NULL. */
int params_validate(const struct dag *d, const cJSON *conf, char **err);

#endif
