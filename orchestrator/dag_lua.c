/* The sandboxed Lua runtime for DAG files.
 *
 * Each file gets a fresh lua_State with an accounting allocator (memory cap) and a count hook
 * (instruction and wall-clock caps). Only base (minus dofile/loadfile/binary load), string (minus
 * dump), table, math and utf8 are opened; `require` may load modules from dags/lib/ only. Once a
 * cap is exceeded the state is "killed": the sandbox's pcall/xpcall re-raise, so user code cannot
 * catch its way around a cap. The DSL itself is the embedded prelude dsl.lua; this file runs it,
 * then converts the plain tables it exports into struct dag (dag.h). */
#include "orchestrator/dag_lua.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "orchestrator/cron.h"
#include "orchestrator/embedded.h"
#include "orchestrator/params.h"
#include "executors/executor.h"
#include "base/log.h"
#include "orchestrator/tz.h"

enum kill_reason { KILL_NONE, KILL_MEMORY, KILL_INSTRUCTIONS, KILL_TIME };

struct sandbox {
	const struct dag_lua_limits *lim;
	size_t used;
	uint64_t instructions;
	usec_t deadline;          /* mono_usec() */
	enum kill_reason killed;
	int last_line;            /* last line seen by the hook, for memory errors */
	lua_State *L;             /* the state, for locating a refused allocation */
	const char *display;
	const char *lib_dir;
	bool track_lines;         /* the second pass of an error without a location */
	int user_line;            /* last line of the DAG file itself that ran (track_lines) */
	/* The allocation last refused for the cap, which Lua asks for again after an emergency
	 * collection (lmem.c's tryagain): only a refusal that survives that retry kills the file. */
	bool refused;
	void *refused_ptr;
	size_t refused_osize, refused_nsize;
};

#define HOOK_EVERY 1000

static const char SANDBOX_KEY = 0; /* registry key: light userdata -> struct sandbox */
static const char ENV_KEY = 0;     /* registry key: the sandbox's global table */
static const char LIBS_KEY = 0;    /* registry key: table of loaded dags/lib modules */

static struct sandbox *get_sandbox(lua_State *L)
{
	lua_rawgetp(L, LUA_REGISTRYINDEX, &SANDBOX_KEY);
	struct sandbox *sb = lua_touserdata(L, -1);
	lua_pop(L, 1);
	return sb;
}

/* Records the line of the innermost running Lua function. Only reads the call chain
 * (lua_getstack and lua_getinfo "l" allocate nothing), so it is safe inside the allocator. */
static void note_line(struct sandbox *sb)
{
	lua_Debug ar;
	for (int level = 0; level < 8 && lua_getstack(sb->L, level, &ar); level++) {
		if (lua_getinfo(sb->L, "l", &ar) && ar.currentline > 0) {
			sb->last_line = ar.currentline;
			return;
		}
	}
}

/* The memory cap counts live memory: a request over it is refused once, Lua collects all garbage
 * (an emergency collection) and asks for the same block again; the file is killed only when that
 * retry is over the cap too, or when Lua did not retry (the next request is another one: the
 * refusal became an error the file could catch). A killed file's every later request fails, so
 * not even a pcall can go on with it. */
static void *sandbox_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct sandbox *sb = ud;
	size_t old = ptr ? osize : 0;

	if (nsize == 0) {
		free(ptr);
		sb->used -= old;
		return NULL;
	}
	bool over = nsize > old && sb->used + (nsize - old) > sb->lim->memory;
	if (sb->killed != KILL_MEMORY && sb->refused) {
		bool retry = ptr == sb->refused_ptr && osize == sb->refused_osize && nsize == sb->refused_nsize;
		sb->refused = false;
		if (!retry || over) {
			if (sb->L)
				note_line(sb);
			sb->killed = KILL_MEMORY;
		}
	} else if (sb->killed != KILL_MEMORY && over) {
		sb->refused = true;
		sb->refused_ptr = ptr;
		sb->refused_osize = osize;
		sb->refused_nsize = nsize;
		return NULL;
	}
	if (sb->killed == KILL_MEMORY)
		return NULL;
	void *p = realloc(ptr, nsize);
	if (p)
		sb->used = sb->used - old + nsize;
	return p;
}

static void sandbox_hook(lua_State *L, lua_Debug *ar)
{
	struct sandbox *sb = get_sandbox(L);
	lua_Debug here;

	if (ar->event == LUA_HOOKLINE) {
		/* Only lines of the DAG file itself, not of the prelude or of dags/lib modules. */
		if (lua_getinfo(L, "S", ar) && ar->source[0] == '@' && !strcmp(ar->source + 1, sb->display))
			sb->user_line = ar->currentline;
		return;
	}
	sb->instructions += HOOK_EVERY;
	if (sb->killed == KILL_NONE && lua_getstack(L, 0, &here) && lua_getinfo(L, "l", &here) &&
	    here.currentline > 0)
		sb->last_line = here.currentline;
	if (sb->killed == KILL_NONE && sb->instructions > sb->lim->instructions)
		sb->killed = KILL_INSTRUCTIONS;
	if (sb->killed == KILL_NONE && mono_usec() > sb->deadline)
		sb->killed = KILL_TIME;
	if (sb->killed != KILL_NONE)
		luaL_error(L, "sluice: DAG file stopped by a sandbox limit");
}

/* pcall/xpcall that cannot swallow a sandbox kill. */
static int sandbox_pcall_k(lua_State *L, int status, lua_KContext ctx)
{
	struct sandbox *sb = get_sandbox(L);
	if (sb->killed != KILL_NONE)
		return lua_error(L);
	if (status != LUA_OK && status != LUA_YIELD) {
		lua_pushboolean(L, 0);
		lua_pushvalue(L, -2);
		return 2;
	}
	return lua_gettop(L) - (int)ctx;
}

