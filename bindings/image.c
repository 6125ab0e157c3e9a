/* image.c - rl.write_png(path, image): u8 [H, W], [1, H, W] or [3, H, W]. */
#include "lrl.h"
#include "io/png_write.h"

/* rl.write_png(path, image): writes a u8 image, [H, W] or [1, H, W]
 * (grey) or [3, H, W] (RGB), from any device, to the PNG file path.  It is
 * written under a temporary name, then renamed, so that path never holds
 * half an image. */
static int l_write_png(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lrl_check_rc(L, rl_png_write(path, lrl_check(L, 2)));
  return 0;
}

void lrl_open_image(lua_State *L) {
  lua_pushcfunction(L, l_write_png);
  lua_setfield(L, -2, "write_png");
}
