/* SPDX-License-Identifier: Apache-2.0 */
/* Error table: names and descriptions generated from the X-macro lists in
 * zkrecipes/common.h, so the enum and the strings cannot drift apart. */
#include "internal.h"

#include <stddef.h>

struct errent {
  int code;
  const char *name;
  const char *text;
};

static const struct errent errtab[] = {
#define ZKR__ERR_OURS(name, value, text) {(value), "ZKR_" #name, (text)},
#define ZKR__ERR_ZOO(name, value, text)  {(value), #name, (text)},
    ZKR_ZOO_ERRNO_MAP(ZKR__ERR_ZOO) ZKR_ERRNO_MAP(ZKR__ERR_OURS)
#undef ZKR__ERR_OURS
#undef ZKR__ERR_ZOO
};

static const struct errent *lookup(int rc) {
  for (size_t i = 0; i < sizeof(errtab) / sizeof(errtab[0]); i++)
    if (errtab[i].code == rc)
      return &errtab[i];
  return NULL;
}

const char *zkr_strerror(int rc) {
  const struct errent *e = lookup(rc);
  return e ? e->text : "unknown error code";
}

const char *zkr_errname(int rc) {
  const struct errent *e = lookup(rc);
  return e ? e->name : "unknown";
}