static int sandbox_pcall(lua_State *L)
{
	luaL_checkany(L, 1);
	lua_pushboolean(L, 1);
	lua_insert(L, 1);
	int status = lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 0, 0, sandbox_pcall_k);
	return sandbox_pcall_k(L, status, 0);
}

static int sandbox_xpcall(lua_State *L)
{
	int n = lua_gettop(L);
	luaL_checktype(L, 2, LUA_TFUNCTION);
	lua_pushboolean(L, 1);
	lua_pushvalue(L, 1);
	lua_rotate(L, 3, 2);
	int status = lua_pcallk(L, n - 2, LUA_MULTRET, 2, 2, sandbox_pcall_k);
	return sandbox_pcall_k(L, status, 2);
}

/* load() restricted to text chunks; the default environment is the sandbox's. */
static int sandbox_load(lua_State *L)
{
	int nargs = lua_gettop(L);
	lua_settop(L, 4);
	lua_pushstring(L, "t");
	lua_replace(L, 3);
	if (nargs < 4) {
		lua_rawgetp(L, LUA_REGISTRYINDEX, &ENV_KEY);
		lua_replace(L, 4);
	}
	lua_getglobal(L, "load"); /* the real load, still in the state's own globals */
	lua_insert(L, 1);
	lua_call(L, 4, LUA_MULTRET);
	return lua_gettop(L);
}

/* Lua runs __gc finalizers with hooks switched off, so a finalizer could loop forever out of
 * the instruction cap's reach: DAG files may not install them. (An object is only marked for
 * finalization if its metatable has __gc when setmetatable is called, so checking here is
 * enough.) */
static int sandbox_setmetatable(lua_State *L)
{
	if (lua_type(L, 2) == LUA_TTABLE) {
		lua_pushstring(L, "__gc");
		if (lua_rawget(L, 2) != LUA_TNIL)
			return luaL_error(L, "__gc metamethods are not allowed in DAG files");
		lua_pop(L, 1);
	}
	lua_getglobal(L, "setmetatable"); /* the real one, from the state's own globals */
	lua_insert(L, 1);
	lua_call(L, lua_gettop(L) - 1, 1);
	return 1;
}

static int sandbox_print(lua_State *L)
{
	struct strbuf out = {0};
	int n = lua_gettop(L);
	for (int i = 1; i <= n; i++) {
		size_t len;
		const char *s = luaL_tolstring(L, i, &len);
		if (i > 1)
			sb_putc(&out, '\t');
		sb_add(&out, s, len);
		lua_pop(L, 1);
	}
	log_debug("%s: print: %s", get_sandbox(L)->display, sb_str(&out));
	sb_free(&out);
	return 0;
}

static bool valid_module_name(const char *s)
{
	bool need_char = true;
	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s == '.') {
			if (need_char)
				return false;
			need_char = true;
		} else if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
			   (*s >= '0' && *s <= '9') || *s == '_' || *s == '-') {
			need_char = false;
		} else {
			return false;
		}
	}
	return !need_char;
}

/* require(name): loads dags/lib/<name with dots as slashes>.lua once, in the sandbox. */
static int sandbox_require(lua_State *L)
{
	struct sandbox *sb = get_sandbox(L);
	const char *name = luaL_checkstring(L, 1);
	char *content = NULL;
	size_t len = 0;

	if (!sb->lib_dir)
		return luaL_error(L, "require is not available here");
	if (!valid_module_name(name))
		return luaL_error(L, "require: invalid module name '%s' (use names like \"common\" or \"team.util\")", name);
	lua_rawgetp(L, LUA_REGISTRYINDEX, &LIBS_KEY);
	lua_getfield(L, -1, name);
	if (lua_toboolean(L, -1)) {
		if (lua_islightuserdata(L, -1))
			return luaL_error(L, "require: module '%s' requires itself (circular require)", name);
		return 1;
	}
	lua_pop(L, 1);
	char *rel = xstrdup(name);
	for (char *p = rel; *p; p++)
		if (*p == '.')
			*p = '/';
	char *path = xasprintf("%s/%s.lua", sb->lib_dir, rel);
	char *chunk = xasprintf("@lib/%s.lua", rel);
	/* Only a regular file: a FIFO or a device would block the loader (and the scheduler). */
	struct stat stb;
	int rc = stat(path, &stb) < 0 ? -errno : !S_ISREG(stb.st_mode) ? -EINVAL : read_file(path, 4u << 20, &content, &len);
	free(rel);
	if (rc < 0) {
		lua_pushfstring(L, "require: cannot load module '%s' from %s: %s", name, path,
				rc == -EINVAL ? "not a regular file" : strerror(-rc));
		free(path);
		free(chunk);
		return lua_error(L);
	}
	free(path);
	int st = luaL_loadbufferx(L, content, len, chunk, "t");
	free(content);
	free(chunk);
	if (st != LUA_OK)
		return lua_error(L);
	lua_rawgetp(L, LUA_REGISTRYINDEX, &ENV_KEY);
	lua_setupvalue(L, -2, 1);
	lua_pushlightuserdata(L, (void *)&LIBS_KEY); /* "loading" marker */
	lua_setfield(L, -3, name);
	lua_pushstring(L, name);
	lua_call(L, 1, 1);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		lua_pushboolean(L, 1);
	}
	lua_pushvalue(L, -1);
	lua_setfield(L, -3, name);
	return 1;
}

/* Helpers for the prelude (H.*) ------------------------------------------------------------ */

static int h_getline(lua_State *L)
{
	lua_Debug ar;
	int level = (int)luaL_checkinteger(L, 1);
	if (lua_getstack(L, level, &ar) && lua_getinfo(L, "l", &ar))
		lua_pushinteger(L, ar.currentline > 0 ? ar.currentline : 0);
	else
		lua_pushinteger(L, 0);
	return 1;
}

