/* json.h - the project's one JSON reader: a strict RFC 8259 parser that
 * builds a tree of nodes.  The safetensors reader parses its header with it
 * and rl.json.decode (bindings/io.c) turns the tree into Lua tables.
 *
 * The text is decoded in place: strings are unescaped inside the caller's
 * buffer (a decoded string is never longer than its JSON spelling) and each
 * ends with a NUL there, so nodes point into the buffer and live as long as
 * it does.  Strict means: no trailing commas, no leading zeros, every
 * escape checked, surrogates paired, strings valid UTF-8, no key twice in
 * one object, at most RL_JSON_MAX_DEPTH levels of nesting.
 *
 * Errors follow core.h: -1 with a message "<prefix>: ... at byte N", N
 * counted from opts->base, so a caller can give offsets in its own file. */
#ifndef RL_JSON_H
#define RL_JSON_H

#include "core.h"

#define RL_JSON_MAX_DEPTH 64

typedef enum {
  RL_JSON_OBJ,
  RL_JSON_ARR,
  RL_JSON_STR,
  RL_JSON_INT, /* no fraction or exponent, fits int64: v.i */
  RL_JSON_NUM, /* any other number: v.d */
  RL_JSON_TRUE,
  RL_JSON_FALSE,
  RL_JSON_NULL,
} rl_json_type;

/* Members and items are linked by index into the document's node array;
 * index 0 is the root, so 0 also means "none" for child and next. */
typedef struct rl_json_node {
  rl_json_type type;
  uint32_t at;      /* byte offset of the value, counted from opts->base */
  uint32_t n;       /* members or items */
  uint32_t child;   /* first member or item */
  uint32_t next;    /* next sibling */
  uint32_t key_len; /* bytes of key (it may hold a NUL with opts->allow_nul) */
  uint32_t len;     /* bytes of v.s */
  const char *key;  /* the member's name; NULL for array items and the root */
  union {
    int64_t i;
    double d;
    const char *s;
  } v;
} rl_json_node;

typedef struct rl_json_doc {
  rl_json_node *nodes; /* [n], nodes[0] the root; free with rl_json_free */
  uint32_t n;
} rl_json_doc;

/* How the parser words its errors and which inputs it takes. */
typedef struct rl_json_opts {
  const char *prefix;    /* every message starts "<prefix>: " */
  const char *syntax;    /* syntax errors then say "<syntax>: " (NULL: nothing) */
  const char *text;      /* the input's name in "unexpected end of <text>" */
  const char *root_keys; /* the root object's keys in "duplicate <root_keys>" (NULL: "key") */
  uint32_t base;         /* error offsets are base + the offset in the text */
  bool want_object;      /* the text must be one object (a file format's header) */
  bool allow_nul;        /* accept "\u0000" (else refused: the caller wants C strings) */
  bool big_ints;         /* read an integer beyond int64 as a double (else an error) */
} rl_json_opts;

/* Parse the len bytes at p, which must have room for one more byte (the
 * parser writes a NUL at p[len]).  On success doc holds the tree; on failure
 * doc is empty.  Either way rl_json_free(doc) is safe. */
int rl_json_parse(char *p, size_t len, const rl_json_opts *opts, rl_json_doc *doc);
void rl_json_free(rl_json_doc *doc);

/* The member of object o named key (a C string), or NULL. */
const rl_json_node *rl_json_member(const rl_json_doc *doc, const rl_json_node *o,
                                   const char *key);

/* Whether the n bytes at s are well-formed UTF-8 (no overlong forms, no
 * surrogates, nothing above U+10FFFF): what the writers check before
 * putting a string in a JSON file. */
bool rl_utf8_valid(const char *s, size_t n);

#endif
