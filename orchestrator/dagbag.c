#include "orchestrator/dagbag.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/strindex.h"
#include "orchestrator/dag_probe.h"
#include "orchestrator/store.h"

#define DAG_FILE_MAX (8u << 20)

static char *absolute(const char *p)
{
	char buf[PATH_MAX];
	if (realpath(p, buf))
		return xstrdup(buf);
	if (p[0] == '/' || !getcwd(buf, sizeof(buf)))
		return xstrdup(p);
	return xasprintf("%s/%s", buf, p);
}

void dagbag_init(struct dagbag *bag, const char *dir, const struct dag_lua_limits *limits)
{
	memset(bag, 0, sizeof(*bag));
	bag->dir = dir ? absolute(dir) : NULL;
	if (limits)
		bag->limits = *limits;
	else
		bag->limits = (struct dag_lua_limits){DAG_LUA_DEFAULT_MEMORY, DAG_LUA_DEFAULT_INSTRUCTIONS,
						      DAG_LUA_DEFAULT_WALL};
}

void dagbag_use_probe(struct dagbag *bag, const char *exe)
{
	dag_probe_free(bag->probe);
	bag->probe = dag_probe_new(exe);
}

static void drop_dags(struct dagbag_file *f)
{
	for (size_t i = 0; i < f->ndags; i++)
		dag_unref(f->dags[i]);
	free(f->dags);
	f->dags = NULL;
	f->ndags = 0;
}

static void drop_shadowed(struct dagbag_file *f)
{
	for (size_t i = 0; i < f->nshadowed; i++)
		dag_unref(f->shadowed[i]);
	free(f->shadowed);
	f->shadowed = NULL;
	f->nshadowed = 0;
}

static void file_free(struct dagbag_file *f)
{
	drop_dags(f);
	drop_shadowed(f);
	free(f->path);
	free(f->display);
	free(f->source);
	free(f->error);
}

void dagbag_free(struct dagbag *bag)
{
	for (size_t i = 0; i < bag->nfiles; i++)
		file_free(&bag->files[i]);
	free(bag->files);
	strindex_free(&bag->path_ix);
	free(bag->order);
	free(bag->dir);
	free(bag->pending);
	dag_probe_free(bag->probe);
	memset(bag, 0, sizeof(*bag));
}

static struct dagbag_file *find_file(struct dagbag *bag, const char *path)
{
	size_t i;
	return strindex_get(&bag->path_ix, path, &i) ? &bag->files[i] : NULL;
}

static void set_file_error(struct dagbag_file *f, char *msg, int line)
{
	if (f->error && msg && !strcmp(f->error, msg)) {
		free(msg);
		return;
	}
	free(f->error);
	f->error = msg;
	f->error_line = line;
	f->changed = true;
}

/* Loads f's current source in this process. */
static void parse_here(struct dagbag *bag, struct dagbag_file *f)
{
	char *lib = bag->dir ? xasprintf("%s/lib", bag->dir) : NULL;
	struct dag_load ld;
	if (dag_lua_load(f->path, f->display, f->source, f->source_len, lib, &bag->limits, &ld) < 0) {
		set_file_error(f, ld.error, ld.error_line);
		ld.error = NULL;
	} else {
		drop_dags(f);
		drop_shadowed(f);
		f->dags = ld.dags;
		f->ndags = ld.ndags;
		ld.dags = NULL;
		ld.ndags = 0;
		free(f->error);
		f->error = NULL;
		f->changed = true;
	}
	dag_load_clear(&ld);
	free(lib);
}

/* Re-reads f; when its content changed since the last load, loads it now or, with a probe,
 * queues it for load_pending(). */
