/* json.c - fuzz target: rl_json_parse, the strict parser behind the
 * safetensors header and rl.json.decode.
 *
 * Byte 0 picks the options (bit 0 want_object, bit 1 allow_nul, bit 2
 * big_ints); the rest is the text.  On success the tree is walked - every
 * node's links must stay inside the node array - and a few root members
 * are looked up, as the safetensors reader does. */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "io/json.h"

/* Every child and next index in range, and each container's count right. */
static void walk(const rl_json_doc *doc) {
  for (uint32_t i = 0; i < doc->n; i++) {
    const rl_json_node *node = &doc->nodes[i];
    if (node->child >= doc->n || node->next >= doc->n) abort();
    if (node->type != RL_JSON_OBJ && node->type != RL_JSON_ARR) continue;
    uint32_t k = 0;
    for (uint32_t c = node->child; c && k <= node->n; c = doc->nodes[c].next) k++;
    if (k != node->n) abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  uint8_t flags = data[0];
  size_t len = size - 1;
  char *text = malloc(len + 1); /* the parser writes a NUL at text[len] */
  if (!text) abort();
  memcpy(text, data + 1, len);
  rl_json_opts o = {.prefix = "fuzz", .text = "input", .base = 1,
                    .want_object = flags & 1, .allow_nul = flags & 2, .big_ints = flags & 4};
  rl_json_doc doc;
  if (rl_json_parse(text, len, &o, &doc) == 0) {
    walk(&doc);
    if (doc.n && doc.nodes[0].type == RL_JSON_OBJ) {
      (void)rl_json_member(&doc, &doc.nodes[0], "__metadata__");
      (void)rl_json_member(&doc, &doc.nodes[0], "");
    }
  }
  rl_json_free(&doc);
  (void)rl_utf8_valid((const char *)data + 1, len);
  free(text);
  return 0;
}
