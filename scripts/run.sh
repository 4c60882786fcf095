#!/usr/bin/env bash
# What netrr is for, on its built-in default: `netrr demo`. Two replicas of a
# guest send their output through netrr compare and a Remus-style buffer; the
# secondary diverges once, compare requests a checkpoint with its report, the
# buffer releases at epoch commits, a live page shows it (its URL is printed
# first), and a summary ends it. About ten seconds; needs only Node (the
# setup installs the npm packages and builds on first use). Extra arguments go
# to `netrr demo` (e.g. --linger-ms 60000 to keep the page up, --json).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >&2
node bin/netrr.js demo "$@"
