/* json.c - a strict JSON parser building a tree of nodes (see json.h).
 *
 * RFC 8259 exactly: objects, arrays, strings with every escape, numbers,
 * true/false/null.  Nodes are held in one growable array and linked by
 * index, so the tree is two allocations: the caller's text and the nodes. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* ---- UTF-8 ---------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at s (n bytes available), or 0:
 * no overlong forms, no surrogates, nothing above U+10FFFF. */
static int utf8_len(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  int len;
  uint32_t cp, min;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F, min = 0x80;
  else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F, min = 0x800;
  else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07, min = 0x10000;
  else return 0;
  if ((size_t)len > n) return 0;
  for (int i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    cp = cp << 6 | (s[i] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

bool rl_utf8_valid(const char *s, size_t n) {
  for (size_t i = 0; i < n;) {
    int k = utf8_len((const unsigned char *)s + i, n - i);
    if (!k) return false;
    i += (size_t)k;
  }
  return true;
}

/* Write code point cp as UTF-8 at out; returns the byte count. */
static int utf8_put(uint32_t cp, char *out) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | cp >> 6);
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | cp >> 12);
    out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | cp >> 18);
  out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
  out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* ---- the parser's state and errors ---------------------------------------- */

typedef struct {
  char *p; /* the text, decoded in place */
  size_t len, pos;
  const rl_json_opts *o;
  rl_json_node *nodes;
  uint32_t nn, cap;
  int depth;
} jparser;

/* A syntax error at the current position. */
static int jerr(jparser *jp, const char *what) {
  const char *syn = jp->o->syntax;
  return rl_err("%s: %s%s%s at byte %zu", jp->o->prefix, syn ? syn : "", syn ? ": " : "", what,
                (size_t)jp->o->base + jp->pos);
}

static void skip_ws(jparser *jp) {
  while (jp->pos < jp->len) {
    char c = jp->p[jp->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    jp->pos++;
  }
}

/* The character at the current position, or -1 at the end. */
static int peek(jparser *jp) {
  return jp->pos < jp->len ? (unsigned char)jp->p[jp->pos] : -1;
}

static int new_node(jparser *jp, rl_json_type type, uint32_t *idx) {
  if (jp->nn == jp->cap) {
    if (jp->cap >= UINT32_MAX / 2) return jerr(jp, "too many values");
    uint32_t cap = jp->cap ? jp->cap * 2 : 64;
    rl_json_node *n = realloc(jp->nodes, cap * sizeof *n);
    if (!n) return jerr(jp, "out of memory");
    jp->nodes = n;
    jp->cap = cap;
  }
  *idx = jp->nn++;
  jp->nodes[*idx] = (rl_json_node){.type = type, .at = (uint32_t)(jp->o->base + jp->pos)};
  return 0;
}

/* ---- strings ---------------------------------------------------------------- */

static int hex4(jparser *jp, uint32_t *out) {
  if (jp->len - jp->pos < 4) return jerr(jp, "truncated \\u escape");
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    char c = jp->p[jp->pos];
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (d < 0) return jerr(jp, "bad hex digit in a \\u escape");
    v = v << 4 | (uint32_t)d;
    jp->pos++;
  }
  *out = v;
  return 0;
}

/* After "\u": one code point, joining a surrogate pair. */
static int unicode_escape(jparser *jp, uint32_t *cp) {
  size_t at = jp->pos;
  if (hex4(jp, cp)) return -1;
  if (*cp >= 0xDC00 && *cp <= 0xDFFF) {
    jp->pos = at;
    return jerr(jp, "unpaired low surrogate in a \\u escape");
  }
  if (*cp >= 0xD800 && *cp <= 0xDBFF) {
    uint32_t lo;
    if (jp->len - jp->pos < 2 || jp->p[jp->pos] != '\\' || jp->p[jp->pos + 1] != 'u') {
      jp->pos = at;
      return jerr(jp, "unpaired high surrogate in a \\u escape");
    }
    jp->pos += 2;
    if (hex4(jp, &lo)) return -1;
    if (lo < 0xDC00 || lo > 0xDFFF) {
      jp->pos = at;
      return jerr(jp, "unpaired high surrogate in a \\u escape");
    }
    *cp = 0x10000 + ((*cp - 0xD800) << 10) + (lo - 0xDC00);
  }
  if (*cp == 0 && !jp->o->allow_nul) {
    jp->pos = at;
    return jerr(jp, "\\u0000 (a NUL character) is not supported in strings");
  }
  return 0;
}

