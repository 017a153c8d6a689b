/* The web layer's embedded files: sluice's OpenAPI document. */
#ifndef SLUICE_WEB_EMBEDDED_H
#define SLUICE_WEB_EMBEDDED_H

#include "base/embedded.h"

/* Sorted by name, terminated by an entry whose name is NULL (generated at build time). */
extern const struct embedded_file web_files[];

#endif
