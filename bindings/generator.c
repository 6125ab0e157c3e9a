/* generator.c - rl.Generator, rl.manual_seed, the RNG state and rl.philox.
 *
 * A generator is a (seed, offset) pair over the Philox-4x32-10 stream (see
 * engine/philox.h): its state is two integers, so saving it in a checkpoint
 * and restoring it resumes the exact stream. */
#include "lrl.h"
#include "philox.h"

static rl_generator *check_gen(lua_State *L, int i) {
  return luaL_checkudata(L, i, LRL_GENERATOR);
}

static uint64_t seed_arg(lua_State *L, int i) {
  lua_Integer s = luaL_checkinteger(L, i);
  return (uint64_t)s;
}

/* rl.Generator([seed]) */
static int l_generator(lua_State *L) {
  rl_generator *g = lua_newuserdatauv(L, sizeof *g, 0);
  g->seed = lua_isnoneornil(L, 1) ? rl_default_generator()->seed : seed_arg(L, 1);
  g->offset = 0;
  luaL_setmetatable(L, LRL_GENERATOR);
  return 1;
}

/* g:manual_seed(seed) -> g: restarts g's stream at seed (offset 0), in
 * place; the same seed gives the same draws again. */
static int g_manual_seed(lua_State *L) {
  rl_generator *g = check_gen(L, 1);
  g->seed = seed_arg(L, 2);
  g->offset = 0;
  lua_settop(L, 1);
  return 1;
}

/* g:initial_seed(): the seed g's stream started from (its rl.Generator
 * argument or its last manual_seed), however far it has drawn since. */
static int g_initial_seed(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)check_gen(L, 1)->seed);
  return 1;
}

static void push_state(lua_State *L, const rl_generator *g) {
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, (lua_Integer)g->seed);
  lua_setfield(L, -2, "seed");
  lua_pushinteger(L, (lua_Integer)g->offset);
  lua_setfield(L, -2, "offset");
}

static void read_state(lua_State *L, int i, rl_generator *g) {
  luaL_checktype(L, i, LUA_TTABLE);
  lua_getfield(L, i, "seed");
  lua_getfield(L, i, "offset");
  int ok1, ok2;
  lua_Integer s = lua_tointegerx(L, -2, &ok1), o = lua_tointegerx(L, -1, &ok2);
  if (!ok1 || !ok2) luaL_argerror(L, i, "state must be {seed = integer, offset = integer}");
  g->seed = (uint64_t)s;
  g->offset = (uint64_t)o;
  lua_pop(L, 2);
}

/* g:get_state() -> {seed, offset}: where g's stream is (Philox: the key,
 * and how many values it has drawn); g:set_state of it resumes the stream
 * exactly there, which is how checkpoints save the training's randomness. */
static int g_get_state(lua_State *L) {
  push_state(L, check_gen(L, 1));
  return 1;
}

/* g:set_state({seed = S, offset = K}) -> g: moves g's stream to that point
 * (a table from get_state); both fields must be integers. */
static int g_set_state(lua_State *L) {
  read_state(L, 2, check_gen(L, 1));
  lua_settop(L, 1);
  return 1;
}

static int g_tostring(lua_State *L) {
  rl_generator *g = check_gen(L, 1);
  lua_pushfstring(L, "rl.Generator(seed=%I, offset=%I)", (lua_Integer)g->seed,
                  (lua_Integer)g->offset);
  return 1;
}

/* rl.manual_seed(seed): reseeds the global generator, the one random ops
 * use when given none, with the integer seed and restarts its stream;
 * rl.Generator objects are not affected. */
static int l_manual_seed(lua_State *L) {
  rl_manual_seed(seed_arg(L, 1));
  return 0;
}

/* rl.initial_seed(): the global generator's seed: the last one given to
 * rl.manual_seed, else PyTorch's default, 67280421310721. */
static int l_initial_seed(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)rl_default_generator()->seed);
  return 1;
}

/* rl.get_rng_state() -> {seed = integer, offset = integer}: the global
 * generator's state (offset counts the Philox blocks drawn so far), which
 * rl.set_rng_state takes back to resume the stream from that point. */
static int l_get_rng_state(lua_State *L) {
  push_state(L, rl_default_generator());
  return 1;
}

/* rl.set_rng_state(state): sets the global generator's state to state,
 * a table {seed = integer, offset = integer} as rl.get_rng_state returns;
 * anything else is an error. */
static int l_set_rng_state(lua_State *L) {
  read_state(L, 1, rl_default_generator());
  return 0;
}

/* The raw Philox-4x32-10 block for (seed, counter), for known-answer tests
 * and for checking another implementation of the stream. */
static int l_philox(lua_State *L) {
  rl_u32x4 o = rl_philox((uint64_t)luaL_checkinteger(L, 1), (uint64_t)luaL_checkinteger(L, 2));
  for (int i = 0; i < 4; i++) lua_pushinteger(L, o.v[i]);
  return 4;
}

static const luaL_Reg gen_methods[] = {
    {"manual_seed", g_manual_seed}, {"initial_seed", g_initial_seed},
    {"get_state", g_get_state},     {"set_state", g_set_state},
    {NULL, NULL},
};

static const luaL_Reg module_fns[] = {
    {"Generator", l_generator},         {"manual_seed", l_manual_seed},
    {"initial_seed", l_initial_seed},   {"get_rng_state", l_get_rng_state},
    {"set_rng_state", l_set_rng_state}, {"philox", l_philox},
    {NULL, NULL},
};

void lrl_open_generator(lua_State *L) {
  luaL_newmetatable(L, LRL_GENERATOR);
  lua_newtable(L);
  luaL_setfuncs(L, gen_methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, g_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  luaL_setfuncs(L, module_fns, 0);
}
