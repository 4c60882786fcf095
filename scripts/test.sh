#!/usr/bin/env bash
# The whole test suite, setup included (Debian packages, npm packages, build).
# Tests that drive QEMU, tshark and the corpus run here; none are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --system
shopt -s nullglob
tests=(dist/test/*.test.js)
exec node --test --test-concurrency=2 --test-timeout=600000 "${tests[@]}"
