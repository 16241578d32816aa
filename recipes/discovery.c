/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Service discovery: instances in Curator's format. Wire format and
 * guarantees: include/zkrecipes/discovery.h.
 *
 * JSON through jansson, reading and writing. Writing builds the object field
 * by field in Curator's declaration order (jansson keeps insertion order) and
 * dumps it compact, which is byte for byte what Jackson writes for the same
 * values (nulls written out, no spaces). The caller's payload is parsed and
 * written back compact.
 *
 * A registration is the group member engine (recipes/member.c) on
 * base/name/id: ownership-checked create, re-created after expiry, no flap on
 * reconnect, updated in place.
 *
 * The cache is a children cache with data on base/name; instances are parsed
 * when listed. The provider keeps its strategy's state and the errors noted
 * per instance id under its own mutex.
 */
#include "recipes_internal.h"
#include "zkrecipes/cache.h"
#include "zkrecipes/discovery.h"
#include "zkrecipes/group.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static const char *const type_names[] = {"DYNAMIC", "STATIC", "PERMANENT",
                                         "DYNAMIC_SEQUENTIAL"};

const char *zkr_service_type_name(int type) {
  return type >= 0 && type <= 3 ? type_names[type] : "unknown";
}

const char *zkr_service_strategy_name(int strategy) {
  switch (strategy) {
  case ZKR_PICK_RANDOM: return "random";
  case ZKR_PICK_ROUND_ROBIN: return "round-robin";
  case ZKR_PICK_STICKY: return "sticky";
  default: return "unknown";
  }
}

void zkr_service_instance_init(zkr_service_instance_t *inst) {
  if (!inst)
    return;
  memset(inst, 0, sizeof(*inst));
  inst->port = inst->ssl_port = -1;
  inst->enabled = 1;
}

void zkr_service_instance_clear(zkr_service_instance_t *inst) {
  if (!inst)
    return;
  free(inst->name);
  free(inst->id);
  free(inst->address);
  free(inst->payload);
  free(inst->uri_spec);
  zkr_service_instance_init(inst);
}

/* ---- JSON ---- */

static json_t *str_or_null(const char *s) {
  return s ? json_string(s) : json_null();
}

static json_t *int_or_null(int v) {
  return v >= 0 ? json_integer(v) : json_null();
}

/* Curator's UriSpec: "{name}" parts are variables, the text between them
 * literals: {"parts":[{"value":..,"variable":..},...]}. NULL on bad input. */
static json_t *uri_spec_json(const char *spec) {
  json_t *parts = json_array(), *o;
  const char *p = spec;
  if (!parts)
    return NULL;
  while (*p) {
    const char *end;
    int variable = *p == '{';
    if (variable) {
      if (!(end = strchr(p, '}'))) {
        json_decref(parts);
        return NULL; /* an unclosed "{" */
      }
      p++;
    } else {
      end = strchr(p, '{');
      if (!end)
        end = p + strlen(p);
    }
    o = json_object();
    if (!o || json_object_set_new(o, "value", json_stringn(p, (size_t)(end - p))) != 0 ||
        json_object_set_new(o, "variable", json_boolean(variable)) != 0 ||
        json_array_append_new(parts, o) != 0) {
      json_decref(parts);
      return NULL;
    }
    p = variable ? end + 1 : end;
  }
  o = json_object();
  if (!o || json_object_set_new(o, "parts", parts) != 0) {
    json_decref(o);
    return NULL;
  }
  return o;
}

/* The template back from a uriSpec object (NULL when it is not one). */
static char *uri_spec_text(json_t *spec) {
  json_t *parts = json_object_get(spec, "parts"), *part;
  size_t i, n = 0;
  char *out;
  if (!json_is_array(parts))
    return NULL;
  json_array_foreach(parts, i, part) {
    json_t *v = json_object_get(part, "value");
    n += (json_is_string(v) ? json_string_length(v) : 0) + 2;
  }
  if (!(out = malloc(n + 1)))
    return NULL;
  out[0] = '\0';
  n = 0;
  json_array_foreach(parts, i, part) {
    json_t *v = json_object_get(part, "value");
    int var = json_is_true(json_object_get(part, "variable"));
    const char *t = json_is_string(v) ? json_string_value(v) : "";
    n += (size_t)sprintf(out + n, var ? "{%s}" : "%s", t);
  }
  return out;
}

