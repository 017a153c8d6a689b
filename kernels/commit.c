/* The output committer of sluice-kernel, in the manner of Hadoop's FileOutputCommitter v1.
 *
 * A try writes its files into OUTDIR/_temporary/<attempt>/ (attempt = task-NNNNN.HOST.PID.RAND,
 * unique even across hosts sharing the directory), fsyncs them, renames each into OUTDIR, fsyncs
 * OUTDIR, then renames its manifest OUTDIR/_manifest-NNNNN.json into place: the manifest is the
 * commit point. Parts are deterministic, so a duplicated try that renames over them changes
 * nothing, and a killed try leaves only its _temporary/ directory (never a half-written part in
 * OUTDIR). _SUCCESS is written last, once every manifest 0..tasks-1 exists. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "base/util.h"
#include "kernels/kernel.h"

struct kout {
	char *dir;           /* OUTDIR */
	char *attempt;       /* OUTDIR/_temporary/<attempt> */
	char *spill;         /* spill directory */
	char *kind;
	int task, tasks;
	uint32_t split_i, split_n;
	size_t bufsize;
	struct kwriter **files;
	size_t nfiles;
	usec_t started;
};

static char *manifest_path(const char *dir, int task)
{
	return xasprintf("%s/_manifest-%05d.json", dir, task);
}

int kout_missing(const char *dir, int tasks, char **err)
{
	int missing = 0;
	for (int t = 0; t < tasks; t++) {
		char *p = manifest_path(dir, t);
		if (access(p, F_OK)) {
			if (errno != ENOENT) {
				*err = kerrf("%s: %s", p, strerror(errno));
				free(p);
				return -1;
			}
			missing++;
		}
		free(p);
	}
	return missing;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = fsync(fd) ? -errno : 0;
	close(fd);
	return rc;
}

/* Write a small file atomically through the attempt directory (tmp names never collide). */
static int put_atomic(const char *tmpdir, const char *path, const char *data, size_t len)
{
	char *tmp = xasprintf("%s/.put-%ld-%d", tmpdir, (long)getpid(), rand());
	int rc = 0, fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	for (size_t off = 0; off < len && !rc;) {
		ssize_t n = write(fd, data + off, len - off);
		if (n < 0 && errno != EINTR)
			rc = -errno;
		else if (n > 0)
			off += (size_t)n;
	}
	if (!rc && fsync(fd))
		rc = -errno;
	if (close(fd) && !rc)
		rc = -errno;
	if (!rc && rename(tmp, path))
		rc = -errno;
	if (rc)
		unlink(tmp);
out:
	free(tmp);
	return rc;
}

static int maybe_success(const char *dir, const char *tmpdir, int tasks, char **err)
{
	int m = kout_missing(dir, tasks, err);
	if (m != 0)
		return m < 0 ? -1 : 0;
	char *p = xasprintf("%s/_SUCCESS", dir);
	int rc = access(p, F_OK) ? put_atomic(tmpdir, p, "", 0) : 0;
	if (!rc)
		rc = fsync_dir(dir);
	if (rc)
		*err = kerrf("%s: %s", p, strerror(-rc));
	free(p);
	return rc ? -1 : 0;
}

static void host_name(char *buf, size_t n)
{
	if (gethostname(buf, n) || !buf[0])
		snprintf(buf, n, "host");
	buf[n - 1] = 0;
	for (char *s = buf; *s; s++)
		if (*s == '/' || *s == '.')
			*s = '_';
}

