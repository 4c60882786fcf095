#!/usr/bin/env bash
# Builds the native tap helper (native/netrr-tap.c → dist/native/netrr-tap)
# with the system C compiler. Without one, netrr works except for tap: endpoints,
# which then fail with ERR_TAP_HELPER naming this script.
set -euo pipefail
cd "$(dirname "$0")/.."
out=dist/native/netrr-tap
if ! command -v "${CC:-cc}" >/dev/null; then
  echo "build-native: no C compiler (${CC:-cc}); tap endpoints unavailable (apt-get install gcc libc6-dev)" >&2
  exit 0
fi
mkdir -p dist/native
if [[ ! -x "$out" || native/netrr-tap.c -nt "$out" ]]; then
  "${CC:-cc}" -O2 -Wall -Wextra -Werror -o "$out.tmp" native/netrr-tap.c
  mv "$out.tmp" "$out"
fi
