/* The backend table and what all backends share: opening an executor by name, reading the status
 * file the supervisors write, and identifying processes across pid reuse. */
#include "executors/executor.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const struct executor_ops *const executor_backends[] = {
	&exec_local_ops,
	&exec_ssh_ops,
	&exec_k8s_ops,
	&exec_slurm_ops,
	NULL,
};

const struct executor_ops *executor_find(const char *name)
{
	for (size_t i = 0; name && executor_backends[i]; i++)
		if (strcmp(executor_backends[i]->name, name) == 0)
			return executor_backends[i];
	return NULL;
}

struct executor *executor_open(const char *name, struct evloop *loop, exec_end_cb cb, void *arg,
			       int parallelism, const char *shim_path, char **err)
{
	struct executor_params p = { .parallelism = parallelism, .shim_path = shim_path };

	return executor_open_with(name, loop, cb, arg, &p, err);
}

static char **copy_settings(const char *const *v)
{
	size_t n = 0;

	while (v && v[n])
		n++;
	char **out = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		out[i] = xstrdup(v[i]);
	return out;
}

static void free_settings(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

struct executor *executor_open_with(const char *name, struct evloop *loop, exec_end_cb cb, void *arg,
				    const struct executor_params *p, char **err)
{
	const struct executor_ops *ops = executor_find(name);
	struct executor *ex;

	if (!ops) {
		*err = xasprintf("unknown executor '%s'", name ? name : "(null)");
		return NULL;
	}
	if (p->parallelism < 1) {
		*err = xasprintf("executor '%s': parallelism must be at least 1 (got %d)", name,
				 p->parallelism);
		return NULL;
	}
	ex = xcalloc(1, sizeof(*ex));
	ex->ops = ops;
	ex->loop = loop;
	ex->on_end = cb;
	ex->cb_arg = arg;
	ex->parallelism = p->parallelism;
	ex->shim_path = p->shim_path ? xstrdup(p->shim_path) : NULL;
	ex->state_dir = p->state_dir ? xstrdup(p->state_dir) : NULL;
	ex->settings = copy_settings(p->settings);
	if (ops->init(ex, err) < 0) {
		free_settings(ex->settings);
		free(ex->state_dir);
		free(ex->shim_path);
		free(ex);
		return NULL;
	}
	return ex;
}

const char *executor_setting(const struct executor *ex, const char *key, const char *def)
{
	size_t n = strlen(key);

	for (size_t i = 0; ex->settings[i]; i++)
		if (!strncmp(ex->settings[i], key, n) && ex->settings[i][n] == '=')
			return ex->settings[i] + n + 1;
	return def;
}

void executor_close(struct executor *ex)
{
	if (!ex)
		return;
	ex->ops->shutdown(ex);
	free_settings(ex->settings);
	free(ex->state_dir);
	free(ex->shim_path);
	free(ex);
}

static int parse_kind(const char *v, enum exec_end_kind *kind)
{
	if (strcmp(v, "exited") == 0)
		*kind = EXEC_END_EXITED;
	else if (strcmp(v, "signaled") == 0)
		*kind = EXEC_END_SIGNALED;
	else if (strcmp(v, "timeout") == 0)
		*kind = EXEC_END_TIMEOUT;
	else if (strcmp(v, "lost") == 0)
		*kind = EXEC_END_LOST;
	else
		return -EINVAL;
	return 0;
}

static int parse_ll(const char *v, long long *out)
{
	char *end;

	errno = 0;
	*out = strtoll(v, &end, 10);
	return (errno || end == v || *end) ? -EINVAL : 0;
}

/* Applies one "key=value" line to *out; unknown keys are ignored for forward compatibility. */
static int status_line(char *line, struct exec_result *out, char **message, bool *have_kind)
{
	char *eq = strchr(line, '=');
	long long v;

	if (!eq)
		return *line ? -EINVAL : 0;
	*eq++ = '\0';
	if (strcmp(line, "kind") == 0) {
		*have_kind = true;
		return parse_kind(eq, &out->kind);
	}
	if (strcmp(line, "message") == 0) {
		free(*message);
		*message = xstrdup(eq);
		return 0;
	}
	if (strcmp(line, "code") != 0 && strcmp(line, "start_us") != 0 && strcmp(line, "end_us") != 0)
		return 0;
	if (parse_ll(eq, &v) < 0)
		return -EINVAL;
	if (line[0] == 'c')
		out->code = (int)v;
	else if (line[0] == 's')
		out->start = v;
	else
		out->end = v;
	return 0;
}

int exec_parse_status(char *text, struct exec_result *out, char **message)
{
	char *line, *save = NULL;
	bool have_kind = false;
	int rc = 0;

	*message = NULL;
	*out = (struct exec_result){ .kind = EXEC_END_LOST, .start = USEC_NONE, .end = USEC_NONE };
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		rc = status_line(line, out, message, &have_kind);
		if (rc < 0)
			break;
	}
	if (rc == 0 && !have_kind)
		rc = -EINVAL;
	if (rc < 0) {
		free(*message);
		*message = NULL;
	}
	out->message = *message;
	return rc;
}

int exec_read_status(const char *path, struct exec_result *out, char **message)
{
	char *text = NULL;
	int rc = read_file(path, 64 * 1024, &text, NULL);

	if (rc < 0) {
		*message = NULL;
		*out = (struct exec_result){ .kind = EXEC_END_LOST, .start = USEC_NONE, .end = USEC_NONE };
		return rc;
	}
	rc = exec_parse_status(text, out, message);
	free(text);
	return rc;
}

/* Field 6 of /proc/PID/stat (the session id), or -1. */
static int proc_session(const char *pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%s/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	int ppid, pgrp, session;
	char state;
	if (!p || sscanf(p + 1, " %c %d %d %d", &state, &ppid, &pgrp, &session) != 4)
		return -1;
	return session;
}

int exec_kill_session(int sid)
{
	int killed = 0;
	if (sid <= 1 || kill(sid, 0) == 0)
		return -EEXIST; /* the leader lives (or its pid is taken again): not a lost session */
	for (int round = 0; round < 100; round++) {
		DIR *d = opendir("/proc");
		struct dirent *e;
		int left = 0;
		if (!d)
			return -errno;
		while ((e = readdir(d))) {
			if (e->d_name[0] < '1' || e->d_name[0] > '9' || proc_session(e->d_name) != sid)
				continue;
			int pid = atoi(e->d_name);
			if (kill(pid, SIGKILL) == 0) {
				left++;
				killed += round == 0;
			}
		}
		closedir(d);
		if (!left)
			return killed;
		usleep(10000); /* until they are gone (bounded: 1 s) */
	}
	return killed;
}

int exec_proc_starttime(int pid, unsigned long long *starttime, char *state)
{
	char path[64], buf[1024], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n < 0 ? -errno : -ESRCH;
	buf[n] = '\0';
	/* The command name (field 2) may hold spaces and ')': fields 3.. start after the last ')'. */
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return -EIO;
	p += 2;
	if (state)
		*state = *p;
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return -EIO;
		p++;
	}
	*starttime = strtoull(p, NULL, 10);
	return 0;
}
