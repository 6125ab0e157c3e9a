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
 *     Ctrl-C interruption of running Lua code ("interrupted!");
 *   - an interactive REPL: readline editing, persistent history in
 *     ~/.rllua_history, printing of expression values, multi-line chunks and
 *     tab completion of globals, keywords, `a.b.` fields and `x:` methods.
 *     When stdin is not a terminal (`rllua -i < file`) the REPL reads plain
 *     lines and still prints prompts, so it can be driven from a pipe.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <signal.h>
#include <sys/select.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <readline/readline.h>
#include <readline/history.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#ifndef RLLUA_VERSION
#define RLLUA_VERSION "0.1.0"
#endif

#define PROGNAME "rllua"
#define VERSION_LINE PROGNAME " " RLLUA_VERSION " (" LUA_VERSION ")"
#define BANNER VERSION_LINE " -- tensors for robustness research." \
               " rl is loaded; help: rl.help()"

#define PROMPT1 "> "
#define PROMPT2 ">> "
#define EOF_MARK "<eof>"
#define HISTORY_FILE ".rllua_history"
#define HISTORY_MAX 1000
#define CHAIN_MAX 8      /* __index levels followed by completion */
#define MATCH_MAX 10000  /* completion candidates kept at most */
#define DIR_MAX 4096

/* Characters that end the word being completed: anything that cannot be
   part of a `name.name:name` path. */
#define WORD_BREAKS " \t\n\"\\'`@$><=;|&{}()[]+-*/%^~#,!?"

/* Provided by bindings/rl_core.c. */
int luaopen_rl_core(lua_State *L);

/* ------------------------------------------------------------------ */
/* Interruption                                                        */
/* ------------------------------------------------------------------ */

static lua_State *g_L;                    /* the one interpreter state */
static volatile sig_atomic_t g_running;   /* Lua code is executing */
static volatile sig_atomic_t g_sigint;    /* a SIGINT arrived */
static int g_discard;                     /* Ctrl-C dropped the input line */

static void interrupt_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    luaL_error(L, "interrupted!");
}

/* Installs `handler` for SIGINT without SA_RESTART, so that a blocking
   read returns EINTR and the REPL notices the Ctrl-C. */
static void set_sigint(void (*handler)(int), struct sigaction *old)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, old);
}

