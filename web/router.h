/* Route lookup: which row of the route tables a request names, and its path parameters. The
 * most specific route wins: at the first segment where two routes differ in kind, the one with a
 * literal there, so that ".../{task_id}/tries" is not taken for ".../{task_id}/{map_index}". No state: safe on any thread. */
#ifndef SLUICE_WEB_ROUTER_H
#define SLUICE_WEB_ROUTER_H

#include <stdbool.h>

#include "web/api.h"

struct route_params {
	int n;
	char *name[API_MAX_PARAMS], *value[API_MAX_PARAMS];  /* owned; router_params_free() */
};

/* Finds the route for method and path among tables (a NULL-terminated list of tables, each ended
 * by a row whose method is NULL) and fills *p with its parameters. Returns NULL when none
 * matches; then *path_known tells whether the path exists with another method (405, not 404). */
const struct route *router_find(const struct route *const *tables, const char *method, const char *path,
				struct route_params *p, bool *path_known);
/* The value of parameter name, or NULL. */
const char *router_param(const struct route_params *p, const char *name);
void router_params_free(struct route_params *p);

#endif