static int h_duration(lua_State *L)
{
	usec_t us;
	if (lua_type(L, 1) == LUA_TNUMBER) {
		double v = lua_tonumber(L, 1);
		if (v >= 0 && v < 1e11) {
			lua_pushinteger(L, (lua_Integer)(v * 1e6 + 0.5));
			return 1;
		}
	} else if (lua_type(L, 1) == LUA_TSTRING && parse_duration(lua_tostring(L, 1), &us) == 0) {
		lua_pushinteger(L, us);
		return 1;
	}
	const char *shown = luaL_tolstring(L, 1, NULL); /* pushes a value: push the results after */
	lua_pushnil(L);
	lua_pushfstring(L, "is not a valid duration: %s (use e.g. \"30s\", \"10m\", \"1h30m\", \"2d\")", shown);
	return 2;
}

static int h_cron(lua_State *L)
{
	char err[256];
	struct cron *c = cron_parse(luaL_checkstring(L, 1), err, sizeof(err));
	if (!c) {
		lua_pushnil(L);
		lua_pushstring(L, err);
		return 2;
	}
	cron_free(c);
	lua_pushboolean(L, 1);
	return 1;
}

static int h_tz(lua_State *L)
{
	char *err = NULL;
	const struct tz *z = tz_get(luaL_checkstring(L, 1), &err);
	if (!z) {
		lua_pushnil(L);
		lua_pushfstring(L, "%s", err ? err : "unknown time zone");
		free(err);
		return 2;
	}
	lua_pushboolean(L, 1);
	return 1;
}

static int h_date(lua_State *L)
{
	usec_t t;
	if (parse_iso8601(luaL_checkstring(L, 1), &t) < 0) {
		lua_pushnil(L);
		lua_pushfstring(L, "is not a valid date: \"%s\" (use \"2026-11-01\" or \"2026-11-01T03:00:00\")",
				lua_tostring(L, 1));
		return 2;
	}
	lua_pushboolean(L, 1);
	return 1;
}

static int h_executor(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	if (executor_find(name)) {
		lua_pushboolean(L, 1);
		return 1;
	}
	struct strbuf sb = {0};
	for (size_t i = 0; executor_backends[i]; i++)
		sb_printf(&sb, "%s%s", i ? ", " : "", executor_backends[i]->name);
	lua_pushnil(L);
	lua_pushfstring(L, "'%s' is not a known executor (known: %s)", name, sb_str(&sb));
	sb_free(&sb);
	return 2;
}

/* Sandbox construction ---------------------------------------------------------------------- */

static void open_libs(lua_State *L)
{
	static const luaL_Reg libs[] = {
		{LUA_GNAME, luaopen_base},     {LUA_STRLIBNAME, luaopen_string},
		{LUA_TABLIBNAME, luaopen_table}, {LUA_MATHLIBNAME, luaopen_math},
		{LUA_UTF8LIBNAME, luaopen_utf8}, {NULL, NULL},
	};
	for (const luaL_Reg *l = libs; l->func; l++) {
		luaL_requiref(L, l->name, l->func, 1);
		lua_pop(L, 1);
	}
	/* A DAG file is deterministic: no clock, and math.random starts from the same seed every time
	 * (the parse probe, dag_probe.h, relies on a file doing in the daemon what it did there). */
	lua_getglobal(L, LUA_MATHLIBNAME);
	lua_getfield(L, -1, "randomseed");
	lua_pushinteger(L, 20261101);
	lua_call(L, 1, 0);
	lua_pop(L, 1);
	/* string.dump would hand out binary chunks; remove it from the shared string table. */
	lua_getglobal(L, LUA_STRLIBNAME);
	lua_pushnil(L);
	lua_setfield(L, -2, "dump");
	lua_pop(L, 1);
	/* The strings' metatable is the prelude's too ("s:find()"): a DAG file may not reach it
	 * (getmetatable("") answers "string") nor change what it indexes. */
	lua_pushliteral(L, "");
	if (lua_getmetatable(L, -1)) {
		lua_pushliteral(L, "string");
		lua_setfield(L, -2, "__metatable");
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
}

/* Pushes a shallow copy of the table at idx: a DAG file gets its own string, table, math and
 * utf8 tables, so that replacing string.find there cannot change what the prelude calls. */
static void push_copy(lua_State *L, int idx)
{
	idx = lua_absindex(L, idx);
	lua_newtable(L);
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pushvalue(L, -2);
		lua_insert(L, -2);
		lua_rawset(L, -4);
	}
}

/* Builds the table of globals DAG files see and leaves it on the stack. */
static void push_sandbox_env(lua_State *L)
{
	static const char *const base_ok[] = {
		"assert", "error", "ipairs", "next", "pairs", "rawequal", "rawget", "rawlen", "rawset",
		"select", "getmetatable", "tonumber", "tostring", "type", "_VERSION",
		LUA_STRLIBNAME, LUA_TABLIBNAME, LUA_MATHLIBNAME, LUA_UTF8LIBNAME, NULL,
	};
	lua_newtable(L);
	for (const char *const *n = base_ok; *n; n++) {
		lua_getglobal(L, *n);
		if (lua_istable(L, -1)) {
			push_copy(L, -1);
			lua_remove(L, -2);
		}
		lua_setfield(L, -2, *n);
	}
	lua_pushcfunction(L, sandbox_pcall);
	lua_setfield(L, -2, "pcall");
	lua_pushcfunction(L, sandbox_xpcall);
	lua_setfield(L, -2, "xpcall");
	lua_pushcfunction(L, sandbox_load);
	lua_setfield(L, -2, "load");
	lua_pushcfunction(L, sandbox_print);
	lua_setfield(L, -2, "print");
	lua_pushcfunction(L, sandbox_setmetatable);
	lua_setfield(L, -2, "setmetatable");
	lua_pushcfunction(L, sandbox_require);
	lua_setfield(L, -2, "require");
	lua_pushvalue(L, -1);
	lua_setfield(L, -2, "_G");
}