int zkr_service_instance_to_json(const zkr_service_instance_t *in, char **json) {
  json_t *o, *payload = NULL, *spec = NULL;
  int bad = 0;

  if (json)
    *json = NULL;
  if (!in || !json || !in->name || !in->id || in->service_type < 0 ||
      in->service_type > ZKR_SERVICE_PERMANENT)
    return ZKR_EINVAL;
  if (in->payload) {
    json_error_t err;
    if (!(payload = json_loads(in->payload, JSON_DECODE_ANY, &err)))
      return ZKR_EINVAL;
  }
  if (in->uri_spec && !(spec = uri_spec_json(in->uri_spec))) {
    json_decref(payload);
    return ZKR_EINVAL;
  }
  if (!(o = json_object())) {
    json_decref(payload);
    json_decref(spec);
    return ZKR_ENOMEM;
  }
  /* Curator's declaration order; jansson keeps insertion order. */
  bad |= json_object_set_new(o, "name", json_string(in->name));
  bad |= json_object_set_new(o, "id", json_string(in->id));
  bad |= json_object_set_new(o, "address", str_or_null(in->address));
  bad |= json_object_set_new(o, "port", int_or_null(in->port));
  bad |= json_object_set_new(o, "sslPort", int_or_null(in->ssl_port));
  bad |= json_object_set_new(o, "payload", payload ? payload : json_null());
  bad |= json_object_set_new(o, "registrationTimeUTC",
                             json_integer(in->registration_time_utc));
  bad |= json_object_set_new(o, "serviceType", json_string(type_names[in->service_type]));
  bad |= json_object_set_new(o, "uriSpec", spec ? spec : json_null());
  if (in->write_enabled)
    bad |= json_object_set_new(o, "enabled", json_boolean(in->enabled));
  if (!bad)
    *json = json_dumps(o, JSON_COMPACT | JSON_ENCODE_ANY);
  json_decref(o);
  if (bad)
    return ZKR_EINVAL; /* e.g. a string that is not UTF-8 */
  return *json ? 0 : ZKR_ENOMEM;
}

static int dup_str(json_t *v, char **out) {
  *out = NULL;
  if (json_is_string(v) && !(*out = strndup(json_string_value(v), json_string_length(v))))
    return ZKR_ENOMEM;
  return 0;
}

static int int_field(json_t *v) {
  return json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= 65535
             ? (int)json_integer_value(v)
             : -1;
}

int zkr_service_instance_from_json(const char *data, int len, zkr_service_instance_t *out) {
  json_error_t err;
  json_t *o, *v;
  int rc = 0;

  if (!out)
    return ZKR_EINVAL;
  zkr_service_instance_init(out);
  if (!data || len <= 0)
    return ZKR_EBADDATA; /* empty: never an instance (CURATOR-574) */
  if (!(o = json_loadb(data, (size_t)len, 0, &err)))
    return ZKR_EBADDATA;
  if (!json_is_object(o) || !json_is_string(json_object_get(o, "name")) ||
      !json_is_string(json_object_get(o, "id"))) {
    json_decref(o);
    return ZKR_EBADDATA;
  }
  if ((rc = dup_str(json_object_get(o, "name"), &out->name)) != 0 ||
      (rc = dup_str(json_object_get(o, "id"), &out->id)) != 0 ||
      (rc = dup_str(json_object_get(o, "address"), &out->address)) != 0)
    goto done;
  out->port = int_field(json_object_get(o, "port"));
  out->ssl_port = int_field(json_object_get(o, "sslPort"));
  v = json_object_get(o, "payload");
  if (v && !json_is_null(v) && !(out->payload = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY))) {
    rc = ZKR_ENOMEM;
    goto done;
  }
  v = json_object_get(o, "registrationTimeUTC");
  out->registration_time_utc = json_is_integer(v) ? json_integer_value(v) : 0;
  v = json_object_get(o, "serviceType");
  out->service_type = ZKR_SERVICE_DYNAMIC;
  for (int t = 0; json_is_string(v) && t <= 3; t++)
    if (!strcmp(json_string_value(v), type_names[t]))
      out->service_type = t;
  v = json_object_get(o, "uriSpec");
  if (json_is_object(v))
    out->uri_spec = uri_spec_text(v);
  v = json_object_get(o, "enabled");
  out->write_enabled = json_is_boolean(v);
  out->enabled = json_is_boolean(v) ? json_is_true(v) : 1;
