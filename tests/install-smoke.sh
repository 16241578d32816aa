#!/usr/bin/env bash
# Install smoke test: install into a staging DESTDIR with PREFIX=/usr, build the
# session example and the README's C snippets (tests/readme_snippets.py) with
# nothing but `pkg-config --cflags --libs zkrecipes` against the staged .pc, link
# them to the staged shared library and run them against the test server. Uses
# the plain (unsanitized) build so that the consumer programs need no sanitizer
# runtime.
set -euo pipefail
cd "$(dirname "$0")/.."

hosts=${ZKR_TEST_STANDALONE:-${ZKR_TEST_HOSTS:-}}
[ -n "$hosts" ] || { echo "install-smoke: no test server (run under tests/zk/with-zk.sh)" >&2; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

make --no-print-directory -s install DESTDIR="$stage" PREFIX=/usr SANITIZE= TSAN= BUILD=build >/dev/null

export PKG_CONFIG_PATH="$stage/usr/lib/pkgconfig"
export PKG_CONFIG_SYSROOT_DIR="$stage"   # staged tree: rewrite /usr/... into the stage
flags=$(pkg-config --cflags --libs zkrecipes)
echo "install-smoke: pkg-config --cflags --libs zkrecipes -> $flags"
case "$flags" in
  *-DTHREADED*) ;;
  *) echo "install-smoke: -DTHREADED missing from the .pc" >&2; exit 1 ;;
esac

# shellcheck disable=SC2086  # word splitting of the flags is intended
"${CC:-cc}" -std=c11 -Wall -Wextra -Werror -o "$stage/session" examples/session.c $flags

# It must pick the staged shared object, not a static copy. Its SONAME carries
# the ABI number of the Makefile (docs/abi-policy.md).
abi=$(sed -n 's/^ABI := \([0-9][0-9]*\)$/\1/p' Makefile)
# (ldd's output is read whole first: with pipefail, grep -q quitting at the first
# match could fail the pipe by SIGPIPE to ldd.)
linked=$(LD_LIBRARY_PATH="$stage/usr/lib" ldd "$stage/session")
if ! grep -q "$stage/usr/lib/libzkrecipes.so.$abi " <<<"$linked"; then
  echo "install-smoke: the program is not linked to the staged libzkrecipes.so.$abi" >&2
  LD_LIBRARY_PATH="$stage/usr/lib" ldd "$stage/session" >&2
  exit 1
fi
LD_LIBRARY_PATH="$stage/usr/lib" "$stage/session" "$hosts"

# The README's C snippets, pasted in order into one program, build against the
# staged install with warnings as errors and run against the test server.
/usr/bin/python3 tests/readme_snippets.py README.md >"$stage/readme.c"
# shellcheck disable=SC2086
"${CC:-cc}" -std=c11 -Wall -Wextra -Werror -o "$stage/readme" "$stage/readme.c" $flags
out=$(LD_LIBRARY_PATH="$stage/usr/lib" "$stage/readme" "$hosts")
echo "$out" | sed 's/^/install-smoke: README program: /'
for want in "exclusive work, fencing token [0-9]" "hits: [0-9]" "leading, epoch [0-9]" \
  "export slot [0-2]"; do
  grep -q "^$want" <<<"$out" || { echo "install-smoke: README program: no '$want'" >&2; exit 1; }
done

# The event-loop example, built the same way: a lock and an election driven
# from an epoll loop through a hand-off queue.
# shellcheck disable=SC2086
"${CC:-cc}" -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -o "$stage/event_loop" \
  examples/event_loop.c $flags -pthread
out=$(LD_LIBRARY_PATH="$stage/usr/lib" timeout 60 "$stage/event_loop" "$hosts")
echo "$out" | sed 's/^/install-smoke: event_loop: /'
grep -q "^done: the lock was held and released" <<<"$out" ||
  { echo "install-smoke: event_loop did not finish" >&2; exit 1; }

# The configuration-reload example against the installed zkr: it loads the
# node (absent first), then each value zkr sets, in order.
# shellcheck disable=SC2086
"${CC:-cc}" -std=c11 -Wall -Wextra -Werror -o "$stage/config_reload" \
  examples/config_reload.c $flags -pthread
cfg=/zkrecipes-smoke-config-$$
LD_LIBRARY_PATH="$stage/usr/lib" timeout 60 "$stage/config_reload" "$hosts" "$cfg" 2 \
  >"$stage/config_reload.out" 2>&1 &