/* Remove attempt directories of this task left by dead tries on this host. */
static void sweep_dead(const char *tmproot, int task)
{
	char host[128], prefix[64];
	DIR *d = opendir(tmproot);
	struct dirent *de;
	if (!d)
		return;
	host_name(host, sizeof host);
	snprintf(prefix, sizeof prefix, "task-%05d.", task);
	while ((de = readdir(d)) != NULL) {
		size_t pl = strlen(prefix), hl = strlen(host);
		if (strncmp(de->d_name, prefix, pl) || strncmp(de->d_name + pl, host, hl) || de->d_name[pl + hl] != '.')
			continue;
		long pid = strtol(de->d_name + pl + hl + 1, NULL, 10);
		if (pid <= 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		char *p = xasprintf("%s/%s", tmproot, de->d_name);
		remove_tree(tmproot, p);
		free(p);
	}
	closedir(d);
}

int kout_open(struct kout **out, const struct kcommon *c, const char *kind, char **err)
{
	char host[128];
	*out = NULL;
	if (!c->output) {
		*err = kerrf("--output DIR is required");
		return -1;
	}
	char *tmproot = xasprintf("%s/_temporary", c->output);
	int rc = mkdir_p(tmproot, 0755);
	if (rc) {
		*err = kerrf("cannot create %s: %s", tmproot, strerror(-rc));
		free(tmproot);
		return -1;
	}
	char *mp = manifest_path(c->output, c->task);
	int done = access(mp, F_OK) == 0;
	free(mp);
	if (done) {
		int r = maybe_success(c->output, tmproot, c->tasks, err);
		free(tmproot);
		return r ? -1 : 1;
	}
	sweep_dead(tmproot, c->task);
	struct kout *o = xcalloc(1, sizeof *o);
	host_name(host, sizeof host);
	srand((unsigned)(getpid() ^ (unsigned)mono_usec()));
	o->dir = xstrdup(c->output);
	o->attempt = xasprintf("%s/task-%05d.%s.%ld.%08x", tmproot, c->task, host, (long)getpid(), (unsigned)rand());
	free(tmproot);
	if (mkdir(o->attempt, 0755)) {
		*err = kerrf("cannot create %s: %s", o->attempt, strerror(errno));
		free(o->attempt);
		free(o->dir);
		free(o);
		return -1;
	}
	o->spill = xstrdup(c->tmpdir ? c->tmpdir : o->attempt);
	o->kind = xstrdup(kind);
	o->task = c->task;
	o->tasks = c->tasks;
	o->split_i = c->split_i;
	o->split_n = c->split_n;
	o->bufsize = kbuf_size(c->memory);
	o->started = mono_usec();
	*out = o;
	return 0;
}

const char *kout_tmpdir(const struct kout *o)
{
	return o->spill;
}

struct kwriter *kout_file(struct kout *o, const char *name, char **err)
{
	if (!path_component_ok(name) || name[0] == '_' || name[0] == '.') {
		*err = kerrf("bad output file name '%s'", name);
		return NULL;
	}
	char *tmp = xasprintf("%s/%s", o->attempt, name);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		*err = kerrf("%s: %s", tmp, strerror(errno));
		free(tmp);
		return NULL;
	}
	struct kwriter *w = xcalloc(1, sizeof *w);
	/* Many files (partitions): smaller buffers, so their sum stays a small part of --memory. */
	size_t cap = o->bufsize;
	if (o->nfiles >= 64 && cap > 65536)
		cap = 65536;
	else if (o->nfiles >= 8 && cap > 262144)
		cap = 262144;
	kw_init(w, fd, cap);
	w->tmp = tmp;
	w->name = xstrdup(name);
	w->path = xasprintf("%s/%s", o->dir, name);
	o->files = xrealloc(o->files, (o->nfiles + 1) * sizeof *o->files);
	o->files[o->nfiles++] = w;
	return w;
}

static void free_out(struct kout *o)
{
	for (size_t i = 0; i < o->nfiles; i++) {
		struct kwriter *w = o->files[i];
		free(w->buf);
		free(w->tmp);
		free(w->name);
		free(w->path);
		free(w);
	}
	free(o->files);
	free(o->attempt);
	free(o->spill);
	free(o->kind);
	free(o->dir);
	free(o);
}

void kout_abort(struct kout *o)
{
	if (!o)
		return;
	for (size_t i = 0; i < o->nfiles; i++) {
		if (o->files[i]->fd >= 0)
			close(o->files[i]->fd);
	}
	char *root = xasprintf("%s/_temporary", o->dir);
	remove_tree(root, o->attempt);
	free(root);
	free_out(o);
}

static char *manifest_json(struct kout *o, const struct kstats *st)
{
	cJSON *j = cJSON_CreateObject(), *files = cJSON_CreateArray();
	uint64_t rows = 0, bytes = 0;
	for (size_t i = 0; i < o->nfiles; i++) {
		struct kwriter *w = o->files[i];
		char sum[17];
		kw_checksum(w, sum);
		cJSON *f = cJSON_CreateObject();
		cJSON_AddStringToObject(f, "name", w->name);
		cJSON_AddNumberToObject(f, "rows", (double)w->rows);
		cJSON_AddNumberToObject(f, "bytes", (double)w->bytes);
		cJSON_AddStringToObject(f, "checksum", sum);
		cJSON_AddItemToArray(files, f);
		rows += w->rows;
		bytes += w->bytes;
	}
	cJSON_AddNumberToObject(j, "task", o->task);
	cJSON_AddNumberToObject(j, "tasks", o->tasks);
	cJSON_AddStringToObject(j, "kind", o->kind);
	char split[32];
	snprintf(split, sizeof split, "%u/%u", o->split_i, o->split_n);
	cJSON_AddStringToObject(j, "split", split);
	cJSON_AddNumberToObject(j, "rows_in", (double)st->rows_in);
	cJSON_AddNumberToObject(j, "bytes_in", (double)st->bytes_in);
	cJSON_AddNumberToObject(j, "bad_rows", (double)st->bad_rows);
	cJSON_AddNumberToObject(j, "rows_out", (double)rows);
	cJSON_AddNumberToObject(j, "bytes_out", (double)bytes);
	cJSON_AddNumberToObject(j, "duration_ms", (double)(mono_usec() - o->started) / 1000.0);
	cJSON_AddNumberToObject(j, "peak_rss", (double)kpeak_rss());
	cJSON_AddItemToObject(j, "files", files);
	char *s = cJSON_Print(j);
	cJSON_Delete(j);
	return s;
}