static void load_file(struct dagbag *bag, struct dagbag_file *f, const struct stat *st)
{
	char *content = NULL;
	size_t len = 0;
	char hash[65];
	int rc = read_file(f->path, DAG_FILE_MAX, &content, &len);

	f->size = st->st_size;
	f->mtime_ns = (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
	if (rc < 0) {
		set_file_error(f, xasprintf("%s: cannot read the file: %s", f->display,
					    rc == -EFBIG ? "larger than 8 MiB" : strerror(-rc)), 0);
		return;
	}
	sha256_hex(content, len, hash);
	if (!strcmp(hash, f->hash)) {
		free(content);
		return;
	}
	memcpy(f->hash, hash, sizeof(hash));
	free(f->source);
	f->source = content;
	f->source_len = len;
	if (!bag->probe) {
		parse_here(bag, f);
		return;
	}
	if (bag->npending == bag->cap_pending) {
		bag->cap_pending = bag->cap_pending ? 2 * bag->cap_pending : 16;
		bag->pending = xrealloc(bag->pending, bag->cap_pending * sizeof(*bag->pending));
	}
	bag->pending[bag->npending++] = (size_t)(f - bag->files);
}

/* Loads the queued files: each goes to the probe first and is loaded here only when the probe
 * loaded it. Up to PROBE_WINDOW files (and PROBE_WINDOW_BYTES) are in the probe at once, so the
 * probe loads the next files while this process loads the ones it has answered for: on two
 * cores the probe costs little more than the time of the larger half. */
#define PROBE_WINDOW 16
#define PROBE_WINDOW_BYTES (128u << 10)

static void load_pending(struct dagbag *bag)
{
	if (!bag->npending)
		return; /* the common rescan: nothing changed */
	char *lib = bag->dir ? xasprintf("%s/lib", bag->dir) : NULL;
	size_t sent = 0, done = 0, inflight_bytes = 0, n = bag->npending;
	bool probe_ok = true, hold = false; /* hold: a send failed, take the answers first */
	int retries = 0;
	usec_t ready = mono_usec(); /* since when the probe works on the oldest file it has */
	while (done < n) {
		while (probe_ok && !hold && sent < n && sent - done < PROBE_WINDOW &&
		       (sent == done || inflight_bytes + bag->files[bag->pending[sent]].source_len <= PROBE_WINDOW_BYTES)) {
			struct dagbag_file *f = &bag->files[bag->pending[sent]];
			char *err = NULL;
			if (sent == done)
				ready = mono_usec();
			int rc = dag_probe_send(bag->probe, f->path, f->display, f->source, f->source_len, lib,
						&bag->limits, ready, &err);
			if (rc == -ENOSYS) {
				free(err);
				probe_ok = false; /* no probe: the rest loads here, as without one */
				break;
			}
			if (rc < 0 && sent == done) {
				/* Nothing in the child and still no taker: it died idle. A new one, once. */
				dag_probe_stop(bag->probe);
				if (retries++ < 1) {
					free(err);
					continue;
				}
				set_file_error(f, err, 0);
				done++;
				sent = done;
				continue;
			}
			free(err);
			if (rc < 0) {
				hold = true; /* busy with the oldest (or gone): its answer says which */
				break;
			}
			retries = 0;
			inflight_bytes += f->source_len;
			sent++;
		}
		if (done == n)
			break;
		struct dagbag_file *f = &bag->files[bag->pending[done]];
		if (!probe_ok && sent == done) {
			parse_here(bag, f);
			done++;
			sent = done;
			continue;
		}
		char *err = NULL;
		int line = 0;
		bool lost_rest = false;
		int rc = dag_probe_recv(bag->probe, f->display, &bag->limits, ready, &err, &line, &lost_rest);
		inflight_bytes -= f->source_len;
		done++;
		ready = mono_usec();
		if (rc == -EINVAL) {
			set_file_error(f, err, line);
		} else {
			free(err);
			parse_here(bag, f); /* 0: it loads; -ENOSYS: the probe failed, load it as without one */
		}
		if (lost_rest) {
			/* The child was stopped or lost: what it still had goes to the next one. */
			sent = done;
			inflight_bytes = 0;
			hold = false;
		}
	}
	bag->npending = 0;
	free(lib);
}

static struct dagbag_file *add_entry(struct dagbag *bag, const char *path, const char *display)
{
	bag->files = xrealloc(bag->files, (bag->nfiles + 1) * sizeof(*bag->files));
	struct dagbag_file *f = &bag->files[bag->nfiles++];
	memset(f, 0, sizeof(*f));
	f->path = xstrdup(path);
	f->display = xstrdup(display);
	strindex_put(&bag->path_ix, f->path, bag->nfiles - 1);
	bag->order_stale = true;
	return f;
}

static void visit(struct dagbag *bag, const char *path, const char *display, const struct stat *st)
{
	struct dagbag_file *f = find_file(bag, path);
	if (!f)
		f = add_entry(bag, path, display);
	f->seen = true;
	long long mt = (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
	if (f->hash[0] && f->size == st->st_size && f->mtime_ns == mt)
		return;
	load_file(bag, f, st);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Walks dir (relative part rel) in name order; skips lib/ at the top, hidden entries and
 * anything that is not a regular *.lua file or a folder. */
static int scan(struct dagbag *bag, const char *dir, const char *rel, int depth)
{
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	char **names = NULL;
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		names = xrealloc(names, (n + 1) * sizeof(char *));
		names[n++] = xstrdup(e->d_name);
	}
	closedir(d);
	if (n > 1)
		qsort(names, n, sizeof(char *), cmp_names);
	for (size_t i = 0; i < n; i++) {
		char *path = xasprintf("%s/%s", dir, names[i]);
		char *disp = rel[0] ? xasprintf("%s/%s", rel, names[i]) : xstrdup(names[i]);
		struct stat st;
		if (stat(path, &st) == 0) {
			size_t l = strlen(names[i]);
			if (S_ISDIR(st.st_mode)) {
				if (!(depth == 0 && !strcmp(names[i], "lib")) && depth < 16)
					scan(bag, path, disp, depth + 1);
			} else if (S_ISREG(st.st_mode) && l > 4 && !strcmp(names[i] + l - 4, ".lua")) {
				visit(bag, path, disp, &st);
			}
		}
		free(path);
		free(disp);
		free(names[i]);
	}
	free(names);
	return 0;
}

/* The first of dags[0..n) whose id an earlier file serves (ids: id -> file index, the served DAGs
 * of the files before this one): the file in *g, the DAG's indexes in *k (dags) and *m (g's). */
static bool earlier_with(struct dagbag *bag, const struct strindex *ids, struct dag **dags, size_t n,
			 struct dagbag_file **g, size_t *k, size_t *m)
{
	size_t j;
	for (*k = 0; *k < n; (*k)++) {
		if (!strindex_get(ids, dags[*k]->dag_id, &j))
			continue;
		*g = &bag->files[j];
		for (*m = 0; *m < (*g)->ndags && strcmp((*g)->dags[*m]->dag_id, dags[*k]->dag_id); (*m)++)
			;
		return true;
	}
	return false;
}

static int cmp_file_paths(const void *a, const void *b, void *arg)
{
	const struct dagbag_file *files = arg;
	return strcmp(files[*(const size_t *)a].path, files[*(const size_t *)b].path);
}

/* Gives an import error to every later file that reuses a DAG id of an earlier file. Its DAGs
 * are kept aside (not re-parsed every refresh): once the earlier file no longer defines the id,
 * they come back. One pass in path order with an index of the ids served so far: a rescan of a
 * folder of N files costs O(N), not O(N^2) comparisons. */
static void check_duplicates(struct dagbag *bag)
{
	/* Path order, not the order the files were found in: which file keeps a contested id must
	 * not depend on which came first, or a restart (or `sluice dags check`) would decide
	 * otherwise than the running daemon did. */
	if (bag->order_stale) {
		bag->order = xrealloc(bag->order, (bag->nfiles + 1) * sizeof(*bag->order));
		for (size_t i = 0; i < bag->nfiles; i++)
			bag->order[i] = i;
		qsort_r(bag->order, bag->nfiles, sizeof(*bag->order), cmp_file_paths, bag->files);
		bag->order_stale = false;
	}
	struct strindex ids = {0};
	for (size_t o = 0; o < bag->nfiles; o++) {
		size_t i = bag->order[o];
		struct dagbag_file *f = &bag->files[i], *g;
		size_t k, m;
		if (f->nshadowed && !earlier_with(bag, &ids, f->shadowed, f->nshadowed, &g, &k, &m)) {
			/* The conflict is gone: the file's DAGs are served again. */
			drop_dags(f);
			f->dags = f->shadowed;
			f->ndags = f->nshadowed;
			f->shadowed = NULL;
			f->nshadowed = 0;
			free(f->error);
			f->error = NULL;
			f->changed = true;
		} else if (earlier_with(bag, &ids, f->dags, f->ndags, &g, &k, &m)) {
			set_file_error(f,
				       xasprintf("%s:%d: DAG id '%s' is already defined in %s:%d", f->display, f->dags[k]->line,
						 f->dags[k]->dag_id, g->display, g->dags[m]->line),
				       f->dags[k]->line);
			drop_shadowed(f);
			f->shadowed = f->dags;
			f->nshadowed = f->ndags;
			f->dags = NULL;
			f->ndags = 0;
		}
		for (size_t d = 0; d < f->ndags; d++)
			strindex_put(&ids, f->dags[d]->dag_id, i);
	}
	strindex_free(&ids);
}

int dagbag_refresh(struct dagbag *bag, char **err)
{
	if (!bag->dir)
		return 0;
	for (size_t i = 0; i < bag->nfiles; i++)
		bag->files[i].seen = false;
	int rc = scan(bag, bag->dir, "", 0);
	load_pending(bag);
	if (rc < 0) {
		*err = xasprintf("cannot read the DAG folder %s: %s", bag->dir, strerror(-rc));
		return rc;
	}
	size_t out = 0;
	for (size_t i = 0; i < bag->nfiles; i++) {
		if (bag->files[i].seen) {
			bag->files[out++] = bag->files[i];
		} else {
			file_free(&bag->files[i]);
			bag->any_removed = true;
		}
	}
	if (out < bag->nfiles) {
		bag->nfiles = out;
		strindex_clear(&bag->path_ix);
		for (size_t i = 0; i < bag->nfiles; i++)
			strindex_put(&bag->path_ix, bag->files[i].path, i);
		bag->order_stale = true;
	}
	check_duplicates(bag);
	return 0;
}

int dagbag_add_file(struct dagbag *bag, const char *path, char **err)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		*err = xasprintf("%s: %s", path, strerror(errno));
		return -errno;
	}
	char *abs = absolute(path);
	struct dagbag_file *f = find_file(bag, abs);
	if (!f)
		f = add_entry(bag, abs, path);
	free(abs);
	f->seen = true;
	load_file(bag, f, &st);
	load_pending(bag);
	check_duplicates(bag);
	return 0;
}

