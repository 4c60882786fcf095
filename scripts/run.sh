#!/usr/bin/env bash
# The main job on its built-in default: decode the bundled capture (a real
# session of `netrr bridge` in front of QEMU's slirp) and summarise it.
# Extra arguments go to `netrr decode` (e.g. a FILE, --json).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >&2
node bin/netrr.js decode "$@"
echo
node bin/netrr.js decode --summary "$@"