static void push_helpers(lua_State *L, const char *display)
{
	static const luaL_Reg h[] = {
		{"getline", h_getline}, {"duration", h_duration}, {"cron", h_cron},
		{"tz", h_tz},           {"date", h_date},         {"executor", h_executor},
		{NULL, NULL},
	};
	luaL_newlib(L, h);
	lua_pushstring(L, display);
	lua_setfield(L, -2, "chunkname");
}

static int msgh(lua_State *L)
{
	if (!lua_isstring(L, 1) || lua_type(L, 1) == LUA_TNUMBER) {
		const char *tn = luaL_typename(L, 1);
		if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
			return 1;
		lua_pushfstring(L, "(error object is a %s value)", tn);
	}
	return 1;
}

/* Conversion of the exported tables into struct dag ---------------------------------------- */

struct conv {
	lua_State *L;
	const char *display;
	char err[1024];
	int err_line;
};

static char *opt_string(lua_State *L, int t, const char *k)
{
	char *s = NULL;
	if (lua_getfield(L, t, k) == LUA_TSTRING)
		s = xstrdup(lua_tostring(L, -1));
	lua_pop(L, 1);
	return s;
}

static lua_Integer opt_int(lua_State *L, int t, const char *k, lua_Integer def)
{
	lua_Integer v = def;
	if (lua_getfield(L, t, k) == LUA_TNUMBER)
		v = lua_tointeger(L, -1);
	lua_pop(L, 1);
	return v;
}

static bool opt_bool(lua_State *L, int t, const char *k, bool def)
{
	bool v = def;
	if (lua_getfield(L, t, k) == LUA_TBOOLEAN)
		v = lua_toboolean(L, -1);
	lua_pop(L, 1);
	return v;
}

/* Reads a list of strings at t[k]; returns the count and stores a malloc'd array. */
static size_t opt_strlist(lua_State *L, int t, const char *k, char ***out, bool null_term)
{
	size_t n = 0;
	*out = NULL;
	if (lua_getfield(L, t, k) == LUA_TTABLE) {
		n = (size_t)lua_rawlen(L, -1);
		*out = xcalloc(n + 1, sizeof(char *));
		for (size_t i = 0; i < n; i++) {
			lua_rawgeti(L, -1, (lua_Integer)i + 1);
			(*out)[i] = xstrdup(lua_tostring(L, -1) ? lua_tostring(L, -1) : "");
			lua_pop(L, 1);
		}
	}
	lua_pop(L, 1);
	(void)null_term;
	return n;
}

static cJSON *lua_to_json(lua_State *L, int idx, int depth);

static bool is_sequence(lua_State *L, int idx)
{
	lua_Integer n = (lua_Integer)lua_rawlen(L, idx), count = 0;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > n) {
			lua_pop(L, 1);
			return false;
		}
		count++;
	}
	return count == n && n > 0;
}

static cJSON *lua_to_json(lua_State *L, int idx, int depth)
{
	idx = lua_absindex(L, idx);
	switch (lua_type(L, idx)) {
	case LUA_TBOOLEAN:
		return cJSON_CreateBool(lua_toboolean(L, idx));
	case LUA_TNUMBER:
		if (lua_isinteger(L, idx))
			return cJSON_CreateNumber((double)lua_tointeger(L, idx));
		return cJSON_CreateNumber(lua_tonumber(L, idx));
	case LUA_TSTRING:
		return cJSON_CreateString(lua_tostring(L, idx));
	case LUA_TTABLE:
		break;
	default:
		return cJSON_CreateNull();
	}
	/* Each level holds a few stack slots while it walks its table: make room, and stop at a
	 * depth the prelude already refuses (so a crafted table cannot overflow the Lua stack). */
	if (depth > 32 || !lua_checkstack(L, 8))
		return cJSON_CreateNull();
	if (is_sequence(L, idx)) {
		cJSON *arr = cJSON_CreateArray();
		lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
		for (lua_Integer i = 1; i <= n; i++) {
			lua_rawgeti(L, idx, i);
			cJSON_AddItemToArray(arr, lua_to_json(L, -1, depth + 1));
			lua_pop(L, 1);
		}
		return arr;
	}
	cJSON *obj = cJSON_CreateObject();
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pushvalue(L, -2);
		const char *k = lua_tostring(L, -1); /* converts a number key on the copy only */
		cJSON_AddItemToObject(obj, k ? k : "?", lua_to_json(L, -2, depth + 1));
		lua_pop(L, 2);
	}
	return obj;
}

static void read_callback(lua_State *L, int t, const char *k, struct callback *cb)
{
	if (lua_getfield(L, t, k) == LUA_TTABLE) {
		int ct = lua_gettop(L);
		cb->cmd = opt_string(L, ct, "cmd");
		cb->webhook = opt_string(L, ct, "webhook");
	}
	lua_pop(L, 1);
}

static void read_env(lua_State *L, int t, struct task *task)
{
	if (lua_getfield(L, t, "env") == LUA_TTABLE) {
		int et = lua_gettop(L);
		size_t cap = 8;
		task->env = xcalloc(cap, sizeof(struct kv));
		lua_pushnil(L);
		while (lua_next(L, et)) {
			if (task->n_env == cap) {
				cap *= 2;
				task->env = xrealloc(task->env, cap * sizeof(struct kv));
			}
			task->env[task->n_env].key = xstrdup(lua_tostring(L, -2));
			task->env[task->n_env].value = xstrdup(lua_tostring(L, -1));
			task->n_env++;
			lua_pop(L, 1);
		}
	}
	lua_pop(L, 1);
}

