/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Process-wide logging. The library's messages and the ZooKeeper client's go to
 * one user callback; without one, to stderr only when ZKR_LOG asks for it.
 * log_mu guards log_fn/log_arg; log_max is read without it on the fast path.
 */
#include "internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static zkr_log_fn log_fn;
static void *log_arg;
static _Atomic int log_max = -1; /* -1: not initialised from the environment yet */

static const char *level_name(int level) {
  switch (level) {
  case ZKR_LOG_ERROR: return "error";
  case ZKR_LOG_WARN: return "warn";
  case ZKR_LOG_INFO: return "info";
  default: return "debug";
  }
}

static int env_level(void) {
  const char *v = getenv("ZKR_LOG");
  if (!v || !*v)
    return 0;
  for (int l = ZKR_LOG_ERROR; l <= ZKR_LOG_DEBUG; l++)
    if (strcasecmp(v, level_name(l)) == 0)
      return l;
  return ZKR_LOG_DEBUG; /* any other non-empty value: everything */
}

/* The ZooKeeper client formats its messages only at or above its own level:
 * keep it at ours (at least errors), so that debug shows its traces too and
 * nothing is formatted to be dropped. */
static void set_client_level(int level) {
  static const ZooLogLevel map[] = {ZOO_LOG_LEVEL_ERROR, ZOO_LOG_LEVEL_ERROR,
                                    ZOO_LOG_LEVEL_WARN, ZOO_LOG_LEVEL_INFO,
                                    ZOO_LOG_LEVEL_DEBUG};
  zoo_set_debug_level(map[level < 0 ? 0 : level > ZKR_LOG_DEBUG ? ZKR_LOG_DEBUG : level]);
}

static int current_max(void) {
  int m = atomic_load(&log_max);
  if (m < 0) {
    pthread_mutex_lock(&log_mu);
    if (atomic_load(&log_max) < 0) {
      atomic_store(&log_max, env_level());
      set_client_level(atomic_load(&log_max));
    }
    m = atomic_load(&log_max);
    pthread_mutex_unlock(&log_mu);
  }
  return m;
}

void zkr_log_set_callback(zkr_log_fn fn, void *arg, int max_level) {
  pthread_mutex_lock(&log_mu);
  log_fn = fn;
  log_arg = arg;
  atomic_store(&log_max, fn ? max_level : env_level());
  set_client_level(atomic_load(&log_max));
  pthread_mutex_unlock(&log_mu);
}

int zkr__log_enabled(int level) {
  return level <= current_max();
}

static void emit(int level, const char *msg) {
  zkr_log_fn fn;
  void *arg;
  pthread_mutex_lock(&log_mu);
  fn = log_fn;
  arg = log_arg;
  pthread_mutex_unlock(&log_mu);
  /* Called outside log_mu so a callback may itself change the log settings. */
  if (fn)
    fn(arg, level, msg);
  else
    fprintf(stderr, "zkrecipes %s: %s\n", level_name(level), msg);
}

void zkr__log(int level, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  if (!zkr__log_enabled(level))
    return;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  emit(level, buf);
}

/*
 * The client formats "<time>:<pid>(<tid>):ZOO_<LEVEL>@<func>@<line>: <text>\n".
 * Keep "<func>@<line>: <text>", take the level from the tag.
 */
void zkr__zoo_log(const char *message) {
  static const struct {
    const char *tag;
    int level;
  } tags[] = {{"ZOO_ERROR@", ZKR_LOG_ERROR},
              {"ZOO_WARN@", ZKR_LOG_WARN},
              {"ZOO_INFO@", ZKR_LOG_INFO},
              {"ZOO_DEBUG@", ZKR_LOG_DEBUG}};
  char buf[1024];
  int level = ZKR_LOG_INFO;
  const char *text = message;
  size_t n;

  if (!message)
    return;
  for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
    const char *p = strstr(message, tags[i].tag);
    if (p) {
      level = tags[i].level;
      text = p + strlen(tags[i].tag);
      break;
    }
  }
  if (!zkr__log_enabled(level))
    return;
  n = strlen(text);
  while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
    n--;
  snprintf(buf, sizeof(buf), "zookeeper: %.*s", (int)n, text);
  emit(level, buf);
}
