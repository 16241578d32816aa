#!/usr/bin/env bash
# Shell tests of the zkr command-line tool against the throwaway servers of
# tests/zk/with-zk.sh. Usage: tests/cli/test_zkr.sh [BUILD_DIR]
# Every wait is a deadline-bounded poll; each case prints PASS or FAIL; the last
# line is "N passed, N failed" and the exit status is non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
ZKR=$PWD/$BUILD/zkr
RAW=$PWD/$BUILD/tests/zkraw
HOSTS=${ZKR_TEST_STANDALONE:-${ZKR_TEST_HOSTS:-}}
[ -n "$HOSTS" ] || { echo "test_zkr: no test server (run under tests/zk/with-zk.sh)" >&2; exit 2; }
export ZKR_HOSTS=$HOSTS
unset ZKR_AUTH
WORK=$(mktemp -d)
ROOT=/zkr-cli-$$
passed=0 failed=0
bgpids=()

cleanup() {
  for p in "${bgpids[@]}"; do kill -CONT "$p" 2>/dev/null; kill "$p" 2>/dev/null; done
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

"$RAW" "$HOSTS" mkdirs "$ROOT" || { echo "test_zkr: cannot create $ROOT" >&2; exit 1; }

# ---- help and bad input ----

t=help
out=$("$ZKR" --help) && grep -q "usage: zkr" <<<"$out" && grep -q "holders PATH" <<<"$out" \
  && ok $t || bad $t "zkr --help"
for c in lock elect counter holders; do
  out=$("$ZKR" help $c) && grep -q "usage: zkr \[OPTIONS\] $c" <<<"$out" || { bad help-$c "zkr help $c"; continue; }
  out2=$("$ZKR" $c --help) && [ "$out" = "$out2" ] && ok help-$c || bad help-$c "zkr $c --help differs"
done

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
expect_usage bad-missing-dashdash 64 "missing '--'" lock "$ROOT/l" true
expect_usage bad-elect-needs-id 64 "--id ID is required" elect "$ROOT/e" -- true
expect_usage bad-wait-value 64 "not a number of seconds" lock -w soon "$ROOT/l" -- true
expect_usage bad-counter-op 64 "unknown or incomplete operation 'inc'" counter "$ROOT/c" inc
t0=$(ms)
expect_usage bad-unreachable 69 "cannot connect to 127.0.0.1:1 within 500 ms" \
  -H 127.0.0.1:1 -c 500 counter "$ROOT/c" get
el=$(( $(ms) - t0 ))
[ "$el" -lt 3000 ] && ok unreachable-is-quick || bad unreachable-is-quick "${el} ms"

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

t=lock-w0-fails-fast
"$ZKR" lock "$ROOT/w" --id holder -- sh -c "touch $WORK/held; sleep 5" &
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
else
  bad $t "holder never started"
fi
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
bgpids=()

# The holder's session expires on the server (zkr is stopped past its session
# timeout): once it runs again it learns of the loss and CMD gets SIGTERM.
t=lock-lost-terminates-cmd
log=$WORK/lost.log
: >"$log"
"$ZKR" -s 1000 lock "$ROOT/s" -- sh -c "trap 'echo got-term >> $log; exit 0' TERM; echo started >> $log; while :; do sleep 0.05; done" 2>"$WORK/lost.err" &
zpid=$!
bgpids+=($zpid)
if wait_for 10 file_has "$log" started; then
  kill -STOP "$zpid"
  # The server expires the session and drops its node; then zkr may run again.
  if wait_for 20 has_contenders "$ROOT/s" 0; then
    kill -CONT "$zpid"
    wait "$zpid"
    code=$?
    [ $code -eq 79 ] && file_has "$log" got-term && grep -q "lock lost" "$WORK/lost.err" &&
      ok $t || bad $t "exit $code; log: $(tr '\n' ' ' <"$log"); stderr: $(cat "$WORK/lost.err")"
  else
    kill -CONT "$zpid"
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
else
  echo "SKIP $t: the test server is not ours to stop"
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
  kill -STOP "$zpid"
  if wait_for 20 has_contenders "$ROOT/el" 0; then
    kill -CONT "$zpid"
    wait "$zpid"
    code=$?
    [ $code -eq 79 ] && file_has "$log" got-term && grep -q "leadership lost" "$WORK/elost.err" &&
      ok $t || bad $t "exit $code; stderr: $(cat "$WORK/elost.err")"
  else
    kill -CONT "$zpid"
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

t=counter-cas-mismatch
out=$("$ZKR" counter "$ROOT/c64" cas 1 2 2>"$WORK/cas.err")
code=$?
[ $code -eq 75 ] && [ "$out" = 301 ] && grep -q "cas did not apply" "$WORK/cas.err" && ok $t ||
  bad $t "exit $code out $out"

t=counter-wrong-encoding
err=$("$ZKR" counter --int32 "$ROOT/c64" add 1 2>&1)
code=$?
hex=$("$RAW" "$HOSTS" hex "$ROOT/c64")
[ $code -eq 70 ] && grep -q "not a 4-byte counter" <<<"$err" && [ "$hex" = "000000000000012d" ] &&
  ok $t || bad $t "exit $code: $err"

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
out=$("$ZKR" holders "$ROOT/nothing-here")
[ $? -eq 0 ] && [ "$(wc -l <<<"$out")" -eq 1 ] && ok $t || bad $t "$out"

# ---- no node left behind ----
t=no-nodes-left
left=0
for p in x w s g e el e2; do n=$("$RAW" "$HOSTS" count "$ROOT/$p"); [ "$n" -eq 0 ] || echo "  $ROOT/$p: $n"; left=$((left + n)); done
[ "$left" -eq 0 ] && ok $t || bad $t "$left nodes left"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
