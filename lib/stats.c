/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-session statistics: event counts (relaxed atomics: recipes count with
 * their own mutex held, from any thread) and a histogram of grant waits from
 * which zkr_session_stats() reads the percentiles.
 *
 * The histogram is log-linear: values below 8 us have a bucket each; above,
 * each power of two is split into 8 buckets, so a bucket's width is at most
 * 1/8 of its lower bound. 320 buckets reach 2^40 us (about 12 days); longer
 * waits go into the last. A percentile is reported as the upper bound of its
 * bucket, never above the largest wait seen.
 */
#include "session_priv.h"

#include <string.h>

static int bucket_of(uint64_t us) {
  int e, idx;
  if (us < 8)
    return (int)us;
  e = 63 - __builtin_clzll(us); /* us >= 8: e >= 3 */
  idx = (e - 2) * 8 + (int)((us >> (e - 3)) & 7);
  return idx < ZKR__HIST_N ? idx : ZKR__HIST_N - 1;
}

static uint64_t bucket_top(int idx) {
  int e, sub;
  if (idx < 8)
    return (uint64_t)idx;
  e = idx / 8 + 2;
  sub = idx % 8;
  return ((uint64_t)(8 + sub) << (e - 3)) + ((uint64_t)1 << (e - 3)) - 1;
}

void zkr__stat(zkr_session_t *s, int st) {
  atomic_fetch_add_explicit(&s->stats.n[st], 1, memory_order_relaxed);
}

void zkr__stat_grant(zkr_session_t *s, int64_t us) {
  uint64_t v = us > 0 ? (uint64_t)us : 0;
  uint64_t max = atomic_load_explicit(&s->stats.wait_max, memory_order_relaxed);
  /* The maximum first: a snapshot that sees the bucket sees a maximum at least
   * as large, in practice (these are statistics, not a protocol). */
  while (v > max && !atomic_compare_exchange_weak_explicit(
                        &s->stats.wait_max, &max, v, memory_order_relaxed,
                        memory_order_relaxed)) {
  }
  atomic_fetch_add_explicit(&s->stats.hist[bucket_of(v)], 1, memory_order_relaxed);
  zkr__stat(s, ZKR__ST_GRANTS);
}

/* The upper bound of the bucket holding the q-th of n values (1-based). */
static uint64_t rank_value(const uint64_t *h, uint64_t q) {
  uint64_t seen = 0;
  for (int i = 0; i < ZKR__HIST_N; i++) {
    seen += h[i];
    if (seen >= q)
      return bucket_top(i);
  }
  return bucket_top(ZKR__HIST_N - 1);
}

static uint64_t get(const zkr_session_t *s, int st) {
  return atomic_load_explicit(&s->stats.n[st], memory_order_relaxed);
}

int zkr_session_stats(zkr_session_t *s, zkr_session_stats_t *out) {
  uint64_t h[ZKR__HIST_N], n = 0;
  int req = 0, w = 0;

  if (!s || !out)
    return ZKR_EINVAL;
  memset(out, 0, sizeof(*out));
  out->sessions = get(s, ZKR__ST_SESSIONS);
  out->disconnects = get(s, ZKR__ST_DISCONNECTS);
  out->reconnects = get(s, ZKR__ST_RECONNECTS);
  out->expiries = get(s, ZKR__ST_EXPIRIES);
  pthread_mutex_lock(&s->mu);
  out->requests = s->stats.requests;
  out->watches = s->stats.watches;
  out->watch_bytes = s->watch_bytes;
  pthread_mutex_unlock(&s->mu);
  zkr__session_outstanding(s, &req, &w);
  out->in_flight = req;
  out->watching = w;
  out->acquires = get(s, ZKR__ST_ACQUIRES);
  out->waits = get(s, ZKR__ST_WAITS);
  out->grants = get(s, ZKR__ST_GRANTS);
  out->timeouts = get(s, ZKR__ST_TIMEOUTS);
  out->conflicts = get(s, ZKR__ST_CONFLICTS);
  out->cancels = get(s, ZKR__ST_CANCELS);
  out->failures = get(s, ZKR__ST_FAILURES);
  out->losses = get(s, ZKR__ST_LOSSES);
  out->counter_ops = get(s, ZKR__ST_COUNTER_OPS);
  out->counter_conflicts = get(s, ZKR__ST_COUNTER_CONFLICTS);
  out->counter_unknown = get(s, ZKR__ST_COUNTER_UNKNOWN);

  /* A snapshot of the histogram; grants counted meanwhile may be missing from
   * it, so its own total is what the ranks are taken over. */
  for (int i = 0; i < ZKR__HIST_N; i++) {
    h[i] = atomic_load_explicit(&s->stats.hist[i], memory_order_relaxed);
    n += h[i];
  }
  if (n > 0) {
    uint64_t max = atomic_load_explicit(&s->stats.wait_max, memory_order_relaxed);
    uint64_t p50 = rank_value(h, (n + 1) / 2);
    uint64_t p99 = rank_value(h, n - n / 100);
    out->wait_max_us = max;
    out->wait_p50_us = p50 < max ? p50 : max;
    out->wait_p99_us = p99 < max ? p99 : max;
  }
  return 0;
}