static void on_sigint(int sig)
{
    (void)sig;
    g_sigint = 1;
    if (g_running) {
        /* A second Ctrl-C kills a process stuck outside Lua code. */
        set_sigint(SIG_DFL, NULL);
        lua_sethook(g_L, interrupt_hook,
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

static int msg_plain(lua_State *L)
{
    error_text(L);
    return 1;
}

/* Calls the function below `narg` arguments with `handler` as message
   handler; Ctrl-C interrupts it meanwhile. */
static int docall(lua_State *L, int narg, int nres, lua_CFunction handler)
{
    struct sigaction old;
    int base = lua_gettop(L) - narg;
    int status;

    lua_pushcfunction(L, handler);
    lua_insert(L, base);
    g_sigint = 0;
    set_sigint(on_sigint, &old);
    g_running = 1;
    status = lua_pcall(L, narg, nres, base);
    g_running = 0;
    sigaction(SIGINT, &old, NULL);
    if (g_sigint) {          /* drop a hook that did not fire in time */
        lua_sethook(L, NULL, 0, 0);
        g_sigint = 0;
    }
    lua_remove(L, base);
    return status;
}

/* Prints and pops the error message on top when `status` is an error. */
static int report(lua_State *L, int status, const char *prefix)
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
        status = docall(L, 0, 0, msg_traceback);
    return report(L, status, PROGNAME);
}

/* `-l mod` sets global mod = require 'mod'; `-l g=mod` sets global g. */
static int run_library(lua_State *L, const char *spec)
{
    const char *eq = strchr(spec, '=');
    const char *mod = eq != NULL ? eq + 1 : spec;
    int status;

    lua_getglobal(L, "require");
    lua_pushstring(L, mod);
    status = docall(L, 1, 1, msg_traceback);
    if (status != LUA_OK)
        return report(L, status, PROGNAME);
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
        status = docall(L, nargs, 0, msg_traceback);
    }
    return report(L, status, PROGNAME);
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
    status = docall(L, 1, 1, msg_traceback);
    if (status != LUA_OK) {
        report(L, status, PROGNAME ": cannot load the rl library");
        return 0;
    }
    lua_setglobal(L, "rl");
    return 1;
}

/* ------------------------------------------------------------------ */
/* Tab completion                                                      */
/* ------------------------------------------------------------------ */

static const char *const keywords[] = {
    "and", "break", "do", "else", "elseif", "end", "false", "for",
    "function", "goto", "if", "in", "local", "nil", "not", "or", "repeat",
    "return", "then", "true", "until", "while", NULL
};

static struct {
    const char *text;   /* the word being completed */
    char **items;
    size_t n, cap;
    size_t next;    /* generator cursor */
    int append;     /* character to append after the first match */
} g_comp;

static void matches_clear(void)
{
    size_t i;

    for (i = 0; i < g_comp.n; i++)
        free(g_comp.items[i]);
    g_comp.n = 0;
}

static void matches_free(void)
{
    matches_clear();
    free(g_comp.items);
    g_comp.items = NULL;
    g_comp.cap = 0;
}

/* Records the candidate head..name; `append` is used when it is unique. */
static void match_add(const char *head, size_t headlen, const char *name,
                      int append)
{
    size_t namelen = strlen(name);
    char *s;

    if (g_comp.n >= MATCH_MAX)
        return;
    if (g_comp.n == g_comp.cap) {
        size_t cap = g_comp.cap ? 2 * g_comp.cap : 64;
        char **items = realloc(g_comp.items, cap * sizeof *items);

        if (items == NULL)
            return;
        g_comp.items = items;
        g_comp.cap = cap;
    }
    s = malloc(headlen + namelen + 1);
    if (s == NULL)
        return;
    memcpy(s, head, headlen);
    memcpy(s + headlen, name, namelen + 1);
    if (g_comp.n == 0)
        g_comp.append = append;
    g_comp.items[g_comp.n++] = s;
}

static int is_keyword(const char *s, size_t len)
{
    int i;

    for (i = 0; keywords[i] != NULL; i++)
        if (strlen(keywords[i]) == len && memcmp(s, keywords[i], len) == 0)
            return 1;
    return 0;
}

static int is_name_char(int c, int first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           (!first && c >= '0' && c <= '9');
}

/* An identifier usable after `.` or `:` (so not a keyword). */
static int is_name(const char *s, size_t len)
{
    size_t i;

    if (len == 0)
        return 0;
    for (i = 0; i < len; i++)
        if (!is_name_char((unsigned char)s[i], i == 0))
            return 0;
    return !is_keyword(s, len);
}

static int has_prefix(const char *s, size_t len, const char *prefix)
{
    size_t plen = strlen(prefix);

    return len >= plen && memcmp(s, prefix, plen) == 0;
}

/* Pushes the table that __index of the value at `idx` points to; returns
   0 (pushing nothing) when there is no such table. */
static int push_index_table(lua_State *L, int idx)
{
    int t = luaL_getmetafield(L, idx, "__index");

    if (t == LUA_TTABLE)
        return 1;
    if (t != LUA_TNIL)
        lua_pop(L, 1);
    return 0;
}

/* Replaces the value on top with value[name], looking only at tables and
   __index tables: no metamethod is ever called. */
static void get_field(lua_State *L, const char *name, size_t len)
{
    int depth;

    for (depth = 0; depth < CHAIN_MAX; depth++) {
        if (lua_istable(L, -1)) {
            lua_pushlstring(L, name, len);
            if (lua_rawget(L, -2) != LUA_TNIL) {
                lua_remove(L, -2);
                return;
            }
            lua_pop(L, 1);
        }
        if (!push_index_table(L, -1))
            break;
        lua_remove(L, -2);
    }
    lua_pop(L, 1);
    lua_pushnil(L);
}

/* Adds the string keys of table `t` starting with `partial`.  `methods`
   keeps only functions.  Metamethod names ("__x") are offered only when
   the partial word itself starts with "_". */
static void add_table_keys(lua_State *L, int t, const char *head,
                           size_t headlen, const char *partial, int methods)
{
    int hide_meta = partial[0] != '_';

    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        if (lua_type(L, -2) == LUA_TSTRING) {
            size_t len;
            const char *k = lua_tolstring(L, -2, &len);
            int vt = lua_type(L, -1);

            if (has_prefix(k, len, partial) && is_name(k, len) &&
                (!methods || vt == LUA_TFUNCTION) &&
                !(hide_meta && k[0] == '_' && k[1] == '_'))
                match_add(head, headlen, k,
                          vt == LUA_TTABLE && !methods ? '.' : '\0');
        }
        lua_pop(L, 1);
    }
}

