#!/usr/bin/env bash
# Shell tests of the zkr command-line tool against the throwaway servers of
# tests/zk/with-zk.sh. Usage: tests/cli/test_zkr.sh [BUILD_DIR]
# Every wait is a deadline-bounded poll; each case prints PASS or FAIL; the last
# line is "N passed, N failed" and the exit status is non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
ZKR=${ZKR:-$PWD/$BUILD/zkr} # ZKR=/path/to/another/zkr runs the tests against that one
RAW=$PWD/$BUILD/tests/zkraw
HOSTS=${ZKR_TEST_STANDALONE:-${ZKR_TEST_HOSTS:-}}
[ -n "$HOSTS" ] || { echo "test_zkr: no test server (run under tests/zk/with-zk.sh)" >&2; exit 2; }
export ZKR_HOSTS=$HOSTS
unset ZKR_AUTH
WORK=$(mktemp -d)
ROOT=/zkr-cli-$$
passed=0 failed=0
bgpids=()
bhpid=

cleanup() {
  for p in "${bgpids[@]}"; do kill -CONT "$p" 2>/dev/null; kill "$p" 2>/dev/null; done
  [ -z "$bhpid" ] || kill "$bhpid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

ok() { echo "PASS $1"; passed=$((passed + 1)); }
bad() { echo "FAIL $1: $2"; failed=$((failed + 1)); }

# wait_for SECONDS COMMAND...: poll until COMMAND succeeds; non-zero on timeout.
wait_for() {
  local limit=$1 end
  shift
  end=$((SECONDS + limit))
  until "$@"; do
    [ "$SECONDS" -lt "$end" ] || return 1
    sleep 0.05
  done
}
ms() { date +%s%3N; }
contenders() { "$ZKR" holders "$1" 2>/dev/null | awk 'NR > 1 && $1 != "-"' | wc -l; }
has_contenders() { [ "$(contenders "$1")" -eq "$2" ]; }
file_has() { grep -q -- "$2" "$1" 2>/dev/null; }
no_nodes() { [ "$("$RAW" "$HOSTS" count "$1")" -eq 0 ]; }
count_is() { [ "$("$RAW" "$HOSTS" count "$1")" -eq "$2" ]; }
has_members() { [ "$("$ZKR" members "$1" 2>/dev/null | wc -l)" -ge "$2" ]; }
no_children() { [ -z "$(cat /proc/"$1"/task/*/children 2>/dev/null | tr -d ' ')" ]; }
lines_ge() { [ "$(wc -l <"$1" 2>/dev/null || echo 0)" -ge "$2" ]; }
# gone PID...: none of them runs any more (a zombie counts as gone: its parent
# may be an init that reaps late).
gone() {
  local p st
  for p; do
    st=$(ps -o stat= -p "$p" 2>/dev/null) || continue
    [[ $st == Z* ]] || return 1
  done
}

# A TCP port that accepts connections and never answers (a server that hangs):
# BH_PORT, and a line in $WORK/bh.accepted per connection accepted.
BH_PORT=
if command -v python3 >/dev/null; then
  cat >"$WORK/blackhole.py" <<'PY'
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(64)
print(s.getsockname()[1], flush=True)
held = []
with open(sys.argv[1], "a") as log:
    while True:
        c, _ = s.accept()
        held.append(c)
        log.write("accepted\n")
        log.flush()
PY
  # Not our child, so that a bare `wait` does not wait for it.
  (python3 "$WORK/blackhole.py" "$WORK/bh.accepted" >"$WORK/bh.port" 2>/dev/null &
   echo $! >"$WORK/bh.pid")
  bhpid=$(cat "$WORK/bh.pid")
  wait_for 10 test -s "$WORK/bh.port" && BH_PORT=$(cat "$WORK/bh.port")
fi

# stop_until_expired ZPID DIR: stop zkr until the server has dropped its node
# under DIR (its session expired), continue it and wait for it: its exit status
# in $code. Fails (zkr continued) if the session never expired.
stop_until_expired() {
  kill -STOP "$1"
  if wait_for 20 has_contenders "$2" 0; then
    kill -CONT "$1"
    wait "$1"
    code=$?
    return 0
  fi
  kill -CONT "$1"
  return 1
}

"$RAW" "$HOSTS" mkdirs "$ROOT" || { echo "test_zkr: cannot create $ROOT" >&2; exit 1; }

# ---- help and bad input ----

t=help
out=$("$ZKR" --help) && grep -q "usage: zkr" <<<"$out" && grep -q "holders PATH" <<<"$out" \
  && ok $t || bad $t "zkr --help"
for c in lock elect counter holders leader; do
  out=$("$ZKR" help $c) && grep -q "usage: zkr \[OPTIONS\] $c" <<<"$out" || { bad help-$c "zkr help $c"; continue; }
  out2=$("$ZKR" $c --help) && [ "$out" = "$out2" ] && ok help-$c || bad help-$c "zkr $c --help differs"
done

t=help-unknown-topic
out=$("$ZKR" help bogus 2>"$WORK/help.err")
code=$?
[ $code -eq 64 ] && [ -z "$out" ] && grep -q "usage: zkr" "$WORK/help.err" && ok $t ||
  bad $t "exit $code, stdout '$out'"

expect_usage() { # NAME EXPECTED-CODE PATTERN ARGS...
  local name=$1 want=$2 pat=$3 err code
  shift 3
  err=$("$ZKR" "$@" 2>&1 >/dev/null)
  code=$?
  if [ "$code" -eq "$want" ] && grep -q -- "$pat" <<<"$err" && [ "$(wc -l <<<"$err")" -eq 1 ]; then
    ok "$name"
  else
    bad "$name" "exit $code, stderr: $err"
  fi
}
expect_usage bad-relative-path 64 "path must be absolute" lock rel/path -- true
expect_usage bad-unknown-command 64 "unknown command 'frobnicate'" frobnicate /x
expect_usage bad-missing-dashdash 64 "missing the command to run" lock "$ROOT/l" true
expect_usage bad-two-commands 64 "either with -c or after '--'" lock "$ROOT/l" -c true -- true
expect_usage bad-counter-command 64 "does not run a command (-c given)" counter "$ROOT/c" get -c true
expect_usage bad-conflict-exit-code 64 "not a number in 0..255" lock -E 256 "$ROOT/l" -- true
ZKR_WAIT=soon expect_usage bad-env-value 64 "ZKR_WAIT: not a number of seconds" lock "$ROOT/l" -- true
ZKR_SESSION_TIMEOUT=0 expect_usage bad-env-session-timeout 64 "ZKR_SESSION_TIMEOUT: not a number" holders "$ROOT/l"
t=version
out=$("$ZKR" -V) && grep -q "^zkr (zkrecipes) [0-9]" <<<"$out" && out2=$("$ZKR" --version) &&
  [ "$out" = "$out2" ] && ok $t || bad $t "'$out'"
expect_usage bad-elect-needs-id 64 "--id ID is required" elect "$ROOT/e" -- true
expect_usage bad-wait-value 64 "not a number of seconds" lock -w soon "$ROOT/l" -- true
expect_usage bad-counter-op 64 "unknown or incomplete operation 'inc'" counter "$ROOT/c" inc
for v in nan inf -1 1e999; do
  expect_usage "bad-wait-out-of-range($v)" 64 "out of range" lock -w "$v" "$ROOT/l" -- true
done
if [ -n "$BH_PORT" ]; then
  t0=$(ms)
  expect_usage bad-unreachable 69 "cannot connect to 127.0.0.1:$BH_PORT within 500 ms" \
    -H "127.0.0.1:$BH_PORT" --connect-timeout 500 counter "$ROOT/c" get
  el=$(( $(ms) - t0 ))
  [ "$el" -lt 3000 ] && ok unreachable-is-quick || bad unreachable-is-quick "${el} ms"
else
  echo "SKIP bad-unreachable: no python3 for a server that does not answer"
fi

expect_quick() { # NAME EXPECTED-CODE PATTERN MAX-MS ARGS...: expect_usage, within MAX-MS
  local name=$1 want=$2 pat=$3 max=$4 err code t0 el
  shift 4
  t0=$(ms)
  err=$("$ZKR" "$@" 2>&1 >/dev/null)
  code=$?
  el=$(( $(ms) - t0 ))
  if [ "$code" -eq "$want" ] && grep -q -- "$pat" <<<"$err" && [ "$el" -lt "$max" ]; then
    ok "$name"
  else
    bad "$name" "exit $code after $el ms, stderr: $err"
  fi
}
# Refused (nobody listens on port 1): no use waiting for the connect timeout.
expect_quick refused-is-quick 69 "connection refused by 127.0.0.1:1" 2000 \
  -H 127.0.0.1:1 --connect-timeout 20000 counter "$ROOT/c" get
expect_quick unresolvable-host 69 "cannot resolve nosuch.invalid:2181" 10000 \
  -H nosuch.invalid:2181 --connect-timeout 20000 counter "$ROOT/c" get

# Every argument is checked before connecting: against a server that never
# answers (so a connect would take all of -c), a typo is exit 64 at once.
t=bad-args-before-connect
if [ -n "$BH_PORT" ]; then
  fails=
  for args in "lock /a//b -- true" "lock /a/ -- true" "lock /a/./b -- true" \
    "elect / --id x -- true" "lock /zookeeper/x -- true" "holders /a//b" \
    "counter /x add abc" "counter /x cas 1 x" "counter /x add 1 2" "counter /a/ get" \
    $'lock /a\xc3 -- true' $'holders /a\xc3'; do
    t0=$(ms)
    # shellcheck disable=SC2086 # the words of $args are the arguments
    "$ZKR" -H "127.0.0.1:$BH_PORT" --connect-timeout 20000 $args >/dev/null 2>&1
    code=$?
    el=$(( $(ms) - t0 ))
    [ $code -eq 64 ] && [ $el -lt 2000 ] || fails+=" [$args: exit $code after $el ms]"
  done
  [ -z "$fails" ] && ok $t || bad $t "$fails"
else
  echo "SKIP $t: no python3 for a server that does not answer"
fi

# ---- lock ----

# Two zkr lock loops on one path: begin/end pairs in the log never interleave.
t=lock-exclusion
log=$WORK/excl.log
: >"$log"
for w in a b; do
  (for i in 1 2 3 4; do
     "$ZKR" lock "$ROOT/x" -- sh -c "echo begin $w-$i >> $log; sleep 0.1; echo end $w-$i >> $log" || exit 1
   done) &
  bgpids+=($!)
done
wait "${bgpids[@]}"
bgpids=()
if [ "$(wc -l <"$log")" -eq 16 ] &&
   awk '{ if ($1 == "begin") { if (open != "") exit 1; open = $2 } else { if (open != $2) exit 1; open = "" } } END { exit open != "" }' "$log"; then
  ok $t
else
  bad $t "log: $(tr '\n' ' ' <"$log")"
fi

t=lock-exit-status
"$ZKR" lock "$ROOT/x" -- sh -c 'exit 7'
[ $? -eq 7 ] && ok $t || bad $t "CMD's status not passed through"

t=lock-token-increases
f1=$("$ZKR" lock "$ROOT/x" -- sh -c 'echo $ZKR_FENCE')
f2=$("$ZKR" lock "$ROOT/x" -- sh -c 'echo $ZKR_FENCE')
[ -n "$f1" ] && [ -n "$f2" ] && [ "$f2" -gt "$f1" ] && ok $t || bad $t "$f1 then $f2"

t=lock-shell-command
out=$("$ZKR" lock "$ROOT/x" -c 'echo "fence $ZKR_FENCE"; exit 6')
code=$?
[ $code -eq 6 ] && grep -q "^fence [0-9]" <<<"$out" && ok $t || bad $t "exit $code, '$out'"

t=lock-w0-fails-fast
"$ZKR" lock "$ROOT/w" --id holder -- sh -c "touch $WORK/held; sleep 8" &
holder=$!
bgpids+=($holder)
if wait_for 10 test -e "$WORK/held"; then
  t0=$(ms)
  err=$("$ZKR" lock -w 0 "$ROOT/w" -- true 2>&1)
  code=$?
  el=$(( $(ms) - t0 ))
  [ $code -eq 75 ] && [ $el -lt 2000 ] && grep -q "held elsewhere" <<<"$err" && ok $t ||
    bad $t "exit $code after $el ms: $err"
  t0=$(ms)
  "$ZKR" lock -w 0.5 "$ROOT/w" -- true 2>/dev/null
  code=$?
  el=$(( $(ms) - t0 ))
  [ $code -eq 75 ] && [ $el -ge 450 ] && [ $el -lt 3000 ] && ok lock-w-timeout ||
    bad lock-w-timeout "exit $code after $el ms"

  # flock(1) habits on a conflict: -n, -E, -q, and the same from the environment.
  rm -f "$WORK/ran"
  err=$("$ZKR" lock -n "$ROOT/w" -c "touch $WORK/ran" 2>&1)
  code=$?
  [ $code -eq 75 ] && grep -q "held elsewhere" <<<"$err" && [ ! -e "$WORK/ran" ] &&
    ok lock-nonblock || bad lock-nonblock "exit $code: $err"
  err=$("$ZKR" lock --nonblock -E 0 -q "$ROOT/w" -c "touch $WORK/ran" 2>&1)
  code=$?
  [ $code -eq 0 ] && [ -z "$err" ] && [ ! -e "$WORK/ran" ] && ok lock-conflict-exit-0-quiet ||
    bad lock-conflict-exit-0-quiet "exit $code, stderr '$err'"
  "$ZKR" lock --nb --conflict-exit-code=3 "$ROOT/w" -- true 2>/dev/null
  code=$?
  [ $code -eq 3 ] && ok lock-conflict-exit-code || bad lock-conflict-exit-code "exit $code"
  err=$(ZKR_WAIT=0 ZKR_QUIET=1 ZKR_CONFLICT_EXIT_CODE=9 "$ZKR" lock "$ROOT/w" -- true 2>&1)
  code=$?
  [ $code -eq 9 ] && [ -z "$err" ] && ok lock-conflict-from-env ||
    bad lock-conflict-from-env "exit $code, stderr '$err'"
  ZKR_WAIT=0 ZKR_CONFLICT_EXIT_CODE=9 "$ZKR" lock -E 4 "$ROOT/w" -- true 2>/dev/null
  code=$?
  [ $code -eq 4 ] && ok lock-command-line-beats-env || bad lock-command-line-beats-env "exit $code"

  # -v: the session's statistics on stderr at the end; none without it.
  err=$("$ZKR" -v -n lock "$ROOT/w" -- true 2>&1 >/dev/null)
  code=$?
  stats=$(grep "^zkr: \[stats\] " <<<"$err")
  if [ $code -eq 75 ] && grep -q "sessions 1, " <<<"$stats" && grep -q "acquires 1, " <<<"$stats" &&
     grep -q "conflicts 1, " <<<"$stats" && grep -q "grants 0, " <<<"$stats"; then
    ok lock-verbose-stats
  else
    bad lock-verbose-stats "exit $code: $err"
  fi
  err=$("$ZKR" -n lock "$ROOT/w" -- true 2>&1)
  grep -q "\[stats\]" <<<"$err" && bad lock-stats-only-verbose "$err" || ok lock-stats-only-verbose
else
  bad $t "holder never started"
fi
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
bgpids=()

t=lock-wait-huge-is-forever
"$ZKR" lock -w 1e9 "$ROOT/x" -- true
code=$?
[ $code -eq 0 ] && ok $t || bad $t "exit $code"

# Like flock(1): the lock is held until CMD's whole process group is gone, and
# zkr's status is still CMD's own. A process that leaves the group (setsid) is
# not waited for.
t=lock-waits-for-group
log=$WORK/group.log
: >"$log"
"$ZKR" lock "$ROOT/x" -- sh -c "(sleep 0.5; echo bg-end >> $log) & exit 3"
code=$?
echo zkr-exit >>"$log"
order=$(tr '\n' ' ' <"$log")
t0=$(ms)
"$ZKR" lock "$ROOT/x" -- sh -c "setsid sleep 3 </dev/null >/dev/null 2>&1 &"
el=$(( $(ms) - t0 ))
[ $code -eq 3 ] && [ "$order" = "bg-end zkr-exit " ] && [ $el -lt 2000 ] && ok $t ||
  bad $t "exit $code, order: $order, with a setsid child: $el ms"

# CMD inherits zkr's file descriptors, not those of its ZooKeeper client.
t=lock-cmd-fds
want=$(sh -c 'ls /proc/$$/fd' | sort | tr '\n' ' ')
got=$("$ZKR" lock "$ROOT/x" -- sh -c 'ls /proc/$$/fd' | sort | tr '\n' ' ')
[ "$got" = "$want" ] && ok $t || bad $t "CMD has fds $got, the shell's command $want"

# A process of the group still runs when the lock is lost: it is terminated.
t=lock-lost-while-group-runs
log=$WORK/drain.log
: >"$log"
cat >"$WORK/bgloop.sh" <<'SH'
trap 'echo bg-term >> "$1"; exit 0' TERM
echo $$ > "$1.pid"
echo started >> "$1"
while :; do sleep 0.05; done
SH
"$ZKR" -s 1000 lock "$ROOT/d" -- sh -c "sh $WORK/bgloop.sh $log & exit 0" 2>"$WORK/drain.err" &
zpid=$!
bgpids+=($zpid)
if wait_for 10 file_has "$log" started && wait_for 10 has_contenders "$ROOT/d" 1; then
  if stop_until_expired "$zpid" "$ROOT/d"; then
    [ $code -eq 79 ] && file_has "$log" bg-term && grep -q "lock lost" "$WORK/drain.err" &&
      ok $t || bad $t "exit $code; log: $(tr '\n' ' ' <"$log"); stderr: $(cat "$WORK/drain.err")"
  else
    bad $t "the session never expired"
  fi
else
  bad $t "the group's process never started, or zkr did not hold the lock meanwhile"
fi
[ -s "$log.pid" ] && kill "$(cat "$log.pid")" 2>/dev/null
wait "$zpid" 2>/dev/null
bgpids=()

# zkr killed with SIGKILL: CMD's whole group goes with it (its session expires
# and another host may take the lock).
t=lock-kill9-kills-group
pids=$WORK/k9.pids
: >"$pids"
"$ZKR" -s 1000 lock "$ROOT/k9" -- sh -c "sleep 300 & echo \$! >> $pids; sleep 300 & echo \$! >> $pids; wait" &
zpid=$!
bgpids+=($zpid)
if wait_for 10 lines_ge "$pids" 2; then
  kill -9 "$zpid"
  wait "$zpid" 2>/dev/null
  # shellcheck disable=SC2046 # one pid per line
  if wait_for 5 gone $(cat "$pids"); then
    ok $t
  else
    bad $t "still running: $(ps -o pid=,args= -p "$(paste -sd, "$pids")" | tr '\n' ' ')"
    xargs kill <"$pids" 2>/dev/null
  fi
else
  bad $t "CMD never started"
fi
wait_for 20 no_nodes "$ROOT/k9" || echo "  (the killed zkr's node outlived its session)"
bgpids=()

# lost_before_cmd NAME NODE-DIR WHAT ZKR-ARGS...: the session expires between the
# grant (or leadership) and the start of CMD (the test-only delay holds zkr
# there; zkr is stopped until the server drops its node): CMD is never started,
# zkr exits 79 and says WHAT was lost before the command started.
lost_before_cmd() {
  local t=$1 dir=$2 what=$3 log=$WORK/$1.log code zpid
  shift 3
  : >"$log"
  ZKR_TEST_DELAY_CMD_MS=3000 "$ZKR" -s 1000 "$@" -- sh -c "echo started >> $log" 2>"$WORK/$t.err" &
  zpid=$!
  bgpids+=($zpid)
  if wait_for 10 has_contenders "$dir" 1; then
    if stop_until_expired "$zpid" "$dir"; then
      [ $code -eq 79 ] && [ ! -s "$log" ] && grep -q "$what lost .*before the command started" "$WORK/$t.err" &&
        ok $t || bad $t "exit $code; log: $(tr '\n' ' ' <"$log"); stderr: $(cat "$WORK/$t.err")"
    else
      bad $t "the session never expired"
    fi
  else
    bad $t "never queued; log: $(tr '\n' ' ' <"$log")"
  fi
  wait "$zpid" 2>/dev/null
  bgpids=()
}

lost_before_cmd lock-lost-before-cmd "$ROOT/b" lock lock "$ROOT/b"

# The session of a waiting zkr expires (zkr is stopped meanwhile) and it queues
# again: that loss is about the wait, not about CMD, which runs in full later.
t=lock-lost-while-queued
log=$WORK/queued.log
: >"$log"
"$ZKR" lock "$ROOT/q" -- sh -c "touch $WORK/q-held; while [ ! -e $WORK/q-release ]; do sleep 0.05; done" &
holder=$!
bgpids+=($holder)
wait_for 10 test -e "$WORK/q-held"
"$ZKR" -s 1000 lock "$ROOT/q" -- sh -c "sleep 0.3; echo ran >> $log" 2>"$WORK/queued.err" &
zpid=$!
bgpids+=($zpid)
if wait_for 10 has_contenders "$ROOT/q" 2; then
  kill -STOP "$zpid"
  if wait_for 20 has_contenders "$ROOT/q" 1; then
    kill -CONT "$zpid"
    if wait_for 20 has_contenders "$ROOT/q" 2; then
      touch "$WORK/q-release"
      wait "$zpid"
      code=$?
      [ $code -eq 0 ] && file_has "$log" ran && ok $t ||
        bad $t "exit $code; log: $(tr '\n' ' ' <"$log"); stderr: $(cat "$WORK/queued.err")"
    else
      bad $t "did not queue again"
    fi
  else
    bad $t "the session never expired"
  fi
else
  bad $t "never queued"
fi
touch "$WORK/q-release"
wait 2>/dev/null
bgpids=()

# sigterm_while_waiting NAME DIR HOLDER-ARGS -- WAITER-ARGS: a holder (zkr with
# HOLDER-ARGS) holds DIR; a waiter (zkr with WAITER-ARGS, whose CMD would write
# to the log) queues behind it and gets SIGTERM: it dies of it within 2 s,
# leaves the queue, and its CMD never ran.
sigterm_while_waiting() {
  local t=$1 dir=$2 log=$WORK/$1.log holder zpid t0 el code
  local -a hargs=() wargs=()
  shift 2
  while [ "$1" != -- ]; do hargs+=("$1"); shift; done
  shift
  wargs=("$@")
  : >"$log"
  "$ZKR" "${hargs[@]}" -- sh -c "touch $WORK/$t-held; while [ ! -e $WORK/$t-release ]; do sleep 0.05; done" &
  holder=$!
  bgpids+=($holder)
  wait_for 10 test -e "$WORK/$t-held"
  "$ZKR" "${wargs[@]}" -- sh -c "echo ran >> $log" &
  zpid=$!
  bgpids+=($zpid)
  if wait_for 10 has_contenders "$dir" 2; then
    t0=$(ms)
    kill -TERM "$zpid"
    if wait_for 5 gone "$zpid"; then
      el=$(( $(ms) - t0 ))
      wait "$zpid"
      code=$?
      [ $code -eq 143 ] && [ $el -lt 2000 ] && has_contenders "$dir" 1 && [ ! -s "$log" ] && ok $t ||
        bad $t "exit $code after $el ms, $(contenders "$dir") contenders"
    else
      bad $t "still waiting 5 s after SIGTERM"
    fi
  else
    bad $t "never queued"
  fi
  touch "$WORK/$t-release"
  wait 2>/dev/null
  bgpids=()
}

# SIGTERM to a zkr waiting for the lock: it dies of it at once and leaves the queue.
sigterm_while_waiting lock-sigterm-while-waiting "$ROOT/t" lock "$ROOT/t" -- lock "$ROOT/t"

# SIGTERM while connecting (to a server that never answers): gone at once.
t=lock-sigterm-while-connecting
if [ -n "$BH_PORT" ]; then
  : >"$WORK/bh.accepted"
  "$ZKR" -H "127.0.0.1:$BH_PORT" --connect-timeout 30000 lock "$ROOT/t" -- true 2>/dev/null &
  zpid=$!
  bgpids+=($zpid)
  if wait_for 10 file_has "$WORK/bh.accepted" accepted; then
    t0=$(ms)
    kill -TERM "$zpid"
    wait_for 5 gone "$zpid"
    el=$(( $(ms) - t0 ))
    wait "$zpid"
    code=$?
    [ $code -eq 143 ] && [ $el -lt 3000 ] && ok $t || bad $t "exit $code after $el ms"
  else
    bad $t "zkr never connected to the test port"
  fi
  kill "$zpid" 2>/dev/null
  wait 2>/dev/null
  bgpids=()
else
  echo "SKIP $t: no python3 for a server that does not answer"
fi

# CMD reads the terminal: zkr in the foreground hands the terminal to CMD's
# group (0.1.0 hung: CMD stopped on SIGTTIN). And zkr in the background: CMD's
# SIGTTIN stop becomes a stop of zkr's job, which `fg` continues, terminal
# and all.
if command -v script >/dev/null && command -v timeout >/dev/null; then
  t=lock-cmd-reads-tty
  out=$(printf 'hello\n' | timeout 20 script -qefc "$ZKR lock $ROOT/tty -- sh -c 'read x; echo got:\$x'" /dev/null 2>&1)
  code=$?
  [ $code -eq 0 ] && grep -q "got:hello" <<<"$out" && ok $t || bad $t "exit $code: $out"

  t=lock-cmd-stopped-in-background
  cat >"$WORK/ttin.sh" <<'SH'
set -m
"$Z" lock "$P" -- sh -c 'read x; echo got:$x' &
for i in $(seq 100); do jobs -l | grep -q Stopped && break; sleep 0.05; done
jobs -l | grep -q Stopped && echo job-stopped
fg >/dev/null
echo fg-status=$?
SH
  out=$(printf 'hello\n' | Z=$ZKR P=$ROOT/tty timeout 20 script -qefc "bash $WORK/ttin.sh" /dev/null 2>&1)
  code=$?
  [ $code -eq 0 ] && grep -q "job-stopped" <<<"$out" && grep -q "got:hello" <<<"$out" &&
    grep -q "fg-status=0" <<<"$out" && ok $t || bad $t "exit $code: $out"
else
  echo "SKIP lock-cmd-reads-tty, lock-cmd-stopped-in-background: no script(1) or timeout(1)"
fi

# The holder's session expires on the server (zkr is stopped past its session
# timeout): once it runs again it learns of the loss and CMD gets SIGTERM.
t=lock-lost-terminates-cmd
log=$WORK/lost.log
: >"$log"
"$ZKR" -s 1000 lock "$ROOT/s" -- sh -c "trap 'echo got-term >> $log; exit 0' TERM; echo started >> $log; while :; do sleep 0.05; done" 2>"$WORK/lost.err" &
zpid=$!
bgpids+=($zpid)
if wait_for 10 file_has "$log" started; then
  if stop_until_expired "$zpid" "$ROOT/s"; then
    [ $code -eq 79 ] && file_has "$log" got-term && grep -q "lock lost" "$WORK/lost.err" &&
      ok $t || bad $t "exit $code; log: $(tr '\n' ' ' <"$log"); stderr: $(cat "$WORK/lost.err")"
  else
    bad $t "the session never expired"
  fi
else
  bad $t "CMD never started"
fi
bgpids=()

# The server goes away for longer than --grace: CMD is terminated too.
t=lock-grace-terminates-cmd
if [ -n "${ZKR_TEST_ZKDIR_STANDALONE:-}" ] && [ -n "${ZKR_ZKCTL:-}" ]; then
  log=$WORK/grace.log
  : >"$log"
  "$ZKR" -s 8000 lock --grace 1 --kill-after 5 "$ROOT/g" -- sh -c "trap 'echo got-term >> $log; exit 0' TERM; echo started >> $log; while :; do sleep 0.05; done" 2>"$WORK/grace.err" &
  zpid=$!
  bgpids+=($zpid)
  if wait_for 10 file_has "$log" started; then
    "$ZKR_ZKCTL" kill-member "$ZKR_TEST_ZKDIR_STANDALONE" 1 >/dev/null
    t0=$(ms)
    if wait_for 20 file_has "$log" got-term; then
      el=$(( $(ms) - t0 ))
      "$ZKR_ZKCTL" start-member "$ZKR_TEST_ZKDIR_STANDALONE" 1 >/dev/null || bad $t "server restart"
      wait "$zpid"
      code=$?
      # zkr deletes its node when the server is back within its 5 s release
      # bound; when the restart takes longer (a slow machine), the node goes with
      # the session, at most 8 s after the restart. Either way it goes.
      if ! wait_for 20 no_nodes "$ROOT/g"; then
        bad $t "the lock node outlived the session"
      elif [ $code -eq 79 ] && [ $el -ge 900 ] && grep -q "grace" "$WORK/grace.err"; then
        ok $t
      else
        bad $t "exit $code, terminated after $el ms: $(cat "$WORK/grace.err")"
      fi
    else
      bad $t "CMD was not terminated"
      "$ZKR_ZKCTL" start-member "$ZKR_TEST_ZKDIR_STANDALONE" 1 >/dev/null
    fi
  else
    bad $t "CMD never started"
  fi
  bgpids=()

  # The server is gone when CMD ends: zkr cannot delete its node, and does not
  # wait for the server either (the node goes when the session expires).
  t=lock-exit-quick-when-server-down
  rm -f "$WORK/sd-started" "$WORK/sd-end" "$WORK/sd-ended"
  "$ZKR" -s 2000 lock --grace 60 "$ROOT/sd" -- sh -c "touch $WORK/sd-started; while [ ! -e $WORK/sd-end ]; do sleep 0.02; done; date +%s%3N > $WORK/sd-ended" 2>"$WORK/sd.err" &
  zpid=$!
  bgpids+=($zpid)
  if wait_for 10 test -e "$WORK/sd-started"; then
    "$ZKR_ZKCTL" kill-member "$ZKR_TEST_ZKDIR_STANDALONE" 1 >/dev/null
    touch "$WORK/sd-end"
    wait "$zpid"
    code=$?
    el=$(( $(ms) - $(cat "$WORK/sd-ended" 2>/dev/null || echo 0) ))
    "$ZKR_ZKCTL" start-member "$ZKR_TEST_ZKDIR_STANDALONE" 1 >/dev/null || bad $t "server restart"
    [ $code -eq 0 ] && [ $el -lt 2500 ] && grep -q "not connected" "$WORK/sd.err" && ok $t ||
      bad $t "exit $code, $el ms after CMD's end: $(cat "$WORK/sd.err")"
    wait_for 20 no_nodes "$ROOT/sd" || bad $t "the lock node outlived the session"
  else
    bad $t "CMD never started"
  fi
  bgpids=()

  # The server goes away after zkr has sent its delete and before the reply
  # (paused while CMD ends, killed once zkr is waiting for the reply): zkr stops
  # waiting when the connection drops, says so, and goes.
  t=lock-exit-quick-when-server-dies-during-release
  rm -f "$WORK/sr-started" "$WORK/sr-end" "$WORK/sr-ended"
  "$ZKR" -s 8000 lock --grace 60 "$ROOT/sr" -- sh -c "touch $WORK/sr-started; while [ ! -e $WORK/sr-end ]; do sleep 0.02; done; date +%s%3N > $WORK/sr-ended" 2>"$WORK/sr.err" &
  zpid=$!
  bgpids+=($zpid)
  if wait_for 10 test -e "$WORK/sr-started"; then
    "$ZKR_ZKCTL" pause-member "$ZKR_TEST_ZKDIR_STANDALONE" 1 >/dev/null
    touch "$WORK/sr-end"
    # CMD and the watchdog gone: zkr is at its delete.
    wait_for 10 no_children "$zpid" || bad $t "CMD did not end"
    "$ZKR_ZKCTL" kill-member "$ZKR_TEST_ZKDIR_STANDALONE" 1 >/dev/null
    wait "$zpid"
    code=$?
    el=$(( $(ms) - $(cat "$WORK/sr-ended" 2>/dev/null || echo 0) ))
    "$ZKR_ZKCTL" start-member "$ZKR_TEST_ZKDIR_STANDALONE" 1 >/dev/null || bad $t "server restart"
    [ $code -eq 0 ] && [ $el -lt 2500 ] && grep -q "not connected" "$WORK/sr.err" && ok $t ||
      bad $t "exit $code, $el ms after CMD's end: $(cat "$WORK/sr.err")"
    wait_for 20 no_nodes "$ROOT/sr" || bad $t "the lock node outlived the session"
  else
    bad $t "CMD never started"
  fi
  bgpids=()
else
  echo "SKIP lock-grace-terminates-cmd, lock-exit-quick-when-server-down, lock-exit-quick-when-server-dies-during-release: the test server is not ours to stop"
fi

# ---- elect ----

t=elect-one-leader-and-handover
log=$WORK/elect.log
: >"$log"
for c in A B; do
  "$ZKR" elect "$ROOT/e" --id "$c" -- sh -c "echo $c-start >> $log; while [ ! -e $WORK/stop-$c ]; do sleep 0.05; done; echo $c-end >> $log" &
  bgpids+=($!)
done
if wait_for 10 grep -q start "$log"; then
  first=$(grep start "$log" | head -1 | cut -c1)
  other=$([ "$first" = A ] && echo B || echo A)
  sleep 0.3 # a second leader would start within this time; none may
  starts=$(grep -c start "$log")
  leader_id=$("$ZKR" holders "$ROOT/e" | awk 'NR == 2 { print $NF }')
  touch "$WORK/stop-$first"
  if [ "$starts" -eq 1 ] && [ "$leader_id" = "$first" ] && wait_for 10 grep -q "$other-start" "$log"; then
    touch "$WORK/stop-$other"
    wait "${bgpids[@]}"
    order=$(tr '\n' ' ' <"$log")
    [ "$order" = "$first-start $first-end $other-start $other-end " ] && ok $t || bad $t "order: $order"
  else
    bad $t "starts=$starts leader=$leader_id log: $(tr '\n' ' ' <"$log")"
  fi
else
  bad $t "nobody led"
fi
touch "$WORK/stop-A" "$WORK/stop-B"
wait 2>/dev/null
bgpids=()

# Leadership lost while CMD runs (the session expired while zkr was stopped).
t=elect-lost-terminates-cmd
log=$WORK/elost.log
: >"$log"
"$ZKR" -s 1000 elect "$ROOT/el" --id solo -- sh -c "trap 'echo got-term >> $log; exit 0' TERM; echo started >> $log; while :; do sleep 0.05; done" 2>"$WORK/elost.err" &
zpid=$!
bgpids+=($zpid)
if wait_for 10 file_has "$log" started; then
  if stop_until_expired "$zpid" "$ROOT/el"; then
    [ $code -eq 79 ] && file_has "$log" got-term && grep -q "leadership lost" "$WORK/elost.err" &&
      ok $t || bad $t "exit $code; stderr: $(cat "$WORK/elost.err")"
  else
    bad $t "the session never expired"
  fi
else
  bad $t "CMD never started"
fi
bgpids=()

t=elect-epoch-in-env
e=$("$ZKR" elect "$ROOT/e2" --id solo -- sh -c 'echo $ZKR_EPOCH $ZKR_FENCE')
set -- $e
[ -n "${1:-}" ] && [ "$1" = "${2:-}" ] && [ "$1" -gt 0 ] && ok $t || bad $t "got '$e'"

# -w 0 tries once: alone in the election it leads and runs CMD; behind a leader
# it exits 75 at once (0.1.0 exited 75 even alone: await(0) did not wait for the
# candidate's first place in the queue).
t=elect-w0
out=$("$ZKR" elect "$ROOT/ew0" --id solo -w 0 -- echo ran 2>"$WORK/ew0.err")
code=$?
if [ $code -eq 0 ] && [ "$out" = ran ]; then
  log=$WORK/ew0.log
  : >"$log"
  "$ZKR" elect "$ROOT/ew0" --id first -- sh -c "echo started >> $log; sleep 30" 2>/dev/null &
  lpid=$!
  bgpids+=($lpid)
  if wait_for 10 file_has "$log" started; then
    out=$("$ZKR" elect "$ROOT/ew0" --id second -w 0 -- echo ran 2>"$WORK/ew0.err")
    code=$?
    [ $code -eq 75 ] && [ -z "$out" ] && ok $t || bad $t "behind a leader: exit $code, '$out'"
  else
    bad $t "the first candidate never led"
  fi
  kill "$lpid" 2>/dev/null
  wait "$lpid" 2>/dev/null
  bgpids=()
else
  bad $t "alone: exit $code, '$out': $(cat "$WORK/ew0.err")"
fi

# zkr leader and --json: who leads, in text and JSON, while a candidate leads
# and after it left.
t=leader-and-json
log=$WORK/ldr.log
: >"$log"
"$ZKR" elect "$ROOT/ldr" --id "alpha one" -c "echo started >> $log; while [ ! -e $WORK/ldr-stop ]; do sleep 0.05; done" 2>/dev/null &
lpid=$!
bgpids+=($lpid)
if wait_for 10 file_has "$log" started; then
  out=$("$ZKR" leader "$ROOT/ldr")
  code=$?
  [ $code -eq 0 ] && [ "$out" = "alpha one" ] && ok leader-text || bad leader-text "exit $code, '$out'"
  out=$("$ZKR" leader --json "$ROOT/ldr")
  if /usr/bin/python3 -m json.tool <<<"$out" >/dev/null &&
     /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.argv[1]); l=d["leader"]; assert d["path"]==sys.argv[2] and l["id"]=="alpha one" and "latch" in l["format"] and isinstance(l["epoch"], int) and l["epoch"]>0 and l["owner_session"].startswith("0x") and l["node"].endswith(str(0).zfill(10)), d' "$out" "$ROOT/ldr"; then
    ok leader-json
  else
    bad leader-json "'$out'"
  fi
  out=$("$ZKR" holders --json "$ROOT/ldr")
  if /usr/bin/python3 -m json.tool <<<"$out" >/dev/null &&
     /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.argv[1]); c=d["contenders"]; assert len(c)==1 and c[0]["position"]==1 and c[0]["data"]=="alpha one" and c[0]["reader"] is False and c[0]["sequence"]==0, d' "$out"; then
    ok holders-json
  else
    bad holders-json "'$out'"
  fi
