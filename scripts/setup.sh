#!/usr/bin/env bash
# Installs what netrr needs on a fresh Debian machine and builds it.
#   scripts/setup.sh          npm packages + build (enough for the CLI)
#   scripts/setup.sh --system also the Debian packages the tests drive:
#                             qemu-system-x86, tshark (+capinfos/editcap/text2pcap), passt,
#                             iproute2, dnsmasq and nftables (the tap tests' network namespace world;
#                             nft drops segments there to make a guest send SACKs),
#                             gcc and libc6-dev (the tap helper, native/netrr-tap.c,
#                             and the guest's static helpers, guest/src/),
#                             chromium (the live page's browser test),
#                             and the test guest built from Debian packages (scripts/build-guest.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--system" ]]; then
  need=()
  command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
  command -v tshark >/dev/null || need+=(tshark)
  command -v capinfos >/dev/null || need+=(wireshark-common)
  command -v passt >/dev/null || need+=(passt)
  command -v ip >/dev/null || need+=(iproute2)
  command -v dnsmasq >/dev/null || need+=(dnsmasq-base)
  command -v nft >/dev/null || need+=(nftables)
  command -v cc >/dev/null || need+=(gcc)
  # libc.a: the test guest's static helpers (guest/src/) link against it.
  [[ -f /usr/lib/x86_64-linux-gnu/libc.a ]] || need+=(libc6-dev)
  # The live page's browser test (test/live-page.test.ts) drives Debian's Chromium headlessly.
  command -v chromium >/dev/null || need+=(chromium)
  if ((${#need[@]} > 0)); then
    if [[ $(id -u) -ne 0 ]]; then
      echo "setup: missing Debian packages: ${need[*]} (run as root, or: sudo apt-get install ${need[*]})" >&2
      exit 1
    fi
    echo "setup: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  # The tiny test guest (Debian cloud kernel + busybox), cached in .cache/guest.
  bash scripts/build-guest.sh
fi

if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build