static int walk_path(lua_State *L, const char *path, size_t len);

/* An __index function hides where the methods of the value at `v` live;
   two common layouts are guessed: functions stored in the metatable
   itself, and a methods table reachable from _G under the metatable's
   __name (luaL_newmetatable's "rl.Tensor" names the table rl.Tensor). */
static void add_guessed_methods(lua_State *L, int v, const char *head,
                                size_t headlen, const char *partial,
                                int methods)
{
    int mt;
    size_t len;
    const char *name;

    if (!lua_getmetatable(L, v))
        return;
    mt = lua_gettop(L);
    add_table_keys(L, mt, head, headlen, partial, methods);
    lua_pushliteral(L, "__name");
    if (lua_rawget(L, mt) != LUA_TSTRING)
        return;
    name = lua_tolstring(L, -1, &len);
    if (walk_path(L, name, len) && lua_istable(L, -1) &&
        !lua_rawequal(L, -1, mt))
        add_table_keys(L, lua_gettop(L), head, headlen, partial, methods);
}

/* Adds the fields of the value on top (left in place): its own keys when
   it is a table, then those of its chain of __index tables, then the
   guesses of add_guessed_methods when the chain ends in a function. */
static void add_fields(lua_State *L, const char *head, size_t headlen,
                       const char *partial, int methods)
{
    int obj = lua_gettop(L);
    int depth;

    lua_pushvalue(L, obj);
    for (depth = 0; depth < CHAIN_MAX; depth++) {
        if (lua_istable(L, -1))
            add_table_keys(L, lua_gettop(L), head, headlen, partial,
                           methods);
        if (!push_index_table(L, -1))
            break;
        lua_remove(L, -2);
    }
    if (luaL_getmetafield(L, -1, "__index") == LUA_TFUNCTION)
        add_guessed_methods(L, lua_gettop(L) - 1, head, headlen, partial,
                            methods);
    lua_settop(L, obj);
}

static void add_keywords(const char *partial)
{
    int i;

    for (i = 0; keywords[i] != NULL; i++)
        if (has_prefix(keywords[i], strlen(keywords[i]), partial))
            match_add("", 0, keywords[i], ' ');
}

/* Pushes the value named by the dotted path path[0..len); 0 if invalid. */
static int walk_path(lua_State *L, const char *path, size_t len)
{
    const char *p = path;
    const char *end = path + len;

    if (len == 0 || end[-1] == '.')
        return 0;
    lua_pushglobaltable(L);
    while (p < end) {
        const char *dot = memchr(p, '.', (size_t)(end - p));

        if (dot == NULL)
            dot = end;
        if (!is_name(p, (size_t)(dot - p)))
            return 0;
        get_field(L, p, (size_t)(dot - p));
        if (lua_isnil(L, -1))
            return 0;
        p = dot + 1;
    }
    return 1;
}

