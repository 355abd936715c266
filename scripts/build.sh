#!/usr/bin/env bash
# Configures and builds qgan (tests, examples) in build/ with warnings as errors.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DQGAN_WERROR=ON
cmake --build build --parallel "$(nproc)"
