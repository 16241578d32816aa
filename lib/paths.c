/* SPDX-License-Identifier: Apache-2.0 */
/* Checks on what callers hand us as paths and host strings, done before anything
 * is sent so that bad input is ZKR_EINVAL with no side effect. */
#include "internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * Decode one UTF-8 sequence at p (strictly: no overlong forms, no encoded
 * surrogates, nothing above U+10FFFF). Returns its length and the code point,
 * or 0 if the bytes are not well-formed UTF-8.
 */
static int utf8_next(const unsigned char *p, uint32_t *cp) {
  uint32_t c = p[0], min;
  int n;

  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2, c &= 0x1f, min = 0x80;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3, c &= 0x0f, min = 0x800;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4, c &= 0x07, min = 0x10000;
  } else {
    return 0;
  }
  for (int i = 1; i < n; i++) {
    if ((p[i] & 0xc0) != 0x80) /* also stops at the terminating NUL */
      return 0;
    c = (c << 6) | (p[i] & 0x3f);
  }
  if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
    return 0;
  *cp = c;
  return n;
}

/*
 * Characters the server accepts in a path. It decodes the bytes as UTF-8 into
 * Java's UTF-16 (malformed input becomes U+FFFD, code points above U+FFFF become
 * surrogate pairs) and refuses U+0000-U+001F, U+007F-U+009F, U+D800-U+F8FF and
 * U+FFF0-U+FFFF, so what is left is these three ranges.
 */
static int path_char_ok(uint32_t cp) {
  return (cp >= 0x20 && cp <= 0x7e) || (cp >= 0xa0 && cp <= 0xd7ff) ||
         (cp >= 0xf900 && cp <= 0xffef);
}

/*
 * An absolute path the server will accept: "/" or "/a/b" with no empty, "." or
 * ".." segment, no trailing slash, only characters the server accepts (see
 * path_char_ok) and at most ZKR__PATH_MAX bytes. Checked before anything is sent,
 * so that a refused path never leaves container parents behind.
 */
int zkr__path_check(const char *path) {
  size_t len;
  const char *seg;

  if (!path || path[0] != '/')
    return ZKR_EINVAL;
  len = strnlen(path, ZKR__PATH_MAX + 1);
  if (len > ZKR__PATH_MAX)
    return ZKR_EINVAL;
  if (len == 1)
    return 0;
  seg = path + 1;
  for (const char *p = path + 1;;) {
    unsigned char ch = (unsigned char)*p;
    if (ch == '/' || ch == '\0') {
      size_t n = (size_t)(p - seg);
      if (n == 0) /* "//" or a trailing "/" */
        return ZKR_EINVAL;
      if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
        return ZKR_EINVAL;
      if (ch == '\0')
        return 0;
      seg = ++p;
    } else {
      uint32_t cp;
      int n = utf8_next((const unsigned char *)p, &cp);
      if (n == 0 || !path_char_ok(cp))
        return ZKR_EINVAL;
      p += n;
    }
  }
}

int zkr_path_check(const char *path) {
  return zkr__path_check(path);
}

int zkr__recipe_path_check(const char *path) {
  if (zkr__path_check(path) != 0 || strcmp(path, "/") == 0)
    return ZKR_EINVAL;
  /* The server's own tree (quotas, config): no recipe belongs there. */
  if (strcmp(path, "/zookeeper") == 0 || strncmp(path, "/zookeeper/", 11) == 0)
    return ZKR_EINVAL;
  return 0;
}

/* One "host:port" or "[v6addr]:port" entry of length n. */
static int host_entry_check(const char *e, size_t n) {
  const char *colon;
  size_t hostlen, portlen;
  long port = 0;

  if (n == 0)
    return ZKR_EINVAL;
  if (e[0] == '[') {
    const char *close = memchr(e, ']', n);
    if (!close || close == e + 1 || (size_t)(close - e) + 1 >= n || close[1] != ':')
      return ZKR_EINVAL;
    colon = close + 1;
  } else {
    colon = NULL;
    for (size_t i = 0; i < n; i++)
      if (e[i] == ':')
        colon = e + i;
    if (!colon)
      return ZKR_EINVAL;
  }
  hostlen = (size_t)(colon - e);
  portlen = n - hostlen - 1;
  if (hostlen == 0 || portlen == 0 || portlen > 5)
    return ZKR_EINVAL;
  for (size_t i = 0; i < hostlen; i++) {
    unsigned char ch = (unsigned char)e[i];
    if (ch <= 0x20 || ch == 0x7f)
      return ZKR_EINVAL;
  }
  for (size_t i = 0; i < portlen; i++) {
    char ch = colon[1 + i];
    if (ch < '0' || ch > '9')
      return ZKR_EINVAL;
    port = port * 10 + (ch - '0');
  }
  return (port >= 1 && port <= 65535) ? 0 : ZKR_EINVAL;
}

int zkr__hosts_check(const char *hosts) {
  const char *chroot, *p, *end;

  if (!hosts || !*hosts)
    return ZKR_EINVAL;
  if (strnlen(hosts, 8192) >= 8192)
    return ZKR_EINVAL;
  chroot = strchr(hosts, '/');
  end = chroot ? chroot : hosts + strlen(hosts);
  if (end == hosts)
    return ZKR_EINVAL;
  for (p = hosts; p <= end;) {
    const char *comma = memchr(p, ',', (size_t)(end - p));
    const char *stop = comma ? comma : end;
    if (host_entry_check(p, (size_t)(stop - p)) != 0)
      return ZKR_EINVAL;
    if (!comma)
      break;
    p = comma + 1;
  }
  /* The client takes everything after the first '/' as the chroot; "/" alone
   * would be a trailing slash. */
  if (chroot && (chroot[1] == '\0' || zkr__path_check(chroot) != 0))
    return ZKR_EINVAL;
  return 0;
}
