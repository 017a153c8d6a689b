/* Starting a try: environment, argv, the executor. */
#include "orchestrator/engine_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/events.h"
#include "base/json.h"
#include "base/log.h"
#include "orchestrator/cron.h"
#include "orchestrator/runs.h"
#include "orchestrator/template.h"
#include "orchestrator/tz.h"

static void free_strv(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

/* Replaces HOME, USER and LOGNAME of env[0..n) with those of user; returns the new count. */
static size_t user_env(const char *user, char **env, size_t n)
{
	struct passwd *pw = getpwnam(user);
	const char *names[3] = {"HOME", "USER", "LOGNAME"};
	for (size_t k = 0; pw && k < 3; k++) {
		size_t kl = strlen(names[k]);
		for (size_t j = 0; j < n; j++) {
			if (!strncmp(env[j], names[k], kl) && env[j][kl] == '=') {
				free(env[j]);
				env[j--] = env[--n];
			}
		}
		env[n++] = xasprintf("%s=%s", names[k], k == 0 ? pw->pw_dir : pw->pw_name);
	}
	return n;
}

/* The try's own variables: SLUICE_*, then the task's env (templated; a later one of the same
 * name wins). Returns a NULL-terminated list, or NULL with *err set. */
static char **build_own_env(struct eti *ti, const char *out_path, char **err)
{
	struct task *t = ti_task(ti);
	struct erun *r = ti->run;
	size_t n = 0;
	char **env = xcalloc(t->n_env + 12, sizeof(char *));
	char iso[ISO_BUFSZ];
	format_iso8601(r->row.logical_date, iso, sizeof(iso));
	env[n++] = xasprintf("SLUICE_DAG_ID=%s", r->row.dag_id);
	env[n++] = xasprintf("SLUICE_RUN_ID=%s", r->row.run_id);
	env[n++] = xasprintf("SLUICE_TASK_ID=%s", ti->row.task_id);
	env[n++] = xasprintf("SLUICE_TRY_NUMBER=%d", ti->row.try_number);
	env[n++] = xasprintf("SLUICE_MAP_INDEX=%d", ti->row.map_index);
	env[n++] = xasprintf("SLUICE_LOGICAL_DATE=%s", iso);
	env[n++] = xasprintf("SLUICE_DS=%.10s", iso);
	env[n++] = xasprintf("SLUICE_KERNEL=%s", r->e->kernel_path);
	/* A try run as another user gets its output file open on fd 3 (the log folder is the
	 * daemon's own). */
	env[n++] = t->run_as ? xstrdup("SLUICE_OUTPUT=/dev/fd/3") : xasprintf("SLUICE_OUTPUT=%s", out_path);
	if (ti->item)
		env[n++] = xasprintf("SLUICE_ITEM=%s", ti->item);
	for (size_t i = 0; i < t->n_env; i++) {
		/* Templated too: the environment is the way to hand a task data that must not
		 * meet a shell parser ($X in the command, or os.environ in a script). */
		char *value = NULL;
		if (tmpl_render(t->env[i].value, eng_ti_lookup, ti, &value, err) < 0) {
			free_strv(env);
			return NULL;
		}
		env[n++] = xasprintf("%s=%s", t->env[i].key, value);
		free(value);
	}
	return env;
}

/* Whether the variable "NAME=..." is set in v. */
static bool env_has(char *const *v, const char *var)
{
	size_t kl = strcspn(var, "=");
	for (; *v; v++)
		if (!strncmp(*v, var, kl) && (*v)[kl] == '=')
			return true;
	return false;
}

/* The complete environment of a local try: the daemon's (with the HOME, USER and LOGNAME of
 * run_as), less what the try's own variables (own) override, then those. */
static char **build_env(struct engine *e, struct eti *ti, char *const *own)
{
	struct task *t = ti_task(ti);
	size_t n = 0, nown = 0;
	while (own[nown])
		nown++;
	char **base = xcalloc(e->n_base_env + 4, sizeof(char *));
	for (size_t i = 0; i < e->n_base_env; i++)
		base[n++] = xstrdup(e->base_env[i]);
	if (t->run_as)
		n = user_env(t->run_as, base, n);
	char **env = xcalloc(n + nown + 1, sizeof(char *));
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (env_has(own, base[i]))
			free(base[i]);
		else
			env[k++] = base[i];
	}
	free(base);
	for (size_t i = 0; i < nown; i++)
		if (!env_has(own + i + 1, own[i])) /* a later one of the same name wins */
			env[k++] = xstrdup(own[i]);
	return env;
}


