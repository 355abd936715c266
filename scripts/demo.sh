#!/usr/bin/env bash
# The README's demo command: installs dependencies, builds, and quantizes the shipped DCGAN
# generator with every policy at 1-4 bits, per tensor and per channel. Writes PNG grids,
# comparison.png, results.md and results.json to demo-output/ and prints the table.
# Extra arguments go to dcgan_demo (--samples N, --bootstrap B, --threads T, --out DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh >/dev/null
build/examples/dcgan_demo --out demo-output "$@"
