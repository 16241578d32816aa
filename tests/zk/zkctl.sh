#!/usr/bin/env bash
# zkctl.sh - run throwaway ZooKeeper servers (standalone or an N-member
# ensemble) on 127.0.0.1 for the tests, and control their members.
#
# All state lives in a directory DIR:
#   DIR/.zkctl        marker: this directory was made by zkctl (stop removes it)
#   DIR/kind          "standalone" or "ensemble"
#   DIR/members       member count
#   DIR/hosts         client host string 127.0.0.1:P1,127.0.0.1:P2,...
#   DIR/<i>/zoo.cfg   member i's configuration
#   DIR/<i>/data/     its data (and myid for ensembles)
#   DIR/<i>/port      its client port
#   DIR/<i>/pid       its server pid
#   DIR/<i>/log       its JVM output (appended on every start)
#
# Processes are only ever signalled by the pid recorded in DIR/<i>/pid, and
# only after checking that the pid's command line names DIR/<i>/zoo.cfg
# (so a recycled pid is never hit).

set -Eeuo pipefail

PROG=zkctl
# ZKCTL_ZK_DIR: where zookeeper.jar, its dependencies and slf4j-simple.jar are,
# for machines without Debian's zookeeper package (the staged many-core kit).
ZK_CONF=/etc/zookeeper/conf
ZK_JAR=${ZKCTL_ZK_DIR:-/usr/share/java}/zookeeper.jar
SLF4J_SIMPLE=${ZKCTL_ZK_DIR:-/usr/share/java}/slf4j-simple.jar
ZK_MAIN=org.apache.zookeeper.server.quorum.QuorumPeerMain

TICK=${ZKCTL_TICK:-200}
READY_TIMEOUT=${ZKCTL_TIMEOUT:-60}   # seconds to wait for servers to serve
LEADER_TIMEOUT=30                    # seconds "leader" waits for a leader
STOP_TIMEOUT=10                      # seconds between SIGTERM and SIGKILL
FLW_TIMEOUT=2                        # seconds for one four-letter-word exchange
PORT_MIN=${ZKCTL_PORT_MIN:-20000}
PORT_MAX=${ZKCTL_PORT_MAX:-32000}
START_ATTEMPTS=3