/* One escape after the backslash; writes its UTF-8 at *w. */
static int escape(jparser *jp, size_t *w) {
  static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
  int c = peek(jp);
  const char *k = c > 0 ? strchr(from, c) : NULL;
  if (c == 'u') {
    uint32_t cp;
    jp->pos++;
    if (unicode_escape(jp, &cp)) return -1;
    *w += (size_t)utf8_put(cp, jp->p + *w);
    return 0;
  }
  if (!k) return c < 0 ? jerr(jp, "unterminated string") : jerr(jp, "invalid escape");
  jp->p[(*w)++] = to[k - from];
  jp->pos++;
  return 0;
}

/* A string at the current '"': *out points into the text, NUL-terminated,
 * and *n is its length (a NUL inside only with allow_nul). */
static int parse_string(jparser *jp, const char **out, uint32_t *n) {
  size_t start = ++jp->pos, w = start;
  for (;;) {
    int c = peek(jp);
    if (c < 0) return jerr(jp, "unterminated string");
    if (c == '"') break;
    if (c < 0x20) return jerr(jp, "unescaped control character in a string");
    if (c == '\\') {
      jp->pos++;
      if (escape(jp, &w)) return -1;
      continue;
    }
    int k = utf8_len((unsigned char *)jp->p + jp->pos, jp->len - jp->pos);
    if (!k) return jerr(jp, "invalid UTF-8 in a string");
    memmove(jp->p + w, jp->p + jp->pos, (size_t)k);
    w += (size_t)k;
    jp->pos += (size_t)k;
  }
  jp->p[w] = 0; /* w <= pos: the closing quote or before it */
  jp->pos++;
  *out = jp->p + start;
  *n = (uint32_t)(w - start);
  return 0;
}

/* ---- numbers and literals --------------------------------------------------- */

static size_t digits(jparser *jp) {
  size_t n = 0;
  while (peek(jp) >= '0' && peek(jp) <= '9') jp->pos++, n++;
  return n;
}

/* The number spelt from start to the current position, as strtod reads it.
 * The byte after it is NULed for strtod and put back: the grammar already
 * checked the spelling, so strtod reads exactly these bytes. */
static double span_double(jparser *jp, size_t start) {
  char keep = jp->p[jp->pos]; /* p[len] exists: json.h asks for one spare byte */
  jp->p[jp->pos] = 0;
  double d = strtod(jp->p + start, NULL);
  jp->p[jp->pos] = keep;
  return d;
}

