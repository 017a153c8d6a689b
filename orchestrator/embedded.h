/* The orchestrator's embedded files: the SQL migrations (NNNN_name.sql) and the DSL prelude. */
#ifndef SLUICE_ORCHESTRATOR_EMBEDDED_H
#define SLUICE_ORCHESTRATOR_EMBEDDED_H

#include "base/embedded.h"

/* Sorted by name, terminated by an entry whose name is NULL (generated at build time). */
extern const struct embedded_file orchestrator_files[];

#endif
