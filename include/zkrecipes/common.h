/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zkrecipes/common.h - version, error codes and logging shared by every part of
 * the library. Include <zkrecipes.h> rather than this file.
 */
#ifndef ZKRECIPES_COMMON_H
#define ZKRECIPES_COMMON_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The one place the version lives; the Makefile reads these three lines. */
#define ZKR_VERSION_MAJOR 0
#define ZKR_VERSION_MINOR 3
#define ZKR_VERSION_PATCH 0

/* Compile-time version as one number: 0xMMmmpp. */
#define ZKR_VERSION_NUM                                                                  \
  ((ZKR_VERSION_MAJOR << 16) | (ZKR_VERSION_MINOR << 8) | ZKR_VERSION_PATCH)

#if defined(__GNUC__)
#define ZKR_API __attribute__((visibility("default")))
#else
#define ZKR_API
#endif

/*
 * Error codes. Every fallible function returns 0 (ZKR_OK, equal to ZOK) or a
 * negative code. ZooKeeper's own codes (ZNONODE, ZCONNECTIONLOSS, ...) pass
 * through unchanged; zkrecipes' codes live in a disjoint block from -1000 down.
 * Codes are only ever appended.
 *
 * X(name, value, description)
 */
#define ZKR_ERRNO_MAP(X)                                                                 \
  X(EINVAL, -1000, "invalid argument")                                                   \
  X(ENOMEM, -1001, "out of memory")                                                      \
  X(ETIMEDOUT, -1002, "timed out")                                                       \
  X(ECANCELED, -1003, "operation canceled")                                              \
  X(EDEADLK, -1004, "blocking call made from inside a zkrecipes callback")               \
  X(ECLOSED, -1005, "session is closed")                                                 \
  X(EBUSY, -1006, "object is busy with another operation")                               \
  X(ENOTHELD, -1007, "not held (or pending) on this object")                             \
  X(EBADDATA, -1008, "node data is not in the expected format")                          \
  X(EUNKNOWN, -1009, "outcome unknown: the write may or may not have applied")           \
  X(EOVERFLOW, -1010, "value out of range")                                              \
  X(EMISMATCH, -1011, "current value differs from the expected value")                   \
  X(ELOST, -1012, "ownership lost: the session expired")                                 \
  X(ESYSTEM, -1013, "system call failed")                                                \
  X(ERESOLVE, -1014, "no server address could be resolved")                             \
  X(ENOTREADY, -1015, "no answer from the server yet")                                   \
  X(ELIMIT, -1016, "over the session's budget of watched path bytes")                    \
  X(EDUPLICATE, -1017, "another session holds this id")                                 \
  X(EFOREIGN, -1018, "another library's structure is on this path")