/* Protected: collects the candidates for the word g_comp.text. */
static int complete_collect(lua_State *L)
{
    const char *text = g_comp.text;
    const char *sep = NULL;
    const char *p;

    for (p = text; *p != '\0'; p++)
        if (*p == '.' || *p == ':')
            sep = p;
    if (sep == NULL) {
        add_keywords(text);
        lua_pushglobaltable(L);
        add_fields(L, "", 0, text, 0);
        return 0;
    }
    if (memchr(text, ':', (size_t)(sep - text)) != NULL)
        return 0;
    if (walk_path(L, text, (size_t)(sep - text)))
        add_fields(L, text, (size_t)(sep - text) + 1, sep + 1, *sep == ':');
    return 0;
}

static char *match_generator(const char *text, int state)
{
    (void)text;
    if (state == 0)
        g_comp.next = 0;
    if (g_comp.next < g_comp.n)
        return strdup(g_comp.items[g_comp.next++]);
    return NULL;
}

static char *no_completion(const char *text, int state)
{
    (void)text;
    (void)state;
    return NULL;
}

static char **complete(const char *text, int start, int end)
{
    lua_State *L = g_L;
    int top;

    (void)start;
    (void)end;
    rl_attempted_completion_over = 1;     /* never complete filenames */
    rl_completion_append_character = '\0';
    matches_clear();
    if (L == NULL || !lua_checkstack(L, 4))
        return NULL;
    g_comp.text = text;
    top = lua_gettop(L);
    lua_pushcfunction(L, complete_collect);
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
        lua_settop(L, top);
        matches_clear();
        return NULL;
    }
    if (g_comp.n == 0)
        return NULL;
    rl_completion_append_character = g_comp.append;
    return rl_completion_matches(text, match_generator);
}

/* ------------------------------------------------------------------ */
/* Line input                                                          */
/* ------------------------------------------------------------------ */

static int g_use_readline;
static char *g_history_path;

/* After a Ctrl-C, drops the line being edited and starts afresh at the
   primary prompt.  Also installed as readline's signal event hook. */
static int discard_if_interrupted(void)
{
    if (!g_sigint)
        return 0;
    g_sigint = 0;
    g_discard = 1;
    rl_point = rl_end;
    rl_redisplay();
    fputs("^C", rl_outstream);
    rl_crlf();
    rl_replace_line("", 1);
    rl_set_prompt(PROMPT1);
    rl_on_new_line();
    rl_redisplay();
    return 0;
}

/* Readline's key reader.  It waits for input itself, with SIGINT blocked
   except inside pselect, so a Ctrl-C arriving at any moment is seen before
   the next key instead of being lost until one is typed. */
static int read_key(FILE *stream)
{
    int fd = fileno(stream);
    sigset_t block, old;
    fd_set fds;

    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    for (;;) {
        sigprocmask(SIG_BLOCK, &block, &old);
        if (g_sigint) {
            sigprocmask(SIG_SETMASK, &old, NULL);
            discard_if_interrupted();
            continue;
        }
        FD_ZERO(&fds);
        FD_SET(fd, &fds);
        pselect(fd + 1, &fds, NULL, NULL, NULL, &old);
        sigprocmask(SIG_SETMASK, &old, NULL);  /* delivers a pending SIGINT */
        if (!g_sigint)
            break;              /* input, error, or another signal */
    }
    return rl_getc(stream);
}

static void history_open(void)
{
    const char *home = getenv("HOME");
    size_t size;

    using_history();
    stifle_history(HISTORY_MAX);
    if (home == NULL || home[0] == '\0')
        return;
    size = strlen(home) + sizeof("/" HISTORY_FILE);
    g_history_path = malloc(size);
    if (g_history_path == NULL)
        return;
    snprintf(g_history_path, size, "%s/%s", home, HISTORY_FILE);
    if (read_history(g_history_path) == 0)
        history_truncate_file(g_history_path, HISTORY_MAX);
    else
        write_history(g_history_path);    /* create it for appending */
}

