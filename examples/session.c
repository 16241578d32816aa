/* SPDX-License-Identifier: Apache-2.0 */
/*
 * session - open a zkrecipes session, watch its state, use the raw handle.
 *
 *   session [HOSTS]      HOSTS defaults to $ZKR_HOSTS, then 127.0.0.1:2181
 *
 * Connects, prints the session id and negotiated timeout, creates an ephemeral
 * node (gone again as soon as the session closes) and closes.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <zkrecipes.h>

static void on_event(zkr_session_t *s, int event, void *arg) {
  (void)arg;
  printf("event: %-11s session 0x%016" PRIx64 "\n", zkr_session_event_name(event),
         (uint64_t)zkr_session_id(s));
}

int main(int argc, char **argv) {
  const char *hosts = argc > 1 ? argv[1] : getenv("ZKR_HOSTS");
  zkr_session_t *s;
  char path[128], created[160];
  int rc;

  if (!hosts)
    hosts = "127.0.0.1:2181";
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("zkrecipes %s, connecting to %s\n", zkr_version_string(), hosts);

  if ((rc = zkr_session_new(&s)) != 0 ||
      (rc = zkr_session_add_listener(s, on_event, NULL, NULL)) != 0 ||
      (rc = zkr_session_set_timeout(s, 10000)) != 0 ||
      (rc = zkr_session_connect(s, hosts, 10000)) != 0) {
    fprintf(stderr, "session: cannot connect to %s: %s (%s)\n", hosts, zkr_strerror(rc),
            zkr_errname(rc));
    zkr_session_free(s);
    return 1;
  }
  printf("connected: session 0x%016" PRIx64 ", timeout %d ms\n",
         (uint64_t)zkr_session_id(s), zkr_session_negotiated_timeout(s));

  /* The raw ZooKeeper handle is there for anything the recipes do not cover. */
  snprintf(path, sizeof(path), "/zkrecipes-example-%ld", (long)getpid());
  rc = zoo_create(zkr_session_zhandle(s), path, "hello", 5, zkr_session_acl(s),
                  ZOO_EPHEMERAL, created, sizeof(created));
  if (rc != ZOK) {
    fprintf(stderr, "session: create %s: %s\n", path, zkr_strerror(rc));
    zkr_session_free(s);
    return 1;
  }
  printf("created ephemeral %s\n", created);
  zkr_session_free(s);
  printf("closed; the ephemeral node went with the session\n");
  return 0;
}
