/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zkraw - raw ZooKeeper operations for the shell tests (what another library
 * would have written), with the plain C client.
 *
 *   zkraw HOSTS create PATH [DATA]        persistent node (parents must exist)
 *   zkraw HOSTS create-seq PREFIX [DATA]  persistent sequential; prints the path
 *   zkraw HOSTS mkdirs PATH               persistent PATH and its parents
 *   zkraw HOSTS delete PATH
 *   zkraw HOSTS hex PATH                  data as hex ("" when empty)
 *   zkraw HOSTS set-hex PATH HEX
 *   zkraw HOSTS count PATH                number of children (0 if PATH is missing)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zookeeper/zookeeper.h>

static void quiet(const char *m) {
  (void)m;
}

int main(int argc, char **argv) {
  zhandle_t *zh;
  const char *op, *path, *data;
  char buf[1 << 16], made[1024];
  int rc = ZOK, len, tries = 0;

  if (argc < 4) {
    fprintf(stderr,
            "usage: zkraw HOSTS create|create-seq|mkdirs|delete|hex|set-hex|count "
            "PATH [DATA]\n");
    return 2;
  }
  op = argv[2];
  path = argv[3];
  data = argc > 4 ? argv[4] : NULL;
  zh = zookeeper_init2(argv[1], NULL, 10000, NULL, NULL, 0, quiet);
  while (zh && zoo_state(zh) != ZOO_CONNECTED_STATE && tries++ < 1000)
    usleep(10000);
  if (!zh || zoo_state(zh) != ZOO_CONNECTED_STATE) {
    fprintf(stderr, "zkraw: cannot connect to %s\n", argv[1]);
    return 1;
  }
  if (!strcmp(op, "create") || !strcmp(op, "create-seq")) {
    int seq = !strcmp(op, "create-seq");
    rc = zoo_create(zh, path, data, data ? (int)strlen(data) : -1, &ZOO_OPEN_ACL_UNSAFE,
                    seq ? ZOO_SEQUENCE : 0, made, sizeof(made));
    if (rc == ZOK && seq)
      printf("%s\n", made);
  } else if (!strcmp(op, "mkdirs")) {
    char p[1024];
    for (size_t i = 1; i <= strlen(path); i++) {
      if (path[i] == '/' || path[i] == '\0') {
        memcpy(p, path, i);
        p[i] = '\0';
        rc = zoo_create(zh, p, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
        if (rc == ZNODEEXISTS)
          rc = ZOK;
        if (rc != ZOK)
          break;
      }
    }
  } else if (!strcmp(op, "delete")) {
    rc = zoo_delete(zh, path, -1);
  } else if (!strcmp(op, "hex")) {
    len = sizeof(buf);
    if ((rc = zoo_get(zh, path, 0, buf, &len, NULL)) == ZOK) {
      for (int i = 0; i < len; i++)
        printf("%02x", (unsigned char)buf[i]);
      printf("\n");
    }
  } else if (!strcmp(op, "set-hex")) {
    int n = data ? (int)strlen(data) / 2 : 0;
    for (int i = 0; i < n; i++)
      sscanf(data + 2 * i, "%2hhx", (unsigned char *)&buf[i]);
    rc = zoo_set(zh, path, buf, n, -1);
  } else if (!strcmp(op, "count")) {
    struct String_vector v;
    rc = zoo_get_children(zh, path, 0, &v);
    if (rc == ZNONODE) {
      printf("0\n");
      rc = ZOK;
    } else if (rc == ZOK) {
      printf("%d\n", v.count);
      deallocate_String_vector(&v);
    }
  } else {
    fprintf(stderr, "zkraw: unknown operation %s\n", op);
    rc = ZBADARGUMENTS;
  }
  if (rc != ZOK)
    fprintf(stderr, "zkraw: %s %s: %s\n", op, path, zerror(rc));
  zookeeper_close(zh);
  return rc == ZOK ? 0 : 1;
}
