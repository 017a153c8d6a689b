#include "orchestrator/variables.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "orchestrator/secrets.h"

bool vars_valid_key(const char *key)
{
	return valid_id(key);
}

/* $SLUICE_VAR_<KEY>, or NULL. */
static const char *from_env(const char *key)
{
	char name[ID_MAX + 16];
	size_t n = strlen(key);
	if (n > ID_MAX)
		return NULL;
	memcpy(name, "SLUICE_VAR_", 11);
	for (size_t i = 0; i <= n; i++)
		name[11 + i] = (char)toupper((unsigned char)key[i]);
	return getenv(name);
}

int vars_get(struct store *st, const char *home, const char *key, struct var_row *out, char **err)
{
	int rc = store_var_get(st, key, out);
	if (rc == -ENOENT) {
		*err = xasprintf("Variable %s does not exist", key);
		return rc;
	}
	if (rc < 0) {
		*err = xstrdup("cannot read the variable");
		return rc;
	}
	if (out->is_encrypted) {
		char *plain = secrets_unseal(home, out->val, err);
		if (!plain) {
			var_row_free(out);
			return -EBADMSG;
		}
		free(out->val);
		out->val = plain;
	}
	return 0;
}

int vars_value(struct store *st, const char *home, const char *key, char **value, char **err)
{
	const char *env = from_env(key);
	if (env) {
		*value = xstrdup(env);
		return 0;
	}
	struct var_row v;
	int rc = vars_get(st, home, key, &v, err);
	if (rc < 0)
		return rc;
	*value = v.val;
	v.val = NULL;
	var_row_free(&v);
	return 0;
}

int vars_set(struct store *w, const char *home, const char *key, const char *value, const char *description,
	     bool create, char **err)
{
	if (!vars_valid_key(key)) {
		*err = xasprintf("a variable key is 1 to %d characters of letters, digits, '_', '.' and '-'", ID_MAX);
		return -EINVAL;
	}
	/* An empty description clears it. */
	struct var_row v = {.key = (char *)key, .val = (char *)value,
			    .description = description && *description ? (char *)description : NULL};
	struct var_row old = {0};
	char *sealed = NULL;
	if (!description && store_var_get(w, key, &old) == 0)
		v.description = old.description;
	if (secrets_name_is_sensitive(key)) {
		if (!(sealed = secrets_seal(home, value, err))) {
			var_row_free(&old);
			return -ENOKEY;
		}
		v.val = sealed;
		v.is_encrypted = true;
	}
	int rc = store_var_put(w, &v, create);
	if (rc == -EEXIST)
		*err = xasprintf("The Variable %s already exists", key);
	else if (rc < 0)
		*err = xstrdup("cannot write the variable");
	free(sealed);
	var_row_free(&old);
	return rc;
}

int vars_delete(struct store *w, const char *key, char **err)
{
	int rc = store_var_delete(w, key);
	if (rc == -ENOENT)
		*err = xasprintf("Variable %s does not exist", key);
	else if (rc < 0)
		*err = xstrdup("cannot delete the variable");
	return rc;
}
