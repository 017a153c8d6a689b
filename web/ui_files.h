/* The web UI's bundle (web/ui, built by scripts/build-ui.py at build time) and how it is served:
 * at "/", files by their path, any other path not under /api/ or /assets/ (a route of the
 * app) as index.html. Bundle files have content-hashed names under /assets/ and are cached for a
 * year; index.html is revalidated on each load (ETag). Gzip when the client accepts it. */
#ifndef SLUICE_WEB_UI_FILES_H
#define SLUICE_WEB_UI_FILES_H

#include <stdbool.h>
#include <stddef.h>

struct ui_file {
	const char *path;          /* "/index.html", "/assets/index-3f2a9c.js" */
	const char *type;          /* Content-Type */
	const char *etag;          /* quoted, from the content */
	const char *data;
	size_t len;
	const char *gz;            /* gzip copy, or NULL when it would not be smaller */
	size_t gzlen;
	bool immutable;            /* content-hashed name: cache for good */
};

/* Sorted by path, terminated by an entry whose path is NULL (generated at build time). */
extern const struct ui_file ui_files[];

/* The file a GET of path serves: the file itself, index.html for a path of the app's own routes
 * (any path not under /assets/ or /api/), or NULL (a 404). */
const struct ui_file *ui_file_for(const char *path);

#endif