else
  bad $t "the candidate never led"
fi
touch "$WORK/ldr-stop"
wait "$lpid" 2>/dev/null
bgpids=()
out=$("$ZKR" leader "$ROOT/ldr" 2>"$WORK/ldr.err")
code=$?
[ $code -eq 75 ] && [ -z "$out" ] && grep -q "nobody leads" "$WORK/ldr.err" && ok leader-nobody ||
  bad leader-nobody "exit $code, '$out', $(cat "$WORK/ldr.err")"
out=$("$ZKR" leader --json -q -E 0 "$ROOT/ldr" 2>"$WORK/ldr.err")
code=$?
[ $code -eq 0 ] && [ ! -s "$WORK/ldr.err" ] &&
  /usr/bin/python3 -c 'import json,sys; assert json.loads(sys.argv[1])["leader"] is None' "$out" &&
  ok leader-nobody-json || bad leader-nobody-json "exit $code, '$out'"
"$ZKR" leader "$ROOT/no-such-election" 2>"$WORK/ldr.err"
code=$?
[ $code -eq 70 ] && grep -q "no such node" "$WORK/ldr.err" && ok leader-no-node ||
  bad leader-no-node "exit $code"

# leader --watch: a line now (nobody: the path does not exist yet) and one per
# change of leader; a second candidate queued behind the first changes nothing.
t=leader-watch
wlog=$WORK/lw.out
"$ZKR" leader --watch "$ROOT/lw" >"$wlog" 2>"$WORK/lw.err" &
wpid=$!
bgpids+=($wpid)
if wait_for 10 lines_ge "$wlog" 1; then
  "$ZKR" elect "$ROOT/lw" --id first -c "echo started >> $WORK/lw1.log; while [ ! -e $WORK/lw1-stop ]; do sleep 0.05; done" 2>/dev/null &
  p1=$!
  wait_for 10 file_has "$wlog" first
  "$ZKR" elect "$ROOT/lw" --id second -c "echo started >> $WORK/lw2.log; while [ ! -e $WORK/lw2-stop ]; do sleep 0.05; done" 2>/dev/null &
  p2=$!
  wait_for 10 file_has "$WORK/lw1.log" started
  wait_for 10 count_is "$ROOT/lw" 2
  touch "$WORK/lw1-stop"
  wait "$p1" 2>/dev/null
  wait_for 10 file_has "$wlog" second
  touch "$WORK/lw2-stop"
  wait "$p2" 2>/dev/null
  wait_for 10 lines_ge "$wlog" 4
  kill -TERM "$wpid"
  wait "$wpid"
  code=$?
  got=$(tr '\n' '|' <"$wlog")
  [ "$got" = "|first|second||" ] && [ $code -eq 143 ] && ok $t ||
    bad $t "exit $code, lines '$got', stderr $(cat "$WORK/lw.err")"