done:
  json_decref(o);
  if (rc != 0)
    zkr_service_instance_clear(out);
  return rc;
}

/* ---- registering ---- */

struct zkr_service_reg {
  zkr_member_t *m;
  zkr_service_instance_t inst; /* what was registered (its strings ours) */
};

static int64_t now_epoch_ms(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* A copy of in's caller-owned strings into out. */
static int copy_instance(const zkr_service_instance_t *in, zkr_service_instance_t *out) {
  *out = *in;
  out->name = out->id = out->address = out->payload = out->uri_spec = NULL;
  if ((in->name && !(out->name = strdup(in->name))) ||
      (in->id && !(out->id = strdup(in->id))) ||
      (in->address && !(out->address = strdup(in->address))) ||
      (in->payload && !(out->payload = strdup(in->payload))) ||
      (in->uri_spec && !(out->uri_spec = strdup(in->uri_spec)))) {
    zkr_service_instance_clear(out);
    return ZKR_ENOMEM;
  }
  return 0;
}

static int name_ok(const char *name) {
  char p[260];
  size_t n = name ? strlen(name) : 0;
  if (n == 0 || n > 255 || strchr(name, '/'))
    return 0;
  p[0] = '/';
  memcpy(p + 1, name, n + 1);
  return zkr_path_check(p) == 0;
}

int zkr_service_register(zkr_session_t *s, const char *base, const zkr_service_instance_t *inst,
                         int timeout_ms, zkr_service_reg_t **out) {
  zkr_service_reg_t *r;
  char *json = NULL, *dir = NULL, uuid[37];
  int rc, flags;

  if (!out)
    return ZKR_EINVAL;
  *out = NULL;
  if (!s || !inst || zkr__recipe_path_check(base) != 0 || !name_ok(inst->name) ||
      (inst->id && !name_ok(inst->id)) || inst->service_type < 0 ||
      inst->service_type > ZKR_SERVICE_PERMANENT || timeout_ms < -1)
    return ZKR_EINVAL;
  if (!(r = calloc(1, sizeof(*r))))
    return ZKR_ENOMEM;
  if ((rc = copy_instance(inst, &r->inst)) != 0) {
    free(r);
    return rc;
  }
  if (!r->inst.id) {
    if (zkr__guid(uuid) != 0 || !(r->inst.id = strdup(uuid))) {
      rc = ZKR_ESYSTEM;
      goto fail;
    }
  }
  if (!r->inst.registration_time_utc)
    r->inst.registration_time_utc = now_epoch_ms();
  r->inst.epoch = r->inst.owner = 0;
  if ((rc = zkr_service_instance_to_json(&r->inst, &json)) != 0)
    goto fail;
  if (!(dir = zkr__path_join(base, r->inst.name))) {
    rc = ZKR_ENOMEM;
    goto fail;
  }
  flags = r->inst.service_type == ZKR_SERVICE_DYNAMIC ? 0 : ZKR__MEMBER_PERSISTENT;
  if (r->inst.service_type == ZKR_SERVICE_PERMANENT)
    flags |= ZKR__MEMBER_KEEP_ON_FREE;
  if ((rc = zkr__member_new(s, dir, r->inst.id, flags, &r->m)) != 0 ||
      (rc = zkr_member_set_data(r->m, json, (int)strlen(json))) != 0)
    goto fail;
  free(dir);
  dir = NULL;
  free(json);
  json = NULL;
  if ((rc = zkr_member_join(r->m, timeout_ms, &r->inst.epoch)) != 0)
    goto fail;
  *out = r;
  return 0;
fail:
  free(json);
  free(dir);
  if (r->m && inst->service_type == ZKR_SERVICE_PERMANENT)
    zkr_member_leave(r->m, 0); /* nothing of a failed registration stays */
  zkr_member_free(r->m);
  zkr_service_instance_clear(&r->inst);
  free(r);
  return rc;
}

const char *zkr_service_reg_id(zkr_service_reg_t *r) {
  return r ? r->inst.id : NULL;
}

const char *zkr_service_reg_node(zkr_service_reg_t *r) {
  return r ? zkr_member_node(r->m) : NULL;
}

int zkr_service_reg_is_registered(zkr_service_reg_t *r) {
  return r ? zkr_member_is_member(r->m) : 0;
}

int zkr_service_update(zkr_service_reg_t *r, const zkr_service_instance_t *inst) {
  zkr_service_instance_t next;
  char *json = NULL;
  int rc;

  if (!r || !inst)
    return ZKR_EINVAL;
  if ((rc = copy_instance(inst, &next)) != 0)
    return rc;
  /* The identity stays: name, id, type, registration time. */
  free(next.name);
  free(next.id);
  next.name = strdup(r->inst.name);
  next.id = strdup(r->inst.id);
  next.service_type = r->inst.service_type;
  next.registration_time_utc = r->inst.registration_time_utc;
  next.epoch = next.owner = 0;
  if (!next.name || !next.id)
    rc = ZKR_ENOMEM;
  else if ((rc = zkr_service_instance_to_json(&next, &json)) == 0)
    rc = zkr_member_set_data(r->m, json, (int)strlen(json));
  free(json);
  if (rc != 0) {
    zkr_service_instance_clear(&next);
    return rc;
  }
  next.epoch = r->inst.epoch;
  zkr_service_instance_clear(&r->inst);
  r->inst = next;
  return 0;
}

int zkr_service_unregister(zkr_service_reg_t *r, int timeout_ms) {
  int rc;
  if (!r)
    return ZKR_EINVAL;
  rc = zkr_member_leave(r->m, timeout_ms);
  zkr_member_free(r->m);
  zkr_service_instance_clear(&r->inst);
  free(r);
  return rc == ZKR_ENOTHELD ? 0 : rc;
}

void zkr_service_reg_free(zkr_service_reg_t *r) {
  if (!r)
    return;
  zkr_member_free(r->m); /* PERMANENT: the node stays */
  zkr_service_instance_clear(&r->inst);
  free(r);
}

/* ---- reading ---- */

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int zkr_service_names(zkr_session_t *s, const char *base, int timeout_ms, char ***names,
                      int *count) {
  struct String_vector sv = {0, NULL};
  zhandle_t *zh;
  char **a;
  int rc;

  if (names)
    *names = NULL;
  if (count)
    *count = 0;
  if (!s || !names || !count || zkr__recipe_path_check(base) != 0)
    return ZKR_EINVAL;
  if (zkr__in_callback())
    return ZKR_EDEADLK;
  if ((rc = zkr_session_wait_connected(s, timeout_ms)) != 0)
    return rc;
  if (!(zh = zkr_session_zhandle(s)))
    return ZKR_ECLOSED;
  if ((rc = zoo_get_children(zh, base, 0, &sv)) != ZOK)
    return rc;
  if (!(a = calloc((size_t)(sv.count ? sv.count : 1), sizeof(*a)))) {
    deallocate_String_vector(&sv);
    return ZKR_ENOMEM;
  }
  for (int i = 0; i < sv.count; i++)
    if (!(a[i] = strdup(sv.data[i]))) {
      zkr_service_names_free(a, i);
      deallocate_String_vector(&sv);
      return ZKR_ENOMEM;
    }
  qsort(a, (size_t)sv.count, sizeof(*a), cmp_str);
  *names = a;
  *count = sv.count;
  deallocate_String_vector(&sv);
  return 0;
}

void zkr_service_names_free(char **names, int count) {
  for (int i = 0; names && i < count; i++)
    free(names[i]);
  free(names);
}

struct zkr_service_cache {
  zkr_children_cache_t *cc;
  char *dir;
  size_t dlen;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int ready; /* (mu) INITIALIZED came */
  uint64_t gen; /* (mu) bumped by every event: a provider's snapshot is current
                   while it holds the same */
  zkr_service_cache_listener_fn fn; /* (mu) */
  void *arg;
};

static uint64_t cache_gen(zkr_service_cache_t *c) {
  uint64_t g;
  pthread_mutex_lock(&c->mu);
  g = c->gen;
  pthread_mutex_unlock(&c->mu);
  return g;
}

static void on_cache_event(zkr_children_cache_t *cc, const zkr_cache_event_t *ev, void *arg) {
  zkr_service_cache_t *c = arg;
  zkr_service_cache_listener_fn fn;
  void *fa;
  const char *id = NULL;
  (void)cc;
  pthread_mutex_lock(&c->mu);
  if (ev->type == ZKR_CACHE_INITIALIZED) {
    c->ready = 1;
    pthread_cond_broadcast(&c->cv);
  }
  c->gen++;
  fn = c->fn;
  fa = c->arg;
  pthread_mutex_unlock(&c->mu);
  if (!fn)
    return;
  if (ev->type != ZKR_CACHE_INITIALIZED && ev->type != ZKR_CACHE_PARENT_ABSENT &&
      strlen(ev->path) > c->dlen && ev->path[c->dlen] == '/')
    id = ev->path + c->dlen + 1;
  fn(c, ev->type, id, fa);
}

int zkr_service_cache_set_listener(zkr_service_cache_t *c, zkr_service_cache_listener_fn fn,
                                   void *arg) {
  if (!c)
    return ZKR_EINVAL;
  pthread_mutex_lock(&c->mu);
  c->fn = fn;
  c->arg = arg;
  pthread_mutex_unlock(&c->mu);
  return 0;
}

int zkr_service_cache_new(zkr_session_t *s, const char *base, const char *name,
                          zkr_service_cache_t **out) {
  zkr_service_cache_t *c;
  int rc;

  if (!out)
    return ZKR_EINVAL;
  *out = NULL;
  if (!s || zkr__recipe_path_check(base) != 0 || !name_ok(name))
    return ZKR_EINVAL;
  if (!(c = calloc(1, sizeof(*c))))
    return ZKR_ENOMEM;
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->cv, NULL);
  if (!(c->dir = zkr__path_join(base, name)))
    rc = ZKR_ENOMEM;
  else if ((c->dlen = strlen(c->dir)) == 0)
    rc = ZKR_EINVAL;
  else if ((rc = zkr_children_cache_new(s, c->dir, ZKR_CHILDREN_DATA, &c->cc)) == 0)
    rc = zkr_children_cache_set_listener(c->cc, on_cache_event, c);
  if (rc != 0) {
    zkr_service_cache_free(c);
    return rc;
  }
  *out = c;
  return 0;
}

