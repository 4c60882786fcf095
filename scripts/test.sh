#!/usr/bin/env bash
# The whole test suite, setup included (Debian packages, npm packages, build).
# Tests that drive QEMU, tshark, Chromium and the corpus run here; none are
# skipped. Then the test files that need no guest, QEMU, network namespace,
# corpus or soak run again on the current Node LTS (24, from the npm registry's `node` package):
# netrr supports Node 20 and later, and a break on the newer runtime shows here.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --system
shopt -s nullglob
tests=(dist/test/*.test.js)
# A test file may run 20 minutes before it counts as hung: the corpus files take
# several minutes each, more while the other file in parallel drives QEMU.
node --test --test-concurrency=2 --test-timeout=1200000 "${tests[@]}"
unit=()
for t in "${tests[@]}"; do
  grep -qE "helpers/(qemu|guest|netns|compare-harness|tshark)\.js|qemu-system|tcpdump-captures|--guests|NETRR_SOAK_MS" "$t" || unit+=("$t")
done
echo "# the ${#unit[@]} test files without a guest, QEMU, namespace, corpus or soak, on Node $(npm exec --yes --package=node@24 -- node --version)"
npm exec --yes --package=node@24 -- node --test --test-concurrency=2 --test-timeout=600000 "${unit[@]}"