static const char *operator_name(const char *kind)
{
	if (!strcmp(kind, "map"))
		return "MappedTask";
	if (!strcmp(kind, "sensor"))
		return "Sensor";
	return "ShellTask";
}

/* Reads the exported task table at stack index t into *task. */
static void read_task(lua_State *L, int t, struct task *task)
{
	char *kind = opt_string(L, t, "kind");
	task->id = opt_string(L, t, "id");
	task->line = (int)opt_int(L, t, "line", 0);
	task->kind = !strcmp(kind, "sensor") ? TASK_SENSOR : TASK_CMD;
	task->mapped = !strcmp(kind, "map");
	task->operator_name = xstrdup(operator_name(kind));
	free(kind);

	lua_getfield(L, t, "vals");
	int v = lua_gettop(L);
	if (lua_getfield(L, v, "cmd") == LUA_TTABLE) {
		lua_pop(L, 1);
		opt_strlist(L, v, "cmd", &task->cmd_argv, true);
	} else {
		lua_pop(L, 1);
		task->cmd_shell = opt_string(L, v, "cmd");
	}
	task->retries = (int)opt_int(L, v, "retries", 0);
	task->retry_delay = opt_int(L, v, "retry_delay", DAG_DEFAULT_RETRY_DELAY);
	task->retry_exponential_backoff = opt_bool(L, v, "retry_exponential_backoff", false);
	task->max_retry_delay = opt_int(L, v, "max_retry_delay", 0);
	task->execution_timeout = opt_int(L, v, "execution_timeout", 0);
	task->pool = opt_string(L, v, "pool");
	if (!task->pool)
		task->pool = xstrdup("default_pool");
	task->pool_slots = (int)opt_int(L, v, "pool_slots", 1);
	task->executor = opt_string(L, v, "executor");
	if (!task->executor)
		task->executor = xstrdup("local");
	if (lua_getfield(L, v, "exec_options") == LUA_TTABLE)
		task->exec_options = lua_to_json(L, -1, 0);
	lua_pop(L, 1);
	read_env(L, v, task);
	char *tr = opt_string(L, v, "trigger_rule");
	task->trigger_rule = tr ? (enum trigger_rule)trigger_rule_parse(tr) : TR_ALL_SUCCESS;
	free(tr);
	if (lua_getfield(L, v, "no_retry_exit_codes") == LUA_TTABLE) {
		task->n_no_retry = (size_t)lua_rawlen(L, -1);
		task->no_retry_exit_codes = xcalloc(task->n_no_retry, sizeof(int));
		for (size_t i = 0; i < task->n_no_retry; i++) {
			lua_rawgeti(L, -1, (lua_Integer)i + 1);
			task->no_retry_exit_codes[i] = (int)lua_tointeger(L, -1);
			lua_pop(L, 1);
		}
	}
	lua_pop(L, 1);
	task->priority_weight = (int)opt_int(L, v, "priority_weight", 1);
	if (lua_getfield(L, v, "limits") == LUA_TTABLE) {
		int lt = lua_gettop(L);
		task->limits.memory = opt_int(L, lt, "memory", 0);
		task->limits.cpu_seconds = opt_int(L, lt, "cpu_seconds", 0);
		task->limits.open_files = opt_int(L, lt, "open_files", 0);
		task->limits.processes = opt_int(L, lt, "processes", 0);
		task->limits.file_size = opt_int(L, lt, "file_size", 0);
	}
	lua_pop(L, 1);
	task->cwd = opt_string(L, v, "cwd");
	task->description = opt_string(L, v, "description");
	task->doc_md = opt_string(L, v, "doc_md");
	task->run_as = opt_string(L, v, "run_as");
	if (task->mapped) {
		if (lua_getfield(L, v, "over") == LUA_TTABLE) {
			lua_pop(L, 1);
			task->n_over = opt_strlist(L, v, "over", &task->over_items, false);
		} else {
			lua_pop(L, 1);
			task->over_template = opt_string(L, v, "over");
		}
	}
	if (task->kind == TASK_SENSOR) {
		task->sensor_path = opt_string(L, v, "path");
		task->poke_interval = opt_int(L, v, "poke_interval", DAG_DEFAULT_POKE_INTERVAL);
		task->sensor_timeout = opt_int(L, v, "timeout", DAG_DEFAULT_SENSOR_TIMEOUT);
	}
	lua_pop(L, 1); /* vals */

	if (lua_getfield(L, t, "upstream") == LUA_TTABLE) {
		task->n_up = (size_t)lua_rawlen(L, -1);
		task->upstream = xcalloc(task->n_up ? task->n_up : 1, sizeof(int));
		for (size_t i = 0; i < task->n_up; i++) {
			lua_rawgeti(L, -1, (lua_Integer)i + 1);
			task->upstream[i] = (int)lua_tointeger(L, -1) - 1;
			lua_pop(L, 1);
		}
	}
	lua_pop(L, 1);
}

/* Parses an ISO date; one without an offset ("2026-11-01", "2026-11-01T03:00") is a wall-clock
 * time in zone: a time in a DST gap means the first instant after the gap, a time in an overlap
 * the first occurrence (as for cron). */
int dag_parse_date(const char *s, const char *zone, usec_t *out, char **err)
{
	usec_t t;
	if (parse_iso8601(s, &t) < 0) {
		*err = xstrdup("not a valid date");
		return -EINVAL;
	}
	const char *tpart = strpbrk(s, "Tt ");
	if (tpart && (strpbrk(tpart, "Zz+") || strchr(tpart, '-'))) {
		*out = t;
		return 0;
	}
	const struct tz *z = tz_get(zone, err);
	if (!z)
		return -EINVAL;
	int64_t local = t / USEC_PER_SEC, utc[2];
	tz_local_to_utc(z, local, utc);
	*out = utc[0] * USEC_PER_SEC + t % USEC_PER_SEC;
	return 0;
}