int zkr_service_cache_start(zkr_service_cache_t *c) {
  return c ? zkr_children_cache_start(c->cc) : ZKR_EINVAL;
}

int zkr_service_cache_wait_ready(zkr_service_cache_t *c, int timeout_ms) {
  int rc;

  if (!c || timeout_ms < -1)
    return ZKR_EINVAL;
  if (zkr__in_callback())
    return ZKR_EDEADLK;
  pthread_mutex_lock(&c->mu);
  rc = zkr__cond_wait_flag(&c->cv, &c->mu, &c->ready, timeout_ms);
  pthread_mutex_unlock(&c->mu);
  return rc;
}

static int cmp_inst(const void *a, const void *b) {
  const zkr_service_instance_t *x = a, *y = b;
  return strcmp(x->id, y->id);
}

int zkr_service_cache_list(zkr_service_cache_t *c, int enabled_only,
                           zkr_service_instance_t **out, int *count) {
  zkr_cache_child_t *kids = NULL;
  zkr_service_instance_t *a = NULL;
  int n = 0, k = 0, rc;

  if (out)
    *out = NULL;
  if (count)
    *count = 0;
  if (!c || !out || !count)
    return ZKR_EINVAL;
  rc = zkr_children_cache_list(c->cc, &kids, &n);
  if (rc == ZNONODE)
    return 0; /* no instance of that service (yet) */
  if (rc != 0)
    return rc;
  if (n > 0 && !(a = calloc((size_t)n, sizeof(*a)))) {
    zkr_cache_children_free(kids, n);
    return ZKR_ENOMEM;
  }
  for (int i = 0; i < n; i++) {
    zkr_service_instance_t *x = &a[k];
    int prc = zkr_service_instance_from_json(kids[i].data, kids[i].len, x);
    if (prc == ZKR_ENOMEM) {
      rc = prc;
      break;
    }
    if (prc != 0) {
      zkr__log(ZKR_LOG_WARN, "discovery %s/%s: not an instance (%s): skipped", c->dir,
               kids[i].name, kids[i].len > 0 ? "not Curator's JSON" : "no data");
      continue;
    }
    if (enabled_only && !x->enabled) {
      zkr_service_instance_clear(x);
      continue;
    }
    x->epoch = kids[i].stat.czxid;
    x->owner = kids[i].stat.ephemeralOwner;
    k++;
  }
  zkr_cache_children_free(kids, n);
  if (rc != 0) {
    zkr_service_instances_free(a, k);
    return rc;
  }
  if (k > 1)
    qsort(a, (size_t)k, sizeof(*a), cmp_inst);
  *out = a;
  *count = k;
  return 0;
}

