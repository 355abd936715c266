#!/usr/bin/env bash
# The README's test command: installs dependencies, builds with -Werror, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --python
scripts/build.sh
ctest --test-dir build --output-on-failure --parallel "$(nproc)"