/* Renders the command of ti; returns a NULL-terminated argv or NULL with *err set. */
static char **render_argv(struct eti *ti, char **err)
{
	struct task *t = ti_task(ti);
	if (t->cmd_shell) {
		char *cmd = NULL;
		if (tmpl_render_shell(t->cmd_shell, eng_ti_lookup, ti, &cmd, err) < 0)
			return NULL;
		char **argv = xcalloc(4, sizeof(char *));
		argv[0] = xstrdup("/bin/sh");
		argv[1] = xstrdup("-c");
		argv[2] = cmd;
		return argv;
	}
	size_t n = 0;
	while (t->cmd_argv[n])
		n++;
	char **argv = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		if (tmpl_render(t->cmd_argv[i], eng_ti_lookup, ti, &argv[i], err) < 0) {
			free_strv(argv);
			return NULL;
		}
	}
	return argv;
}

/* Why a try cannot run as user here (a new message), or NULL when it can: the daemon must run as
 * root (or as that user), and the user must exist. */
static char *run_as_problem(const char *user)
{
	struct passwd *pw = getpwnam(user);
	if (!pw)
		return xasprintf("run_as = \"%s\": there is no such user on this host", user);
	if (geteuid() != 0 && geteuid() != pw->pw_uid)
		return xasprintf("run_as = \"%s\" needs the daemon to run as root (it runs as uid %d)", user,
				 (int)geteuid());
	return NULL;
}

/* What a try records as it starts: its start (a sensor's first poke) and the host. */
static void begin_try(struct engine *e, struct eti *ti)
{
	if (ti->row.start_date == USEC_NONE)
		ti->row.start_date = now_usec();
	if (ti_task(ti)->kind == TASK_SENSOR && ti->row.first_poke_at == USEC_NONE)
		ti->row.first_poke_at = ti->row.start_date;
	free(ti->row.hostname);
	ti->row.hostname = xstrdup(e->hostname);
}

/* The folder of a try's files (0700). */
static void make_log_dir(const char *log)
{
	char *dir = xstrdup(log);
	*strrchr(dir, '/') = '\0';
	mkdir_p(dir, 0700);
	free(dir);
}

/* The secrets the try's templates rendered, for its supervisor to mask in the log: a 0600 file
 * that the supervisor reads and removes. Returns its path, or NULL with *err. */
static char *write_masks(struct eti *ti, char **err)
{
	char *path = eng_try_file(ti, "mask");
	struct strbuf sb = {0};
	for (size_t i = 0; i < ti->nsecrets; i++)
		sb_add(&sb, ti->secrets[i], strlen(ti->secrets[i]) + 1); /* with its NUL */
	mode_t old = umask(077);
	int rc = write_file_atomic(path, sb_str(&sb), sb.len, false);
	umask(old);
	explicit_bzero(sb.buf, sb.len);
	sb_free(&sb);
	if (rc < 0) {
		*err = xasprintf("cannot write the secrets to mask (%s): %s", path, strerror(-rc));
		free(path);
		return NULL;
	}
	return path;
}

/* The command as rendered, beside the try's log (0600; the secrets it rendered written as ***),
 * for the API's rendered_fields. Best effort: the try runs without it. */
static void write_command(struct eti *ti, char *const *argv)
{
	bool shell = ti_task(ti)->cmd_shell != NULL; /* argv is /bin/sh -c CMD */
	char *line = shell ? xstrdup(argv[2]) : shell_join((const char *const *)argv);
	char *text = str_mask(line, ti->secrets, ti->nsecrets);
	char *path = eng_try_file(ti, "cmd");
	/* Written in place, not through a temp file and a rename: it is there before the try starts,
	 * only the UI reads it, and a try number re-run after a clear truncates it. */
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0) {
		for (size_t off = 0, n = strlen(text); off < n;) {
			ssize_t w = write(fd, text + off, n - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				break;
			off += (size_t)w;
		}
		close(fd);
	}
	explicit_bzero(line, strlen(line));
	free(line);
	free(text);
	free(path);
}