void zkr_service_instances_free(zkr_service_instance_t *insts, int count) {
  for (int i = 0; insts && i < count; i++)
    zkr_service_instance_clear(&insts[i]);
  free(insts);
}

void zkr_service_cache_free(zkr_service_cache_t *c) {
  if (!c)
    return;
  zkr_children_cache_free(c->cc);
  pthread_mutex_destroy(&c->mu);
  pthread_cond_destroy(&c->cv);
  free(c->dir);
  free(c);
}

/* ---- provider ---- */

#define DOWN_ERRORS 2
#define DOWN_WINDOW_MS 30000
#define DOWN_FOR_MS 30000

typedef struct noted {
  char *id;
  int errors;
  int64_t first_ms; /* of the errors counted */
  int64_t down_until_ms;
} noted_t;

struct zkr_service_provider {
  zkr_service_cache_t *c;
  int strategy;
  pthread_mutex_t mu;
  /* (mu) */
  unsigned next;   /* round robin */
  char *sticky;    /* the id picked last (sticky) */
  noted_t *noted;
  int nnoted;
  uint64_t rng;
  /* (mu) the enabled instances as parsed at cache generation snap_gen: a
   * pick reads and parses nothing while the service does not change */
  zkr_service_instance_t *snap;
  int nsnap;
  uint64_t snap_gen;
  bool have_snap;
};