static void history_close(void)
{
    if (g_history_path != NULL)
        history_truncate_file(g_history_path, HISTORY_MAX);
    free(g_history_path);
    g_history_path = NULL;
}

/* Adds a line to the history (memory and file) unless it repeats. */
static void remember_line(const char *line)
{
    HIST_ENTRY *last = history_get(history_base + history_length - 1);

    if (last != NULL && strcmp(last->line, line) == 0)
        return;
    add_history(line);
    if (g_history_path != NULL)
        append_history(1, g_history_path);
}

static void readline_setup(void)
{
    rl_readline_name = "rllua";
    rl_catch_signals = 0;                /* SIGINT is handled here */
    rl_signal_event_hook = discard_if_interrupted;
    rl_getc_function = read_key;
    rl_attempted_completion_function = complete;
    rl_completion_entry_function = no_completion;
    rl_basic_word_break_characters = WORD_BREAKS;
    rl_completer_word_break_characters = WORD_BREAKS;
    history_open();
}

/* Reads a line without editing, for stdin that is not a terminal. */
static char *read_plain_line(const char *prompt)
{
    char *buf = NULL;
    size_t cap = 0;

    for (;;) {
        fputs(prompt, stdout);
        fflush(stdout);
        g_sigint = 0;
        if (getline(&buf, &cap, stdin) >= 0)
            return buf;
        if (!(g_sigint && ferror(stdin))) {
            free(buf);
            return NULL;
        }
        clearerr(stdin);                /* Ctrl-C: start a new chunk */
        fputc('\n', stdout);
        g_discard = 1;
        prompt = PROMPT1;
    }
}

/* Pushes the next input line; returns 0 at end of input.  Sets *discarded
   when Ctrl-C threw away the chunk being typed. */
static int push_line(lua_State *L, const char *prompt, int *discarded)
{
    char *line;
    size_t len;

    g_discard = 0;
    line = g_use_readline ? readline(prompt) : read_plain_line(prompt);
    *discarded = g_discard;
    if (line == NULL)
        return 0;
    len = strlen(line);
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = '\0';
    if (g_use_readline && len > 0)
        remember_line(line);
    lua_pushlstring(L, line, len);
    free(line);
    return 1;
}

/* ------------------------------------------------------------------ */
/* REPL                                                                */
/* ------------------------------------------------------------------ */

static int is_incomplete(lua_State *L, int status)
{
    size_t len;
    const char *msg;

    if (status != LUA_ERRSYNTAX)
        return 0;
    msg = lua_tolstring(L, -1, &len);
    return len >= sizeof(EOF_MARK) - 1 &&
           strcmp(msg + len - (sizeof(EOF_MARK) - 1), EOF_MARK) == 0;
}

/* Compiles "return <line>" for the line on top; on success pushes the
   function, otherwise pushes nothing. */
static int compile_return(lua_State *L)
{
    const char *code = lua_pushfstring(L, "return %s", lua_tostring(L, -1));
    int status = luaL_loadbuffer(L, code, strlen(code), "=stdin");

    lua_remove(L, -2);
    if (status != LUA_OK)
        lua_pop(L, 1);
    return status;
}

/* Reads and compiles one chunk, asking for more lines while it is
   incomplete.  Pushes the function or the error message; -1 on EOF. */
