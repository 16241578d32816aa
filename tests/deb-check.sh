#!/usr/bin/env bash
# deb-check.sh - acceptance check of the Debian packaging (make deb-check), as
# root on Debian 12. From a fresh clone of HEAD (uncommitted changes are not
# checked) in a temp dir:
#   1. install the build tools (tests/deps.sh), dpkg-buildpackage -us -uc -b;
#      blhc: the build log shows dpkg-buildflags' hardening flags on every line
#   2. lintian -i -I --pedantic on the .changes: any error or warning fails
#   3. apt-get install the three .debs; check the multiarch libdir of the .pc
#   4. build examples/counter.c with nothing but pkg-config against the
#      installed package
#   5. man zkr and man 3 zkrecipes render; the bash completion completes
#   6. run the example against a throwaway ZooKeeper server
#   7. the README's crontab line, with /usr/bin/zkr, in cron's environment
#      against that server: it runs the job; with the lock held elsewhere it
#      says nothing and exits 0
#   8. make distcheck (the release tarball builds)
# Then the packages are purged again (those that were not installed before)
# and the temp dir removed, on failure too. Prints the time taken.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
start=$SECONDS
pkgs=(libzkrecipes0 libzkrecipes-dev zkr)

say() { printf 'deb-check: %s\n' "$*"; }
die() { printf 'deb-check: FAILED: %s\n' "$*" >&2; exit 1; }
installed() { [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]; }

((EUID == 0)) || die "run as root (it installs and purges packages)"
bash tests/deps.sh debhelper lintian dpkg-dev fakeroot build-essential blhc

before=()
for p in "${pkgs[@]}"; do
  if installed "$p"; then before+=("$p"); fi
