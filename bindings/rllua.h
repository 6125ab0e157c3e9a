/*
 * bindings/rllua.h -- what the files of the `rllua` program share:
 * main.c (command line, library path, running scripts, Ctrl-C and error
 * reporting), repl.c (the interactive loop) and complete.c (tab
 * completion).  None of this is in lib/rl/core.so.
 *
 * The program is linked with -Wl,-E so that C modules it loads see the
 * Lua API; every name here is therefore prefixed rllua_, lest it interpose
 * a loaded module's own (as readline's rl_* names once did the engine's).
 */
#ifndef RLLUA_H
#define RLLUA_H

#include <signal.h>

#include <lua.h>

#ifndef RLLUA_VERSION
#define RLLUA_VERSION "0.1.0"
#endif

#define PROGNAME "rllua"
#define VERSION_LINE PROGNAME " " RLLUA_VERSION " (" LUA_VERSION ")"

/* ---- main.c ---------------------------------------------------------- */

extern lua_State *rllua_L;                 /* the one interpreter state */
extern volatile sig_atomic_t rllua_sigint; /* a SIGINT arrived */

/* Installs `handler` for SIGINT without SA_RESTART (the old action in
   *old when not NULL); rllua_on_sigint interrupts running Lua code. */
void rllua_set_sigint(void (*handler)(int), struct sigaction *old);
void rllua_on_sigint(int sig);

/* Calls the function below `narg` arguments with `handler` as message
   handler; Ctrl-C interrupts it meanwhile. */
int rllua_docall(lua_State *L, int narg, int nres, lua_CFunction handler);
/* A message handler that turns the error object into a string. */
int rllua_msg_plain(lua_State *L);
/* Prints and pops the error message on top when `status` is an error. */
int rllua_report(lua_State *L, int status, const char *prefix);

/* ---- repl.c ------------------------------------------------------------ */

/* Reads, runs and prints chunks from stdin until end of input. */
void rllua_repl(lua_State *L);

/* ---- complete.c -------------------------------------------------------- */

/* Installs tab completion in readline; rllua_complete_free releases its
   candidates at the end. */
void rllua_complete_setup(void);
void rllua_complete_free(void);

#endif