struct dag *dagbag_find(const struct dagbag *bag, const char *dag_id)
{
	for (size_t i = 0; i < bag->nfiles; i++)
		for (size_t k = 0; k < bag->files[i].ndags; k++)
			if (!strcmp(bag->files[i].dags[k]->dag_id, dag_id))
				return bag->files[i].dags[k];
	return NULL;
}

size_t dagbag_error_count(const struct dagbag *bag)
{
	size_t n = 0;
	for (size_t i = 0; i < bag->nfiles; i++)
		n += bag->files[i].error != NULL;
	return n;
}

struct dag *dagbag_load_stored(struct store *st, const char *dag_id, const char *version,
			       const char *lib_dir, const struct dag_lua_limits *limits)
{
	char *source = NULL, *fileloc = NULL;
	struct dag *found = NULL;
	struct dag_load ld = {0};
	if (!version || store_dag_version_source(st, dag_id, version, &source, &fileloc) < 0)
		return NULL;
	const char *base = strrchr(fileloc, '/') ? strrchr(fileloc, '/') + 1 : fileloc;
	if (dag_lua_load(fileloc, base, source, strlen(source), lib_dir, limits, &ld) == 0)
		for (size_t i = 0; i < ld.ndags && !found; i++)
			if (!strcmp(ld.dags[i]->dag_id, dag_id))
				found = dag_ref(ld.dags[i]);
	dag_load_clear(&ld);
	free(source);
	free(fileloc);
	return found;
}

const char *dagbag_source_of(const struct dagbag *bag, const struct dag *d)
{
	for (size_t i = 0; i < bag->nfiles; i++)
		for (size_t k = 0; k < bag->files[i].ndags; k++)
			if (bag->files[i].dags[k] == d)
				return bag->files[i].source;
	return NULL;
}

int dagbag_sync_dag(struct store *w, const struct dagbag *bag, const struct dag *d)
{
	const char *source = dagbag_source_of(bag, d);
	return source ? store_dag_sync(w, d, source, now_usec()) : -ENOENT;
}