/* Converts a naive or offset date string into UTC, reading naive ones in the DAG's zone. */
static int read_date(struct conv *cv, int v, const char *k, const char *zone, usec_t *out)
{
	char *s = opt_string(cv->L, v, k);
	*out = USEC_NONE;
	if (!s)
		return 0;
	char *err = NULL;
	int rc = dag_parse_date(s, zone, out, &err);
	if (rc < 0)
		snprintf(cv->err, sizeof(cv->err), "dag: %s \"%s\": %s", k, s, err ? err : "invalid");
	free(err);
	free(s);
	return rc;
}

/* Field k of table t as a JSON object (an empty or missing table is {}). */
static cJSON *read_object(lua_State *L, int t, const char *k)
{
	cJSON *o = lua_getfield(L, t, k) == LUA_TTABLE ? lua_to_json(L, -1, 0) : NULL;
	lua_pop(L, 1);
	if (!cJSON_IsObject(o)) { /* an empty table converts to an empty array */
		cJSON_Delete(o);
		o = cJSON_CreateObject();
	}
	return o;
}

static bool text_ok(const char *s) { return !s || utf8_valid(s, strlen(s)); }

static bool json_text_ok(const cJSON *j)
{
	for (const cJSON *it = j ? j->child : NULL; it; it = it->next)
		if (!text_ok(it->string) || (cJSON_IsString(it) && !text_ok(it->valuestring)) || !json_text_ok(it))
			return false;
	return true;
}

/* The first field of d that the API shows and that is not valid UTF-8 (clients could not read
 * the JSON), or NULL. */
static const char *bad_text(const struct dag *d)
{
	if (!text_ok(d->description))
		return "description";
	if (!text_ok(d->doc_md))
		return "doc_md";
	if (!text_ok(d->owner))
		return "owner";
	for (size_t i = 0; i < d->n_tags; i++)
		if (!text_ok(d->tags[i]))
			return "tags";
	if (!json_text_ok(d->params) || !json_text_ok(d->param_specs))
		return "params";
	for (size_t i = 0; i < d->ntasks; i++)
		if (!text_ok(d->tasks[i].description) || !text_ok(d->tasks[i].doc_md))
			return "a task's description or doc_md";
	return NULL;
}

/* The params' schemas are well formed and their defaults fit them; a param without a default
 * needs a trigger to give it, so a scheduled DAG may not have one (as in Airflow). */
static int check_params(struct dag *d, char *err, size_t errsz)
{
	cJSON *spec;
	cJSON_ArrayForEach(spec, d->param_specs) {
		cJSON *schema = cJSON_GetObjectItemCaseSensitive(spec, "schema");
		if (cJSON_IsArray(schema) && cJSON_GetArraySize(schema) == 0) /* {} read from Lua */
			cJSON_ReplaceItemInObjectCaseSensitive(spec, "schema", schema = cJSON_CreateObject());
		char *msg = NULL;
		const cJSON *def = cJSON_GetObjectItemCaseSensitive(d->params, spec->string);
		if (params_check_schema(schema, &msg) < 0) {
			snprintf(err, errsz, "dag: param '%s': %s", spec->string, msg);
			free(msg);
			return -1;
		}
		if (def && params_check_value(schema, def, spec->string, &msg) < 0) {
			snprintf(err, errsz, "dag: the default of %s", msg); /* "param 'x': 0 is less than ..." */
			free(msg);
			return -1;
		}
		if (!def && d->schedule) {
			snprintf(err, errsz, "dag: param '%s' has no default, so the DAG cannot run on a schedule "
				 "(give it a default, or set no schedule)", spec->string);
			return -1;
		}
	}
	return 0;
}

/* Reads one exported DAG at stack index t. Returns NULL with cv->err set on error. */
static struct dag *read_dag(struct conv *cv, int t, const char *path, const char *version)
{
	lua_State *L = cv->L;
	struct dag *d = xcalloc(1, sizeof(*d));
	d->refcount = 1;
	d->dag_id = opt_string(L, t, "id");
	d->line = (int)opt_int(L, t, "line", 0);
	d->fileloc = xstrdup(path);
	snprintf(d->version, sizeof(d->version), "%s", version);

	/* The ids become file names: checked here, whatever the Lua side did (a DAG file can replace
	 * the functions the prelude checks with). */
	if (!d->dag_id || !valid_id(d->dag_id)) {
		snprintf(cv->err, sizeof(cv->err), "dag id '%.300s' is invalid: use letters, digits, '_', '.' and '-'",
			 d->dag_id ? d->dag_id : "");
		cv->err_line = d->line;
		goto fail;
	}
	lua_getfield(L, t, "vals");
	int v = lua_gettop(L);
	d->description = opt_string(L, v, "description");
	d->doc_md = opt_string(L, v, "doc_md");
	d->schedule = opt_string(L, v, "schedule");
	d->timezone = opt_string(L, v, "timezone");
	if (!d->timezone)
		d->timezone = xstrdup("UTC");
	d->catchup = opt_bool(L, v, "catchup", false);
	d->max_active_runs = (int)opt_int(L, v, "max_active_runs", DAG_DEFAULT_MAX_ACTIVE_RUNS);
	d->max_active_tasks = (int)opt_int(L, v, "max_active_tasks", DAG_DEFAULT_MAX_ACTIVE_TASKS);
	d->dagrun_timeout = opt_int(L, v, "dagrun_timeout", 0);
	d->n_tags = opt_strlist(L, v, "tags", &d->tags, false);
	d->owner = opt_string(L, v, "owner");
	d->params = read_object(L, v, "params");
	d->param_specs = read_object(L, v, "param_specs");
	if (check_params(d, cv->err, sizeof(cv->err)) < 0) {
		cv->err_line = d->line;
		lua_pop(L, 1);
		goto fail;
	}
	read_callback(L, v, "on_failure", &d->on_failure);
	read_callback(L, v, "on_success", &d->on_success);
	read_callback(L, v, "on_retry", &d->on_retry);
	if (read_date(cv, v, "start_date", d->timezone, &d->start_date) < 0 ||
	    read_date(cv, v, "end_date", d->timezone, &d->end_date) < 0) {
		cv->err_line = d->line;
		lua_pop(L, 1);
		goto fail;
	}
	lua_pop(L, 1); /* vals */

