#!/usr/bin/env bash
# The shared object's SONAME is libzkrecipes.so.MAJOR and it exports exactly the
# zkr_* symbols listed in tests/exported-symbols.txt (update the list on purpose
# when the API grows; never export internals).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
major=$(sed -n 's/^#define ZKR_VERSION_MAJOR \([0-9][0-9]*\)$/\1/p' include/zkrecipes/common.h)
so=$(readlink -f "$build/libzkrecipes.so")

soname=$(readelf -d "$so" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
if [ "$soname" != "libzkrecipes.so.$major" ]; then
  echo "check-symbols: SONAME is '$soname', want libzkrecipes.so.$major" >&2
  exit 1
fi
echo "check-symbols: SONAME $soname"

actual=$(nm -D --defined-only "$so" | awk '{print $3}' | sort)
if [ -n "$(grep -v '^zkr_' <<<"$actual")" ]; then
  echo "check-symbols: exported symbols outside the zkr_ prefix:" >&2
  grep -v '^zkr_' <<<"$actual" >&2
  exit 1
fi
if ! diff -u tests/exported-symbols.txt - <<<"$actual"; then
  echo "check-symbols: exports differ from tests/exported-symbols.txt (diff above)" >&2
  exit 1
fi
echo "check-symbols: $(wc -l <<<"$actual") exported symbols, all zkr_*, as listed"
