/* SPDX-License-Identifier: Apache-2.0 */
/* Service discovery: Curator's JSON byte for byte, and registration, reading
 * and picking against the real test servers. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "suites.h"
#include "testutil.h"

/* What curator-x-discovery (compatible mode, Jackson) writes for these values. */
static const char curator_json[] =
    "{\"name\":\"orders\",\"id\":\"5f0c1b7e-0000-4000-8000-000000000001\","
    "\"address\":\"10.0.0.7\",\"port\":8080,\"sslPort\":null,\"payload\":null,"
    "\"registrationTimeUTC\":1700000000000,\"serviceType\":\"DYNAMIC\",\"uriSpec\":{\"parts\":["
    "{\"value\":\"scheme\",\"variable\":true},{\"value\":\"://\",\"variable\":false},"
    "{\"value\":\"address\",\"variable\":true},{\"value\":\":\",\"variable\":false},"
    "{\"value\":\"port\",\"variable\":true}]}}";

static const char spring_payload[] =
    "{\"@class\":\"org.springframework.cloud.zookeeper.discovery.ZookeeperInstance\","
    "\"id\":\"orders-1\",\"name\":\"orders\",\"metadata\":{}}";

static void orders(zkr_service_instance_t *in) {
  zkr_service_instance_init(in);
  in->name = "orders";
  in->id = "5f0c1b7e-0000-4000-8000-000000000001";
  in->address = "10.0.0.7";
  in->port = 8080;
  in->registration_time_utc = 1700000000000LL;
  in->uri_spec = "{scheme}://{address}:{port}";
}

START_TEST(json_is_curators) {
  zkr_service_instance_t in, out;
  char *json, expect[1024];

  orders(&in);
  ck_assert_int_eq(zkr_service_instance_to_json(&in, &json), 0);
  ck_assert_str_eq(json, curator_json);
  ck_assert_int_eq(zkr_service_instance_from_json(json, (int)strlen(json), &out), 0);
  free(json);
  ck_assert_str_eq(out.name, "orders");
  ck_assert_str_eq(out.id, in.id);
  ck_assert_str_eq(out.address, "10.0.0.7");
  ck_assert_int_eq(out.port, 8080);
  ck_assert_int_eq(out.ssl_port, -1);
  ck_assert_ptr_null(out.payload);
  ck_assert_int_eq(out.registration_time_utc, 1700000000000LL);
  ck_assert_int_eq(out.service_type, ZKR_SERVICE_DYNAMIC);
  ck_assert_str_eq(out.uri_spec, "{scheme}://{address}:{port}");
  ck_assert_int_eq(out.enabled, 1);
  ck_assert_int_eq(out.write_enabled, 0);
  zkr_service_instance_clear(&out);

  /* A Spring Cloud payload passes through; enabled written when asked. */
  in.payload = (char *)spring_payload;
  in.uri_spec = NULL;
  in.ssl_port = 8443;
  in.service_type = ZKR_SERVICE_PERMANENT;
  in.write_enabled = 1;
  in.enabled = 0;
  ck_assert_int_eq(zkr_service_instance_to_json(&in, &json), 0);
  snprintf(expect, sizeof(expect),
           "{\"name\":\"orders\",\"id\":\"%s\",\"address\":\"10.0.0.7\",\"port\":8080,"
           "\"sslPort\":8443,\"payload\":%s,\"registrationTimeUTC\":1700000000000,"
           "\"serviceType\":\"PERMANENT\",\"uriSpec\":null,\"enabled\":false}",
           in.id, spring_payload);
  ck_assert_str_eq(json, expect);
  ck_assert_int_eq(zkr_service_instance_from_json(json, (int)strlen(json), &out), 0);
  ck_assert_str_eq(out.payload, spring_payload);
  ck_assert_int_eq(out.enabled, 0);
  ck_assert_int_eq(out.write_enabled, 1);
  ck_assert_int_eq(out.service_type, ZKR_SERVICE_PERMANENT);
  zkr_service_instance_clear(&out);
  free(json);

  /* Reading is tolerant: unknown fields, DYNAMIC_SEQUENTIAL, a string payload. */
  {
    const char *j = "{\"name\":\"n\",\"id\":\"i\",\"address\":null,\"port\":null,\"extra\":[1,2],"
                    "\"payload\":\"text\",\"serviceType\":\"DYNAMIC_SEQUENTIAL\"}";
    ck_assert_int_eq(zkr_service_instance_from_json(j, (int)strlen(j), &out), 0);
    ck_assert_ptr_null(out.address);
    ck_assert_int_eq(out.port, -1);
    ck_assert_str_eq(out.payload, "\"text\"");
    ck_assert_int_eq(out.service_type, ZKR_SERVICE_DYNAMIC_SEQUENTIAL);
    ck_assert_int_eq(out.enabled, 1);
    zkr_service_instance_clear(&out);
  }
  /* Not instances: empty, not JSON, not an object, no id. */
  ck_assert_int_eq(zkr_service_instance_from_json("", 0, &out), ZKR_EBADDATA);
  ck_assert_int_eq(zkr_service_instance_from_json(NULL, -1, &out), ZKR_EBADDATA);
  ck_assert_int_eq(zkr_service_instance_from_json("{\"name\":", 8, &out), ZKR_EBADDATA);
  ck_assert_int_eq(zkr_service_instance_from_json("[1]", 3, &out), ZKR_EBADDATA);
  ck_assert_int_eq(zkr_service_instance_from_json("{\"name\":\"x\"}", 12, &out), ZKR_EBADDATA);
  /* Bad input to the writer. */
  orders(&in);
  in.payload = "{not json";
  ck_assert_int_eq(zkr_service_instance_to_json(&in, &json), ZKR_EINVAL);
  orders(&in);
  in.uri_spec = "{scheme://x";
  ck_assert_int_eq(zkr_service_instance_to_json(&in, &json), ZKR_EINVAL);
  orders(&in);
  in.id = NULL;
  ck_assert_int_eq(zkr_service_instance_to_json(&in, &json), ZKR_EINVAL);
  ck_assert_ptr_null(json);
}
END_TEST

