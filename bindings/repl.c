/*
 * bindings/repl.c -- the interactive loop of `rllua` (lua.c's doREPL).
 *
 * Readline editing, persistent history in ~/.rllua_history, printing of
 * expression values (`return <line>` is tried first), multi-line chunks
 * (input that ends in <eof> asks for more), Ctrl-C dropping the line being
 * typed, and `?name` asking rl.help about name.  When stdin is not a
 * terminal (`rllua -i < file`) the REPL reads plain lines and still prints
 * prompts, so it can be driven from a pipe.  Tab completion is in
 * complete.c.
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

#include "rllua.h"

#define BANNER VERSION_LINE " -- tensors for robustness research." \
               " rl is loaded; help: ?name or rl.help()"

#define PROMPT1 "> "
#define PROMPT2 ">> "
#define EOF_MARK "<eof>"
#define HISTORY_FILE ".rllua_history"
#define HISTORY_MAX 1000

static int g_discard;                     /* Ctrl-C dropped the input line */

/* ------------------------------------------------------------------ */
/* Line input                                                          */
/* ------------------------------------------------------------------ */

static int g_use_readline;
static char *g_history_path;

/* After a Ctrl-C, drops the line being edited and starts afresh at the
   primary prompt.  Also installed as readline's signal event hook. */
static int discard_if_interrupted(void)
{
    if (!rllua_sigint)
        return 0;
    rllua_sigint = 0;
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
        if (rllua_sigint) {
            sigprocmask(SIG_SETMASK, &old, NULL);
            discard_if_interrupted();
            continue;
        }
        FD_ZERO(&fds);
        FD_SET(fd, &fds);
        pselect(fd + 1, &fds, NULL, NULL, NULL, &old);
        sigprocmask(SIG_SETMASK, &old, NULL);  /* delivers a pending SIGINT */
        if (!rllua_sigint)
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
    rllua_complete_setup();
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
        rllua_sigint = 0;
        if (getline(&buf, &cap, stdin) >= 0)
            return buf;
        if (!(rllua_sigint && ferror(stdin))) {
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

/* `?expr` (a first line starting with '?') is rl.help_line("expr"): help on
   the value of expr, or on the name when it has none.  Replaces the line on
   top of the stack. */
static void help_line(lua_State *L)
{
    const char *line = lua_tostring(L, -1);
    size_t n;

    while (*line == ' ' || *line == '\t')
        line++;
    if (*line != '?')
        return;
    line++;
    while (*line == ' ' || *line == '\t')
        line++;
    n = strlen(line);
    while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t'))
        n--;
    lua_pushliteral(L, "rl.help_line(");
    lua_getglobal(L, "string");
    lua_getfield(L, -1, "format");
    lua_remove(L, -2);
    lua_pushliteral(L, "%q");
    lua_pushlstring(L, line, n);
    lua_call(L, 2, 1);                    /* the expression, quoted */
    lua_pushliteral(L, ")");
    lua_concat(L, 3);
    lua_remove(L, -2);                    /* the original line */
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
        if (lua_gettop(L) == top + 1)
            help_line(L);
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
    status = rllua_docall(L, n, 0, rllua_msg_plain);
    if (status != LUA_OK) {
        lua_pushfstring(L, "error printing result: %s", lua_tostring(L, -1));
        lua_remove(L, -2);
        rllua_report(L, status, NULL);
    }
}

void rllua_repl(lua_State *L)
{
    struct sigaction old;
    int base = lua_gettop(L);

    g_use_readline = isatty(STDIN_FILENO);
    if (g_use_readline)
        readline_setup();
    puts(BANNER);
    fflush(stdout);
    rllua_set_sigint(rllua_on_sigint, &old);
    for (;;) {
        int status = read_chunk(L);

        if (status == -1)
            break;
        if (status == LUA_OK)
            status = rllua_docall(L, 0, LUA_MULTRET, rllua_msg_plain);
        if (status == LUA_OK)
            print_results(L, base);
        else
            rllua_report(L, status, NULL);
        fflush(stdout);
        lua_settop(L, base);
    }
    sigaction(SIGINT, &old, NULL);
    fputc('\n', stdout);
    fflush(stdout);
    if (g_use_readline)
        history_close();
    rllua_complete_free();
}
