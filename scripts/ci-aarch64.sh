#!/usr/bin/env bash
# Cross-compiles qgan's tests and the qgan tool for 64-bit ARM with Debian's
# g++-aarch64-linux-gnu (cmake/toolchains/aarch64-linux-gnu.cmake) into build-aarch64/,
# then runs them under qemu-user twice: on qemu's default CPU ("max", every ARMv8/9
# extension) and on a plain ARMv8.0-A core (cortex-a53), side by side when there are two
# cores. Prints each part's time and exits non-zero on any failure. Needs
# g++-aarch64-linux-gnu and qemu-user. QGAN_JOBS=N sets the build's parallelism (nproc).
#
# What runs, per CPU model:
#   - qgan_dispatch_tests, whole: every kernel set the CPU can run (NEON "neon64", on the
#     default CPU also "neon64_dotprod", and the scalar reference) against the scalar
#     references, bit for bit;
#   - qgan_static_tests, whole: the statically selected NEON set and the scalar references;
#   - qgan_tests: on the default CPU all but the tests in $slow_tests below (about 10
#     minutes of the 11 the whole binary takes under qemu); not on the Cortex-A53, since
#     what differs between ARM cores is the kernels the dispatcher may pick, which the two
#     programs above check, and the rest would double the stage's time for no new code;
#   - qgan --version, which must name the set the dispatcher should pick there
#     (neon64_dotprod on the default CPU, neon64 on the Cortex-A53, which has no UDOT).
# The tool is left at build-aarch64/examples/cli/qgan for scripts/ci-same-bytes.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
script_start=$SECONDS

jobs=${QGAN_JOBS:-$(nproc)}
build="build-aarch64"
sysroot=/usr/aarch64-linux-gnu

# Slow under emulation (seconds on qemu's default CPU). The kernels they run are checked
# bit for bit by qgan_dispatch_tests and the kept [em] tests; the natively built suite
# runs them all.
slow_tests=(
  "the SIMD EM gives the scalar reference's grid bit for bit"                   # 315 s
  "Lloyd-Max <= EM+ <= EM <= minmax on every input tried"                       # 210 s
  "quantize_file streams the bytes quantize_model and write_qgan would write"  # 105 s
  "EM+ lowers the MSE where EM (paper) stalls"                                  #  23 s
  # The packed layers' whole-layer checks (scalar tiles plus Eigen under emulation); the
  # NEON tiles themselves are checked bit for bit by qgan_dispatch_tests above.
  "packed layers: 8-bit path equals the integer reference bit for bit\\, fp32 path the Eigen layers"
  "packed layers: the DCGAN transposed convolutions\\, batch 1 and 64"
)
# Catch2 v2 ANDs the terms; a filter of exclusions alone would also select the hidden
# ([.]) tests, hence ~[.].
test_filter=("~[.]")
for name in "${slow_tests[@]}"; do test_filter+=("~\"$name\""); done

for tool in aarch64-linux-gnu-g++ qemu-aarch64; do
  if ! command -v "$tool" > /dev/null; then
    echo "ci-aarch64: $tool not found (Debian: g++-aarch64-linux-gnu, qemu-user)" >&2
    exit 1
  fi
done

part() {
  local name=$1; shift
  local start=$SECONDS
  echo "--- aarch64: $name"
  "$@"
  echo "--- aarch64: $name took $((SECONDS - start)) s"
}

configure_and_build() {
  cmake -S . -B "$build" -G Ninja \
    -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/toolchains/aarch64-linux-gnu.cmake" \
    -DCMAKE_BUILD_TYPE=Release -DQGAN_WERROR=ON -DQGAN_BUILD_BENCHMARKS=OFF -DQGAN_INSTALL=OFF \
    -DQGAN_BUILD_PYTHON=OFF
  cmake --build "$build" --parallel "$jobs" --target qgan_tests qgan_static_tests qgan_dispatch_tests qgan_cli
}

# run_cpu <label> <full|kernels> <expected kernel set> [qemu options...]: everything under
# one CPU model.
run_cpu() {
  local label=$1 scope=$2 expected=$3; shift 3
  local emulator=(qemu-aarch64 -L "$sysroot" "$@")
  local status=0 start output
  start=$SECONDS
  if output=$("${emulator[@]}" "$build/tests/qgan_dispatch_tests" 2>&1); then :; else status=1; fi
  echo "$output"
  # The dispatcher must have picked the CPU's widest set: with only the scalar set the
  # checks pass too.
  if ! grep -qE "^dispatched kernels: $expected( |$)" <<< "$output"; then
    echo "[$label] qgan_dispatch_tests did not run the $expected kernels" >&2
    status=1
  fi
  echo "[$label] qgan_dispatch_tests: $((SECONDS - start)) s"
  start=$SECONDS
  "${emulator[@]}" "$build/tests/qgan_static_tests" || status=1
  echo "[$label] qgan_static_tests: $((SECONDS - start)) s"
  if [ "$scope" = full ]; then
    start=$SECONDS
    "${emulator[@]}" "$build/tests/qgan_tests" "${test_filter[@]}" || status=1
    echo "[$label] qgan_tests without ${#slow_tests[@]} slow tests: $((SECONDS - start)) s"
  fi
  if output=$("${emulator[@]}" "$build/examples/cli/qgan" --version 2>&1); then
    echo "$output"
    if grep -q "^kernels:" <<< "$output" && ! grep -qE "^kernels: $expected( |$)" <<< "$output"; then
      echo "[$label] qgan --version: expected the $expected kernels" >&2
      status=1
    fi
  elif grep -qi "unknown" <<< "$output"; then
    echo "[$label] qgan has no --version option; skipped"
  else
    echo "$output"
    echo "[$label] qgan --version failed" >&2
    status=1
  fi
  return "$status"
}

run_tests() {
  local logs status=0
  logs=$(mktemp -d)
  if [ "$jobs" -ge 2 ]; then
    run_cpu "qemu max" full neon64_dotprod > "$logs/max.log" 2>&1 &
    local max_pid=$!
    run_cpu "cortex-a53" kernels neon64 -cpu cortex-a53 > "$logs/cortex-a53.log" 2>&1 &
    local a53_pid=$!
    wait "$max_pid" || status=1
    wait "$a53_pid" || status=1
  else
    run_cpu "qemu max" full neon64_dotprod > "$logs/max.log" 2>&1 || status=1
    run_cpu "cortex-a53" kernels neon64 -cpu cortex-a53 > "$logs/cortex-a53.log" 2>&1 || status=1
  fi
  for log in "$logs/max.log" "$logs/cortex-a53.log"; do
    echo "--- CPU $(basename "$log" .log):"
    cat "$log"
  done
  rm -rf "$logs"
  return "$status"
}

part "configure and build ($build, $jobs jobs)" configure_and_build
part "tests under qemu-aarch64, default CPU and -cpu cortex-a53" run_tests
echo "--- aarch64: passed in $((SECONDS - script_start)) s"