	lua_getfield(L, t, "tasks");
	d->ntasks = (size_t)lua_rawlen(L, -1);
	d->tasks = xcalloc(d->ntasks ? d->ntasks : 1, sizeof(struct task));
	for (size_t i = 0; i < d->ntasks; i++) {
		lua_rawgeti(L, -1, (lua_Integer)i + 1);
		read_task(L, lua_gettop(L), &d->tasks[i]);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	const char *bad = bad_text(d);
	if (bad) {
		snprintf(cv->err, sizeof(cv->err), "dag '%s': %s is not valid UTF-8", d->dag_id, bad);
		cv->err_line = d->line;
		goto fail;
	}
	for (size_t i = 0; i < d->ntasks; i++) {
		if (!d->tasks[i].id || !valid_id(d->tasks[i].id)) {
			snprintf(cv->err, sizeof(cv->err), "task id '%.300s' is invalid: use letters, digits, '_', '.' and '-'",
				 d->tasks[i].id ? d->tasks[i].id : "");
			cv->err_line = d->tasks[i].line;
			goto fail;
		}
	}

	if (d->ntasks == 0) {
		snprintf(cv->err, sizeof(cv->err), "dag '%s' has no tasks", d->dag_id);
		cv->err_line = d->line;
		goto fail;
	}
	if (d->end_date != USEC_NONE && d->start_date != USEC_NONE && d->end_date < d->start_date) {
		snprintf(cv->err, sizeof(cv->err), "dag '%s': end_date is before start_date", d->dag_id);
		cv->err_line = d->line;
		goto fail;
	}
	if (dag_finish(d, cv->err, sizeof(cv->err), &cv->err_line) < 0)
		goto fail;
	return d;
fail:
	dag_unref(d);
	return NULL;
}

static void set_error(struct dag_load *out, const char *display, int line, const char *msg)
{
	if (line > 0)
		out->error = xasprintf("%s:%d: %s", display, line, msg);
	else
		out->error = xasprintf("%s: %s", display, msg);
	out->error_line = line;
}

/* Extracts the line from a Lua message "display:LINE: ..." when it names our file. */
static int line_of(const char *msg, const char *display)
{
	size_t n = strlen(display);
	if (strncmp(msg, display, n) || msg[n] != ':')
		return 0;
	return atoi(msg + n + 1);
}

static void set_lua_error(struct dag_load *out, struct sandbox *sb, const char *msg)
{
	switch (sb->killed) {
	case KILL_MEMORY: {
		char m[128];
		snprintf(m, sizeof(m), "DAG file exceeded the memory limit of %zu MiB", sb->lim->memory >> 20);
		set_error(out, sb->display, sb->last_line, m);
		return;
	}
	case KILL_INSTRUCTIONS:
		set_error(out, sb->display, sb->last_line,
			  "DAG file exceeded the instruction limit (an endless loop?)");
		return;
	case KILL_TIME: {
		char m[128], d[32];
		format_duration(sb->lim->wall, d, sizeof(d));
		snprintf(m, sizeof(m), "DAG file took longer than the %s time limit to load", d);
		set_error(out, sb->display, sb->last_line, m);
		return;
	}
	case KILL_NONE:
		break;
	}
	if (!msg)
		msg = "unknown error";
	size_t n = strlen(sb->display);
	/* Lua names the file in most messages, but not all ("attempt to load a binary chunk",
	 * error("x", 0)): those get the file's name too, as every import error has. */
	if (strncmp(msg, sb->display, n) || msg[n] != ':') {
		set_error(out, sb->display, 0, msg);
		return;
	}
	out->error = xstrdup(msg);
	out->error_line = line_of(out->error, sb->display);
}

/* The prelude compiled once per process: loading Lua bytecode costs a fraction of parsing its
 * source again for every file (most of a small DAG file's load time). */
static struct strbuf prelude_bin;

static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud)
{
	(void)L;
	sb_add((struct strbuf *)ud, p, sz);
	return 0;
}

static void compile_prelude(void)
{
	const struct embedded_file *prelude = embedded_find(orchestrator_files, "dsl.lua");
	lua_State *L = luaL_newstate();
	if (!L || !prelude || luaL_loadbufferx(L, prelude->data, prelude->len, "=dsl", "t") != LUA_OK)
		fatalx("cannot load the embedded DSL prelude: %s", L ? lua_tostring(L, -1) : "out of memory");
	lua_dump(L, dump_writer, &prelude_bin, 0); /* with debug information: lines in its errors */
	lua_close(L);
}

static int load_prelude(lua_State *L)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, compile_prelude);
	return luaL_loadbufferx(L, sb_str(&prelude_bin), prelude_bin.len, "=dsl", "b");
}

/* Runs the prelude and the user's chunk; on success leaves the export list on the stack. */
static int run_file(lua_State *L, struct sandbox *sb, const char *content, size_t len,
		    struct dag_load *out)
{
	char *chunkname = xasprintf("@%s", sb->display);
	int rc = -EINVAL;

