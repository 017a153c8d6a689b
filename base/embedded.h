/* Files compiled into the binary by scripts/embed.py. Each layer that embeds files gets its own
 * generated table (orchestrator: SQL migrations and the DSL prelude; web: the OpenAPI document
 * and, later, the UI bundle) and declares it in its own embedded.h. */
#ifndef SLUICE_BASE_EMBEDDED_H
#define SLUICE_BASE_EMBEDDED_H

#include <stddef.h>

struct embedded_file {
	const char *name; /* base name, e.g. "0001_init.sql" */
	const char *data; /* NUL-terminated contents */
	size_t len;
};

/* Returns the file called name in table (sorted by name, terminated by a NULL name), or NULL. */
const struct embedded_file *embedded_find(const struct embedded_file *table, const char *name);

#endif