else
  bad $t "no first line: $(cat "$WORK/lw.err")"
  kill "$wpid" 2>/dev/null
fi
bgpids=()

t=json-data-not-utf8
"$RAW" "$HOSTS" mkdirs "$ROOT/hj/x" && "$RAW" "$HOSTS" set-hex "$ROOT/hj/x" ff00fe
out=$("$ZKR" holders --json "$ROOT/hj")
/usr/bin/python3 -c 'import json,sys; c=json.loads(sys.argv[1])["contenders"]; assert c[0]["data"] is None and c[0]["data_hex"]=="ff00fe" and c[0]["position"] is None and c[0]["format"]=="unknown", c' "$out" &&
  ok $t || bad $t "'$out'"

t=counter-json
out=$("$ZKR" counter --json "$ROOT/cj" add 5) &&
  /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d=={"path": sys.argv[2], "value": 5}, d' "$out" "$ROOT/cj" &&
  ok $t || bad $t "'$out'"
out=$("$ZKR" counter --json "$ROOT/cj" cas 4 6 2>/dev/null)
code=$?
[ $code -eq 75 ] &&
  /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["value"]==5 and d["applied"] is False, d' "$out" &&
  ok counter-json-cas-mismatch || bad counter-json-cas-mismatch "exit $code, '$out'"