reloader=$!
waited=0
until grep -q "absent" "$stage/config_reload.out" || [ $waited -ge 200 ]; do
  sleep 0.05
  waited=$((waited + 1))
done
LD_LIBRARY_PATH="$stage/usr/lib" ZKR_HOSTS=$hosts "$stage/usr/bin/zkr" set "$cfg" threads=8 >/dev/null
until grep -q "threads=8" "$stage/config_reload.out" || [ $waited -ge 400 ]; do
  sleep 0.05
  waited=$((waited + 1))
done
LD_LIBRARY_PATH="$stage/usr/lib" ZKR_HOSTS=$hosts "$stage/usr/bin/zkr" set "$cfg" threads=16 >/dev/null
wait $reloader || { cat "$stage/config_reload.out" >&2; echo "install-smoke: config_reload failed" >&2; exit 1; }
sed 's/^/install-smoke: config_reload: /' "$stage/config_reload.out"
[ "$(grep -c "^config: " "$stage/config_reload.out")" -eq 3 ] && grep -q "version 1 .*threads=16" "$stage/config_reload.out" ||
  { echo "install-smoke: config_reload did not see absent, threads=8, threads=16" >&2; exit 1; }
if [ -x "${BUILD:-build}/tests/zkraw" ]; then "${BUILD:-build}/tests/zkraw" "$hosts" delete "$cfg"; fi

# The service-pool example: workers register in Curator's format, a client
# spreads calls over the live ones; one worker stops halfway.
# shellcheck disable=SC2086
"${CC:-cc}" -std=c11 -Wall -Wextra -Werror -o "$stage/service_pool" \
  examples/service_pool.c $flags -pthread
out=$(LD_LIBRARY_PATH="$stage/usr/lib" timeout 60 "$stage/service_pool" "$hosts" 3 30) ||
  { echo "$out" >&2; echo "install-smoke: service_pool failed" >&2; exit 1; }
echo "$out" | sed 's/^/install-smoke: service_pool: /'
grep -q "^errors: 0, calls to the stopped worker after it stopped: 0" <<<"$out" ||
  { echo "install-smoke: service_pool: calls went wrong" >&2; exit 1; }

# The command-line tool is installed too, with its man pages (which render
# without a warning) and its bash completion (which completes).
[ -x "$stage/usr/bin/zkr" ] || { echo "install-smoke: usr/bin/zkr not installed" >&2; exit 1; }
"$stage/usr/bin/zkr" --version
for page in man1/zkr.1 man3/zkrecipes.3; do
  f=$stage/usr/share/man/$page
  [ -f "$f" ] || { echo "install-smoke: $page not installed" >&2; exit 1; }
  warnings=$(groff -man -Tutf8 -ww -z "$f" 2>&1)
  [ -z "$warnings" ] || { echo "install-smoke: $page: $warnings" >&2; exit 1; }
done
MANPATH="$stage/usr/share/man" man zkr 2>/dev/null | grep -q "conflict-exit-code" ||
  { echo "install-smoke: man zkr does not render" >&2; exit 1; }
# Every exported function is named in zkrecipes(3).
while read -r sym; do
  grep -q "\b$sym\b" "$stage/usr/share/man/man3/zkrecipes.3" ||
    { echo "install-smoke: zkrecipes(3) does not name $sym" >&2; exit 1; }
done <tests/exported-symbols.txt
comp=$(bash -c 'source "$1"; COMP_WORDS=(zkr lo); COMP_CWORD=1; _zkr; echo "${COMPREPLY[*]}";
  COMP_WORDS=(zkr counter /c g); COMP_CWORD=3; _zkr; echo "${COMPREPLY[*]}"' _ \
  "$stage/usr/share/bash-completion/completions/zkr")
[ "$comp" = "lock
get" ] || { echo "install-smoke: bash completion gave '$comp'" >&2; exit 1; }

make --no-print-directory -s uninstall DESTDIR="$stage" PREFIX=/usr SANITIZE= TSAN= BUILD=build
left=$(find "$stage/usr" -type f | wc -l)
if [ "$left" -ne 0 ]; then
  echo "install-smoke: uninstall left $left files:" >&2
  find "$stage/usr" -type f >&2
  exit 1
fi
echo "install-smoke: ok"
