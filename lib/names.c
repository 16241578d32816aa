/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Names of queue children: which library wrote a child, its sequence, the queue
 * order, and the GUIDs we put into our own names.
 *
 * The sequence is the parent's signed 32-bit counter printed "%010d" by the
 * server; after overflow it is negative ("-000000001", "-2147483648"). Queue
 * order compares sequences in serial-number arithmetic (a before b when
 * (int32)(a - b) < 0), which stays right across the wrap as long as the live
 * queue spans less than 2^31 sequence numbers; ties are broken by name.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static int is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int all_hex(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!is_hex(s[i]))
      return 0;
  return 1;
}

/* 8-4-4-4-12 hex digits. */
static int is_uuid36(const char *s) {
  static const int dash[] = {8, 13, 18, 23};
  for (int i = 0, d = 0; i < 36; i++) {
    if (d < 4 && i == dash[d]) {
      if (s[i] != '-')
        return 0;
      d++;
    } else if (!is_hex(s[i])) {
      return 0;
    }
  }
  return 1;
}

int zkr__seq_parse(const char *s, int32_t *out) {
  size_t n = strlen(s), digits = s[0] == '-' ? n - 1 : n;
  int64_t v = 0;

  /* Exactly what "%010d" prints: 10 characters, or 11 for values below -999999999. */
  if (!(n == 10 || (n == 11 && s[0] == '-')) || digits == 0)
    return -1;
  for (size_t i = n - digits; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (s[i] - '0');
  }
  if (s[0] == '-')
    v = -v;
  if (v < INT32_MIN || v > INT32_MAX || (n == 11 && v > -1000000000))
    return -1;
  *out = (int32_t)v;
  return 0;
}

/* If name ends in MARKER<seq>, the offset of the marker, else -1. */
static long marker_at(const char *name, const char *marker, int32_t *seq) {
  const char *p = NULL, *q = name;
  size_t ml = strlen(marker);
  while ((q = strstr(q, marker)) != NULL) { /* the last occurrence */
    p = q;
    q++;
  }
  if (!p || zkr__seq_parse(p + ml, seq) != 0)
    return -1;
  return p - name;
}

void zkr__child_parse(const char *name, zkr__child_t *c) {
  long at;
  memset(c, 0, sizeof(*c));
  c->name = name;
  c->format = ZKR_FORMAT_UNKNOWN;

  if ((at = marker_at(name, "__rlock__", &c->seq)) >= 0) {
    c->format = ZKR_FORMAT_KAZOO;
    c->reader = 1;
  } else if ((at = marker_at(name, "__lock__", &c->seq)) >= 0) {
    c->format = ZKR_FORMAT_KAZOO;
  } else if ((at = marker_at(name, "__READ__", &c->seq)) >= 0) {
    c->format = ZKR_FORMAT_CURATOR_RW;
    c->reader = 1;
  } else if ((at = marker_at(name, "__WRIT__", &c->seq)) >= 0) {
    c->format = ZKR_FORMAT_CURATOR_RW;
  } else if ((at = marker_at(name, "latch-", &c->seq)) >= 0) {
    c->format = ZKR_FORMAT_CURATOR_LATCH;
  } else if ((at = marker_at(name, "-lease-", &c->seq)) >= 0) {
    c->format = ZKR_FORMAT_CURATOR_LEASE;
  } else if ((at = marker_at(name, "lock-", &c->seq)) >= 0) {
    /* _c_<uuid36>-lock- (Curator, us), _c_<hex32>-lock- (go), else plain. */
    if (strncmp(name, "_c_", 3) == 0 && at == 3 + 36 + 1 && is_uuid36(name + 3) &&
        name[3 + 36] == '-')
      c->format = ZKR_FORMAT_CURATOR;
    else if (strncmp(name, "_c_", 3) == 0 && at == 3 + 32 + 1 && all_hex(name + 3, 32) &&
             name[3 + 32] == '-')
      c->format = ZKR_FORMAT_GO;
    else
      c->format = ZKR_FORMAT_PLAIN;
  } else if (name[0] == 'x' && name[1] == '-') {
    /* x-<session>-<seq>: the session part has no '-', so the marker ends at the
     * first '-' after it (a negative sequence brings its own '-'). */
    const char *dash = strchr(name + 2, '-');
    size_t sl = dash ? (size_t)(dash - (name + 2)) : 0;
    if (dash && sl > 0 && zkr__seq_parse(dash + 1, &c->seq) == 0) {
      if (sl == 16 && all_hex(name + 2, 16))
        c->format = ZKR_FORMAT_ZK_C;
      else if (strspn(name + 2, "0123456789") == sl)
        c->format = ZKR_FORMAT_ZK_JAVA;
    }
  }
  (void)at;
  if (c->format == ZKR_FORMAT_UNKNOWN)
    c->seq = 0;
}