int kout_commit(struct kout *o, const struct kstats *st, char **err)
{
	int rc = 0;
	for (size_t i = 0; i < o->nfiles && !rc; i++) {
		struct kwriter *w = o->files[i];
		rc = kw_finish(w);
		if (!rc && fsync(w->fd))
			rc = -errno;
		if (close(w->fd) && !rc)
			rc = -errno;
		w->fd = -1;
		if (rc)
			*err = kerrf("%s: %s", w->tmp, strerror(-rc));
	}
	for (size_t i = 0; i < o->nfiles && !rc; i++) {
		struct kwriter *w = o->files[i];
		if (rename(w->tmp, w->path)) {
			rc = -errno;
			*err = kerrf("rename %s -> %s: %s", w->tmp, w->path, strerror(errno));
		}
	}
	if (!rc && (rc = fsync_dir(o->dir)) != 0)
		*err = kerrf("%s: fsync: %s", o->dir, strerror(-rc));
	if (!rc) {
		char *js = manifest_json(o, st), *mp = manifest_path(o->dir, o->task);
		rc = put_atomic(o->attempt, mp, js, strlen(js));
		if (rc)
			*err = kerrf("%s: %s", mp, strerror(-rc));
		free(js);
		free(mp);
	}
	if (!rc) {
		if (fsync_dir(o->dir) || maybe_success(o->dir, o->attempt, o->tasks, err))
			rc = -1;
	}
	if (rc) {
		if (!*err)
			*err = kerrf("commit failed");
		kout_abort(o);
		return -1;
	}
	char *root = xasprintf("%s/_temporary", o->dir);
	remove_tree(root, o->attempt);
	free(root);
	free_out(o);
	return 0;
}

void kshuffle_name(char *buf, size_t len, int task, uint32_t part)
{
	snprintf(buf, len, "m-%05d.p-%05u.tsv", task, part);
}

static int cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int kshuffle_files(const char *dir, uint32_t part, int maps, char ***paths, size_t *n, char **err)
{
	char suffix[32];
	size_t first = *n;
	snprintf(suffix, sizeof suffix, ".p-%05u.tsv", part);
	if (maps > 0) {
		int miss = kout_missing(dir, maps, err);
		if (miss < 0)
			return -1;
		if (miss > 0) {
			*err = kerrf("%s: %d of %d map tasks have not committed (no _manifest file)", dir, miss, maps);
			return -1;
		}
	} else {
		char *s = xasprintf("%s/_SUCCESS", dir);
		int ok = access(s, F_OK) == 0;
		free(s);
		if (!ok) {
			*err = kerrf("%s: no _SUCCESS (the map step has not finished; or pass --maps M)", dir);
			return -1;
		}
	}
	DIR *d = opendir(dir);
	struct dirent *de;
	if (!d) {
		*err = kerrf("%s: %s", dir, strerror(errno));
		return -1;
	}
	size_t sl = strlen(suffix);
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		if (l <= sl || strncmp(de->d_name, "m-", 2) || strcmp(de->d_name + l - sl, suffix))
			continue;
		if (maps > 0 && strtoll(de->d_name + 2, NULL, 10) >= maps)
			continue; /* a map task beyond the expected count (an older, wider run) */
		*paths = xrealloc(*paths, (*n + 1) * sizeof **paths);
		(*paths)[(*n)++] = xasprintf("%s/%s", dir, de->d_name);
	}
	closedir(d);
	if (*n > first)
		qsort(*paths + first, *n - first, sizeof **paths, cmp_cstr);
	if (maps > 0 && *n - first != (size_t)maps) {
		*err = kerrf("%s: %zu of %d committed map tasks wrote partition %u (were they run with fewer "
			     "--partitions?)", dir, *n - first, maps, part);
		return -1;
	}
	return 0;
}
