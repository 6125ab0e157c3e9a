/*
 * bindings/main.c -- the `rllua` executable.
 *
 * A Lua 5.4 interpreter with the rl tensor library loaded as the global
 * `rl`.  This file provides:
 *
 *   - a command line compatible with the stock `lua` binary:
 *       rllua [options] [script [args]]
 *     with -e, -l (also `-l g=mod`), -i, -v, -h/--help, `--` and `-`, the
 *     global `arg` table laid out exactly as lua does, and `...` for the
 *     script's arguments;
 *   - library lookup: package.path is prefixed with $RLLUA_PATH (when set),
 *     then <exe dir>/lua and <exe dir>/../share/lua/5.4 (install layout),
 *     and `rl.core` is preloaded from the statically linked luaopen_rl_core;
 *   - error reporting ("rllua: msg" plus a traceback, exit status 1) and
 *     Ctrl-C interruption of running Lua code ("interrupted!").
 *
 * The interactive REPL is in repl.c and its tab completion in complete.c,
 * as lua.c keeps the REPL apart from the library; rllua.h is what the
 * three share.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "rllua.h"

#define DIR_MAX 4096

/* Provided by bindings/init.c. */
int luaopen_rl_core(lua_State *L);

/* ------------------------------------------------------------------ */
/* Interruption                                                        */
/* ------------------------------------------------------------------ */

lua_State *rllua_L;                       /* the one interpreter state */
static volatile sig_atomic_t g_running;   /* Lua code is executing */
volatile sig_atomic_t rllua_sigint;       /* a SIGINT arrived */

static void interrupt_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    luaL_error(L, "interrupted!");
}

/* Installs `handler` for SIGINT without SA_RESTART, so that a blocking
   read returns EINTR and the REPL notices the Ctrl-C. */
void rllua_set_sigint(void (*handler)(int), struct sigaction *old)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, old);
}

void rllua_on_sigint(int sig)
{
    (void)sig;
    rllua_sigint = 1;
    if (g_running) {
        /* A second Ctrl-C kills a process stuck outside Lua code. */
        rllua_set_sigint(SIG_DFL, NULL);
        lua_sethook(rllua_L, interrupt_hook,
                    LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
    }
}

/* ------------------------------------------------------------------ */
/* Calling Lua and reporting errors                                    */
/* ------------------------------------------------------------------ */

/* Turns the error object at index 1 into a string, honouring __tostring. */
static const char *error_text(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);

    if (msg != NULL)
        return msg;
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
        return lua_tostring(L, -1);
    return lua_pushfstring(L, "(error object is a %s value)",
                           luaL_typename(L, 1));
}

static int msg_traceback(lua_State *L)
{
    luaL_traceback(L, L, error_text(L), 1);
    return 1;
}

int rllua_msg_plain(lua_State *L)
{
    error_text(L);
    return 1;
}

/* Calls the function below `narg` arguments with `handler` as message
   handler; Ctrl-C interrupts it meanwhile. */
int rllua_docall(lua_State *L, int narg, int nres, lua_CFunction handler)
{
    struct sigaction old;
    int base = lua_gettop(L) - narg;
    int status;

    lua_pushcfunction(L, handler);
    lua_insert(L, base);
    rllua_sigint = 0;
    rllua_set_sigint(rllua_on_sigint, &old);
    g_running = 1;
    status = lua_pcall(L, narg, nres, base);
    g_running = 0;
    sigaction(SIGINT, &old, NULL);
    if (rllua_sigint) {          /* drop a hook that did not fire in time */
        lua_sethook(L, NULL, 0, 0);
        rllua_sigint = 0;
    }
    lua_remove(L, base);
    return status;
}

/* Prints and pops the error message on top when `status` is an error. */
int rllua_report(lua_State *L, int status, const char *prefix)
{
    const char *msg;

    if (status == LUA_OK)
        return status;
    fflush(stdout);
    msg = lua_tostring(L, -1);
    if (msg == NULL)
        msg = "(error object is not a string)";
    if (prefix != NULL)
        fprintf(stderr, "%s: ", prefix);
    fprintf(stderr, "%s\n", msg);
    fflush(stderr);
    lua_pop(L, 1);
    return status;
}

/* ------------------------------------------------------------------ */
/* Command line                                                        */
/* ------------------------------------------------------------------ */

enum { HAS_ERROR = 1, HAS_I = 2, HAS_V = 4, HAS_E = 8, HAS_HELP = 16 };