t=elect-waits-for-group
log=$WORK/egroup.log
: >"$log"
"$ZKR" elect "$ROOT/eg" --id solo -- sh -c "(sleep 0.5; echo bg-end >> $log) & exit 4"
code=$?
echo zkr-exit >>"$log"
order=$(tr '\n' ' ' <"$log")
[ $code -eq 4 ] && [ "$order" = "bg-end zkr-exit " ] && ok $t || bad $t "exit $code, order: $order"

# Leadership lost between LEADER and the start of CMD (0.1.0 drained that
# event and ran CMD anyway).
lost_before_cmd elect-lost-before-cmd "$ROOT/eb" leadership elect "$ROOT/eb" --id solo

# SIGTERM to a standby candidate: it dies of it at once and leaves the election
# (0.1.0 ignored it until it led, then ran CMD to the end).
sigterm_while_waiting elect-sigterm-while-standby "$ROOT/es" elect "$ROOT/es" --id A -- \
  elect "$ROOT/es" --id B

t=elect-cmd-reads-tty
if command -v script >/dev/null && command -v timeout >/dev/null; then
  out=$(printf 'hello\n' | timeout 20 script -qefc "$ZKR elect $ROOT/etty --id solo -- sh -c 'read x; echo got:\$x'" /dev/null 2>&1)
  code=$?
  [ $code -eq 0 ] && grep -q "got:hello" <<<"$out" && ok $t || bad $t "exit $code: $out"