/* ZooKeeper's codes, listed so zkr_strerror()/zkr_errname() cover them too. */
#define ZKR_ZOO_ERRNO_MAP(X)                                                             \
  X(ZOK, 0, "ok")                                                                        \
  X(ZSYSTEMERROR, -1, "ZooKeeper client system error")                                   \
  X(ZRUNTIMEINCONSISTENCY, -2, "runtime inconsistency")                                  \
  X(ZDATAINCONSISTENCY, -3, "data inconsistency")                                        \
  X(ZCONNECTIONLOSS, -4, "connection to the server lost")                                \
  X(ZMARSHALLINGERROR, -5, "marshalling error")                                          \
  X(ZUNIMPLEMENTED, -6, "operation not implemented")                                     \
  X(ZOPERATIONTIMEOUT, -7, "operation timed out")                                        \
  X(ZBADARGUMENTS, -8, "bad arguments")                                                  \
  X(ZINVALIDSTATE, -9, "invalid ZooKeeper handle state")                                 \
  X(ZNEWCONFIGNOQUORUM, -13, "no quorum of the new configuration")                       \
  X(ZRECONFIGINPROGRESS, -14, "reconfiguration in progress")                             \
  X(ZSSLCONNECTIONERROR, -15, "SSL connection error")                                    \
  X(ZAPIERROR, -100, "API error")                                                        \
  X(ZNONODE, -101, "node does not exist")                                                \
  X(ZNOAUTH, -102, "not authorized")                                                     \
  X(ZBADVERSION, -103, "version conflict")                                               \
  X(ZNOCHILDRENFOREPHEMERALS, -108, "ephemeral nodes may not have children")             \
  X(ZNODEEXISTS, -110, "node already exists")                                            \
  X(ZNOTEMPTY, -111, "node has children")                                                \
  X(ZSESSIONEXPIRED, -112, "session expired")                                            \
  X(ZINVALIDCALLBACK, -113, "invalid callback")                                          \
  X(ZINVALIDACL, -114, "invalid ACL")                                                    \
  X(ZAUTHFAILED, -115, "authentication failed")                                          \
  X(ZCLOSING, -116, "ZooKeeper handle is closing")                                       \
  X(ZNOTHING, -117, "no server responses to process")                                    \
  X(ZSESSIONMOVED, -118, "session moved to another server")                              \
  X(ZNOTREADONLY, -119, "state-changing request sent to a read-only server")             \
  X(ZEPHEMERALONLOCALSESSION, -120, "ephemeral node on a local session")                 \
  X(ZNOWATCHER, -121, "watcher not found")                                               \
  X(ZRECONFIGDISABLED, -123, "reconfiguration disabled")                                 \
  X(ZSESSIONCLOSEDREQUIRESASLAUTH, -124, "server requires SASL auth")                    \
  X(ZTHROTTLEDOP, -127, "operation throttled by the server")

typedef enum zkr_errno {
  ZKR_OK = 0,
#define ZKR__ERRNO_ENUM(name, value, text) ZKR_##name = (value),
  ZKR_ERRNO_MAP(ZKR__ERRNO_ENUM)
#undef ZKR__ERRNO_ENUM
} zkr_errno_t;

/* A static, human-readable description of any code (ours or ZooKeeper's). */
ZKR_API const char *zkr_strerror(int rc);
/* The symbolic name of a code: "ZKR_EINVAL", "ZNONODE", or "unknown". */
ZKR_API const char *zkr_errname(int rc);

/*
 * 0 if path is a ZooKeeper path the server accepts: absolute, no empty, "." or
 * ".." segment, no trailing slash, at most 1024 bytes of UTF-8 without the
 * characters the server refuses (U+0000-U+001F, U+007F-U+009F, U+D800-U+F8FF,
 * U+FFF0-U+FFFF, and code points above U+FFFF); ZKR_EINVAL otherwise. Recipes
 * also refuse "/" and paths in /zookeeper.
 */
ZKR_API int zkr_path_check(const char *path);

/* Run-time version: ZKR_VERSION_NUM and "MAJOR.MINOR.PATCH" of the library. */
ZKR_API unsigned zkr_version(void);
ZKR_API const char *zkr_version_string(void);

/*
 * Logging. The library prints nothing by itself: its own messages and those of
 * the ZooKeeper client go to one process-wide callback (the ZooKeeper C client's
 * log hook carries no context, so a per-session hook could not be honoured for
 * its messages). With no callback set, nothing is logged unless the environment
 * variable ZKR_LOG is set to error, warn, info or debug, in which case messages
 * at that level or above go to stderr.
 */
typedef enum zkr_log_level {
  ZKR_LOG_ERROR = 1,
  ZKR_LOG_WARN = 2,
  ZKR_LOG_INFO = 3,
  ZKR_LOG_DEBUG = 4
} zkr_log_level_t;

/* msg is borrowed for the duration of the call and carries no trailing newline. */
typedef void (*zkr_log_fn)(void *arg, int level, const char *msg);

/* Install (or with fn NULL, remove) the log callback and the most verbose level
 * it receives. May be called at any time from any thread. */
ZKR_API void zkr_log_set_callback(zkr_log_fn fn, void *arg, int max_level);

#ifdef __cplusplus
}
#endif
#endif /* ZKRECIPES_COMMON_H */
