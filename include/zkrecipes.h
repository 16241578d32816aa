/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zkrecipes - ZooKeeper coordination recipes for C.
 *
 * Rules that hold for every function unless its comment says otherwise:
 *
 * Errors. A fallible function returns 0 (ZKR_OK) or a negative code: ZooKeeper's
 * own codes (ZNONODE, ZCONNECTIONLOSS, ...) unchanged, or zkrecipes' codes
 * (ZKR_E*, from -1000 down). zkr_strerror() and zkr_errname() describe any code.
 * Bad input is ZKR_EINVAL with nothing changed. There is no errno side channel.
 *
 * Ownership. Inputs are copied before a call returns. Buffers returned through
 * out-parameters belong to the caller and are released with free(3), unless the
 * function says "borrowed". zkr_x_free(NULL) is a no-op.
 *
 * Threads. Every object may be used from any thread. Callbacks (completions,
 * listeners) run in "callback context": on a zkrecipes or ZooKeeper client
 * thread, one at a time (across all sessions), with no zkrecipes lock held. A blocking
 * call made in callback context returns ZKR_EDEADLK instead of hanging. Freeing an object
 * cancels its pending work: each pending callback runs exactly once with ZKR_ECANCELED
 * before _free returns, and none runs afterwards.
 *
 * Sync and async. Each operation that talks to the server comes as
 * zkr_x_op(..., timeout_ms) and zkr_x_op_async(..., cb, arg). timeout_ms follows
 * poll(2): -1 waits forever, 0 tries once, > 0 is a deadline. An async call that
 * returns non-zero never runs its callback; one that returns 0 runs it exactly
 * once.
 *
 * Build with: pkg-config --cflags --libs zkrecipes
 */
#ifndef ZKRECIPES_H
#define ZKRECIPES_H

#include <zkrecipes/common.h>
#include <zkrecipes/session.h>
#include <zkrecipes/contenders.h>
#include <zkrecipes/lock.h>
#include <zkrecipes/counter.h>
#include <zkrecipes/election.h>
#include <zkrecipes/cache.h>
#include <zkrecipes/journal.h>
#include <zkrecipes/group.h>
#include <zkrecipes/discovery.h>
#include <zkrecipes/semaphore.h>
#include <zkrecipes/barrier.h>
#include <zkrecipes/queue.h>

#endif /* ZKRECIPES_H */