int zkr__child_cmp(const void *pa, const void *pb) {
  const zkr__child_t *a = pa, *b = pb;
  if (a->contender != b->contender)
    return a->contender ? -1 : 1;
  if (a->contender) {
    int32_t d = (int32_t)((uint32_t)a->seq - (uint32_t)b->seq);
    if (d != 0)
      return d < 0 ? -1 : 1;
  }
  return strcmp(a->name, b->name);
}

int zkr__children_order(const struct String_vector *v, int latch_mode, zkr__child_t **out,
                        int *ncontenders) {
  zkr__child_t *c;
  int n = v ? v->count : 0, k = 0;

  *out = NULL;
  *ncontenders = 0;
  if (n == 0)
    return 0;
  if (!(c = calloc((size_t)n, sizeof(*c))))
    return ZKR_ENOMEM;
  for (int i = 0; i < n; i++) {
    zkr__child_parse(v->data[i], &c[i]);
    c[i].contender = c[i].format != ZKR_FORMAT_UNKNOWN &&
                     (latch_mode || c[i].format != ZKR_FORMAT_CURATOR_LATCH);
    k += c[i].contender;
  }
  qsort(c, (size_t)n, sizeof(*c), zkr__child_cmp);
  *out = c;
  *ncontenders = k;
  return 0;
}

int zkr__name_has_guid(const char *name, const char *guid) {
  size_t g = strlen(guid);
  /* Ours are "_c_<guid>-<tag><seq>" (never longer than 64), or with a 32-digit
   * GUID kazoo's "<guid>__lock__<seq>" and its lease "<guid>". */
  if (strnlen(name, 65) > 64)
    return 0;
  if (g == 32 && strncmp(name, guid, g) == 0)
    return name[g] == '\0' || strncmp(name + g, "__", 2) == 0;
  return strncmp(name, "_c_", 3) == 0 && strncmp(name + 3, guid, g) == 0 && name[3 + g] == '-';
}

char *zkr__path_join(const char *parent, const char *name) {
  size_t pl = strcmp(parent, "/") == 0 ? 0 : strlen(parent), nl = strlen(name);
  char *p = malloc(pl + nl + 2);
  if (!p)
    return NULL;
  memcpy(p, parent, pl);
  p[pl] = '/';
  memcpy(p + pl + 1, name, nl + 1);
  return p;
}

int zkr__guid(char out[37]) {
  unsigned char b[16];
  size_t got = 0;
  while (got < sizeof(b)) {
    ssize_t r = getrandom(b + got, sizeof(b) - got, 0);
    if (r < 0)
      return ZKR_ESYSTEM;
    got += (size_t)r;
  }
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
  snprintf(out, 37,
           "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
           b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
           b[13], b[14], b[15]);
  return 0;
}

const char *zkr_format_name(int format) {
  switch (format) {
  case ZKR_FORMAT_CURATOR: return "zkrecipes/curator";
  case ZKR_FORMAT_CURATOR_LATCH: return "zkrecipes/curator-latch";
  case ZKR_FORMAT_CURATOR_RW: return "curator-rwlock";
  case ZKR_FORMAT_GO: return "go";
  case ZKR_FORMAT_KAZOO: return "kazoo";
  case ZKR_FORMAT_ZK_C: return "zk-c-recipe";
  case ZKR_FORMAT_ZK_JAVA: return "zk-java-recipe";
  case ZKR_FORMAT_PLAIN: return "plain-lock";
  case ZKR_FORMAT_CURATOR_LEASE: return "zkrecipes/curator-lease";
  default: return "unknown";
  }
}
