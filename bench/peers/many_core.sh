#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# many_core.sh OUT - run the peer comparison (zkrecipes, raw floors, Curator, kazoo)
# on a machine without Debian's packages, from the kit staged in build/stage by
# ../shared/tools/many-core/stage.sh plus what `many_core.sh --stage` adds here
# (zkr_bench, the compiled CuratorBench). Results go to OUT/<setup>/.
#   many_core.sh --stage      (here) build and add our programs to build/stage
#   many_core.sh OUT          (there) ROUNDS (2) standalone rounds, then one
#                             ensemble round while BUDGET_S (420) allows
set -euo pipefail
cd "$(dirname "$0")/../.."
STAGE=$PWD/build/stage

if [[ ${1:-} == --stage ]]; then
    [[ -f $STAGE/env.sh ]] || { echo "many_core: run stage.sh build/stage first" >&2; exit 2; }
    make -s build/bench/zkr_bench
    cp build/bench/zkr_bench "$STAGE/"
    mkdir -p "$STAGE/classes"
    javac -nowarn -d "$STAGE/classes" -cp "$(ls "$STAGE"/java/*.jar | tr '\n' ':')" \
        bench/peers/CuratorBench.java
    du -sh "$STAGE"
    exit 0
fi

out=${1:?usage: many_core.sh OUT | --stage}
mkdir -p "$out"
t0=$SECONDS
cd "$STAGE" && . ./env.sh && cd - >/dev/null # extracts the JRE the first time
export ZKCTL_ZK_DIR=$STAGE/java ZKR_PEERS_JAVA=java ZKR_PEERS_CP=$ZKR_JARS \
    ZKR_PEERS_CLASSES=$STAGE/classes ZKR_PEERS_PYTHON=python3
{
    echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)," \
        "$(. /etc/os-release && echo "$PRETTY_NAME"), $(uname -r), $(date -u +%FT%TZ)"
    java -version 2>&1 | head -1
} >"$out/machine.txt"
run() { # SETUP ZKFLAG HOSTVAR ROUNDS LABEL
    mkdir -p "$out/$1"
    tests/zk/with-zk.sh "$2" -- bash -c 'python3 bench/peers/run_peers.py --hosts "${!0}" \
        --rounds "$1" --bench "$2" --out "$3" --label "$4"' \
        "$3" "$4" "$STAGE/zkr_bench" "$out/$1" "$5" >"$out/$1/tables.txt" 2>"$out/$1/log.txt"
}
run standalone --standalone ZKR_TEST_STANDALONE "${ROUNDS:-2}" \
    "standalone server, $(nproc) cores" || echo "standalone failed" >>"$out/machine.txt"
if ((SECONDS - t0 < ${BUDGET_S:-420} / 2)); then
    run ensemble --ensemble ZKR_TEST_ENSEMBLE 1 "3-node ensemble, $(nproc) cores" ||
        echo "ensemble failed" >>"$out/machine.txt"
fi
echo "done in $((SECONDS - t0)) s" >>"$out/machine.txt"
