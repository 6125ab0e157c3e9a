/*
 * bindings/complete.c -- tab completion for the `rllua` REPL.
 *
 * Completes globals, keywords, `a.b.` fields and `x:` methods by walking
 * tables and their __index tables; no metamethod is ever called, so
 * completing never runs user code.  repl.c installs it in readline.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <readline/readline.h>

#include <lua.h>
#include <lauxlib.h>

#include "rllua.h"

#define CHAIN_MAX 8      /* __index levels followed by completion */
#define MATCH_MAX 10000  /* completion candidates kept at most */

/* Characters that end the word being completed: anything that cannot be
   part of a `name.name:name` path. */
#define WORD_BREAKS " \t\n\"\\'`@$><=;|&{}()[]+-*/%^~#,!?"

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

void rllua_complete_free(void)
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
    lua_State *L = rllua_L;
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

/* Installs the completion in readline: Lua names only, never filenames. */
void rllua_complete_setup(void)
{
    rl_attempted_completion_function = complete;
    rl_completion_entry_function = no_completion;
    rl_basic_word_break_characters = WORD_BREAKS;
    rl_completer_word_break_characters = WORD_BREAKS;
}