/* The try could not start: why goes to its log and its history (takes err). */
static void start_failed(struct engine *e, struct eti *ti, char *err, bool retryable)
{
	if (retryable)
		eng_append_log(ti, "cannot start the try: %s", err ? err : "unknown error");
	else
		eng_append_log(ti, "%s", err);
	eng_release_slots(e, ti);
	free(ti->message);
	ti->message = err;
	eng_fail_try(ti, retryable);
}

/* What every try's spec holds whatever its command: paths, limits, labels, backend options. */
static struct exec_spec base_spec(struct engine *e, struct eti *ti, const char *log, const char *status,
				  const char *pidf, const char *outp)
{
	struct task *t = ti_task(ti);
	return (struct exec_spec){
		.log_path = log, .status_path = status, .pid_path = pidf, .output_path = outp,
		.max_log_size = e->max_log_size, .sync_status = e->sync_status, .run_as = t->run_as,
		.rlimit_as = t->limits.memory, .rlimit_cpu = t->limits.cpu_seconds,
		.rlimit_nofile = t->limits.open_files, .rlimit_nproc = t->limits.processes,
		.rlimit_fsize = t->limits.file_size,
		.timeout = t->execution_timeout, .kill_grace = e->kill_grace,
		.dag_id = ti->row.dag_id, .run_id = ti->row.run_id, .task_id = ti->row.task_id,
		.map_index = ti->row.map_index, .try_number = ti->row.try_number,
		.options = t->exec_options,
	};
}

void eng_start_try(struct engine *e, struct eti *ti)
{
	struct task *t = ti_task(ti);
	char *err = NULL, *cwd = NULL;
	char **argv = NULL, **env = NULL, **own = NULL;
	char *log = eng_try_file(ti, "log"), *status = eng_try_file(ti, "status");
	char *pidf = eng_try_file(ti, "pid"), *outp = eng_try_file(ti, "out"), *maskf = NULL;
	struct exec_entry *x = eng_get_executor(e, t->executor, &err);
	struct exec_spec spec = base_spec(e, ti, log, status, pidf, outp);

	if (x)
		x->pending--;
	begin_try(e, ti);
	if (t->kind == TASK_SENSOR && !t->cmd_shell && !t->cmd_argv) {
		eng_poke_path(ti);
		goto out;
	}
	make_log_dir(log);
	if (!x)
		goto fail_setup;
	if (t->run_as && (err = run_as_problem(t->run_as)))
		goto fail_render; /* deterministic: a retry cannot fix it */
	eng_forget_secrets(ti);
	if (!(argv = render_argv(ti, &err)))
		goto fail_render;
	if (t->cwd && tmpl_render(t->cwd, eng_ti_lookup, ti, &cwd, &err) < 0)
		goto fail_render;
	write_command(ti, argv);
	unlink(status); /* a cleared task may run the same try number again */
	unlink(pidf);
	unlink(outp);
	if (!(own = build_own_env(ti, outp, &err)))
		goto fail_render;
	env = build_env(e, ti, own);
	if (ti->nsecrets && !(maskf = write_masks(ti, &err)))
		goto fail_setup;
	spec.argv = (const char *const *)argv;
	spec.envp = (const char *const *)env;
	spec.task_envp = (const char *const *)own;
	spec.cwd = cwd;
	spec.mask_path = maskf;
	char *ext = NULL;
	int pid = 0;
	if (x->ex->ops->start(x->ex, (uint64_t)(uintptr_t)ti, &spec, &ext, &pid, &err) < 0)
		goto fail_setup;
	ti->ex = x->ex;
	ti->spawned = true;
	ti->row.pid = pid;
	free(ti->row.external_id);
	ti->row.external_id = ext;
	eng_set_state(ti, TI_RUNNING);
	goto out;

fail_render:
	/* A template error is deterministic: retrying cannot fix it, so the task fails now. */
	start_failed(e, ti, err, false);
	err = NULL;
	goto out;
fail_setup:
	start_failed(e, ti, err, true);
	err = NULL;
out:
	eng_forget_secrets(ti);
	if (maskf && !ti->spawned)
		unlink(maskf); /* the supervisor never read it: the secrets must not stay on disk */
	free(maskf);
	free_strv(argv);
	free_strv(env);
	free_strv(own);
	free(cwd);
	free(err);
	free(log);
	free(status);
	free(pidf);
	free(outp);
}