int zkr_service_provider_new(zkr_session_t *s, const char *base, const char *name,
                             int strategy, zkr_service_provider_t **out) {
  zkr_service_provider_t *p;
  int rc;

  if (!out)
    return ZKR_EINVAL;
  *out = NULL;
  if (strategy < ZKR_PICK_RANDOM || strategy > ZKR_PICK_STICKY)
    return ZKR_EINVAL;
  if (!(p = calloc(1, sizeof(*p))))
    return ZKR_ENOMEM;
  pthread_mutex_init(&p->mu, NULL);
  p->strategy = strategy;
  p->rng = (uint64_t)zkr__now_ns() | 1;
  if ((rc = zkr_service_cache_new(s, base, name, &p->c)) != 0 ||
      (rc = zkr_service_cache_start(p->c)) != 0) {
    zkr_service_provider_free(p);
    return rc;
  }
  *out = p;
  return 0;
}

int zkr_service_provider_wait_ready(zkr_service_provider_t *p, int timeout_ms) {
  return p ? zkr_service_cache_wait_ready(p->c, timeout_ms) : ZKR_EINVAL;
}

/* (mu) Is id left out now? */
static int is_down(zkr_service_provider_t *p, const char *id, int64_t now) {
  for (int i = 0; i < p->nnoted; i++)
    if (!strcmp(p->noted[i].id, id))
      return p->noted[i].down_until_ms > now;
  return 0;
}

/* A deep copy of in (its strings malloc'd). */
static int dup_instance(const zkr_service_instance_t *in, zkr_service_instance_t *out) {
  int rc = copy_instance(in, out);
  if (rc == 0) {
    out->epoch = in->epoch;
    out->owner = in->owner;
  }
  return rc;
}

