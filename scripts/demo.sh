#!/usr/bin/env bash
# The README's demo command: installs dependencies, builds, and prints the weight study
# (every quantizer policy at 1-4 bits on one realistic weight tensor).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh >/dev/null
build/examples/weight_study
