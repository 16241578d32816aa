/* SPDX-License-Identifier: Apache-2.0 */
/*
 * service_pool - a pool of workers that register themselves as instances of a
 * service, and a client that spreads its calls over the live ones.
 *
 *   service_pool HOSTS [WORKERS] [CALLS]
 *
 * Each worker (a thread with a session of its own, as a separate process
 * would have) listens on a TCP port of 127.0.0.1 and registers an instance of
 * service "echo" under a throwaway base path, in Apache Curator's format (a
 * Curator ServiceProvider or Spring Cloud Zookeeper would find it too). The
 * client asks a round-robin provider for an instance per call, connects to it
 * and sends a line; the worker answers with its name. Halfway through, one
 * worker stops (its registration goes with it) and the client's next calls
 * go to the others only. At the end: calls per worker, and 0 errors.
 */
#define _DEFAULT_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <zkrecipes.h>

#define MAX_WORKERS 8

typedef struct worker {
  int index;
  int fd; /* listening socket */
  int port;
  char name[32];
  _Atomic int served;
  _Atomic int stop;
  pthread_t thread;
  zkr_session_t *s;
  zkr_service_reg_t *reg;
} worker_t;

static const char *hosts;
static char base[64];

/* Answer each connection's line with the worker's name. */
static void *serve(void *arg) {
  worker_t *w = arg;
  while (!atomic_load(&w->stop)) {
    char buf[64];
    int c = accept(w->fd, NULL, NULL);
    ssize_t n;
    if (c < 0)
      continue; /* closed by stop: the loop ends */
    if ((n = read(c, buf, sizeof(buf))) > 0 && write(c, w->name, strlen(w->name)) > 0)
      atomic_fetch_add(&w->served, 1);
    close(c);
  }
  return NULL;
}

static int start_worker(worker_t *w, int index) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(a);
  zkr_service_instance_t inst;
  char payload[64];
  int rc;

  w->index = index;
  snprintf(w->name, sizeof(w->name), "worker-%d", index);
  if ((w->fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
      bind(w->fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(w->fd, 16) != 0 ||
      getsockname(w->fd, (struct sockaddr *)&a, &len) != 0) {
    perror("service_pool: socket");
    return -1;
  }
  w->port = ntohs(a.sin_port);
  if ((rc = zkr_session_open(hosts, 10000, 15000, &w->s)) != 0) {
    fprintf(stderr, "service_pool: %s: connect: %s\n", w->name, zkr_strerror(rc));
    return -1;
  }
  zkr_service_instance_init(&inst);
  inst.name = "echo";
  inst.id = w->name;
  inst.address = "127.0.0.1";
  inst.port = w->port;
  snprintf(payload, sizeof(payload), "{\"worker\":%d}", index);
  inst.payload = payload;
  if ((rc = zkr_service_register(w->s, base, &inst, 10000, &w->reg)) != 0) {
    fprintf(stderr, "service_pool: %s: register: %s\n", w->name, zkr_strerror(rc));
    return -1;
  }
  printf("%s: listening on 127.0.0.1:%d, registered as %s\n", w->name, w->port,
         zkr_service_reg_node(w->reg));
  return pthread_create(&w->thread, NULL, serve, w) == 0 ? 0 : -1;
}

static void stop_worker(worker_t *w) {
  zkr_service_reg_free(w->reg); /* unregisters first: no new calls come */
  w->reg = NULL;
  atomic_store(&w->stop, 1);
  shutdown(w->fd, SHUT_RDWR);
  pthread_join(w->thread, NULL);
  close(w->fd);
  zkr_session_free(w->s);
  w->s = NULL;
}

/* One call: connect to the instance, send a line, read the worker's name. */
static int call(const zkr_service_instance_t *in, char *who, size_t cap) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)in->port)};
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ssize_t n = -1;
  if (fd < 0 || inet_pton(AF_INET, in->address, &a.sin_addr) != 1 ||
      connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || write(fd, "hello\n", 6) != 6 ||
      (n = read(fd, who, cap - 1)) <= 0) {
    if (fd >= 0)
      close(fd);
    return -1;
  }
  who[n] = '\0';
  close(fd);
  return 0;
}

int main(int argc, char **argv) {
  int nworkers = argc > 2 ? atoi(argv[2]) : 3, calls = argc > 3 ? atoi(argv[3]) : 30;
  worker_t workers[MAX_WORKERS];
  zkr_session_t *client = NULL;
  zkr_service_provider_t *p = NULL;
  int errors = 0, after_stop_to_stopped = 0, rc;

  if (argc < 2 || nworkers < 2 || nworkers > MAX_WORKERS || calls < 2) {
    fprintf(stderr, "usage: service_pool HOSTS [WORKERS 2..%d] [CALLS]\n", MAX_WORKERS);
    return 64;
  }
  hosts = argv[1];
  snprintf(base, sizeof(base), "/zkrecipes-example-%ld/services", (long)getpid());
  memset(workers, 0, sizeof(workers));
  for (int i = 0; i < nworkers; i++)
    if (start_worker(&workers[i], i) != 0)
      return 1;
  if ((rc = zkr_session_open(hosts, 10000, 15000, &client)) != 0 ||
      (rc = zkr_service_provider_new(client, base, "echo", ZKR_PICK_ROUND_ROBIN, &p)) != 0 ||
      (rc = zkr_service_provider_wait_ready(p, 10000)) != 0) {
    fprintf(stderr, "service_pool: client: %s\n", zkr_strerror(rc));
    return 1;
  }
  for (int k = 0; k < calls; k++) {
    zkr_service_instance_t in;
    char who[64];
    if (k == calls / 2) {
      stop_worker(&workers[0]);
      printf("%s: stopped\n", workers[0].name);
      /* The provider follows the service's node: wait until it no longer
       * offers the stopped worker (a real client would just retry). */
      for (int tries = 0; tries < 500; tries++) {
        int gone = 1;
        if (zkr_service_provider_get(p, &in) == 0) {
          gone = strcmp(in.id, workers[0].name) != 0;
          zkr_service_instance_clear(&in);
        }
        if (gone)
          break;
        usleep(10000);
      }
    }
    if ((rc = zkr_service_provider_get(p, &in)) != 0) {
      fprintf(stderr, "service_pool: no instance: %s\n", zkr_strerror(rc));
      errors++;
      continue;
    }
    if (call(&in, who, sizeof(who)) != 0) {
      fprintf(stderr, "service_pool: call to %s (%s:%d) failed: %s\n", in.id, in.address,
              in.port, strerror(errno));
      zkr_service_provider_note_error(p, in.id);
      errors++;
    } else if (k >= calls / 2 && !strcmp(who, workers[0].name)) {
      after_stop_to_stopped++;
    }
    zkr_service_instance_clear(&in);
  }
  for (int i = 0; i < nworkers; i++)
    printf("%s: %d calls\n", workers[i].name, atomic_load(&workers[i].served));
  printf("errors: %d, calls to the stopped worker after it stopped: %d\n", errors,
         after_stop_to_stopped);
  zkr_service_provider_free(p);
  for (int i = 1; i < nworkers; i++)
    stop_worker(&workers[i]);
  zkr_session_free(client);
  return errors || after_stop_to_stopped ? 1 : 0;
}
