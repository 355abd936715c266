#!/usr/bin/env bash
# The recalibration study of docs/results.md: installs dependencies, builds, and runs
# scripts/recalibration_study.py (68 quantize + eval runs; about 35 minutes on 2 cores).
# Extra arguments go to the script (--samples N, --bootstrap B, --bits 1,2,3,4, --out DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh >/dev/null
exec /usr/bin/python3 scripts/recalibration_study.py "$@"