static void print_usage(FILE *out, const char *badopt)
{
    if (badopt != NULL) {
        if ((badopt[1] == 'e' || badopt[1] == 'l') && badopt[2] == '\0')
            fprintf(stderr, "%s: '%s' needs argument\n", PROGNAME, badopt);
        else
            fprintf(stderr, "%s: unrecognized option '%s'\n", PROGNAME,
                    badopt);
    }
    fprintf(out,
            "usage: %s [options] [script [args]]\n"
            "Available options are:\n"
            "  -e stat   execute string 'stat'\n"
            "  -i        enter interactive mode after executing 'script'\n"
            "  -l mod    require library 'mod' into global 'mod'\n"
            "  -l g=mod  require library 'mod' into global 'g'\n"
            "  -v        show version information\n"
            "  -h, --help  show this help\n"
            "  --        stop handling options\n"
            "  -         stop handling options and execute stdin\n"
            "Without a script, the REPL starts when stdin is a terminal;\n"
            "otherwise stdin is run as a script.\n",
            PROGNAME);
    fflush(out);
}

/* Scans the options.  On return *script is the index of the script (argc
   when there is none), or of the bad option when HAS_ERROR is set. */
static int collect_args(char **argv, int *script)
{
    int flags = 0;
    int i;

    for (i = 1; argv[i] != NULL; i++) {
        const char *a = argv[i];

        *script = i;
        if (a[0] != '-')
            return flags;
        if (strcmp(a, "--help") == 0)
            return flags | HAS_HELP;
        switch (a[1]) {
        case '\0':                       /* "-": script from stdin */
            return flags;
        case '-':                        /* "--": script follows */
            if (a[2] != '\0')
                return HAS_ERROR;
            *script = i + 1;
            return flags;
        case 'h':
            return a[2] == '\0' ? flags | HAS_HELP : HAS_ERROR;
        case 'i':
        case 'v':
            if (a[2] != '\0')
                return HAS_ERROR;
            flags |= a[1] == 'i' ? HAS_I : HAS_V;
            break;
        case 'e':
        case 'l':
            if (a[1] == 'e')
                flags |= HAS_E;
            if (a[2] == '\0' && argv[++i] == NULL)
                return HAS_ERROR;
            break;
        default:
            return HAS_ERROR;
        }
    }
    *script = i;
    return flags;
}

/* arg[0] is the script (or the interpreter when there is none), positive
   indices its arguments, negative ones the interpreter and options. */
static void create_arg_table(lua_State *L, char **argv, int argc, int script)
{
    int i;

    if (script == argc)
        script = 0;
    lua_createtable(L, argc - script, script + 1);
    for (i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - script);
    }
    lua_setglobal(L, "arg");
}

static int run_string(lua_State *L, const char *code)
{
    int status = luaL_loadbuffer(L, code, strlen(code), "=(command line)");

    if (status == LUA_OK)
        status = rllua_docall(L, 0, 0, msg_traceback);
    return rllua_report(L, status, PROGNAME);
}

/* `-l mod` sets global mod = require 'mod'; `-l g=mod` sets global g. */
static int run_library(lua_State *L, const char *spec)
{
    const char *eq = strchr(spec, '=');
    const char *mod = eq != NULL ? eq + 1 : spec;
    int status;

    lua_getglobal(L, "require");
    lua_pushstring(L, mod);
    status = rllua_docall(L, 1, 1, msg_traceback);
    if (status != LUA_OK)
        return rllua_report(L, status, PROGNAME);
    lua_pushglobaltable(L);
    lua_pushlstring(L, spec, eq != NULL ? (size_t)(eq - spec) : strlen(spec));
    lua_pushvalue(L, -3);
    lua_settable(L, -3);
    lua_pop(L, 2);
    return LUA_OK;
}

/* Runs the -e and -l options in order; stops at the first failure. */
static int run_options(lua_State *L, char **argv, int script)
{
    int i;

    for (i = 1; i < script; i++) {
        const char *a = argv[i];
        const char *val;
        int status;

        if (a[0] != '-' || (a[1] != 'e' && a[1] != 'l'))
            continue;
        val = a[2] != '\0' ? a + 2 : argv[++i];
        status = a[1] == 'e' ? run_string(L, val) : run_library(L, val);
        if (status != LUA_OK)
            return 0;
    }
    return 1;
}

/* Runs file `fname` (stdin when NULL) with the given arguments. */
static int run_file(lua_State *L, const char *fname, char **args, int nargs)
{
    int status = luaL_loadfile(L, fname);
    int i;

    if (status == LUA_OK) {
        luaL_checkstack(L, nargs, "too many arguments to script");
        for (i = 0; i < nargs; i++)
            lua_pushstring(L, args[i]);
        status = rllua_docall(L, nargs, 0, msg_traceback);
    }
    return rllua_report(L, status, PROGNAME);
}

static int run_script(lua_State *L, char **argv, int argc, int script)
{
    const char *fname = argv[script];

    if (strcmp(fname, "-") == 0 && strcmp(argv[script - 1], "--") != 0)
        fname = NULL;
    return run_file(L, fname, argv + script + 1, argc - script - 1);
}