else
  echo "SKIP $t: no script(1) or timeout(1)"
fi

# ---- counter ----

t=counter-int64
c=$ROOT/c64
out="$("$ZKR" counter "$c" get) $("$ZKR" counter "$c" add 5) $("$ZKR" counter "$c" add -7) $("$ZKR" counter "$c" set 300) $("$ZKR" counter "$c" cas 300 301)"
hex=$("$RAW" "$HOSTS" hex "$c")
[ "$out" = "0 5 -2 300 301" ] && [ "$hex" = "000000000000012d" ] && ok $t || bad $t "$out / $hex"

t=counter-int32
c=$ROOT/c32
out="$("$ZKR" counter --int32 "$c" add 2) $("$ZKR" counter "$c" --int32 add -3) $("$ZKR" counter "$c" get --int32)"
hex=$("$RAW" "$HOSTS" hex "$c")
[ "$out" = "2 -1 -1" ] && [ "$hex" = "ffffffff" ] && ok $t || bad $t "$out / $hex"

t=counter-at-most-once
out="$("$ZKR" counter "$ROOT/camo" --at-most-once add 4) $("$ZKR" counter --at-most-once "$ROOT/camo" add -1)"
hex=$("$RAW" "$HOSTS" hex "$ROOT/camo")
"$RAW" "$HOSTS" hex "$ROOT/camo.zkr-markers" >/dev/null 2>&1
nomarkers=$?
"$ZKR" counter "$ROOT/ceo" add 1 >/dev/null
"$RAW" "$HOSTS" hex "$ROOT/ceo.zkr-markers" >/dev/null 2>&1
markers=$?
[ "$out" = "4 3" ] && [ "$hex" = "0000000000000003" ] && [ $nomarkers -ne 0 ] && [ $markers -eq 0 ] &&
  ok $t || bad $t "$out / $hex / markers dir: at-most-once rc $nomarkers, exactly-once rc $markers"

t=counter-cas-mismatch
out=$("$ZKR" counter "$ROOT/c64" cas 1 2 2>"$WORK/cas.err")
code=$?
[ $code -eq 75 ] && [ "$out" = 301 ] && grep -q "cas did not apply" "$WORK/cas.err" && ok $t ||
  bad $t "exit $code out $out"
out=$("$ZKR" counter "$ROOT/c64" cas 1 2 -q -E 0 2>"$WORK/cas.err")
code=$?
[ $code -eq 0 ] && [ "$out" = 301 ] && [ ! -s "$WORK/cas.err" ] && ok counter-cas-mismatch-quiet ||
  bad counter-cas-mismatch-quiet "exit $code out $out err $(cat "$WORK/cas.err")"

t=counter-wrong-encoding
err=$("$ZKR" counter --int32 "$ROOT/c64" add 1 2>&1)
code=$?
hex=$("$RAW" "$HOSTS" hex "$ROOT/c64")
[ $code -eq 70 ] && grep -q "not a 4-byte counter" <<<"$err" && [ "$hex" = "000000000000012d" ] &&
  ok $t || bad $t "exit $code: $err"

# Bundled short options everywhere, counter too (its values may be negative).
t=counter-bundled-flags
out=$("$ZKR" counter "$ROOT/c64" get -vv 2>"$WORK/vv.err")
code=$?
[ $code -eq 0 ] && [ "$out" = 301 ] && grep -q "\[info\]" "$WORK/vv.err" && ok $t ||
  bad $t "exit $code, out '$out': $(head -3 "$WORK/vv.err")"

# ---- holders ----

t=holders-foreign-formats
h=$ROOT/h
"$RAW" "$HOSTS" mkdirs "$h"
made_k=$("$RAW" "$HOSTS" create-seq "$h/0123456789abcdef0123456789abcdef__lock__" kazoo-1)
made_g=$("$RAW" "$HOSTS" create-seq "$h/_c_0123456789abcdef0123456789abcdef-lock-" go-1)
made_c=$("$RAW" "$HOSTS" create-seq "$h/_c_6ba7b810-9dad-41d1-80b4-00c04fd430c8-latch-" curator-1)
made_z=$("$RAW" "$HOSTS" create-seq "$h/x-0123456789abcdef-" "")
made_r=$("$RAW" "$HOSTS" create-seq "$h/0123456789abcdef0123456789abcdef__rlock__" reader-1)
"$RAW" "$HOSTS" create "$h/config" cfg
out=$("$ZKR" holders "$h")
formats=$(awk 'NR > 1 { print $4 }' <<<"$out" | tr '\n' ' ')
first=$(awk 'NR == 2 { print $1, $6 }' <<<"$out")
if [ "$formats" = "kazoo go zkrecipes/curator-latch zk-c-recipe kazoo unknown " ] &&
   [ "$first" = "1* kazoo-1" ] && grep -q "reader-1 \[reader\]" <<<"$out" &&
   grep -q "^-  *-  *persistent  *unknown  *config  *cfg" <<<"$out"; then
  ok $t
else
  bad $t "$(printf '\n%s' "$out")"
fi
for n in "$made_k" "$made_g" "$made_c" "$made_z" "$made_r" "$h/config"; do "$RAW" "$HOSTS" delete "$n"; done

t=holders-empty
"$RAW" "$HOSTS" mkdirs "$ROOT/nothing-here"
out=$("$ZKR" holders "$ROOT/nothing-here")
[ $? -eq 0 ] && [ "$(wc -l <<<"$out")" -eq 1 ] && ok $t || bad $t "$out"

t=holders-missing
out=$("$ZKR" holders "$ROOT/no-such-node" 2>"$WORK/holders.err")
code=$?
[ $code -eq 70 ] && [ -z "$out" ] && grep -q "holders $ROOT/no-such-node: no such node" "$WORK/holders.err" &&
  ok $t || bad $t "exit $code, stdout: $out, stderr: $(cat "$WORK/holders.err")"

# ---- get, set, watch ----

t=get-missing
out=$("$ZKR" get "$ROOT/cfg/none" 2>"$WORK/get.err")
code=$?
[ $code -eq 70 ] && [ -z "$out" ] && grep -q "no such node" "$WORK/get.err" && ok $t ||
  bad $t "exit $code: $out $(cat "$WORK/get.err")"

