/* Use cases on Variables (Airflow's), the same for the CLI, the REST API and templates
 * ({{ var.value.KEY }}, {{ var.json.KEY.path }}). A variable whose key looks secret
 * (secrets_name_is_sensitive) is sealed at rest. The environment overrides the store:
 * SLUICE_VAR_<KEY> (the key in upper case), as Airflow's AIRFLOW_VAR_<KEY>. */
#ifndef SLUICE_VARIABLES_H
#define SLUICE_VARIABLES_H

#include <stdbool.h>

#include "orchestrator/store.h"

/* A variable key: 1 to 250 characters of [A-Za-z0-9_.-]. */
bool vars_valid_key(const char *key);

/* The value templates see: $SLUICE_VAR_<KEY> when set, else the stored value (opened when
 * sealed). Returns 0 with *value (new string), -ENOENT, or another error with *err. */
int vars_value(struct store *st, const char *home, const char *key, char **value, char **err);

/* The stored variable with its value opened (*out; var_row_free it). -ENOENT when missing. */
int vars_get(struct store *st, const char *home, const char *key, struct var_row *out, char **err);

/* Creates (create: -EEXIST when the key exists) or sets a variable; description NULL keeps
 * the one it has, "" clears it. Seals the value when the key looks secret. */
int vars_set(struct store *w, const char *home, const char *key, const char *value, const char *description,
	     bool create, char **err);

/* -ENOENT when missing. */
int vars_delete(struct store *w, const char *key, char **err);

#endif