/* ------------------------------------------------------------------ */
/* Library setup                                                       */
/* ------------------------------------------------------------------ */

/* Directory of the running executable, from /proc/self/exe or argv[0]. */
static int exe_dir(char *buf, size_t size, const char *argv0)
{
    ssize_t n = readlink("/proc/self/exe", buf, size - 1);
    char *slash;

    if (n > 0 && (size_t)n < size - 1) {
        buf[n] = '\0';
    } else if (argv0 != NULL && strchr(argv0, '/') != NULL &&
               strlen(argv0) < size) {
        strcpy(buf, argv0);
    } else {
        return 0;
    }
    slash = strrchr(buf, '/');
    if (slash == buf)
        slash[1] = '\0';
    else
        *slash = '\0';
    return 1;
}

/* package.path = $RLLUA_PATH; <exe>/lua; <exe>/../share/lua/5.4; old */
static void setup_path(lua_State *L, const char *argv0)
{
    const char *env = getenv("RLLUA_PATH");
    char dir[DIR_MAX];
    int n = 0;

    lua_getglobal(L, "package");
    if (env != NULL && env[0] != '\0') {
        if (strchr(env, '?') != NULL)         /* already a path template */
            lua_pushfstring(L, "%s;", env);
        else
            lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;", env, env);
        n++;
    }
    if (exe_dir(dir, sizeof dir, argv0)) {
        lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua;", dir, dir);
        lua_pushfstring(L, "%s/../share/lua/5.4/?.lua;"
                           "%s/../share/lua/5.4/?/init.lua;", dir, dir);
        n += 2;
    }
    lua_getfield(L, -(n + 1), "path");
    lua_concat(L, n + 1);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
}

/* Preloads rl.core and sets the global rl = require 'rl'. */
static int load_rl(lua_State *L)
{
    int status;

    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_rl_core);
    lua_setfield(L, -2, "rl.core");
    lua_pop(L, 2);

    lua_getglobal(L, "require");
    lua_pushliteral(L, "rl");
    status = rllua_docall(L, 1, 1, msg_traceback);
    if (status != LUA_OK) {
        rllua_report(L, status, PROGNAME ": cannot load the rl library");
        return 0;
    }
    lua_setglobal(L, "rl");
    return 1;
}

/* ------------------------------------------------------------------ */
/* Entry point                                                         */
/* ------------------------------------------------------------------ */

/* Protected main: arguments are argc (integer) and argv (light userdata);
   returns true on success. */
static int pmain(lua_State *L)
{
    int argc = (int)lua_tointeger(L, 1);
    char **argv = lua_touserdata(L, 2);
    int script = argc;
    int flags, repl, from_stdin;

    luaL_checkversion(L);
    flags = collect_args(argv, &script);
    if (flags & HAS_ERROR) {
        print_usage(stderr, argv[script]);
        return 0;
    }
    if (flags & HAS_HELP) {
        print_usage(stdout, NULL);
        lua_pushboolean(L, 1);
        return 1;
    }
    from_stdin = script == argc && !(flags & (HAS_E | HAS_V | HAS_I));
    repl = (flags & HAS_I) || (from_stdin && isatty(STDIN_FILENO));
    if ((flags & HAS_V) && !repl) {
        puts(VERSION_LINE);
        fflush(stdout);
    }
    luaL_openlibs(L);
    create_arg_table(L, argv, argc, script);
    setup_path(L, argv[0]);
    if (!load_rl(L) || !run_options(L, argv, script))
        return 0;
    if (script < argc && run_script(L, argv, argc, script) != LUA_OK)
        return 0;
    if (repl)
        rllua_repl(L);
    else if (from_stdin && run_file(L, NULL, NULL, 0) != LUA_OK)
        return 0;
    lua_pushboolean(L, 1);
    return 1;
}

int main(int argc, char **argv)
{
    static char *no_args[] = { PROGNAME, NULL };
    lua_State *L = luaL_newstate();
    int status, ok;

    if (argc < 1 || argv[0] == NULL) {    /* exec'd with an empty argv */
        argc = 1;
        argv = no_args;
    }
    if (L == NULL) {
        fprintf(stderr, "%s: cannot create state: not enough memory\n",
                PROGNAME);
        return EXIT_FAILURE;
    }
    rllua_L = L;
    lua_pushcfunction(L, pmain);
    lua_pushinteger(L, argc);
    lua_pushlightuserdata(L, argv);
    status = lua_pcall(L, 2, 1, 0);
    ok = status == LUA_OK && lua_toboolean(L, -1);
    rllua_report(L, status, PROGNAME);
    lua_close(L);
    return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