t=set-creates-node-and-parents
out=$("$ZKR" set "$ROOT/cfg/a/b" "hello world")
code=$?
[ $code -eq 0 ] && [ "$out" = 0 ] && [ "$("$RAW" "$HOSTS" hex "$ROOT/cfg/a/b")" = 68656c6c6f20776f726c64 ] &&
  ok $t || bad $t "exit $code, out '$out'"

t=get-data-as-stored
"$ZKR" get "$ROOT/cfg/a/b" >"$WORK/get.out"
code=$?
[ $code -eq 0 ] && cmp -s "$WORK/get.out" <(printf 'hello world') && ok $t ||
  bad $t "exit $code, got '$(cat "$WORK/get.out")'"

t=set-stdin-and-dash-value
printf 'line 1\nline 2\n' | "$ZKR" set "$ROOT/cfg/a/b" - >/dev/null &&
  "$ZKR" get "$ROOT/cfg/a/b" >"$WORK/get.out" &&
  cmp -s "$WORK/get.out" <(printf 'line 1\nline 2\n') &&
  [ "$("$ZKR" set "$ROOT/cfg/dash" -- -x)" = 0 ] && [ "$("$ZKR" get "$ROOT/cfg/dash")" = -x ] &&
  ok $t || bad $t "got '$(cat "$WORK/get.out")'"

t=get-json
out=$("$ZKR" get --json "$ROOT/cfg/dash")
if /usr/bin/python3 -m json.tool <<<"$out" >/dev/null &&
   [ "$(/usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["data"], d["version"], d["path"])' <<<"$out")" = "-x 0 $ROOT/cfg/dash" ]; then
  ok $t
else
  bad $t "$out"
fi

t=set-version-cas
out=$("$ZKR" set "$ROOT/cfg/dash" --version 0 y)
code=$?
err=$("$ZKR" set "$ROOT/cfg/dash" z --version=0 2>&1 >/dev/null)
code2=$?
[ $code -eq 0 ] && [ "$out" = 1 ] && [ $code2 -eq 75 ] && grep -q "version 0 expected, now 1" <<<"$err" &&
  [ "$("$ZKR" get "$ROOT/cfg/dash")" = y ] && ok $t || bad $t "exit $code/$code2, '$out', '$err'"
"$ZKR" set -E 0 -q "$ROOT/cfg/dash" z --version 0 >/dev/null 2>"$WORK/cas.err"
code=$?
[ $code -eq 0 ] && [ ! -s "$WORK/cas.err" ] && ok set-version-cas-quiet ||
  bad set-version-cas-quiet "exit $code: $(cat "$WORK/cas.err")"
"$ZKR" set "$ROOT/cfg/none" v --version 0 2>/dev/null
code=$?
[ $code -eq 70 ] && ok set-version-missing-node || bad set-version-missing-node "exit $code"

expect_usage set-missing-value 64 "want PATH VALUE" set "$ROOT/cfg/x"
expect_usage set-version-not-a-number 64 "not a number" set "$ROOT/cfg/x" v --version soon

t=watch-lines
"$ZKR" watch "$ROOT/cfg/w" >"$WORK/watch.out" 2>"$WORK/watch.err" &
wpid=$!
bgpids+=($wpid)
"$ZKR" watch --json "$ROOT/cfg/w" >"$WORK/watchj.out" 2>&1 &
jpid=$!
bgpids+=($jpid)
"$ZKR" watch "$ROOT/cfg/w" -- sh -c 'printf "%s %s %s [%s]\n" "$ZKR_EVENT" "$ZKR_EXISTS" "$ZKR_VERSION" "$(cat)" >>"$1"' sh "$WORK/watchc.out" &
cpid=$!
bgpids+=($cpid)
steps_ok=1
wait_for 15 file_has "$WORK/watch.out" "^INITIALIZED (absent)" && wait_for 15 file_has "$WORK/watchc.out" "^INITIALIZED 0" &&
  wait_for 15 file_has "$WORK/watchj.out" INITIALIZED || steps_ok=0
"$ZKR" set "$ROOT/cfg/w" one >/dev/null
wait_for 10 file_has "$WORK/watch.out" "^CREATED version 0: one" && wait_for 10 file_has "$WORK/watchc.out" "one]" || steps_ok=0
"$ZKR" set "$ROOT/cfg/w" two >/dev/null
wait_for 10 file_has "$WORK/watch.out" "^CHANGED version 1: two" && wait_for 10 file_has "$WORK/watchc.out" "two]" || steps_ok=0
"$RAW" "$HOSTS" delete "$ROOT/cfg/w"
wait_for 10 file_has "$WORK/watch.out" "^DELETED (absent)" && wait_for 10 file_has "$WORK/watchc.out" "^DELETED 0 -1 \[\]" || steps_ok=0
"$ZKR" set "$ROOT/cfg/w" three >/dev/null
wait_for 10 file_has "$WORK/watch.out" "^CREATED version 0: three" &&
  wait_for 10 file_has "$WORK/watchj.out" '"data": *"three"' && wait_for 10 file_has "$WORK/watchc.out" "three]" || steps_ok=0
kill $wpid $jpid $cpid 2>/dev/null
wait $wpid $jpid $cpid 2>/dev/null
bgpids=()
expected=$'INITIALIZED (absent)\nCREATED version 0: one\nCHANGED version 1: two\nDELETED (absent)\nCREATED version 0: three'
[ $steps_ok -eq 1 ] && [ "$(cat "$WORK/watch.out")" = "$expected" ] && [ ! -s "$WORK/watch.err" ] && ok $t ||
  bad $t "$(printf '\n%s\n%s' "$(cat "$WORK/watch.out")" "$(cat "$WORK/watch.err")")"
t=watch-json-lines
jl=0
while IFS= read -r line; do
  /usr/bin/python3 -m json.tool <<<"$line" >/dev/null || jl=1
done <"$WORK/watchj.out"
[ $jl -eq 0 ] && [ "$(wc -l <"$WORK/watchj.out")" -eq 5 ] && ok $t || bad $t "$(cat "$WORK/watchj.out")"
t=watch-command
# Runs may coalesce changes, but the last run sees the last state.
[ $steps_ok -eq 1 ] && [ "$(tail -1 "$WORK/watchc.out")" = "CREATED 1 0 [three]" ] &&
  [ "$(head -1 "$WORK/watchc.out")" = "INITIALIZED 0 -1 []" ] && ok $t || bad $t "$(cat "$WORK/watchc.out")"
expect_usage watch-json-with-command 64 "does not go with a command" watch --json "$ROOT/cfg/w" -- true

t=watch-children
"$ZKR" watch --children "$ROOT/cfg/kids" >"$WORK/kids.out" 2>"$WORK/kids.err" &
kpid=$!
bgpids+=($kpid)
steps_ok=1
wait_for 15 file_has "$WORK/kids.out" "^INITIALIZED (absent)" || steps_ok=0
"$ZKR" set "$ROOT/cfg/kids/a" 1 >/dev/null
wait_for 10 file_has "$WORK/kids.out" "^ADDED a version 0: 1" || steps_ok=0
"$ZKR" set "$ROOT/cfg/kids/a" 2 >/dev/null
wait_for 10 file_has "$WORK/kids.out" "^UPDATED a version 1: 2" || steps_ok=0
"$RAW" "$HOSTS" delete "$ROOT/cfg/kids/a"
wait_for 10 file_has "$WORK/kids.out" "^REMOVED a" || steps_ok=0
"$RAW" "$HOSTS" delete "$ROOT/cfg/kids"
wait_for 10 file_has "$WORK/kids.out" "^PARENT_ABSENT" || steps_ok=0
kill $kpid 2>/dev/null
wait $kpid 2>/dev/null
bgpids=()
expected=$'INITIALIZED (absent)\nADDED a version 0: 1\nUPDATED a version 1: 2\nREMOVED a\nPARENT_ABSENT'
[ $steps_ok -eq 1 ] && [ "$(cat "$WORK/kids.out")" = "$expected" ] && [ ! -s "$WORK/kids.err" ] && ok $t ||
  bad $t "$(printf '\n%s\n%s' "$(cat "$WORK/kids.out")" "$(cat "$WORK/kids.err")")"

t=watch-tree
"$ZKR" set "$ROOT/cfg/tree/a/deep" d >/dev/null
"$ZKR" set "$ROOT/cfg/tree/a" a0 >/dev/null
"$ZKR" watch --tree 1 "$ROOT/cfg/tree" >"$WORK/tree.out" 2>"$WORK/tree.err" &
tpid=$!
bgpids+=($tpid)
steps_ok=1
wait_for 15 file_has "$WORK/tree.out" "^INITIALIZED" || steps_ok=0
"$ZKR" set "$ROOT/cfg/tree/a" a1 >/dev/null
wait_for 10 file_has "$WORK/tree.out" "^UPDATED a version 2: a1" || steps_ok=0
"$ZKR" set "$ROOT/cfg/tree" top >/dev/null
wait_for 10 file_has "$WORK/tree.out" "^CHANGED version 1: top" || steps_ok=0
kill $tpid 2>/dev/null
wait $tpid 2>/dev/null
bgpids=()
expected=$'ADDED a version 1: a0\nINITIALIZED\nUPDATED a version 2: a1\nCHANGED version 1: top'
[ $steps_ok -eq 1 ] && [ "$(cat "$WORK/tree.out")" = "$expected" ] && [ ! -s "$WORK/tree.err" ] && ok $t ||
  bad $t "$(printf '\n%s\n%s' "$(cat "$WORK/tree.out")" "$(cat "$WORK/tree.err")")"
expect_usage watch-tree-depth 64 "not a number in 0..64" watch --tree 65 "$ROOT/cfg/tree"

