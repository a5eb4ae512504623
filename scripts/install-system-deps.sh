#!/usr/bin/env bash
# Installs the Debian packages skylan's demo and tests use, only if missing.
# Idempotent and quiet when everything is already there.
set -euo pipefail

packages=(iproute2 nftables ethtool iperf3 iputils-ping arping keepalived nmap tcpdump procps python3-venv
          postgresql util-linux curl chromium fonts-dejavu-core
          gcc libssl-dev python3-dev                   # the compiled data-plane core
          clang libclang-rt-14-dev libfuzzer-14-dev    # its fuzzers (ASan, UBSan)
          redis-server redis-tools                     # benchmarks/app.py
          dnsutils)                                    # dig, for the DNS e2e test

missing=()
for pkg in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then SUDO=sudo; else
        echo "error: need root to install: ${missing[*]}" >&2; exit 1
    fi
else
    SUDO=
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
