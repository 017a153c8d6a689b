/* Files compiled into the binary by scripts/embed.py: the SQL migrations and the DSL prelude. */
#ifndef SLUICE_EMBEDDED_H
#define SLUICE_EMBEDDED_H

#include <stddef.h>

struct embedded_file {
	const char *name; /* base name, e.g. "0001_init.sql" */
	const char *data; /* NUL-terminated contents */
	size_t len;
};

/* Sorted by name, terminated by an entry whose name is NULL. */
extern const struct embedded_file embedded_files[];

/* Returns the file called name, or NULL. */
const struct embedded_file *embedded_find(const char *name);

#endif
