/* Unit tests for the local executor, with real processes under the real sluice-shim (found through
 * $SLUICE_SHIM): exit codes, signals, timeouts that kill a whole process group, logs, environment,
 * exec failures, cancel, capacity, duplicate supervisors and re-attaching after a daemon restart. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "executors/executor.h"

extern char **environ;

#define MAXENDS 8

struct ended {
	uint64_t token;
	struct exec_result res;
	char msg[512];
};

struct fx {
	char dir[64];
	const char *shim;
	struct evloop *loop;
	struct executor *ex;
	struct ended ends[MAXENDS];
	int nends, want;
	bool in_call; /* set while start()/reattach() runs: on_end must not come from inside */
};

struct paths {
	char log[128], status[128], pid[128], extra[128];
};

static void on_end(void *arg, uint64_t token, const struct exec_result *res)
{
	struct fx *f = arg;
	struct ended *e;

	assert_false(f->in_call);
	assert_true(f->nends < MAXENDS);
	e = &f->ends[f->nends++];
	e->token = token;
	e->res = *res;
	e->msg[0] = '\0';
	if (res->message)
		snprintf(e->msg, sizeof(e->msg), "%s", res->message);
	e->res.message = e->msg;
	if (f->nends >= f->want)
		evloop_stop(f->loop);
}

static struct executor *open_local(struct fx *f, int parallelism)
{
	char *err = NULL;
	struct executor *ex = executor_open("local", f->loop, on_end, f, parallelism, f->shim, &err);