usage() {
    cat <<'EOF'
usage: zkctl.sh COMMAND DIR [ARGS]
  start-standalone DIR       start a standalone server; print its host string
  start-ensemble DIR [N]     start an N-member ensemble (default 3); print hosts
  stop DIR                   stop all members, remove DIR (kept if ZKCTL_KEEP=1)
  hosts DIR                  print the client host string
  member-hosts DIR I         print 127.0.0.1:PORT of member I
  member-of DIR HOST:PORT    print the index of the member with that client port
  stop-member DIR I          SIGTERM member I and wait for it to exit
  kill-member DIR I          SIGKILL member I and wait for it to be gone
  start-member DIR I         start member I again; wait until it serves
  restart-member DIR I       stop-member then start-member
  pause-member DIR I         SIGSTOP member I
  resume-member DIR I        SIGCONT member I
  leader DIR                 print the leader's index (waits up to 30 s)
  wait-ready DIR             wait until every running (not paused) member serves
  status DIR                 one line per member: INDEX PORT PID alive|dead MODE
  srvr DIR I                 print member I's answer to the "srvr" command
environment: ZKCTL_TICK (200), ZKCTL_FORCESYNC, ZKCTL_JAVA_OPTS, ZKCTL_ZK_DIR,
  ZKCTL_LINK_PORTS (member i reaches member j through these ports: for i, for
  j != i, a quorum and an election port; DIR/links maps them to the real ones),
  ZKCTL_DATALOG_<I> (member I's dataLogDir), ZKCTL_INIT_LIMIT (50 ticks),
  ZKCTL_SYNC_LIMIT (25 ticks)
  (-Xmx512m -XX:+UseSerialGC), ZKCTL_KEEP=1, ZKCTL_TIMEOUT (60),
  ZKCTL_PORT_MIN (20000), ZKCTL_PORT_MAX (32000)
EOF
}

die() {
    printf '%s: %s\n' "$PROG" "$*" >&2
    exit 1
}

# Any unexpected failure still ends with one line on stderr (only reported
# by the top-level shell, so a failing $(...) is not reported twice).
on_err() {
    local rc=$1 line=$2 cmd=$3
    if ((BASH_SUBSHELL == 0)); then
        printf '%s: internal error at line %s (status %s): %s\n' "$PROG" "$line" "$rc" "$cmd" >&2
    fi
    exit "$rc"
}
trap 'on_err $? $LINENO "$BASH_COMMAND"' ERR

# Monotonic-enough clock in milliseconds (EPOCHREALTIME needs bash 5).
now_ms() {
    local t=${EPOCHREALTIME//[!0-9]/}
    echo $((10#$t / 1000))
}

nap() { sleep 0.1 || true; }

# ---------------------------------------------------------------- state dir

# set_dir DIR: make DIR absolute (the pid check compares absolute cfg paths).
set_dir() {
    [[ -n ${1:-} ]] || die "missing DIR argument"
    [[ -d $1 ]] || die "$1: no such directory"
    DIR=$(cd "$1" && pwd -P)
}

# need_state: DIR must be one made by "start-*".
need_state() {
    [[ -f $DIR/members && -f $DIR/kind ]] || die "$DIR: not a zkctl state directory"
    MEMBERS=$(<"$DIR/members")
    KIND=$(<"$DIR/kind")
    [[ $MEMBERS =~ ^[1-9][0-9]*$ ]] || die "$DIR/members: bad member count"
}

# check_index I: I must name an existing member.
check_index() {
    if ! [[ ${1:-} =~ ^[1-9][0-9]*$ ]] || ((10#$1 > MEMBERS)); then
        die "bad member index '${1:-}' (members: 1..$MEMBERS)"
    fi
    [[ -f $DIR/$1/zoo.cfg ]] || die "member $1 has no configuration in $DIR/$1"
}

member_port() {
    local f=$DIR/$1/port
    [[ -s $f ]] || die "member $1 has no port file"
    echo "$(<"$f")"
}

# member_pid I: recorded pid (empty if none).
member_pid() {
    local f=$DIR/$1/pid
    if [[ -s $f ]]; then echo "$(<"$f")"; fi
}

# pid_is_member PID I: PID is a live (not zombie) server of member I.
pid_is_member() {
    local pid=$1 cfg=$DIR/$2/zoo.cfg stat state cmdline
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    state=${stat##*) }
    state=${state%% *}
    # A dead child not yet reaped is a zombie: it counts as gone.
    [[ $state != Z && $state != X ]] || return 1
    # Guard against pid reuse: its command line must name this member's cfg.
    cmdline=$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline") || return 1
    [[ $'\n'$cmdline$'\n' == *$'\n'"$cfg"$'\n'* ]]
}

member_alive() {
    local pid
    pid=$(member_pid "$1")
    [[ -n $pid ]] && pid_is_member "$pid" "$1"
}

member_paused() {
    local pid stat state
    pid=$(member_pid "$1")
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    state=${stat##*) }
    state=${state%% *}
    [[ $state == T || $state == t ]]
}

# ------------------------------------------------------------ four letter words

# flw PORT WORD: send a four-letter word, print the reply (empty on failure).
flw() {
    # shellcheck disable=SC2016 # $1/$2 are expanded by the inner bash
    timeout "$FLW_TIMEOUT" bash -c \
        'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf %s "$2" >&3 && cat <&3' \
        flw "$1" "$2" 2>/dev/null || true
}

# member_mode I: standalone|leader|follower|observer, not-serving (up but
# not serving yet), or no-answer.
member_mode() {
    local out mode
    out=$(flw "$(member_port "$1")" srvr)
    case $out in
    *"Mode: "*)
        mode=${out#*Mode: }
        mode=${mode%%[$'\r\n']*}
        echo "$mode"
        ;;
    *"not currently serving"*) echo not-serving ;;
    *) echo no-answer ;;
    esac
}

is_serving_mode() {
    case $1 in standalone | leader | follower | observer) return 0 ;; esac
    return 1
}

# ------------------------------------------------------------------- ports

# used_ports: local TCP ports in use on this host, from /proc. TIME_WAIT
# (state 06) does not count: ZooKeeper binds with SO_REUSEADDR, and a
# stopped server's port sits in TIME_WAIT for a minute.
used_ports() {
    local f sl addr state
    for f in /proc/net/tcp /proc/net/tcp6; do
        [[ -r $f ]] || continue
        while read -r sl addr _ state _; do
            [[ $sl != sl && $state != 06 ]] || continue
            echo $((16#${addr##*:}))
        done <"$f"
    done
}

port_accepts() {
    # shellcheck disable=SC2016 # $1 is expanded by the inner bash
    timeout 1 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' probe "$1" 2>/dev/null
}

# pick_ports N: set PICKED to N distinct random ports that look free.
pick_ports() {
    local n=$1 span=$((PORT_MAX - PORT_MIN + 1)) p tries=0
    local -A taken=()
    ((span >= n)) || die "port range $PORT_MIN-$PORT_MAX too small"
    for p in $(used_ports); do taken[$p]=1; done
    PICKED=()
    while ((${#PICKED[@]} < n)); do
        ((++tries <= 2000)) || die "cannot find $n free port(s) in $PORT_MIN-$PORT_MAX"
        p=$((PORT_MIN + (RANDOM * 32768 + RANDOM) % span))
        [[ -z ${taken[$p]:-} ]] || continue
        taken[$p]=1
        # Something already listens there (maybe in another namespace view).
        if port_accepts "$p"; then continue; fi
        PICKED+=("$p")
    done
}

# ----------------------------------------------------------------- members

# launch_member I: start member I's JVM in the background, record its pid.
launch_member() {
    local i=$1 cp=$ZK_CONF:$ZK_JAR
    if [[ -n ${ZKCTL_ZK_DIR:-} ]]; then
        cp=$(printf '%s:' "$ZKCTL_ZK_DIR"/*.jar)
    fi
    local -a jopts
    read -r -a jopts <<<"${ZKCTL_JAVA_OPTS--Xmx512m -XX:+UseSerialGC}"
    # Without an slf4j binding the server is silent; slf4j-simple logs to
    # stderr, which goes to the member's log file.
    if [[ -r $SLF4J_SIMPLE ]]; then
        cp+=:$SLF4J_SIMPLE
        jopts+=(-Dorg.slf4j.simpleLogger.defaultLogLevel=warn
            -Dorg.slf4j.simpleLogger.showDateTime=true
            -Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS)
    fi
    printf '=== zkctl: starting member %s at %(%F %T)T\n' "$i" -1 >>"$DIR/$i/log"
    (
        # Do not leak the caller's extra descriptors (e.g. a pipe a test
        # harness waits on) into a server that outlives this script.
        local fd
        for fd in /proc/"$BASHPID"/fd/*; do
            fd=${fd##*/}
            if ((fd > 2)); then exec {fd}>&-; fi
        done
        # A session of its own: a test harness that kills its test's process
        # group (Check does) must not take down a member the test restarted.
        # Not a group leader here, so setsid execs in place and $! stays right.
        exec setsid java "${jopts[@]}" -cp "$cp" "$ZK_MAIN" "$DIR/$i/zoo.cfg"
    ) </dev/null >>"$DIR/$i/log" 2>&1 &
    echo "$!" >"$DIR/$i/pid"
    # Not a job of this shell: no "Killed" notices when it is stopped.
    disown "$!"
}

# signal_members SIG I...: send SIG (after SIGCONT, so a paused member can
# act on it) to the live members among I..., then wait for them to exit;
# SIGKILL whatever is left after STOP_TIMEOUT.
signal_members() {
    local sig=$1 i pid deadline
    shift
    local -a left=()
    for i; do
        pid=$(member_pid "$i")
        if [[ -n $pid ]] && pid_is_member "$pid" "$i"; then
            kill -CONT "$pid" 2>/dev/null || true
            kill "-$sig" "$pid" 2>/dev/null || true
            left+=("$i")
        fi
    done
    ((${#left[@]})) || return 0
    deadline=$(($(now_ms) + STOP_TIMEOUT * 1000))
    while :; do
        local -a still=()
        for i in "${left[@]}"; do
            if member_alive "$i"; then still+=("$i"); fi
        done
        ((${#still[@]})) || return 0
        if (($(now_ms) > deadline)); then
            [[ $sig != KILL ]] || die "member(s) ${still[*]} survived SIGKILL"
            # Too slow to exit: force it.
            sig=KILL
            for i in "${still[@]}"; do
                kill -KILL "$(member_pid "$i")" 2>/dev/null || true
            done
            deadline=$(($(now_ms) + STOP_TIMEOUT * 1000))
        fi
        left=("${still[@]}")
        nap
    done
}

all_members() { seq 1 "$MEMBERS"; }

# member_dirs: set MDIRS to the indices of the member directories present
# (stop may meet a partially started DIR where some are missing).
member_dirs() {
    local d
    MDIRS=()
    for d in "$DIR"/*/; do
        d=${d%/}
        d=${d##*/}
        if [[ $d =~ ^[1-9][0-9]*$ ]]; then MDIRS+=("$d"); fi
    done
}

log_hint() { echo "see $DIR/$1/log"; }

# ------------------------------------------------------------------ start

# link_ports I J N: set LQ and LE to the ports of the link proxies member I
# uses to reach member J (ZKCTL_LINK_PORTS: for i, for j != i: quorum, election).
link_ports() {
    local i=$1 j=$2 n=$3 k
    local -a lp
    read -r -a lp <<<"$ZKCTL_LINK_PORTS"
    ((${#lp[@]} == 2 * n * (n - 1))) || die "ZKCTL_LINK_PORTS: want $((2 * n * (n - 1))) ports"
    k=$(((i - 1) * (n - 1) + (j < i ? j - 1 : j - 2)))
    LQ=${lp[2 * k]} LE=${lp[2 * k + 1]}
}

# write_member I N CLIENT_PORT [QUORUM_PORTS ELECTION_PORTS as "p1 p2 ..."]
write_member() {
    local i=$1 n=$2 cport=$3 qports=${4:-} eports=${5:-} j dl=ZKCTL_DATALOG_$1
    local -a qp eps
    mkdir -p "$DIR/$i/data"
    echo "$cport" >"$DIR/$i/port"
    {
        echo "# written by zkctl.sh"
        echo "tickTime=$TICK"
        echo "initLimit=${ZKCTL_INIT_LIMIT:-50}"
        echo "syncLimit=${ZKCTL_SYNC_LIMIT:-25}"
        echo "dataDir=$DIR/$i/data"
        # ZKCTL_DATALOG_<I>: member I's transaction log elsewhere (a slow disk)
        if [[ -n ${!dl:-} ]]; then echo "dataLogDir=${!dl}"; fi
        echo "clientPortAddress=127.0.0.1"
        echo "clientPort=$cport"
        echo "maxSessionTimeout=60000"
        # Benchmarks open hundreds of sessions from 127.0.0.1 (default limit 60).
        echo "maxClientCnxns=0"
        echo "4lw.commands.whitelist=*"
        echo "admin.enableServer=false"
        if [[ -n ${ZKCTL_FORCESYNC:-} ]]; then echo "forceSync=$ZKCTL_FORCESYNC"; fi
        if ((n > 1)); then
            echo "reconfigEnabled=false"
            echo "standaloneEnabled=true"
            read -r -a qp <<<"$qports"
            read -r -a eps <<<"$eports"
            for ((j = 1; j <= n; j++)); do
                if ((j != i)) && [[ -n ${ZKCTL_LINK_PORTS:-} ]]; then
                    # member i reaches j through the link proxies (i -> j)
                    link_ports "$i" "$j" "$n"
                    echo "server.$j=127.0.0.1:$LQ:$LE"
                    printf '%d %d quorum %d %d\n%d %d election %d %d\n' \
                        "$i" "$j" "$LQ" "${qp[j - 1]}" "$i" "$j" "$LE" "${eps[j - 1]}" >>"$DIR/links.new"
                else
                    echo "server.$j=127.0.0.1:${qp[j - 1]}:${eps[j - 1]}"
                fi
            done
        fi
    } >"$DIR/$i/zoo.cfg"
    if ((n > 1)); then echo "$i" >"$DIR/$i/data/myid"; fi
}

# wait_start: wait until the freshly launched members serve as a whole.
# Returns 1 (with WHY set) when a member dies or the deadline passes.
wait_start() {
    local deadline i mode leaders serving
    deadline=$(($(now_ms) + READY_TIMEOUT * 1000))
    while :; do
        check_abort
        leaders=0 serving=0
        for i in $(all_members); do
            if ! member_alive "$i"; then
                WHY="member $i exited during start-up ($(log_hint "$i"))"
                return 1
            fi
            mode=$(member_mode "$i")
            case $KIND:$mode in
            standalone:standalone) serving=$((serving + 1)) ;;
            ensemble:leader) serving=$((serving + 1)) leaders=$((leaders + 1)) ;;
            ensemble:follower) serving=$((serving + 1)) ;;
            esac
        done
        if ((serving == MEMBERS)) && { [[ $KIND == standalone ]] || ((leaders == 1)); }; then
            return 0
        fi
        if (($(now_ms) > deadline)); then
            WHY="not ready after ${READY_TIMEOUT}s (serving $serving/$MEMBERS, leaders $leaders; logs in $DIR/*/log)"
            return 1
        fi
        nap
    done
}

# INT/TERM during a start only set ABORTED; the start checks it at safe
# points (never between launching a JVM and recording its pid).
ABORTED=0
check_abort() {
    ((ABORTED)) || return 0
    trap - INT TERM
    member_dirs
    signal_members KILL "${MDIRS[@]}" || true
    die "start interrupted"
}

cmd_start() {
    local kind=$1 n=$2 dir=$3 attempt i hosts
    command -v java >/dev/null || die "java not found on PATH (run tests/deps.sh)"
    [[ -r $ZK_JAR ]] || die "$ZK_JAR missing (run tests/deps.sh)"
    [[ $n =~ ^[1-9][0-9]*$ ]] || die "bad member count '$n'"
    [[ -n $dir ]] || die "missing DIR argument"
    if [[ -e $dir ]] && [[ -n $(ls -A "$dir") ]]; then
        die "$dir exists and is not empty"
    fi
    mkdir -p "$dir"
    DIR=$(cd "$dir" && pwd -P)
    : >"$DIR/.zkctl"
    echo "$n" >"$DIR/members"
    echo "$kind" >"$DIR/kind"
    MEMBERS=$n KIND=$kind
    trap 'ABORTED=1' INT TERM
    for ((attempt = 1; attempt <= START_ATTEMPTS; attempt++)); do
        # Ports: clients first, then quorum and election ports for ensembles.
        check_abort
        if [[ $kind == standalone ]]; then pick_ports 1; else pick_ports $((3 * n)); fi
        rm -f "$DIR/links.new"
        for ((i = 1; i <= n; i++)); do
            # Keep a failed attempt's log for debugging; start afresh.
            if [[ -f $DIR/$i/log ]]; then mv "$DIR/$i/log" "$DIR/$i.attempt$((attempt - 1)).log"; fi
            rm -rf "${DIR:?}/$i"
            if [[ $kind == standalone ]]; then
                write_member "$i" 1 "${PICKED[0]}"
            else
                write_member "$i" "$n" "${PICKED[i - 1]}" "${PICKED[*]:n:n}" "${PICKED[*]:2*n:n}"
            fi
        done
        # DIR/links: "SRC DST KIND LISTEN TARGET" per link proxy (ZKCTL_LINK_PORTS)
        if [[ -f $DIR/links.new ]]; then mv "$DIR/links.new" "$DIR/links"; fi
        for ((i = 1; i <= n; i++)); do
            check_abort
            launch_member "$i"
        done
        if wait_start; then
            hosts=
            for ((i = 1; i <= n; i++)); do hosts+=${hosts:+,}127.0.0.1:${PICKED[i - 1]}; done
            echo "$hosts" >"$DIR/hosts"
            trap - INT TERM
            echo "$hosts"
            return 0
        fi
        check_abort
        # Most likely a port was taken meanwhile: retry with new ports.
        member_dirs
        signal_members KILL "${MDIRS[@]}"
        if ((attempt < START_ATTEMPTS)); then
            printf '%s: attempt %d failed: %s; retrying with new ports\n' "$PROG" "$attempt" "$WHY" >&2
        fi
    done
    trap - INT TERM
    die "start failed after $START_ATTEMPTS attempts: $WHY"
}

# ------------------------------------------------------------------ stop

cmd_stop() {
    local dir=$1
    [[ -n $dir ]] || die "missing DIR argument"
    # Already stopped and removed: nothing to do.
    [[ -d $dir ]] || return 0
    DIR=$(cd "$dir" && pwd -P)
    member_dirs
    signal_members TERM "${MDIRS[@]}"
    [[ ${ZKCTL_KEEP:-} == 1 ]] && return 0
    # Only ever delete a directory zkctl made.
    [[ -f $DIR/.zkctl ]] || die "not removing $DIR: no .zkctl marker"
    rm -rf "$DIR"
}

# ---------------------------------------------------------- member commands

cmd_start_member() {
    local i=$1 deadline mode
    if member_alive "$i"; then die "member $i is already running (pid $(member_pid "$i"))"; fi
    launch_member "$i"
    deadline=$(($(now_ms) + READY_TIMEOUT * 1000))
    while :; do
        member_alive "$i" || die "member $i exited during start-up ($(log_hint "$i"))"
        mode=$(member_mode "$i")
        if is_serving_mode "$mode"; then return 0; fi
        (($(now_ms) <= deadline)) || die "member $i not serving after ${READY_TIMEOUT}s (mode $mode; $(log_hint "$i"))"
        nap
    done
}

# leader: for ensembles poll until exactly one live, unpaused member says
# "Mode: leader" (a just-resumed ex-leader may still claim it for a moment).
cmd_leader() {
    local deadline i
    local -a found
    if [[ $KIND == standalone ]]; then
        echo 1
        return 0
    fi
    deadline=$(($(now_ms) + LEADER_TIMEOUT * 1000))
    while :; do
        found=()
        for i in $(all_members); do
            if member_alive "$i" && ! member_paused "$i" && [[ $(member_mode "$i") == leader ]]; then
                found+=("$i")
            fi
        done
        if ((${#found[@]} == 1)); then
            echo "${found[0]}"
            return 0
        fi
        (($(now_ms) <= deadline)) || die "no single leader after ${LEADER_TIMEOUT}s (claimed by: ${found[*]:-none})"
        nap
    done
}

# wait-ready: every running, unpaused member serves and, for an ensemble,
# exactly one of them leads (so stale answers right after a pause, resume
# or kill do not count as ready).
cmd_wait_ready() {
    local deadline i running waiting mode leaders
    deadline=$(($(now_ms) + READY_TIMEOUT * 1000))
    while :; do
        running=0 waiting='' leaders=0
        for i in $(all_members); do
            # A paused (SIGSTOPped) member is not running: don't wait for it.
            if ! member_alive "$i" || member_paused "$i"; then continue; fi
            running=$((running + 1))
            mode=$(member_mode "$i")
            is_serving_mode "$mode" || waiting+=" $i"
            if [[ $mode == leader ]]; then leaders=$((leaders + 1)); fi
        done
        ((running > 0)) || die "no member is running"
        if [[ -z $waiting ]] && { [[ $KIND == standalone ]] || ((leaders == 1)); }; then
            return 0
        fi
        (($(now_ms) <= deadline)) ||
            die "not ready after ${READY_TIMEOUT}s (not serving:${waiting:- none}; leaders: $leaders)"
        nap
    done
}

cmd_status() {
    local i port pid alive mode
    for i in $(all_members); do
        port=$(cat "$DIR/$i/port" 2>/dev/null || echo -)
        pid=$(member_pid "$i")
        if member_alive "$i"; then
            alive=alive
            # A stopped JVM cannot answer; don't wait for it.
            if member_paused "$i"; then mode=paused; else mode=$(member_mode "$i"); fi
        else
            alive=dead mode=-
        fi
        echo "$i $port ${pid:--} $alive $mode"
    done
}

cmd_member_of() {
    local addr=$1 port i
    port=${addr##*:}
    [[ $port =~ ^[0-9]+$ ]] || die "bad address '$addr' (want HOST:PORT)"
    for i in $(all_members); do
        if [[ -f $DIR/$i/port && $(<"$DIR/$i/port") == "$port" ]]; then
            echo "$i"
            return 0
        fi
    done
    die "no member has client port $port"
}

# ------------------------------------------------------------------- main

main() {
    local cmd=${1:-}
    (($# > 0)) && shift
    case $cmd in
    -h | --help | help | "")
        usage
        [[ -n $cmd ]] || exit 2
        return 0
        ;;
    start-standalone)
        (($# == 1)) || die "usage: zkctl.sh start-standalone DIR"
        cmd_start standalone 1 "$1"
        return
        ;;
    start-ensemble)
        (($# == 1 || $# == 2)) || die "usage: zkctl.sh start-ensemble DIR [N]"
        cmd_start ensemble "${2:-3}" "$1"
        return
        ;;
    stop)
        (($# == 1)) || die "usage: zkctl.sh stop DIR"
        cmd_stop "$1"
        return
        ;;
    esac

    set_dir "${1:-}"
    need_state
    case $cmd in
    hosts)
        [[ -s $DIR/hosts ]] || die "$DIR/hosts missing (start did not finish)"
        echo "$(<"$DIR/hosts")"
        ;;
    wait-ready) cmd_wait_ready ;;
    leader) cmd_leader ;;
    status) cmd_status ;;
    member-of)
        (($# == 2)) || die "usage: zkctl.sh member-of DIR HOST:PORT"
        cmd_member_of "$2"
        ;;
    member-hosts | stop-member | kill-member | start-member | restart-member | \
        pause-member | resume-member | srvr)
        (($# == 2)) || die "usage: zkctl.sh $cmd DIR I"
        check_index "$2"
        local i=$2 pid
        case $cmd in
        member-hosts) echo "127.0.0.1:$(member_port "$i")" ;;
        stop-member) signal_members TERM "$i" ;;
        kill-member) signal_members KILL "$i" ;;
        start-member) cmd_start_member "$i" ;;
        restart-member)
            signal_members TERM "$i"
            cmd_start_member "$i"
            ;;
        pause-member | resume-member)
            member_alive "$i" || die "member $i is not running"
            pid=$(member_pid "$i")
            if [[ $cmd == pause-member ]]; then kill -STOP "$pid"; else kill -CONT "$pid"; fi
            ;;
        srvr)
            member_alive "$i" || die "member $i is not running"
            local out
            out=$(flw "$(member_port "$i")" srvr)
            [[ -n $out ]] || die "member $i did not answer srvr"
            printf '%s\n' "$out"
            ;;
        esac
        ;;
    *) die "unknown command '$cmd' (try --help)" ;;
    esac
}

main "$@"