# ---- journal ----
t=journal-write-follow
J="$ROOT/cfg/jnl"
"$ZKR" journal "$J" follow >"$WORK/jf.out" 2>"$WORK/jf.err" &
jfpid=$!
bgpids+=($jfpid)
steps_ok=1
wait_for 15 file_has "$WORK/jf.out" "^CAUGHT_UP -1" || steps_ok=0
s0=$("$ZKR" journal "$J" write one) || steps_ok=0
s1=$("$ZKR" journal "$J" write two) || steps_ok=0
s2=$(printf 'three' | "$ZKR" journal "$J" write -) || steps_ok=0
wait_for 10 file_has "$WORK/jf.out" "^ENTRY $s2: three" || steps_ok=0
kill $jfpid 2>/dev/null
wait $jfpid 2>/dev/null
bgpids=()
expected=$(printf 'CAUGHT_UP -1\nENTRY %s: one\nENTRY %s: two\nENTRY %s: three' "$s0" "$s1" "$s2")
[ $steps_ok -eq 1 ] && [ "$s0" = 0 ] && [ "$s1" = 1 ] && [ "$(cat "$WORK/jf.out")" = "$expected" ] &&
  [ ! -s "$WORK/jf.err" ] && [ "$("$ZKR" get "$J")" = three ] && ok $t ||
  bad $t "$(printf '\n%s\n%s' "$(cat "$WORK/jf.out")" "$(cat "$WORK/jf.err")")"

