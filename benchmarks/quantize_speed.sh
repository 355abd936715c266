#!/usr/bin/env bash
# The README build's `qgan quantize` (run-time dispatch, default flags) against the same
# code built with -march=native, on the shipped generator: em+, 2 bits, per channel.
# Runs both binaries alternately (interleaved, so drift hits both alike) RUNS times
# (default 21), prints each side's median wall time and their ratio, and the kernel set
# the README build reports. Builds build-native/ if it is missing.
#   benchmarks/quantize_speed.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-21}
readme=build/examples/cli/qgan
native=build-native/examples/cli/qgan
test -x "$readme" || { echo "build the README build first (scripts/build.sh)"; exit 1; }
if [ ! -x "$native" ]; then
  cmake -S . -B build-native -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS=-march=native \
    -DQGAN_BUILD_TESTS=OFF -DQGAN_BUILD_BENCHMARKS=OFF >/dev/null
  cmake --build build-native --target qgan_cli --parallel "$(nproc)" >/dev/null
fi
input=examples/dcgan/weights/generator.safetensors
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
lscpu | grep -E "^(Model name|L3 cache)" || true
"$readme" --version
time_one() {  # prints wall seconds of one quantize
  local start end
  start=$(date +%s.%N)
  "$1" quantize "$input" -o "$work/$2.qgan" --method em+ --bits 2 --per-channel --arch dcgan >/dev/null
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.6f\n", b - a }'
}
: > "$work/readme.txt"; : > "$work/native.txt"
for ((i = 0; i < runs; ++i)); do
  time_one "$readme" readme >> "$work/readme.txt"
  time_one "$native" native >> "$work/native.txt"
done
cmp "$work/readme.qgan" "$work/native.qgan" && echo "outputs: byte-identical"
median() { sort -g "$1" | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
r=$(median "$work/readme.txt"); n=$(median "$work/native.txt")
awk -v runs="$runs" -v r="$r" -v n="$n" 'BEGIN {
  printf "runs: %d each, interleaved\nREADME build: median %.4f s\n-march=native: median %.4f s\nratio README/native: %.3f\n", runs, r, n, r / n }'