int zkr_service_provider_get(zkr_service_provider_t *p, zkr_service_instance_t *out) {
  int64_t now = zkr__now_ms();
  int k = 0, pick = -1, rc = 0;
  int *ok;

  if (out)
    zkr_service_instance_init(out);
  if (!p || !out)
    return ZKR_EINVAL;
  pthread_mutex_lock(&p->mu);
  {
    uint64_t g = cache_gen(p->c);
    if (!p->have_snap || g != p->snap_gen) {
      zkr_service_instance_t *all = NULL;
      int n = 0;
      if ((rc = zkr_service_cache_list(p->c, 1, &all, &n)) != 0) {
        pthread_mutex_unlock(&p->mu);
        return rc;
      }
      zkr_service_instances_free(p->snap, p->nsnap);
      p->snap = all;
      p->nsnap = n;
      p->snap_gen = g; /* a change after g bumps it again: read anew next time */
      p->have_snap = true;
    }
  }
  if (!(ok = malloc((size_t)(p->nsnap ? p->nsnap : 1) * sizeof(*ok)))) {
    pthread_mutex_unlock(&p->mu);
    return ZKR_ENOMEM;
  }
  /* The ones not noted down, in order. */
  for (int i = 0; i < p->nsnap; i++)
    if (!is_down(p, p->snap[i].id, now))
      ok[k++] = i;
  if (k > 0) {
    if (p->strategy == ZKR_PICK_STICKY && p->sticky)
      for (int i = 0; i < k && pick < 0; i++)
        if (!strcmp(p->snap[ok[i]].id, p->sticky))
          pick = i;
    if (pick < 0 && p->strategy == ZKR_PICK_ROUND_ROBIN)
      pick = (int)(p->next++ % (unsigned)k);
    if (pick < 0) {
      p->rng ^= p->rng << 13;
      p->rng ^= p->rng >> 7;
      p->rng ^= p->rng << 17;
      pick = (int)(p->rng % (uint64_t)k);
    }
    if (p->strategy == ZKR_PICK_STICKY) {
      free(p->sticky);
      p->sticky = strdup(p->snap[ok[pick]].id);
    }
    rc = dup_instance(&p->snap[ok[pick]], out);
  }
  pthread_mutex_unlock(&p->mu);
  free(ok);
  if (rc != 0)
    return rc;
  return k > 0 ? 0 : ZNONODE;
}

int zkr_service_provider_note_error(zkr_service_provider_t *p, const char *id) {
  int64_t now = zkr__now_ms();
  noted_t *e = NULL;

  if (!p || !id)
    return ZKR_EINVAL;
  pthread_mutex_lock(&p->mu);
  for (int i = 0; i < p->nnoted && !e; i++)
    if (!strcmp(p->noted[i].id, id))
      e = &p->noted[i];
  if (!e) {
    noted_t *a = realloc(p->noted, (size_t)(p->nnoted + 1) * sizeof(*a));
    char *copy = strdup(id);
    if (!a || !copy) {
      free(copy);
      if (a)
        p->noted = a;
      pthread_mutex_unlock(&p->mu);
      return ZKR_ENOMEM;
    }
    p->noted = a;
    e = &p->noted[p->nnoted++];
    memset(e, 0, sizeof(*e));
    e->id = copy;
  }
  if (e->errors == 0 || now - e->first_ms > DOWN_WINDOW_MS) {
    e->errors = 0;
    e->first_ms = now;
  }
  if (++e->errors >= DOWN_ERRORS) {
    e->down_until_ms = now + DOWN_FOR_MS;
    e->errors = 0;
    if (p->sticky && !strcmp(p->sticky, id)) {
      free(p->sticky); /* sticky moves on */
      p->sticky = NULL;
    }
  }
  pthread_mutex_unlock(&p->mu);
  return 0;
}

void zkr_service_provider_free(zkr_service_provider_t *p) {
  if (!p)
    return;
  zkr_service_cache_free(p->c);
  zkr_service_instances_free(p->snap, p->nsnap);
  for (int i = 0; i < p->nnoted; i++)
    free(p->noted[i].id);
  free(p->noted);
  free(p->sticky);
  pthread_mutex_destroy(&p->mu);
  free(p);
}