done
((${#before[@]} == 0)) ||
  say "note: ${before[*]} installed before the check: replaced by the new build and left installed"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/deb-check.XXXXXX")
chmod 755 "$tmp" # apt reads the .debs as _apt
# shellcheck disable=SC2317 # run from the traps
cleanup() {
  local rc=$? p purge=()
  trap - EXIT INT TERM HUP
  for p in "${pkgs[@]}"; do
    if installed "$p" && [[ " ${before[*]} " != *" $p "* ]]; then purge+=("$p"); fi
  done
  if ((${#purge[@]})); then
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq "${purge[@]}" >/dev/null ||
      { echo "deb-check: could not purge ${purge[*]}" >&2; rc=1; }
  fi
  rm -rf "$tmp"
  if ((rc == 0)); then
    echo "deb-check: all passed in $((SECONDS - start)) s"
  else
    echo "deb-check: failed (status $rc) after $((SECONDS - start)) s" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

head=$(git rev-parse HEAD)
[[ -z $(git status --porcelain --untracked-files=no) ]] ||
  say "note: uncommitted changes are not checked: this checks HEAD $(git rev-parse --short HEAD)"
git clone -q --no-hardlinks "$repo" "$tmp/src"
git -C "$tmp/src" checkout -q --detach "$head"
src=$tmp/src

say "1. dpkg-buildpackage -us -uc -b (log: build.log)"
if ! (cd "$src" && dpkg-checkbuilddeps && dpkg-buildpackage -us -uc -b) >"$tmp/build.log" 2>&1; then
  tail -n 40 "$tmp/build.log" >&2
  die "dpkg-buildpackage"
fi
grep -E '^dpkg-deb: building|^check-symbols:|^dpkg-buildpackage: info: binary-only' "$tmp/build.log"
blhc --all "$tmp/build.log" || die "blhc: a compile or link line lacks dpkg-buildflags' flags"
say "blhc: every compile and link line has the hardening flags"

say "2. lintian -i -I --pedantic --fail-on error,warning"
changes=$(echo "$tmp"/zkrecipes_*.changes)
lint=0
out=$(lintian -i -I --pedantic --fail-on error,warning "$changes" 2>&1) || lint=$?
# (lintian warns when run as root; CI runs as root)
grep -v '^running with root privileges is not recommended' <<<"$out" || true
((lint == 0)) || die "lintian (above)"
say "lintian: no error or warning (overrides: debian/*.lintian-overrides)"

say "3. apt-get install ${pkgs[*]}"
debs=()
for p in "${pkgs[@]}"; do debs+=("$(echo "$tmp/${p}"_*.deb)"); done
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${debs[@]}" >/dev/null ||
  die "apt-get install ${debs[*]}"
version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
for p in "${pkgs[@]}"; do
  [[ $(dpkg-query -W -f='${Version}' "$p") == "$version" ]] || die "$p $version is not installed"
done
triplet=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
libdir=$(pkg-config --variable=libdir zkrecipes)
[[ $libdir == "/usr/lib/$triplet" ]] || die "zkrecipes.pc: libdir is $libdir, want /usr/lib/$triplet"
say "installed ${pkgs[*]} $version; pkg-config libdir $libdir"

say "4. examples/counter.c built against the installed package"
flags=$(pkg-config --cflags --libs zkrecipes)
say "cc -Wall -Wextra -Werror -o counter counter.c $flags"
cp "$src/examples/counter.c" "$tmp/counter.c" # nothing of the tree on the include path
# shellcheck disable=SC2086 # word splitting of the flags is intended
(cd "$tmp" && cc -Wall -Wextra -Werror -o counter counter.c $flags)
linked=$(ldd "$tmp/counter")
# (/lib is /usr/lib on a merged-/usr system)
grep -Eq "libzkrecipes\.so\.[0-9]+ => (/usr)?/lib/$triplet/libzkrecipes\.so" <<<"$linked" ||
  { echo "$linked" >&2; die "counter is not linked to the installed shared library"; }

# The server-side part runs under one throwaway server.
cat >"$tmp/nightly-report" <<EOS
#!/bin/sh
echo "ran with ZKR_FENCE=\$ZKR_FENCE" >>"$tmp/report.out"
EOS
chmod 755 "$tmp/nightly-report"
cat >"$tmp/server-part.sh" <<'EOS'
set -euo pipefail
tmp=$1 src=$2
hosts=$ZKR_TEST_STANDALONE
holder=
trap 'if [[ -n $holder ]]; then kill -TERM "$holder" 2>/dev/null; wait "$holder"; fi; true' EXIT
say() { printf 'deb-check: %s\n' "$*"; }
die() { printf 'deb-check: FAILED: %s\n' "$*" >&2; exit 1; }

out=$(timeout 120 "$tmp/counter" -w 3 -n 20 "$hosts") || { echo "$out" >&2; die "counter"; }
echo "$out" | sed 's/^/deb-check: counter: /'

say "7. the README's crontab line with /usr/bin/zkr"
line=$(grep -m 1 '^15 2 \* \* \* ' "$src/README.md") || die "no crontab line (15 2 * * *) in README.md"
cmd=$(sed -E 's/^([^ ]+ +){5}//' <<<"$line")
[[ $cmd == *ZKR_HOSTS=*' /usr/local/bin/zkr '*' -- /usr/local/bin/nightly-report' ]] ||
  die "the README's crontab line changed shape: update this check ($cmd)"
cmd=$(sed -e "s|ZKR_HOSTS=[^ ]*|ZKR_HOSTS=$hosts|" -e 's| /usr/local/bin/zkr | /usr/bin/zkr |' \
  -e "s| /usr/local/bin/nightly-report\$| $tmp/nightly-report|" <<<"$cmd")
say "cron runs: $cmd"
cron() { env -i PATH=/usr/bin:/bin HOME=/ SHELL=/bin/sh LOGNAME=root /bin/sh -c "$cmd" 2>&1; }
out=$(cron) || die "crontab line: status $? ($out)"
[[ -z $out ]] || die "crontab line printed (cron would mail it): $out"
grep -q '^ran with ZKR_FENCE=[0-9]' "$tmp/report.out" || die "the job did not run with a fencing token"
say "cron: the job ran ($(cat "$tmp/report.out")), no output, status 0"

# Held elsewhere: another host holds the lock; the cron line stays silent, status 0.
path=$(grep -o -m 1 ' /[^ ]*/locks/[^ ]*' <<<"$cmd")
/usr/bin/zkr -H "$hosts" lock "${path# }" -c "touch $tmp/held; exec sleep 60" &
holder=$!
echo "$holder" >"$tmp/holder.pid"
for _ in $(seq 200); do [[ -e $tmp/held ]] && break; sleep 0.1; done
[[ -e $tmp/held ]] || die "the second holder did not get the lock"
out=$(cron) || die "crontab line with the lock held elsewhere: status $? ($out)"
[[ -z $out ]] || die "crontab line with the lock held elsewhere printed: $out"
[[ $(wc -l <"$tmp/report.out") -eq 1 ]] || die "the job ran although the lock was held elsewhere"
kill -TERM "$holder"
wait "$holder" || true
holder=
say "cron: lock held elsewhere: the job did not run, no output, status 0"
EOS

say "5. man pages and bash completion"
MANWIDTH=80 man zkr 2>/dev/null | grep -q -- '--conflict-exit-code' || die "man zkr does not render"
MANWIDTH=80 man 3 zkrecipes 2>/dev/null | grep -q 'zkr_lock_acquire' || die "man 3 zkrecipes does not render"
comp=$(bash -c 'source /usr/share/bash-completion/completions/zkr; COMP_WORDS=(zkr lo); COMP_CWORD=1
  _zkr; echo "${COMPREPLY[*]}"')
[[ $comp == lock ]] || die "bash completion: 'zkr lo' gave '$comp'"
say "man zkr, man 3 zkrecipes render; 'zkr lo<TAB>' completes to '$comp'"

say "6. counter against a throwaway ZooKeeper server, then 7."
"$src/tests/zk/with-zk.sh" --standalone -- bash "$tmp/server-part.sh" "$tmp" "$src" ||
  die "the server part (above)"

say "8. make distcheck (log: distcheck.log)"
if ! make --no-print-directory -C "$src" distcheck >"$tmp/distcheck.log" 2>&1; then
  tail -n 40 "$tmp/distcheck.log" >&2
  die "make distcheck"
fi
grep -E '^(dist|distcheck|check-symbols):' "$tmp/distcheck.log"