/* The cache listener's events, as "TYPE id" strings. */
typedef struct slog {
  pthread_mutex_t mu;
  int n;
  char ev[16][64];
} slog_t;

static void on_svc(zkr_service_cache_t *c, int ev, const char *id, void *arg) {
  slog_t *l = arg;
  (void)c;
  pthread_mutex_lock(&l->mu);
  if (l->n < 16)
    snprintf(l->ev[l->n++], sizeof(l->ev[0]), "%s %s", zkr_cache_event_name(ev),
             id ? id : "-");
  pthread_mutex_unlock(&l->mu);
}

static int sl_has(slog_t *l, const char *want, int timeout_ms) {
  int64_t deadline = tu_now_ms() + timeout_ms;
  for (;;) {
    int found = 0;
    pthread_mutex_lock(&l->mu);
    for (int i = 0; i < l->n && !found; i++)
      found = !strcmp(l->ev[i], want);
    pthread_mutex_unlock(&l->mu);
    if (found || tu_now_ms() >= deadline)
      return found;
    usleep(1000);
  }
}

static void base_path(char *root, size_t rl, char *base, size_t bl) {
  tu_root(root, rl);
  snprintf(base, bl, "%s/services", root);
}

static int get_data(zhandle_t *zh, const char *path, char *buf, int cap, struct Stat *st) {
  int len = cap - 1, rc = zoo_get(zh, path, 0, buf, &len, st);
  buf[rc == ZOK && len > 0 ? len : 0] = '\0';
  return rc;
}

/* Register, read back through a cache (the node's bytes are our JSON), update
 * in place (same czxid), list names, unregister. */
