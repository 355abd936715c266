#!/usr/bin/env bash
# aarch64: cross-builds the library's tests and the qgan tool with Debian's
# g++-aarch64-linux-gnu (cmake/toolchains/aarch64-linux-gnu.cmake) and runs them under
# qemu-aarch64, with qemu's default CPU (every extension) and with a plain ARMv8.0
# cortex-a53. Runs every kernel check (qgan_dispatch_tests: scalar and NEON sets against
# the references) and the library tests except the slow [nn] layer tests. Leaves the tool
# at build-aarch64/examples/cli/qgan for scripts/ci-same-bytes.sh. Prints each part's time.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
cmake -S . -B build-aarch64 -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake \
  -DQGAN_WERROR=ON -DQGAN_BUILD_BENCHMARKS=OFF -DQGAN_INSTALL=OFF >/dev/null
cmake --build build-aarch64 --parallel "$(nproc)" --target qgan_tests qgan_dispatch_tests qgan_cli
echo "aarch64 build: $((SECONDS - start)) s"
run() {
  local cpu=$1; shift
  local t=$SECONDS
  qemu-aarch64 -cpu "$cpu" -L /usr/aarch64-linux-gnu "$@"
  echo "  ($cpu: $((SECONDS - t)) s)"
}
for cpu in max cortex-a53; do
  run "$cpu" build-aarch64/tests/qgan_dispatch_tests
  run "$cpu" build-aarch64/tests/qgan_tests "~[nn]"
  run "$cpu" build-aarch64/examples/cli/qgan --version
done
echo "aarch64 stage: $((SECONDS - start)) s"
