#!/usr/bin/env bash
# deps.sh - install the Debian packages the project needs, if any is missing.
#
# usage: tests/deps.sh [EXTRA-PACKAGE...]
#
# Prints nothing and exits 0 when everything is installed. Otherwise, as
# root, runs apt-get update once and installs the missing packages; not as
# root, prints the apt-get command to run and exits 1.

set -euo pipefail

packages=(libzookeeper-mt-dev check pkg-config zookeeper libjansson-dev python3 python3-kazoo groff-base man-db "$@")

installed() {
    [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]
}

missing=()
for p in "${packages[@]}"; do
    if ! installed "$p"; then missing+=("$p"); fi
done

if ((${#missing[@]})); then
    cmd="apt-get install -y --no-install-recommends ${missing[*]}"
    if ((EUID != 0)); then
        echo "deps: missing packages: ${missing[*]}; run as root: apt-get update && $cmd" >&2
        exit 1
    fi
    echo "deps: installing ${missing[*]}" >&2
    apt-get update -qq || { echo "deps: apt-get update failed" >&2; exit 1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
        { echo "deps: apt-get install ${missing[*]} failed" >&2; exit 1; }
    for p in "${missing[@]}"; do
        installed "$p" || { echo "deps: $p is still not installed" >&2; exit 1; }
    done
fi

# The zookeeper package pulls in a JRE; the test servers need java on PATH.
if ! command -v java >/dev/null; then
    echo "deps: java is not on PATH even though zookeeper is installed (install default-jre-headless)" >&2
    exit 1
fi