/* The digits start..end as an int64 in *out; false when they do not fit. */
static bool fits_int64(const char *p, size_t start, size_t end, bool neg, int64_t *out) {
  uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  for (size_t i = start; i < end; i++) {
    unsigned d = (unsigned)(p[i] - '0');
    if (v > (lim - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = neg ? (int64_t)(0 - v) : (int64_t)v;
  return true;
}

/* A number: RL_JSON_INT when it has no fraction or exponent and fits int64
 * (an integer beyond int64 is a double with big_ints, else an error). */
static int parse_number(jparser *jp, rl_json_node *nd) {
  size_t start = jp->pos;
  bool neg = peek(jp) == '-';
  if (neg) jp->pos++;
  if (peek(jp) == '0') {
    jp->pos++;
    if (peek(jp) >= '0' && peek(jp) <= '9') return jerr(jp, "leading zero in a number");
  } else if (!digits(jp)) return jerr(jp, "invalid number");
  size_t int_end = jp->pos;
  if (peek(jp) == '.') {
    jp->pos++;
    if (!digits(jp)) return jerr(jp, "invalid number (no digits after '.')");
  }
  if (peek(jp) == 'e' || peek(jp) == 'E') {
    jp->pos++;
    if (peek(jp) == '+' || peek(jp) == '-') jp->pos++;
    if (!digits(jp)) return jerr(jp, "invalid number (no digits in the exponent)");
  }
  if (jp->pos == int_end && fits_int64(jp->p, start + neg, int_end, neg, &nd->v.i)) {
    nd->type = RL_JSON_INT;
    return 0;
  }
  if (jp->pos == int_end && !jp->o->big_ints) {
    jp->pos = start;
    return jerr(jp, "integer out of range");
  }
  nd->type = RL_JSON_NUM;
  nd->v.d = span_double(jp, start);
  return 0;
}

static int parse_literal(jparser *jp, rl_json_node *nd) {
  static const char *const lits[] = {"true", "false", "null"};
  static const rl_json_type types[] = {RL_JSON_TRUE, RL_JSON_FALSE, RL_JSON_NULL};
  for (int i = 0; i < 3; i++) {
    size_t n = strlen(lits[i]);
    if (jp->len - jp->pos >= n && memcmp(jp->p + jp->pos, lits[i], n) == 0) {
      jp->pos += n;
      nd->type = types[i];
      return 0;
    }
  }
  return jerr(jp, "unexpected character");
}

/* ---- objects and arrays ----------------------------------------------------- */

static int parse_value(jparser *jp, uint32_t *idx);

/* Keys in byte order, then by position, so that a repeated key is reported
 * at its second occurrence. */
static int by_key(const void *a, const void *b) {
  const rl_json_node *x = *(const rl_json_node *const *)a, *y = *(const rl_json_node *const *)b;
  uint32_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
  int c = memcmp(x->key, y->key, n);
  if (!c) c = (x->key_len > y->key_len) - (x->key_len < y->key_len);
  return c ? c : (x->at > y->at) - (x->at < y->at);
}

static bool same_key(const rl_json_node *x, const rl_json_node *y) {
  return x->key_len == y->key_len && memcmp(x->key, y->key, x->key_len) == 0;
}

/* Refuse an object (node idx) holding the same key twice. */
static int check_dup_keys(jparser *jp, uint32_t idx) {
  uint32_t n = jp->nodes[idx].n;
  if (n < 2) return 0;
  rl_json_node **m = malloc(n * sizeof *m);
  if (!m) return jerr(jp, "out of memory");
  uint32_t k = 0;
  for (uint32_t c = jp->nodes[idx].child; k < n; c = jp->nodes[c].next) m[k++] = &jp->nodes[c];
  qsort(m, n, sizeof *m, by_key);
  const char *root_keys = jp->o->root_keys ? jp->o->root_keys : "key";
  int rc = 0;
  for (uint32_t i = 1; i < n && !rc; i++)
    if (same_key(m[i - 1], m[i]))
      rc = rl_err("%s: duplicate %s \"%.200s\" at byte %" PRIu32, jp->o->prefix,
                  idx == 0 ? root_keys : "key", m[i]->key, m[i]->at);
  free(m);
  return rc;
}

/* Link child c after *last under parent p. */
static void link_child(jparser *jp, uint32_t p, uint32_t *last, uint32_t c) {
  if (jp->nodes[p].n++ == 0) jp->nodes[p].child = c;
  else jp->nodes[*last].next = c;
  *last = c;
}

/* Members or items until `close`; objects have "key": before each value. */
static int parse_container(jparser *jp, uint32_t idx, bool obj) {
  char close = obj ? '}' : ']';
  uint32_t last = 0;
  jp->pos++;
  skip_ws(jp);
  if (peek(jp) == close) {
    jp->pos++;
    return 0;
  }
  for (;;) {
    const char *key = NULL;
    uint32_t key_len = 0, c;
    if (obj) {
      if (peek(jp) != '"') return jerr(jp, "expected a string key");
      if (parse_string(jp, &key, &key_len)) return -1;
      skip_ws(jp);
      if (peek(jp) != ':') return jerr(jp, "expected ':' after a key");
      jp->pos++;
      skip_ws(jp);
    }
    if (parse_value(jp, &c)) return -1;
    jp->nodes[c].key = key;
    jp->nodes[c].key_len = key_len;
    link_child(jp, idx, &last, c);
    skip_ws(jp);
    if (peek(jp) == close) {
      jp->pos++;
      return obj ? check_dup_keys(jp, idx) : 0;
    }
    if (peek(jp) != ',') return jerr(jp, obj ? "expected ',' or '}'" : "expected ',' or ']'");
    jp->pos++;
    skip_ws(jp);
    if (peek(jp) == close) return jerr(jp, "trailing comma");
  }
}

/* One value at the current position (no leading whitespace). */
static int parse_value(jparser *jp, uint32_t *idx) {
  int c = peek(jp), rc;
  if (c < 0) {
    char what[96];
    snprintf(what, sizeof what, "unexpected end of %s", jp->o->text);
    return jerr(jp, what);
  }
  if (jp->depth >= RL_JSON_MAX_DEPTH) return jerr(jp, "nesting too deep");
  if (new_node(jp, RL_JSON_NULL, idx)) return -1;
  jp->depth++;
  if (c == '{' || c == '[') {
    jp->nodes[*idx].type = c == '{' ? RL_JSON_OBJ : RL_JSON_ARR;
    rc = parse_container(jp, *idx, c == '{');
  } else if (c == '"') {
    const char *s = NULL;
    uint32_t n = 0;
    rc = parse_string(jp, &s, &n);
    jp->nodes[*idx].type = RL_JSON_STR;
    jp->nodes[*idx].v.s = s;
    jp->nodes[*idx].len = n;
  } else if (c == '-' || (c >= '0' && c <= '9')) {
    rc = parse_number(jp, &jp->nodes[*idx]);
  } else {
    rc = parse_literal(jp, &jp->nodes[*idx]);
  }
  jp->depth--;
  return rc;
}

/* ---- the document ----------------------------------------------------------- */

/* The noun for what the root is, in "unexpected data after the JSON ...". */
static const char *type_noun(rl_json_type t) {
  switch (t) {
  case RL_JSON_OBJ: return "object";
  case RL_JSON_ARR: return "array";
  case RL_JSON_STR: return "string";
  case RL_JSON_INT:
  case RL_JSON_NUM: return "number";
  default: return "value";
  }
}

static int parse_text(jparser *jp) {
  uint32_t root;
  skip_ws(jp);
  if (jp->o->want_object && peek(jp) != '{') {
    char what[96];
    snprintf(what, sizeof what, "the %s must be a JSON object, expected '{'", jp->o->text);
    return jerr(jp, what);
  }
  if (parse_value(jp, &root)) return -1;
  skip_ws(jp);
  if (jp->pos != jp->len) {
    char what[64];
    snprintf(what, sizeof what, "unexpected data after the JSON %s",
             type_noun(jp->nodes[root].type));
    return jerr(jp, what);
  }
  return 0;
}

int rl_json_parse(char *p, size_t len, const rl_json_opts *opts, rl_json_doc *doc) {
  jparser jp = {.p = p, .len = len, .o = opts};
  *doc = (rl_json_doc){0};
  /* node offsets are uint32_t */
  if (len > UINT32_MAX - (size_t)opts->base - 1) return jerr(&jp, "text too long");
  p[len] = 0;
  if (parse_text(&jp)) {
    free(jp.nodes);
    return -1;
  }
  doc->nodes = jp.nodes;
  doc->n = jp.nn;
  return 0;
}

void rl_json_free(rl_json_doc *doc) {
  free(doc->nodes);
  *doc = (rl_json_doc){0};
}

const rl_json_node *rl_json_member(const rl_json_doc *doc, const rl_json_node *o,
                                   const char *key) {
  size_t n = strlen(key);
  uint32_t c = o->child;
  for (uint32_t i = 0; i < o->n; i++, c = doc->nodes[c].next)
    if (doc->nodes[c].key_len == n && memcmp(doc->nodes[c].key, key, n) == 0)
      return &doc->nodes[c];
  return NULL;
}
