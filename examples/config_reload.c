/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_reload - a service that reloads its configuration when it changes.
 *
 *   config_reload HOSTS PATH [N]
 *
 * Follows the node at PATH with a node cache: loads the configuration (the
 * node's data) at start, then blocks in zkr_node_cache_wait() until the node
 * differs from what was loaded, and loads it again; N reloads (default: for
 * ever), then exits. A missing node is "no configuration" (defaults), not an
 * error: the service waits for it to appear. Try it with zkr:
 *
 *   config_reload 127.0.0.1:2181 /myapp/config &
 *   zkr set /myapp/config 'threads=8'
 *   zkr set /myapp/config 'threads=16'
 */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>

#include <zkrecipes.h>

/* What the service would do with a new configuration. */
static void apply_config(const char *data, const struct Stat *st) {
  if (!data)
    printf("config: absent, running with defaults\n");
  else
    printf("config: version %d (mzxid 0x%llx): %s\n", st->version,
           (unsigned long long)st->mzxid, data);
  fflush(stdout);
}

int main(int argc, char **argv) {
  zkr_session_t *s = NULL;
  zkr_node_cache_t *c = NULL;
  struct Stat known;
  long reloads, n = argc > 3 ? strtol(argv[3], NULL, 10) : -1;
  char *data = NULL;
  int rc;

  if (argc < 3) {
    fprintf(stderr, "usage: %s HOSTS PATH [N]\n", argv[0]);
    return 64;
  }
  if ((rc = zkr_session_open(argv[1], 10000, 10000, &s)) != 0) {
    fprintf(stderr, "config_reload: %s: %s\n", argv[1], zkr_strerror(rc));
    return 69;
  }
  if ((rc = zkr_node_cache_new(s, argv[2], &c)) != 0 || (rc = zkr_node_cache_start(c)) != 0) {
    fprintf(stderr, "config_reload: %s: %s\n", argv[2], zkr_strerror(rc));
    zkr_node_cache_free(c);
    zkr_session_free(s);
    return 64;
  }
  /* The first view: the node, or its absence. */
  rc = zkr_node_cache_wait(c, NULL, 10000, &data, NULL, &known);
  for (reloads = 0;; reloads++) {
    if (rc != 0 && rc != ZNONODE) {
      fprintf(stderr, "config_reload: %s\n", zkr_strerror(rc));
      break;
    }
    apply_config(data, &known); /* known is zeroed when absent */
    free(data);
    data = NULL;
    if (n >= 0 && reloads >= n)
      break;
    /* Sleep until the node differs from what was applied: a new version,
     * deleted, or created again. Changes while applying are not missed: the
     * wait compares with what was applied, not with the last notification. */
    rc = zkr_node_cache_wait(c, &known, -1, &data, NULL, &known);
  }
  zkr_node_cache_free(c);
  zkr_session_free(s);
  return rc == 0 || rc == ZNONODE ? 0 : 70;
}