START_TEST(register_update_unregister) {
  char root[64], base[128], buf[2048], *json, node[256], **names;
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(t);
  zkr_service_instance_t in, *list;
  zkr_service_reg_t *r;
  zkr_service_cache_t *c;
  struct Stat st, st2;
  slog_t sl = {.mu = PTHREAD_MUTEX_INITIALIZER};
  char want[96];
  int n;

  base_path(root, sizeof(root), base, sizeof(base));
  orders(&in);
  in.id = NULL; /* a random UUID */
  in.registration_time_utc = 0; /* now */
  ck_assert_int_eq(zkr_service_register(s, base, &in, 5000, &r), 0);
  ck_assert_int_eq(strlen(zkr_service_reg_id(r)), 36);
  ck_assert_int_eq(zkr_service_reg_is_registered(r), 1);
  snprintf(node, sizeof(node), "%s/orders/%s", base, zkr_service_reg_id(r));
  ck_assert_str_eq(zkr_service_reg_node(r), node);
  ck_assert_int_eq(get_data(zh, node, buf, sizeof(buf), &st), ZOK);
  ck_assert_int_eq(st.ephemeralOwner, zkr_session_id(s));
  {
    zkr_service_instance_t back;
    ck_assert_int_eq(zkr_service_instance_from_json(buf, (int)strlen(buf), &back), 0);
    ck_assert_int_gt(back.registration_time_utc, 1700000000000LL);
    in.id = back.id;
    in.registration_time_utc = back.registration_time_utc;
    ck_assert_int_eq(zkr_service_instance_to_json(&in, &json), 0);
    ck_assert_str_eq(buf, json); /* exactly what the writer makes */
    free(json);
    zkr_service_instance_clear(&back);
  }

  ck_assert_int_eq(zkr_service_cache_new(t, base, "orders", &c), 0);
  ck_assert_int_eq(zkr_service_cache_list(c, 0, &list, &n), ZKR_ENOTREADY);
  ck_assert_int_eq(zkr_service_cache_set_listener(c, on_svc, &sl), 0);
  ck_assert_int_eq(zkr_service_cache_start(c), 0);
  ck_assert_int_eq(zkr_service_cache_wait_ready(c, 5000), 0);
  snprintf(want, sizeof(want), "ADDED %s", zkr_service_reg_id(r));
  ck_assert(sl_has(&sl, want, 5000));
  ck_assert(sl_has(&sl, "INITIALIZED -", 5000));
  ck_assert_int_eq(zkr_service_cache_list(c, 1, &list, &n), 0);
  ck_assert_int_eq(n, 1);
  ck_assert_str_eq(list[0].id, zkr_service_reg_id(r));
  ck_assert_int_eq(list[0].port, 8080);
  ck_assert_int_eq(list[0].epoch, st.czxid);
  ck_assert_int_eq(list[0].owner, zkr_session_id(s));
  zkr_service_instances_free(list, n);

  /* Update in place: the same node (czxid), new data. */
  orders(&in);
  in.port = 9090;
  ck_assert_int_eq(zkr_service_update(r, &in), 0);
  for (int64_t d = tu_now_ms() + 5000; tu_now_ms() < d; usleep(2000)) {
    ck_assert_int_eq(get_data(zh, node, buf, sizeof(buf), &st2), ZOK);
    if (strstr(buf, "\"port\":9090"))
      break;
  }
  ck_assert_ptr_nonnull(strstr(buf, "\"port\":9090"));
  ck_assert_ptr_nonnull(strstr(buf, zkr_service_reg_id(r))); /* the id stays */
  ck_assert_int_eq(st2.czxid, st.czxid);
  snprintf(want, sizeof(want), "UPDATED %s", zkr_service_reg_id(r));
  ck_assert(sl_has(&sl, want, 5000));

  ck_assert_int_eq(zkr_service_names(t, base, 5000, &names, &n), 0);
  ck_assert_int_eq(n, 1);
  ck_assert_str_eq(names[0], "orders");
  zkr_service_names_free(names, n);

  snprintf(want, sizeof(want), "REMOVED %s", strrchr(node, '/') + 1);
  ck_assert_int_eq(zkr_service_unregister(r, 5000), 0);
  ck_assert_int_eq(zoo_exists(zh, node, 0, NULL), ZNONODE);
  ck_assert(sl_has(&sl, want, 5000));
  zkr_service_cache_free(c);
  tu_rmr(zh, root);
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

/* PERMANENT stays when its registration is freed, and a new registration of
 * the same id updates it in place; STATIC goes; a DYNAMIC id held by another
 * session is ZKR_EDUPLICATE and left alone. */
START_TEST(types_and_duplicates) {
  char root[64], base[128], node[256], buf[2048];
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(t);
  zkr_service_instance_t in;
  zkr_service_reg_t *r, *r2;
  struct Stat st, st2;

  base_path(root, sizeof(root), base, sizeof(base));
  orders(&in);
  in.service_type = ZKR_SERVICE_PERMANENT;
  snprintf(node, sizeof(node), "%s/orders/%s", base, in.id);
  ck_assert_int_eq(zkr_service_register(s, base, &in, 5000, &r), 0);
  zkr_service_reg_free(r);
  ck_assert_int_eq(zoo_exists(zh, node, 0, &st), ZOK);
  ck_assert_int_eq(st.ephemeralOwner, 0);
  in.port = 7070;
  ck_assert_int_eq(zkr_service_register(t, base, &in, 5000, &r), 0);
  ck_assert_int_eq(get_data(zh, node, buf, sizeof(buf), &st2), ZOK);
  ck_assert_int_eq(st2.czxid, st.czxid);
  ck_assert_ptr_nonnull(strstr(buf, "\"port\":7070"));
  ck_assert_int_eq(zkr_service_unregister(r, 5000), 0);
  ck_assert_int_eq(zoo_exists(zh, node, 0, NULL), ZNONODE);

  in.service_type = ZKR_SERVICE_STATIC;
  ck_assert_int_eq(zkr_service_register(s, base, &in, 5000, &r), 0);
  ck_assert_int_eq(zoo_exists(zh, node, 0, &st), ZOK);
  ck_assert_int_eq(st.ephemeralOwner, 0);
  zkr_service_reg_free(r);
  for (int64_t d = tu_now_ms() + 5000; zoo_exists(zh, node, 0, NULL) == ZOK && tu_now_ms() < d;)
    usleep(2000);
  ck_assert_int_eq(zoo_exists(zh, node, 0, NULL), ZNONODE);

  in.service_type = ZKR_SERVICE_DYNAMIC;
  ck_assert_int_eq(zkr_service_register(s, base, &in, 5000, &r), 0);
  ck_assert_int_eq(zkr_service_register(t, base, &in, 5000, &r2), ZKR_EDUPLICATE);
  ck_assert_ptr_null(r2);
  ck_assert_int_eq(zoo_exists(zh, node, 0, &st), ZOK);
  ck_assert_int_eq(st.ephemeralOwner, zkr_session_id(s));
  zkr_service_reg_free(r);

  /* Bad input. */
  ck_assert_int_eq(zkr_service_register(NULL, base, &in, 5000, &r), ZKR_EINVAL);
  ck_assert_int_eq(zkr_service_register(s, "rel", &in, 5000, &r), ZKR_EINVAL);
  in.name = "a/b";
  ck_assert_int_eq(zkr_service_register(s, base, &in, 5000, &r), ZKR_EINVAL);
  orders(&in);
  in.payload = "{bad";
  ck_assert_int_eq(zkr_service_register(s, base, &in, 5000, &r), ZKR_EINVAL);
  ck_assert_str_eq(zkr_service_type_name(ZKR_SERVICE_STATIC), "STATIC");
  ck_assert_str_eq(zkr_service_strategy_name(ZKR_PICK_STICKY), "sticky");
  tu_rmr(zh, root);
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

static void put(zhandle_t *zh, const char *dir, const char *name, const char *data) {
  char p[512];
  snprintf(p, sizeof(p), "%s/%s", dir, name);
  ck_assert_int_eq(zoo_create(zh, p, data, data ? (int)strlen(data) : -1, &ZOO_OPEN_ACL_UNSAFE,
                              ZOO_EPHEMERAL, NULL, 0),
                   ZOK);
}

/* Instances written by others (a Spring Cloud payload, unknown fields, no
 * "enabled", "enabled":false, empty and broken data): the good ones are read,
 * the bad ones skipped; the provider's strategies and its error notes. */
START_TEST(foreign_instances_and_provider) {
  char root[64], base[128], dir[160], j[1024];
  zkr_session_t *s = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(s);
  zkr_service_provider_t *p;
  zkr_service_instance_t *list, got;
  zkr_service_cache_t *c;
  int n;

  base_path(root, sizeof(root), base, sizeof(base));
  snprintf(dir, sizeof(dir), "%s/orders", base);
  ck_assert_int_eq(zoo_create(zh, root, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  ck_assert_int_eq(zoo_create(zh, base, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  ck_assert_int_eq(zoo_create(zh, dir, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  for (int i = 1; i <= 3; i++) {
    snprintf(j, sizeof(j),
             "{\"name\":\"orders\",\"id\":\"i%d\",\"address\":\"10.0.0.%d\",\"port\":80,"
             "\"sslPort\":null,\"payload\":%s,\"registrationTimeUTC\":1700000000000,"
             "\"serviceType\":\"DYNAMIC\",\"uriSpec\":null,\"futureField\":{\"x\":1}}",
             i, i, spring_payload);
    char name[8];
    snprintf(name, sizeof(name), "i%d", i);
    put(zh, dir, name, j);
  }
  put(zh, dir, "off",
      "{\"name\":\"orders\",\"id\":\"off\",\"address\":\"10.0.0.9\",\"port\":80,\"enabled\":false}");
  put(zh, dir, "empty", NULL);
  put(zh, dir, "broken", "{\"name\":");
  ck_assert_int_eq(zkr_service_cache_new(s, base, "orders", &c), 0);
  ck_assert_int_eq(zkr_service_cache_start(c), 0);
  ck_assert_int_eq(zkr_service_cache_wait_ready(c, 5000), 0);
  ck_assert_int_eq(zkr_service_cache_list(c, 0, &list, &n), 0);
  ck_assert_int_eq(n, 4);
  ck_assert_str_eq(list[0].id, "i1");
  ck_assert_str_eq(list[0].payload, spring_payload);
  ck_assert_int_eq(list[0].enabled, 1);
  ck_assert_str_eq(list[3].id, "off");
  ck_assert_int_eq(list[3].enabled, 0);
  zkr_service_instances_free(list, n);
  ck_assert_int_eq(zkr_service_cache_list(c, 1, &list, &n), 0);
  ck_assert_int_eq(n, 3);
  zkr_service_instances_free(list, n);
  zkr_service_cache_free(c);

  /* Round robin: each in turn. */
  ck_assert_int_eq(zkr_service_provider_new(s, base, "orders", ZKR_PICK_ROUND_ROBIN, &p), 0);
  ck_assert_int_eq(zkr_service_provider_wait_ready(p, 5000), 0);
  for (int k = 0; k < 6; k++) {
    char want[8];
    snprintf(want, sizeof(want), "i%d", k % 3 + 1);
    ck_assert_int_eq(zkr_service_provider_get(p, &got), 0);
    ck_assert_str_eq(got.id, want);
    zkr_service_instance_clear(&got);
  }
  /* Two errors: left out. */
  ck_assert_int_eq(zkr_service_provider_note_error(p, "i2"), 0);
  ck_assert_int_eq(zkr_service_provider_note_error(p, "i2"), 0);
  for (int k = 0; k < 4; k++) {
    ck_assert_int_eq(zkr_service_provider_get(p, &got), 0);
    ck_assert_str_ne(got.id, "i2");
    zkr_service_instance_clear(&got);
  }
  zkr_service_provider_free(p);
  /* Sticky: the same one, until it fails. */
  ck_assert_int_eq(zkr_service_provider_new(s, base, "orders", ZKR_PICK_STICKY, &p), 0);
  ck_assert_int_eq(zkr_service_provider_wait_ready(p, 5000), 0);
  ck_assert_int_eq(zkr_service_provider_get(p, &got), 0);
  {
    char first[8];
    snprintf(first, sizeof(first), "%s", got.id);
    zkr_service_instance_clear(&got);
    for (int k = 0; k < 5; k++) {
      ck_assert_int_eq(zkr_service_provider_get(p, &got), 0);
      ck_assert_str_eq(got.id, first);
      zkr_service_instance_clear(&got);
    }
    zkr_service_provider_note_error(p, first);
    zkr_service_provider_note_error(p, first);
    ck_assert_int_eq(zkr_service_provider_get(p, &got), 0);
    ck_assert_str_ne(got.id, first);
    zkr_service_instance_clear(&got);
  }
  zkr_service_provider_free(p);
  /* Random: always one of them; none for an unknown service. */
  ck_assert_int_eq(zkr_service_provider_new(s, base, "orders", ZKR_PICK_RANDOM, &p), 0);
  ck_assert_int_eq(zkr_service_provider_wait_ready(p, 5000), 0);
  ck_assert_int_eq(zkr_service_provider_get(p, &got), 0);
  ck_assert(got.id[0] == 'i');
  zkr_service_instance_clear(&got);
  zkr_service_provider_free(p);
  ck_assert_int_eq(zkr_service_provider_new(s, base, "nothing", ZKR_PICK_RANDOM, &p), 0);
  ck_assert_int_eq(zkr_service_provider_wait_ready(p, 5000), 0);
  ck_assert_int_eq(zkr_service_provider_get(p, &got), ZNONODE);
  zkr_service_provider_free(p);
  ck_assert_int_eq(zkr_service_provider_new(s, base, "orders", 9, &p), ZKR_EINVAL);
  tu_rmr(zh, root);
  zkr_session_free(s);
}
END_TEST

/* Unregistering while the session is being replaced (an expiry): once the new
 * session is up, the instance is not registered again. */
START_TEST(unregister_racing_expiry) {
  char root[64], base[128], dir[160];
  zkr_session_t *s = tu_open(tu_hosts(), 10000), *t = tu_open(tu_hosts(), 10000);
  zhandle_t *zh = zkr_session_zhandle(t);
  zkr_service_instance_t in;
  zkr_service_reg_t *r;
  int64_t sid;

  base_path(root, sizeof(root), base, sizeof(base));
  snprintf(dir, sizeof(dir), "%s/orders", base);
  orders(&in);
  ck_assert_int_eq(zkr_service_register(s, base, &in, 5000, &r), 0);
  sid = zkr_session_id(s);
  tu_expire(s, tu_hosts());
  zkr_service_unregister(r, 3000); /* the node goes with the old session anyway */
  for (int64_t d = tu_now_ms() + 20000;
       (zkr_session_id(s) == sid || zkr_session_id(s) == 0) && tu_now_ms() < d;)
    usleep(5000);
  ck_assert_int_ne(zkr_session_id(s), sid);
  /* A register on the new session shows it is live; the old one is not back. */
  in.id = "probe";
  ck_assert_int_eq(zkr_service_register(s, base, &in, 5000, &r), 0);
  ck_assert_int_eq(tu_nchildren(zh, dir), 1);
  zkr_service_reg_free(r);
  tu_rmr(zh, root);
  zkr_session_free(s);
  zkr_session_free(t);
}
END_TEST

Suite *discovery_suite(void) {
  Suite *su = suite_create("discovery");
  TCase *tc = tcase_create("discovery");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, json_is_curators);
  tcase_add_test(tc, register_update_unregister);
  tcase_add_test(tc, types_and_duplicates);
  tcase_add_test(tc, foreign_instances_and_provider);
  tcase_add_test(tc, unregister_racing_expiry);
  suite_add_tcase(su, tc);
  return su;
}