	if (!ex)
		fail_msg("executor_open: %s", err);
	return ex;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	f->shim = getenv("SLUICE_SHIM");
	if (!f->shim || f->shim[0] != '/') {
		fprintf(stderr, "SLUICE_SHIM must name the sluice-shim binary (absolute path)\n");
		free(f);
		return -1;
	}
	strcpy(f->dir, "/tmp/sluice-test-local-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	f->loop = evloop_new();
	f->ex = open_local(f, 4);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	executor_close(f->ex);
	evloop_free(f->loop);
	remove_tree("/", f->dir);
	free(f);
	return 0;
}

static void paths_init(struct fx *f, struct paths *p, const char *name)
{
	snprintf(p->log, sizeof(p->log), "%s/%s.log", f->dir, name);
	snprintf(p->status, sizeof(p->status), "%s/%s.status", f->dir, name);
	snprintf(p->pid, sizeof(p->pid), "%s/%s.pid", f->dir, name);
	snprintf(p->extra, sizeof(p->extra), "%s/%s.extra", f->dir, name);
}

static struct exec_spec spec_of(const struct paths *p, const char *const *argv)
{
	return (struct exec_spec){
		.argv = argv,
		.log_path = p->log,
		.status_path = p->status,
		.pid_path = p->pid,
		.kill_grace = 200 * 1000,
		.dag_id = "d", .run_id = "r", .task_id = "t",
	};
}

static void guard_cb(struct evloop *loop, void *arg)
{
	fail_msg("no end reported within the time limit");
}

/* Runs the loop until `n` ends in total were reported (at most 5 s). */
static void wait_ends(struct fx *f, int n)
{
	struct ev_timer *guard = evloop_timer_in(f->loop, 5 * USEC_PER_SEC, guard_cb, NULL);

	f->want = n;
	if (f->nends < n)
		assert_int_equal(evloop_run(f->loop), 0);
	evloop_timer_cancel(f->loop, guard);
	assert_int_equal(f->nends, n);
}

static void start_ok(struct fx *f, struct executor *ex, uint64_t token,
		     const struct exec_spec *spec, char **ext, int *pid)
{
	char *err = NULL, *ext_local = NULL;
	int pid_local = 0, rc;

	f->in_call = true;
	rc = ex->ops->start(ex, token, spec, &ext_local, &pid_local, &err);
	f->in_call = false;
	if (rc != 0)
		fail_msg("start: %s", err ? err : "?");
	assert_true(pid_local > 0);
	if (pid)
		*pid = pid_local;
	if (ext)
		*ext = ext_local;
	else
		free(ext_local);
}

/* Starts one try and waits for its end; returns the recorded end. */
static struct ended *run_one(struct fx *f, const struct exec_spec *spec)
{
	start_ok(f, f->ex, (uint64_t)f->nends + 1, spec, NULL, NULL);
	wait_ends(f, f->nends + 1);
	return &f->ends[f->nends - 1];
}

static char *slurp(const char *path)
{
	char *s = NULL;

	if (read_file(path, 1 << 20, &s, NULL) < 0)
		return xstrdup("");
	return s;
}

static void assert_contains(const char *path, const char *needle)
{
	char *s = slurp(path);

	if (!strstr(s, needle))
		fail_msg("%s does not contain \"%s\"; it holds:\n%s", path, needle, s);
	free(s);
}

static int read_int_file(const char *path)
{
	char *s = slurp(path);
	int v = atoi(s);

	free(s);
	return v;
}

static bool pid_gone(int pid)
{
	return pid > 0 && kill(pid, 0) < 0 && errno == ESRCH;
}

/* ---- plain runs ---- */

static void test_exit_zero(void **state)
{
	struct fx *f = *state;
	struct paths p;
	const char *argv[] = { "true", NULL };
	struct exec_spec spec;
	char *ext = NULL, *pidtext;
	int pid = 0, xpid = 0;
	unsigned long long st = 0;
	usec_t before = now_usec();

	paths_init(f, &p, "ok");
	spec = spec_of(&p, argv);
	start_ok(f, f->ex, 1, &spec, &ext, &pid);
	assert_int_equal(sscanf(ext, "%d:%llu", &xpid, &st), 2);
	assert_int_equal(xpid, pid);
	assert_true(st > 0);
	assert_int_equal(f->ex->ops->free_slots(f->ex), 3);
	wait_ends(f, 1);
	assert_int_equal(f->ends[0].token, 1);
	assert_int_equal(f->ends[0].res.kind, EXEC_END_EXITED);
	assert_int_equal(f->ends[0].res.code, 0);
	assert_true(f->ends[0].res.start >= before);
	assert_true(f->ends[0].res.end >= f->ends[0].res.start);
	/* the pid file names the supervisor exactly as the external id does */
	pidtext = slurp(p.pid);
	char want[64];
	snprintf(want, sizeof(want), "%d %llu\n", xpid, st);
	assert_string_equal(pidtext, want);
	free(pidtext);
	assert_int_equal(f->ex->ops->free_slots(f->ex), 4);
	free(ext);
}

static void test_exit_code(void **state)
{
	struct fx *f = *state;
	struct paths p;
	const char *argv[] = { "sh", "-c", "exit 7", NULL };
	struct exec_spec spec;

	paths_init(f, &p, "seven");
	spec = spec_of(&p, argv);
	struct ended *e = run_one(f, &spec);
	assert_int_equal(e->res.kind, EXEC_END_EXITED);
	assert_int_equal(e->res.code, 7);
}

static void test_killed_by_signal(void **state)
{
	struct fx *f = *state;
	struct paths p;
	const char *argv[] = { "sh", "-c", "kill -KILL $$", NULL };
	struct exec_spec spec;

	paths_init(f, &p, "sig");
	spec = spec_of(&p, argv);
	struct ended *e = run_one(f, &spec);
	assert_int_equal(e->res.kind, EXEC_END_SIGNALED);
	assert_int_equal(e->res.code, SIGKILL);
}

static void test_log_output_appended(void **state)
{
	struct fx *f = *state;
	struct paths p;
	const char *argv[] = { "sh", "-c", "echo to-stdout; echo to-stderr >&2", NULL };
	struct exec_spec spec;
	FILE *fp;

	paths_init(f, &p, "log");
	fp = fopen(p.log, "w");
	fputs("previous line\n", fp);
	fclose(fp);
	spec = spec_of(&p, argv);
	struct ended *e = run_one(f, &spec);
	assert_int_equal(e->res.code, 0);
	assert_contains(p.log, "previous line\nto-stdout\nto-stderr\n");
}

static void test_env_and_cwd(void **state)
{
	struct fx *f = *state;
	struct paths p;
	const char *env[] = { "SLUICE_TEST_VAR=hello world", "PATH=/usr/bin:/bin", NULL };
	const char *argv[] = { "sh", "-c", "echo \"[$SLUICE_TEST_VAR] [${HOME-unset}]\"; pwd", NULL };
	struct exec_spec spec;
	char want[128];

	paths_init(f, &p, "env");
	spec = spec_of(&p, argv);
	spec.envp = env;
	spec.cwd = f->dir;
	struct ended *e = run_one(f, &spec);
	assert_int_equal(e->res.code, 0);
	/* exactly the given environment: nothing of the daemon's leaks in */
	assert_contains(p.log, "[hello world] [unset]\n");
	snprintf(want, sizeof(want), "%s\n", f->dir);
	assert_contains(p.log, want);
}

static void test_stdin_is_devnull(void **state)
{
	struct fx *f = *state;
	struct paths p;
	const char *argv[] = { "sh", "-c", "if read x; then exit 1; fi; cat; exit 0", NULL };
	struct exec_spec spec;

	paths_init(f, &p, "stdin");
	spec = spec_of(&p, argv);
	struct ended *e = run_one(f, &spec);
	assert_int_equal(e->res.kind, EXEC_END_EXITED);
	assert_int_equal(e->res.code, 0);
}

static void test_exec_failure(void **state)
{
	struct fx *f = *state;
	struct paths p;
	const char *argv[] = { "sluice-no-such-command", "x", NULL };
	struct exec_spec spec;

	paths_init(f, &p, "noexec");
	spec = spec_of(&p, argv);
	struct ended *e = run_one(f, &spec);
	assert_int_equal(e->res.kind, EXEC_END_EXITED);
	assert_int_equal(e->res.code, 127);
	assert_contains(p.log,
			"sluice-shim: cannot run 'sluice-no-such-command': No such file or directory\n");
}

static void test_supervisor_setup_failure(void **state)
{
	struct fx *f = *state;
	struct paths p;
	const char *argv[] = { "true", NULL };
	struct exec_spec spec;

	paths_init(f, &p, "nolog");
	snprintf(p.log, sizeof(p.log), "%s/missing-dir/x.log", f->dir);
	spec = spec_of(&p, argv);
	struct ended *e = run_one(f, &spec);
	assert_int_equal(e->res.kind, EXEC_END_EXITED);
	assert_int_equal(e->res.code, 127);
	assert_non_null(strstr(e->msg, "cannot open log"));
}

/* ---- timeouts and cancel: the whole process group goes ---- */

static void test_timeout_kills_group(void **state)
{
	struct fx *f = *state;
	struct paths p;
	char script[512];
	const char *argv[] = { "sh", "-c", script, NULL };
	struct exec_spec spec;
	usec_t t0 = mono_usec();
	int gc;

	paths_init(f, &p, "timeout");
	snprintf(script, sizeof(script), "sleep 100 & echo $! > %s; sleep 100", p.extra);
	spec = spec_of(&p, argv);
	spec.timeout = 300 * 1000;
	struct ended *e = run_one(f, &spec);
	assert_int_equal(e->res.kind, EXEC_END_TIMEOUT);
	assert_int_equal(e->res.code, SIGTERM);
	assert_true(mono_usec() - t0 >= 300 * 1000);
	assert_true(mono_usec() - t0 < 4 * USEC_PER_SEC);
	gc = read_int_file(p.extra);
	assert_true(gc > 0);
	assert_true(pid_gone(gc)); /* the grandchild is gone, not just the shell */
	assert_contains(p.log,
			"sluice: execution_timeout of 300ms exceeded; sending SIGTERM to process group\n");
}

static void test_timeout_escalates_to_sigkill(void **state)
{
	struct fx *f = *state;
	struct paths p;
	const char *argv[] = { "sh", "-c", "trap '' TERM; sleep 100; sleep 100", NULL };
	struct exec_spec spec;
	usec_t t0 = mono_usec();

	paths_init(f, &p, "stubborn");
	spec = spec_of(&p, argv);
	spec.timeout = 200 * 1000;
	spec.kill_grace = 150 * 1000;
	struct ended *e = run_one(f, &spec);
	assert_int_equal(e->res.kind, EXEC_END_TIMEOUT);
	assert_int_equal(e->res.code, SIGKILL);
	assert_true(mono_usec() - t0 >= 350 * 1000);
	assert_contains(p.log, "sending SIGKILL");
}

static void test_leftovers_killed_after_exit(void **state)
{
	struct fx *f = *state;
	struct paths p;
	char script[512];
	const char *argv[] = { "sh", "-c", script, NULL };
	struct exec_spec spec;
	int gc;

	paths_init(f, &p, "leftover");
	/* the shell exits at once and leaves a background job holding the log open */
	snprintf(script, sizeof(script), "sleep 100 & echo $! > %s; exit 0", p.extra);
	spec = spec_of(&p, argv);
	struct ended *e = run_one(f, &spec);
	assert_int_equal(e->res.kind, EXEC_END_EXITED);
	assert_int_equal(e->res.code, 0);
	gc = read_int_file(p.extra);
	assert_true(pid_gone(gc));
}

/* A daemonised grandchild: started in a session of its own by a subshell that exits at once, so it
 * is in neither the command's group nor its session. The supervisor, its subreaper, still kills it
 * on timeout, even though it ignores SIGTERM (SIGKILL once the command itself has ended). */
static void test_timeout_kills_own_session_grandchild(void **state)
{
	struct fx *f = *state;
	struct paths p;
	char script[1024];
	const char *argv[] = { "sh", "-c", script, NULL };
	struct exec_spec spec;
	usec_t t0 = mono_usec();

	paths_init(f, &p, "daemonised");
	snprintf(script, sizeof(script),
		 "(setsid sh -c 'trap \"\" TERM; echo $$ > %s.tmp; mv %s.tmp %s; exec sleep 100' &); "
		 "while [ ! -s %s ]; do sleep 0.01; done; sleep 100",
		 p.extra, p.extra, p.extra, p.extra);
	spec = spec_of(&p, argv);
	spec.timeout = 300 * 1000;
	spec.kill_grace = 200 * 1000;
	struct ended *e = run_one(f, &spec);
	assert_int_equal(e->res.kind, EXEC_END_TIMEOUT);
	int gc = read_int_file(p.extra);
	assert_true(gc > 0);
	assert_true(pid_gone(gc));
	assert_true(mono_usec() - t0 < 4 * USEC_PER_SEC);
	assert_contains(p.log, "sluice: execution_timeout of 300ms exceeded");
}

static void test_leftover_session_killed_after_exit(void **state)
{
	struct fx *f = *state;
	struct paths p;
	char script[1024];
	const char *argv[] = { "sh", "-c", script, NULL };
	struct exec_spec spec;

	paths_init(f, &p, "daemonexit");
	/* The pid file is written from inside the new session, so the shell exits only once the
	 * grandchild has left the command's group. */
	snprintf(script, sizeof(script),
		 "(setsid sh -c 'echo $$ > %s.tmp; mv %s.tmp %s; exec sleep 100' &); "
		 "while [ ! -s %s ]; do sleep 0.01; done; exit 0",
		 p.extra, p.extra, p.extra, p.extra);
	spec = spec_of(&p, argv);
	struct ended *e = run_one(f, &spec);
	assert_int_equal(e->res.kind, EXEC_END_EXITED);
	assert_int_equal(e->res.code, 0);
	assert_true(pid_gone(read_int_file(p.extra)));
}

struct cancel_ctx {
	struct fx *f;
	uint64_t token;
	const char *ready; /* cancel once this file exists */
	int rc;
};

static void cancel_cb(struct evloop *loop, void *arg)
{
	struct cancel_ctx *c = arg;

	if (access(c->ready, F_OK) != 0) {
		evloop_timer_in(loop, 10 * 1000, cancel_cb, c);
		return;
	}
	c->rc = c->f->ex->ops->cancel(c->f->ex, c->token);
}

static void test_cancel(void **state)
{
	struct fx *f = *state;
	struct paths p;
	char script[512];
	const char *argv[] = { "sh", "-c", script, NULL };
	struct exec_spec spec;
	struct cancel_ctx c = { f, 1, NULL, -1 };
	usec_t t0 = mono_usec();

	paths_init(f, &p, "cancel");
	c.ready = p.extra;
	snprintf(script, sizeof(script), "sleep 100 & echo $! > %s; wait", p.extra);
	spec = spec_of(&p, argv);
	start_ok(f, f->ex, 1, &spec, NULL, NULL);
	evloop_timer_in(f->loop, 100 * 1000, cancel_cb, &c);
	wait_ends(f, 1);
	assert_int_equal(c.rc, 0);
	assert_int_equal(f->ends[0].res.kind, EXEC_END_SIGNALED);
	assert_int_equal(f->ends[0].res.code, SIGTERM);
	assert_true(mono_usec() - t0 < 4 * USEC_PER_SEC);
	assert_true(pid_gone(read_int_file(p.extra)));
	assert_contains(p.log, "supervisor received SIGTERM");
	assert_int_equal(f->ex->ops->cancel(f->ex, 1), -ENOENT);
}

static void test_cancel_kills_own_session_grandchild(void **state)
{
	struct fx *f = *state;
	struct paths p;
	char script[1024];
	const char *argv[] = { "sh", "-c", script, NULL };
	struct exec_spec spec;
	struct cancel_ctx c = { f, 1, NULL, -1 };

	paths_init(f, &p, "cancelsess");
	c.ready = p.extra;
	snprintf(script, sizeof(script),
		 "(setsid sh -c 'echo $$ > %s.tmp; mv %s.tmp %s; exec sleep 100' &); sleep 100",
		 p.extra, p.extra, p.extra);
	spec = spec_of(&p, argv);
	start_ok(f, f->ex, 1, &spec, NULL, NULL);
	evloop_timer_in(f->loop, 50 * 1000, cancel_cb, &c);
	wait_ends(f, 1);
	assert_int_equal(c.rc, 0);
	assert_int_equal(f->ends[0].res.kind, EXEC_END_SIGNALED);
	assert_true(pid_gone(read_int_file(p.extra)));
}

/* A cancel that arrives before the supervisor has even set up must not lose the try. */
static void test_cancel_right_after_start(void **state)
{
	struct fx *f = *state;
	struct paths p;
	const char *argv[] = { "sleep", "100", NULL };
	struct exec_spec spec;

	paths_init(f, &p, "cancel0");
	spec = spec_of(&p, argv);
	start_ok(f, f->ex, 1, &spec, NULL, NULL);
	assert_int_equal(f->ex->ops->cancel(f->ex, 1), 0);
	wait_ends(f, 1);
	assert_int_equal(f->ends[0].res.kind, EXEC_END_SIGNALED);
	assert_int_equal(f->ends[0].res.code, SIGTERM);
}

static void test_free_slots(void **state)
{
	struct fx *f = *state;
	struct executor *ex2 = open_local(f, 2);
	struct paths p[3];
	const char *argv[] = { "sleep", "0.1", NULL };
	struct exec_spec spec;
	char *err = NULL, *ext = NULL;
	int pid;

	for (int i = 0; i < 3; i++) {
		char name[16];
		snprintf(name, sizeof(name), "slot%d", i);
		paths_init(f, &p[i], name);
	}
	for (int i = 0; i < 2; i++) {
		spec = spec_of(&p[i], argv);
		start_ok(f, ex2, (uint64_t)i + 1, &spec, NULL, NULL);
	}
	assert_int_equal(ex2->ops->free_slots(ex2), 0);
	spec = spec_of(&p[2], argv);
	assert_int_equal(ex2->ops->start(ex2, 3, &spec, &ext, &pid, &err), -EAGAIN);
	assert_non_null(err);
	free(err);
	wait_ends(f, 2);
	assert_int_equal(ex2->ops->free_slots(ex2), 2);
	executor_close(ex2);
}

/* ---- duplicates and re-attaching ---- */

/* Starts a supervisor the executor knows nothing about (another daemon's) and waits until it has
 * claimed the try. Returns its pid. */
static int spawn_foreign(const char *shim, const struct paths *p, const char *script)
{
	const char *av[] = { shim, "--log", p->log, "--status", p->status, "--pid-file", p->pid,
			     "--", "sh", "-c", script, NULL };
	pid_t pid;
	struct stat sb;

	assert_int_equal(posix_spawn(&pid, shim, NULL, NULL, (char **)av, environ), 0);
	for (int i = 0; i < 1000 && stat(p->pid, &sb) < 0; i++)
		usleep(1000);
	assert_int_equal(stat(p->pid, &sb), 0);
	return pid;
}

static void test_duplicate_supervisor(void **state)
{
	struct fx *f = *state;
	struct paths p;
	char script[512];
	const char *argv[] = { "sh", "-c", script, NULL };
	struct exec_spec spec;
	int foreign, pid;
	char *count;

	paths_init(f, &p, "dup");
	snprintf(script, sizeof(script), "echo ran >> %s; sleep 0.2; exit 5", p.extra);
	foreign = spawn_foreign(f->shim, &p, script);
	/* the same try again: its supervisor must step aside, and the end is the first one's */
	spec = spec_of(&p, argv);
	start_ok(f, f->ex, 1, &spec, NULL, &pid);
	assert_int_not_equal(pid, foreign);
	wait_ends(f, 1);
	assert_int_equal(f->ends[0].res.kind, EXEC_END_EXITED);
	assert_int_equal(f->ends[0].res.code, 5);
	count = slurp(p.extra);
	assert_string_equal(count, "ran\n"); /* the command ran once */
	free(count);
	waitpid(foreign, NULL, 0);
}

static void test_reattach_finished(void **state)
{
	struct fx *f = *state;
	struct paths p;
	const char *argv[] = { "sh", "-c", "exit 4", NULL };
	struct exec_spec spec;
	char *ext = NULL;

	paths_init(f, &p, "done");
	spec = spec_of(&p, argv);
	start_ok(f, f->ex, 1, &spec, &ext, NULL);
	wait_ends(f, 1);
	/* a "restarted daemon": a fresh executor that never saw the try */
	executor_close(f->ex);
	f->ex = open_local(f, 4);
	f->in_call = true;
	assert_int_equal(f->ex->ops->reattach(f->ex, 42, &spec, ext), 0);
	f->in_call = false;
	assert_int_equal(f->nends, 1); /* reported from the loop, not from inside reattach */
	wait_ends(f, 2);
	assert_int_equal(f->ends[1].token, 42);
	assert_int_equal(f->ends[1].res.kind, EXEC_END_EXITED);
	assert_int_equal(f->ends[1].res.code, 4);
	assert_true(f->ends[1].res.start != USEC_NONE);
	free(ext);
}

/* A "daemon" in another process starts a try and is SIGKILLed. The try runs on, and this process
 * re-attaches to the running supervisor, which is not its child. */
static void daemon_child(struct fx *f, const struct exec_spec *spec, int outfd)
{
	struct evloop *loop = evloop_new();
	char *err = NULL, *ext = NULL;
	int pid;
	struct executor *ex = executor_open("local", loop, on_end, f, 1, f->shim, &err);

	if (!ex || ex->ops->start(ex, 1, spec, &ext, &pid, &err) != 0)
		_exit(1);
	if (write(outfd, ext, strlen(ext)) < 0)
		_exit(1);
	close(outfd);
	pause();
	_exit(0);
}

static void test_survives_daemon_kill_and_reattach(void **state)
{
	struct fx *f = *state;
	struct paths p;
	const char *argv[] = { "sh", "-c", "sleep 0.5; echo survived; exit 3", NULL };
	struct exec_spec spec;
	char ext[64] = { 0 };
	int fds[2], shim_pid = 0;
	unsigned long long st = 0, st2 = 0;
	pid_t daemon;

	paths_init(f, &p, "survive");
	spec = spec_of(&p, argv);
	assert_int_equal(pipe(fds), 0);
	daemon = fork();
	assert_true(daemon >= 0);
	if (daemon == 0) {
		close(fds[0]);
		daemon_child(f, &spec, fds[1]);
	}
	close(fds[1]);
	assert_true(read(fds[0], ext, sizeof(ext) - 1) > 0);
	close(fds[0]);
	kill(daemon, SIGKILL);
	waitpid(daemon, NULL, 0);
	/* the supervisor lives on without its parent */
	assert_int_equal(sscanf(ext, "%d:%llu", &shim_pid, &st), 2);
	assert_int_equal(exec_proc_starttime(shim_pid, &st2, NULL), 0);
	assert_true(st == st2);
	assert_int_equal(access(p.status, F_OK), -1);
	f->in_call = true;
	assert_int_equal(f->ex->ops->reattach(f->ex, 7, &spec, ext), 0);
	f->in_call = false;
	wait_ends(f, 1);
	assert_int_equal(f->ends[0].token, 7);
	assert_int_equal(f->ends[0].res.kind, EXEC_END_EXITED);
	assert_int_equal(f->ends[0].res.code, 3);
	assert_contains(p.log, "survived\n");
}

static void test_reattach_through_pid_file(void **state)
{
	struct fx *f = *state;
	struct paths p;
	const char *argv[] = { "true", NULL };
	struct exec_spec spec;
	int foreign;

	paths_init(f, &p, "viapid");
	foreign = spawn_foreign(f->shim, &p, "sleep 0.2; exit 6");
	spec = spec_of(&p, argv);
	/* the external id names a process that no longer exists; the pid file is the way in */
	f->in_call = true;
	assert_int_equal(f->ex->ops->reattach(f->ex, 8, &spec, "999999:12345"), 0);
	f->in_call = false;
	wait_ends(f, 1);
	assert_int_equal(f->ends[0].res.kind, EXEC_END_EXITED);
	assert_int_equal(f->ends[0].res.code, 6);
	waitpid(foreign, NULL, 0);
}

static void test_reattach_lost(void **state)
{
	struct fx *f = *state;
	struct paths p;
	const char *argv[] = { "true", NULL };
	struct exec_spec spec;

	paths_init(f, &p, "lost");
	spec = spec_of(&p, argv);
	f->in_call = true;
	assert_int_equal(f->ex->ops->reattach(f->ex, 9, &spec, "999999:12345"), 0);
	f->in_call = false;
	wait_ends(f, 1);
	assert_int_equal(f->ends[0].res.kind, EXEC_END_LOST);
	assert_non_null(strstr(f->ends[0].msg, "no status file"));
	assert_int_equal(f->ex->ops->free_slots(f->ex), 4);
}

/* A pid file without its line (a supervisor between its O_EXCL create and its write): looked at
 * again, not taken for lost at once; one that stays empty (the supervisor died right there) makes
 * the try lost after a while. */
static void test_reattach_half_written_pid_file(void **state)
{
	struct fx *f = *state;
	struct paths p;
	const char *argv[] = { "true", NULL };
	struct exec_spec spec;

	paths_init(f, &p, "halfpid");
	int fd = open(p.pid, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	spec = spec_of(&p, argv);
	usec_t t0 = now_usec();
	f->in_call = true;
	assert_int_equal(f->ex->ops->reattach(f->ex, 10, &spec, "999999:12345"), 0);
	f->in_call = false;
	wait_ends(f, 1);
	assert_int_equal(f->ends[0].res.kind, EXEC_END_LOST);
	assert_true(now_usec() - t0 >= 500 * 1000); /* it was looked at again for a while first */
}

static void test_supervisor_killed_is_lost(void **state)
{
	struct fx *f = *state;
	struct paths p;
	char script[512];
	const char *argv[] = { "sh", "-c", script, NULL };
	struct exec_spec spec;
	struct stat sb;
	int pid, cmd = 0;

	paths_init(f, &p, "shimkill");
	snprintf(script, sizeof(script), "echo $$ > %s.tmp && mv %s.tmp %s; exec sleep 100",
		 p.extra, p.extra, p.extra);
	spec = spec_of(&p, argv);
	start_ok(f, f->ex, 1, &spec, NULL, &pid);
	for (int i = 0; i < 1000 && stat(p.extra, &sb) < 0; i++)
		usleep(1000);
	cmd = read_int_file(p.extra);
	assert_true(cmd > 0);
	kill(pid, SIGKILL);
	wait_ends(f, 1);
	assert_int_equal(f->ends[0].res.kind, EXEC_END_LOST);
	assert_non_null(strstr(f->ends[0].msg, "killed by signal 9"));
	kill(-cmd, SIGKILL); /* the orphaned command, in its own group */
}

static void test_executor_table(void **state)
{
	struct fx *f = *state;
	char *err = NULL;

	assert_ptr_equal(executor_find("local"), &exec_local_ops);
	assert_null(executor_find("nope"));
	assert_null(executor_open("nope", f->loop, on_end, f, 1, f->shim, &err));
	assert_non_null(strstr(err, "unknown executor"));
	free(err);
	err = NULL;
	assert_null(executor_open("local", f->loop, on_end, f, 1, "/nonexistent/sluice-shim", &err));
	assert_non_null(strstr(err, "/nonexistent/sluice-shim"));
	free(err);
}

static void test_read_status(void **state)
{
	struct fx *f = *state;
	struct exec_result res;
	char path[128], *msg = NULL;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/st", f->dir);
	assert_int_equal(exec_read_status(path, &res, &msg), -ENOENT);
	fp = fopen(path, "w");
	fputs("kind=timeout\ncode=15\nstart_us=10\nend_us=20\nmessage=hi there\nfuture=1\n", fp);
	fclose(fp);
	assert_int_equal(exec_read_status(path, &res, &msg), 0);
	assert_int_equal(res.kind, EXEC_END_TIMEOUT);
	assert_int_equal(res.code, 15);
	assert_int_equal(res.start, 10);
	assert_int_equal(res.end, 20);
	assert_string_equal(res.message, "hi there");
	free(msg);
	fp = fopen(path, "w");
	fputs("kind=exploded\ncode=1\n", fp);
	fclose(fp);
	assert_int_equal(exec_read_status(path, &res, &msg), -EINVAL);
	assert_null(msg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_exit_zero, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exit_code, setup, teardown),
		cmocka_unit_test_setup_teardown(test_killed_by_signal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_output_appended, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_and_cwd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stdin_is_devnull, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_supervisor_setup_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_kills_group, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_escalates_to_sigkill, setup, teardown),
		cmocka_unit_test_setup_teardown(test_leftovers_killed_after_exit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_kills_own_session_grandchild, setup, teardown),
		cmocka_unit_test_setup_teardown(test_leftover_session_killed_after_exit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_kills_own_session_grandchild, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_right_after_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_slots, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_supervisor, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reattach_finished, setup, teardown),
		cmocka_unit_test_setup_teardown(test_survives_daemon_kill_and_reattach, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reattach_through_pid_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reattach_lost, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reattach_half_written_pid_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_supervisor_killed_is_lost, setup, teardown),
		cmocka_unit_test_setup_teardown(test_executor_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_status, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