	lua_pushcfunction(L, msgh);
	int h = lua_gettop(L);
	if (load_prelude(L) != LUA_OK)
		fatalx("cannot load the embedded DSL prelude: %s", lua_tostring(L, -1));
	push_helpers(L, sb->display);
	if (lua_pcall(L, 1, 2, h) != LUA_OK) {
		set_lua_error(out, sb, lua_tostring(L, -1));
		goto out;
	}
	/* stack: h, dslglobals, export */
	int exp = lua_gettop(L);
	push_sandbox_env(L);
	lua_pushvalue(L, -1);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &ENV_KEY);
	lua_pushnil(L);
	while (lua_next(L, exp - 1)) { /* copy dag = ... into the env */
		lua_pushvalue(L, -2);
		lua_insert(L, -2);
		lua_rawset(L, -4);
	}
	int env = lua_gettop(L);
	if (luaL_loadbufferx(L, content, len, chunkname, "t") != LUA_OK) {
		set_lua_error(out, sb, lua_tostring(L, -1));
		goto out;
	}
	lua_pushvalue(L, env);
	lua_setupvalue(L, -2, 1);
	int base = lua_gettop(L) - 1;
	if (lua_pcall(L, 0, LUA_MULTRET, h) != LUA_OK) {
		set_lua_error(out, sb, lua_tostring(L, -1));
		goto out;
	}
	int nret = lua_gettop(L) - base;
	lua_pushvalue(L, exp);
	lua_insert(L, base + 1);
	lua_pushinteger(L, nret);
	lua_insert(L, base + 2);
	if (lua_pcall(L, nret + 1, 1, h) != LUA_OK) {
		set_lua_error(out, sb, lua_tostring(L, -1));
		goto out;
	}
	rc = 0;
out:
	free(chunkname);
	return rc;
}

static int load_once(const char *path, const char *display, const char *content, size_t len,
		     const char *lib_dir, const struct dag_lua_limits *limits, bool track_lines, int *user_line,
		     struct dag_load *out)
{
	static const struct dag_lua_limits defaults = {
		DAG_LUA_DEFAULT_MEMORY, DAG_LUA_DEFAULT_INSTRUCTIONS, DAG_LUA_DEFAULT_WALL};
	struct sandbox sb = {
		.lim = limits ? limits : &defaults,
		.display = display,
		.lib_dir = lib_dir,
		.track_lines = track_lines,
	};
	char version[65];
	int rc = -EINVAL;

	memset(out, 0, sizeof(*out));
	sb.deadline = mono_usec() + sb.lim->wall;
	lua_State *L = lua_newstate(sandbox_alloc, &sb);
	if (!L) {
		set_error(out, display, 0, "cannot create a Lua state");
		return -ENOMEM;
	}
	sb.L = L;
	lua_pushlightuserdata(L, &sb);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &SANDBOX_KEY);
	lua_newtable(L);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &LIBS_KEY);
	open_libs(L);
	lua_sethook(L, sandbox_hook, LUA_MASKCOUNT | (track_lines ? LUA_MASKLINE : 0), HOOK_EVERY);

	if (run_file(L, &sb, content, len, out) < 0)
		goto out;

	/* Conversion reads only tables the prelude built, with raw accesses, so no user code runs;
	 * the caps stay in force anyway. */
	sha256_hex(content, len, version);
	struct conv cv = {.L = L, .display = display};
	int list = lua_gettop(L);
	size_t n = (size_t)lua_rawlen(L, list);
	out->dags = xcalloc(n ? n : 1, sizeof(struct dag *));
	for (size_t i = 0; i < n; i++) {
		lua_rawgeti(L, list, (lua_Integer)i + 1);
		struct dag *d = read_dag(&cv, lua_gettop(L), path, version);
		lua_pop(L, 1);
		if (!d) {
			set_error(out, display, cv.err_line, cv.err);
			goto out;
		}
		out->dags[out->ndags++] = d;
	}
	rc = 0;
out:
	/* Finalizers a file installed run inside lua_close(): a killed state aborts each of them
	 * within HOOK_EVERY instructions. */
	if (sb.killed == KILL_NONE)
		sb.killed = KILL_TIME;
	lua_close(L);
	if (rc < 0) {
		for (size_t i = 0; i < out->ndags; i++)
			dag_unref(out->dags[i]);
		free(out->dags);
		out->dags = NULL;
		out->ndags = 0;
	}
	if (user_line)
		*user_line = sb.user_line;
	return rc;
}

int dag_lua_load(const char *path, const char *display, const char *content, size_t len,
		 const char *lib_dir, const struct dag_lua_limits *limits, struct dag_load *out)
{
	int rc = load_once(path, display, content, len, lib_dir, limits, false, NULL, out);
	if (rc == 0 || !out->error || out->error_line > 0)
		return rc;
	/* An error raised where Lua cannot say the place (the DSL call was a tail call, as in
	 * `return dag { ... }`, so the caller's frame is gone): the file runs again, deterministic
	 * as it is, with a line hook that notes the last line of the file that ran. */
	struct dag_load again;
	int line = 0;
	load_once(path, display, content, len, lib_dir, limits, true, &line, &again);
	dag_load_clear(&again);
	if (line > 0) {
		size_t n = strlen(display);
		const char *msg = !strncmp(out->error, display, n) && out->error[n] == ':' ? out->error + n + 1
											 : out->error;
		while (*msg == ' ')
			msg++;
		char *with = xasprintf("%s:%d: %s", display, line, msg);
		free(out->error);
		out->error = with;
		out->error_line = line;
	}
	return rc;
}

void dag_load_clear(struct dag_load *ld)
{
	for (size_t i = 0; i < ld->ndags; i++)
		dag_unref(ld->dags[i]);
	free(ld->dags);
	free(ld->error);
	memset(ld, 0, sizeof(*ld));
}
