#!/usr/bin/env bash
# with-zk.sh - run a command with throwaway ZooKeeper servers on 127.0.0.1.
#
# usage: with-zk.sh [--standalone] [--ensemble] [--] CMD [ARGS...]
#
# Starts the requested servers (default: both) in a fresh temp directory,
# exports for CMD:
#   ZKR_TEST_STANDALONE        host string of the standalone server
#   ZKR_TEST_ENSEMBLE          host string of the 3-member ensemble
#   ZKR_TEST_ZKDIR_STANDALONE  zkctl.sh state directory of the standalone
#   ZKR_TEST_ZKDIR_ENSEMBLE    zkctl.sh state directory of the ensemble
#   ZKR_ZKCTL                  absolute path of zkctl.sh
# runs CMD, stops every server it started (by pid) on exit or signal, removes
# the temp directory (kept when ZKCTL_KEEP=1) and exits with CMD's status.
#
# If ZKR_TEST_HOSTS is set, no server is started: ZKR_TEST_STANDALONE is set
# to it and the other variables are left unset (tests needing an ensemble or
# server control skip themselves).

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
ZKCTL=$HERE/zkctl.sh

die() {
    printf 'with-zk: %s\n' "$*" >&2
    exit 2
}

want_sa=0 want_ens=0
while (($#)); do
    case $1 in
    --standalone) want_sa=1 ;;
    --ensemble) want_ens=1 ;;
    --) shift; break ;;
    -h | --help)
        sed -n '2,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
        exit 0
        ;;
    -*) die "unknown option '$1' (try --help)" ;;
    *) break ;;
    esac
    shift
done
(($#)) || die "no command given (usage: with-zk.sh [--standalone] [--ensemble] [--] CMD [ARGS...])"
if ((!want_sa && !want_ens)); then want_sa=1 want_ens=1; fi

# Never let values from an outer run leak into CMD.
unset ZKR_TEST_STANDALONE ZKR_TEST_ENSEMBLE ZKR_TEST_ZKDIR_STANDALONE ZKR_TEST_ZKDIR_ENSEMBLE ZKR_ZKCTL

if [[ -n ${ZKR_TEST_HOSTS:-} ]]; then
    echo "with-zk: ZKR_TEST_HOSTS is set: using $ZKR_TEST_HOSTS, starting no server (ensemble/server-control tests will skip)" >&2
    export ZKR_TEST_STANDALONE=$ZKR_TEST_HOSTS
    exec "$@"
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/with-zk.XXXXXX")
SA_DIR=$TMP/standalone
ENS_DIR=$TMP/ensemble
declare -A STARTER=() # kind -> pid of a still-running "zkctl.sh start-*"

# shellcheck disable=SC2317 # only ever run from the EXIT trap
cleanup() {
    local rc=$? kind pid dir
    trap - EXIT INT TERM HUP
    # Interrupted during start-up: stop the starters first (they kill the
    # servers they launched), then stop whatever they left behind.
    for kind in "${!STARTER[@]}"; do
        pid=${STARTER[$kind]}
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    # Keep the directories (and logs) with ZKCTL_KEEP=1; zkctl honours it too.
    # A failed stop turns a success into a failure (servers may be left).
    for dir in "$SA_DIR" "$ENS_DIR"; do
        if [[ -d $dir ]] && ! "$ZKCTL" stop "$dir" && ((rc == 0)); then rc=1; fi
    done
    if [[ ${ZKCTL_KEEP:-} == 1 ]]; then
        echo "with-zk: kept $TMP" >&2
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
# Signals end the script; the EXIT trap does the cleaning.
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# Split the port range so the two concurrent starts cannot pick the same
# port; each start still checks that its ports are free.
pmin=${ZKCTL_PORT_MIN:-20000} pmax=${ZKCTL_PORT_MAX:-32000}
pmid=$(((pmin + pmax) / 2))
t0=${EPOCHREALTIME//[!0-9]/}

# Both starts run concurrently: the JVMs start in parallel.
if ((want_sa)); then
    ZKCTL_PORT_MIN=$pmin ZKCTL_PORT_MAX=$pmid \
        "$ZKCTL" start-standalone "$SA_DIR" >"$TMP/standalone.hosts" 2>"$TMP/standalone.err" &
    STARTER[standalone]=$!
fi
if ((want_ens)); then
    ZKCTL_PORT_MIN=$((pmid + 1)) ZKCTL_PORT_MAX=$pmax \
        "$ZKCTL" start-ensemble "$ENS_DIR" >"$TMP/ensemble.hosts" 2>"$TMP/ensemble.err" &
    STARTER[ensemble]=$!
fi

failed=0
for kind in standalone ensemble; do
    [[ -n ${STARTER[$kind]:-} ]] || continue
    rc=0
    wait "${STARTER[$kind]}" || rc=$?
    unset "STARTER[$kind]"
    if ((rc != 0)); then
        failed=1
        cat "$TMP/$kind.err" >&2
        # Show the end of each member log to explain the failure.
        for log in "$TMP/$kind"/*/log "$TMP/$kind"/*.log; do
            [[ -f $log ]] || continue
            echo "with-zk: --- last lines of $log" >&2
            tail -n 15 "$log" >&2
        done
    fi
done
((failed == 0)) || die "could not start ZooKeeper"

msg=
if ((want_sa)); then
    ZKR_TEST_STANDALONE=$(<"$TMP/standalone.hosts")
    export ZKR_TEST_STANDALONE ZKR_TEST_ZKDIR_STANDALONE=$SA_DIR
    msg+="standalone $ZKR_TEST_STANDALONE"
fi
if ((want_ens)); then
    ZKR_TEST_ENSEMBLE=$(<"$TMP/ensemble.hosts")
    export ZKR_TEST_ENSEMBLE ZKR_TEST_ZKDIR_ENSEMBLE=$ENS_DIR
    msg+="${msg:+; }ensemble $ZKR_TEST_ENSEMBLE"
fi
export ZKR_ZKCTL=$ZKCTL
t1=${EPOCHREALTIME//[!0-9]/}
ms=$(((10#$t1 - 10#$t0) / 1000))
printf 'with-zk: %s (up in %d.%01d s)\n' "$msg" $((ms / 1000)) $((ms % 1000 / 100)) >&2

# CMD runs in the foreground so it keeps the terminal and gets Ctrl-C
# itself; a signal to this script is acted on once CMD returns.
rc=0
"$@" || rc=$?
exit "$rc"