t=journal-follow-once-after-json
out=$("$ZKR" journal "$J" follow --once --after "$s0" --json)
code=$?
[ $code -eq 0 ] && [ "$(/usr/bin/python3 -c '
import json, sys
print(" ".join("%s:%s:%s" % (d["event"], d["seq"], d["data"]) for d in map(json.loads, sys.stdin)))' <<<"$out")" = "ENTRY:$s1:two ENTRY:$s2:three CAUGHT_UP:$s2:None" ] && ok $t || bad $t "exit $code: $out"

t=journal-version-cas
err=$("$ZKR" journal "$J" write four --version 0 2>&1 >/dev/null)
code=$?
out=$("$ZKR" journal "$J" write four --version 2)
code2=$?
[ $code -eq 75 ] && grep -q "version 0 expected, now 2" <<<"$err" && [ $code2 -eq 0 ] && [ "$out" = 3 ] &&
  ok $t || bad $t "exit $code/$code2: '$err' '$out'"

t=journal-trim-and-command
del=$("$ZKR" journal "$J" trim "$s1")
"$ZKR" journal "$J" follow --once -- sh -c 'printf "%s %s %s [%s]\n" "$ZKR_EVENT" "$ZKR_SEQ" "$ZKR_FROM" "$(cat)" >>"$1"' sh "$WORK/jc.out"
code=$?
expected=$'TRIMMED 1 -1 []\nENTRY 2 1 [three]\nENTRY 3 2 [four]'
[ "$del" = 2 ] && [ $code -eq 0 ] && [ "$(cat "$WORK/jc.out")" = "$expected" ] && ok $t ||
  bad $t "deleted '$del', exit $code: $(cat "$WORK/jc.out")"

t=journal-failing-command-stops
err=$("$ZKR" journal "$J" follow --once -c 'test "$ZKR_SEQ" != 3' 2>&1 >/dev/null)
code=$?
[ $code -eq 70 ] && grep -q "resume with --after 2" <<<"$err" && ok $t || bad $t "exit $code: $err"

t=journal-trim-keep
del=$("$ZKR" journal "$J" trim all --keep 1)
out=$("$ZKR" journal "$J" follow --once)
[ "$del" = 1 ] && [ "$out" = $'TRIMMED -1..2\nENTRY 3: four\nCAUGHT_UP 3' ] && ok $t || bad $t "deleted '$del': $out"

expect_usage journal-missing-op 64 "want PATH write|follow|trim" journal "$J"
expect_usage journal-unknown-op 64 "unknown 'frob'" journal "$J" frob
expect_usage journal-write-missing-value 64 "want PATH write VALUE" journal "$J" write
expect_usage journal-trim-not-a-number 64 "not a number" journal "$J" trim soon
expect_usage journal-json-with-command 64 "does not go with a command" journal "$J" follow --json -- true

# ---- read/write lock ----
t=lock-read-write
RW="$ROOT/rw"
"$ZKR" lock --read "$RW" -- sh -c 'touch "$1"; sleep 30' sh "$WORK/rw.held" &
rwpid=$!
bgpids+=($rwpid)
steps_ok=1
wait_for 15 test -e "$WORK/rw.held" || steps_ok=0
"$ZKR" lock --read -n "$RW" -- true
c1=$?
"$ZKR" lock --write -n -q "$RW" -- true
c2=$?
"$ZKR" lock -n -q "$RW" -- true
c3=$?
out=$("$ZKR" holders "$RW")
kill $rwpid 2>/dev/null
wait $rwpid 2>/dev/null
bgpids=()
wait_for 10 no_nodes "$RW" || steps_ok=0
"$ZKR" lock --write -n "$RW" -- true
c4=$?
[ $steps_ok -eq 1 ] && [ $c1 -eq 0 ] && [ $c2 -eq 75 ] && [ $c3 -eq 75 ] && [ $c4 -eq 0 ] &&
  grep -q "__READ__.*\[reader\]" <<<"$out" && ok $t ||
  bad $t "reader beside a reader $c1, writer $c2, mutex $c3, writer after $c4: $out"

# ---- semaphore ----
t=semaphore-two-of-two
SEM="$ROOT/sem"
spids=()
for i in 1 2; do
  "$ZKR" semaphore "$SEM" --max 2 -- sh -c 'echo "$ZKR_LEASE_SLOT $ZKR_FENCE" >"$1"; sleep 30' sh "$WORK/sem.$i" &
  spids+=($!)
  bgpids+=($!)
done
steps_ok=1
wait_for 15 file_has "$WORK/sem.1" "^[01] [0-9]" || steps_ok=0
wait_for 15 file_has "$WORK/sem.2" "^[01] [0-9]" || steps_ok=0
slots="$(cut -d' ' -f1 "$WORK/sem.1" "$WORK/sem.2" | sort | tr '\n' ' ')"
"$ZKR" semaphore "$SEM" --max 2 -n -q -- true
c1=$?
err=$("$ZKR" semaphore "$SEM" --max 3 -n -- true 2>&1)
c2=$?
out=$("$ZKR" holders "$SEM")
kill "${spids[@]}" 2>/dev/null
wait "${spids[@]}" 2>/dev/null
bgpids=()
wait_for 10 no_nodes "$SEM/leases" || steps_ok=0
"$ZKR" semaphore "$SEM" --max 2 -n -- sh -c 'test "$ZKR_LEASE_SLOT" = 0'
c3=$?
[ $steps_ok -eq 1 ] && [ "$slots" = "0 1 " ] && [ $c1 -eq 75 ] && [ $c2 -eq 70 ] &&
  [ $c3 -eq 0 ] && grep -q "another maximum than ours (3)" <<<"$err" &&
  [ "$(grep -c -- "-lease-.*zkr-lease [01]/2 .*\[lease\]" <<<"$out")" = 2 ] && ok $t ||
  bad $t "slots '$slots', third $c1, other maximum $c2 ($err), after $c3: $out"

expect_usage semaphore-no-max 64 "give the maximum" semaphore "$SEM" -- true
expect_usage semaphore-max-range 64 "--max" semaphore "$SEM" --max 0 -- true
expect_usage semaphore-profile 64 "curator, kazoo or native" semaphore "$SEM" --max 2 --profile etcd -- true
expect_usage semaphore-profile-max-from 64 "curator profile" semaphore "$SEM" --max-from "$SEM/n" --profile kazoo -- true
expect_usage profile-not-for-lock 64 "semaphore options" lock "$SEM" --profile kazoo -- true

# kazoo's own Semaphore and zkr's kazoo profile on one path: never more than
# the maximum, and each sees the other's leases.
t=semaphore-kazoo-interop
out=$(timeout 300 /usr/bin/python3 tests/interop/kazoo_semaphore.py "$ZKR" "$HOSTS" "$ROOT/ksem" 2>&1)
code=$?
[ $code -eq 0 ] && ok $t || bad $t "exit $code: $out"
echo "  $out" | head -3

# The native profile: its leases directly under PATH, no slot, holders ranked.
t=semaphore-native
NS="$ROOT/nsem"
"$ZKR" semaphore "$NS" --max 1 --profile native -- sh -c 'echo "${ZKR_LEASE_SLOT-none} $ZKR_FENCE" >"$1"; sleep 30' sh "$WORK/nsem.env" &
npid=$!
bgpids+=($npid)
steps_ok=1
wait_for 15 file_has "$WORK/nsem.env" "^none [0-9]" || steps_ok=0
"$ZKR" semaphore "$NS" --max 1 --profile native -n -- true 2>/dev/null
c1=$?
out=$("$ZKR" holders "$NS")
kill $npid 2>/dev/null
wait $npid 2>/dev/null
bgpids=()
wait_for 10 no_nodes "$NS" || steps_ok=0
[ $steps_ok -eq 1 ] && [ $c1 -eq 75 ] && grep -q "^1\*.*-lease-.*\[lease\]" <<<"$out" && ok $t ||
  bad $t "second $c1: $out"
expect_usage max-not-for-lock 64 "semaphore options" lock "$SEM" --max 2 -- true

# ---- queue ----
t=queue-put-take
Q="$ROOT/jobs"
steps_ok=1
n1=$("$ZKR" queue "$Q" put first --profile simple) || steps_ok=0
"$ZKR" queue "$Q" put second --profile simple >/dev/null || steps_ok=0
len=$("$ZKR" queue "$Q" length --profile simple)
o1=$("$ZKR" queue "$Q" take -n --profile simple)
o2=$("$ZKR" queue "$Q" take -n --json --profile simple)
"$ZKR" queue "$Q" take -n --profile simple 2>/dev/null
c1=$?
[ $steps_ok -eq 1 ] && [[ $n1 == qn-* ]] && [ "$len" = 2 ] && [ "$o1" = first ] &&
  [ "$(/usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["data"], d["item"][:3], d["token"] > 0)' <<<"$o2")" = "second qn- True" ] &&
  [ $c1 -eq 75 ] && ok $t || bad $t "put $n1, length $len, took '$o1' then '$o2', empty $c1"

t=queue-take-command
K="$ROOT/kjobs"
steps_ok=1
"$ZKR" queue "$K" put later --priority 200 --profile kazoo >/dev/null || steps_ok=0
"$ZKR" queue "$K" put urgent --priority 10 --profile kazoo >/dev/null || steps_ok=0
"$ZKR" queue "$K" take -n --profile kazoo -- sh -c 'cat >"$1"; echo "$ZKR_QUEUE_ITEM $ZKR_QUEUE_PRIORITY" >>"$1"; exit 3' sh "$WORK/q1"
c1=$?
"$ZKR" queue "$K" take -n --profile kazoo -- sh -c 'cat >"$1"' sh "$WORK/q2"
c2=$?
o3=$("$ZKR" queue "$K" take -n --profile kazoo)
len=$("$ZKR" queue "$K" length --profile kazoo)
[ $steps_ok -eq 1 ] && [ $c1 -eq 3 ] && [ $c2 -eq 0 ] && grep -q "^urgent" "$WORK/q1" &&
  grep -q "entry-010-.* 10$" "$WORK/q1" && [ "$(cat "$WORK/q2")" = urgent ] && [ "$o3" = later ] &&
  [ "$len" = 0 ] && ok $t || bad $t "command $c1 then $c2 ($(cat "$WORK/q1" "$WORK/q2")), then '$o3', length $len"

# kazoo's own LockingQueue and zkr's kazoo-locking profile on one path: every
# item, whoever put it, consumed exactly once by whoever took it.
t=queue-kazoo-interop
out=$(timeout 300 /usr/bin/python3 tests/interop/kazoo_queue.py "$ZKR" "$HOSTS" "$ROOT/kq" 2>&1)
code=$?
[ $code -eq 0 ] && ok $t || bad $t "exit $code: $out"
echo "  $out" | head -3

expect_usage queue-no-op 64 "put DATA|take|length" queue "$Q"
expect_usage queue-bad-op 64 "unknown 'pop'" queue "$Q" pop
expect_usage queue-bad-profile 64 "curator, simple, kazoo or kazoo-locking" queue "$Q" length --profile rabbit
expect_usage queue-priority-take 64 "priority is for put" queue "$Q" take --priority 3
expect_usage queue-simple-priority 64 "not one of the simple" queue "$Q" put x --priority 3 --profile simple
expect_usage priority-not-for-lock 64 "queue option" lock "$Q" --priority 3 -- true

# ---- barriers ----
t=barrier-gate
B="$ROOT/gate"
steps_ok=1
"$ZKR" barrier "$B" wait -n || steps_ok=0
"$ZKR" barrier "$B" set && "$ZKR" barrier "$B" set || steps_ok=0
"$ZKR" barrier "$B" wait -n 2>/dev/null
c1=$?
"$ZKR" barrier "$B" wait -w 20 &
wpid=$!
bgpids+=($wpid)
sleep 0.3
gone $wpid && steps_ok=0
"$ZKR" barrier "$B" remove && "$ZKR" barrier "$B" remove || steps_ok=0
wait $wpid
c2=$?
bgpids=()
[ $steps_ok -eq 1 ] && [ $c1 -eq 75 ] && [ $c2 -eq 0 ] && no_nodes "$B" && ok $t ||
  bad $t "wait on a raised gate $c1, waiter $c2"

t=barrier-members
D="$ROOT/batch/round-1"
: >"$WORK/dbar"
dpids=()
for i in 1 2; do
  "$ZKR" barrier "$D" --members 3 -w 30 -- sh -c 'echo "$ZKR_BARRIER_NODE" >>"$1"' sh "$WORK/dbar" &
  dpids+=($!)
done
bgpids+=("${dpids[@]}")
steps_ok=1
wait_for 15 count_is "$D" 2 || steps_ok=0
[ "$(wc -l <"$WORK/dbar")" -eq 0 ] || steps_ok=0 # nobody runs with two of three
"$ZKR" barrier "$D" --members 3 -w 30 -- sh -c 'echo "$ZKR_BARRIER_NODE" >>"$1"' sh "$WORK/dbar"
c1=$?
for p in "${dpids[@]}"; do wait "$p" || steps_ok=0; done
bgpids=()
[ $steps_ok -eq 1 ] && [ $c1 -eq 0 ] && [ "$(sort -u "$WORK/dbar" | grep -c '^[0-9a-f-]\{36\}$')" -eq 3 ] &&
  wait_for 5 no_nodes "$D" && ok $t || bad $t "third $c1, ran: $(cat "$WORK/dbar")"

t=barrier-members-timeout
D2="$ROOT/batch/round-2"
"$ZKR" barrier "$D2" --members 2 -w 0.5 -- true 2>"$WORK/dbar.err"
c1=$?
[ $c1 -eq 75 ] && grep -q "fewer than 2 members" "$WORK/dbar.err" && wait_for 5 no_nodes "$D2" &&
  ok $t || bad $t "exit $c1: $(cat "$WORK/dbar.err")"

expect_usage barrier-no-op 64 "set|remove|wait" barrier "$B"
expect_usage barrier-bad-op 64 "unknown 'frob'" barrier "$B" frob
expect_usage barrier-members-no-cmd 64 "wants a command" barrier "$B" --members 2
expect_usage members-not-for-lock 64 "barrier option" lock "$B" --members 2 -- true

# ---- membership and discovery ----
t=join-while-command
G="$ROOT/grp"
"$ZKR" join "$G" --id w1 --data hello -- sh -c 'echo "$ZKR_MEMBER_NODE $ZKR_EPOCH" >"$1"; sleep 30' sh "$WORK/join.env" &
jpid=$!
bgpids+=($jpid)
steps_ok=1
wait_for 15 file_has "$WORK/join.env" "^$G/w1 [0-9]" || steps_ok=0
out=$("$ZKR" members "$G")
[ "$(cut -f1,2,4 <<<"$out")" = "$(printf 'w1\tcurator\thello')" ] || steps_ok=0
err=$("$ZKR" join "$G" --id w1 -w 2 -- true 2>&1)
code=$?
[ $code -eq 75 ] && grep -q "held by another session" <<<"$err" || steps_ok=0
kill $jpid 2>/dev/null
wait $jpid 2>/dev/null
bgpids=()
wait_for 10 no_nodes "$G" || steps_ok=0
[ $steps_ok -eq 1 ] && ok $t || bad $t "members '$out', duplicate exit $code: $err"

t=members-json-kazoo
"$ZKR" join "$G" --id k1 --kazoo -- sh -c 'sleep 30' &
jpid=$!
bgpids+=($jpid)
wait_for 15 has_members "$G" 1
out=$("$ZKR" members --json "$G")
kill $jpid 2>/dev/null
wait $jpid 2>/dev/null
bgpids=()
[ "$(/usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(d[0]["id"], d[0]["format"], d[0]["node"].endswith("__party__"))' <<<"$out")" = "k1 kazoo True" ] &&
  ok $t || bad $t "$out"

t=register-services-pick
B="$ROOT/svc"
"$ZKR" register --base "$B" --name orders --id o1 --address 10.0.0.7 --port 8080 -- sh -c 'echo "$ZKR_SERVICE_ID" >"$1"; sleep 30' sh "$WORK/reg.env" >"$WORK/reg.out" &
rpid=$!
bgpids+=($rpid)
steps_ok=1
wait_for 15 file_has "$WORK/reg.env" "^o1" || steps_ok=0
[ "$(cat "$WORK/reg.out")" = o1 ] || steps_ok=0
[ "$("$ZKR" services --base "$B")" = orders ] || steps_ok=0
[ "$("$ZKR" services --base "$B" orders)" = "o1 10.0.0.7:8080" ] || steps_ok=0
[ "$("$ZKR" pick --base "$B" orders --strategy round-robin)" = "10.0.0.7:8080" ] || steps_ok=0
kill $rpid 2>/dev/null
wait $rpid 2>/dev/null
bgpids=()
wait_for 10 no_nodes "$B/orders" || steps_ok=0
"$ZKR" pick --base "$B" orders 2>"$WORK/pick.err"
code=$?
[ $code -eq 70 ] && grep -q "no instance" "$WORK/pick.err" || steps_ok=0
[ $steps_ok -eq 1 ] && ok $t || bad $t "pick exit $code"

t=register-permanent-stays
id=$("$ZKR" register --base "$B" --name batch --id b1 --address 10.0.0.9 --port 9000 --permanent)
code=$?
out1=$("$ZKR" services --base "$B" batch)
"$ZKR" register --base "$B" --name batch --id b1 --address 10.0.0.9 --port 9001 --permanent >/dev/null
out2=$("$ZKR" services --base "$B" batch)
[ $code -eq 0 ] && [ "$id" = b1 ] && [ "$out1" = "b1 10.0.0.9:9000" ] && [ "$out2" = "b1 10.0.0.9:9001" ] &&
  ok $t || bad $t "exit $code, '$id', '$out1', '$out2'"
"$RAW" "$HOSTS" delete "$B/batch/b1"

expect_usage join-needs-id 64 "--id ID is required" join "$G"
expect_usage register-needs-base 64 "--base BASE is required" register --name x --address y
expect_usage register-needs-name 64 "--name and --address are required" register --base "$B"
expect_usage register-bad-payload 64 "must be JSON" register --base "$B" --name x --address y --payload '{'
expect_usage register-permanent-no-command 64 "takes no command" register --base "$B" --name x --address y --permanent -- true
expect_usage pick-needs-name 64 "want --base BASE NAME" pick --base "$B"
expect_usage pick-bad-strategy 64 "random or round-robin" pick --base "$B" x --strategy sticky
expect_usage members-no-command 64 "takes only PATH" members "$G" -- true

# ---- no node left behind ----
t=no-nodes-left
left=0
for p in x w s g d b q t e el e2 eg eb es ew0; do n=$("$RAW" "$HOSTS" count "$ROOT/$p"); [ "$n" -eq 0 ] || echo "  $ROOT/$p: $n"; left=$((left + n)); done
[ "$left" -eq 0 ] && ok $t || bad $t "$left nodes left"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
