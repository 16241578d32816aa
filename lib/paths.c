/* SPDX-License-Identifier: Apache-2.0 */
/* Checks on what callers hand us as paths and host strings, done before anything
 * is sent so that bad input is ZKR_EINVAL with no side effect. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/*
 * An absolute path: "/" or "/a/b" with no empty, "." or ".." segment, no trailing
 * slash, no control characters (ZooKeeper refuses those) and at most
 * ZKR__PATH_MAX bytes.
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
  for (const char *p = path + 1;; p++) {
    unsigned char ch = (unsigned char)*p;
    if (ch == '/' || ch == '\0') {
      size_t n = (size_t)(p - seg);
      if (n == 0) /* "//" or a trailing "/" */
        return ZKR_EINVAL;
      if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
        return ZKR_EINVAL;
      if (ch == '\0')
        return 0;
      seg = p + 1;
    } else if (ch < 0x20 || ch == 0x7f) {
      return ZKR_EINVAL;
    }
  }
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
