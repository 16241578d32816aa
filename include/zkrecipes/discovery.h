/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zkrecipes/discovery.h - service discovery that Apache Curator
 * (curator-x-discovery, Spring Cloud Zookeeper) services read and write.
 *
 * An instance of service NAME lives at BASE/NAME/ID, its data the JSON of
 * Curator's default (compatible) serialisation, fields in this order, nulls
 * written out:
 *   {"name":..,"id":..,"address":..,"port":..,"sslPort":..,"payload":..,
 *    "registrationTimeUTC":<epoch ms>,"serviceType":"DYNAMIC|STATIC|PERMANENT",
 *    "uriSpec":null|{"parts":[{"value":..,"variable":true|false},...]}}
 * and "enabled" last only when asked for (Curator's non-compatible mode writes
 * it; readers take a missing one as true). "payload" is JSON the caller
 * supplies, passed through as is (null by default): a Java consumer built
 * with a payload class (Spring Cloud's ZookeeperInstance) skips instances
 * whose payload lacks its "@class".
 *
 * DYNAMIC instances are EPHEMERAL nodes, STATIC and PERMANENT ones
 * PERSISTENT (a PERMANENT one stays when its registration is freed; a STATIC
 * one is deleted then). Registration follows the group member's rules
 * (zkrecipes/group.h): a node of our session is kept and updated in place, one
 * of a session we had is replaced, any other one is ZKR_EDUPLICATE, never
 * stolen; after an expiry the instance registers again by itself, and a plain
 * reconnect changes nothing (no delete and re-create, so readers see no
 * flap). An update is a setData of the node; unregistering stops the
 * re-registration first, so a reconnect racing it cannot bring it back.
 *
 * Reading is tolerant: unknown fields are ignored, a missing "enabled" is
 * true, and a node whose data is empty or not an instance is skipped (and
 * logged), never an error for the rest.
 */
#ifndef ZKRECIPES_DISCOVERY_H
#define ZKRECIPES_DISCOVERY_H

#include <stdint.h>

#include <zkrecipes/common.h>
#include <zkrecipes/session.h>

#ifdef __cplusplus
extern "C" {
#endif

/* serviceType. */
typedef enum zkr_service_type {
  ZKR_SERVICE_DYNAMIC = 0,   /* EPHEMERAL: goes with the session */
  ZKR_SERVICE_STATIC = 1,    /* PERSISTENT, deleted when its registration is freed */
  ZKR_SERVICE_PERMANENT = 2, /* PERSISTENT, stays until unregistered */
  ZKR_SERVICE_DYNAMIC_SEQUENTIAL = 3 /* read only (written by other clients) */
} zkr_service_type_t;

/* One instance. When registering, the strings are the caller's (copied); when
 * read, they are malloc'd and zkr_service_instance_clear() frees them. */
typedef struct zkr_service_instance {
  char *name;        /* the service name */
  char *id;          /* the instance id (registering: NULL makes a random UUID) */
  char *address;     /* NULL: null */
  int port;          /* -1: null */
  int ssl_port;      /* -1: null */
  char *payload;     /* raw JSON text (an object, string, ...); NULL: null */
  int64_t registration_time_utc; /* epoch ms; 0 when registering: now */
  int service_type;  /* zkr_service_type_t */
  char *uri_spec;    /* Curator's URI template, e.g. "{scheme}://{address}:{port}";
                        NULL: null */
  int enabled;       /* 1 or 0 */
  int write_enabled; /* registering: write "enabled" (else it is left out and
                        readers take it as true); read: it was there */
  int64_t epoch;     /* read: the node's czxid */
  int64_t owner;     /* read: the session holding it (0: persistent) */
  int reserved[4];
} zkr_service_instance_t;

/* An instance with every field empty: port and ssl_port -1, enabled 1. */
ZKR_API void zkr_service_instance_init(zkr_service_instance_t *inst);
/* Free what a read instance holds, and empty it. */
ZKR_API void zkr_service_instance_clear(zkr_service_instance_t *inst);

/* The node data of inst (malloc'd, NUL-terminated; free(3) it): ZKR_EINVAL
 * for a missing name or id, or a payload that is not JSON. */
ZKR_API int zkr_service_instance_to_json(const zkr_service_instance_t *inst, char **json);
/* Parse node data (len bytes) into *out (zkr_service_instance_clear it):
 * ZKR_EBADDATA when it is not an instance. */
ZKR_API int zkr_service_instance_from_json(const char *data, int len,
                                           zkr_service_instance_t *out);

/* ---- registering ---- */

typedef struct zkr_service_reg zkr_service_reg_t;

/*
 * Register inst (name, address... as above; id NULL: a random UUID) under
 * base, waiting at most timeout_ms for the node: 0, ZKR_EDUPLICATE (another
 * session holds the id), ZKR_ETIMEDOUT, or the server's refusal. The
 * registration then keeps the instance there until unregistered or freed.
 */
ZKR_API int zkr_service_register(zkr_session_t *s, const char *base,
                                 const zkr_service_instance_t *inst, int timeout_ms,
                                 zkr_service_reg_t **out);
/* The instance's id and node path (borrowed; valid until free). */
ZKR_API const char *zkr_service_reg_id(zkr_service_reg_t *r);
ZKR_API const char *zkr_service_reg_node(zkr_service_reg_t *r);
/* 1 while the instance's node is there. */
ZKR_API int zkr_service_reg_is_registered(zkr_service_reg_t *r);
/* Write new fields in place (name, id and service type stay): one setData. */
ZKR_API int zkr_service_update(zkr_service_reg_t *r, const zkr_service_instance_t *inst);
/* Delete the instance (waiting at most timeout_ms) and free the registration. */
ZKR_API int zkr_service_unregister(zkr_service_reg_t *r, int timeout_ms);
/* Free: DYNAMIC and STATIC instances are deleted, PERMANENT ones stay. */
ZKR_API void zkr_service_reg_free(zkr_service_reg_t *r);

/* ---- reading ---- */

/* The service names under base (malloc'd array of malloc'd strings, sorted;
 * zkr_service_names_free): 0, or ZNONODE when base does not exist. */
ZKR_API int zkr_service_names(zkr_session_t *s, const char *base, int timeout_ms,
                              char ***names, int *count);
ZKR_API void zkr_service_names_free(char **names, int count);

typedef struct zkr_service_cache zkr_service_cache_t;

/* Follow the instances of service name under base (a children cache with
 * data on base/name; read-only). */
ZKR_API int zkr_service_cache_new(zkr_session_t *s, const char *base, const char *name,
                                  zkr_service_cache_t **out);
/* Hear the changes (Curator's cacheChanged): ev is ZKR_CACHE_ADDED, _UPDATED,
 * _REPLACED or _REMOVED with the instance's id (its node name), or
 * ZKR_CACHE_INITIALIZED and the other cache events with id NULL; callback
 * context, one at a time. Set it before zkr_service_cache_start(). */
typedef void (*zkr_service_cache_listener_fn)(zkr_service_cache_t *c, int ev, const char *id,
                                              void *arg);
ZKR_API int zkr_service_cache_set_listener(zkr_service_cache_t *c,
                                           zkr_service_cache_listener_fn fn, void *arg);
ZKR_API int zkr_service_cache_start(zkr_service_cache_t *c);
/* Wait until the first listing is in (or timeout_ms): 0, ZKR_ETIMEDOUT. */
ZKR_API int zkr_service_cache_wait_ready(zkr_service_cache_t *c, int timeout_ms);
/* The instances now, sorted by id; with enabled_only, those not disabled.
 * 0 (also with none), ZKR_ENOTREADY before the first listing. Free with
 * zkr_service_instances_free. */
ZKR_API int zkr_service_cache_list(zkr_service_cache_t *c, int enabled_only,
                                   zkr_service_instance_t **out, int *count);
ZKR_API void zkr_service_instances_free(zkr_service_instance_t *insts, int count);
ZKR_API void zkr_service_cache_free(zkr_service_cache_t *c);

/* ---- a provider: pick one instance ---- */

typedef enum zkr_service_strategy {
  ZKR_PICK_RANDOM = 0,
  ZKR_PICK_ROUND_ROBIN = 1,
  ZKR_PICK_STICKY = 2 /* the same instance while it is there and not failing */
} zkr_service_strategy_t;

typedef struct zkr_service_provider zkr_service_provider_t;

/* A provider over a cache of service name's instances (started here). */
ZKR_API int zkr_service_provider_new(zkr_session_t *s, const char *base, const char *name,
                                     int strategy, zkr_service_provider_t **out);
/*
 * Pick an enabled instance not noted as failing (*out: zkr_service_instance_clear
 * it): 0, ZNONODE when there is none, ZKR_ENOTREADY before the first listing
 * (zkr_service_provider_wait_ready).
 */
ZKR_API int zkr_service_provider_get(zkr_service_provider_t *p, zkr_service_instance_t *out);
ZKR_API int zkr_service_provider_wait_ready(zkr_service_provider_t *p, int timeout_ms);
/* The caller could not use instance id: after 2 such notes within 30 s it is
 * left out of the picks for 30 s (Curator's default down-instance policy). */
ZKR_API int zkr_service_provider_note_error(zkr_service_provider_t *p, const char *id);
ZKR_API void zkr_service_provider_free(zkr_service_provider_t *p);

/* Static names: "DYNAMIC", ... and "random", "round-robin", "sticky". */
ZKR_API const char *zkr_service_type_name(int type);
ZKR_API const char *zkr_service_strategy_name(int strategy);

#ifdef __cplusplus
}
#endif
#endif /* ZKRECIPES_DISCOVERY_H */
