#!/usr/bin/env bash
# The shared object's SONAME is libzkrecipes.so.ABI (ABI: the Makefile's ABI
# number, not the release version; docs/abi-policy.md) and it exports exactly the
# zkr_* symbols listed in tests/exported-symbols.txt (update the list on purpose
# when the API grows; never export internals). The Debian packaging follows both:
# the library package is libzkrecipesABI and debian/libzkrecipes0.symbols (named
# after the package) lists the same symbols.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
abi=$(sed -n 's/^ABI := \([0-9][0-9]*\)$/\1/p' Makefile)
[ -n "$abi" ] || { echo "check-symbols: no 'ABI := N' line in the Makefile" >&2; exit 1; }
so=$(readlink -f "$build/libzkrecipes.so")

soname=$(readelf -d "$so" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
if [ "$soname" != "libzkrecipes.so.$abi" ]; then
  echo "check-symbols: SONAME is '$soname', want libzkrecipes.so.$abi (ABI $abi in the Makefile)" >&2
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

# The Debian packaging (absent from the release tarball, see `make dist`).
if [ ! -d debian ]; then
  echo "check-symbols: no debian/ here: package name and symbols file not checked"
  exit 0
fi
pkg=libzkrecipes$abi
symfile=debian/$pkg.symbols
if ! grep -qx "Package: $pkg" debian/control; then
  echo "check-symbols: debian/control has no 'Package: $pkg' (ABI $abi): the library" \
    "package is named after the SONAME; rename it and its debian/$pkg.* files" >&2
  exit 1
fi
[ -f "$symfile" ] || { echo "check-symbols: $symfile is missing" >&2; exit 1; }
if [ "$(head -n 1 "$symfile")" != "libzkrecipes.so.$abi $pkg #MINVER#" ]; then
  echo "check-symbols: $symfile must begin with 'libzkrecipes.so.$abi $pkg #MINVER#'" >&2
  exit 1
fi
if grep -v '^\(libzkrecipes\.so\.\| zkr_[A-Za-z0-9_]*@Base [0-9][0-9.~+]*$\|\* \|#\)' "$symfile" >&2; then
  echo "check-symbols: $symfile: the lines above are not ' SYMBOL@Base VERSION'" >&2
  exit 1
fi
listed=$(sed -n 's/^ \(zkr_[A-Za-z0-9_]*\)@Base .*/\1/p' "$symfile" | LC_ALL=C sort)
if ! diff -u --label tests/exported-symbols.txt --label "$symfile" \
  <(LC_ALL=C sort tests/exported-symbols.txt) - <<<"$listed"; then
  echo "check-symbols: $symfile does not list exactly the symbols of" \
    "tests/exported-symbols.txt (diff above). For each new export add the line" \
    "' zkr_name@Base X.Y.Z' (X.Y.Z: the first release that has it, e.g. the version" \
    "in include/zkrecipes/common.h), keeping the lines sorted; never change the version" \
    "of an existing line. A removed export breaks the ABI: see docs/abi-policy.md." >&2
  exit 1
fi
echo "check-symbols: $symfile lists the same $(wc -l <<<"$listed") symbols, package $pkg"
