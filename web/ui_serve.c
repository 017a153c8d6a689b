/* Which file of the embedded UI bundle a path names (see ui_files.h). */
#include <string.h>

#include "web/ui_files.h"

static const struct ui_file *find(const char *path)
{
	size_t lo = 0, hi = 0;
	while (ui_files[hi].path)
		hi++;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(path, ui_files[mid].path);
		if (c == 0)
			return &ui_files[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

const struct ui_file *ui_file_for(const char *path)
{
	if (!path || path[0] != '/' || !strncmp(path, "/api/", 5) || !strcmp(path, "/api"))
		return NULL;
	if (!strcmp(path, "/"))
		return find("/index.html");
	const struct ui_file *f = find(path);
	if (f)
		return f;
	/* Any other path is a route of the app (/dags/etl/runs/v1.2), which the page resolves; a
	 * missing asset (/assets/old-1234.js) stays a 404, not a page that cannot run as script. */
	return strncmp(path, "/assets/", 8) ? find("/index.html") : NULL;
}