static int read_chunk(lua_State *L)
{
    const char *prompt = PROMPT1;
    int top = lua_gettop(L);

    for (;;) {
        int discarded;
        int status;
        size_t len;
        const char *code;

        if (!push_line(L, prompt, &discarded)) {
            lua_settop(L, top);
            return -1;
        }
        if (discarded && lua_gettop(L) > top + 1)
            lua_remove(L, top + 1);               /* drop the old chunk */
        if (lua_gettop(L) == top + 1) {
            if (compile_return(L) == LUA_OK) {
                lua_remove(L, top + 1);
                return LUA_OK;
            }
        } else {
            lua_pushliteral(L, "\n");
            lua_insert(L, -2);
            lua_concat(L, 3);
        }
        code = lua_tolstring(L, top + 1, &len);
        status = luaL_loadbuffer(L, code, len, "=stdin");
        if (!is_incomplete(L, status)) {
            lua_remove(L, top + 1);
            return status;
        }
        lua_pop(L, 1);
        prompt = PROMPT2;
    }
}

/* Pushes rl.repr when the rl library provides it (tables shown by content),
 * else nothing; returns whether it pushed. */
static int push_repr(lua_State *L)
{
    int top = lua_gettop(L);

    if (lua_getglobal(L, "rl") == LUA_TTABLE &&
        lua_getfield(L, -1, "repr") == LUA_TFUNCTION) {
        lua_remove(L, -2);
        return 1;
    }
    lua_settop(L, top);
    return 0;
}

/* Protected: writes its arguments through rl.repr, else the global tostring. */
static int print_values(lua_State *L)
{
    int n = lua_gettop(L);
    int i;

    for (i = 1; i <= n; i++) {
        size_t len;
        const char *s;

        if (push_repr(L)) {
            lua_pushvalue(L, i);
            lua_call(L, 1, 1);
        } else if (lua_getglobal(L, "tostring") == LUA_TFUNCTION) {
            lua_pushvalue(L, i);
            lua_call(L, 1, 1);
        } else {
            lua_pop(L, 1);
            luaL_tolstring(L, i, NULL);
        }
        if (lua_type(L, -1) != LUA_TSTRING)
            return luaL_error(L, "'tostring' must return a string");
        s = lua_tolstring(L, -1, &len);
        if (i > 1)
            fputc('\t', stdout);
        fwrite(s, 1, len, stdout);
        lua_pop(L, 1);
    }
    fputc('\n', stdout);
    fflush(stdout);
    return 0;
}

/* Prints the values above `base` and removes them. */
static void print_results(lua_State *L, int base)
{
    int n = lua_gettop(L) - base;
    int status;

    if (n <= 0)
        return;
    luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
    lua_pushcfunction(L, print_values);
    lua_insert(L, base + 1);
    status = docall(L, n, 0, msg_plain);
    if (status != LUA_OK) {
        lua_pushfstring(L, "error printing result: %s", lua_tostring(L, -1));
        lua_remove(L, -2);
        report(L, status, NULL);
    }
}

static void run_repl(lua_State *L)
{
    struct sigaction old;
    int base = lua_gettop(L);

    g_use_readline = isatty(STDIN_FILENO);
    if (g_use_readline)
        readline_setup();
    puts(BANNER);
    fflush(stdout);
    set_sigint(on_sigint, &old);
    for (;;) {
        int status = read_chunk(L);

        if (status == -1)
            break;
        if (status == LUA_OK)
            status = docall(L, 0, LUA_MULTRET, msg_plain);
        if (status == LUA_OK)
            print_results(L, base);
        else
            report(L, status, NULL);
        fflush(stdout);
        lua_settop(L, base);
    }
    sigaction(SIGINT, &old, NULL);
    fputc('\n', stdout);
    fflush(stdout);
    if (g_use_readline)
        history_close();
    matches_free();
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
        run_repl(L);
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
    g_L = L;
    lua_pushcfunction(L, pmain);
    lua_pushinteger(L, argc);
    lua_pushlightuserdata(L, argv);
    status = lua_pcall(L, 2, 1, 0);
    ok = status == LUA_OK && lua_toboolean(L, -1);
    report(L, status, PROGNAME);
    lua_close(L);
    return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
